"""Models shipped with spark-submit --files / --archives, named as executors see them."""

import pytest

from curation import shipped
from curation.filters.language import LanguageConfig, LanguageFilter, bundled_model
from curation.shipped import ShippedFiles, locate
from refinery.config import ConfigError


@pytest.fixture
def ships():
    """Register what a session ships, as the jobs do; forgotten after the test."""
    yield shipped.register
    shipped.register(ShippedFiles())


def test_names_come_from_every_files_and_archives_key_with_their_aliases():
    found = ShippedFiles.from_conf(
        {
            "spark.files": "file:/models/lid.bin, hdfs://nn/m/q.bin#quality.bin",
            "spark.yarn.dist.files": "/a/b/other.ftz",
            "spark.yarn.dist.archives": "s3a://bucket/quality.zip#quality",
            "spark.archives": "/x/venv.tar.gz",
        }
    )
    assert found.files == {
        "lid.bin": "file:/models/lid.bin",
        "quality.bin": "hdfs://nn/m/q.bin",
        "other.ftz": "/a/b/other.ftz",
    }
    assert found.archives == {
        "quality": "s3a://bucket/quality.zip",
        "venv.tar.gz": "/x/venv.tar.gz",
    }


def test_a_shipped_name_stays_a_name_for_tasks_and_the_driver_checks_the_file_given(
    ships, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)  # the driver's working folder: no lid.bin here
    source = tmp_path / "models" / "lid.bin"
    ships(ShippedFiles(files={"lid.bin": f"file:{source}", "q.bin": "hdfs://nn/q.bin"}))
    assert locate("lid.bin") == shipped.ModelFile(source, "lid.bin")
    assert locate("./lid.bin") == shipped.ModelFile(source, "lid.bin")
    assert locate("q.bin") == shipped.ModelFile(None, "q.bin")  # Spark fetches it; not here
    # cluster deploy mode: the driver's working folder holds its own copy
    (tmp_path / "lid.bin").write_text("x")
    assert locate("lid.bin") == shipped.ModelFile(tmp_path / "lid.bin", "lid.bin")


def test_a_path_inside_a_shipped_archive_is_left_to_the_tasks(ships, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ships(ShippedFiles(archives={"quality": "/x/quality.zip"}))
    assert locate("quality/model") == shipped.ModelFile(None, "quality/model")


def test_any_other_path_is_absolute_for_tasks(tmp_path, monkeypatch):
    """Tasks run in another working folder (local mode: the driver's own, but a cluster's
    executors elsewhere): a relative path that exists here reaches them absolute."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "lid.bin").write_text("x")
    assert locate("lid.bin") == shipped.ModelFile(tmp_path / "lid.bin", str(tmp_path / "lid.bin"))


def test_the_language_filter_checks_the_shipped_file_and_tasks_open_the_name(
    ships, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    source = tmp_path / "models" / "lid.ftz"
    source.parent.mkdir()
    source.write_bytes(bundled_model().read_bytes())
    ships(ShippedFiles(files={"langid.ftz": str(source)}))
    step = LanguageFilter(LanguageConfig(model="langid.ftz"))
    assert step.model_path == "langid.ftz"
    ships(ShippedFiles(files={"langid.ftz": str(tmp_path / "missing.ftz")}))
    with pytest.raises(ConfigError, match="no model file at .*missing.ftz"):
        LanguageFilter(LanguageConfig(model="langid.ftz"))
    ships(ShippedFiles(archives={"models": "/x/models.zip"}))
    assert LanguageFilter(LanguageConfig(model="models/lid.ftz")).model_path == "models/lid.ftz"
