"""The jobs run as users run them: spark-submit locally and on a standalone cluster."""

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import REPO

SPARK_HOME = Path(__import__("pyspark").__file__).parent


def spark_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        PYSPARK_PYTHON=sys.executable,
        PYSPARK_DRIVER_PYTHON=sys.executable,
        SPARK_LOCAL_IP="127.0.0.1",
        SPARK_HOME=str(SPARK_HOME),
        PYTHONPATH=str(REPO),
    )
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def submit(args: list[str], timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(SPARK_HOME / "bin" / "spark-submit"), *args],
        cwd=REPO,
        env=spark_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.mark.slow
def test_spark_submit_extract_on_local_2(sample_crawl, tmp_path):
    out = tmp_path / "out"
    done = submit(
        [
            "--master",
            "local[2]",
            "jobs/extract.py",
            "--input",
            str(sample_crawl),
            "--output",
            str(out),
        ]
    )
    assert done.returncode == 0, done.stderr[-3000:]
    stats = json.loads((out / "stats" / "extract.json").read_text())
    assert stats["kept"] > 0 and "extract:" in done.stdout
    assert (
        json.loads((out / "run.json").read_text())["stages"]["extract"]["input"] == stats["input"]
    )


@pytest.mark.slow
def test_spark_submit_master_and_conf_win_over_the_config(tmp_path):
    """A SparkConf made before the gateway was up read none of spark-submit's settings, so
    the config's local[*] and its spark.conf ran instead of --master and --conf."""
    probe = tmp_path / "probe.py"
    probe.write_text(
        "from curation.config import load_curation_config\n"
        "from curation.spark.session import build_session\n"
        "spark = build_session(load_curation_config().spark, 'probe')\n"
        "print('master', spark.sparkContext.master)\n"
        "print('partitions', spark.conf.get('spark.sql.shuffle.partitions'))\n"
        "print('memory', spark.sparkContext.getConf().get('spark.driver.memory', 'unset'))\n"
    )
    done = submit(["--master", "local[1]", "--conf", "spark.sql.shuffle.partitions=3", str(probe)])
    assert done.returncode == 0, done.stderr[-3000:]
    assert "master local[1]" in done.stdout and "partitions 3" in done.stdout
    # the config's 2g came too late for spark-submit's JVM: said, and not recorded as in effect
    assert "memory unset" in done.stdout and "spark.driver.memory=2g (config) is not in effect" in (
        done.stdout + done.stderr
    )


@pytest.mark.slow
def test_the_configs_launch_settings_reach_a_jvm_it_starts(tmp_path):
    """Run without spark-submit, the session starts the JVM: spark.driver.memory (its heap)
    and spark.ui.showConsoleProgress (which pyspark's launch sets to true) were applied after
    the JVM was up, and so never took effect."""
    probe = tmp_path / "probe.py"
    probe.write_text(
        "from curation.config import load_curation_config\n"
        "from curation.spark.session import build_session\n"
        "memory = 'spark.conf.spark.driver.memory=1500m'\n"
        "progress = 'spark.conf.spark.ui.showConsoleProgress=\"false\"'\n"
        "master = 'spark.master=local[1]'\n"
        "config = load_curation_config(None, [memory, progress, master])\n"
        "spark = build_session(config.spark, 'probe')\n"
        "print('master', spark.sparkContext.master)\n"
        "heap = spark.sparkContext._jvm.java.lang.Runtime.getRuntime().maxMemory()\n"
        "print('heap MiB', heap // 2**20)\n"
        "print('progress', spark.conf.get('spark.ui.showConsoleProgress'))\n"
        "print('app', spark.sparkContext.appName)\n"
    )
    done = subprocess.run(
        [sys.executable, str(probe)], cwd=REPO, env=spark_env(), capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "heap MiB 1500" in done.stdout and "progress false" in done.stdout
    # pyspark's launch set local[*], which won: a run configured for a cluster ran locally
    assert "master local[1]" in done.stdout
    assert "app refinery-probe" in done.stdout  # spark.app_name, then the job


@pytest.mark.slow
def test_spark_submit_reports_bad_input_without_traceback(tmp_path):
    done = submit(
        [
            "--master",
            "local[1]",
            "jobs/extract.py",
            "--input",
            str(tmp_path / "none.warc.gz"),
            "--output",
            str(tmp_path / "o"),
        ]
    )
    assert done.returncode == 2
    output = done.stdout + done.stderr  # spark-submit merges the script's streams into stdout
    assert "error: input not found" in output and "Traceback" not in output


def wait_for_port(port: int, process: subprocess.Popen, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.5)
    raise TimeoutError(f"nothing listening on {port} after {timeout} s")


@contextlib.contextmanager
def spark_daemon(cls: str, args: list[str], log: Path):
    """A standalone master or worker from pyspark's bin/spark-class, stopped on exit."""
    with open(log, "w") as log_file:
        process = subprocess.Popen(
            [str(SPARK_HOME / "bin" / "spark-class"), f"org.apache.spark.deploy.{cls}", *args],
            env=spark_env(),
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
        try:
            yield process
        finally:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


@pytest.mark.slow
def test_pipeline_on_a_standalone_cluster(sample_crawl, quality_model, tmp_path):
    """Master and one worker on 127.0.0.1, then spark-submit jobs/pipeline.py to them in
    client mode, with the models shipped (--files, --archives) and named as executors see
    them: the driver's working folder holds neither name."""
    from curation.filters.language import bundled_model

    lid = tmp_path / "models" / "lid.ftz"
    lid.parent.mkdir()
    lid.write_bytes(bundled_model().read_bytes())
    quality = shutil.make_archive(str(tmp_path / "quality"), "zip", root_dir=quality_model)
    shipping = ["--files", str(lid), "--archives", f"{quality}#quality"]
    models = ["filter.language.model=lid.ftz", "classify.quality.model=quality"]
    port, master_ui, worker_ui = free_port(), free_port(), free_port()
    url = f"spark://127.0.0.1:{port}"
    master_args = ["--host", "127.0.0.1", "--port", str(port), "--webui-port", str(master_ui)]
    worker_args = ["--host", "127.0.0.1", "--cores", "2", "--memory", "2g"]
    worker_args += ["--webui-port", str(worker_ui), "--work-dir", str(tmp_path / "work"), url]
    with spark_daemon("master.Master", master_args, tmp_path / "master.log") as master:
        wait_for_port(port, master)
        with spark_daemon("worker.Worker", worker_args, tmp_path / "worker.log") as worker:
            wait_for_port(worker_ui, worker)
            out = tmp_path / "out"
            done = submit(
                ["--master", url, "--conf", "spark.executor.memory=1g", *shipping]
                + ["jobs/pipeline.py", "--input", str(sample_crawl), "--output", str(out)]
                + models
            )
    worker_log = (tmp_path / "worker.log").read_text()[-2000:]
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-3000:] + worker_log
    stats = json.loads((out / "stats" / "extract.json").read_text())
    assert stats["kept"] > 0
    assert stats["input"] == stats["kept"] + sum(stats["rejected"].values()) + stats["errors"]
    assert (out / "extract" / "_SUCCESS").exists()
    assert (out / "tokens" / "_SUCCESS").exists()  # executors wrote the shards
    # executors scored with the model they unpacked from the archive
    assert json.loads((out / "stats" / "classify.json").read_text())["kept"] > 0
    assert json.loads((out / "classify" / "_classify.json").read_text())["model"] == "quality"
    # the job ran on the cluster, not in a local master of its own (the config's local[*]
    # once won over spark-submit's --master)
    assert "Registering app refinery-curate" in (tmp_path / "master.log").read_text()
    assert any((tmp_path / "work").glob("app-*"))


def test_launch_settings_spark_submit_did_not_get_are_said():
    from pyspark import SparkConf

    from curation.spark.session import launch_settings_missed

    running = SparkConf(loadDefaults=False).set("spark.driver.memory", "8g")
    settings = {"spark.driver.memory": "8g", "spark.jars.packages": "org.x:y:1", "spark.a": "1"}
    (line,) = launch_settings_missed(settings, running)
    assert line.startswith("spark.jars.packages=org.x:y:1 (config) is not in effect")
    assert line.endswith("(--packages org.x:y:1)")


def test_the_environment_names_the_master_before_the_config(monkeypatch, tmp_path):
    """spark-submit's own order: --master (here PYSPARK_SUBMIT_ARGS), MASTER, then
    spark-defaults.conf (an EMR gateway's names yarn); the config's only after them."""
    from curation.spark.session import environment_master

    for name in ("PYSPARK_SUBMIT_ARGS", "MASTER"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SPARK_CONF_DIR", str(tmp_path))
    assert environment_master() is None
    (tmp_path / "spark-defaults.conf").write_text("# site\nspark.master  yarn\n")
    assert environment_master() == "yarn"
    monkeypatch.setenv("MASTER", "local[3]")
    assert environment_master() == "local[3]"
    monkeypatch.setenv("PYSPARK_SUBMIT_ARGS", "--master spark://h:7077 pyspark-shell")
    assert environment_master() == "spark://h:7077"


def test_yarn_without_its_hadoop_config_is_one_line(monkeypatch):
    from curation.spark.session import check_yarn
    from refinery.errors import RefineryError

    for name in ("HADOOP_CONF_DIR", "YARN_CONF_DIR"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(RefineryError, match="neither HADOOP_CONF_DIR nor YARN_CONF_DIR is set"):
        check_yarn("yarn")
    check_yarn("local[2]")
    monkeypatch.setenv("HADOOP_CONF_DIR", "/etc/hadoop/conf")
    check_yarn("yarn")
