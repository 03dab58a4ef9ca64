"""One function per report section. Each renders only what the run folder holds and says
"Not present" (naming the missing input) instead of failing when a stage has not run."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from refinery.report import charts
from refinery.report import html as h
from refinery.report.aggregate import (
    Histogram,
    ReportError,
    cluster_sizes,
    excerpt,
    histogram,
    json_tables,
    metric_panels,
    metric_series,
    ordered_stages,
    pick_samples,
    stage_funnel,
)
from refinery.report.runfolder import (
    RunFolder,
    column,
    content_order,
    read_json,
    read_metrics,
    rows,
    text_lengths,
)

HISTOGRAM_BINS = 30
EXCERPT_CHARS = 1000
MAX_ERRORS_SHOWN = 5  # per stage


@dataclass(frozen=True)
class Options:
    seed: int = 0
    kept_samples: int = 5
    rejected_per_reason: int = 1


def stages(run: RunFolder) -> list[str]:
    """The stages that wrote stats, in pipeline order."""
    return ordered_stages(run.stats(), run.pipeline())


def document_stages(run: RunFolder) -> list[str]:
    """The stages with kept documents in OUT/<stage>/ (tokenize writes shards instead)."""
    return [s for s in stages(run) if run.kept(s) is not None]


def run_section(run: RunFolder) -> str:
    info = run.run_record()
    if info is None:
        return h.section("run", "Run", [h.absent("run.json (no curation stage has run)")])
    fields = [[k, info.get(k)] for k in ("version", "git_sha", "config_hash") if k in info]
    stages_run = info.get("stages", {})
    keys = ("input", "kept", "errors", "seconds", "finished")
    timings = [
        [s, *(stages_run[s].get(k) for k in keys), stages_run[s].get("config_hash")]
        for s in ordered_stages(stages_run, run.pipeline())
    ]  # a stage run under another config than the others shows another hash
    header = ["stage", *keys, "config hash"]
    return h.section("run", "Run", [h.table([], fields), h.table(header, timings, "stages run")])


def funnel_section(run: RunFolder) -> str:
    stats = run.stats()
    if not stats:
        return h.section("funnel", "Curation funnel", [h.absent("OUT/stats/*.json")])
    funnels = [stage_funnel(s, stats[s][0], str(stats[s][1])) for s in stages(run)]
    header = ["stage / reason", "input", "kept", "rejected", "errors", "tokens kept", "seconds"]
    body, classes = [], []
    for f in funnels:
        rejected = sum(f.rejected.values())
        body.append([f.stage, f.input, f.kept, rejected, f.errors, f.tokens, f.seconds])
        classes.append("stage")
        for reason, n in f.rejected.items():
            body.append([reason, None, None, n, None, None, None])
            classes.append("reason")
    note = (
        "Every record a stage read is kept, rejected with a reason, or an error: "
        "input = kept + rejected + errors. Extract counts WARC records, later stages documents."
    )
    figure = h.image(charts.funnel_chart(funnels), "kept, rejected and errors per stage")
    warnings = [h.warning(w) for w in run.funnel_warnings(funnels)]
    table = h.table(header, body, "", classes)
    return h.section("funnel", "Curation funnel", [*warnings, h.paragraph(note), figure, table])


# (anchor, column, title, x label, integer counts, log y)
COLUMN_HISTOGRAMS = (
    ("hist-quality", "quality_score", "Quality score", "quality score", False, False),
    ("hist-lang", "lang_score", "Language score", "language ID probability", False, False),
    ("hist-pii", "pii_count", "PII per document", "PII matches redacted", True, True),
)


def histograms_section(run: RunFolder) -> str:
    docs = document_stages(run)
    if not docs:
        return h.section("histograms", "Histograms", [h.absent("documents in OUT/<stage>/")])
    body = [_length_histogram(run, docs)]
    for anchor, name, title, xlabel, integer, log_y in COLUMN_HISTOGRAMS:
        stage = next((s for s in docs if name in run.kept(s).schema.names), None)
        body.append(h.heading(title, anchor))
        if stage is None:
            body.append(h.absent(f"no stage wrote a `{name}` column"))
            continue
        rejected = column(run.rejected(stage), name) or []
        # documents rejected before the step that sets the column have none: not counted
        scored = all(v is not None and v == v for v in rejected)
        series = {
            f"{stage}: kept": column(run.kept(stage), name),
            f"{stage}: rejected" + ("" if scored else f" with a {name}"): rejected,
        }
        hist = histogram(series, HISTOGRAM_BINS, integer)
        body.append(_histogram_image(hist, title, xlabel, log_y))
    body.append(_cluster_histogram(run, docs))
    return h.section("histograms", "Histograms", body)


def _length_histogram(run: RunFolder, docs: list[str]) -> str:
    """Document length entering the pipeline (first stage) and leaving it (last stage)."""
    ends = dict.fromkeys([docs[0], docs[-1]])
    series = {f"{s}: kept": text_lengths(run.kept(s)) or [] for s in ends}
    hist = histogram(series, HISTOGRAM_BINS, integer=False)
    figure = _histogram_image(hist, "document length", "characters of text", True)
    return h.heading("Document length", "hist-length") + figure


def _histogram_image(
    hist: Histogram, title: str, xlabel: str, log_y: bool, ylabel: str = "documents"
) -> str:
    """The chart, or the line saying there is nothing to draw (a stage that kept nothing)."""
    if not hist.counts:
        return h.absent(f"{title}: no values (no documents, or none with the column set)")
    return h.image(charts.histogram_chart(hist, xlabel, log_y, ylabel=ylabel), title)


def _cluster_histogram(run: RunFolder, docs: list[str]) -> str:
    title = h.heading("Duplicate-cluster sizes", "hist-clusters")
    stage = next((s for s in docs if "cluster_id" in run.kept(s).schema.names), None)
    if stage is None:
        return title + h.absent("no stage wrote a `cluster_id` column (dedup)")
    ids = column(run.kept(stage), "cluster_id") + (column(run.rejected(stage), "cluster_id") or [])
    sizes = cluster_sizes(ids)
    duplicated = [s for s in sizes if s > 1]
    summary = (
        f"{stage}: {len(sizes):,} clusters over {sum(sizes):,} documents; "
        f"{len(duplicated):,} with duplicates, the largest of {max(sizes, default=0):,}."
    )
    hist = histogram({"clusters": sizes}, HISTOGRAM_BINS, integer=True)
    figure = _histogram_image(
        hist, "duplicate-cluster sizes", "documents per cluster", True, ylabel="clusters"
    )
    return title + h.paragraph(summary) + figure


def mixture_section(run: RunFolder) -> str:
    # a decontaminated copy of OUT/mix carries the plan (refinery contamination --decontaminate)
    where = next((s for s in ("mix", "contamination") if run.json(s, "_mixture.json")), "mix")
    mixture = run.json(where, "_mixture.json")
    manifest = run.json("tokens", "manifest.json")
    body = [h.heading(f"Mix stage (OUT/{where}/_mixture.json)")]
    if mixture is None:
        body.append(h.absent("OUT/mix/_mixture.json (the mix stage has not run)"))
    else:
        domains = mixture.get("report", {}).get("domains", {})
        if domains:
            shares = {
                key: [d.get(key) or 0.0 for d in domains.values()]
                for key in ("share_before", "target", "share_after")
            }
            figure = charts.shares_chart(list(domains), shares)
            body.append(h.image(figure, "domain shares before and after mixing"))
        body.append(
            h.paragraph(
                "_mixture.json is the mix stage's plan, on estimated tokens (characters / "
                "mix.chars_per_token, before tokenizing); the tokenize stage plans it again on "
                "the tokens it counted (the manifest's note below says how its weights were "
                "made): the manifest's mixtures below are what training samples."
            )
        )
        for key in ("report", "buckets", "mixtures", "anneal"):
            if key in mixture:
                body += _tables(mixture[key], key)
    body.append(h.heading("Token manifest (OUT/tokens/manifest.json)"))
    if manifest is None:
        body.append(h.absent("OUT/tokens/manifest.json (the tokenize stage has not run)"))
    else:
        splits = {**manifest.get("buckets", {}), "(validation)": manifest.get("validation", {})}
        counts = [
            [name, s.get("tokens"), s.get("documents"), s.get("bytes"), len(s.get("shards", []))]
            for name, s in splits.items()
        ]
        body.append(h.table(["bucket", "tokens", "documents", "bytes", "shards"], counts))
        if manifest.get("mixtures_note"):  # re-planned, copied, or natural proportions
            body.append(h.paragraph(f"mixtures: {manifest['mixtures_note']}"))
        body += _tables(manifest.get("mixtures", {}), "mixtures")
    return h.section("mixture", "Domain mixture", body)


def _tables(content: Any, caption: str) -> list[str]:
    """Any JSON as HTML tables (see aggregate.json_tables)."""
    return [h.table(head, body, title) for title, head, body in json_tables(content, caption)]


def samples_section(run: RunFolder, options: Options) -> str:
    docs = document_stages(run)
    body = [h.heading("Kept documents", "samples-kept")]
    if docs:
        final = run.kept(docs[-1])
        picked = sampled(final, None, options.kept_samples, options.seed)
        fields = ["url", "domain", "bucket", "quality_score", "lang", "pii_count"]
        body.append(
            h.paragraph(f"{len(picked)} of the documents {docs[-1]} kept, seed {options.seed}")
        )
        body += [_document(row, fields) for row in rows(final, picked, [*fields, "text"])]
    else:
        body.append(h.absent("documents in OUT/<stage>/"))
    body.append(h.heading("Rejected documents, by stage and reason", "samples-rejected"))
    rejected_blocks = []
    for stage in stages(run):
        data = run.rejected(stage)
        reasons = column(data, "reason")
        if not reasons:
            continue
        picked = sampled(data, reasons, options.rejected_per_reason, options.seed)
        fields = ["stage", "reason", "url", "kept_id", "quality_score", "lang", "lang_score"]
        rejected_blocks += [_document(row, fields) for row in rows(data, picked, [*fields, "text"])]
    body += rejected_blocks or [h.absent("rows in OUT/rejected/")]
    body.append(h.heading("Errors", "samples-errors"))
    error_rows, shown = [], []
    for stage in stages(run):
        data = run.errors(stage)
        sources = column(data, "source")
        if sources:
            picked = sampled(data, None, MAX_ERRORS_SHOWN, options.seed)
            error_rows += [
                [stage, r.get("source"), r.get("offset"), excerpt(r.get("error"), 300)]
                for r in rows(data, picked, ["source", "offset", "error"])
            ]
            shown.append(f"{stage}: {len(picked):,} of {len(sources):,}")
    if error_rows:
        where = "every one is in OUT/errors/stage=<stage>/"
        body.append(h.paragraph(f"errors shown, seed {options.seed}: {'; '.join(shown)} ({where})"))
        body.append(h.table(["stage", "source", "offset", "error"], error_rows))
    else:
        body.append(h.absent("rows in OUT/errors/"))
    return h.section("samples", "Sampled documents", body)


def sampled(data, groups: list[str] | None, per_group: int, seed: int) -> list[int]:
    """`pick_samples` over the rows in content order (`content_order`); one group if None."""
    order = content_order(data)
    labels = ["all"] * len(order) if groups is None else [groups[i] for i in order]
    return [order[i] for i in pick_samples(labels, per_group, seed)]


def _document(row: dict[str, Any], fields: list[str]) -> str:
    facts = [[f, row[f]] for f in fields if row.get(f) is not None]
    text = excerpt(row.get("text"), EXCERPT_CHARS) or "(no text)"
    return f'<div class="sample">{h.table([], facts)}{h.document(text)}</div>'


def training_section(run: RunFolder) -> str:
    folders = run.training_folders()
    if not folders:
        missing = "metrics.jsonl in OUT/train/, anneal/, sft/, rm/, dpo/ or ppo/"
        return h.section("training", "Training curves", [h.absent(missing)])
    body = []
    for folder in folders:
        body.append(h.heading(f"{folder.name}/", f"training-{folder.name}"))
        records = read_metrics(folder / "metrics.jsonl")
        series = metric_series(records)
        if not series:
            body.append(h.absent(f"numeric metrics in {folder / 'metrics.jsonl'}"))
            continue
        figure = charts.metrics_chart(series, metric_panels(list(series)))
        body.append(h.image(figure, f"{folder.name} metrics"))
        last = [[key, xs[-1], ys[-1]] for key, (xs, ys) in series.items()]
        body.append(h.table(["metric", "step", "last value"], last, f"{len(records)} records"))
    return h.section("training", "Training curves", body)


def eval_section(run: RunFolder) -> str:
    files = run.eval_files()
    if not files:
        return h.section("eval", "Evaluation", [h.absent("OUT/eval/*.json")])
    body = []
    for path in files:
        answers = judge_answers(path)
        if answers is not None:  # the judge's sampled side: named, not a table of its texts
            body.append(h.paragraph(f"{path.name}: {answers} answers sampled for the judge"))
            continue
        body.append(h.heading(path.name))
        body += _tables(run.json("eval", path.name), path.stem)
    return h.section("eval", "Evaluation", body)


def judge_answers(path: Path) -> int | None:
    """How many answers `path` holds when it is the answers file `refinery judge` writes
    beside its result (`<out>.a.json` / `<out>.b.json`: a list), else None."""
    stem, dot, side = path.stem.rpartition(".")
    if not dot or side not in ("a", "b") or not path.with_name(f"{stem}.json").is_file():
        return None
    data = read_json(path)
    return len(data) if isinstance(data, list) else None


def report_sections(run: RunFolder, options: Options) -> list[str]:
    """Every section; one whose files parse but hold another shape than the stages write (a
    list where an object belongs, hand-edited or from another version) is a ReportError
    naming what it reads, not a traceback."""
    sections = [
        (run_section, "run.json"),
        (funnel_section, "stats/*.json"),
        (histograms_section, "OUT/<stage>/ Parquet"),
        (mixture_section, "mix/_mixture.json and tokens/manifest.json"),
        (lambda run: samples_section(run, options), "OUT/<stage>/ and rejected/ Parquet"),
        (training_section, "*/metrics.jsonl"),
        (eval_section, "eval/*.json"),
    ]
    built = []
    for section, reads in sections:
        try:
            built.append(section(run))
        except (TypeError, AttributeError, KeyError, IndexError) as err:
            raise ReportError(
                f"{run.root}: {reads} holds something of another shape than the stages write "
                f"({type(err).__name__}: {err})"
            ) from None
    return built
