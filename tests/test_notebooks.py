"""Notebooks run against the session's small run and a real tiny training run, so they never
rot."""

import json
import os
import shutil
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

REPO = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))


@pytest.fixture(scope="module")
def train_run(tmp_path_factory) -> Path:
    """A training out folder: a few steps of the tiny preset on synthetic shards."""
    from training.synthetic import write_dataset
    from training.train import main as train

    root = tmp_path_factory.mktemp("train")
    write_dataset(root / "tokens", {"web": 20_000}, learnable=True, seed=0)
    out = root / "train"
    args = [f"data={root / 'tokens'}", f"out={out}", "max_steps=6", "train.eval_every=3"]
    quiet = ["train.progress=false", "train.tensorboard=false"]
    assert train(["--config", str(REPO / "conf/train/tiny.yaml"), *args, *quiet]) == 0
    return out


def execute(path: Path) -> list:
    """Run every cell of the notebook at `path`; return the code cells' outputs."""
    notebook = nbformat.read(path, as_version=4)
    NotebookClient(
        notebook,
        timeout=300,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
    ).execute()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert outputs
    return outputs


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_executes(path, extract_run, train_run, monkeypatch):
    out, _ = extract_run
    monkeypatch.setenv("REFINERY_RUN", out)
    monkeypatch.setenv("REFINERY_TRAIN", str(train_run))
    outputs = execute(path)
    # every figure is shown (a non-interactive backend set in a notebook hid them all)
    assert any("image/png" in o.get("data", {}) for o in outputs)


def test_scaling_notebook_reads_a_sweep_report(tmp_path, monkeypatch):
    """scaling_fit.ipynb on a scaling.json as `refinery scaling` writes it (points made up
    from a known law, so no sweep has to train here)."""
    from training.scaling import FitConfig, ScalingLaw
    from training.scaling_sweep import write_report

    law = ScalingLaw(E=2.0, A=50.0, B=80.0, alpha=0.4, beta=0.3)
    sizes, budgets = (1e4, 3e4, 1e5), (2e4, 8e4, 3.2e5)
    points = [
        {"name": f"p{i}", "params": n, "tokens": d, "val_loss": float(law.loss(n, d))}
        for i, (n, d) in enumerate((n, d) for n in sizes for d in budgets)
    ]
    write_report(tmp_path, points, FitConfig(starts=4, bootstrap=3), compute=1e11)
    monkeypatch.setenv("REFINERY_SCALING", str(tmp_path / "scaling.json"))
    outputs = execute(NOTEBOOKS[[p.name for p in NOTEBOOKS].index("scaling_fit.ipynb")])
    text = "".join(o.get("text", "") for o in outputs)
    assert "alpha=0.4" in text and "optimum for C=1e+11" in text
    # the fit's PNG and the residuals figure (scaling.plot switched pyplot's backend to Agg,
    # so the residuals were never shown)
    assert sum("image/png" in o.get("data", {}) for o in outputs) == 2


def test_explore_notebook_reads_a_run_that_starts_after_extract(spark, extract_run, tmp_path):
    """explore_run.ipynb on a run whose first stage is `filter` (documents Parquet input)."""
    from curation.config import load_curation_config
    from curation.spark.stage import stage_path
    from jobs.filter import run_filter

    out, _ = extract_run
    run_filter(spark, load_curation_config(), [stage_path(out, "extract")], str(tmp_path))
    assert not (tmp_path / "extract").exists()
    assert "filter :" in explore_text(tmp_path)


def explore_copy(extract_run, tmp_path) -> Path:
    """A copy of the session's extract run that a test may break."""
    out, _ = extract_run
    shutil.copytree(out, tmp_path / "out")
    return tmp_path / "out"


def explore_text(run: Path) -> str:
    path = NOTEBOOKS[[p.name for p in NOTEBOOKS].index("explore_run.ipynb")]
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("REFINERY_RUN", str(run))
        outputs = execute(path)
    return "".join(o.get("text", "") for o in outputs)


def test_explore_notebook_reads_a_run_with_nothing_kept_or_rejected(extract_run, tmp_path):
    """A first stage that kept no document, no rejected/ folder, and a stage in run.json
    without its stats file: each is a note, not an error."""
    import pyarrow.parquet as pq

    run = explore_copy(extract_run, tmp_path)
    parts = sorted((run / "extract").glob("*.parquet"))
    schema = pq.read_schema(parts[0])
    for part in parts:
        part.unlink()
    pq.write_table(schema.empty_table(), run / "extract" / "part-00000.parquet")
    shutil.rmtree(run / "rejected")
    meta = json.loads((run / "run.json").read_text())
    meta["stages"]["filter"] = meta["stages"]["extract"]
    (run / "run.json").write_text(json.dumps(meta))
    (run / "stats" / "filter.json").unlink(missing_ok=True)  # other tests share the run
    text = explore_text(run)
    assert "extract : kept no documents" in text
    assert "no rejected documents" in text
    assert "filter: no stats/filter.json" in text


def test_explore_notebook_reads_a_run_with_no_finished_stage(extract_run, tmp_path):
    run = explore_copy(extract_run, tmp_path)
    for marker in run.glob("*/_SUCCESS"):  # other tests add stages to the shared run
        marker.unlink()
    assert "no stage has finished yet" in explore_text(run)


def test_explore_notebook_reads_a_relative_path_from_the_project_root_and_a_tokens_only_run(
    extract_run, tmp_path
):
    """The README's `REFINERY_RUN=runs/demo` is relative to the project root, while Jupyter
    runs the kernel in notebooks/; a run of tokenize alone has no document stage to show,
    and a decontaminated copy (stage `contamination`) is a stage like the others."""
    run = explore_copy(extract_run, tmp_path)
    meta = json.loads((run / "run.json").read_text())
    meta["stages"] = {"tokenize": meta["stages"]["extract"]}
    (run / "run.json").write_text(json.dumps(meta))
    for stats in (run / "stats").glob("*.json"):
        stats.rename(run / "stats" / "tokenize.json") if stats.stem == "extract" else stats.unlink()
    (run / "extract").rename(run / "tokens")
    text = explore_text(Path(os.path.relpath(run, REPO)))
    assert "no document stage here: tokenize keeps token shards" in text
    shutil.rmtree(run / "tokens")
    meta["stages"] = {"contamination": meta["stages"]["tokenize"]}
    (run / "run.json").write_text(json.dumps(meta))
    (run / "stats" / "tokenize.json").rename(run / "stats" / "contamination.json")
    shutil.copytree(Path(extract_run[0]) / "extract", run / "contamination")
    assert "contamination :" in explore_text(run)


def test_notebooks_name_a_folder_or_file_they_cannot_read(extract_run, tmp_path):
    run = explore_copy(extract_run, tmp_path)
    stats = json.loads((run / "stats" / "extract.json").read_text())
    stats["kept"] += 1
    (run / "stats" / "extract.json").write_text(json.dumps(stats))
    with pytest.raises(Exception, match=r"extract.json: input \d+ != kept \+ rejected"):
        explore_text(run)
    (tmp_path / "scaling.json").write_text('{"arms": []}')
    for value, message in [
        (tmp_path / "scaling.json", "not a scaling.json of `refinery scaling`"),
        (tmp_path / "nowhere", "nowhere: not found"),
    ]:
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("REFINERY_SCALING", str(value))
            with pytest.raises(Exception, match=message):
                execute(NOTEBOOKS[[p.name for p in NOTEBOOKS].index("scaling_fit.ipynb")])


def test_explore_notebook_warns_when_a_stage_read_other_documents_than_the_one_before_kept(
    extract_run, tmp_path
):
    """The report warned; the notebook's funnel showed 62 documents coming out of 61."""
    run = explore_copy(extract_run, tmp_path)
    kept = json.loads((run / "stats" / "extract.json").read_text())["kept"]
    stats = {"input": kept + 1, "kept": kept + 1, "rejected": {}, "errors": 0}
    (run / "stats" / "filter.json").write_text(json.dumps(stats))
    meta = json.loads((run / "run.json").read_text())
    meta["stages"]["filter"] = meta["stages"]["extract"]
    (run / "run.json").write_text(json.dumps(meta))
    text = explore_text(run)
    assert f"warning: filter read {kept + 1:,} documents where extract kept {kept:,}" in text
