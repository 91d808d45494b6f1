"""Resampled refits: the multiplicities of a bootstrap and their batched refit.

Shared by the bootstrap (``uncertainty``) and the calibration's inner backtests
(``predictive``), which bootstrap each inner fit to learn how much of its extrapolation
error its own parameter uncertainty explains. Each resample enters the objective as a
vector of point multiplicities, so all of them share one shape and one batched L-BFGS.
"""

from __future__ import annotations

import numpy as np

from .engine import (
    Points,
    bounded_coordinates,
    free_coordinates,
    lane_weights,
    minimize,
    shared_arrays,
    value_and_grad,
)
from .laws import Law

__all__ = ["refit_from", "resample_weights"]


def resample_weights(n: int, n_boot: int, *, groups=None, seed: int = 0) -> np.ndarray:
    """(n_boot, n) multiplicities: points drawn with replacement, or whole groups
    (rows with the same label) drawn with replacement when ``groups`` is given."""
    rng = np.random.default_rng(seed)
    if groups is None:
        return rng.multinomial(n, np.full(n, 1.0 / n), size=n_boot).astype(float)
    labels, index = np.unique(np.asarray(groups), return_inverse=True)
    G = len(labels)
    counts = rng.multinomial(G, np.full(G, 1.0 / G), size=n_boot).astype(float)
    return counts[:, index]


def refit_from(law: Law, delta: float, lower, pts: Points, W: np.ndarray, theta, *, gtol: float, max_iter: int):
    """Refit every row of W (R, n multiplicities) starting from ``theta`` (fit
    coordinates (P,), e.g. the full-data optimum, or one start per row (R, P)): (theta
    (R, P) fit coordinates, objective (R,), status (R,)). ``lower``: the exponents'
    lower bounds (fit.exponent_bounds)."""
    import jax

    vg = value_and_grad(law, float(delta), lower)
    with jax.enable_x64(True):
        x0 = np.broadcast_to(np.asarray(theta, dtype=float), (len(W), law.n_params))
        x0 = free_coordinates(np.array(x0), lower)
        res = minimize(vg, x0, {"w": lane_weights(pts, W)}, shared_arrays(pts), gtol=gtol, max_iter=max_iter)
    return bounded_coordinates(res.x, lower), res.f, res.status
