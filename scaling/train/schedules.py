"""Learning-rate schedules: pure functions of the update index.

`t` counts updates from 0: update t takes the parameters from step t to step t+1 and
uses lr(t). Every schedule warms up linearly over `warmup` updates (lr(0) = peak/warmup,
never 0) and then

- cosine:   peak → floor along a half cosine, reaching the floor at the last update;
- wsd:      stable at peak, then a cooldown over the last `decay_fraction` of the updates
            that reaches the floor at the last update, "linear" or "sqrt" (1 − √progress,
            Hägele et al. 2024);
- constant: peak.

floor = min_lr_ratio × peak. The trainer evaluates the schedule on the host and passes
the learning rate to the compiled step, so one compiled step serves every schedule.
"""

from __future__ import annotations

import math

from scaling.train.config import ScheduleConfig


def warmup_steps(cfg: ScheduleConfig, total_steps: int) -> int:
    if cfg.warmup >= 1:
        return int(cfg.warmup)
    return int(round(cfg.warmup * total_steps))


def decay_steps(cfg: ScheduleConfig, total_steps: int) -> int:
    """Length of the WSD cooldown (at least 1 update when decay_fraction > 0)."""
    if cfg.decay_fraction <= 0:
        return 0
    return max(1, int(round(cfg.decay_fraction * total_steps)))


def check_schedule(cfg: ScheduleConfig, total_steps: int) -> None:
    """Reject a schedule that does not fit in the run: a warmup as long as the run never
    reaches the peak rate, and a WSD warmup overlapping its cooldown has no stable phase."""
    warm = warmup_steps(cfg, total_steps)
    if warm >= total_steps:
        raise ValueError(
            f"schedule.warmup={cfg.warmup:g} ({warm} steps) is not shorter than the run "
            f"({total_steps} steps); the learning rate would never reach its peak"
        )
    if cfg.kind == "wsd" and warm + decay_steps(cfg, total_steps) > total_steps:
        raise ValueError(
            f"schedule.warmup={cfg.warmup:g} ({warm} steps) and schedule.decay_fraction="
            f"{cfg.decay_fraction:g} ({decay_steps(cfg, total_steps)} steps) overlap in a run of "
            f"{total_steps} steps"
        )


def learning_rate(cfg: ScheduleConfig, peak: float, t: int, total_steps: int) -> float:
    """The learning rate of update `t` (0-based) in a run of `total_steps` updates."""
    floor = cfg.min_lr_ratio * peak
    warm = warmup_steps(cfg, total_steps)
    if t < warm:
        return peak * (t + 1) / warm
    if cfg.kind == "constant":
        return peak
    if cfg.kind == "cosine":
        span = total_steps - warm - 1
        progress = 1.0 if span <= 0 else min(1.0, (t - warm) / span)
        return floor + (peak - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))
    # wsd
    decay = decay_steps(cfg, total_steps)
    start = total_steps - decay
    if t < start or decay == 0:
        return peak
    progress = min(1.0, (t - start + 1) / decay)
    if cfg.decay_shape == "sqrt":
        return floor + (peak - floor) * (1.0 - math.sqrt(progress))
    return peak + (floor - peak) * progress


def schedule_fn(cfg: ScheduleConfig, peak: float, total_steps: int):
    """`t -> lr` for one run (a closure over `learning_rate`)."""
    return lambda t: learning_rate(cfg, peak, int(t), total_steps)
