"""Approach 1 of Hoffmann et al. (2022): the lower envelope of training curves.

Each run's loss curve is interpolated between its evaluation points as a function of
FLOPs (a named interpolant from ``loss_curves.py``; default log-log linear, never
extrapolated). On a log grid of FLOP values C, the envelope is the lowest loss over
the runs whose curves reach C; the run achieving it gives N_opt(C) (its size) and
D_opt(C) (its tokens at C). Power laws N_opt = G·C^a and D_opt = H·C^b are then
fitted by log-log regression over the grid; intervals come from a bootstrap over runs
(resample runs with replacement, rebuild the envelope, refit).

Grid points where the winning run is the smallest or the largest size among the
runs reaching C say only that the optimum lies at or beyond the sizes available
there; they are left out of the fits by default (``drop_boundary``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .allocation import PowerLawFit, check_bootstrap_args, fit_power_law
from .loss_curves import interpolate_curve

__all__ = ["EnvelopeResult", "curve_matrix", "envelope_analysis"]


@dataclass(frozen=True)
class CurveMatrix:
    """Every run's interpolated loss and tokens on one FLOP grid (NaN: not reached)."""

    flops: np.ndarray  # (G,)
    run_ids: np.ndarray  # (R,)
    params: np.ndarray  # (R,)
    loss: np.ndarray  # (R, G)
    tokens: np.ndarray  # (R, G)
    warnings: tuple[str, ...]


def curve_matrix(
    curves: pd.DataFrame,
    flops_grid=None,
    *,
    n_grid: int = 200,
    method: str = "linear",
    run_col: str = "run_id",
    params_col: str = "params",
    tokens_col: str = "tokens",
    flops_col: str = "flops",
    loss_col: str = "loss",
    **interp_options,
) -> CurveMatrix:
    """Interpolate each run's curve (loss vs FLOPs, and tokens vs FLOPs) onto a grid.

    flops_grid: the FLOP values; default ``n_grid`` log-spaced points spanning all runs.
    interp_options: passed to ``interpolate_curve`` (``degree``, ``lam``).
    """
    missing = [c for c in (run_col, params_col, tokens_col, flops_col, loss_col) if c not in curves.columns]
    if missing:
        raise ValueError(f"envelope: missing column(s) {missing}; the table has {list(curves.columns)}")
    for col in (params_col, tokens_col, flops_col, loss_col):
        v = curves[col].to_numpy(float)
        bad = ~np.isfinite(v) | (v <= 0)
        if bad.any():
            raise ValueError(
                f"envelope: column {col!r} must be finite and positive; row {int(np.argmax(bad))} has {float(v[bad][0])!r}"
            )
    f_all = curves[flops_col].to_numpy(float)
    if flops_grid is None:
        if n_grid < 2:
            raise ValueError(f"n_grid must be >= 2; got {n_grid!r}")
        flops_grid = np.geomspace(f_all.min(), f_all.max(), n_grid)
    grid = np.atleast_1d(np.asarray(flops_grid, dtype=float))
    if np.any(~np.isfinite(grid)) or np.any(grid <= 0):
        raise ValueError("flops_grid must hold finite, positive FLOP values")
    run_ids, params, losses, tokens, warns = [], [], [], [], []
    for rid, run in curves.groupby(run_col, sort=True):
        sizes = run[params_col].unique()
        if len(sizes) != 1:
            raise ValueError(f"run {rid!r} has {len(sizes)} different {params_col} values; one run has one size")
        f = run[flops_col].to_numpy(float)
        try:
            interp = interpolate_curve(f, run[loss_col].to_numpy(float), method=method, **interp_options)
        except ValueError as err:
            warns.append(f"run {rid!r} skipped: {err}")
            continue
        inside = interp.covers(grid)
        row = np.full(grid.shape, np.nan)
        row[inside] = interp(grid[inside])
        # tokens are proportional to FLOPs along a run: interpolate linearly in log-log
        order = np.argsort(f)
        tok = np.full(grid.shape, np.nan)
        tok[inside] = np.exp(
            np.interp(np.log(grid[inside]), np.log(f[order]), np.log(run[tokens_col].to_numpy(float)[order]))
        )
        run_ids.append(rid)
        params.append(float(sizes[0]))
        losses.append(row)
        tokens.append(tok)
    if not run_ids:
        raise ValueError("envelope: no run has a usable curve" + (f" ({'; '.join(warns)})" if warns else ""))
    return CurveMatrix(grid, np.array(run_ids), np.array(params), np.array(losses), np.array(tokens), tuple(warns))


def _envelope(m: CurveMatrix, include: np.ndarray):
    """Winner per grid point among included runs. include: (B, R) bool.

    Returns (winner index (B, G), loss (B, G), n_reaching (B, G), boundary (B, G))."""
    reach = np.isfinite(m.loss)[None, :, :] & include[:, :, None]  # (B, R, G)
    L = np.where(reach, m.loss[None], np.inf)
    win = np.argmin(L, axis=1)
    best = np.take_along_axis(L, win[:, None, :], axis=1)[:, 0, :]
    P = m.params[None, :, None]
    n_min = np.where(reach, P, np.inf).min(axis=1)
    n_max = np.where(reach, P, -np.inf).max(axis=1)
    n_win = m.params[win]
    boundary = (n_win <= n_min) | (n_win >= n_max)
    return win, best, reach.sum(axis=1), boundary


@dataclass(frozen=True)
class EnvelopeResult:
    """The loss envelope on the FLOP grid and the allocation power laws fitted to it."""

    grid: pd.DataFrame  # flops, loss, run_id, params, tokens, n_runs, boundary, used
    n_opt: PowerLawFit
    d_opt: PowerLawFit
    method: str
    warnings: tuple[str, ...]

    @property
    def a(self) -> float:
        return self.n_opt.exponent

    @property
    def b(self) -> float:
        return self.d_opt.exponent

    def to_frame(self) -> pd.DataFrame:
        """The envelope on the FLOP grid (a copy of ``grid``)."""
        return self.grid.copy()

    def to_dict(self) -> dict:
        return {
            "approach": "envelope",
            "method": self.method,
            "n_opt": self.n_opt.to_dict(),
            "d_opt": self.d_opt.to_dict(),
            "n_grid_used": int(self.grid["used"].sum()),
            "warnings": list(self.warnings),
        }

    def summary(self) -> str:
        lines = [
            f"envelope of training curves ({self.method} interpolation), "
            f"{int(self.grid['used'].sum())} of {len(self.grid)} grid points used",
            f"  N_opt: {self.n_opt.summary()}",
            f"  D_opt: {self.d_opt.summary()}",
        ]
        return "\n".join(lines + [f"warning: {w}" for w in self.warnings])

    __str__ = summary


def envelope_analysis(
    curves: pd.DataFrame,
    *,
    flops_grid=None,
    n_grid: int = 200,
    method: str = "linear",
    min_runs: int = 3,
    drop_boundary: bool = True,
    n_boot: int = 200,
    level: float = 0.95,
    seed: int = 0,
    run_col: str = "run_id",
    params_col: str = "params",
    tokens_col: str = "tokens",
    flops_col: str = "flops",
    loss_col: str = "loss",
    **interp_options,
) -> EnvelopeResult:
    """Approach 1 on a curves table (one row per run and evaluation step).

    method: the interpolant between evaluation points (``loss_curves.METHODS``).
    min_runs: grid points reached by fewer runs are not used.
    drop_boundary: leave out grid points whose winner is the smallest or largest size
        reaching them.
    n_boot, level: bootstrap resamples of the runs (seeded by ``seed``) and the level of
        the percentile intervals.
    """
    check_bootstrap_args(n_boot, level)
    if min_runs < 1:
        raise ValueError(f"min_runs must be >= 1; got {min_runs!r}")
    m = curve_matrix(
        curves,
        flops_grid,
        n_grid=n_grid,
        method=method,
        run_col=run_col,
        params_col=params_col,
        tokens_col=tokens_col,
        flops_col=flops_col,
        loss_col=loss_col,
        **interp_options,
    )
    R = len(m.run_ids)
    win, best, n_reach, boundary = _envelope(m, np.ones((1, R), dtype=bool))
    win, best, n_reach, boundary = win[0], best[0], n_reach[0], boundary[0]
    used = (n_reach >= min_runs) & (~boundary if drop_boundary else True)
    if used.sum() < 2:
        raise ValueError(
            f"envelope: only {int(used.sum())} usable grid points (need 2); points reached by >= {min_runs} runs: "
            f"{int((n_reach >= min_runs).sum())}, of which on the size boundary: {int((boundary & (n_reach >= min_runs)).sum())}"
        )
    cols = np.arange(len(m.flops))
    n_star = m.params[win]
    d_star = m.tokens[win, cols]
    grid = pd.DataFrame(
        dict(
            flops=m.flops,
            loss=np.where(np.isfinite(best), best, np.nan),
            run_id=m.run_ids[win],
            params=n_star,
            tokens=d_star,
            n_runs=n_reach,
            boundary=boundary,
            used=used,
        )
    )
    grid.loc[n_reach == 0, ["loss", "run_id", "params", "tokens"]] = np.nan

    rng = np.random.default_rng(seed)
    idx = rng.integers(0, R, size=(n_boot, R))
    include = np.zeros((n_boot, R), dtype=bool)
    np.put_along_axis(include, idx, True, axis=1)
    bwin, _, bn, bboundary = _envelope(m, include)
    bused = used[None, :] & (bn >= min_runs) & (~bboundary if drop_boundary else True)
    n_draws = np.where(bused, m.params[bwin], np.nan)
    d_draws = np.where(bused, m.tokens[bwin, cols[None, :]], np.nan)
    C = m.flops[used]
    return EnvelopeResult(
        grid=grid,
        n_opt=fit_power_law(C, n_star[used], n_draws[:, used], level=level),
        d_opt=fit_power_law(C, d_star[used], d_draws[:, used], level=level),
        method=method,
        warnings=m.warnings,
    )
