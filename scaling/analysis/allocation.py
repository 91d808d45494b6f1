"""Compute-optimal allocation power laws, N_opt(C) = G·C^a and D_opt(C) = H·C^b,
fitted by least squares in log-log space, with bootstrap intervals.

Approaches 1 (envelope) and 2 (IsoFLOP profiles) both end with a set of (C, N*) and
(C, D*) points plus bootstrap draws of them; ``fit_power_law`` turns those into a
``PowerLawFit`` whose interval on the exponent comes from refitting each draw.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["PowerLawFit", "fit_power_law", "loglog_slope", "check_bootstrap_args"]


def check_bootstrap_args(n_boot, level) -> None:
    """Raise before any compute on a bootstrap size or interval level that cannot work."""
    if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)) or n_boot < 1:
        raise ValueError(f"n_boot must be a positive integer; got {n_boot!r}")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), e.g. 0.95; got {level!r}")


def loglog_slope(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares (slope, intercept) of log y on log x along the last axis.

    y may be (..., n) with NaNs marking missing points; each row is fitted on its own
    finite entries (rows with fewer than 2 get NaN).
    """
    lx = np.log(np.asarray(x, dtype=float))
    ly = np.log(np.asarray(y, dtype=float))
    ok = np.isfinite(ly) & np.isfinite(lx)
    w = ok.astype(float)
    n = w.sum(-1)
    lxw = np.where(ok, lx, 0.0)
    lyw = np.where(ok, ly, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mx = lxw.sum(-1) / n
        my = lyw.sum(-1) / n
        dx = np.where(ok, lx - mx[..., None], 0.0)
        dy = np.where(ok, ly - my[..., None], 0.0)
        sxx = (dx * dx).sum(-1)
        slope = (dx * dy).sum(-1) / sxx
        slope = np.where((n >= 2) & (sxx > 0), slope, np.nan)
    return slope, my - slope * mx


@dataclass(frozen=True)
class PowerLawFit:
    """y = coefficient · x**exponent, with bootstrap draws of (exponent, log coefficient)."""

    exponent: float
    coefficient: float
    exponent_interval: tuple[float, float]  # percentile interval at ``level``
    level: float
    draws: np.ndarray  # (n_draws, 2): exponent, log(coefficient); NaN rows are failed draws

    def __call__(self, x):
        return self.coefficient * np.asarray(x, dtype=float) ** self.exponent

    def interval(self, x) -> tuple[np.ndarray, np.ndarray]:
        """Percentile interval of y(x) over the bootstrap draws (at ``level``, as exponent_interval)."""
        lx = np.log(np.atleast_1d(np.asarray(x, dtype=float)))
        d = self.draws[np.all(np.isfinite(self.draws), axis=1)]
        if len(d) == 0:
            nan = np.full(lx.shape, np.nan)
            return nan, nan
        ly = d[:, 1:2] + d[:, 0:1] * lx[None, :]
        q = 50 * (1 - self.level)
        lo, hi = np.percentile(ly, [q, 100 - q], axis=0)
        return np.exp(lo), np.exp(hi)

    def to_dict(self) -> dict:
        """The fit as plain numbers (JSON-ready; the draws are left out, ``to_frame`` has them)."""
        lo, hi = self.exponent_interval
        return {
            "exponent": float(self.exponent),
            "exponent_lo": float(lo),
            "exponent_hi": float(hi),
            "coefficient": float(self.coefficient),
            "level": float(self.level),
            "n_draws": int(len(self.draws)),
        }

    def to_frame(self) -> pd.DataFrame:
        """The bootstrap draws: one row per draw, columns exponent and coefficient."""
        return pd.DataFrame({"exponent": self.draws[:, 0], "coefficient": np.exp(self.draws[:, 1])})

    def summary(self) -> str:
        lo, hi = self.exponent_interval
        return (
            f"y = {self.coefficient:.6g} · x^{self.exponent:.4f}   exponent {int(round(100 * self.level))}% interval "
            f"[{lo:.4f}, {hi:.4f}] ({len(self.draws)} draws)"
        )

    __str__ = summary


def fit_power_law(x, y, y_draws=None, *, level: float = 0.95) -> PowerLawFit:
    """Fit y = G·x^a to points (x, y); y_draws (n_draws, n) are bootstrap draws of y
    (NaN = missing) giving the interval. Without draws the interval is NaN."""
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    slope, icpt = loglog_slope(x, y)
    if y_draws is None or len(y_draws) == 0:
        draws = np.empty((0, 2))
        lo = hi = np.nan
    else:
        s, i = loglog_slope(np.broadcast_to(x, np.shape(y_draws)), np.asarray(y_draws, dtype=float))
        draws = np.stack([s, i], axis=1)
        good = np.isfinite(s)
        q = 50 * (1 - level)
        lo, hi = np.percentile(s[good], [q, 100 - q]) if good.any() else (np.nan, np.nan)
    return PowerLawFit(
        exponent=float(slope),
        coefficient=float(np.exp(icpt)),
        exponent_interval=(float(lo), float(hi)),
        level=level,
        draws=draws,
    )
