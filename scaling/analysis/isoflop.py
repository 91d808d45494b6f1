"""Approach 2 of Hoffmann et al. (2022): IsoFLOP profiles.

Runs that share a compute budget C form one IsoFLOP profile. Along each profile a
parabola of loss in x = ln N is fitted by least squares; its vertex gives the
compute-optimal size N*(C) (or, with ``minimum='akima'`` etc., the lowest point of an
interpolant, as Porian et al. 2024), the loss there L*(C), and D*(C) = C / (k·N*) with
k = FLOPs per parameter per token (the rows' median flops / (params·tokens), else 6).
Bootstrap intervals resample the points within each budget (a fixed seed makes them
deterministic); every draw follows the point estimate's own rule, so a draw whose
vertex falls outside the sizes tried (or whose parabola opens downwards) has no
minimum: it is left out of that budget's intervals and of the exponent fits' draws,
and the number left out is reported (``IsoFlopProfile.n_excluded``). Finally N_opt(C) = G·C^a and D_opt(C) = H·C^b are fitted by log-log
regression of the vertices; their intervals refit the per-budget bootstrap draws.

The default minimum is the parabola's vertex. Evidence (experiments/calibration.py,
results/calibration/isoflop_minimum.csv): akima reproduces Porian et al.'s 15
published exponents to within 0.004 (the parabola to within 0.08), but that is the
method they published with; on synthetic profiles from a known law with 0.2-2% noise,
the parabola recovers the true exponent with 5-10x smaller error (RMSE 0.002-0.026 vs
akima's 0.02-0.10), because an interpolant through noisy points puts its minimum on
the noise. Use ``minimum='akima'`` for dense, nearly noise-free profiles or to
reproduce Porian et al.

A profile warns (``IsoFlopProfile.warnings``) when its parabola opens downwards (no
minimum) or when the minimum lies outside the sizes tried (extrapolated); such
profiles are left out of the power-law fits unless ``keep_flagged=True``.

``isoflop_loss_at(profile, N)`` reads the loss at an unobserved size along one budget
(parabola, or a spline from ``loss_curves.py``) with a bootstrap interval.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .allocation import PowerLawFit, check_bootstrap_args, fit_power_law
from .levels import WIDE_SPAN, group_log, group_spans
from .loss_curves import METHODS, MIN_POINTS, interpolate_curve

__all__ = [
    "IsoFlopProfile",
    "IsoFlopResult",
    "group_budgets",
    "isoflop_profile",
    "isoflop_analysis",
    "isoflop_loss_at",
]


def group_budgets(flops, rtol: float = 0.1) -> np.ndarray:
    """Label rows that share a compute budget: sorted FLOPs are cut wherever one value
    exceeds its predecessor by more than a factor 1 + rtol (a gap in log space,
    ``levels.group_log``). Returns integer labels (0, 1, ... in increasing budget)
    aligned with ``flops``. Jittered values (digitized points) can chain neighbouring
    budgets into one group: ``isoflop_analysis`` warns when a group spans more than
    ``levels.WIDE_SPAN`` (1.5x)."""
    f = np.asarray(flops, dtype=float)
    if np.any(~np.isfinite(f)) or np.any(f <= 0):
        raise ValueError("flops must be finite and positive to group rows into IsoFLOP budgets")
    return group_log(f, rtol)


def _design(x: np.ndarray) -> np.ndarray:
    return np.stack([np.ones_like(x), x, x * x], axis=-1)


def _fit_parabolas(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Least-squares (c0, c1, c2) of y = c0 + c1 x + c2 x² along the last axis.

    x, y: (..., n). Rows with fewer than 3 distinct x values give NaN. x should be
    centred and scaled (the normal equations are then well conditioned).
    """
    X = _design(x)
    XtX = np.einsum("...ni,...nj->...ij", X, X)
    Xty = np.einsum("...ni,...n->...i", X, y)
    distinct = 1 + np.sum(np.diff(np.sort(x, axis=-1), axis=-1) > 1e-12, axis=-1)
    ok = distinct >= 3
    XtX = np.where(ok[..., None, None], XtX, np.eye(3))
    coef = np.linalg.solve(XtX, Xty[..., None])[..., 0]
    return np.where(ok[..., None], coef, np.nan)


@dataclass(frozen=True)
class IsoFlopProfile:
    """One IsoFLOP budget: its points, the fitted parabola and the minimum.

    The parabola is loss = c0 + c1·z + c2·z² in z = (ln N - x_center) / x_scale.
    ``n_opt`` is NaN when there is no minimum (a parabola opening downwards, or an
    interpolant lowest at an end of the sizes).
    """

    budget: float
    params: np.ndarray
    tokens: np.ndarray
    loss: np.ndarray
    flops_per_param_token: float
    coef: np.ndarray
    x_center: float
    x_scale: float
    n_opt: float
    loss_opt: float
    d_opt: float
    n_opt_interval: tuple[float, float]  # percentile intervals at ``level``
    loss_opt_interval: tuple[float, float]
    d_opt_interval: tuple[float, float]
    level: float
    coef_draws: np.ndarray = field(repr=False)  # (n_boot, 3), NaN rows: degenerate resamples
    n_opt_draws: np.ndarray = field(repr=False)  # (n_boot,), NaN: no minimum in that draw
    minimum: str = "parabola"  # how n_opt was located (see isoflop_profile)
    seed: int = 0
    warnings: tuple[str, ...] = ()  # flags that drop the profile from the power-law fits
    n_excluded: int = 0  # bootstrap draws without a minimum inside the sizes tried (NaN in n_opt_draws)
    notes: tuple[str, ...] = ()  # cautions that do not drop the profile (most draws excluded)

    @property
    def convex(self) -> bool:
        return bool(self.coef[2] > 0)

    @property
    def interior(self) -> bool:
        return bool(np.isfinite(self.n_opt) and self.params.min() <= self.n_opt <= self.params.max())

    @property
    def flagged(self) -> bool:
        return bool(self.warnings)

    def parabola(self, params) -> np.ndarray:
        """The fitted parabola's loss at sizes ``params``."""
        z = (np.log(np.asarray(params, dtype=float)) - self.x_center) / self.x_scale
        return self.coef[0] + self.coef[1] * z + self.coef[2] * z * z

    def to_frame(self) -> pd.DataFrame:
        """The budget's points: params, tokens, loss, and the parabola's loss there."""
        return pd.DataFrame(
            dict(params=self.params, tokens=self.tokens, loss=self.loss, parabola=self.parabola(self.params))
        )

    def to_dict(self) -> dict:
        """The minimum and its intervals as plain numbers (one row of IsoFlopResult.to_frame)."""
        return dict(
            budget=float(self.budget),
            n_points=int(len(self.params)),
            n_opt=float(self.n_opt),
            n_opt_lo=float(self.n_opt_interval[0]),
            n_opt_hi=float(self.n_opt_interval[1]),
            d_opt=float(self.d_opt),
            d_opt_lo=float(self.d_opt_interval[0]),
            d_opt_hi=float(self.d_opt_interval[1]),
            loss_opt=float(self.loss_opt),
            loss_opt_lo=float(self.loss_opt_interval[0]),
            loss_opt_hi=float(self.loss_opt_interval[1]),
            convex=self.convex,
            interior=self.interior,
            minimum=self.minimum,
            level=float(self.level),
            warnings=list(self.warnings),
            n_excluded=int(self.n_excluded),
        )

    def summary(self) -> str:
        lo, hi = self.n_opt_interval
        return (
            f"C = {self.budget:.4g}: N* = {self.n_opt:.4g} [{lo:.4g}, {hi:.4g}] ({int(round(100 * self.level))}%), "
            f"D* = {self.d_opt:.4g}, loss {self.loss_opt:.4f} ({len(self.params)} points, {self.minimum})"
            + "".join(f"\n  warning: {w}" for w in self.warnings)
        )

    __str__ = summary


def _vertex(coef: np.ndarray, x_center: float, x_scale: float):
    c0, c1, c2 = coef[..., 0], coef[..., 1], coef[..., 2]
    with np.errstate(invalid="ignore", divide="ignore"):
        z = np.where(c2 > 0, -c1 / (2 * c2), np.nan)
    return np.exp(x_center + x_scale * z), c0 + c1 * z + c2 * z * z


def _interval(draws: np.ndarray, level: float) -> tuple[float, float]:
    d = draws[np.isfinite(draws)]
    if len(d) == 0:
        return (np.nan, np.nan)
    q = 50 * (1 - level)
    lo, hi = np.percentile(d, [q, 100 - q])
    return float(lo), float(hi)


def _interp_minima(N: np.ndarray, L: np.ndarray, idx: np.ndarray, method: str, density: int):
    """Minimum of an interpolant of log loss vs log N on each resample idx (B, n):
    (N*, L*) per row, NaN where the minimum sits at an end of the sizes (no interior
    minimum) or the resample has too few distinct sizes."""
    need = max(3, MIN_POINTS[method] or 3)
    n_out, l_out = np.full(len(idx), np.nan), np.full(len(idx), np.nan)
    for b, rows in enumerate(idx):
        if len(np.unique(N[rows])) < need:
            continue
        f = interpolate_curve(N[rows], L[rows], method=method)
        q = np.geomspace(f.x[0], f.x[-1], (len(f.x) - 1) * density)
        v = f(q)
        i = int(np.argmin(v))
        l_out[b] = v[i]
        if 0 < i < len(q) - 1:
            n_out[b] = q[i]
    return n_out, l_out


def isoflop_profile(
    params,
    loss,
    budget: float,
    *,
    tokens=None,
    minimum: str = "parabola",
    density: int = 25,
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> IsoFlopProfile:
    """Fit one IsoFLOP profile: its minimum N*, L* and bootstrap intervals.

    params, loss: the runs' sizes and final losses at this budget (>= 3 distinct sizes).
    tokens: their training tokens (gives FLOPs per parameter-token; default 6).
    minimum: ``'parabola'`` (Hoffmann et al.: the vertex of a least-squares parabola of
        loss in ln N) or an ``loss_curves.py`` method (e.g. ``'akima'``, as Porian et al.
        2024): the lowest point of that interpolant of log loss vs log N, searched on
        ``density`` points per interval between sizes; a lowest point at either end of
        the sizes gives no minimum. The parabola is fitted either way (for
        ``isoflop_loss_at``).
    """
    check_bootstrap_args(n_boot, level)
    if minimum != "parabola" and minimum not in METHODS:
        raise ValueError(f"minimum must be 'parabola' or one of {sorted(METHODS)}; got {minimum!r}")
    if not (isinstance(density, (int, np.integer)) and density >= 2):
        raise ValueError(f"density must be an integer >= 2; got {density!r}")
    N = np.asarray(params, dtype=float)
    L = np.asarray(loss, dtype=float)
    if N.ndim != 1 or N.shape != L.shape:
        raise ValueError(f"params and loss must be 1-D of one length; got {N.shape} and {L.shape}")
    if np.any(~np.isfinite(N)) or np.any(N <= 0) or np.any(~np.isfinite(L)):
        raise ValueError(f"budget {budget:.4g}: params must be finite and positive and loss finite")
    if len(np.unique(N)) < 3:
        raise ValueError(
            f"budget {budget:.4g}: an IsoFLOP minimum needs at least 3 distinct sizes; got {len(np.unique(N))}"
        )
    if tokens is not None:
        D = np.asarray(tokens, dtype=float)
        k = float(np.median(budget / (N * D)))
    else:
        k = 6.0
        D = budget / (k * N)
    x = np.log(N)
    xc, xs = float(x.mean()), float(x.std())
    z = (x - xc) / xs
    coef = _fit_parabolas(z, L)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(N), size=(n_boot, len(N)))
    coef_draws = _fit_parabolas(z[idx], L[idx])
    if minimum == "parabola":
        n_opt, l_opt = _vertex(coef, xc, xs)
        n_draws, l_draws = _vertex(coef_draws, xc, xs)
        # the point estimate's rule for every draw: no minimum (NaN) when the vertex lies
        # outside the sizes tried, as for a parabola opening downwards
        outside = ~((n_draws >= N.min()) & (n_draws <= N.max()))
        n_draws = np.where(outside, np.nan, n_draws)
        l_draws = np.where(outside, np.nan, l_draws)
    else:
        (n_opt,), (l_opt,) = _interp_minima(N, L, np.arange(len(N))[None], minimum, density)
        n_draws, l_draws = _interp_minima(N, L, idx, minimum, density)

    n_lo, n_hi = _interval(n_draws, level)
    warns = []
    n_excluded = int(np.sum(~np.isfinite(n_draws)))
    notes: tuple[str, ...] = ()
    if np.isfinite(n_opt) and n_excluded > 0.5 * n_boot:
        notes = (
            f"budget {budget:.4g}: {n_excluded} of {n_boot} bootstrap draws have no minimum inside the sizes "
            "tried (left out of its intervals): the minimum is poorly located",
        )
    if minimum != "parabola":
        if not np.isfinite(n_opt):
            warns.append(
                f"budget {budget:.4g}: the lowest '{minimum}' loss is at an end of the sizes tried; no interior minimum"
            )
    elif not coef[2] > 0:
        warns.append(f"budget {budget:.4g}: the parabola opens downwards (curvature {coef[2]:.3g}); no minimum")
    elif not (N.min() <= n_opt <= N.max()):
        warns.append(
            f"budget {budget:.4g}: the minimum N*={n_opt:.4g} lies outside the sizes tried "
            f"[{N.min():.4g}, {N.max():.4g}] (extrapolated)"
        )
    return IsoFlopProfile(
        budget=float(budget),
        params=N,
        tokens=D,
        loss=L,
        flops_per_param_token=k,
        coef=coef,
        x_center=xc,
        x_scale=xs,
        n_opt=float(n_opt),
        loss_opt=float(l_opt),
        d_opt=float(budget / (k * n_opt)),
        n_opt_interval=(n_lo, n_hi),
        loss_opt_interval=_interval(l_draws, level),
        d_opt_interval=(budget / (k * n_hi), budget / (k * n_lo)),
        level=level,
        coef_draws=coef_draws,
        n_opt_draws=n_draws,
        minimum=minimum,
        seed=seed,
        warnings=tuple(warns),
        n_excluded=n_excluded,
        notes=notes,
    )


@dataclass(frozen=True)
class IsoFlopResult:
    """All IsoFLOP profiles and the allocation power laws fitted to their minima."""

    profiles: tuple[IsoFlopProfile, ...]
    n_opt: PowerLawFit  # N_opt(C) = G·C^a
    d_opt: PowerLawFit  # D_opt(C) = H·C^b
    used: tuple[float, ...]  # budgets entering the power-law fits
    warnings: tuple[str, ...]

    @property
    def a(self) -> float:
        return self.n_opt.exponent

    @property
    def b(self) -> float:
        return self.d_opt.exponent

    def to_frame(self) -> pd.DataFrame:
        """One row per budget: the minimum, its interval and the flags."""
        rows = []
        for p in self.profiles:
            d = p.to_dict()
            rows.append(
                {k: d[k] for k in ("budget", "n_points", "n_opt", "n_opt_lo", "n_opt_hi", "d_opt", "d_opt_lo",
                                   "d_opt_hi", "loss_opt", "loss_opt_lo", "loss_opt_hi", "convex", "interior")}
                | dict(used=p.budget in self.used, n_boot_excluded=p.n_excluded, warning="; ".join(p.warnings))
            )  # fmt: skip
        return pd.DataFrame(rows)

    def to_dict(self) -> dict:
        return {
            "approach": "isoflop",
            "n_opt": self.n_opt.to_dict(),
            "d_opt": self.d_opt.to_dict(),
            "used": [float(c) for c in self.used],
            "profiles": [p.to_dict() for p in self.profiles],
            "warnings": list(self.warnings),
        }

    def summary(self) -> str:
        lines = [f"IsoFLOP profiles: {len(self.profiles)} budgets, {len(self.used)} in the power-law fits"]
        lines += ["  " + p.summary().replace("\n", "\n  ") for p in self.profiles]
        lines += [f"  N_opt: {self.n_opt.summary()}", f"  D_opt: {self.d_opt.summary()}"]
        return "\n".join(lines)

    __str__ = summary


def isoflop_analysis(
    df: pd.DataFrame,
    *,
    budget: str | None = None,
    rtol: float = 0.1,
    params_col: str = "params",
    loss_col: str = "loss",
    flops_col: str = "flops",
    tokens_col: str | None = "tokens",
    min_points: int = 3,
    minimum: str = "parabola",
    density: int = 25,
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
    keep_flagged: bool = False,
) -> IsoFlopResult:
    """Approach 2 on a table of finished runs (one row per run).

    budget: the column naming each row's IsoFLOP budget (its values are the budgets C);
        None groups rows by ``flops_col``: a new budget starts at every gap of more than a
        factor 1 + ``rtol`` between sorted FLOPs (``group_budgets``), each group's
        geometric-mean FLOPs is its C, and a group spanning more than 1.5x is warned about.
    tokens_col: used for FLOPs per parameter-token (None or absent: 6).
    min_points: budgets with fewer distinct sizes are skipped (with a warning).
    minimum, density: how each budget's minimum is located (``isoflop_profile``).
    keep_flagged: also fit the power laws through flagged profiles.
    """
    check_bootstrap_args(n_boot, level)
    need = [params_col, loss_col] + ([budget] if budget else [flops_col])
    missing = [c for c in need if c not in df.columns]
    if missing:
        raise ValueError(f"isoflop_analysis: missing column(s) {missing}; the table has {list(df.columns)}")
    if budget is not None:
        keys = df[budget].to_numpy(dtype=float)
        groups = {float(c): np.flatnonzero(keys == c) for c in np.unique(keys)}
    else:
        flops = df[flops_col].to_numpy(dtype=float)
        labels = group_budgets(flops, rtol)
        groups = {}
        for lab in np.unique(labels):
            rows = np.flatnonzero(labels == lab)
            groups[float(np.exp(np.mean(np.log(flops[rows]))))] = rows
    has_tokens = tokens_col is not None and tokens_col in df.columns
    profiles, warns = [], []
    if budget is None:
        spans = group_spans(flops, labels)
        for lab in np.flatnonzero(spans > WIDE_SPAN):
            sel = labels == lab
            warns.append(
                f"budget group {lab} spans {flops[sel].min():.3g} to {flops[sel].max():.3g} FLOPs "
                f"({spans[lab]:.2f}x > {WIDE_SPAN}x, {int(sel.sum())} rows): FLOP values less than a factor "
                f"1+rtol={1 + rtol:g} apart chained several budgets into one; pass a budget column or a smaller rtol"
            )
    for i, (c, rows) in enumerate(sorted(groups.items())):
        sub = df.iloc[rows]
        n_distinct = sub[params_col].nunique()
        if n_distinct < max(3, min_points):
            warns.append(f"budget {c:.4g}: skipped, only {n_distinct} distinct sizes (need {max(3, min_points)})")
            continue
        p = isoflop_profile(
            sub[params_col].to_numpy(float),
            sub[loss_col].to_numpy(float),
            c,
            tokens=sub[tokens_col].to_numpy(float) if has_tokens else None,
            minimum=minimum,
            density=density,
            n_boot=n_boot,
            level=level,
            seed=seed + i,
        )
        profiles.append(p)
        warns.extend(p.warnings + p.notes)
    used = [p for p in profiles if keep_flagged or not p.flagged]
    if len(used) < 2:
        raise ValueError(
            f"isoflop_analysis: need at least 2 usable IsoFLOP budgets for the power laws; got {len(used)}"
            + (f" ({'; '.join(warns)})" if warns else "")
        )
    C = np.array([p.budget for p in used])
    k = np.array([p.flops_per_param_token for p in used])
    n_star = np.array([p.n_opt for p in used])
    n_draws = np.stack([p.n_opt_draws for p in used], axis=1)  # (n_boot, budgets)
    d_draws = C / (k * n_draws)
    return IsoFlopResult(
        profiles=tuple(profiles),
        n_opt=fit_power_law(C, n_star, n_draws, level=level),
        d_opt=fit_power_law(C, C / (k * n_star), d_draws, level=level),
        used=tuple(float(c) for c in C),
        warnings=tuple(warns),
    )


def isoflop_loss_at(
    profile: IsoFlopProfile,
    params,
    *,
    method: str = "parabola",
    n_boot: int = 200,
    extrapolate: bool = False,
):
    """Loss along one IsoFLOP budget at unobserved sizes, with a bootstrap interval.

    method: ``'parabola'`` (the profile's fit; the interval comes from its stored draws)
        or an ``loss_curves.py`` method name (``'cubic'``, ``'pchip'``, ``'smoothing'``,
        ``'linear'``; loss vs N in log-log; the interval refits it on ``n_boot``
        resamples of the budget's points, seeded by the profile's seed).
    Returns (loss, lo, hi), arrays shaped like ``params`` (floats for a scalar).
    """
    q = np.asarray(params, dtype=float)
    lo_n, hi_n = profile.params.min(), profile.params.max()
    if not extrapolate and (np.any(q < lo_n * (1 - 1e-9)) or np.any(q > hi_n * (1 + 1e-9))):
        bad = q[(q < lo_n * (1 - 1e-9)) | (q > hi_n * (1 + 1e-9))].ravel()[0]
        raise ValueError(
            f"N={bad:.6g} is outside the sizes tried [{lo_n:.6g}, {hi_n:.6g}] at budget "
            f"{profile.budget:.4g}; pass extrapolate=True to extrapolate"
        )
    z = (np.log(q.ravel()) - profile.x_center) / profile.x_scale
    Z = np.stack([np.ones_like(z), z, z * z], axis=0)
    if method == "parabola":
        value = profile.coef @ Z
        draws = profile.coef_draws @ Z  # (n_boot, m)
    elif method in METHODS:
        f = interpolate_curve(profile.params, profile.loss, method=method, extrapolate=extrapolate)
        value = np.atleast_1d(f(q.ravel()))
        rng = np.random.default_rng(profile.seed)
        n = len(profile.params)
        need = MIN_POINTS[method] or 3  # polynomial: the default degree 2
        draws = []
        for _ in range(n_boot):
            idx = rng.integers(0, n, size=n)
            Nb = profile.params[idx]
            # a resample must still span the queried sizes (no silent extrapolation)
            if len(np.unique(Nb)) < need or (not extrapolate and (Nb.min() > q.min() or Nb.max() < q.max())):
                continue
            fb = interpolate_curve(Nb, profile.loss[idx], method=method, extrapolate=True)
            draws.append(np.atleast_1d(fb(q.ravel())))
        draws = np.array(draws) if draws else np.full((1, len(z)), np.nan)
    else:
        raise ValueError(f"unknown method {method!r}; use 'parabola' or one of {sorted(METHODS)}")
    pct = 50 * (1 - profile.level)
    ok = np.all(np.isfinite(draws), axis=1)
    if ok.any():
        lo, hi = np.percentile(draws[ok], [pct, 100 - pct], axis=0)
    else:
        lo = hi = np.full(len(z), np.nan)
    shape = q.shape
    out = tuple(np.asarray(a, dtype=float).reshape(shape) for a in (value, lo, hi))
    return tuple(float(a) for a in out) if q.ndim == 0 else out
