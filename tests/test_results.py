"""Results files: --out is checked before any work and never replaces something that is not a
regular file."""

import os
from pathlib import Path

import pytest

from refinery.errors import RefineryError
from refinery.results import check_results_path, write_results


def test_a_special_file_is_refused_not_replaced(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(RefineryError, match="is not a regular file"):
        check_results_path(fifo)
    assert fifo.is_fifo()


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux /proc")
def test_a_place_without_write_access_is_named_before_any_work():
    with pytest.raises(RefineryError, match="cannot write there"):
        check_results_path("/proc/results.json")
    with pytest.raises(RefineryError, match="cannot write the results"):
        write_results("/proc/results.json", {"a": 1})


def test_results_are_written_and_the_probe_leaves_nothing(tmp_path):
    out = check_results_path(tmp_path / "r.json")
    assert list(tmp_path.iterdir()) == []
    write_results(out, {"a": 1})
    assert out.read_text() == '{\n  "a": 1\n}\n'
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]
    assert check_results_path(tmp_path / "new" / "r.json")  # a folder still to be made


def test_a_report_inside_a_folder_the_command_reads_is_refused(tmp_path):
    run = tmp_path / "run"
    ckpt = run / "ckpt-10"
    ckpt.mkdir(parents=True)
    (ckpt / "model.safetensors").write_bytes(b"")
    docs = tmp_path / "dedup"
    docs.mkdir()
    for out, reads, inside in [
        (run / "eval.json", [ckpt], run),  # a checkpoint's run folder too
        (run / "sub" / "eval.json", [run], run),
        (docs / "part-x.json", [docs, tmp_path / "bench.jsonl"], docs),
    ]:
        with pytest.raises(RefineryError, match=f"inside {inside}, which this command reads"):
            check_results_path(out, reads=reads)
    assert check_results_path(tmp_path / "eval.json", reads=[ckpt, docs])

    bench = tmp_path / "bench.jsonl"
    bench.write_text("{}\n")
    with pytest.raises(RefineryError, match="is a file this command reads"):
        check_results_path(bench, reads=[ckpt, bench])
