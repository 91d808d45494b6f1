"""Bootstrap uncertainty for a fitted law: parameters, predictions, derived quantities.

Each resample draws the points (or, when rows share a run, whole runs) with
replacement; it enters the objective as a vector of multiplicities, so every resample
has the same shapes and all of them are refitted in one batched L-BFGS computation.
Refits start from the full-data optimum by default (as Besiroglu et al. 2024), or from
the whole starting grid (``start="grid"``, with the same successive-halving pruning as
``fit_law``). Every refit runs to the gradient-norm tolerance; the fraction that got
there is reported.

Intervals are percentile intervals over the resamples.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from .engine import (
    CONVERGED,
    DEFAULT_DELTA,
    DEFAULT_GTOL,
    Points,
    as_points,
    bounded_coordinates,
    bounded_starts,
    free_coordinates,
    lane_weights,
    minimize,
    shared_arrays,
    start_points,
    value_and_grad,
)
from .fit import exponent_bounds, fit_law
from .laws import get_law
from .results import BootstrapResult, FitResult
from .table import as_table

__all__ = ["BootstrapResult", "bootstrap", "resample_weights"]

_LANES_PER_CHUNK = 40_000  # lanes per batched call for the full-grid bootstrap
# Successive halving per resample for start="grid": after 3 objective evaluations keep the
# best 512 of the grid's starts, after 10 the best 64, after 24 the best 16, and converge
# those (checked against converging every start in benchmarks/fit_speed.py).
GRID_BOOTSTRAP_PRUNE = ((3, 512), (10, 64), (24, 16))


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


def bootstrap(
    data,
    law="chinchilla",
    *,
    n_boot: int = 1000,
    seed: int = 0,
    fit: FitResult | None = None,
    start: str = "optimum",
    groups="auto",
    level: float = 0.95,
    delta: float | None = None,
    gtol: float = DEFAULT_GTOL,
    max_iter: int = 2000,
    grid=None,
    prune=GRID_BOOTSTRAP_PRUNE,
    calibrate: bool = True,
    exponent_min: float | None = None,
) -> BootstrapResult:
    """Bootstrap a robust law fit: n_boot resamples, each refitted to convergence.

    data: as for ``fit_law``. fit: the full-data fit (computed when not given; its law
    and delta are used). start: "optimum" (every refit starts at the full-data optimum)
    or "grid" (every refit searches the whole starting grid, with successive-halving
    pruning ``prune`` per resample as in fit_law; None converges every start).
    groups: "auto" resamples whole runs when the table's run_id column repeats (several
    rows per run), else points; None forces points; or a column name / array of labels.
    level: of the percentile intervals.
    calibrate: also calibrate the predictive interval of a new run on the same table
    (``predictive.calibrate``: inner rolling-origin backtests, a few refits), so that
    predict_loss / compute_optimal give it by default; False leaves .calibration unset.
    exponent_min: the lower bound on the exponents (see fit_law) when the fit is
    computed here; a given fit's own bound (fit.exponent_min) applies to every refit.
    Returns a BootstrapResult; its .fit is the full-data fit with .intervals, .bootstrap
    (and .calibration) set.
    """
    import jax

    if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)) or n_boot < 1:
        raise ValueError(f"bootstrap needs n_boot >= 1 resamples; got {n_boot!r}")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), e.g. 0.95; got {level!r}")
    if start not in ("optimum", "grid"):
        raise ValueError(f"start must be 'optimum' or 'grid'; got {start!r}")
    table = as_table(data)
    if fit is None:
        fit = fit_law(
            table, law, delta=DEFAULT_DELTA if delta is None else delta, grid=grid, gtol=gtol, exponent_min=exponent_min
        )
    elif exponent_min is not None and exponent_min != fit.exponent_min:
        raise ValueError(
            f"exponent_min={exponent_min!r} differs from the given fit's own bound ({fit.exponent_min!r}); "
            "refits use the fit's bound: refit with fit_law(..., exponent_min=...) first"
        )
    lawobj = get_law(fit.law)
    lower = exponent_bounds(lawobj, fit.exponent_min)
    delta = fit.delta if delta is None else float(delta)
    pts = as_points(table, lawobj)
    labels = _group_labels(table, pts, groups)
    W = resample_weights(pts.n, n_boot, groups=labels, seed=seed)
    vg = value_and_grad(lawobj, float(delta), lower)
    with jax.enable_x64(True):
        if start == "optimum":
            x0 = np.repeat(free_coordinates(fit.theta, lower)[None, :], n_boot, axis=0)
            res = minimize(vg, x0, {"w": lane_weights(pts, W)}, shared_arrays(pts), gtol=gtol, max_iter=max_iter)
            theta, fbest, status = res.x, res.f, res.status
        else:
            theta, fbest, status = _grid_bootstrap(vg, lawobj, pts, W, grid, gtol, max_iter, prune, lower)
    theta = bounded_coordinates(theta, lower)
    converged = status == CONVERGED
    warns = []
    if not converged.all():
        warns.append(f"{int((~converged).sum())} of {n_boot} refits did not reach gtol {gtol:.0e}")
    vanished = np.any(theta[:, lawobj.is_log] < -700, axis=1)  # exp() of it is 0: the term is gone
    if vanished.any():
        warns.append(
            f"{int(vanished.sum())} of {n_boot} refits drove {'/'.join(lawobj.log_params)} to zero "
            "(a term vanished); quantities undefined for them (e.g. the optimum) leave them out"
        )
    result = BootstrapResult(
        law=lawobj.name,
        draws=lawobj.to_natural(theta),
        objectives=fbest,
        converged=converged,
        level=level,
        start=start,
        unit="points" if labels is None else "runs",
        seed=seed,
        warnings=tuple(warns),
    )
    cal = fit.calibration
    if calibrate and cal is None:
        from .predictive import calibrate as calibrate_intervals

        cal = calibrate_intervals(table, fit)
    result.fit = dataclasses.replace(fit, intervals=result.intervals(), bootstrap=result, calibration=cal)
    return result


def _grid_bootstrap(vg, law, pts, W, grid, gtol, max_iter, prune, lower):
    """Every resample from the whole grid; resamples in chunks of ~_LANES_PER_CHUNK lanes.
    Works in vg's coordinates (free coordinates when ``lower`` bounds some)."""
    starts = free_coordinates(bounded_starts(start_points(law, grid), lower), lower)
    S = len(starts)
    R = len(W)
    per_chunk = max(1, min(R, _LANES_PER_CHUNK // S))
    theta = np.empty((R, law.n_params))
    fbest = np.empty(R)
    status = np.empty(R, dtype=int)
    x0 = np.tile(starts, (per_chunk, 1))
    shared = shared_arrays(pts)
    for lo in range(0, R, per_chunk):
        hi = min(R, lo + per_chunk)
        m = hi - lo
        # every chunk has the same shapes (the last one padded with copies of its first
        # resample), so one compilation serves them all
        Wc = lane_weights(pts, W[np.r_[np.arange(lo, hi), np.full(per_chunk - m, lo)]])
        res = minimize(
            vg, x0, {"w": np.repeat(Wc, S, axis=0)}, shared, gtol=gtol, max_iter=max_iter, prune=prune, group_size=S
        )
        f = np.where(np.isfinite(res.f), res.f, np.inf).reshape(per_chunk, S)[:m]
        best = np.argmin(f, axis=1)
        rows = best + S * np.arange(m)
        theta[lo:hi] = res.x[rows]
        fbest[lo:hi] = res.f[rows]
        status[lo:hi] = res.status[rows]
    return theta, fbest, status


def _group_labels(data, pts: Points, groups):
    """Resampling units: None (points) or one label per row of the canonical table ``data``."""
    if groups is None:
        return None
    if isinstance(groups, str) and groups == "auto":
        g = pts.groups
        if g is None or len(np.unique(g)) == len(g):
            return None
        return g
    if isinstance(groups, str):
        if groups not in data.columns:
            raise ValueError(f"group column {groups!r} not found; the table has columns {list(data.columns)}")
        return np.asarray(data[groups])
    g = np.asarray(groups)
    if g.shape != (pts.n,):
        raise ValueError(f"groups must have one label per point ({pts.n}); got shape {g.shape}")
    return g
