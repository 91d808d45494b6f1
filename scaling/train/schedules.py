"""The run's learning-rate schedule: `scaling.core.schedules` read off a `ScheduleConfig`.

`t` counts updates from 0 (see `scaling.core.schedules`). The trainer evaluates the
schedule on the host and passes the learning rate to the compiled step, so one compiled
step serves every schedule.
"""

from __future__ import annotations

from scaling.core import schedules as core
from scaling.train.config import ScheduleConfig


def warmup_steps(cfg: ScheduleConfig, total_steps: int) -> int:
    return core.warmup_steps(cfg.warmup, total_steps)


def cooldown_steps(cfg: ScheduleConfig, total_steps: int) -> int:
    """Length of the WSD cooldown (at least 1 update when cooldown_fraction > 0)."""
    return core.cooldown_steps(cfg.cooldown_fraction, total_steps)


def check_schedule(cfg: ScheduleConfig, total_steps: int) -> None:
    """Reject a schedule that does not fit in the run: a warmup as long as the run never
    reaches the peak rate, and a WSD warmup overlapping its cooldown has no stable phase."""
    warm = warmup_steps(cfg, total_steps)
    if warm >= total_steps:
        raise ValueError(
            f"schedule.warmup={cfg.warmup:g} ({warm} steps) is not shorter than the run "
            f"({total_steps} steps); the learning rate would never reach its peak"
        )
    if cfg.kind == "wsd" and warm + cooldown_steps(cfg, total_steps) > total_steps:
        raise ValueError(
            f"schedule.warmup={cfg.warmup:g} ({warm} steps) and schedule.cooldown_fraction="
            f"{cfg.cooldown_fraction:g} ({cooldown_steps(cfg, total_steps)} steps) overlap in a run of "
            f"{total_steps} steps"
        )


def learning_rate(cfg: ScheduleConfig, peak: float, t: float, total_steps: int) -> float:
    """The learning rate of update `t` (0-based) in a run of `total_steps` updates."""
    return core.learning_rate(
        t,
        kind=cfg.kind,
        peak=peak,
        total_steps=total_steps,
        warmup_steps=warmup_steps(cfg, total_steps),
        floor=cfg.min_lr_ratio * peak,
        cooldown_steps=cooldown_steps(cfg, total_steps),
        cooldown_shape=cfg.cooldown_shape,
    )


def schedule_fn(cfg: ScheduleConfig, peak: float, total_steps: int):
    """`t -> lr` for one run (a closure over `learning_rate`)."""
    return lambda t: learning_rate(cfg, peak, int(t), total_steps)
