"""Driver-side file operations on the run folder through Hadoop's FileSystem API.

The same calls work for a local folder, HDFS and s3a://, so the run folder contract
(temp folders renamed into place, `_SUCCESS`, stats JSON) holds on a cluster too.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import uuid
from pathlib import Path
from typing import Any

from py4j.protocol import Py4JJavaError

# What FileStatus.toString says of a file that changes when it is written again (its access
# time and owner are left out: reading or chown is no new content).
_FILE_STATUS = re.compile(r"path=(.*?); isDirectory=\w+; length=(\d+);.*?modification_time=(\d+)")
_ACCESS_TIME = re.compile(r"access_?time=\d+", re.IGNORECASE)


class HadoopFS:
    def __init__(self, spark):
        self._jvm = spark._jvm
        self._gateway = spark.sparkContext._gateway
        self._conf = spark._jsc.hadoopConfiguration()
        self._spark_conf = spark.conf

    def spark_settings(self, keys) -> dict[str, str | None]:
        """The values the session runs with (spark-submit's --master and --conf win over a
        config's), None for a key that is not set."""
        return {key: self._spark_conf.get(key, None) for key in keys}

    def _path(self, path: str):
        return self._jvm.org.apache.hadoop.fs.Path(path)

    def _fs(self, path: str):
        return self._path(path).getFileSystem(self._conf)

    @staticmethod
    def local(path) -> str:
        """Hadoop's name for a local path, whatever fs.defaultFS is. Not `Path.as_uri()`:
        Hadoop takes the `%23` of file:///o%23x for three characters of the name."""
        return f"file:{path}"

    def uri(self, path: str) -> str:
        """`path` as a full URI (file:///abs/..., hdfs://nn/...) with `#`, `%`, spaces and
        non-ASCII characters escaped, as pyarrow's filesystems read a URI. Hadoop's own form
        (file:/o#x) is not one: parsed as a URI, `#x` was a fragment and `%20` a space. One
        path has one URI, so they compare (file:/x and file:///x are both file:///x)."""
        uri = str(self._fs(path).makeQualified(self._path(path)).toUri().toASCIIString())
        if uri.startswith("file:/") and not uri.startswith("file://"):  # file:/x, as given
            uri = f"file://{uri[len('file:') :]}"
        return uri

    def exists(self, path: str) -> bool:
        return bool(self._fs(path).exists(self._path(path)))

    def matches(self, pattern: str) -> bool:
        """Whether a Hadoop glob (`runs/*/mix/_mixture.json`) matches anything; one Hadoop
        cannot parse (an unclosed `[` or `{` of a folder's name) matches nothing."""
        try:
            found = self._fs(pattern).globStatus(self._path(pattern))
        except Py4JJavaError as err:
            if "Illegal file pattern" in str(err):
                return False
            raise
        return found is not None and len(found) > 0

    def delete(self, path: str) -> None:
        if self.exists(path):
            self._fs(path).delete(self._path(path), True)

    def list(self, path: str) -> list[str]:
        return [str(s.getPath()) for s in self._fs(path).listStatus(self._path(path))]

    def folders_digest(self, files: list[str]) -> str:
        """A digest of the names, sizes and modification times of everything in the folders
        holding `files` (URIs, as DataFrame.inputFiles gives them: `%20` for a space): it
        changes when they are written again. A listing a folder, one JVM call a file."""
        entries = []
        for folder in sorted({f.rsplit("/", 1)[0] for f in files}):
            path = self._jvm.org.apache.hadoop.fs.Path(self._jvm.java.net.URI(folder))
            for status in path.getFileSystem(self._conf).listStatus(path):
                said = str(status.toString())
                # another shape (a filesystem's own status class): all it says but the access
                entries += _FILE_STATUS.findall(said) or [(_ACCESS_TIME.sub("", said),)]
        listing = "\n".join(" ".join(entry) for entry in sorted(entries))
        return hashlib.sha256(listing.encode()).hexdigest()[:16]

    def mkdirs(self, path: str) -> None:
        self._fs(path).mkdirs(self._path(path))

    def rename(self, src: str, dst: str) -> None:
        """Move `src` to `dst`; `dst` must not exist, its parent is created."""
        parent = self._path(dst).getParent()
        if parent is not None:
            self._fs(dst).mkdirs(parent)
        if not self._fs(src).rename(self._path(src), self._path(dst)):
            raise OSError(f"could not rename {src} to {dst}")

    def write_text(self, path: str, text: str) -> None:
        """Write a small file atomically: a temp file beside it, then renamed over it in one
        step. A delete, then a rename, left no file at all to a job killed between them."""
        fs = self._fs(path)
        if fs.getScheme() == "file":  # os.replace: Hadoop's local rename deletes, then moves
            target = Path(str(fs.makeQualified(self._path(path)).toUri().getPath()))
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(f"{target.name}.{uuid.uuid4().hex}.tmp")
            tmp.write_text(text, encoding="utf-8")
            # Hadoop's checksum of the old content would fail the new one; without one,
            # Hadoop reads the file unchecked
            target.with_name(f".{target.name}.crc").unlink(missing_ok=True)
            os.replace(tmp, target)
            return
        tmp = f"{path}.{uuid.uuid4().hex}.tmp"
        stream = fs.create(self._path(tmp), True)
        try:
            stream.write(bytearray(text.encode("utf-8")))
        finally:
            stream.close()
        hadoop = self._jvm.org.apache.hadoop.fs  # HDFS renames over a file in one step
        options = self._gateway.new_array(hadoop.Options.Rename, 1)
        options[0] = hadoop.Options.Rename.OVERWRITE
        target = self._path(path)
        context = hadoop.FileContext.getFileContext(target.toUri(), self._conf)
        context.rename(self._path(tmp), target, options)

    def read_text(self, path: str) -> str:
        stream = self._fs(path).open(self._path(path))
        reader = self._jvm.java.io.BufferedReader(
            self._jvm.java.io.InputStreamReader(stream, "UTF-8")
        )
        try:
            lines = []
            line = reader.readLine()
            while line is not None:
                lines.append(line)
                line = reader.readLine()
            return "\n".join(lines)
        finally:
            reader.close()

    def write_json(self, path: str, data: Any) -> None:
        self.write_text(path, json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")

    def read_json(self, path: str) -> Any:
        return json.loads(self.read_text(path))
