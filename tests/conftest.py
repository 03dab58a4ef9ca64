"""Shared fixtures: one local SparkSession and one small curation run per test session."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"

os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")


def shared_data(*parts: str) -> Path:
    """A path under ../shared/data, skipping the test when it is absent."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} not present (../shared/data is optional)")
    return path


@pytest.fixture(scope="session")
def spark():
    from curation.config import load_curation_config
    from curation.spark.session import build_session

    config = load_curation_config(overrides=["spark.master=local[2]"])
    session = build_session(config.spark, "tests")
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.fixture(scope="session")
def sample_crawl(tmp_path_factory) -> Path:
    """A generated crawl of 120 pages in 3 files, with its expected.json ground truth."""
    from curation.sample_crawl import write_sample_crawl

    out = tmp_path_factory.mktemp("crawl")
    write_sample_crawl(out, docs=120, seed=7, files=3)
    return out


@pytest.fixture(scope="session")
def extract_run(spark, sample_crawl, tmp_path_factory):
    """The extract stage run once on the sample crawl: (OUT, stats)."""
    from curation.config import load_curation_config
    from curation.inputs import resolve_inputs
    from jobs.extract import run_extract

    out = str(tmp_path_factory.mktemp("run") / "out")
    config = load_curation_config()
    inputs = resolve_inputs([str(sample_crawl)], config.input.cc_prefix)
    stats = run_extract(spark, config, inputs, out)
    return out, stats


@pytest.fixture(scope="session")
def quality_model(tmp_path_factory) -> Path:
    """A quality model folder: reference articles (as `make demo` has them) vs keyword spam
    and bare lists."""
    import random

    from test_quality import BUCKET

    from curation import textgen
    from curation.quality_training import TrainParams, read_texts, train_quality_model
    from curation.sample_crawl import write_reference_articles

    folder = tmp_path_factory.mktemp("quality")
    positives = list(read_texts(str(write_reference_articles(folder, seed=7, count=40))))
    rng = random.Random(7)
    negatives = []
    for i in range(60):
        title, paragraphs = textgen.keyword_spam(rng)
        negatives.append((f"spam{i}", "\n".join([title, *paragraphs, *textgen.list_items(rng)])))
    train_quality_model(
        positives, negatives, folder / "model", TrainParams(max_tokens=64, epoch=5, bucket=BUCKET)
    )
    return folder / "model"
