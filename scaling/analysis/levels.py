"""Grouping of positive values (compute budgets, model sizes) into levels, in log space.

One rule for everything that asks "which rows share a budget / a size": sorted
log-values are cut wherever one exceeds its predecessor by more than ``log1p(rtol)``.
Within a group, neighbours are close, but a group can still chain over a wide range
when the values are dense (digitized points jitter); ``group_spans`` reports each
group's max/min so that callers can warn when a group spans more than ``WIDE_SPAN``.
"""

from __future__ import annotations

import numpy as np

__all__ = ["group_log", "group_spans", "WIDE_SPAN"]

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
