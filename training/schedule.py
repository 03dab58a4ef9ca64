"""Learning-rate schedules as pure functions of the step, so resuming needs only the step."""

from __future__ import annotations

import math

from training.config import ScheduleConfig


def lr_at(step: int, max_steps: int, lr: float, cfg: ScheduleConfig) -> float:
    """Learning rate of optimizer step `step` (0-based) out of `max_steps`."""
    min_lr = lr * cfg.min_lr_ratio
    if step < cfg.warmup_steps:
        return lr * (step + 1) / cfg.warmup_steps
    if cfg.kind == "constant":
        return lr
    if cfg.kind == "cosine":
        progress = min(1.0, (step - cfg.warmup_steps) / max(1, max_steps - cfg.warmup_steps))
        return min_lr + (lr - min_lr) * 0.5 * (1.0 + math.cos(math.pi * progress))
    if cfg.kind == "wsd":
        decay_steps = max(1, round(cfg.decay_fraction * max_steps))
        decay_start = max(cfg.warmup_steps, max_steps - decay_steps)
        if step < decay_start:
            return lr
        progress = min(1.0, (step - decay_start) / max(1, max_steps - decay_start))
        return decay(lr, min_lr, progress, cfg.decay_shape)
    # linear / 1-sqrt: the whole run is a decay (annealing), reaching min_lr at max_steps
    progress = min(1.0, (step - cfg.warmup_steps) / max(1, max_steps - cfg.warmup_steps))
    return decay(lr, min_lr, progress, cfg.kind)


def schedule_note(max_steps: int, cfg: ScheduleConfig) -> str | None:
    """What a warmup too long for the run does to the schedule, or None when it fits."""
    if cfg.warmup_steps > max_steps:
        return (
            f"schedule: warmup_steps={cfg.warmup_steps} > max_steps={max_steps}: the learning "
            f"rate never reaches optim.lr and never decays"
        )
    if cfg.warmup_steps == max_steps:
        return (
            f"schedule: warmup_steps={cfg.warmup_steps} = max_steps: the learning rate reaches "
            "optim.lr on the last step only and never decays"
        )
    if cfg.kind == "wsd":
        decay_steps = max(1, round(cfg.decay_fraction * max_steps))
        if cfg.warmup_steps > max_steps - decay_steps:
            return (
                f"schedule: the warmup ({cfg.warmup_steps} steps) runs into the wsd decay "
                f"({decay_steps} of {max_steps} steps), which shrinks to "
                f"{max_steps - cfg.warmup_steps} steps"
            )
    return None


def decay(lr: float, min_lr: float, progress: float, shape: str) -> float:
    """linear: straight line to min_lr; 1-sqrt (Hägele et al. 2024): drops early, then flattens."""
    fraction = 1.0 - progress if shape == "linear" else 1.0 - math.sqrt(progress)
    return min_lr + (lr - min_lr) * fraction


def set_lr(optimizer, step: int, max_steps: int, lr: float, cfg: ScheduleConfig) -> float:
    """Give every parameter group step `step`'s learning rate; return it (for the metrics)."""
    value = lr_at(step, max_steps, lr, cfg)
    for group in optimizer.param_groups:
        group["lr"] = value
    return value
