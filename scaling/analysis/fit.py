"""Robust, batched fitting of a scaling law to (params, tokens/flops, loss) points.

Objective (Hoffmann et al. 2022; Besiroglu et al. 2024): the Huber loss (delta, default
1e-3) of the log residuals r_i = log L̂(x_i) - log L_i, **summed** over points (with
multiplicity weights, which is how a bootstrap resample enters).

``method="lbfgs"`` (default): L-BFGS from every point of a starting grid (for Chinchilla,
Hoffmann's 4,500-point grid) in one batched, jitted float64 computation with exact
(autodiff) gradients, stopping each start on its gradient norm (``gtol``, on the largest
absolute component in fit coordinates). The best end point is the fit.

``method="varpro"``: variable projection. For fixed exponents the coefficients that
enter linearly (E, A, B) are found by non-negative least squares, so only the exponents
are searched: a dense exponent grid, each point's coefficients by NNLS on the relative
residuals (L̂ - L)/L — the first-order expansion of the log residual — made robust by a
few iteratively reweighted (IRLS) Huber passes. The best few exponent points are then
polished by L-BFGS on the exact objective in all parameters, so on clean data both
methods land on the same optimum.

All of this runs under ``jax.enable_x64(True)`` as a context, so float64 holds inside
the analysis calls only; the process-wide default (float32, for training) is untouched.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from .diagnostics import exponent_params, fit_diagnostics
from .engine import (
    CONVERGED,
    DEFAULT_DELTA,
    DEFAULT_GTOL,
    PRUNED,
    STATUS_NAMES,
    MinimizeResult,
    Points,
    as_points,
    bounded_coordinates,
    bounded_starts,
    free_coordinates,
    hessian,
    lane_weights,
    minimize,
    shared_arrays,
    start_points,
    value_and_grad,
)
from .laws import Law, get_law
from .results import FitResult
from .table import as_table, flops_per_param_token
from .varpro import varpro_starts

__all__ = [
    "FitResult",
    "fit_law",
    "exponent_bounds",
    "DEFAULT_DELTA",
    "DEFAULT_GTOL",
    "DEFAULT_PRUNE",
    "RECHECK",
    "SLOPPY_RISE",
]

BEST_RTOL = 1e-6  # starts within this relative objective of the best "reached the best"
# Successive halving of the starts: after 6 objective evaluations keep the best 1,024,
# after 20 the best 128, and converge those (see fit_law's prune).
DEFAULT_PRUNE = ((6, 1024), (20, 128))
# After a pruned fit, this many pruned starts (the best of each pruning stage in turn,
# by their objective when dropped) are continued to convergence in one batched call, so
# that an optimum the pruning missed is found and reported (see fit_law's recheck).
RECHECK = 16


def exponent_bounds(law: Law, exponent_min: float | None) -> tuple | None:
    """Per fit coordinate, the lower bound (exponent_min on the law's exponents, see
    ``diagnostics.exponent_params``; None elsewhere), or None when there is no bound."""
    if exponent_min is None:
        return None
    lo = float(exponent_min)
    if not np.isfinite(lo):
        raise ValueError(f"exponent_min must be a finite number or None; got {exponent_min!r}")
    exps = exponent_params(law)
    if not exps:
        raise ValueError(f"exponent_min: law {law.name!r} has no exponent parameters (params {list(law.params)})")
    return tuple(lo if p in exps else None for p in law.params)


def fit_law(
    data,
    law: str | Law = "chinchilla",
    *,
    delta: float = DEFAULT_DELTA,
    grid: Mapping[str, Sequence[float]] | np.ndarray | None = None,
    method: str = "lbfgs",
    gtol: float = DEFAULT_GTOL,
    max_iter: int = 1000,
    prune=DEFAULT_PRUNE,
    weights=None,
    k: float | None = None,
    exponent_min: float | None = None,
    recheck: int = RECHECK,
) -> FitResult:
    """Fit ``law`` to data by robust (Huber on log loss) L-BFGS from a grid of starts.

    data: a table with canonical columns (params, tokens, flops, loss; see
    ``load_table``), a CSV path or results directory, or a mapping of arrays.
    grid: starting points: a mapping fit name -> values (Cartesian product), or an
    (S, P) array in fit coordinates; default the law's grid.
    method: "lbfgs" or "varpro" (exponents searched, linear coefficients by NNLS).
    prune: early pruning by successive halving, ((evals, keep), ...): every start gets
    ``evals`` objective evaluations of L-BFGS, then only the ``keep`` starts with the
    lowest objective go on, and so on; the last survivors run to convergence (the
    others are reported as pruned). Default DEFAULT_PRUNE. prune=None converges every
    start, so that n_at_best counts over the whole grid (several times slower on
    Hoffmann's grid); on the Epoch data both give the same optimum.
    recheck: with pruning, continue this many pruned starts (the best of each pruning
    stage in turn, by the objective they had when dropped) to convergence after the
    fit. If one ends lower than the best survivor by more than BEST_RTOL, pruning had
    missed the optimum: the fit takes that end point and says so in a warning (with the
    relative gap). 0 skips the check. n_rechecked on the result counts them.
    exponent_min: a lower bound on the law's exponents (alpha, beta, ...; see
    ``diagnostics.exponent_params``), e.g. 0 to keep the law falling with N and D. It
    is a change of variables, exponent = exponent_min + softplus(u) (``engine``), with
    grid starts at or below the bound moved just inside it; an exponent that ends on
    the bound is reported in a warning (the bound, not the data, set it). None
    (default): unbounded.
    gtol, max_iter: a start has converged when max |gradient| <= gtol (fit coordinates;
    with exponent_min, the free coordinates u, whose gradient vanishes on the bound).
    weights: optional per-point multiplicities (length n).
    The result's warnings include ``diagnostics.fit_diagnostics`` (non-positive
    exponents, duplicated rows, too few spare points, FLOPs inconsistent with k·N·D, a
    law of N and D fitted to one size or one budget).
    k: FLOPs per parameter per token for later compute-optimal use (default: the
    table's own, ``flops_per_param_token``: 6 for FLOPs counted as 6·N·D).
    """
    import jax

    law = get_law(law)
    table = data if isinstance(data, Points) else as_table(data)
    pts = as_points(table, law)
    if k is None:
        k = 6.0 if isinstance(table, Points) else flops_per_param_token(table)
    w = np.ones(pts.n) if weights is None else np.asarray(weights, dtype=float)
    if w.shape != (pts.n,):
        raise ValueError(f"weights must have one entry per point ({pts.n}); got shape {w.shape}")
    if method not in ("lbfgs", "varpro"):
        raise ValueError(f"unknown method {method!r}; use 'lbfgs' or 'varpro'")
    if isinstance(recheck, bool) or not isinstance(recheck, (int, np.integer)) or recheck < 0:
        raise ValueError(f"recheck must be an integer >= 0; got {recheck!r}")
    lower = exponent_bounds(law, exponent_min)
    starts = start_points(law, grid)
    vg = value_and_grad(law, float(delta), lower)
    notes = []
    n_rechecked = 0
    with jax.enable_x64(True):
        shared = shared_arrays(pts)  # float64: inside the x64 context
        if method == "lbfgs":
            x0 = free_coordinates(bounded_starts(starts, lower), lower)
            res = minimize(
                vg, x0, {"w": lane_weights(pts, w, len(x0))}, shared, gtol=gtol, max_iter=max_iter, prune=prune
            )
            if recheck and prune:
                res, n_rechecked, note = _recheck_pruned(vg, res, pts, w, shared, recheck, gtol=gtol, max_iter=max_iter)
                notes += [note] if note else []
        else:
            polish = free_coordinates(bounded_starts(varpro_starts(law, pts, w, delta=delta, grid=grid), lower), lower)
            res = minimize(vg, polish, {"w": lane_weights(pts, w, len(polish))}, shared, gtol=gtol, max_iter=max_iter)
    res = res._replace(x=bounded_coordinates(res.x, lower))
    # the grid-edge warning compares the optimum with the declared grid (not varpro's polish points)
    out = _result(law, pts, w, res, starts, method=method, delta=delta, gtol=gtol, k=k, grid=grid)
    out.exponent_min = None if exponent_min is None else float(exponent_min)
    out.n_rechecked = n_rechecked
    out.warnings = tuple(notes) + out.warnings
    if not isinstance(table, Points):
        out.warnings = out.warnings + tuple(
            fit_diagnostics(table, law, out.params, weights=w, exponent_min=out.exponent_min)
        )
    return out


def _recheck_pruned(vg, res: MinimizeResult, pts, w, shared, n: int, *, gtol, max_iter):
    """Continue up to n pruned lanes to convergence (one batched call): the best of each
    pruning stage (lanes dropped at one stage share their evaluation count) in turn.
    Returns (res, n continued, warning or None); res takes the continued lanes' end
    points only when one of them beats the best survivor by more than BEST_RTOL."""
    pruned = np.flatnonzero(res.status == PRUNED)
    if not len(pruned):
        return res, 0, None
    f = np.where(np.isfinite(res.f), res.f, np.inf)
    rank = np.empty(len(pruned), int)
    stage = res.n_eval[pruned]
    for e in np.unique(stage):
        at = np.flatnonzero(stage == e)
        rank[at[np.argsort(f[pruned[at]], kind="stable")]] = np.arange(len(at))
    pick = pruned[np.lexsort((stage, rank))[:n]]
    again = minimize(vg, res.x[pick], {"w": lane_weights(pts, w, len(pick))}, shared, gtol=gtol, max_iter=max_iter)
    kept = res.status != PRUNED
    fbest = float(np.min(f[kept]))
    fnew = np.where(np.isfinite(again.f), again.f, np.inf)
    if not float(np.min(fnew)) < fbest - BEST_RTOL * abs(fbest):
        return res, len(pick), None
    merged = {k: np.array(v) for k, v in res._asdict().items()}
    for k, v in again._asdict().items():
        merged[k][pick] = v
    gap = (fbest - float(np.min(fnew))) / abs(fbest)
    note = (
        f"pruning had dropped a start that reaches a {100 * gap:.3g}% lower objective than the best start it kept "
        f"(found by continuing {len(pick)} pruned starts); the fit uses that optimum. "
        "prune=None converges every start"
    )
    return MinimizeResult(**merged), len(pick), note


def _result(law, pts, w, res: MinimizeResult, starts, *, method, delta, gtol, k, grid) -> FitResult:
    f = np.where(np.isfinite(res.f), res.f, np.inf)
    best = int(np.argmin(f))
    theta = res.x[best]
    fbest = float(f[best])
    n_at_best = int(np.sum(f <= fbest + BEST_RTOL * abs(fbest)))
    natural = law.to_natural(theta)
    params = {p: float(v) for p, v in zip(law.params, natural)}
    H = hessian(law, delta, theta, pts, w)
    evals, evecs = np.linalg.eigh(0.5 * (H + H.T))
    warns = _warnings_for(
        law, theta, fbest, evals, evecs, starts if grid is None or isinstance(grid, Mapping) else None
    )
    converged = bool(res.status[best] == CONVERGED)
    if not converged:
        warns.append(
            f"the best start did not converge ({STATUS_NAMES[int(res.status[best])]}; "
            f"max |gradient| {np.max(np.abs(res.g[best])):.2e} > gtol {gtol:.0e})"
        )
    return FitResult(
        law=law.name,
        params=params,
        objective=fbest,
        grad_norm=float(np.max(np.abs(res.g[best]))),
        converged=converged,
        n_points=pts.n,
        n_starts=len(f),
        n_kept=int(np.sum(res.status != PRUNED)),
        n_at_best=n_at_best,
        warnings=tuple(warns),
        method=method,
        delta=float(delta),
        gtol=float(gtol),
        n_iter=int(res.n_iter[best]),
        k=float(k),
        hessian_eigenvalues=tuple(float(v) for v in evals),
        start_objectives=f,
        start_theta=res.x,
    )


# A direction is "poorly determined" when a unit move along it (a factor e in a log
# parameter, 1 in an exponent) raises the objective by less than 10%: about the size of
# the objective's own resampling noise, so the data cannot pin that combination down.
SLOPPY_RISE = 0.1


def _warnings_for(law: Law, theta, fbest, evals, evecs, starts) -> list[str]:
    warns = []
    if starts is not None and len(starts) > 1:
        lo, hi = starts.min(0), starts.max(0)
        for i, n in enumerate(law.fit_names):
            if lo[i] < hi[i] and not (lo[i] <= theta[i] <= hi[i]):
                warns.append(f"optimum {n} = {theta[i]:.4g} lies outside the start grid [{lo[i]:.4g}, {hi[i]:.4g}]")
    for i, p in enumerate(law.params):
        if p in law.log_params and theta[i] < -20:
            warns.append(f"{p} = {np.exp(theta[i]):.3g} is effectively zero: its term has vanished")
        elif p not in law.log_params and abs(theta[i]) < 1e-3:
            warns.append(f"{p} = {theta[i]:.3g} is effectively zero")
    # Poorly determined directions: a unit move (a factor e in a log parameter, 1 in an
    # exponent) along the eigenvector raises the objective by less than SLOPPY_RISE.
    scale = max(abs(fbest), 1e-300)
    for lam, v in zip(evals, evecs.T):
        rise = 0.5 * lam / scale
        if rise < SLOPPY_RISE:
            order = np.argsort(-np.abs(v))
            parts = " ".join(f"{v[j]:+.2f}·{law.fit_names[j]}" for j in order if abs(v[j]) >= 0.1)
            what = "not a strict minimum" if lam <= 0 else f"a unit move raises the objective by only {100 * rise:.2g}%"
            warns.append(f"poorly determined direction ({parts}): {what}")
    return warns
