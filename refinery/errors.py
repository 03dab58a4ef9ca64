"""User-facing errors: the CLI prints their message and exits non-zero, without a traceback."""

import errno
import importlib.util
import os
import re
import socket
import sys
from collections.abc import Callable

# Operating-system errors on a path the user named that the user can fix (a read-only or full
# disk, no permission, a file where a folder belongs): one line, not a traceback. Others, a
# missing file among them, are left to the code that knows what the path was for.
_USER_FIXABLE = {
    errno.EACCES,
    errno.EPERM,
    errno.EROFS,
    errno.ENOSPC,
    errno.EDQUOT,
    errno.ENOTDIR,
    errno.EISDIR,
    errno.EEXIST,
}


class RefineryError(Exception):
    """Bad input, config or run folder, explained in the message."""

    # Raised alike by every torchrun worker of a node (the same config, files and all-reduced
    # figures): said by its local rank 0 alone, not once per rank. A worker's own error (a
    # shard only it reads) keeps this False, so it is said where it happened.
    every_rank = False


class ExecutorSetupError(RuntimeError):
    """What a Spark task needs and cannot find where it runs (a model file not on the
    executor): no document's fault, so it fails the task instead of making every document an
    errors/ row, and the driver prints its message (`user_message`)."""

    def __init__(self, what: str, err: BaseException | str):
        super().__init__(
            f"{what} (on host {socket.gethostname()}, working folder {os.getcwd()}): {err}. "
            "Executors read it themselves: give a path every executor sees (a shared "
            "filesystem), or ship it with --files / --archives and give the name it gets in "
            "their working folder"
        )


# A task failure as the driver sees it: Spark's exception text holds the task's traceback,
# whose last line names the error raised in the task.
_TASK_FATAL = re.compile(
    r"\b(?:ExecutorSetupError|ExtractorStartError|InputReadError|InputError): ([^\n]+)"
)
# Spark's FAILED_READ_FILE error: a file its Parquet reader could not read, then its causes
UNREADABLE_FILE = re.compile(
    r"\[FAILED_READ_FILE(?:\.(\w+))?\] Encountered error while reading file (.+?)\.\s+[A-Z]"
)
# gloo's and NCCL's words for a peer process that went away mid-collective
_PEER_GONE = re.compile(
    r"Connection closed by peer|Connection reset by peer|remote process exited|"
    r"NCCL communicator was aborted"
)
_CAUSE = re.compile(r"^Caused by: ([^\n]+)", re.MULTILINE)
# A Hadoop filesystem the JVM has no class for (s3a:// without hadoop-aws on its classpath)
_NO_FILESYSTEM = re.compile(r"ClassNotFoundException: Class (\S+FileSystem) not found")
# A filesystem's server that refused the connection (Hadoop IPC: hdfs:// to a stopped namenode)
_REFUSED = re.compile(r"java\.net\.ConnectException: (Call From [^\n]+)")
# A local checkpoint's blocks gone with the executor that held them (dedup's iterations)
_CHECKPOINT_LOST = re.compile(r"CHECKPOINT_RDD_BLOCK_ID_NOT_FOUND\]? ?(Checkpoint block \S+)")
# No Python where spark.pyspark.python points (an environment archive not shipped)
_NO_PYTHON = re.compile(r'Cannot run program "([^"]+)": error=(?:2|13)\b')
# A package missing from the Python the executors run (another interpreter than the driver's)
_NO_MODULE = re.compile(r"ModuleNotFoundError: No module named '([^']+)'")
# A committer class from a package spark-submit was not given (cluster.yaml's S3A committer)
_NO_COMMITTER = re.compile(r'config "(spark\.sql\.parquet\.output\.committer\.class)" is invalid')

# A URL scheme no Hadoop filesystem serves (s3:// is EMR's own; elsewhere S3 is s3a://)
_NO_SCHEME = re.compile(r'No FileSystem for scheme "([^"]+)"')
# A setting Spark refuses as its session starts: the master URL, a value of the wrong type
_SPARK_REFUSED = re.compile(
    r"(Could not parse Master URL: '[^'\n]*'|The value '[^'\n]*' in the config \"[^\"]+\" "
    r"is invalid\.[^\n]*?|Asked to run locally with \d+ threads)(?: SQLSTATE|\n|$)"
)
# A standalone master that cannot be reached: Spark gives up ("All masters are unresponsive"
# in its log), and the session's start fails on the context it stopped.
_NO_MASTER = re.compile(r"JavaSparkContext\.[\s\S]*Cannot call methods on a stopped SparkContext")


def _importable(module: str) -> bool:
    """Whether the driver's Python has `module` (then the executors run another Python)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _jvm_gone(err: BaseException) -> bool:
    """Whether py4j lost Spark's JVM on the way to `err`: its answer never came, and the
    calls after it (a retry, pyspark's cleanup) found no one listening."""
    chain, seen = err, set()
    while chain is not None and id(chain) not in seen:  # a chain may loop (unwrapped causes)
        if type(chain).__name__ == "Py4JNetworkError":
            return True
        seen.add(id(chain))
        chain = chain.__cause__ or chain.__context__
    return False


def user_message(err: BaseException) -> str | None:
    """The one line to print for an error the user can fix, or None (a bug: the traceback
    is what helps then)."""
    if isinstance(err, RefineryError):
        return str(err)
    if _jvm_gone(err):
        return (
            "Spark's JVM is gone (killed, or out of memory: see the kernel log or an "
            "hs_err_pid file): run the command again; finished stages are kept"
        )
    if type(err).__module__.startswith(("pyspark", "py4j")):
        found = _TASK_FATAL.search(str(err))
        if found:
            return f"a Spark task failed: {found.group(1)}"
        missing = _NO_FILESYSTEM.search(str(err))
        if missing:
            return (
                f"the JVM has no {missing.group(1)}: give Spark its package (for s3a://, "
                "--packages org.apache.hadoop:hadoop-aws:<Spark's Hadoop version> on the "
                "spark-submit line, as conf/curation/cluster.yaml shows)"
            )
        committer = _NO_COMMITTER.search(str(err))
        if committer:
            return (
                f"{committer.group(1)} names a class the JVM does not have: give Spark its "
                "package (--packages org.apache.spark:spark-hadoop-cloud_2.13:<Spark's "
                "version> on the spark-submit line, as conf/curation/cluster.yaml shows)"
            )
        scheme = _NO_SCHEME.search(str(err))
        if scheme:
            return (
                f"no Hadoop filesystem reads {scheme.group(1)}:// paths: local paths, hdfs:// "
                "and s3a:// are read (S3 is s3a:// outside EMR)"
            )
        setting = _SPARK_REFUSED.search(str(err))
        if setting:
            return (
                "Spark refused a setting (the config's spark section, spark-submit's --conf, "
                f"MASTER or spark-defaults.conf): {setting.group(1)}"
            )
        if _NO_MASTER.search(str(err)):
            return (
                "Spark could not reach its master (spark.master, MASTER or spark-submit's "
                "--master): check the host and port, and that the master is running"
            )
        if "JAVA_GATEWAY_EXITED" in str(err):
            return (
                "Spark's launcher exited before the session started (its own message is "
                "above): check the config's spark.master and spark.conf, and MASTER, "
                "PYSPARK_SUBMIT_ARGS and JAVA_HOME in the environment"
            )
        python = _NO_PYTHON.search(str(err))
        if python:
            said = (
                f"a Spark task failed: the executors cannot run the Python {python.group(1)} "
                "(PYSPARK_PYTHON or spark.pyspark.python)"
            )
            if os.path.isabs(python.group(1)) or "/" not in python.group(1):  # a path, a name
                return f"{said}: name an interpreter that is there"
            return (  # inside an archive shipped to each executor, as README's cluster section
                f"{said}: ship the environment with --archives venv.tar.gz#venv "
                "(spark-submit keeps only its last --archives: give every archive in one, "
                "comma-separated)"
            )
        module = _NO_MODULE.search(str(err))
        if module and "Python worker" in str(err) and _importable(module.group(1)):
            return (
                f"a Spark task failed: the executors' Python lacks the module "
                f"{module.group(1)!r}, which the driver's has: run them on the project's "
                "environment (--archives venv.tar.gz#venv --conf "
                "spark.pyspark.python=./venv/bin/python, see README's cluster section)"
            )
        refused = _REFUSED.search(str(err))
        if refused:
            return f"a filesystem refused the connection: {refused.group(1)}"
        lost = _CHECKPOINT_LOST.search(str(err))
        if lost:
            return (
                f"rows dedup had checkpointed on an executor's disk are gone ({lost.group(1)} "
                "not found), as when the executor is lost: rerun, and where executors can be "
                "lost (preemptible nodes, a shared cluster) set spark.checkpoints=reliable, "
                "which keeps them in OUT/_checkpoints/ (in local mode, a bug: report it)"
            )
        unreadable = UNREADABLE_FILE.search(str(err))
        if unreadable:  # as the reader met it in a job (a footer is checked before any work)
            kind, path = unreadable.groups()
            causes = _CAUSE.findall(str(err))
            why = f" ({causes[-1]})" if causes else ""
            if kind in (None, "NO_HINT", "CANNOT_READ_FILE_FOOTER"):  # bytes that do not decode
                return f"{path}: cannot read it as Parquet, it is damaged{why}"
            return f"{path}: cannot read it ({kind}){why}"  # FILE_NOT_EXIST, a type mismatch
    if isinstance(err, RuntimeError) and _peer_gone(str(err)):
        return (
            f"rank {os.environ.get('RANK', '?')}: another rank stopped, and with it the "
            "collective this rank was in (its own error is above, or in its log); stopping too"
        )
    if isinstance(err, OSError) and err.errno in _USER_FIXABLE and err.filename:
        return f"{err.filename}: {err.strerror}"
    return None


def _peer_gone(message: str) -> bool:
    """Whether a collective failed because another torchrun worker's process ended (gloo's
    closed connection, NCCL's exited remote): that worker printed why; a traceback here only
    buries it."""
    return os.environ.get("WORLD_SIZE", "1") not in ("", "1") and bool(_PEER_GONE.search(message))


def first_on_node() -> bool:
    """Whether this is a node's first torchrun worker (local rank 0), or no worker at all: the
    one that says what every worker of the node would say alike."""
    return os.environ.get("LOCAL_RANK", "0") == "0"


def with_user_errors(entry: Callable[[], int], prefix: str = "error") -> int:
    """`entry()` for a command's entry point: an error the user can fix is one line on
    stderr, `prefix: message`, and exit status 2; any other error raises, traceback and all."""
    try:
        return entry()
    except Exception as err:
        message = user_message(err)
        if message is None:
            raise
        # each node's first process: one that only a node meets (its files, its GPUs) is said
        if first_on_node() or not getattr(err, "every_rank", False):
            print(f"{prefix}: {message}", file=sys.stderr)
        return 2


def unreadable_file(path) -> str:
    """Why `path` (a pathlib.Path that is not a file) cannot be read: for an error message."""
    return "is a folder, not a file" if path.is_dir() else "file not found"
