"""Learning-rate schedules, once, for the trainer and the analysis (no JAX, no numpy).

One step origin: `t` counts optimizer updates from 0. Update t takes the parameters from
step t to step t + 1 and uses `learning_rate(t)`; the step a metric is logged at after
it is t + 1 (`scaling.analysis.schedules` takes that logged step and subtracts 1).

Every schedule warms up linearly over `warmup_steps` updates (lr(0) = peak/warmup_steps,
never 0) and then

- "constant": peak;
- "cosine":   peak -> floor along a half cosine, reaching the floor at the last update;
- "wsd":      stable at peak, then a cooldown over the last `cooldown_steps` updates
              that reaches the floor at the last update, shaped "linear" or "1-sqrt"
              (lr = floor + (peak - floor)·(1 - √progress), Hägele et al. 2024).

Past the last update a schedule stays at its floor.
"""

from __future__ import annotations

import math

SCHEDULE_KINDS = ("cosine", "wsd", "constant")
COOLDOWN_SHAPES = ("linear", "1-sqrt")
ANNEAL_SHAPES = (*COOLDOWN_SHAPES, "cosine")  # every way down from one rate to another


def warmup_steps(warmup: float, total_steps: int) -> int:
    """A warmup given as a step count (>= 1) or as a fraction of the run (< 1), in updates."""
    if warmup >= 1:
        return int(warmup)
    return int(round(warmup * total_steps))


def cooldown_steps(fraction: float, total_steps: int) -> int:
    """A WSD cooldown over the last `fraction` of the run, in updates (at least 1 when > 0)."""
    if fraction <= 0:
        return 0
    return max(1, int(round(fraction * total_steps)))


def anneal(high: float, low: float, progress: float, shape: str) -> float:
    """The rate a share `progress` (0..1) of the way down from `high` to `low`."""
    if shape == "linear":
        return high + (low - high) * progress
    if shape == "1-sqrt":
        return low + (high - low) * (1.0 - math.sqrt(progress))
    if shape == "cosine":
        return low + (high - low) * 0.5 * (1.0 + math.cos(math.pi * progress))
    raise ValueError(f"unknown cooldown shape {shape!r}; choose one of {', '.join(ANNEAL_SHAPES)}")


def learning_rate(
    t: float,
    *,
    kind: str,
    peak: float,
    total_steps: int,
    warmup_steps: int = 0,
    floor: float = 0.0,
    cooldown_steps: int = 0,
    cooldown_shape: str = "linear",
) -> float:
    """The learning rate of update `t` (0-based) in a run of `total_steps` updates."""
    if t < warmup_steps:
        return peak * (t + 1) / warmup_steps
    if kind == "constant":
        return peak
    if kind == "cosine":
        span = total_steps - warmup_steps - 1
        progress = 1.0 if span <= 0 else min(1.0, (t - warmup_steps) / span)
        return anneal(peak, floor, progress, "cosine")
    if kind != "wsd":
        raise ValueError(f"unknown schedule kind {kind!r}; choose one of {', '.join(SCHEDULE_KINDS)}")
    start = total_steps - cooldown_steps
    if t < start or cooldown_steps == 0:
        return peak
    return anneal(peak, floor, min(1.0, (t - start + 1) / cooldown_steps), cooldown_shape)


def branch_cooldown(lr: list[float], branch_step: int, cooldown_steps: int, *, shape: str = "linear",
                    floor: float = 0.0) -> list[float]:  # fmt: skip
    """A cooldown branched after `branch_step` updates of the per-update schedule `lr`:
    its first branch_step rates, then `cooldown_steps` updates falling from
    lr[branch_step - 1] to `floor` (reached at the last one), as a WSD branch does."""
    if not 1 <= branch_step <= len(lr):
        raise ValueError(f"branch_step must be in [1, {len(lr)}] (the schedule's length); got {branch_step}")
    if cooldown_steps < 1:
        raise ValueError(f"cooldown_steps must be >= 1, got {cooldown_steps}")
    start = lr[branch_step - 1]
    tail = [anneal(start, floor, (i + 1) / cooldown_steps, shape) for i in range(cooldown_steps)]
    return [*lr[:branch_step], *tail]
