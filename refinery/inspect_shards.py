"""`refinery inspect-shards OUT/tokens`: verify a tokens folder, summarise it, show documents.

Every shard is opened against its manifest entry (magic, version, dtype, sizes, document
offsets, token ids below the vocabulary size, the sha256 of its bytes), and the tokenizer file
against its hash and the manifest's vocabulary size and special ids, so a damaged folder exits
non-zero with the first problem named. No Spark, no torch.
"""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer, decoders

from refinery.cli import non_negative_int
from refinery.manifest import (
    MANIFEST_NAME,
    Manifest,
    ManifestError,
    ShardEntry,
    Split,
    read_manifest,
    shard_sha256,
    verified_tokenizer,
)
from refinery.shards import ShardError, open_shard
from refinery.tokenizer import BOS, EOS, PAD, load_tokenizer, special_ids


def check_tokenizer_fields(manifest: Manifest, tokenizer: Tokenizer) -> None:
    """The manifest's vocabulary size and special ids are the tokenizer file's: the trainer
    sizes its embedding by them and checks token ids against them."""
    ids = special_ids(tokenizer)
    file_says = {
        "vocab_size": tokenizer.get_vocab_size(),
        "bos_id": ids[BOS],
        "eos_id": ids[EOS],
        "pad_id": ids[PAD],
    }
    wrong = [
        f"tokenizer.{key} is {getattr(manifest.tokenizer, key)}, the file says {value}"
        for key, value in file_says.items()
        if getattr(manifest.tokenizer, key) != value
    ]
    if wrong:
        raise ManifestError(f"{manifest.root / MANIFEST_NAME}: {'; '.join(wrong)}")


@dataclass(frozen=True, eq=False)
class CheckedShard:
    """A shard `verify` checked, opened again only to read a document: a folder's every shard
    held open at once ran out of file descriptors (two a shard) on large folders."""

    entry: ShardEntry

    @property
    def path(self) -> Path:
        return self.entry.path

    @property
    def num_docs(self) -> int:
        return self.entry.documents

    def document(self, i: int) -> np.ndarray:
        return np.array(open_shard(self.entry.path).document(i))


def verify(manifest: Manifest) -> dict[str, list[CheckedShard]]:
    """Check every shard of every split against the manifest and its tokenizer file, one
    at a time; return them by split."""
    check_tokenizer_fields(manifest, load_tokenizer(verified_tokenizer(manifest)))
    opened = {}
    for name, split in {**manifest.buckets, "validation": manifest.validation}.items():
        shards = []
        for entry in split.shards:
            shard = open_shard(entry.path, entry.tokens, entry.documents, manifest.dtype)
            if shard.num_tokens and int(shard.tokens.max()) >= manifest.tokenizer.vocab_size:
                raise ShardError(
                    f"{entry.path}: token id {int(shard.tokens.max())} is outside the "
                    f"vocabulary of {manifest.tokenizer.vocab_size}: corrupted"
                )
            if entry.sha256 is not None and shard_sha256(entry.path) != entry.sha256:
                raise ShardError(
                    f"{entry.path}: its bytes differ from the sha256 manifest.json records: "
                    "damaged since the tokenize stage wrote it"
                )
            shards.append(CheckedShard(entry))
        opened[name] = shards
    return opened


def summary(manifest: Manifest) -> list[str]:
    tok = manifest.tokenizer
    lines = [
        f"tokens folder  {manifest.root}",
        f"tokenizer      {tok.file}  vocab {tok.vocab_size}  sha256 {tok.sha256[:16]}…  "
        f"eos {tok.eos_id}  bos {tok.bos_id}  pad {tok.pad_id}",
        f"dtype          {manifest.dtype}   max_epochs {manifest.max_epochs:g}   "
        f"config {manifest.curation_config_hash[:16]}",
        "",
        f"{'split':<16}{'tokens':>14}{'documents':>12}{'shards':>8}{'bytes/token':>13}",
    ]
    splits: dict[str, Split] = {**manifest.buckets, "(validation)": manifest.validation}
    for name, split in splits.items():
        ratio = f"{split.bytes / split.tokens:.2f}" if split.tokens else "-"
        lines.append(
            f"{name:<16}{split.tokens:>14,}{split.documents:>12,}{len(split.shards):>8}{ratio:>13}"
        )
    lines.append("")
    for mix in manifest.mixtures:
        parts = ", ".join(f"{b} {w:.3f}" for b, w in manifest.mixture(mix).items())
        lines.append(f"mixture {mix:<8} {parts}")
    return lines


def sample_documents(
    opened: dict[str, list[CheckedShard]], count: int, seed: int
) -> list[tuple[str, CheckedShard, int]]:
    """`count` (split, shard, document index) drawn uniformly over all documents, seeded."""
    everything = [(name, shard) for name, shards in opened.items() for shard in shards]
    sizes = np.array([shard.num_docs for _, shard in everything], dtype=np.int64)
    if not sizes.sum():
        return []
    rng = np.random.default_rng(seed)
    picks = rng.choice(int(sizes.sum()), size=min(count, int(sizes.sum())), replace=False)
    starts = np.concatenate([[0], np.cumsum(sizes)])
    chosen = []
    for pick in sorted(picks.tolist()):
        i = int(np.searchsorted(starts, pick, side="right")) - 1
        name, shard = everything[i]
        chosen.append((name, shard, pick - int(starts[i])))
    return chosen


def previous_document(shards: list[CheckedShard], shard: CheckedShard, i: int) -> np.ndarray | None:
    """The document before document `i` of `shard` in its split: in the shard before for the
    first (the tokenize stage starts a new shard between pieces of one document)."""
    if i:
        return shard.document(i - 1)
    k = next(k for k, s in enumerate(shards) if s is shard)
    earlier = [s for s in shards[:k] if s.num_docs]
    return earlier[-1].document(earlier[-1].num_docs - 1) if earlier else None


def shown_text(tokenizer: Tokenizer, ids: list[int]) -> str:
    """A document as a terminal may show it: its special tokens as ⟦<|name|>⟧, which text
    cannot spell (text spelling `<|end_of_text|>` shows as written), control characters other
    than newline and tab escaped (an ANSI escape in a page recoloured the terminal)."""
    specials = {i: token for token, i in special_ids(tokenizer).items()}
    parts, run = [], []
    for i in [*ids, None]:
        if i is None or i in specials:
            if run:
                parts.append(_CONTROL.sub(_escaped, _decoded(tokenizer, run)))
                run = []
            if i is not None:
                parts.append(f"⟦{specials[i]}⟧")
        else:
            run.append(i)
    return "".join(parts)


def _decoded(tokenizer: Tokenizer, ids: list[int]) -> str:
    """`ids` as text, where a piece of a split document begins or ends inside a character
    (the split is by tokens) its stray bytes as `\\xNN`: decoding shows them as U+FFFD,
    which reads as damage the shards do not have."""
    if not isinstance(tokenizer.decoder, decoders.ByteLevel):
        return tokenizer.decode(ids)
    try:
        raw = bytes(_BYTE_OF[c] for i in ids for c in tokenizer.id_to_token(i))
    except KeyError:  # an added token written as text, not in the byte alphabet
        return tokenizer.decode(ids)
    return raw.decode("utf-8", errors="backslashreplace")


def _byte_of_char() -> dict[str, int]:
    """GPT-2's byte-level alphabet reversed: the printable Latin-1 bytes stand for
    themselves, the others for the characters from U+0100 on, in byte order."""
    kept = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), 256)]
    moved = [b for b in range(256) if b not in kept]
    return {chr(b): b for b in kept} | {chr(256 + n): b for n, b in enumerate(moved)}


_BYTE_OF = _byte_of_char()
# control characters but newline and tab: C0, DEL and C1
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def _escaped(match: re.Match) -> str:
    return f"\\x{ord(match.group()):02x}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="refinery inspect-shards", description=__doc__)
    parser.add_argument("tokens", metavar="OUT/tokens", help="a tokens folder (manifest.json)")
    count = non_negative_int
    parser.add_argument("--docs", type=count, default=3, help="documents to decode (default 3)")
    parser.add_argument("--seed", type=count, default=0, help="which documents (default 0)")
    parser.add_argument("--chars", type=count, default=400, help="characters per document (400)")
    args = parser.parse_args(argv)
    manifest = read_manifest(args.tokens)
    opened = verify(manifest)
    print("\n".join(summary(manifest)))
    tokenizer = load_tokenizer(manifest.tokenizer_path)
    eos = special_ids(tokenizer)[EOS]
    for name, shard, i in sample_documents(opened, args.docs, args.seed):
        ids = shard.document(i).tolist()
        text = shown_text(tokenizer, ids)
        shown = text if len(text) <= args.chars else text[: args.chars] + " […]"
        before = previous_document(opened[name], shard, i)  # a piece may begin a shard
        piece = [
            "goes on from the previous" if before is not None and before[-1] != eos else "",
            "goes on in the next" if ids[-1] != eos else "",
        ]
        where = f"; a piece of a longer document: {' and '.join(filter(None, piece))}"
        where = where if any(piece) else ""
        print(f"\n--- {name} {shard.path.name} document {i} ({len(ids)} tokens{where})\n{shown}")
    print(f"\nok: {sum(len(s) for s in opened.values())} shards match manifest.json")
    return 0
