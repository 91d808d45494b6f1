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

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache

import numpy as np

from . import _lbfgs
from .laws import Law, get_law

__all__ = ["FitResult", "fit_law", "objective", "DEFAULT_DELTA", "DEFAULT_GTOL"]

DEFAULT_DELTA = 1e-3
DEFAULT_GTOL = 1e-10  # largest |gradient component| at a converged start
BEST_RTOL = 1e-6  # starts within this relative objective of the best "reached the best"
# Successive halving of the starts: after 6 objective evaluations keep the best 1,024,
# after 20 the best 128, and converge those (see fit_law's prune).
DEFAULT_PRUNE = ((6, 1024), (20, 128))


# ---------------------------------------------------------------------------------------
# Data as arrays


@dataclass(frozen=True)
class Points:
    """log inputs (n, n_inputs), log loss (n,), and optional group labels (n,)."""

    logx: np.ndarray
    logy: np.ndarray
    groups: np.ndarray | None = None

    @property
    def n(self) -> int:
        return len(self.logy)


def as_table(data):
    """The canonical table for data (a DataFrame, path, results directory or mapping of arrays)."""
    from .table import load_table

    if isinstance(data, Mapping):
        import pandas as pd

        data = pd.DataFrame({k: np.asarray(v) for k, v in data.items()})
    return load_table(data)


def as_points(data, law: Law, *, min_points: bool = True) -> Points:
    """Canonical table (or anything ``as_table`` takes) -> Points for this law."""
    if isinstance(data, Points):
        pts = data
    else:
        df = as_table(data)
        groups = df["run_id"].to_numpy() if "run_id" in df.columns else None
        logx = np.stack([np.log(df[c].to_numpy(float)) for c in law.inputs], axis=-1)
        pts = Points(logx=logx, logy=np.log(df["loss"].to_numpy(float)), groups=groups)
    if min_points and pts.n < law.n_params:
        raise ValueError(
            f"law {law.name!r} has {law.n_params} parameters {list(law.params)} but the data has only {pts.n} points"
        )
    return pts


# ---------------------------------------------------------------------------------------
# The objective


def _huber(r, delta):
    import jax.numpy as jnp

    a = jnp.abs(r)
    return jnp.where(a <= delta, 0.5 * r * r, delta * (a - 0.5 * delta))


@cache
def _value_and_grad(law: Law, delta: float):
    """vg(theta (B,P), lane, shared) -> (objective (B,), gradient (B,P)) for the L-BFGS engine.

    lane: {"w": (B, n)} each lane's point weights (ones for a plain fit, multiplicities
    for a bootstrap resample); shared: {"logx": (n, k), "logy": (n,)} (see _shared).
    One program serves fits and bootstraps alike, so they share compilations.
    Per point, jax.value_and_grad of the law's log prediction gives r_i and dr_i/dtheta;
    the gradient is then sum_i w_i psi(r_i) dr_i/dtheta with psi = clip(r, -delta, delta).
    """
    import jax
    import jax.numpy as jnp

    point_vg = jax.vmap(jax.value_and_grad(law.log_loss_vec), in_axes=(None, 0))

    def one(theta, w, logx, logy):
        lp, J = point_vg(theta, logx)
        r = lp - logy
        psi = jnp.clip(r, -delta, delta) * w
        return jnp.dot(_huber(r, delta), w), psi @ J

    def block(theta, w, shared):
        return jax.vmap(one, in_axes=(0, 0, None, None))(theta, w, shared["logx"], shared["logy"])

    def vg(theta, lane, shared):
        # Large batches go through lax.map in blocks of _LANE_BLOCK lanes, so each block's
        # per-point temporaries stay in cache (about 1.5x faster per lane than one big vmap).
        B, P = theta.shape
        w = lane["w"]
        if B <= _LANE_BLOCK or B % _LANE_BLOCK:
            return block(theta, w, shared)
        nb = B // _LANE_BLOCK
        f, g = jax.lax.map(
            lambda a: block(a[0], a[1], shared), (theta.reshape(nb, _LANE_BLOCK, P), w.reshape(nb, _LANE_BLOCK, -1))
        )
        return f.reshape(B), g.reshape(B, P)

    return vg


_LANE_BLOCK = 512  # the L-BFGS engine pads large batches to a multiple of this


def objective(law, theta, data, *, delta: float = DEFAULT_DELTA, weights=None) -> np.ndarray:
    """Summed Huber objective at fit-coordinate parameters theta (P,) or (B, P)."""
    import jax
    import jax.numpy as jnp

    law = get_law(law)
    pts = as_points(data, law, min_points=False)
    theta = np.atleast_2d(np.asarray(theta, dtype=float))
    w = np.ones(pts.n) if weights is None else np.asarray(weights, dtype=float)
    with jax.enable_x64(True):
        lane = {"w": jnp.asarray(_lane_weights(pts, w, len(theta)))}
        f, _ = _jitted_vg(law, float(delta))(jnp.asarray(theta), lane, _shared(pts))
        return np.asarray(f)


@cache
def _jitted_vg(law: Law, delta: float):
    import jax

    return jax.jit(_value_and_grad(law, delta))


def _padded_size(n: int) -> int:
    """Point counts are padded (zero weight) to a ladder of sizes ~1.19x apart (multiples
    of 8), so data sets of similar size share compiled programs."""
    size = 16
    while size < n:
        size = int(np.ceil(size * 1.19 / 8) * 8)
    return size


def _shared(pts: Points) -> dict:
    """log inputs and log losses, padded to _padded_size(n) points (whose weights are 0)."""
    import jax.numpy as jnp

    pad = _padded_size(pts.n) - pts.n
    return {"logx": jnp.asarray(np.pad(pts.logx, ((0, pad), (0, 0)))), "logy": jnp.asarray(np.pad(pts.logy, (0, pad)))}


def _lane_weights(pts: Points, W, lanes: int | None = None) -> np.ndarray:
    """Per-lane point weights (lanes, padded n): W (R, n) rows padded with zero-weight
    points; with ``lanes``, one weight vector (n,) repeated for every lane."""
    W = np.atleast_2d(np.asarray(W, dtype=float))
    W = np.pad(W, ((0, 0), (0, _padded_size(pts.n) - pts.n)))
    return np.broadcast_to(W, (lanes, W.shape[1])) if lanes is not None else W


@cache
def _hessian_fn(law: Law, delta: float):
    import jax
    import jax.numpy as jnp

    def f(theta, logx, logy, w):
        lp = jax.vmap(law.log_loss_vec, in_axes=(None, 0))(theta, logx)
        return jnp.dot(_huber(lp - logy, delta), w)

    return jax.jit(jax.hessian(f))


def _hessian(law: Law, delta: float, theta, pts: Points, w=None) -> np.ndarray:
    import jax

    w = np.ones(pts.n) if w is None else np.asarray(w, dtype=float)
    with jax.enable_x64(True):
        sh = _shared(pts)
        H = _hessian_fn(law, float(delta))(
            np.asarray(theta, dtype=float), sh["logx"], sh["logy"], _lane_weights(pts, w)[0]
        )
        return np.asarray(H)


# ---------------------------------------------------------------------------------------
# Result


@dataclass
class FitResult:
    """A fitted law: natural parameters plus the diagnostics of the fit.

    params: natural scale (e.g. E, A, B, alpha, beta). theta: fit coordinates (log of the
    log_params). objective: summed Huber at the optimum; grad_norm: largest |gradient|
    component there (fit coordinates); converged: the best start met gtol. n_at_best:
    how many starts ended within BEST_RTOL of the best objective (of n_kept starts run
    to convergence, out of n_starts screened).
    warnings: optimum outside the start grid, degenerate terms, poorly determined
    directions (from the Hessian's eigen-decomposition).
    """

    law: str
    params: dict
    objective: float
    grad_norm: float
    converged: bool
    n_points: int
    n_starts: int = 1
    n_kept: int = 1  # starts run to convergence (the others were pruned after screening)
    n_at_best: int = 1
    warnings: tuple = ()
    method: str = "lbfgs"
    delta: float = DEFAULT_DELTA
    gtol: float = DEFAULT_GTOL
    n_iter: int = 0
    k: float = 6.0  # FLOPs per parameter per token of the data (used by optimal allocation)
    hessian_eigenvalues: tuple = ()
    ci: dict = field(default_factory=dict)  # parameter -> (low, high), set by a bootstrap
    bootstrap: object = field(default=None, repr=False)  # a BootstrapResult, when attached
    start_objectives: np.ndarray | None = field(default=None, repr=False)  # per start
    start_theta: np.ndarray | None = field(default=None, repr=False)  # end points, fit coords

    @property
    def law_obj(self) -> Law:
        return get_law(self.law)

    @property
    def theta(self) -> np.ndarray:
        law = self.law_obj
        return law.to_fit([self.params[p] for p in law.params])

    def predict(self, params=None, tokens=None, flops=None) -> np.ndarray:
        """Predicted loss at the given inputs (those the law needs; arrays broadcast)."""
        return self.law_obj.predict(self.params, params=params, tokens=tokens, flops=flops)

    def __getitem__(self, name: str) -> float:
        return self.params[name]

    def to_dict(self) -> dict:
        d = {
            "law": self.law,
            "params": {k: float(v) for k, v in self.params.items()},
            "objective": float(self.objective),
            "grad_norm": float(self.grad_norm),
            "converged": bool(self.converged),
            "n_points": int(self.n_points),
            "n_starts": int(self.n_starts),
            "n_kept": int(self.n_kept),
            "n_at_best": int(self.n_at_best),
            "method": self.method,
            "delta": float(self.delta),
            "gtol": float(self.gtol),
            "n_iter": int(self.n_iter),
            "k": float(self.k),
            "hessian_eigenvalues": [float(v) for v in self.hessian_eigenvalues],
            "warnings": list(self.warnings),
        }
        if self.ci:
            d["ci"] = {k: [float(lo), float(hi)] for k, (lo, hi) in self.ci.items()}
        if self.bootstrap is not None:
            d["bootstrap"] = self.bootstrap.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: Mapping) -> FitResult:
        law = get_law(d["law"])
        missing = [p for p in law.params if p not in d.get("params", {})]
        if missing:
            raise ValueError(f"fit for law {law.name!r} lacks parameters {missing}")
        res = cls(
            law=law.name,
            params={p: float(d["params"][p]) for p in law.params},
            objective=float(d.get("objective", np.nan)),
            grad_norm=float(d.get("grad_norm", np.nan)),
            converged=bool(d.get("converged", False)),
            n_points=int(d.get("n_points", 0)),
            n_starts=int(d.get("n_starts", 1)),
            n_kept=int(d.get("n_kept", d.get("n_starts", 1))),
            n_at_best=int(d.get("n_at_best", 1)),
            warnings=tuple(d.get("warnings", ())),
            method=d.get("method", "lbfgs"),
            delta=float(d.get("delta", DEFAULT_DELTA)),
            gtol=float(d.get("gtol", DEFAULT_GTOL)),
            n_iter=int(d.get("n_iter", 0)),
            k=float(d.get("k", 6.0)),
            hessian_eigenvalues=tuple(d.get("hessian_eigenvalues", ())),
            ci={k: tuple(v) for k, v in d.get("ci", {}).items()},
        )
        if d.get("bootstrap"):
            from .uncertainty import BootstrapResult

            res.bootstrap = BootstrapResult.from_dict(d["bootstrap"], fit=res)
        return res

    def to_json(self, path=None, **kw) -> str:
        text = json.dumps(self.to_dict(), indent=2, **kw)
        if path is not None:
            from scaling.atomic import write_text

            write_text(path, text + "\n")
        return text

    @classmethod
    def from_json(cls, path_or_text) -> FitResult:
        from pathlib import Path

        s = str(path_or_text)
        text = s if s.lstrip().startswith("{") else Path(s).read_text()
        return cls.from_dict(json.loads(text))

    def summary(self) -> str:
        """A small text table of the parameters (with intervals when bootstrapped)."""
        lines = [
            f"law: {self.law}   points: {self.n_points}   objective: {self.objective:.6e}   "
            f"converged: {self.converged}   starts at best: {self.n_at_best}/{self.n_kept}"
            + (f" (of {self.n_starts} screened)" if self.n_kept < self.n_starts else "")
        ]
        ci_lvl = f"{int(round(100 * self.bootstrap.level))}% CI" if self.bootstrap is not None else "CI"
        lines.append(f"{'param':>10} {'value':>14}" + (f" {ci_lvl:>30}" if self.ci else ""))
        for p, v in self.params.items():
            row = f"{p:>10} {v:>14.6g}"
            if p in self.ci:
                lo, hi = self.ci[p]
                row += f"   [{lo:>12.6g}, {hi:>12.6g}]"
            lines.append(row)
        lines += [f"warning: {w}" for w in self.warnings]
        return "\n".join(lines)

    __str__ = summary


# ---------------------------------------------------------------------------------------
# Fitting


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
    gtol, max_iter: a start has converged when max |gradient| <= gtol (fit coordinates).
    weights: optional per-point multiplicities (length n).
    k: FLOPs per parameter per token for later compute-optimal use (default: the
    table's ``attrs["k"]``, else 6).
    """
    import jax

    law = get_law(law)
    table = data if isinstance(data, Points) else as_table(data)
    pts = as_points(table, law)
    if k is None:
        k = float(getattr(table, "attrs", {}).get("k", 6.0))
    w = np.ones(pts.n) if weights is None else np.asarray(weights, dtype=float)
    if w.shape != (pts.n,):
        raise ValueError(f"weights must have one entry per point ({pts.n}); got shape {w.shape}")
    starts = _starts(law, grid)
    with jax.enable_x64(True):
        if method == "lbfgs":
            res = _lbfgs.minimize(
                _value_and_grad(law, float(delta)),
                starts,
                {"w": _lane_weights(pts, w, len(starts))},
                _shared(pts),
                gtol=gtol,
                max_iter=max_iter,
                prune=prune,
            )
        elif method == "varpro":
            from .varpro import varpro_starts

            polish = varpro_starts(law, pts, w, delta=delta, grid=grid)
            res = _lbfgs.minimize(
                _value_and_grad(law, float(delta)),
                polish,
                {"w": _lane_weights(pts, w, len(polish))},
                _shared(pts),
                gtol=gtol,
                max_iter=max_iter,
            )
        else:
            raise ValueError(f"unknown method {method!r}; use 'lbfgs' or 'varpro'")
    # the grid-edge warning compares the optimum with the declared grid (not varpro's polish points)
    return _result(law, pts, w, res, starts, method=method, delta=delta, gtol=gtol, k=k, grid=grid)


def _starts(law: Law, grid) -> np.ndarray:
    if grid is None or isinstance(grid, Mapping):
        return law.start_grid(grid)
    starts = np.atleast_2d(np.asarray(grid, dtype=float))
    if starts.shape[-1] != law.n_params:
        raise ValueError(f"starting points must have {law.n_params} columns {list(law.fit_names)}; got {starts.shape}")
    return starts


def _result(law, pts, w, res: _lbfgs.Result, starts, *, method, delta, gtol, k, grid) -> FitResult:
    f = np.where(np.isfinite(res.f), res.f, np.inf)
    best = int(np.argmin(f))
    theta = res.x[best]
    fbest = float(f[best])
    n_at_best = int(np.sum(f <= fbest + BEST_RTOL * abs(fbest)))
    natural = law.to_natural(theta)
    params = {p: float(v) for p, v in zip(law.params, natural)}
    H = _hessian(law, delta, theta, pts, w)
    evals, evecs = np.linalg.eigh(0.5 * (H + H.T))
    warns = _warnings_for(
        law, theta, fbest, evals, evecs, starts if grid is None or isinstance(grid, Mapping) else None
    )
    converged = bool(res.status[best] == _lbfgs.CONVERGED)
    if not converged:
        warns.append(
            f"the best start did not converge ({_lbfgs.STATUS_NAMES[int(res.status[best])]}; "
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
        n_kept=int(np.sum(res.status != _lbfgs.PRUNED)),
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
