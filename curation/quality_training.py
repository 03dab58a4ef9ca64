"""`refinery train-quality`: train the fastText quality classifier on a Wikipedia-reference set.

Builds the training set and trains the classifier as LLaMA / RedPajama-v1 did, with a held-out
evaluation.

    refinery train-quality --positives wiki.txt [--positives refs.jsonl ...] \\
        --negatives runs/demo/extract [--negatives c4.jsonl ...] --output models/quality

Each source is a documents Parquet (file or folder), a JSONL file with a `text` field (.jsonl,
.json or .ndjson, any case), or a plain-text file with one document per non-empty line.
`--reference-urls FILE --corpus DOCS` adds as positives the corpus documents whose URL
(normalised) a reference list names: pages Wikipedia cites. The set is built so that only
content can separate the classes:
  - every document is normalised (`curation.quality.normalise`) and cut into passages of at
    most `max_tokens` tokens; passages shorter than `min_tokens` are dropped;
  - exact duplicate passages are dropped (one seen in both classes is dropped from both);
  - documents, not passages, are split into train and held out, so no document leaks, and a
    negative crawl page goes where every page of its host goes: a site's pages share their
    boilerplate, which would score held-out pages of a site trained on (positives, reference
    text usually of one site such as Wikipedia, are split by document);
  - a reference-URL positive found among the negatives too is left out of the negatives;
  - the classes are balanced by sampling, then each positive is paired with a negative and both
    are cut to the shorter one's length: the two length distributions are the same.
DIR gets model.bin + model.json (what `QualityModel.load(DIR)` reads), train.txt and
heldout.txt (the exact sets), manifest.json (sources, counts, seed, parameters, hashes) and
metrics.json (held-out precision, recall, ROC-AUC, score histograms).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import sys
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit

from curation.inputs import check_documents, is_archive
from curation.quality import (
    INFO_FILE,
    MODEL_FILE,
    NEGATIVE,
    POSITIVE,
    QualityModel,
    normalise,
    save_model_info,
)
from refinery.cli import named_folder
from refinery.errors import RefineryError
from refinery.jsonl import json_objects
from refinery.utf8 import read_utf8, utf8_lines


class TrainingSetError(RefineryError):
    """A training source that cannot be read, too little data, or settings it cannot use."""


@dataclass
class TrainParams:
    max_tokens: int = 256  # passage length the classifier sees (train and score alike)
    min_tokens: int = 20
    heldout: float = 0.2  # share of documents held out for metrics
    seed: int = 0
    # fastText (Joulin et al. 2017) as CCNet / RedPajama use it: word bigrams, a small dim.
    # 25 passes: a few hundred passages (the demo) stay near 0.5 everywhere with fewer; the
    # real benchmark (thousands) is unchanged by them (docs/BENCHMARKS.md).
    epoch: int = 25
    lr: float = 0.5
    dim: int = 64
    word_ngrams: int = 2
    min_count: int = 2
    # hash buckets of the word n-grams: the model file is about bucket x dim x 4 bytes
    bucket: int = 2_000_000

    def __post_init__(self) -> None:
        if not 0 < self.heldout < 1:
            raise TrainingSetError(f"--heldout must be in (0, 1), got {self.heldout}")
        if not 0 < self.min_tokens <= self.max_tokens:
            raise TrainingSetError(
                f"--min-tokens ({self.min_tokens}) must be in 1..--max-tokens ({self.max_tokens})"
            )
        for name in ("epoch", "dim", "word_ngrams", "min_count", "bucket"):
            if getattr(self, name) < 1:
                raise TrainingSetError(f"--{name.replace('_', '-')} must be at least 1")
        for name in ("seed", "epoch", "dim", "word_ngrams", "min_count", "bucket"):
            if not -(2**31) <= getattr(self, name) < 2**31:  # fastText's C++ int: a TypeError
                raise TrainingSetError(f"--{name.replace('_', '-')} must fit a 32-bit integer")
        if not self.lr > 0:
            raise TrainingSetError(f"--lr must be positive, got {self.lr}")


# ----------------------------------------------------------------------------- sources


def read_texts(path: str) -> Iterator[tuple[str, str]]:
    """(key, text) of every document in a Parquet file/folder, JSONL file or text file. Keys
    name a Parquet document by its id (else the file and the text), a JSONL or text line by
    the file's name and line, never by the path as written, so the held-out split (a hash of
    the key) is the same however the path is spelled or a stage's output is cut into parts."""
    source = Path(path)
    if not source.exists():
        raise TrainingSetError(f"{path}: no such file or folder")
    suffix = source.suffix.lower()
    if source.is_dir() or suffix == ".parquet":
        check_documents(str(source), path)  # names a folder of WARCs or shards for what it is
        yield from _read_parquet(source)
    elif is_archive(source.name):  # read as text, it would teach WARC and HTTP headers
        raise TrainingSetError(
            f"{path}: a WARC/ARC/WET file: `refinery extract` reads it; give its documents"
        )
    elif suffix in JSONL_SUFFIXES:
        yield from _read_jsonl(source)
    elif suffix in (".gz", ".zst", ".bz2", ".xz", ".zip", ".csv", ".tsv"):
        raise TrainingSetError(
            f"{path}: a {suffix} file is not read here: give documents Parquet, JSONL with a "
            "`text` field, or plain text with one document per line (decompress it, or "
            "convert a table's text column)"
        )
    else:
        for number, line in enumerate(utf8_lines(source, TrainingSetError), 1):
            if number == 1 and _json_object(line):  # its braces and keys would be learned
                raise TrainingSetError(
                    f"{path}: line 1 is a JSON object: name a JSON Lines file .jsonl (read "
                    "as text, every document would carry its keys and quotes)"
                )
            if line.strip():
                yield f"{source.name}:{number}", line


JSONL_SUFFIXES = (".jsonl", ".json", ".ndjson")
FEW_HELDOUT = 100  # held-out passages under which the printed metrics are said to be rough


def _json_object(line: str) -> bool:
    try:
        return isinstance(json.loads(line), dict)
    except json.JSONDecodeError:
        return False


def _read_parquet(source: Path) -> Iterator[tuple[str, str]]:
    import pyarrow as pa
    import pyarrow.dataset as ds

    try:
        table = ds.dataset(str(source), format="parquet").to_table()
    except Exception as err:  # pyarrow raises several types for unreadable input
        raise TrainingSetError(f"{source}: not a documents Parquet: {err}") from None
    if "text" not in table.column_names:
        raise TrainingSetError(f"{source}: documents Parquet without a `text` column")
    kind = table.schema.field("text").type
    if not (pa.types.is_string(kind) or pa.types.is_large_string(kind)):
        raise TrainingSetError(f"{source}: its `text` column is {kind}, not string")
    has_id = "id" in table.column_names
    keys = table.column("id" if has_id else "text").to_pylist()
    urls = table.column("url").to_pylist() if "url" in table.column_names else keys
    # an id names its document whatever file or folder holds it: a glob of a stage's part
    # files (which Spark cuts by its settings) or a folder of another name must not change the
    # order keys give the seeded sample and the held-out split
    prefix = "" if has_id else f"{source.name}:"
    for key, url, text in zip(keys, urls, table.column("text").to_pylist(), strict=True):
        if text:
            yield document_key(f"{prefix}{key}", url), text


def document_key(name: str, url: object) -> str:
    """`name|url`: what names a document in the held-out split and the reports. A `|` in the
    URL is written escaped (`%7C`, the same address), so the URL is all after the last `|`
    (`?fonts=Roboto|Open+Sans` made the host `Open+Sans`, and the page's host straddled the
    split)."""
    return f"{name}|{with_bars_escaped(str(url))}"


def url_in(key: str) -> str:
    """The URL of a `document_key`, its `|` escaped (as `with_bars_escaped` writes a URL)."""
    return key.rpartition("|")[2]


def with_bars_escaped(url: str) -> str:
    return url.replace("|", "%7C")


def _read_jsonl(source: Path) -> Iterator[tuple[str, str]]:
    for number, record in json_objects(
        utf8_lines(source, TrainingSetError), source, TrainingSetError
    ):
        if not isinstance(record.get("text"), str):
            raise TrainingSetError(f"{source}: line {number}: no string `text` field")
        yield document_key(f"{source.name}:{number}", record.get("url", "")), record["text"]


def normalise_url(url: str) -> str:
    """URL key for matching reference lists against crawled pages: scheme, `www.`, default
    port, fragment, trailing slash, tracking parameters and query order do not matter."""
    parts = urlsplit(url.strip())
    host = (parts.hostname or "").lower().removeprefix("www.")
    port = f":{parts.port}" if parts.port and parts.port not in (80, 443) else ""
    query = sorted((k, v) for k, v in parse_qsl(parts.query) if not k.startswith("utm_"))
    path = parts.path.rstrip("/") or ""
    return f"{host}{port}{path}" + (f"?{urlencode(query)}" if query else "")


def referenced_documents(reference_file: str, corpus: list[str]) -> Iterator[tuple[str, str]]:
    """Documents of `corpus` whose URL appears (normalised) in the reference list."""
    path = Path(reference_file)
    if not path.is_file():
        raise TrainingSetError(f"{reference_file}: no such reference-URL file")
    wanted, malformed = set(), 0
    for url in read_utf8(path, TrainingSetError).split():
        try:  # `|` escaped as in the corpus's keys, so `a|b` and `a%7Cb` are one address
            wanted.add(normalise_url(with_bars_escaped(url)))
        except ValueError:  # a malformed port or IPv6 literal
            malformed += 1
    if malformed:
        print(f"{reference_file}: {malformed} malformed URL(s) skipped", file=sys.stderr)
    for source in corpus:
        for key, text in read_texts(source):
            try:  # a URL without a scheme is matched too (`wiki.example/a`)
                if normalise_url(url_in(key)) in wanted:
                    yield key, text
            except ValueError:
                continue


# ----------------------------------------------------------------------------- training set


@dataclass
class Passage:
    label: str
    document: str  # key of the document it comes from
    tokens: list[str]


@dataclass
class TrainingSet:
    train: list[Passage]
    heldout: list[Passage]
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    negative_groups: int = 0  # hosts (or documents without one) the negatives are split by


def passages(label: str, key: str, text: str, params: TrainParams) -> list[Passage]:
    """The document cut into consecutive passages of at most `max_tokens` tokens."""
    tokens = normalise(text)
    cuts = range(0, len(tokens), params.max_tokens)
    pieces = [tokens[i : i + params.max_tokens] for i in cuts]
    return [Passage(label, key, p) for p in pieces if len(p) >= params.min_tokens]


def _group(piece: Passage) -> str:
    """What is held out together: a document, or every page of a negative page's host."""
    if piece.label == NEGATIVE:
        host = _host(url_in(piece.document))
        if host:
            return f"host:{host}"
    return piece.document


def _is_heldout(piece: Passage, params: TrainParams) -> bool:
    """Held out by a seeded hash of the piece's group."""
    digest = hashlib.sha1(f"{params.seed}:{_group(piece)}".encode()).digest()
    return int.from_bytes(digest[:8], "little") / 2**64 < params.heldout


def _host(url: str) -> str:
    try:
        return (urlsplit(url).hostname or "").removeprefix("www.")
    except ValueError:
        return ""


def build_training_set(
    positives: list[tuple[str, str]], negatives: list[tuple[str, str]], params: TrainParams
) -> TrainingSet:
    """Balanced, deduplicated, length-matched train / held-out passages (see module doc).
    The documents are taken in sorted order: the seeded shuffles then give the same model
    whatever order the inputs were listed or their rows stored in."""
    positives, negatives = sorted(positives), sorted(negatives)
    pieces = [p for k, t in positives for p in passages(POSITIVE, k, t, params)]
    pieces += [p for k, t in negatives for p in passages(NEGATIVE, k, t, params)]
    by_text: dict[str, set[str]] = {}
    for piece in pieces:
        by_text.setdefault(" ".join(piece.tokens), set()).add(piece.label)
    seen: set[str] = set()
    unique = []
    for piece in pieces:
        text = " ".join(piece.tokens)
        if len(by_text[text]) == 1 and text not in seen:
            seen.add(text)
            unique.append(piece)
    rng = random.Random(params.seed)
    counts = {"passages": _count(pieces), "unique": _count(unique)}
    splits = {}
    for split, heldout in (("train", False), ("heldout", True)):
        chosen = [p for p in unique if _is_heldout(p, params) == heldout]
        splits[split] = _balance_and_match(chosen, rng)
        counts[split] = _count(splits[split])
    groups = len({_group(p) for p in unique if p.label == NEGATIVE})
    return TrainingSet(splits["train"], splits["heldout"], counts, groups)


def _split_remedy(data: TrainingSet, heldout: float, side: str) -> str:
    """What gives `side` of the split both classes: passages of each class first (a class
    can be empty, or every passage found in both classes and dropped); then, as negatives of
    few hosts all fall on one side (each host's pages stay together), more hosts; then a
    held-out share that leaves that side more."""
    unique = data.counts.get("unique", {})
    for label, name in ((POSITIVE, "positives"), (NEGATIVE, "negatives")):
        if not unique.get(label):
            found = data.counts.get("passages", {}).get(label)
            why = "each is also among the other class's" if found else "none is long enough"
            return f"no passage of the {name} is left ({why}): give other or more {name}"
    if data.negative_groups <= 3:
        return (
            "negative pages are held out by host (a page without a URL alone), and the "
            f"negatives make {data.negative_groups} such group(s): give more negatives, of more "
            "hosts"
        )
    if side == "heldout":
        return "raise --heldout or give more documents"
    return f"give more documents, or hold out less than --heldout {heldout}"


def _count(pieces: list[Passage]) -> dict[str, int]:
    return {label: sum(p.label == label for p in pieces) for label in (POSITIVE, NEGATIVE)}


def _balance_and_match(pieces: list[Passage], rng: random.Random) -> list[Passage]:
    """As many positives as negatives, sampled; pair i-th with i-th and cut both to the
    shorter length, so length alone cannot tell the classes apart."""
    positive = [p for p in pieces if p.label == POSITIVE]
    negative = [p for p in pieces if p.label == NEGATIVE]
    rng.shuffle(positive)
    rng.shuffle(negative)
    matched = []
    for pos, neg in zip(positive, negative, strict=False):
        length = min(len(pos.tokens), len(neg.tokens))
        matched += [
            Passage(pos.label, pos.document, pos.tokens[:length]),
            Passage(neg.label, neg.document, neg.tokens[:length]),
        ]
    rng.shuffle(matched)
    return matched


# ----------------------------------------------------------------------------- train + evaluate


def write_fasttext_file(path: Path, pieces: list[Passage]) -> str:
    """fastText's `__label__x token token ...` lines; returns the file's sha256."""
    text = "".join(f"{p.label} {' '.join(p.tokens)}\n" for p in pieces)
    path.write_text(text, encoding="utf-8")
    return hashlib.sha256(text.encode()).hexdigest()


def roc_auc(scores: list[float], labels: list[bool]) -> float:
    """Probability that a random positive outscores a random negative (ties count half)."""
    ranked = sorted(zip(scores, labels, strict=True))
    positives = sum(labels)
    negatives = len(labels) - positives
    if not positives or not negatives:
        return float("nan")
    rank_sum, i = 0.0, 0
    while i < len(ranked):
        j = i
        while j < len(ranked) and ranked[j][0] == ranked[i][0]:
            j += 1
        average_rank = (i + j + 1) / 2  # 1-based ranks i+1 .. j
        rank_sum += average_rank * sum(label for _, label in ranked[i:j])
        i = j
    return (rank_sum - positives * (positives + 1) / 2) / (positives * negatives)


def histogram(scores: list[float], bins: int = 10) -> list[int]:
    counts = [0] * bins
    for s in scores:
        counts[min(bins - 1, int(s * bins))] += 1
    return counts


def evaluate(model: QualityModel, heldout: list[Passage]) -> dict:
    """Held-out precision / recall / F1 at 0.5, ROC-AUC and per-class score histograms."""
    scores = model.score_lines([" ".join(p.tokens) for p in heldout])
    truth = [p.label == POSITIVE for p in heldout]
    predicted = [s >= 0.5 for s in scores]
    tp = sum(t and p for t, p in zip(truth, predicted, strict=True))
    precision = tp / max(1, sum(predicted))
    recall = tp / max(1, sum(truth))
    return {
        "heldout_passages": len(heldout),
        "precision": precision,
        "recall": recall,
        "f1": 2 * precision * recall / max(1e-12, precision + recall),
        "accuracy": sum(t == p for t, p in zip(truth, predicted, strict=True)) / max(1, len(truth)),
        "roc_auc": roc_auc(scores, truth),
        "histogram_bins": [round(i / 10, 1) for i in range(11)],
        "histogram_positive": histogram([s for s, t in zip(scores, truth, strict=True) if t]),
        "histogram_negative": histogram([s for s, t in zip(scores, truth, strict=True) if not t]),
    }


def train_quality_model(
    positives: list[tuple[str, str]],
    negatives: list[tuple[str, str]],
    output: Path,
    params: TrainParams,
    sources: dict[str, list[dict]] | None = None,
) -> dict:
    """Build the set, train (single thread: deterministic for a seed), evaluate, save; return
    the metrics."""
    import fasttext

    data = build_training_set(positives, negatives, params)
    if not data.train or len({p.label for p in data.train}) < 2:
        raise TrainingSetError(
            f"too little data to train: {data.counts} passages after dedup and balancing "
            f"(need both classes; passages have >= {params.min_tokens} tokens); "
            f"{_split_remedy(data, params.heldout, 'train')}"
        )
    made = not output.exists()
    output.mkdir(parents=True, exist_ok=True)
    # Retrained in place: the files that say a model is finished go first, so a run killed
    # midway leaves a folder that neither `make demo`'s check nor classify takes for one.
    for finished in ("metrics.json", "manifest.json", INFO_FILE, MODEL_FILE):
        (output / finished).unlink(missing_ok=True)
    hashes = {
        "train.txt": write_fasttext_file(output / "train.txt", data.train),
        "heldout.txt": write_fasttext_file(output / "heldout.txt", data.heldout),
    }
    try:
        ft = fasttext.train_supervised(
            input=str(output / "train.txt"),
            epoch=params.epoch,
            lr=params.lr,
            dim=params.dim,
            wordNgrams=params.word_ngrams,
            minCount=params.min_count,
            bucket=params.bucket,
            thread=1,
            seed=params.seed,
            verbose=0,
        )
    except RuntimeError as err:  # fastText stops on a diverged loss: "Encountered NaN."
        for name in hashes:  # nothing is left that looks like a model folder
            (output / name).unlink()
        if made:
            output.rmdir()
        if "NaN" not in str(err):
            raise
        raise TrainingSetError(
            f"fastText's loss diverged (NaN) at --lr {params.lr} with --bucket "
            f"{params.bucket}: raise --bucket (fewer n-grams share a row), or lower --lr"
        ) from None
    ft.save_model(str(output / MODEL_FILE))
    save_model_info(output, params.max_tokens)
    model = QualityModel.load(output)
    metrics = evaluate(model, data.heldout) if data.heldout else {"heldout_passages": 0}
    if not data.heldout:
        metrics["why"] = (
            f"no passage was held out; {_split_remedy(data, params.heldout, 'heldout')}"
        )
    manifest = {
        "sources": sources or {},
        "counts": data.counts,
        "params": asdict(params),
        "files": hashes,
    }
    (output / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    (output / "metrics.json").write_text(json.dumps(metrics, indent=1) + "\n")
    return metrics


def _collect(paths: list[str]) -> tuple[list[tuple[str, str]], list[dict]]:
    documents, described = [], []
    for path in paths:
        texts = list(read_texts(path))
        documents += texts
        described.append({"path": path, "documents": len(texts)})
    return documents, described


PARAM_HELP = {
    "max_tokens": "tokens of a passage, at training and scoring",
    "min_tokens": "shorter passages are left out of training",
    "heldout": "share of documents held out for the metrics",
    "seed": "seed of the split, the sample and fastText",
    "epoch": "fastText passes",
    "lr": "fastText learning rate",
    "dim": "fastText vector size",
    "word_ngrams": "fastText word n-grams",
    "min_count": "fastText's least word count",
    "bucket": "fastText hash buckets of word n-grams (model size ~ bucket x dim x 4 bytes)",
}


def without_positives(
    negatives: list[tuple[str, str]],
    positives: list[tuple[str, str]],
    referenced: list[tuple[str, str]],
) -> tuple[list[tuple[str, str]], int]:
    """The negatives that are not also positives, and how many were left out: by URL (a
    page both sides hold), or for the `referenced` positives found in --corpus, by key (the
    same row of the same documents). Other keys only name a file and a line, which another
    file shares (line 7 of pos/train.jsonl is not line 7 of neg/train.jsonl). Kept in both,
    its passages would be dropped from both classes as seen with both labels."""
    keys = {key for key, _ in referenced}
    urls = {_url_of(key) for key, _ in positives} - {""}
    kept = [(key, text) for key, text in negatives if key not in keys and _url_of(key) not in urls]
    return kept, len(negatives) - len(kept)


def _url_of(key: str) -> str:
    """The normalised URL of a document key (`source:id|url`), or "" without one."""
    url = url_in(key)
    try:
        return normalise_url(url) if "://" in url else ""
    except ValueError:  # a malformed port or IPv6 literal
        return ""


def _sample(documents: list[tuple[str, str]], limit: int | None, seed: int) -> list:
    """A seeded random sample of at most `limit` documents (negatives: random crawl pages)."""
    if limit is None or len(documents) <= limit:
        return documents
    return random.Random(seed).sample(sorted(documents), limit)  # not the inputs' order


class _DefaultsHelp(argparse.ArgumentDefaultsHelpFormatter):
    """Defaults in --help, but none for a required option or one with nothing by default."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.required or action.default in (None, []):
            return action.help
        return super()._get_help_string(action)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="refinery train-quality",
        description=__doc__.splitlines()[0],
        formatter_class=_DefaultsHelp,
    )
    # `--positives A B` and `--positives A --positives B` both work (the README shows P…)
    sources = {"action": "extend", "nargs": "+", "default": []}
    documents = "documents Parquet, JSONL with `text`, or text with a document per line"
    parser.add_argument(
        "--positives",
        metavar="P",
        help=f"high-quality {documents} (or --reference-urls)",
        **sources,
    )
    parser.add_argument(
        "--negatives", metavar="N", required=True, help=f"random web {documents}", **sources
    )
    parser.add_argument("--reference-urls", metavar="FILE", help="URLs cited by Wikipedia")
    parser.add_argument(
        "--corpus", metavar="DOCS", help="documents the URLs are found in", **sources
    )
    parser.add_argument(
        "--output", required=True, type=named_folder, metavar="DIR", help="model folder to write"
    )
    parser.add_argument("--max-negatives", type=int, metavar="N", help="random sample size")
    defaults = TrainParams()
    for name, value in asdict(defaults).items():
        parser.add_argument(
            f"--{name.replace('_', '-')}", type=type(value), default=value, help=PARAM_HELP[name]
        )
    args = parser.parse_args(argv)
    if bool(args.reference_urls) != bool(args.corpus):
        parser.error("--reference-urls and --corpus go together")
    if not args.positives and not args.reference_urls:
        parser.error("give --positives and/or --reference-urls with --corpus")
    if args.max_negatives is not None and args.max_negatives < 1:
        parser.error(f"--max-negatives must be at least 1, got {args.max_negatives}")
    if Path(args.output).exists() and not Path(args.output).is_dir():
        parser.error(f"--output {args.output} is a file; the model goes in a folder")
    output = Path(args.output).resolve()
    for source in [*args.positives, *args.negatives, *args.corpus]:
        folder = Path(source).resolve()
        if folder.is_dir() and (output == folder or folder in output.parents):
            # its files would join the documents (a stage folder then fails to read)
            parser.error(f"--output {args.output} is inside the input folder {source}")
    params = TrainParams(**{k: getattr(args, k) for k in asdict(defaults)})
    positives, positive_sources = _collect(args.positives)
    referenced = []
    if args.reference_urls:
        referenced = list(referenced_documents(args.reference_urls, args.corpus))
        if not referenced and not positives:  # else "none is long enough" would mislead
            raise TrainingSetError(
                f"none of the URLs of {args.reference_urls} is a document of --corpus "
                f"{' '.join(args.corpus)}: no positives to train on"
            )
        positives += referenced
        positive_sources.append(
            {
                "reference_urls": args.reference_urls,
                "corpus": args.corpus,
                "documents": len(referenced),
            }
        )
    negatives, negative_sources = _collect(args.negatives)
    negatives, left_out = without_positives(negatives, positives, referenced)
    if left_out and not negatives:  # else "none is long enough" would mislead
        raise TrainingSetError(
            f"each of the {left_out} negatives is also a positive (the same URL or document): "
            "give other negatives"
        )
    if left_out:
        negative_sources.append({"left_out_as_positives": left_out})
    negatives = _sample(negatives, args.max_negatives, params.seed)
    sources = {"positives": positive_sources, "negatives": negative_sources}
    metrics = train_quality_model(positives, negatives, Path(args.output), params, sources)
    heldout = metrics["heldout_passages"]
    if not heldout:
        print(f"quality model: {args.output} (not evaluated: {metrics['why']})")
        return 0
    print(
        f"quality model: {args.output} ({heldout} held-out passages, "
        f"ROC-AUC {metrics['roc_auc']:.3f}, "
        f"precision {metrics['precision']:.3f}, recall {metrics['recall']:.3f})"
    )
    if heldout < FEW_HELDOUT:
        print(
            f"quality model: warning: the metrics rest on {heldout} held-out passages (negatives "
            "are held out by host, a page without a URL alone: a crawl of few hosts holds out "
            "few); read them with care",
            file=sys.stderr,
        )
    return 0
