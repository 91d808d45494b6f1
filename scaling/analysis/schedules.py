"""Learning-rate schedules as numpy arrays over logged steps, for the loss-curve analysis.

The math is `scaling.core.schedules`, the trainer's own (no JAX). Steps here are the
logged steps, counted from 1 as curves are indexed: ``schedule(step)`` is the learning
rate of the update that produced step ``step`` (core update ``t = step - 1``), so a run of
T steps uses ``schedule(np.arange(1, T + 1))``. Every builder takes an optional linear
warmup (from peak/warmup_steps up to peak over the first ``warmup_steps`` steps).

- ``constant_lr``: peak after warmup.
- ``cosine_lr``: cosine from peak to ``floor`` at ``total_steps`` (floor after that).
- ``wsd_lr``: warmup-stable-decay: peak, then a cooldown over the last
  ``cooldown_steps`` steps to ``floor``, shaped ``'linear'`` or ``'1-sqrt'``
  (Hägele et al. 2024: lr = floor + (peak - floor)·(1 - sqrt(progress))).
- ``branch_cooldown``: a cooldown branched from step ``branch_step`` of an existing
  per-step schedule (how cooldown checkpoints of a constant-LR run are made); its shape
  may also be ``'cosine'``.
"""

from __future__ import annotations

import numpy as np

from scaling.core import schedules as core

__all__ = ["COOLDOWN_SHAPES", "constant_lr", "cosine_lr", "wsd_lr", "branch_cooldown", "linear_warmup"]

COOLDOWN_SHAPES = core.ANNEAL_SHAPES


def _steps(step) -> np.ndarray:
    s = np.asarray(step, dtype=float)
    if np.any(s < 1):
        raise ValueError(f"steps count from 1; got {s.min():g}")
    return s


def _per_step(step, **schedule) -> np.ndarray:
    s = _steps(step)
    flat = [core.learning_rate(t - 1.0, **schedule) for t in s.ravel().tolist()]
    return np.asarray(flat, dtype=float).reshape(s.shape)


def linear_warmup(step, warmup_steps: int) -> np.ndarray:
    """Multiplier rising linearly from 1/warmup_steps to 1 over the first warmup_steps steps."""
    if warmup_steps < 0:
        raise ValueError(f"warmup_steps must be >= 0, got {warmup_steps}")
    return _per_step(step, kind="constant", peak=1.0, total_steps=0, warmup_steps=warmup_steps)


def constant_lr(step, *, peak: float, warmup_steps: int = 0) -> np.ndarray:
    return _per_step(step, kind="constant", peak=peak, total_steps=0, warmup_steps=warmup_steps)


def cosine_lr(step, *, peak: float, total_steps: int, floor: float = 0.0, warmup_steps: int = 0) -> np.ndarray:
    if total_steps <= warmup_steps:
        raise ValueError(f"total_steps ({total_steps}) must exceed warmup_steps ({warmup_steps})")
    return _per_step(step, kind="cosine", peak=peak, total_steps=total_steps, floor=floor, warmup_steps=warmup_steps)


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
    if shape not in core.COOLDOWN_SHAPES:
        raise ValueError(f"unknown cooldown shape {shape!r}; choose one of {', '.join(core.COOLDOWN_SHAPES)}")
    if not 0 < cooldown_steps <= total_steps - warmup_steps:
        raise ValueError(f"cooldown_steps must be in (0, total_steps - warmup_steps]; got {cooldown_steps}")
    return _per_step(step, kind="wsd", peak=peak, total_steps=total_steps, floor=floor, warmup_steps=warmup_steps,
                     cooldown_steps=cooldown_steps, cooldown_shape=shape)  # fmt: skip


def branch_cooldown(
    lr, branch_step: int, cooldown_steps: int, *, shape: str = "linear", floor: float = 0.0
) -> np.ndarray:
    """Per-step LR of a cooldown branched after ``branch_step`` steps of the schedule
    ``lr`` (per-step array): the first branch_step entries of lr, then cooldown_steps
    steps falling from lr[branch_step - 1] to ``floor`` (reached at the last step)."""
    lr = np.asarray(lr, dtype=float)
    if shape not in COOLDOWN_SHAPES:
        raise ValueError(f"unknown cooldown shape {shape!r}; choose one of {', '.join(COOLDOWN_SHAPES)}")
    out = core.branch_cooldown(lr.tolist(), branch_step, cooldown_steps, shape=shape, floor=floor)
    return np.asarray(out, dtype=float)
