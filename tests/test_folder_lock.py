"""One curation job at a time in a run folder (`refinery.folder_lock`, `jobs.common`)."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from jobs import extract, pipeline, train_tokenizer
from jobs.common import RunFolderInUse
from refinery.folder_lock import folder_lock

HOLDER = (
    "import sys, time; from pathlib import Path; from refinery.folder_lock import folder_lock\n"
    "with folder_lock(Path(sys.argv[1]), RuntimeError, 'job', '--output'):\n"
    "    print('held', flush=True); time.sleep(300)\n"
)


@contextlib.contextmanager
def another_job_holding(folder: Path):
    """A separate process holding `folder`'s lock, as a second job would."""
    with subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(folder)], stdout=subprocess.PIPE, text=True
    ) as other:
        try:
            assert other.stdout.readline() == "held\n"
            yield
        finally:
            other.kill()


def test_a_second_curation_job_on_the_same_output_stops_before_spark_starts(tmp_path):
    """Each stage's commit sweeps `_tmp/<stage>-*`, the other job's scratch folders too: one
    job then finished without some of its parts, stats counting them all."""
    crawl = tmp_path / "crawl"
    crawl.mkdir()
    (crawl / "a.warc.gz").write_bytes(b"x")  # named only: the lock comes before any reading
    out = tmp_path / "run"
    args = ["--input", str(crawl), "--output", str(out)]
    pq.write_table(pa.table({"text": ["a"]}), tmp_path / "docs.parquet")
    tokenizer_args = ["--input", str(tmp_path / "docs.parquet"), "--output", str(out)]
    with another_job_holding(out):
        for main, given in [(pipeline.main, args), (extract.main, args)]:
            with pytest.raises(RunFolderInUse, match=f"{out} is in use by another curation job"):
                main(given)
        with pytest.raises(RunFolderInUse, match=f"{out} is in use by another curation job"):
            train_tokenizer.main(tokenizer_args)
    assert sorted(p.name for p in out.iterdir()) == [".lock"]


def test_a_filesystem_without_locks_is_said_not_taken_for_a_busy_folder(
    tmp_path, monkeypatch, capsys
):
    def unsupported(*args):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "lockf", unsupported)
    with folder_lock(tmp_path / "out", RuntimeError, "curation job", "--output"):
        pass
    assert "cannot lock it (No locks available); a second curation job" in capsys.readouterr().err
