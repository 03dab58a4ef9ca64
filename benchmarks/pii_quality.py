r"""PII redaction quality on labelled spans, its false-positive cost on Wikipedia, and speed.

    python benchmarks/pii_quality.py [--show N] [--json out.json]

Labelled data: ../shared/data/pii/presidio_*.json (presidio-research, synthetic sentences
with character spans). Label types map to ours: EMAIL_ADDRESS -> EMAIL, IP_ADDRESS -> IP,
IBAN_CODE -> IBAN, PHONE_NUMBER -> PHONE, CREDIT_CARD -> CREDIT_CARD, US_SSN -> SSN; all
other labels (names, addresses, dates, ZIP codes, ...) are the negatives a redactor must
leave alone.

- Recall (per labelled type): a labelled span counts as found when its text no longer
  appears in the redacted output (the issue's definition: the value is gone, whatever
  placeholder replaced it). "typed recall" also requires a redacted span of the same type
  overlapping it.
- Precision (per predicted type): a redacted span is a true positive when it overlaps a
  labelled span of the same type; every other redacted span (no label, or a label of
  another type, e.g. a phone placeholder on an IBAN or a ZIP code) is a false positive.
  The labels cover every template slot, so an unlabelled redaction is a real mistake.
Targets: recall >= 0.95 and precision >= 0.90 for EMAIL, IP, PHONE and CREDIT_CARD.

Wikipedia (../shared/data/wikipedia/*.txt, one document per non-empty line; WikiText's
" @-@ ", " @,@ " and " @.@ " are joined back to "-", "," and "." so that hyphenated and
grouped numbers look as they do on the web): Wikipedia
prose has essentially no personal e-mails, phones or cards, so every hit is counted as the
placeholder's false-positive cost, in hits per 1,000 whitespace words; for scale, the same
figure for a common naive phone regex (`\+?\d[\d\- ]{8,}\d`) shows how many number-like
strings the text offers at all. Throughput is
`redact` on the same documents, one process, MB of UTF-8 text per CPU second of the process
(best of 3; CPU time, so a machine shared with other jobs gives steadier figures).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from curation.pii import PII_TYPES, find_pii, redact  # noqa: E402

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
NAIVE_PHONE = re.compile(r"\+?\d[\d\- ]{8,}\d")
LABELS = {
    "EMAIL_ADDRESS": "EMAIL",
    "IP_ADDRESS": "IP",
    "IBAN_CODE": "IBAN",
    "PHONE_NUMBER": "PHONE",
    "CREDIT_CARD": "CREDIT_CARD",
    "US_SSN": "SSN",
}


def load_labelled(folder: Path) -> list[dict]:
    records = []
    for path in sorted(folder.glob("presidio_*.json")):
        records += json.loads(path.read_text(encoding="utf-8"))
    return records


def score_labelled(records: list[dict], show: int) -> dict[str, dict[str, float]]:
    found, typed, total = Counter(), Counter(), Counter()
    true_pos, predicted = Counter(), Counter()
    false_positives: list[tuple[str, str, str]] = []
    for record in records:
        text = record["full_text"]
        spans = find_pii(text)
        redacted, _ = redact(text)
        gold = [
            (s["start_position"], s["end_position"], LABELS.get(s["entity_type"], s["entity_type"]))
            for s in record["spans"]
        ]
        for start, end, kind in gold:
            if kind not in PII_TYPES:
                continue
            total[kind] += 1
            found[kind] += text[start:end] not in redacted
            typed[kind] += any(s.kind == kind and s.start < end and start < s.end for s in spans)
        for span in spans:
            predicted[span.kind] += 1
            overlapping = [k for s, e, k in gold if span.start < e and s < span.end]
            if span.kind in overlapping:
                true_pos[span.kind] += 1
            else:
                label = ",".join(overlapping) or "unlabelled"
                false_positives.append((span.kind, text[span.start : span.end], label))
    for kind, value, label in false_positives[:show]:
        print(f"  false positive {kind}: {value!r} (label: {label})")
    return {
        kind: {
            "labelled": total[kind],
            "recall": found[kind] / total[kind] if total[kind] else float("nan"),
            "typed_recall": typed[kind] / total[kind] if total[kind] else float("nan"),
            "redacted": predicted[kind],
            "precision": true_pos[kind] / predicted[kind] if predicted[kind] else float("nan"),
        }
        for kind in PII_TYPES
    }


def wikipedia_cost(folder: Path, show: int) -> dict[str, float]:
    docs = [
        line
        for path in sorted(folder.glob("*.txt"))
        for line in detokenize(path.read_text(encoding="utf-8")).splitlines()
        if line.strip()
    ]
    words = sum(len(doc.split()) for doc in docs)
    hits: Counter[str] = Counter()
    shown = 0
    for doc in docs:
        for span in find_pii(doc):
            hits[span.kind] += 1
            if shown < show:
                context = doc[max(0, span.start - 30) : span.end + 30]
                print(f"  wikipedia {span.kind}: {doc[span.start : span.end]!r} in {context!r}")
                shown += 1
    megabytes = sum(len(doc.encode("utf-8")) for doc in docs) / 1e6
    seconds = min(_time_redact(docs) for _ in range(3))
    return {
        "documents": len(docs),
        "words": words,
        "megabytes": megabytes,
        **{f"hits_per_1k_words:{kind}": 1000 * hits[kind] / words for kind in PII_TYPES},
        "hits_per_1k_words": 1000 * sum(hits.values()) / words,
        "hits": sum(hits.values()),
        "naive_phone_hits_per_1k_words": 1000
        * sum(len(NAIVE_PHONE.findall(doc)) for doc in docs)
        / words,
        "redact_mb_per_s": megabytes / seconds,
    }


def detokenize(text: str) -> str:
    """Undo WikiText's split of hyphens and number separators (1 @,@ 000 -> 1,000)."""
    for token, char in ((" @-@ ", "-"), (" @,@ ", ","), (" @.@ ", ".")):
        text = text.replace(token, char)
    return text


def _time_redact(docs: list[str]) -> float:
    start = time.process_time()
    for doc in docs:
        redact(doc)
    return time.process_time() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--show", type=int, default=0, help="print N false positives of each set")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()
    if not (DATA / "pii").is_dir() or not (DATA / "wikipedia").is_dir():
        print(f"skipped: {DATA / 'pii'} or {DATA / 'wikipedia'} is absent")
        return

    records = load_labelled(DATA / "pii")
    print(f"labelled: {len(records)} texts from {DATA / 'pii'}")
    labelled = score_labelled(records, args.show)
    header = ("type", "labelled", "recall", "typed", "redacted", "precision")
    print(f"{header[0]:<12} " + " ".join(f"{h:>9}" for h in header[1:]))
    for kind, row in labelled.items():
        print(
            f"{kind:<12} {row['labelled']:>9} {row['recall']:>9.3f} {row['typed_recall']:>9.3f} "
            f"{row['redacted']:>9} {row['precision']:>9.3f}"
        )

    wiki = wikipedia_cost(DATA / "wikipedia", args.show)
    print(
        f"wikipedia: {wiki['documents']} documents, {wiki['words']:,} words, "
        f"{wiki['megabytes']:.2f} MB: {wiki['hits']} hits = "
        f"{wiki['hits_per_1k_words']:.3f} per 1,000 words ("
        + ", ".join(f"{k} {wiki[f'hits_per_1k_words:{k}']:.3f}" for k in PII_TYPES)
        + ")"
    )
    naive = wiki["naive_phone_hits_per_1k_words"]
    print(f"naive phone regex, for scale: {naive:.3f} per 1,000 words")
    print(f"redact throughput: {wiki['redact_mb_per_s']:.1f} MB per CPU second (one process)")
    if args.json:
        args.json.write_text(json.dumps({"labelled": labelled, "wikipedia": wiki}, indent=2))


if __name__ == "__main__":
    main()
