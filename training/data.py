"""Token loader: memory-mapped shards, mixture sampling, deterministic and disjoint across ranks.

A bucket is one token stream (its shards end to end; documents already end in eos) cut into
windows of seq_len + 1 tokens at stride seq_len (nanoGPT style), so many small shards lose
nothing at their edges. Each epoch of a bucket visits its windows in a
permutation seeded by (seed, bucket, epoch). For step s, a generator seeded by (seed, s) draws
the bucket of each of the step's global-batch windows from the mixture weights; bucket b's
next window is the one after the `consumed[b]` it has already served. So the batch of a step
is a pure function of (seed, step, cursor), the cursor is a short list of counts that goes into
the checkpoint, and `cursor_at(step)` rebuilds it from (seed, step) alone. The cursor counts
every bucket of the manifest, those outside the mixture carried through unchanged, so a run
that continues another (an anneal of an anneal) knows where each bucket stopped.

A bucket stops being sampled after `max_epochs` passes (the manifest's cap on upsampling); the
remaining buckets share its weight, as they share the weight of a bucket too small for one
window (`unsampled`). When every bucket is at its cap the run is asking for more tokens than
the data allows: sampling goes on by the plain weights, so a small demo dataset still trains
for max_steps, and the batch's `past_cap` tells the trainer to say so. The step's windows are
split into contiguous slices, one per data-parallel rank, so ranks never see the same
window.
"""

from __future__ import annotations

import queue
import threading
import time
import zlib
from dataclasses import dataclass

import numpy as np
import torch

from refinery.errors import RefineryError
from refinery.manifest import Manifest, Split
from refinery.shards import ShardError, ShardMaps, open_shard


class NoTrainingData(RefineryError):
    """No bucket of the mixture holds a single seq_len + 1 window."""


class WindowedSplit:
    """The seq_len+1 token windows of a bucket (or the validation split), across its shards."""

    def __init__(
        self,
        split: Split,
        seq_len: int,
        dtype: str | None = None,
        vocab_size: int = 0,
        maps: ShardMaps | None = None,
    ):
        self.seq_len = seq_len
        self.vocab_size = vocab_size  # ids at or above it are corruption (0: unchecked)
        self.maps = maps or ShardMaps()
        self.shards = []  # (path, token dtype, token count)
        for entry in split.shards:  # each checked, then let go: `maps` maps it when read
            shard = open_shard(entry.path, entry.tokens, entry.documents, dtype)
            self.maps.checked(shard.path)
            self.shards.append((shard.path, shard.tokens.dtype, shard.num_tokens))
        sizes = [count for _, _, count in self.shards]
        self.starts = np.concatenate([[0], np.cumsum(sizes, dtype=np.int64)])  # stream offsets
        self.num_windows = max(0, (int(self.starts[-1]) - 1) // seq_len)

    def window(self, i: int) -> np.ndarray:
        """Tokens [i * seq_len, i * seq_len + seq_len + 1) of the stream, across shards."""
        position, end = i * self.seq_len, i * self.seq_len + self.seq_len + 1
        shard = int(np.searchsorted(self.starts, position, side="right")) - 1
        pieces = []
        while position < end:
            offset = int(self.starts[shard])
            stop = min(end, int(self.starts[shard + 1]))
            piece = self.maps.read(*self.shards[shard], position - offset, stop - offset)
            if self.vocab_size and piece.size and int(piece.max()) >= self.vocab_size:
                self._corrupted(shard, piece, position - offset)
            pieces.append(piece)
            position, shard = stop, shard + 1
        return pieces[0] if len(pieces) == 1 else np.concatenate(pieces)

    def _corrupted(self, shard: int, piece: np.ndarray, start: int) -> None:
        at = int(np.argmax(piece >= self.vocab_size))
        path = self.shards[shard][0]
        raise ShardError(
            f"{path}: token {start + at} has id {int(piece[at])}, outside the "
            f"vocabulary of {self.vocab_size} (manifest.json's tokenizer.vocab_size): the shard "
            "or the manifest is corrupted (`refinery inspect-shards` checks both against the "
            "tokenizer file)"
        )


@dataclass
class Batch:
    step: int
    tokens: torch.Tensor  # (accum_steps, micro_batch, seq_len + 1) int64, this rank's share
    cursor: dict  # loader cursor after this step: what a checkpoint at this step records
    past_cap: bool = False  # some window was drawn with every bucket at its max_epochs cap


class TokenLoader:
    """Batches for consecutive steps; a background thread prepares `prefetch` steps ahead."""

    def __init__(
        self,
        manifest: Manifest,
        mixture: str,
        seq_len: int,
        global_windows: int,
        accum_steps: int,
        micro_batch: int,
        seed: int,
        rank: int = 0,
        world: int = 1,
    ):
        if global_windows != world * accum_steps * micro_batch:
            raise ValueError("global_windows must equal world * accum_steps * micro_batch")
        weights = manifest.mixture(mixture)
        vocab = manifest.tokenizer.vocab_size
        self.names = sorted(weights)
        self.all_names = sorted(manifest.buckets)  # what a cursor counts
        self.weights = np.array([weights[n] for n in self.names])
        maps = ShardMaps()  # one bound on the shards mapped, however many buckets
        self.buckets = [
            WindowedSplit(manifest.buckets[n], seq_len, manifest.dtype, vocab, maps)
            for n in self.names
        ]
        if not any(b.num_windows for b in self.buckets):
            raise NoTrainingData(
                f"mixture {mixture!r}: no shard of buckets {self.names} holds seq_len + 1 = "
                f"{seq_len + 1} tokens; lower model.seq_len or add data"
            )
        self.caps = np.array([int(manifest.max_epochs * b.num_windows) for b in self.buckets])
        # buckets the mixture weighs but that cannot fill one window: never sampled
        self.unsampled = {  # name -> its share of the mixture
            n: float(w / self.weights.sum())
            for n, w, b in zip(self.names, self.weights, self.buckets, strict=True)
            if w > 0 and not b.num_windows
        }
        self.seq_len, self.seed = seq_len, seed
        self.global_windows = global_windows
        self.accum_steps, self.micro_batch = accum_steps, micro_batch
        self.rank, self.world = rank, world
        self._perm_cache: dict[tuple[int, int], np.ndarray] = {}
        self._queue: queue.Queue | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.wait_seconds = 0.0  # time the trainer spent blocked on data

    # ---- pure functions of (seed, step, cursor) ----------------------------------------

    def initial_cursor(self) -> dict:
        return {"step": 0, "consumed": {n: 0 for n in self.all_names}}

    def plan(self, step: int, consumed: np.ndarray) -> list[tuple[int, int]]:
        """(bucket, position) of each global-batch window of `step`, in rank-slice order."""
        return self._draw(step, consumed)[0]

    def _draw(self, step: int, consumed: np.ndarray) -> tuple[list[tuple[int, int]], bool]:
        """The plan of `step`, and whether some draw came with every bucket at its cap."""
        rng = np.random.default_rng((self.seed, step))
        position = consumed.copy()
        cdf, past_cap = self._cdf(position)
        plan, any_past_cap = [], False
        for u in rng.random(self.global_windows):
            any_past_cap |= past_cap
            b = int(np.searchsorted(cdf, u, side="right"))
            plan.append((b, int(position[b])))
            position[b] += 1
            if position[b] >= self.caps[b]:
                cdf, past_cap = self._cdf(position)
        return plan, any_past_cap

    def _cdf(self, position: np.ndarray) -> tuple[np.ndarray, bool]:
        """The buckets' cumulative weights for the next draw, and whether every bucket is at
        its cap (then all of them are drawn from again, by the plain weights)."""
        active = position < self.caps
        past_cap = not active.any()
        if past_cap:
            active = np.array([b.num_windows > 0 for b in self.buckets])
        cdf = np.cumsum(np.where(active, self.weights, 0.0))
        # exactly 1.0 from the last active bucket on: u < 1 never lands past it
        return cdf / cdf[-1], past_cap

    def readable(self) -> list[str]:
        """The buckets of the mixture (weight > 0) that hold a window."""
        weighted = zip(self.names, self.weights, self.caps, strict=True)
        return [name for name, weight, cap in weighted if weight > 0 and cap > 0]

    def capped(self, cursor: dict) -> list[str]:
        """The readable buckets read max_epochs times by `cursor`: the others share their
        weight from then on."""
        caps = dict(zip(self.names, self.caps, strict=True))
        return [name for name in self.readable() if cursor["consumed"][name] >= caps[name]]

    def window_index(self, bucket: int, position: int) -> int:
        n = self.buckets[bucket].num_windows
        epoch, offset = divmod(position, n)
        key = (bucket, epoch)
        if key not in self._perm_cache:
            self._perm_cache = {k: v for k, v in self._perm_cache.items() if k[0] != bucket}
            salt = zlib.crc32(self.names[bucket].encode())
            rng = np.random.default_rng((self.seed, salt, epoch))
            self._perm_cache[key] = rng.permutation(n).astype(np.int64, copy=False)
        return int(self._perm_cache[key][offset])

    def make_batch(self, step: int, cursor: dict) -> Batch:
        if cursor["step"] != step:
            raise ValueError(f"cursor is at step {cursor['step']}, asked for step {step}")
        consumed = np.array([cursor["consumed"][n] for n in self.names], dtype=np.int64)
        plan, past_cap = self._draw(step, consumed)
        share = self.global_windows // self.world
        mine = plan[self.rank * share : (self.rank + 1) * share]
        windows = [self.buckets[b].window(self.window_index(b, pos)) for b, pos in mine]
        array = np.stack(windows).astype(np.int64)
        tokens = torch.from_numpy(array).view(self.accum_steps, self.micro_batch, -1)
        for b, _ in plan:
            consumed[b] += 1
        drawn = dict(zip(self.names, consumed.tolist(), strict=True))
        after = {"step": step + 1, "consumed": {**cursor["consumed"], **drawn}}
        return Batch(step=step, tokens=tokens, cursor=after, past_cap=past_cap)

    def cursor_at(self, step: int) -> dict:
        """The cursor at `step`, rebuilt from the seed alone (tests; recovery without state)."""
        cursor = self.initial_cursor()
        consumed = np.zeros(len(self.names), dtype=np.int64)
        for s in range(step):
            for b, _ in self.plan(s, consumed):
                consumed[b] += 1
        cursor["step"] = step
        cursor["consumed"].update(zip(self.names, consumed.tolist(), strict=True))
        return cursor

    # ---- background prefetch ------------------------------------------------------------

    def start(self, cursor: dict, prefetch: int, pin_memory: bool) -> None:
        """Prepare batches from `cursor` on a background thread, `prefetch` steps ahead."""
        self._queue = queue.Queue(maxsize=max(1, prefetch))

        def produce():
            current = cursor
            while not self._stop.is_set():
                try:
                    batch = self.make_batch(current["step"], current)
                    if pin_memory:
                        batch.tokens = batch.tokens.pin_memory()
                except Exception as err:  # handed to the trainer, which raises it
                    self._put(err)
                    return
                self._put(batch)
                current = batch.cursor

        self._thread = threading.Thread(target=produce, daemon=True, name="token-loader")
        self._thread.start()

    def _put(self, item) -> None:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def next(self) -> Batch:
        started = time.perf_counter()
        item = self._queue.get()
        self.wait_seconds += time.perf_counter() - started
        if isinstance(item, Exception):
            raise item
        return item

    def close(self) -> None:
        """Stop and join the thread: one killed mid-torch-op at exit aborts the process."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)


def validation_windows(
    manifest: Manifest, seq_len: int, max_tokens: int, rank: int = 0, world: int = 1
) -> list[np.ndarray]:
    """This rank's share of the first max_tokens // seq_len validation windows, in order:
    every world-th one, so shares differ by at most one and the windows are the same
    whatever the number of ranks (the evaluation pads the short shares' forwards)."""
    split = WindowedSplit(
        manifest.validation, seq_len, manifest.dtype, manifest.tokenizer.vocab_size
    )
    count = validation_count(manifest, seq_len, max_tokens)
    return [split.window(i).astype(np.int64) for i in range(rank, count, world)]


def validation_count(manifest: Manifest, seq_len: int, max_tokens: int) -> int:
    """How many validation windows all ranks together evaluate."""
    return min(max(0, (manifest.validation.tokens - 1) // seq_len), max_tokens // seq_len)
