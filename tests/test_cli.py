import errno
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from refinery.cli import COMMANDS, main
from refinery.errors import RefineryError, user_message


def test_help_lists_every_command(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in COMMANDS)
    with pytest.raises(SystemExit) as exit_:  # `refinery help train` is `refinery train --help`
        main(["help", "train"])
    assert exit_.value.code == 0 and "usage: refinery train" in capsys.readouterr().out
    assert main(["help", "trian"]) == 2 and "unknown command 'trian'" in capsys.readouterr().err


def test_no_command_is_a_usage_error(capsys):
    assert main([]) == 2
    err = capsys.readouterr().err
    assert "no command given" in err and "curate" in err


def test_unknown_command_is_refused(capsys):
    assert main(["extrat"]) == 2
    assert "unknown command 'extrat'" in capsys.readouterr().err


def test_missing_input_fails_before_spark_without_traceback(tmp_path):
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "refinery",
            "curate",
            "--input",
            str(tmp_path / "nope.warc.gz"),
            "--output",
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "refinery curate: error: input not found" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "out").exists()


def test_stage_args_split_overrides_from_inputs(tmp_path):
    from jobs.common import load_config, parse_stage_args, stage_parser

    crawl = tmp_path / "a=b.warc.gz"  # an existing path with "=" stays an input
    crawl.write_bytes(b"")
    argv = ["--output", "o", "--input", str(crawl), "x.warc", "extract.timeout_seconds=2"]
    parser = stage_parser("t", "d", archives=True)
    args = parse_stage_args(parser, [*argv, "--limit", "3", "input.cc_prefix=p/"])
    assert args.input == [str(crawl), "x.warc"]
    assert args.overrides == ["extract.timeout_seconds=2", "input.cc_prefix=p/"]
    config = load_config(args)
    assert (config.extract.timeout_seconds, config.input.limit) == (2.0, 3)
    mixed = ["--output", "o", "input.limit=10", "--input", "x", "input.limit=3", "--force", "a=1"]
    args = parse_stage_args(stage_parser("t", "d"), mixed)
    assert args.force and args.input == ["x"]
    assert args.overrides == ["input.limit=10", "input.limit=3", "a=1"]  # as typed: 3 wins
    # `--input A --input B` reads both (the last one alone was read, the first dropped unsaid)
    twice = ["--input", "a", "--input", "b", "c", "k=1", "--output", "o"]
    args = parse_stage_args(stage_parser("t", "d"), twice)
    assert args.input == ["a", "b", "c"] and args.overrides == ["k=1"]
    from jobs.contamination import parse_args as contamination_args

    args = contamination_args(["--input", "a", "--input", "b", "--benchmarks", "x"])
    assert args.input == ["a", "b"]


def test_output_cut_short_by_the_reader_is_not_an_error(monkeypatch):
    """`refinery inspect-shards OUT/tokens | head`: the closed pipe ends the command quietly."""

    def cut_short(argv):
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setitem(COMMANDS, "printer", ("printer", "prints a lot"))
    monkeypatch.setattr("importlib.import_module", lambda name: SimpleNamespace(main=cut_short))
    monkeypatch.setattr(sys, "stdout", sys.stdout)  # restored after the handler drops it
    assert main(["printer"]) == 0


def test_usage_cut_short_by_the_reader_is_not_an_error(monkeypatch):
    """`refinery --help | head -2`: it raised from print(usage()), a traceback."""

    class ClosedPipe:
        def write(self, text):
            raise BrokenPipeError(32, "Broken pipe")

        def flush(self):
            raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(sys, "stdout", ClosedPipe())
    assert main(["--help"]) == 0


def test_a_path_the_user_can_fix_is_one_line_not_a_traceback(tmp_path, capsys):
    (tmp_path / "a-file").write_text("")
    out = tmp_path / "a-file" / "crawl"
    assert main(["sample-crawl", "--out", str(out), "--docs", "80"]) == 2
    assert capsys.readouterr().err == f"refinery sample-crawl: error: {out}: Not a directory\n"


def test_only_user_fixable_os_errors_become_messages():
    read_only = OSError(errno.EROFS, "Read-only file system", "/mnt/ro/run")
    assert user_message(read_only) == "/mnt/ro/run: Read-only file system"
    assert user_message(RefineryError("bad config")) == "bad config"
    assert user_message(FileNotFoundError(errno.ENOENT, "No such file", "/x")) is None  # a bug's
    assert user_message(OSError(errno.EACCES, "Permission denied")) is None  # no path to name
    assert user_message(ValueError("bug")) is None


def test_a_jvm_killed_under_a_command_is_one_line_and_stopping_it_hides_nothing():
    from py4j.protocol import Py4JNetworkError

    from curation.spark.session import stop_session

    said = user_message(Py4JNetworkError("Answer from Java side is empty"))
    assert said.startswith("Spark's JVM is gone (killed, or out of memory")
    try:  # as collect() meets it: py4j's retry, then pyspark's cleanup, refused
        try:
            raise Py4JNetworkError("Answer from Java side is empty")
        except Py4JNetworkError:
            raise ConnectionRefusedError(111, "Connection refused") from None
    except ConnectionRefusedError as refused:
        assert user_message(refused) == said

    class Gone:  # a session whose JVM was killed: stop() cannot reach it
        def stop(self):
            raise ConnectionRefusedError(111, "Connection refused")

    stop_session(Gone())  # the error that ended the command stays the one raised

    looped = KeyError("k")  # an unwrapped cause: the chain comes back to itself
    wrapper = RuntimeError("wrapped")
    wrapper.__cause__, looped.__context__ = looped, wrapper
    assert user_message(looped) is None


def test_a_task_that_refused_its_input_is_one_line():
    from pyspark.errors import PythonException

    raised = (
        "Traceback (most recent call last):\n  File x\ncuration.inputs.InputError: f: row group 0"
    )
    failed = PythonException(message=f"An exception was thrown from the Python worker.\n{raised}\n")
    assert user_message(failed) == "a Spark task failed: f: row group 0"


def test_a_filesystem_the_jvm_lacks_or_cannot_reach_is_one_line():
    from pyspark.errors import PythonException

    lacking = "java.lang.RuntimeException: java.lang.ClassNotFoundException: Class "
    lacking += "org.apache.hadoop.fs.s3a.S3AFileSystem not found\n\tat org.apache..."
    said = user_message(PythonException(message=lacking))
    assert said.startswith("the JVM has no org.apache.hadoop.fs.s3a.S3AFileSystem: give")
    assert "hadoop-aws" in said
    refused = "java.net.ConnectException: Call From h/127.0.0.1 to 127.0.0.1:1 failed\n\tat x"
    assert user_message(PythonException(message=refused)) == (
        "a filesystem refused the connection: Call From h/127.0.0.1 to 127.0.0.1:1 failed"
    )
    shuffle = "FetchFailed ... java.net.ConnectException: Connection refused: host/10.0.0.2:7337"
    assert user_message(PythonException(message=shuffle)) is None  # a lost executor, not OUT


def test_a_package_or_class_missing_where_tasks_run_is_one_line():
    """Executors on a Python without the project (no numpy), and cluster.yaml's committer
    without spark-submit --packages: a 40-line traceback each."""
    from pyspark.errors import IllegalArgumentException, PythonException

    missing = "An exception was thrown from the Python worker. Please see the stack trace "
    missing += "below.\nTraceback (most recent call last):\n  File x\n"
    missing += "ModuleNotFoundError: No module named 'numpy'\n"
    said = user_message(PythonException(message=missing))
    assert said.startswith("a Spark task failed: the executors' Python lacks the module 'numpy'")
    assert "spark.pyspark.python=./venv/bin/python" in said
    # a module the driver lacks too (local mode, or a bug): the traceback, not cluster advice
    absent = missing.replace("'numpy'", "'no_such_module_anywhere'")
    assert user_message(PythonException(message=absent)) is None
    # spark.pyspark.python names an archive's Python that was not shipped (a second
    # --archives flag replaced the venv's)
    unshipped = "Lost task 0.3 in stage 0.0 (TID 3) (127.0.0.1 executor 0): java.io.IOException: "
    unshipped += 'Cannot run program "./venv/bin/python": error=2, No such file or directory'
    said = user_message(PythonException(message=unshipped))
    assert said.startswith("a Spark task failed: the executors cannot run the Python ./venv/")
    assert "give every archive in one, comma-separated" in said
    # PYSPARK_PYTHON naming no interpreter, in local mode: no archive to ship
    for python, error in [("/opt/nope/bin/python", "2"), ("python3.99", "2"), ("/d", "13")]:
        local = unshipped.replace("./venv/bin/python", python).replace("error=2", f"error={error}")
        assert user_message(PythonException(message=local)) == (
            f"a Spark task failed: the executors cannot run the Python {python} "
            "(PYSPARK_PYTHON or spark.pyspark.python): name an interpreter that is there"
        )
    committer = "[INVALID_CONF_VALUE.REQUIREMENT] The value 'org.apache.spark.internal.io.cloud."
    committer += "BindingParquetOutputCommitter' in the config "
    committer += '"spark.sql.parquet.output.committer.class" is invalid. Class must be loadable'
    said = user_message(IllegalArgumentException(message=committer))
    assert said.startswith("spark.sql.parquet.output.committer.class names a class the JVM")
    assert "spark-hadoop-cloud" in said


def test_spark_settings_and_schemes_spark_refuses_at_start_are_one_line():
    from pyspark.errors import IllegalArgumentException, PySparkRuntimeError

    class CapturedException(Exception):  # py4j's Py4JJavaError, as the session start raises
        __module__ = "py4j.protocol"

    master = "An error occurred while calling None.org.apache.spark.api.java.JavaSparkContext.\n"
    master += ": org.apache.spark.SparkException: Could not parse Master URL: 'local[abc]'\n\tat"
    assert user_message(CapturedException(master)) == (
        "Spark refused a setting (the config's spark section, spark-submit's --conf, MASTER or "
        "spark-defaults.conf): Could not parse Master URL: 'local[abc]'"
    )
    typed = "[INVALID_CONF_VALUE.TYPE_MISMATCH] The value 'ten' in the config "
    typed += "\"spark.sql.shuffle.partitions\" is invalid. It should be a/an 'int' value. "
    said = user_message(IllegalArgumentException(message=typed + "SQLSTATE: 22022"))
    assert said.endswith(
        "\"spark.sql.shuffle.partitions\" is invalid. It should be a/an 'int' value."
    )
    scheme = ': org.apache.hadoop.fs.UnsupportedFileSystemException: No FileSystem for scheme "s3"'
    assert user_message(CapturedException(scheme)).startswith(
        "no Hadoop filesystem reads s3:// paths"
    )
    threads = master.replace(
        "Could not parse Master URL: 'local[abc]'", "Asked to run locally with 0 threads"
    )
    assert user_message(CapturedException(threads)).endswith("Asked to run locally with 0 threads")
    unreachable = master.split(": org.")[0] + ": java.lang.IllegalStateException: Cannot call "
    unreachable += "methods on a stopped SparkContext.\nThis stopped SparkContext was created at:"
    assert user_message(CapturedException(unreachable)).startswith(
        "Spark could not reach its master"
    )
    gateway = PySparkRuntimeError(errorClass="JAVA_GATEWAY_EXITED", messageParameters={})
    assert "spark.master and spark.conf" in user_message(gateway)


def test_a_local_checkpoint_lost_with_its_executor_points_to_reliable_checkpoints():
    from pyspark.errors import PythonException

    lost = "org.apache.spark.SparkException: [CHECKPOINT_RDD_BLOCK_ID_NOT_FOUND] Checkpoint "
    lost += "block rdd_24_1 not found! Either the executor that originally checkpointed ..."
    said = user_message(PythonException(message=lost))
    assert said.startswith("rows dedup had checkpointed on an executor's disk are gone")
    assert "(Checkpoint block rdd_24_1 not found)" in said
    assert "set spark.checkpoints=reliable" in said


def test_a_file_spark_could_not_read_is_named_with_why():
    from pyspark.errors import PythonException

    def failed(kind: str) -> PythonException:
        return PythonException(
            message=f"[FAILED_READ_FILE.{kind}] Encountered error while reading file "
            "file:///d/p.parquet.  SQLSTATE: KD001\nCaused by: java.io.IOException: why\n"
        )

    damaged = "file:///d/p.parquet: cannot read it as Parquet, it is damaged"
    assert user_message(failed("NO_HINT")) == f"{damaged} (java.io.IOException: why)"
    gone = "file:///d/p.parquet: cannot read it (FILE_NOT_EXIST) (java.io.IOException: why)"
    assert user_message(failed("FILE_NOT_EXIST")) == gone


@pytest.mark.parametrize(
    "args",
    [["report", "run", "--samples", "-1"], ["inspect-shards", "tokens", "--docs", "-1"]]
    + [["sample-crawl", "--out", "crawl", "--seed", "-1"]]
    + [["generate", "--ckpt", "run", "--prompt", "x", "--seed", "-1"]]
    + [["judge", "--a", "run", "--b", "b.json", "--instructions", "i.json", "--seed", "-1"]]
    + [["eval", "--ckpt", "run", "--bpb", "t.txt", "--seed", "-1"]],
)
def test_a_negative_count_is_a_usage_error(args, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(args)
    assert exit_.value.code == 2 and "-1 is negative" in capsys.readouterr().err


@pytest.mark.parametrize(
    "args",
    [["sample-crawl", "--out", ""], ["export", "--ckpt", "run", "--hf", " "]]
    + [["train-quality", "--positives", "p", "--negatives", "n", "--output", ""]],
)
def test_an_empty_output_folder_is_a_usage_error(args, capsys, tmp_path, monkeypatch):
    """An unset variable (`--out "$OUT"`) wrote into the working directory (and export
    --force deleted what was in it)."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_:
        main(args)
    assert exit_.value.code == 2 and "an empty path (an unset variable?)" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_a_spark_task_failed_by_an_executor_setup_error_is_one_line():
    class CapturedException(Exception):  # as pyspark raises a task's failure on the driver
        __module__ = "pyspark.errors.exceptions.captured"

    trace = "Job aborted ... Traceback (most recent call last):\n  File ...\n"
    trace += "refinery.errors.ExecutorSetupError: classify.quality.model cannot be loaded: x\n"
    assert user_message(CapturedException(trace)) == (
        "a Spark task failed: classify.quality.model cannot be loaded: x"
    )
    retried = "curation.inputs.InputReadError: s3://b/x.warc.gz: reading failed after offset 9: e\n"
    assert user_message(CapturedException(f"Job aborted ... {retried}")) == (
        "a Spark task failed: s3://b/x.warc.gz: reading failed after offset 9: e"
    )
    assert user_message(CapturedException("some other failure")) is None


def test_a_collective_a_crashed_rank_left_is_one_line_on_the_others(monkeypatch):
    """torchrun: the rank that met a corrupted shard says so and exits 2; the others' gloo
    error was a traceback that buried it."""
    gloo = RuntimeError("[.../gloo/transport/tcp/pair.cc:553] Connection closed by peer [::1]:1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    assert user_message(gloo).startswith("rank 0: another rank stopped")
    assert user_message(RuntimeError("shape mismatch")) is None  # a bug keeps its traceback
    monkeypatch.setenv("WORLD_SIZE", "1")
    assert user_message(gloo) is None


def test_an_installed_wheel_carries_the_presets_and_lists(tmp_path):
    """A venv made with `pip install .` (the one shipped to a cluster) finds conf/ beside the
    packages, as a checkout has it: the default curation config, blocklists, word lists."""
    import shutil
    import zipfile

    repo, source = Path(__file__).resolve().parent.parent, tmp_path / "source"
    source.mkdir()  # a copy: setuptools leaves build/ in the tree it builds
    for name in ("pyproject.toml", "README.md", "refinery", "curation", "jobs", "training", "conf"):
        copy = shutil.copytree if (repo / name).is_dir() else shutil.copyfile
        copy(repo / name, source / name)
    build = [sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "--no-build-isolation"]
    done = subprocess.run([*build, "-q", "-w", str(tmp_path)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    (wheel,) = tmp_path.glob("refinery-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = ["conf/curation/default.yaml", "conf/train/tiny.yaml", "conf/domain_rules.yaml"]
    assert all(name in names for name in expected)
    assert "conf/blocklist/adult/domains" in names and "conf/badwords/en" in names


def test_under_torchrun_an_error_every_rank_meets_is_said_once_a_node(monkeypatch, capsys):
    from refinery.config import ConfigError
    from refinery.errors import with_user_errors

    def fail(error):
        def entry():
            raise error

        return entry

    from training.checkpoint import CheckpointError

    same = ConfigError("train.global_batch_tokens 2048 must be a multiple of 3072")
    resumed = CheckpointError("cannot resume ckpt-10 with seed: 0 -> 1")  # the shared out=
    own = RefineryError("shard-00003.bin: damaged")  # a shard only this rank reads
    monkeypatch.setenv("WORLD_SIZE", "6")  # two nodes of three: each node's first says it
    for rank, local_rank, said in (
        ("0", "0", [same, resumed, own]),
        ("2", "2", [own]),
        ("3", "0", [same, resumed, own]),
    ):
        monkeypatch.setenv("RANK", rank)
        monkeypatch.setenv("LOCAL_RANK", local_rank)
        for error in (same, resumed, own):
            assert with_user_errors(fail(error)) == 2
            printed = capsys.readouterr().err
            assert printed == (f"error: {error}\n" if error in said else "")


def test_ctrl_c_in_a_command_is_one_line_saying_what_is_kept(monkeypatch, capsys):
    def interrupted(argv):
        raise KeyboardInterrupt

    monkeypatch.setattr("importlib.import_module", lambda name: SimpleNamespace(main=interrupted))
    assert main(["dedup"]) == 130
    err = capsys.readouterr().err.strip()
    assert err.startswith("refinery dedup: stopped by Ctrl-C; a stage stopped half way keeps")
    assert main(["chat"]) == 130  # nothing to go on with
    assert capsys.readouterr().err.strip() == "refinery chat: stopped by Ctrl-C"


@pytest.mark.parametrize(
    "command",
    [["extract", "--input", "crawl"], ["contamination", "--input", "docs"]]
    + [["train"], ["anneal", "--from", "run"], ["sft"], ["ppo"], ["ablate"], ["scaling"]],
)
def test_a_config_given_twice_is_a_usage_error(command, capsys, tmp_path):
    """argparse kept the second file and ran without the first."""
    first, second = tmp_path / "a.yaml", tmp_path / "b.yaml"
    with pytest.raises(SystemExit) as exit_:
        main([*command, "--output", "x", "--config", str(first), "--config", str(second)])
    assert exit_.value.code == 2 and "--config given twice" in capsys.readouterr().err


def test_a_config_given_once_replaces_the_default():
    """ppo's and sft's --config have a default: giving it once is not giving it twice."""
    import argparse

    from refinery.cli import GivenOnce

    parser = argparse.ArgumentParser()
    parser.add_argument("--config", action=GivenOnce, default="conf/posttrain/ppo.yaml")
    parser.add_argument("overrides", nargs="*")
    assert parser.parse_intermixed_args(["a=1", "--config", "mine.yaml"]).config == "mine.yaml"
    assert parser.parse_intermixed_args([]).config == "conf/posttrain/ppo.yaml"
