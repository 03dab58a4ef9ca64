"""`train.profile_start=N`: a torch.profiler trace of a few steps of the run itself.

A step that is slow on some cluster is slow for reasons a synthetic benchmark may not have:
the data, the interconnect, the parallelism. So the trainer can profile its own steps
N .. N + `train.profile_steps` - 1 on every rank and write, per rank, the trace
(`out/profile/rank<R>-steps<N>-<M>.json`, for chrome://tracing or Perfetto) and the operators
that took the most time (`... .txt`; GPU time on CUDA, CPU time on CPU). The steps' metrics
say `profiled: true`: the profiler slows them.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

TOP = 30  # operators in the text table


class StepProfiler:
    """Starts torch.profiler before step `start` and writes its files after the window's last
    step; does nothing when `start` is 0. A run resumed inside the window profiles the rest
    of it."""

    def __init__(self, start: int, steps: int, out: Path, rank: int, cuda: bool):
        self.first, self.last = start, start + steps - 1
        self.enabled = start > 0 and steps > 0
        self.folder = out / "profile"
        self.rank, self.cuda = rank, cuda
        self.active: profile | None = None
        self.begun = 0  # the first step begun under the profiler
        self.step = 0  # the last step begun under the profiler

    def missed(self, start_step: int) -> bool:
        """Whether a run resumed after `start_step` steps has left the whole window behind."""
        return self.enabled and start_step >= self.last

    def begin(self, step: int) -> None:
        """Called before step `step` (1-based) runs."""
        if self.enabled and self.active is None and self.first <= step <= self.last:
            self.begun = step
            activities = [ProfilerActivity.CPU]
            if self.cuda:
                activities.append(ProfilerActivity.CUDA)
            self.active = profile(activities=activities)
            self.active.start()
        if self.active is not None:
            self.step = step

    @property
    def profiling(self) -> bool:
        return self.active is not None

    def end(self, step: int) -> None:
        """Called after step `step` has run and been logged."""
        if step == self.last:
            self.close()

    def close(self) -> None:
        """Stop and write what was captured (also when the run ends inside the window)."""
        if self.active is None:
            return
        if self.cuda:
            torch.cuda.synchronize()
        self.active.stop()
        self.folder.mkdir(parents=True, exist_ok=True)
        stem = self.folder / f"rank{self.rank}-steps{self.begun}-{self.step}"
        tmp = stem.with_suffix(".tmp")
        self.active.export_chrome_trace(str(tmp))
        os.replace(tmp, stem.with_suffix(".json"))
        sort_by = "self_device_time_total" if self.cuda else "self_cpu_time_total"
        tmp.write_text(self.active.key_averages().table(sort_by=sort_by, row_limit=TOP) + "\n")
        os.replace(tmp, stem.with_suffix(".txt"))
        self.active = None
