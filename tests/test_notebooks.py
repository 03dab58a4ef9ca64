"""Notebooks run against the session's small run and a real tiny training run, so they never
rot."""

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


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_executes(path, extract_run, train_run, monkeypatch):
    out, _ = extract_run
    monkeypatch.setenv("REFINERY_RUN", out)
    monkeypatch.setenv("REFINERY_TRAIN", str(train_run))
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
