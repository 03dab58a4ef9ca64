"""Model files shipped with spark-submit, which a config may name as executors see them.

`--files /a/lid.bin` (or, on YARN, `/a/lid.bin#langid.bin`) puts `lid.bin` (`langid.bin`) in
every executor's working folder, and `--archives /a/q.zip#quality` unpacks there as
`quality/`. Executors open such a model by that name. In client mode the driver's working
folder holds neither, so the driver checks the local file given to --files instead, and
leaves a model inside an archive, or one Spark fetches from hdfs:// or s3a://, to the tasks
(they fail the stage, naming where they looked, when it is not there). The jobs' entry points
(`jobs/common.stage_main`, `jobs/pipeline.main`) register what the session ships before the
stages check their files.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

from refinery.config import local_path, resolve_path

FILE_KEYS = ("spark.files", "spark.yarn.dist.files")
ARCHIVE_KEYS = ("spark.archives", "spark.yarn.dist.archives")


def _by_name(value: str) -> dict[str, str]:
    """`src[#name],…` -> {name in the working folder: src}."""
    named = {}
    for source in filter(None, (s.strip() for s in value.split(","))):
        path, _, alias = source.partition("#")
        named[alias or PurePosixPath(urlsplit(path).path or path).name] = path
    return named


@dataclass(frozen=True)
class ShippedFiles:
    files: dict[str, str] = field(default_factory=dict)  # name -> source given to spark-submit
    archives: dict[str, str] = field(default_factory=dict)  # folder name -> archive

    @classmethod
    def from_conf(cls, conf: dict[str, str]) -> ShippedFiles:
        """From the session's settings (both YARN's keys and the others')."""

        def named(keys):
            return {k: v for key in keys for k, v in _by_name(conf.get(key, "")).items()}

        return cls(named(FILE_KEYS), named(ARCHIVE_KEYS))


_session = ShippedFiles()


def register(shipped: ShippedFiles) -> None:
    """What the session about to run ships (none in local mode: tasks share the driver's
    files there, so a path is given as one)."""
    global _session
    _session = shipped


@dataclass(frozen=True)
class ModelFile:
    here: Path | None  # the copy to check on this machine; None: not here (an archive's)
    tasks: str  # the path tasks open


def locate(spec: str) -> ModelFile:
    """Where a model file a config names is, here and where tasks run. A name spark-submit
    ships stays a name (each executor has its own copy in its working folder); any other
    path is resolved here, and tasks get it absolute (a shared filesystem)."""
    found = resolve_path(spec).absolute()
    name = PurePosixPath(spec).as_posix()  # ./lid.bin is lid.bin
    if name in _session.files:
        if found.exists():  # cluster deploy mode: the driver has its copy here too
            return ModelFile(found, name)
        source = local_path(_session.files[name])
        remote = urlsplit(source).scheme != ""  # hdfs://, s3a://: Spark fetches it
        return ModelFile(None if remote else resolve_path(source), name)
    if spec and PurePosixPath(spec).parts[0] in _session.archives:
        return ModelFile(found if found.exists() else None, name)
    return ModelFile(found, str(found))
