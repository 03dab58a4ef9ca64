import gzip
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curation.inputs import InputError, resolve_inputs


@pytest.fixture
def crawl_dir(tmp_path: Path) -> Path:
    for name in ("b.warc.gz", "a.warc", "c.arc.gz", "d.warc.wet.gz", "notes.txt"):
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "e.warc.gz").write_bytes(b"x")
    return tmp_path


def test_directory_is_searched_recursively_and_sorted(crawl_dir: Path):
    names = [
        Path(p).relative_to(crawl_dir).as_posix() for p in resolve_inputs([str(crawl_dir)], "")
    ]
    assert names == ["a.warc", "b.warc.gz", "c.arc.gz", "d.warc.wet.gz", "sub/e.warc.gz"]


def test_directory_says_on_stderr_which_files_it_skipped(crawl_dir: Path, capsys):
    for name in ("x.warc.gz.bad", "y.warc.gz.tmp"):
        (crawl_dir / name).write_bytes(b"x")
    assert len(resolve_inputs([str(crawl_dir)], "")) == 5  # still skipped
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "skipped 3 file(s)" in err and "notes.txt, x.warc.gz.bad and 1 more" in err


def test_a_glob_takes_the_archives_it_matches_and_says_what_it_skipped(crawl_dir: Path, capsys):
    """`crawl/*` as a directory is read: notes.txt is not an input record with an error."""
    found = resolve_inputs([str(crawl_dir / "*")], "")
    assert [Path(p).name for p in found] == ["a.warc", "b.warc.gz", "c.arc.gz", "d.warc.wet.gz"]
    err = capsys.readouterr().err
    assert f"input glob '{crawl_dir}/*': skipped 1 file(s)" in err and "notes.txt" in err
    with pytest.raises(InputError, match=r"input glob .*\*\.txt' holds no \.warc"):
        resolve_inputs([str(crawl_dir / "*.txt")], "")


def test_a_link_to_a_missing_archive_is_refused_not_left_out(crawl_dir: Path):
    (crawl_dir / "sub" / "gone.warc.gz").symlink_to(crawl_dir / "nothere.warc.gz")
    (crawl_dir / "stale.txt").symlink_to(crawl_dir / "nothere.txt")  # no archive: not input
    for spec in (str(crawl_dir), str(crawl_dir / "sub" / "*")):
        with pytest.raises(InputError, match=r"sub/gone.warc.gz is a link to a missing file"):
            resolve_inputs([spec], "")
    (crawl_dir / "sub" / "gone.warc.gz").unlink()
    assert len(resolve_inputs([str(crawl_dir)], "")) == 5


def test_file_uris_name_the_same_inputs_as_paths(crawl_dir: Path):
    """As every later stage takes them (and as Hadoop writes them, file:/x)."""
    plain = resolve_inputs([str(crawl_dir)], "")
    assert resolve_inputs([f"file://{crawl_dir}/"], "") == plain
    assert resolve_inputs([f"file:{crawl_dir}/*.arc.gz"], "") == [str(crawl_dir / "c.arc.gz")]
    listing = crawl_dir / "list.txt"
    listing.write_text(f"file://{crawl_dir}/a.warc\n")
    assert resolve_inputs([f"file://{listing}"], "") == [str(crawl_dir / "a.warc")]


def test_a_path_with_glob_characters_that_exists_is_that_file(tmp_path: Path):
    """`crawl [2024]/a.warc.gz` was taken as a glob ([2024] one character): "matches no file"."""
    folder = tmp_path / "crawl [2024]"
    folder.mkdir()
    (folder / "a.warc.gz").write_bytes(b"x")
    assert resolve_inputs([str(folder / "a.warc.gz")], "") == [str(folder / "a.warc.gz")]
    assert resolve_inputs([str(folder)], "") == [str(folder / "a.warc.gz")]


def test_a_missing_relative_list_entry_names_the_path_tried(crawl_dir: Path):
    listing = crawl_dir / "inputs.txt"
    listing.write_text("sub/a.warc\n")
    with pytest.raises(InputError, match=rf"relative to the list's folder: {crawl_dir}/sub/a.warc"):
        resolve_inputs([str(listing)], "")


def test_glob_single_file_and_limit(crawl_dir: Path):
    assert len(resolve_inputs([str(crawl_dir / "*.warc*")], "")) == 3
    assert resolve_inputs([str(crawl_dir / "a.warc")], "") == [str(crawl_dir / "a.warc")]
    assert len(resolve_inputs([str(crawl_dir)], "", limit=2)) == 2


def test_list_file_resolves_relative_entries(crawl_dir: Path):
    listing = crawl_dir / "inputs.txt"
    listing.write_text("# my files\na.warc\n\nsub/e.warc.gz\ns3a://commoncrawl/x.warc.gz\n")
    assert resolve_inputs([str(listing)], "") == [
        str(crawl_dir / "a.warc"),
        str(crawl_dir / "sub" / "e.warc.gz"),
        "s3a://commoncrawl/x.warc.gz",
    ]
    listing.write_bytes(b"\xef\xbb\xbfa.warc\r\n")  # saved by a Windows editor
    assert resolve_inputs([str(listing)], "") == [str(crawl_dir / "a.warc")]


def test_list_file_with_missing_entry_names_the_line(crawl_dir: Path):
    listing = crawl_dir / "inputs.txt"
    listing.write_text("a.warc\nmissing.warc.gz\n")
    with pytest.raises(InputError, match=r"inputs.txt:2: listed input not found: missing.warc.gz"):
        resolve_inputs([str(listing)], "")


def test_common_crawl_manifest_gets_prefix_and_limit(tmp_path: Path):
    manifest = tmp_path / "warc.paths.gz"
    keys = [f"crawl-data/CC-MAIN-2024-51/segments/1/warc/CC-{i}.warc.gz" for i in range(5)]
    manifest.write_bytes(gzip.compress("\n".join(keys).encode() + b"\n"))
    got = resolve_inputs([str(manifest)], "s3a://commoncrawl/", limit=2)
    assert got == [f"s3a://commoncrawl/{k}" for k in keys[:2]]
    https = resolve_inputs([str(manifest)], "https://data.commoncrawl.org")
    assert https[0] == f"https://data.commoncrawl.org/{keys[0]}"
    manifest.write_bytes(gzip.compress(keys[0].encode() + b"\ncaf\xe9.warc.gz\n"))
    with pytest.raises(
        InputError, match=r"manifest .*warc.paths.gz: line 2: byte b'\\xe9' is not UTF-8"
    ):
        resolve_inputs([str(manifest)], "s3a://commoncrawl/")


def test_a_manifest_under_a_local_prefix_lists_files_that_exist(tmp_path, monkeypatch):
    """Executors open them from their own working folder: the prefix becomes absolute, and
    a key with no file fails before Spark starts (it was an errors/ row per file)."""
    manifest = tmp_path / "warc.paths"
    manifest.write_text("crawl/a.warc.gz\ncrawl/b.warc.gz\n")
    (tmp_path / "crawl").mkdir()
    (tmp_path / "crawl" / "a.warc.gz").write_bytes(b"")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InputError, match=r"1 of the 2 input files not found .*b.warc.gz"):
        resolve_inputs([str(manifest)], "./")
    # the first file alone, as input.limit=1 takes it (the others not copied yet)
    assert resolve_inputs([str(manifest)], "./", limit=1) == [str(tmp_path / "crawl" / "a.warc.gz")]
    (tmp_path / "crawl" / "b.warc.gz").write_bytes(b"")
    assert resolve_inputs([str(manifest)], "./") == [
        str(tmp_path / "crawl" / "a.warc.gz"),
        str(tmp_path / "crawl" / "b.warc.gz"),
    ]


def test_an_unreachable_manifest_url_is_one_line_naming_it():
    import socket

    with socket.socket() as probe:  # a port nothing listens on: refused at once, offline too
        probe.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe.getsockname()[1]}/warc.paths.gz"
    with pytest.raises(InputError, match=f"cannot read input manifest {url}: .*refused"):
        resolve_inputs([url], "https://data.commoncrawl.org")


def test_duplicates_are_dropped(crawl_dir: Path):
    one = str(crawl_dir / "a.warc")
    assert resolve_inputs([one, one, str(crawl_dir / "a.*")], "") == [one]


def test_a_file_named_twice_through_a_link_is_read_once(crawl_dir: Path, tmp_path_factory):
    # a folder of links to crawl files, and a glob over the same links: one name per file
    links = tmp_path_factory.mktemp("links")
    (links / "a.warc").symlink_to(crawl_dir / "a.warc")
    files = resolve_inputs([str(links), str(links / "*.warc")], "")
    assert files == [str((crawl_dir / "a.warc").resolve())]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("missing.warc.gz", "input not found"),
        ("nothing-*.warc.gz", "matches no file"),
        ("missing.paths.gz", "input manifest not found"),
    ],
)
def test_nonexistent_inputs_fail_clearly(tmp_path: Path, spec: str, message: str):
    with pytest.raises(InputError, match=message):
        resolve_inputs([str(tmp_path / spec)], "")


def test_empty_directory_fails(tmp_path: Path):
    with pytest.raises(InputError, match="holds no .warc"):
        resolve_inputs([str(tmp_path)], "")


def test_binary_non_archive_file_fails(tmp_path: Path):
    blob = tmp_path / "image.png"
    blob.write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe")
    with pytest.raises(InputError, match="neither a WARC"):
        resolve_inputs([str(blob)], "")


def test_documents_inputs_must_exist_locally(tmp_path):
    from curation.inputs import resolve_documents

    (tmp_path / "docs").mkdir()
    pq.write_table(pa.table({"id": ["a"]}), tmp_path / "docs" / "part-0.parquet")
    remote = ["s3a://b/run/extract", "hdfs://namenode:8020/run/extract"]  # Hadoop's to find
    assert resolve_documents([str(tmp_path / "docs"), *remote]) == [str(tmp_path / "docs")] + remote
    assert resolve_documents([f"file://{tmp_path}/docs"]) == [str(tmp_path / "docs")]
    with pytest.raises(InputError, match="documents input not found: .*nope"):
        resolve_documents([str(tmp_path / "nope")])
    with pytest.raises(InputError, match="documents input not found: file://.*nope"):
        resolve_documents([f"file://{tmp_path}/nope"])


def test_an_existing_documents_folder_with_glob_characters_is_read_as_named(spark, tmp_path):
    """`docs [v2]` was "not found" (a glob matching nothing), and Spark globs every path."""
    from curation.inputs import resolve_documents
    from curation.spark.stage import METADATA_PROBES, read_documents

    folder = tmp_path / "docs [v2]"
    folder.mkdir()
    from datetime import datetime

    rows = [{"id": "a", "url": "https://x.example/", "host": "x.example", "text": "t"}]
    rows[0] |= {"source": "s.warc.gz", "record_id": "r", "fetch_time": datetime(2024, 1, 1)}
    pq.write_table(pa.Table.from_pylist(rows), folder / "part-0.parquet")
    (inputs,) = resolve_documents([str(folder)])
    assert inputs == str(folder)  # as named, for run.json and the files beside it
    assert read_documents(spark, [inputs], footers=False).count() == 1  # escaped for Spark
    # without its Java stack trace: Spark's metadata probe warned of the escaped path
    probe = spark._jvm.org.apache.logging.log4j.LogManager.getLogger(METADATA_PROBES[-1])
    assert str(probe.getLevel()) == "ERROR"
    assert resolve_documents([str(tmp_path / "docs*")]) == [str(tmp_path / "docs*")]  # a glob
    log4j = spark._jvm.org.apache.logging.log4j
    for name in METADATA_PROBES:  # as a new session has them
        log4j.core.config.Configurator.setLevel(name, log4j.Level.WARN)
    glob = str(tmp_path / "docs*" / "*.parquet")
    assert read_documents(spark, [glob], footers=False).count() == 1  # warned of it, too
    assert str(probe.getLevel()) == "ERROR"


def test_only_a_uri_s_path_is_escaped_for_spark_never_its_authority():
    from curation.spark.stage import _as_named

    class Exists:
        def exists(self, path):
            return True

    assert _as_named(Exists(), "hdfs://[fe80::1]:8020/docs") == "hdfs://[fe80::1]:8020/docs"
    assert _as_named(Exists(), "s3a://b/run [v2]/mix") == "s3a://b/run \\[v2\\]/mix"
    assert _as_named(Exists(), "/data/run{1}") == "/data/run\\{1\\}"
    assert _as_named(Exists(), "file:///data/x") == "file:///data/x"


def test_a_documents_input_without_parquet_is_named_before_spark_starts(crawl_dir, tmp_path):
    from curation.inputs import resolve_documents

    with pytest.raises(InputError, match=r"holds no Parquet file \(WARC files: `refinery extract`"):
        resolve_documents([str(crawl_dir)])
    with pytest.raises(InputError, match=r"notes.txt holds no Parquet file$"):
        resolve_documents([str(crawl_dir / "notes.txt")])
    tokens = tmp_path / "tokens"
    tokens.mkdir()
    (tokens / "manifest.json").write_text("{}")
    with pytest.raises(InputError, match=r"\(a tokens folder: the trainer's data="):
        resolve_documents([str(tokens)])
