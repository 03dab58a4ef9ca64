"""`refinery report`: the aggregation as plain functions, and the page checked by parsing it."""

from __future__ import annotations

import json
import math
import os
import shutil
from html.parser import HTMLParser
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from refinery.report.aggregate import (
    ReportError,
    cluster_sizes,
    excerpt,
    funnel_warnings,
    histogram,
    json_tables,
    metric_panels,
    metric_series,
    ordered_stages,
    pick_samples,
    stage_funnel,
)
from refinery.report.command import build_report, main

SECTIONS = ("run", "funnel", "histograms", "mixture", "samples", "training", "eval")
HISTOGRAMS = ("hist-length", "hist-quality", "hist-lang", "hist-pii", "hist-clusters")
INJECTION = '<script>alert("x")</script></pre><img src=x onerror=alert(1)>'

# ---- aggregation -------------------------------------------------------------------------


def test_stage_funnel_checks_the_accounting():
    stats = {"input": 10, "kept": 6, "rejected": {"lang": 1, "a": 2}, "errors": 1, "tokens": 50}
    funnel = stage_funnel("filter", stats, "stats/filter.json")
    assert (funnel.input, funnel.kept, funnel.errors, funnel.tokens) == (10, 6, 1, 50)
    assert list(funnel.rejected) == ["a", "lang"]
    with pytest.raises(ReportError, match=r"stats/filter.json: input 11 != .* = 10"):
        stage_funnel("filter", {**stats, "input": 11}, "stats/filter.json")
    with pytest.raises(ReportError, match=r"stats/x.json: key 'kept' is missing"):
        stage_funnel("x", {"input": 1, "rejected": {}, "errors": 0}, "stats/x.json")
    with pytest.raises(ReportError, match=r"key 'rejected.lang' must be a count"):
        stage_funnel("x", {**stats, "rejected": {"lang": "3"}}, "stats/x.json")


def test_ordered_stages_follow_the_pipeline_then_names():
    found = ["tokenize", "extract", "zeta", "alpha", "filter"]
    assert ordered_stages(found, ["extract", "filter", "dedup", "tokenize"]) == [
        "extract",
        "filter",
        "tokenize",
        "alpha",
        "zeta",
    ]


def test_funnel_warnings_name_stages_that_do_not_follow_on():
    def funnel(stage, given, kept):
        return stage_funnel(stage, {"input": given, "kept": kept, "rejected": {"x": given - kept},
                                    "errors": 0}, stage)  # fmt: skip

    funnels = [funnel("filter", 10, 8), funnel("dedup", 8, 6), funnel("classify", 7, 5)]
    warnings = funnel_warnings(funnels, {"filter": True, "dedup": False, "classify": True}, {}, {})
    assert warnings[0].startswith("stats/dedup.json has no finished dedup output")
    assert warnings[1].startswith("classify read 7 documents where dedup kept 6")
    assert len(warnings) == 2
    assert funnel_warnings(funnels[:2], {}, {}, {}) == []
    # a stage run alone compares with what it read (run.json's `read`), not the one before
    assert funnel_warnings(funnels, {}, {}, {"classify": ["filter"]})[0].startswith(
        "classify read 7 documents where filter kept 8"
    )
    # filter redone alone after dedup, keeping as many: only run.json's times tell
    times = {"filter": "2026-12-06T23:09:14+00:00", "dedup": "2026-12-06T22:55:31+00:00"}
    assert funnel_warnings(funnels[:2], {}, times, {}) == [
        "filter finished (2026-12-06T23:09:14+00:00) after dedup (2026-12-06T22:55:31+00:00): "
        "dedup and the stages after it read an earlier filter output; `refinery curate` redoes "
        "every stage after one that ran again"
    ]


def test_histogram_shares_edges_and_counts_every_value():
    hist = histogram({"a": [0.0, 0.5, 1.0, None], "b": [2.0, math.nan]}, bins=4, integer=False)
    assert hist.edges == [0.0, 0.5, 1.0, 1.5, 2.0]
    assert hist.counts == {"a": [1, 1, 1, 0], "b": [0, 0, 0, 1]}


def test_integer_histogram_centres_bins_on_whole_numbers():
    hist = histogram({"pii": [0, 0, 1, 3]}, bins=30, integer=True)
    assert hist.edges == [-0.5, 0.5, 1.5, 2.5, 3.5]
    assert hist.counts["pii"] == [2, 1, 0, 1]
    wide = histogram({"n": list(range(100))}, bins=10, integer=True)
    widths = {b - a for a, b in zip(wide.edges, wide.edges[1:], strict=False)}
    assert widths == {10.0} and sum(wide.counts["n"]) == 100


def test_histogram_of_nothing_and_of_one_value():
    assert histogram({"a": [], "b": [None]}, bins=5, integer=False).counts == {}
    single = histogram({"a": [0.7, 0.7]}, bins=2, integer=False)
    assert single.edges[0] < 0.7 < single.edges[-1] and sum(single.counts["a"]) == 2


def test_cluster_sizes_count_documents_per_cluster():
    assert cluster_sizes(["a", "b", "a", None, "c", "a", "b"]) == [1, 2, 3]


def test_pick_samples_is_seeded_and_capped_per_group():
    groups = ["x"] * 50 + ["y"] * 2 + ["z"]
    picked = pick_samples(groups, per_group=3, seed=1)
    assert picked == pick_samples(groups, per_group=3, seed=1)
    assert [groups[i] for i in picked] == ["x"] * 3 + ["y"] * 2 + ["z"]
    draws = {tuple(pick_samples(groups, per_group=3, seed=s)[:3]) for s in range(5)}
    assert len(draws) > 1


def test_excerpt_cuts_and_marks():
    assert excerpt("short", 10) == "short"
    assert excerpt("a" * 20, 10) == "a" * 10 + " …"
    assert excerpt(None, 10) == ""


def test_metric_series_and_panels():
    records = [
        {"step": 1, "loss": 3.0, "lr": 0.1, "note": "warmup", "flag": True},
        {"step": 2, "loss": 2.0, "val_loss": 2.5, "val_bpb": 1.2, "reward": 0.3},
        {"loss": 1.5},
    ]
    series = metric_series(records)
    assert list(series) == ["loss", "lr", "val_loss", "val_bpb", "reward"]
    assert series["loss"] == ([1, 2, 3], [3.0, 2.0, 1.5])  # no step: its line number
    panels = metric_panels(list(series))
    assert panels == [["loss", "val_loss"], ["val_bpb"], ["lr"], ["reward"]]


def test_json_tables_render_eval_results():
    results = {
        "model": "ckpt-20",
        "mc": {"arc": {"n": 10, "acc": 0.3}, "hellaswag": {"n": 20, "acc_norm": 0.4}},
        "bpb": {"wiki.txt": 1.7},
        "extra": {"deep": {"deeper": {"x": 1}}},
    }
    tables = json_tables(results, "eval")
    assert tables[0] == ("eval", ["key", "value"], [["model", "ckpt-20"]])
    by_caption = {caption: (head, rows) for caption, head, rows in tables}
    assert by_caption["eval.mc"] == (
        ["", "n", "acc", "acc_norm"],
        [["arc", 10, 0.3, None], ["hellaswag", 20, None, 0.4]],
    )
    assert by_caption["eval.bpb"] == (["key", "value"], [["wiki.txt", 1.7]])
    assert by_caption["eval.extra.deep"] == (["", "x"], [["deeper", 1]])


# ---- the page, parsed --------------------------------------------------------------------


class Page(HTMLParser):
    """What a test needs to know of the page: ids, tags, images, table cells, text."""

    def __init__(self, source: str):
        super().__init__()
        self.ids: set[str] = set()
        self.tags: list[tuple[str, dict]] = []
        self.sections: dict[str, str] = {}  # section id -> its text
        self.tables: list[list[list[str]]] = []
        self.docs: list[str] = []
        self._section: str | None = None
        self._cell: list[str] | None = None
        self._pre = False
        self.feed(source)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append((tag, attrs))
        if "id" in attrs:
            self.ids.add(attrs["id"])
        if tag == "section":
            self._section = attrs["id"]
            self.sections[self._section] = ""
        elif tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "pre":
            self._pre = True
            self.docs.append("")

    def handle_endtag(self, tag):
        if tag in ("td", "th"):
            self.tables[-1][-1].append("".join(self._cell))
            self._cell = None
        elif tag == "pre":
            self._pre = False

    def handle_data(self, data):
        if self._section:
            self.sections[self._section] += data
        if self._cell is not None:
            self._cell.append(data)
        if self._pre:
            self.docs[-1] += data

    def funnel_rows(self) -> dict[str, list[str]]:
        """First-column label -> row, of the table whose head starts with 'stage / reason'."""
        table = next(t for t in self.tables if t and t[0][:1] == ["stage / reason"])
        return {row[0]: row for row in table[1:]}


def number(cell: str) -> int:
    return int(cell.replace(",", ""))


def write_parquet(folder: Path, columns: dict[str, list]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(columns), folder / "part-00000.parquet")


def documents(prefix: str, n: int, **extra: list) -> dict[str, list]:
    texts = [f"Document {prefix}{i}. " + "words " * (20 * (i + 1)) for i in range(n)]
    return {
        "id": [f"{prefix}{i}" for i in range(n)],
        "url": [f"https://example.test/{prefix}/{i}" for i in range(n)],
        "text": texts,
        **extra,
    }


STATS = {
    "extract": {"input": 10, "kept": 6, "rejected": {"non_html": 3}, "errors": 1},
    "filter": {"input": 6, "kept": 4, "rejected": {"blocklist:adult": 1, "lang": 1}, "errors": 0},
    "dedup": {"input": 4, "kept": 3, "rejected": {"near_duplicate": 1}, "errors": 0},
    "classify": {"input": 3, "kept": 2, "rejected": {"quality:threshold": 1}, "errors": 0},
    "mix": {"input": 2, "kept": 2, "rejected": {}, "errors": 0},
    "tokenize": {"input": 2, "kept": 2, "rejected": {}, "errors": 0, "tokens": 1234},
}


@pytest.fixture(scope="module")
def small_run(tmp_path_factory) -> Path:
    """A run folder with every input the report reads: each curation stage's stats, kept,
    rejected and errors Parquet (as the stages lay them out), the mixture, the manifest, a
    pretraining and a DPO metrics.jsonl and an eval JSON. One rejected page holds markup."""
    out = tmp_path_factory.mktemp("report") / "run"
    out.mkdir()
    (out / "stats").mkdir()
    for stage, stats in STATS.items():
        (out / "stats" / f"{stage}.json").write_text(json.dumps({**stats, "seconds": 1.5}))
    pipeline = list(STATS)
    stages = {
        s: {"input": v["input"], "kept": v["kept"], "errors": v["errors"]} for s, v in STATS.items()
    }
    run = {"config": {"pipeline": {"stages": pipeline}}, "version": "0.1.0", "stages": stages}
    (out / "run.json").write_text(json.dumps(run))
    filtered = {"lang": ["en"] * 4, "lang_score": [0.9, 0.8, 0.95, 0.7], "pii_count": [0, 2, 0, 1]}
    write_parquet(out / "extract", documents("e", 6))
    write_parquet(out / "rejected/stage=extract", {**documents("r", 3), "reason": ["non_html"] * 3})
    write_parquet(
        out / "errors/stage=extract", {"source": ["a.warc.gz"], "offset": [7], "error": ["<b>bad"]}
    )
    write_parquet(out / "filter", documents("f", 4, **filtered))
    write_parquet(
        out / "rejected/stage=filter",
        {
            **documents("x", 2),
            "text": [INJECTION, "Ein deutscher Text."],
            "lang": [None, "de"],
            "lang_score": [None, 0.99],
            "reason": ["blocklist:adult", "lang"],
        },
    )
    clusters = {**filtered, "lang": ["en"] * 3, "cluster_id": ["f0", "f1", "f2"]}
    clusters = {k: v[:3] for k, v in clusters.items()}
    write_parquet(out / "dedup", documents("f", 3, **clusters))
    write_parquet(
        out / "rejected/stage=dedup",
        {
            **documents("f3", 1),
            "cluster_id": ["f0"],
            "kept_id": ["f0"],
            "reason": ["near_duplicate"],
        },
    )
    scored = {"quality_score": [0.8, 0.6], "domain": ["news", "other"]}
    write_parquet(out / "classify", documents("f", 2, **scored))
    write_parquet(
        out / "rejected/stage=classify",
        {**documents("f2", 1), "quality_score": [0.1], "reason": ["quality:threshold"]},
    )
    write_parquet(out / "mix", documents("f", 2, **scored, bucket=["news", "other"]))
    domains = {
        "news": {"tokens": 40, "share_before": 0.4, "target": 0.5, "share_after": 0.5},
        "other": {"tokens": 60, "share_before": 0.6, "target": 0.5, "share_after": 0.5},
    }
    mixture = {
        "mixtures": {"pretrain": {"news": 0.5, "other": 0.5}},
        "buckets": {
            "news": {"documents": 1, "tokens": 40},
            "other": {"documents": 1, "tokens": 60},
        },
        "report": {"tokens_per_pass": 100, "max_epochs": 4.0, "domains": domains},
    }
    (out / "mix" / "_mixture.json").write_text(json.dumps(mixture))
    (out / "tokens").mkdir()
    split = {"tokens": 617, "documents": 1, "bytes": 2000, "shards": [{}]}
    manifest = {
        "buckets": {"news": split, "other": split},
        "validation": {"tokens": 0, "documents": 0, "bytes": 0, "shards": []},
        "mixtures": {"pretrain": {"news": 0.5, "other": 0.5}},
        "mixtures_note": "planned by the mix stage's settings (mix/_mixture.json) on counted",
    }
    (out / "tokens" / "manifest.json").write_text(json.dumps(manifest))
    for stage in ("extract", "filter", "dedup", "classify", "mix", "tokens"):
        (out / stage / "_SUCCESS").touch()  # each stage committed
    for name, keys in (("train", ("loss", "lr")), ("dpo", ("loss", "reward_margin", "accuracy"))):
        (out / name).mkdir()
        lines = [{"step": s, **{k: 1.0 / s for k in keys}} for s in range(1, 6)]
        lines[-1]["val_loss"] = 0.3
        (out / name / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    (out / "eval").mkdir()
    results = {"mc": {"arc_easy": {"n": 40, "acc": 0.35, "acc_norm": 0.4, "acc_stderr": 0.07}}}
    (out / "eval" / "ckpt-5.json").write_text(json.dumps({**results, "bpb": {"wiki": 1.9}}))
    # `refinery judge --a CKPT --out eval/judge.json` writes the answers it sampled beside it
    (out / "eval" / "judge.json").write_text(json.dumps({"win_rate": 0.5}))
    answer = {"generator": "ckpt-5", "instruction": "Name a colour.", "output": "Blue-green."}
    (out / "eval" / "judge.a.json").write_text(json.dumps([answer] * 3))
    return out


@pytest.fixture(scope="module")
def small_report(small_run) -> tuple[Path, Page]:
    path = build_report(small_run)
    return path, Page(path.read_text(encoding="utf-8"))


def test_every_section_renders(small_report):
    path, page = small_report
    assert path.name == "report.html" and path.parent.name == "run"
    assert set(SECTIONS) <= page.ids and set(HISTOGRAMS) <= page.ids
    for section in SECTIONS:
        assert "Not present" not in page.sections[section], section
    assert {"training-train", "training-dpo"} <= page.ids


def test_funnel_numbers_equal_the_stats(small_report):
    _, page = small_report
    rows = page.funnel_rows()
    for stage, stats in STATS.items():
        _, given, kept, rejected, errors, tokens, _ = rows[stage]
        assert number(given) == stats["input"]
        assert number(kept) == stats["kept"]
        assert number(rejected) == sum(stats["rejected"].values())
        assert number(errors) == stats["errors"]
        assert number(given) == number(kept) + number(rejected) + number(errors)
        if "tokens" in stats:
            assert number(tokens) == stats["tokens"]
        for reason, n in stats["rejected"].items():
            assert number(rows[reason][3]) == n


def test_page_is_self_contained_with_inline_images(small_report):
    _, page = small_report
    images = [attrs for tag, attrs in page.tags if tag == "img"]
    # funnel, 5 histograms, mixture shares, 2 training folders
    assert len(images) == 9
    assert all(a["src"].startswith("data:image/png;base64,") for a in images)
    links = [v for _, attrs in page.tags for k, v in attrs.items() if k in ("src", "href")]
    assert not [v for v in links if not v.startswith("data:")]


def test_document_text_is_escaped_never_markup(small_report):
    path, page = small_report
    assert not [tag for tag, _ in page.tags if tag == "script"]
    assert [tag for tag, attrs in page.tags if attrs.get("src") == "x"] == []
    assert INJECTION in page.docs  # shown whole, as text
    assert "<b>bad" in page.sections["samples"]  # error messages too
    assert "&lt;script&gt;" in path.read_text(encoding="utf-8")


def test_samples_show_every_rejection_reason(small_report):
    _, page = small_report
    samples = page.sections["samples"]
    for stage, stats in STATS.items():
        for reason in stats["rejected"]:
            assert reason in samples, (stage, reason)
    assert "https://example.test/f/0" in samples or "https://example.test/f/1" in samples


def test_sampled_errors_and_estimated_tokens_say_so(small_report, small_run, monkeypatch):
    """An errors table of 5 rows stood for 8 errors without a word; the mix stage's token
    estimates sat beside the manifest's counts unlabelled; a histogram legend counted only
    the rejected documents that had the column (17 of 75 had none, rejected earlier)."""
    from refinery.report import charts, sections
    from refinery.report.runfolder import RunFolder

    _, page = small_report
    assert (
        "errors shown, seed 0: extract: 1 of 1 (every one is in OUT/errors/"
        in (page.sections["samples"])
    )
    assert "_mixture.json is the mix stage's plan, on estimated tokens" in page.sections["mixture"]
    assert (
        "mixtures: planned by the mix stage's settings (mix/_mixture.json) on counted"
        in (page.sections["mixture"])
    )
    labels = []
    drawn = charts.histogram_chart
    monkeypatch.setattr(
        charts,
        "histogram_chart",
        lambda hist, *a, **k: labels.extend(hist.counts) or drawn(hist, *a, **k),
    )
    sections.histograms_section(RunFolder(small_run))
    assert "filter: rejected with a lang_score" in labels  # one of the two has none
    assert "classify: rejected" in labels  # every one scored: the plain label


def test_mixture_training_and_eval_tables(small_report):
    _, page = small_report
    assert "share_before" in page.sections["mixture"]
    assert "tokens_per_pass" in page.sections["mixture"]
    assert "reward_margin" in page.sections["training"]
    eval_rows = {row[0]: row for table in page.tables for row in table}
    assert eval_rows["arc_easy"][1:] == ["40", "0.35", "0.4", "0.07"]
    assert eval_rows["wiki"] == ["wiki", "1.9"]
    assert eval_rows["win_rate"] == ["win_rate", "0.5"]
    # the answers are named, not tabled as a result (they were: every text in one cell)
    assert "judge.a.json: 3 answers sampled for the judge" in page.sections["eval"]
    assert "Blue-green" not in page.sections["eval"]


def test_cli_rewrites_the_same_report_and_prints_its_path_last(small_run, small_report, capsys):
    first = small_report[0].read_bytes()
    assert main([str(small_run)]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == str(small_run / "report.html")
    assert (small_run / "report.html").read_bytes() == first  # deterministic


def test_folder_names_are_escaped_too(tmp_path):
    folder = tmp_path / '"><script>x'
    folder.mkdir()
    (folder / "metrics.jsonl").write_text('{"step": 1, "loss": 2.0}\n')
    page = Page(build_report(tmp_path).read_text(encoding="utf-8"))
    assert not [tag for tag, _ in page.tags if tag == "script"]
    assert 'training-"><script>x' in page.ids


def test_a_funnel_that_does_not_add_up_across_stages_is_flagged(small_run, tmp_path):
    """`refinery filter --force` alone redoes filter; dedup still holds what it read before.
    A stage killed while committing leaves stats without its _SUCCESS."""
    run = shutil.copytree(small_run, tmp_path / "run")
    redone = {"input": 6, "kept": 3, "rejected": {"blocklist:adult": 1, "lang": 2}, "errors": 0}
    (run / "stats" / "filter.json").write_text(json.dumps(redone))
    (run / "classify" / "_SUCCESS").unlink()
    funnel = Page(build_report(run).read_text(encoding="utf-8")).sections["funnel"]
    assert "Warning: dedup read 4 documents where filter kept 3" in funnel
    assert "Warning: stats/classify.json has no finished classify output" in funnel
    assert "Warning" not in Page(build_report(small_run).read_text()).sections["funnel"]


def test_without_run_json_stages_keep_the_standard_order(small_run, tmp_path):
    run = shutil.copytree(small_run, tmp_path / "run")
    (run / "run.json").unlink()
    page = Page(build_report(run).read_text(encoding="utf-8"))
    assert list(page.funnel_rows())[:3] == ["extract", "non_html", "filter"]
    assert "dedup: 3 clusters over 4 documents" in page.sections["histograms"]  # not classify


def test_metric_names_with_dollar_signs_are_drawn_as_written(small_run, tmp_path):
    run = shutil.copytree(small_run, tmp_path / "run")
    with open(run / "train" / "metrics.jsonl", "a") as metrics:
        metrics.write(json.dumps({"step": 6, "x$\\foo$": 1.0}) + "\n")  # not math matplotlib parses
    page = Page(build_report(run).read_text(encoding="utf-8"))
    assert "x$\\foo$" in page.sections["training"]


def test_a_run_before_its_stages_says_what_is_not_present(tmp_path):
    (tmp_path / "stats").mkdir()
    page = Page(build_report(tmp_path).read_text(encoding="utf-8"))
    assert set(SECTIONS) <= page.ids
    for section in SECTIONS:
        assert "Not present" in page.sections[section], section
    assert not [tag for tag, _ in page.tags if tag == "img"]


def test_extract_only_run(extract_run, tmp_path):
    """The real extract stage's output: its funnel, lengths and samples; no later sections."""
    source, stats = extract_run
    out = tmp_path / "run"
    # other tests' stages share the fixture's run folder: copy the extract stage's part only
    later = ("filter", "dedup", "classify", "mix", "tokenize")
    skip = {*later, *(f"stage={s}" for s in later), *(f"{s}.json" for s in later)}
    shutil.copytree(source, out, ignore=lambda _, names: [n for n in names if n in skip])
    page = Page(build_report(out).read_text(encoding="utf-8"))
    _, given, kept, rejected, errors, *_ = page.funnel_rows()["extract"]
    assert [number(given), number(kept), number(errors)] == [
        stats["input"],
        stats["kept"],
        stats["errors"],
    ]
    assert number(rejected) == sum(stats["rejected"].values())
    assert "hist-length" in page.ids
    assert "Not present" in page.sections["training"]
    assert "no stage wrote a `quality_score` column" in page.sections["histograms"]
    assert len(page.docs) == 5 + len(stats["rejected"])


def test_bad_inputs_are_named(tmp_path):
    with pytest.raises(ReportError, match="no such directory"):
        build_report(tmp_path / "missing")
    with pytest.raises(ReportError, match=r"not a run folder \(no run.json, stats/ or stage"):
        build_report(tmp_path)  # empty: no report of nothing written into it
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "metrics.jsonl").write_text('{"step": 1, "loss": 2}\n')
    with pytest.raises(ReportError, match=f"a training run, .*: refinery report {tmp_path}$"):
        build_report(tmp_path / "train")
    shutil.rmtree(tmp_path / "train")
    tokens = tmp_path / "tokens"
    (tokens / "anneal").mkdir(parents=True)  # a bucket named like a training folder
    (tokens / "manifest.json").write_text("{}")
    with pytest.raises(ReportError, match=f"token shards, .*: refinery report {tmp_path}$"):
        build_report(tokens)
    shutil.rmtree(tokens)
    (tmp_path / "stats").mkdir()
    bad = {"input": 5, "kept": 1, "rejected": {"lang": 1}, "errors": 0}
    (tmp_path / "stats" / "filter.json").write_text(json.dumps(bad))
    with pytest.raises(ReportError, match=r"filter.json: input 5 != kept \+ rejected"):
        build_report(tmp_path)
    (tmp_path / "stats" / "filter.json").write_text("{")
    with pytest.raises(ReportError, match="filter.json: not valid JSON"):
        build_report(tmp_path)
    (tmp_path / "stats" / "filter.json").unlink()
    (tmp_path / "run.json").write_text("[]")
    with pytest.raises(ReportError, match="run.json: must be a JSON object"):
        build_report(tmp_path)
    (tmp_path / "run.json").unlink()
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "metrics.jsonl").write_text('{"step": 1, "loss": 2}\n{"step": 2,\n')
    with pytest.raises(ReportError, match=r"metrics.jsonl: line 2, column 12: not valid JSON"):
        build_report(tmp_path)
    assert not (tmp_path / "report.html").exists()


def test_a_stage_that_kept_nothing_says_so_instead_of_an_empty_chart(tmp_path):
    (tmp_path / "stats").mkdir()
    stats = {"input": 2, "kept": 0, "rejected": {"lang": 2}, "errors": 0}
    (tmp_path / "stats" / "filter.json").write_text(json.dumps(stats))
    (tmp_path / "filter").mkdir()
    empty = pa.table({"id": pa.array([], pa.string()), "text": pa.array([], pa.string())})
    pq.write_table(empty, tmp_path / "filter" / "part-00000.parquet")
    page = Page(build_report(tmp_path).read_text(encoding="utf-8"))
    assert "Not present: document length: no values" in page.sections["histograms"]


@pytest.mark.parametrize(
    ("path", "content", "reads"),
    [
        ("run.json", {"stages": ["extract"]}, "run.json"),
        ("mix/_mixture.json", {"report": {"domains": ["news"]}}, "mix/_mixture.json"),
    ],
)
def test_a_file_of_another_shape_is_named_not_a_traceback(tmp_path, path, content, reads):
    (tmp_path / "stats").mkdir()
    (tmp_path / path).parent.mkdir(exist_ok=True)
    (tmp_path / path).write_text(json.dumps(content))
    with pytest.raises(ReportError, match=f"{reads}.* holds something of another shape"):
        build_report(tmp_path)


def test_a_metrics_line_cut_short_by_a_kill_is_left_out(tmp_path):
    from refinery.report.runfolder import read_metrics

    path = tmp_path / "metrics.jsonl"
    path.write_text('{"step": 1, "loss": 2}\n{"step": 2, "lo')  # no newline: being written
    assert read_metrics(path) == [{"step": 1, "loss": 2}]
    path.write_text('{"step": 1, "loss": 2}\n{"step": 2, "loss": 1.5}')  # whole, no newline
    assert [r["step"] for r in read_metrics(path)] == [1, 2]


def test_a_decontaminated_copy_reads_before_tokenize_and_carries_the_plan(tmp_path):
    """OUT2 of `refinery contamination --decontaminate OUT2`, then `refinery tokenize` on it:
    run.json lists contamination first, after the configured pipeline's tokenize; tokenize's
    `read` names it."""
    (tmp_path / "stats").mkdir()
    for stage, counts in {"contamination": (6, 5), "tokenize": (5, 5)}.items():
        stats = {"input": counts[0], "kept": counts[1], "errors": 0}
        stats["rejected"] = {"contaminated": 1} if stage == "contamination" else {}
        (tmp_path / "stats" / f"{stage}.json").write_text(json.dumps(stats))
    pipeline = {"stages": ["extract", "filter", "dedup", "classify", "mix", "tokenize"]}
    stages = {"contamination": {}, "tokenize": {"read": ["contamination"]}}
    run = {"config": {"pipeline": pipeline}, "stages": stages}
    (tmp_path / "run.json").write_text(json.dumps(run))
    for folder in ("contamination", "tokens"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "_SUCCESS").touch()
    plan = {"mixtures": {"pretrain": {"web": 1.0}}, "report": {"max_epochs": 4.0}}
    (tmp_path / "contamination" / "_mixture.json").write_text(json.dumps(plan))
    page = Page(build_report(tmp_path).read_text(encoding="utf-8"))
    assert [r for r in page.funnel_rows() if r in ("contamination", "tokenize")] == [
        "contamination",
        "tokenize",
    ]
    assert "Warning" not in page.sections["funnel"]
    assert "Mix stage (OUT/contamination/_mixture.json)" in page.sections["mixture"]


def test_a_decontaminated_copy_that_mix_read_comes_before_mix(tmp_path):
    """`contamination --decontaminate OUT` on another run's dedup, then mix and tokenize on
    OUT/contamination: run.json's `read` orders it, and nothing is flagged."""
    (tmp_path / "stats").mkdir()
    counts = {"contamination": (6, 5), "mix": (5, 5), "tokenize": (5, 5)}
    for stage, (given, kept) in counts.items():
        rejected = {"contaminated": given - kept} if given > kept else {}
        stats = {"input": given, "kept": kept, "errors": 0, "rejected": rejected}
        (tmp_path / "stats" / f"{stage}.json").write_text(json.dumps(stats))
    stages = {
        "contamination": {"finished": "2026-12-06T23:00:26+00:00"},
        "mix": {"finished": "2026-12-06T23:02:33+00:00", "read": ["contamination"]},
        "tokenize": {"finished": "2026-12-06T23:03:33+00:00", "read": ["mix"]},
    }
    (tmp_path / "run.json").write_text(json.dumps({"stages": stages}))
    for folder in ("contamination", "mix", "tokens"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "_SUCCESS").touch()
    page = Page(build_report(tmp_path).read_text(encoding="utf-8"))
    assert [r for r in page.funnel_rows() if r in counts] == ["contamination", "mix", "tokenize"]
    assert "Warning" not in page.sections["funnel"]


def test_a_decontaminated_copy_no_stage_read_is_a_branch_off_what_it_read(small_run, tmp_path):
    """`contamination --input OUT/dedup --decontaminate OUT` after curate: the copy goes
    last and is compared with dedup, not with the stage before it in the pipeline."""
    run = shutil.copytree(small_run, tmp_path / "run")
    record = json.loads((run / "run.json").read_text())
    checked = {"inputs": [str(run / "dedup")], "ngram": 13}
    record["stages"]["contamination"] = {"contamination": checked}
    (run / "run.json").write_text(json.dumps(record))
    stats = {"input": 3, "kept": 2, "rejected": {"contaminated": 1}, "errors": 0}
    (run / "stats" / "contamination.json").write_text(json.dumps(stats))
    (run / "contamination").mkdir()
    (run / "contamination" / "_SUCCESS").touch()
    page = Page(build_report(run).read_text(encoding="utf-8"))
    stages = [r for r in page.funnel_rows() if r in (*STATS, "contamination")]
    assert stages == [*STATS, "contamination"]
    assert "Warning" not in page.sections["funnel"]
    # recorded through a symlink to OUT, or before OUT was moved: never compared with tokenize
    (tmp_path / "link").symlink_to(run)
    for inputs in ([str(tmp_path / "link" / "dedup")], ["/moved/from/here/dedup"]):
        record["stages"]["contamination"]["contamination"]["inputs"] = inputs
        (run / "run.json").write_text(json.dumps(record))
        page = Page(build_report(run).read_text(encoding="utf-8"))
        assert "Warning" not in page.sections["funnel"], inputs
    # OUT/dedup a link to a bigger disk: still dedup, so dedup redone since is flagged
    (tmp_path / "big").mkdir()
    shutil.move(run / "dedup", tmp_path / "big" / "dedup")
    (run / "dedup").symlink_to(tmp_path / "big" / "dedup")
    record["stages"]["contamination"]["contamination"]["inputs"] = [str(run / "dedup")]
    record["stages"]["contamination"]["finished"] = "2026-12-06T23:00:00+00:00"
    record["stages"]["dedup"]["finished"] = "2026-12-06T23:05:00+00:00"
    (run / "run.json").write_text(json.dumps(record))
    funnel = Page(build_report(run).read_text(encoding="utf-8")).sections["funnel"]
    assert "dedup finished (2026-12-06T23:05:00+00:00) after contamination" in funnel


def test_a_damaged_parquet_part_after_the_first_is_named(small_run, tmp_path):
    run = shutil.copytree(small_run, tmp_path / "run")
    pq.write_table(pa.table(documents("g", 2)), run / "filter" / "part-00001.parquet")
    damaged = run / "filter" / "part-00001.parquet"
    damaged.write_bytes(damaged.read_bytes()[:100])
    with pytest.raises(ReportError, match=r"filter/part-00001.parquet: cannot read it as Parquet"):
        build_report(run)


def test_a_run_folder_named_in_latin_1_gets_its_report(tmp_path):
    run = tmp_path / os.fsdecode(b"caf\xe9")
    (run / "train").mkdir(parents=True)
    (run / "train" / "metrics.jsonl").write_text('{"step": 1, "loss": 2.0}\n')
    page = build_report(run).read_text(encoding="utf-8")
    assert "caf\\udce9" in page
    assert sorted(p.name for p in run.iterdir()) == ["report.html", "train"]  # no temp file


def test_a_file_or_an_ablation_folder_is_named_as_such(tmp_path):
    (tmp_path / "manifest.json").write_text("{}")
    with pytest.raises(ReportError, match=r"manifest.json: not a run folder \(a file\)"):
        build_report(tmp_path / "manifest.json")
    (tmp_path / "tokenization.json").write_text("{}")
    with pytest.raises(ReportError, match="a `refinery ablate` folder, not a run folder"):
        build_report(tmp_path)


def test_a_scaling_sweep_folder_is_named_as_such(tmp_path):
    """Its points' metrics.jsonl made it pass for a run: a report of all "Not present"."""
    (tmp_path / "p0").mkdir()
    (tmp_path / "p0" / "metrics.jsonl").write_text('{"step": 1, "loss": 2.0}\n')
    (tmp_path / "scaling.json").write_text("{}")
    with pytest.raises(ReportError, match="a `refinery scaling` folder, not a run folder"):
        build_report(tmp_path)


def test_samples_are_the_same_rows_however_spark_cut_the_parts(tmp_path):
    """Samples were drawn by row position, which follows the part files: two runs with the
    same rejected rows, written by other Spark settings, showed 25 of 33 other examples."""
    import pyarrow.dataset as ds

    from refinery.report.runfolder import rows
    from refinery.report.sections import sampled

    table = pa.table(
        {
            "id": [f"id{i:03d}" for i in range(60)],
            "reason": [("short", "lang", "pii")[i % 3] for i in range(60)],
        }
    )
    shuffled = table.take(list(range(59, -1, -1)))
    for name, parts in (
        ("one", [table]),
        ("three", [shuffled.slice(i * 20, 20) for i in range(3)]),
    ):
        (tmp_path / name).mkdir()
        for i, part in enumerate(parts):
            pq.write_table(part, tmp_path / name / f"part-{i}.parquet")
    picks = []
    for name in ("one", "three"):
        data = ds.dataset(str(tmp_path / name))
        reasons = data.to_table(columns=["reason"]).column("reason").to_pylist()
        picks.append(rows(data, sampled(data, reasons, 2, seed=0), ["id", "reason"]))
    assert picks[0] == picks[1] and len(picks[0]) == 6


def test_content_order_reads_dictionary_ids(tmp_path):
    import pyarrow.dataset as ds

    from refinery.report.runfolder import content_order

    ids = pa.array(["b", "a", None, "c"]).dictionary_encode()  # pyarrow keeps this in Parquet
    pq.write_table(pa.table({"id": ids}), tmp_path / "part-0.parquet")
    assert content_order(ds.dataset(str(tmp_path))) == [1, 0, 3, 2]
