"""Log-space geometry of a table's inputs: grouping values into levels (budgets, sizes),
and how far a point lies outside the fitted data.

Grouping:

One rule for everything that asks "which rows share a budget / a size": sorted
log-values are cut wherever one exceeds its predecessor by more than ``log1p(rtol)``.
Within a group, neighbours are close, but a group can still chain over a wide range
when the values are dense (digitized points jitter); ``group_spans`` reports each
group's max/min so that callers can warn when a group spans more than ``WIDE_SPAN``.
"""

from __future__ import annotations

import numpy as np

__all__ = ["group_log", "group_spans", "WIDE_SPAN", "coordinates", "extrapolation_distance"]

# A group whose largest value is more than 1.5x its smallest is probably several
# budgets chained together by jittered values: callers warn about it.
WIDE_SPAN = 1.5


def group_log(values, rtol: float = 0.1) -> np.ndarray:
    """Integer labels (0, 1, ... in increasing value) aligned with ``values``: a new
    group starts where a sorted value exceeds the previous one by more than a factor
    1 + rtol."""
    v = np.asarray(values, dtype=float)
    if not rtol > 0:
        raise ValueError(f"rtol must be positive; got {rtol!r}")
    if np.any(~np.isfinite(v)) or np.any(v <= 0):
        raise ValueError("values must be finite and positive to group them in log space")
    order = np.argsort(v, kind="stable")
    lv = np.log(v[order])
    new = np.r_[False, np.diff(lv) > np.log1p(rtol)]
    labels = np.empty(len(v), dtype=int)
    labels[order] = np.cumsum(new)
    return labels


def group_spans(values, labels) -> np.ndarray:
    """max/min of ``values`` within each label (indexed by label)."""
    v = np.asarray(values, dtype=float)
    labels = np.asarray(labels)
    n = int(labels.max()) + 1 if len(labels) else 0
    hi = np.full(n, -np.inf)
    lo = np.full(n, np.inf)
    np.maximum.at(hi, labels, v)
    np.minimum.at(lo, labels, v)
    return hi / lo


def coordinates(logx) -> np.ndarray:
    """The coordinates distances are measured in: the law's log inputs and, for a law of
    several inputs, their sum (ln N + ln D = ln C - ln k): a run can lie inside the fit
    data's range of N and of D and still far beyond its compute, which is where a law
    of N and D extrapolates most."""
    logx = np.asarray(logx, dtype=float)
    if logx.shape[-1] < 2:
        return logx
    return np.concatenate([logx, logx.sum(axis=-1, keepdims=True)], axis=-1)


def extrapolation_distance(logx, box_lo, box_hi) -> np.ndarray:
    """Euclidean norm (e-folds) of how far each row of log inputs (..., k) lies outside
    the box [box_lo, box_hi] (k,); 0 inside."""
    logx = np.asarray(logx, dtype=float)
    out = np.maximum(logx - np.asarray(box_hi), 0.0) + np.maximum(np.asarray(box_lo) - logx, 0.0)
    return np.sqrt(np.sum(out * out, axis=-1))
