"""Learning-rate schedules as pure numpy functions of the step.

Steps count from 1: ``schedule(step)`` is the learning rate used by optimizer step
``step``, so a run of T steps uses ``schedule(np.arange(1, T + 1))``. Every builder
takes an optional linear warmup (from peak/warmup_steps up to peak over the first
``warmup_steps`` steps).

- ``constant_lr``: peak after warmup.
- ``cosine_lr``: cosine from peak to ``floor`` at ``total_steps`` (floor after that).
- ``wsd_lr``: warmup-stable-decay: peak, then a cooldown over the last
  ``cooldown_steps`` steps to ``floor``, shaped ``'linear'`` or ``'1-sqrt'`` (alias
  ``'sqrt'``; Hägele et al. 2024: lr = floor + (peak - floor)·(1 - sqrt(progress))).

These follow ``scaling.train.schedules`` (update t there is step t + 1 here), written
again in numpy because the analysis never imports the training stack.
- ``branch_cooldown``: a cooldown branched from step ``branch_step`` of an existing
  per-step schedule (how cooldown checkpoints of a constant-LR run are made).
"""

from __future__ import annotations

import numpy as np

__all__ = ["COOLDOWN_SHAPES", "constant_lr", "cosine_lr", "wsd_lr", "branch_cooldown", "linear_warmup"]


def _steps(step) -> np.ndarray:
    s = np.asarray(step, dtype=float)
    if np.any(s < 1):
        raise ValueError(f"steps count from 1; got {s.min():g}")
    return s


def linear_warmup(step, warmup_steps: int) -> np.ndarray:
    """Multiplier rising linearly from 1/warmup_steps to 1 over the first warmup_steps steps."""
    s = _steps(step)
    if warmup_steps < 0:
        raise ValueError(f"warmup_steps must be >= 0, got {warmup_steps}")
    return np.ones_like(s) if warmup_steps == 0 else np.minimum(1.0, s / warmup_steps)


def _cooldown_factor(progress: np.ndarray, shape: str) -> np.ndarray:
    """1 at progress 0 falling to 0 at progress 1."""
    p = np.clip(progress, 0.0, 1.0)
    if shape == "linear":
        return 1.0 - p
    if shape in ("1-sqrt", "sqrt"):
        return 1.0 - np.sqrt(p)
    if shape == "cosine":
        return 0.5 * (1.0 + np.cos(np.pi * p))
    raise ValueError(f"unknown cooldown shape {shape!r}; choose one of {COOLDOWN_SHAPES}")


COOLDOWN_SHAPES = ("linear", "1-sqrt", "sqrt", "cosine")  # "sqrt": scaling.train's name for 1-sqrt


def constant_lr(step, *, peak: float, warmup_steps: int = 0) -> np.ndarray:
    return peak * linear_warmup(step, warmup_steps)


def cosine_lr(step, *, peak: float, total_steps: int, floor: float = 0.0, warmup_steps: int = 0) -> np.ndarray:
    s = _steps(step)
    if total_steps <= warmup_steps:
        raise ValueError(f"total_steps ({total_steps}) must exceed warmup_steps ({warmup_steps})")
    # at peak on the first step after warmup, at the floor on the last step
    p = (s - 1 - warmup_steps) / max(1, total_steps - warmup_steps - 1)
    lr = floor + (peak - floor) * _cooldown_factor(p, "cosine")
    return lr * linear_warmup(s, warmup_steps)


def wsd_lr(
    step,
    *,
    peak: float,
    total_steps: int,
    cooldown_steps: int,
    shape: str = "linear",
    floor: float = 0.0,
    warmup_steps: int = 0,
) -> np.ndarray:
    s = _steps(step)
    if not 0 < cooldown_steps <= total_steps - warmup_steps:
        raise ValueError(f"cooldown_steps must be in (0, total_steps - warmup_steps]; got {cooldown_steps}")
    start = total_steps - cooldown_steps  # the last step at peak
    p = (s - start) / cooldown_steps
    lr = np.where(s <= start, peak, floor + (peak - floor) * _cooldown_factor(p, shape))
    return lr * linear_warmup(s, warmup_steps)


def branch_cooldown(
    lr, branch_step: int, cooldown_steps: int, *, shape: str = "linear", floor: float = 0.0
) -> np.ndarray:
    """Per-step LR of a cooldown branched after ``branch_step`` steps of the schedule
    ``lr`` (per-step array): the first branch_step entries of lr, then cooldown_steps
    steps falling from lr[branch_step - 1] to ``floor`` (reached at the last step)."""
    lr = np.asarray(lr, dtype=float)
    if not 1 <= branch_step <= len(lr):
        raise ValueError(f"branch_step must be in [1, {len(lr)}] (the schedule's length); got {branch_step}")
    if cooldown_steps < 1:
        raise ValueError(f"cooldown_steps must be >= 1, got {cooldown_steps}")
    start = lr[branch_step - 1]
    p = np.arange(1, cooldown_steps + 1) / cooldown_steps
    return np.concatenate([lr[:branch_step], floor + (start - floor) * _cooldown_factor(p, shape)])
