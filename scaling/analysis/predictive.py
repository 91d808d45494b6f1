"""Predictive intervals for the observed loss of a new run, calibrated on the table itself.

A fitted law's bootstrap band covers the *law's* parameter uncertainty only. A new
run's observed loss also differs from the law by run-to-run noise, and, once it lies
beyond the fitted data, by the law's misspecification, which grows with the distance of
the extrapolation. On published scaling tables the third term dominates (in-sample
residuals ~0.5%, extrapolation errors ~2%, mostly of one sign). The predictive interval
here combines the three, in log loss:

    half-width(x) = sqrt( param(x)^2 + (q_level · sigma(d(x)))^2 ),
    sigma(d)^2    = sigma_0^2 + (kappa · d)^2,

- param(x): the bootstrap percentile offset of the law's prediction at x (asymmetric;
  zero without a bootstrap);
- d(x): the extrapolation distance, the Euclidean norm of how far x lies outside the fit
  data's box in the law's log inputs and, for a law of N and D, ln(N·D) too (a run
  can be inside the range of N and of D and still beyond the compute; see
  ``coordinates``), in e-folds; 0 inside;
- sigma_0: run-to-run noise, the larger of the robust scale of the fit's own log
  residuals (or of repeated seeds at one (N, D), when the table has a ``seed`` column)
  and the interpolation error of the inner backtests at d = 0;
- kappa: the growth of the misspecification per e-fold of extrapolation, and q_level:
  a conformal multiplier, both learned from **rolling-origin backtests inside the fit
  data**: the law is refitted on the rows below a cutoff (along compute, and along each
  of the law's inputs), predicts the rows above it, and each held-out row gives a pair
  (distance from that inner fit's box, log error). kappa is the non-negative
  least-squares growth of the squared errors with d^2 (each origin weighted equally),
  and q_level the level-quantile of the normalised errors |e| / sigma(d), never below
  the Gaussian quantile (few origins give few independent errors; a conformal quantile
  from them alone would be optimistic).

Assumptions, stated: (1) the law's error grows at most linearly in log distance (a
misestimated exponent moves the log prediction by δ·d; a missing term grows similarly),
and at the rate seen when extrapolating inside the data — the inner backtests start
from fewer data, so their errors include more parameter uncertainty, which errs on the
wide side; (2) distances in ln N and ln D count alike; (3) errors are roughly symmetric
once scaled (the interval is symmetric in log loss about the law, widened by the
bootstrap's own asymmetry).

It cannot calibrate when no cutoff leaves enough rows and distinct levels on both sides
(see ``MIN_LEVELS``): it then warns and falls back to the widest honest interval it can
justify, kappa = FALLBACK_KAPPA_FACTOR times the largest error scale it does know (the
residual noise, per e-fold), marked ``calibrated=False``. Nothing here depends on a
particular data set: every number is derived from the table given.
"""

from __future__ import annotations

import math
import warnings as _warnings

import numpy as np
import pandas as pd

from .fit import fit_law
from .laws import get_law
from .levels import coordinates, extrapolation_distance, group_log
from .results import Calibration, normal_quantile

__all__ = [
    "calibrate",
    "inner_backtests",
    "rolling_origins",
    "LEVELS",
    "INTERVALS",
    "calibration_for",
    "check_interval",
    "interval_level",
    "predictive_bounds",
]

INTERVALS = ("predictive", "law")  # the interval kinds predict_loss and friends offer
LEVELS = (0.5, 0.8, 0.9, 0.95)  # the levels whose multipliers a calibration stores
MIN_LEVELS = 3  # distinct levels of every law input an inner fit needs (a size axis: 3 sizes)
MIN_FRACTION, MAX_FRACTION = 0.3, 0.85  # share of the fit rows an inner fit may use
ORIGINS_PER_AXIS = {"flops": 3, "params": 2, "tokens": 2}
LEVEL_RTOL = 0.05  # values within 5% are one level (budget, size) when choosing cutoffs
# Fallback when nothing can be calibrated: an extrapolation error of 4x the residual
# noise per e-fold (in-sample residuals of published tables are ~4x smaller than their
# extrapolation errors one e-fold out), never less than 2% per e-fold.
FALLBACK_KAPPA_FACTOR = 4.0
FALLBACK_KAPPA_MIN = 0.02
# Successive halving for the inner fits: 16 survivors of the whole grid, as a grid
# bootstrap refit (uncertainty.GRID_BOOTSTRAP_PRUNE), since an inner fit is one more refit.
INNER_PRUNE = ((3, 512), (10, 64), (24, 16))


def _log_inputs(table: pd.DataFrame, inputs) -> np.ndarray:
    return coordinates(np.stack([np.log(table[c].to_numpy(float)) for c in inputs], axis=-1))


def rolling_origins(table: pd.DataFrame, law, *, axes=None) -> list[tuple[str, float, np.ndarray]]:
    """Cutoffs for the inner backtests: [(axis, cutoff, inner mask)].

    Along each axis (compute, then each of the law's inputs), the rows are grouped into
    levels (values within LEVEL_RTOL are one level: a budget, a size) and a cutoff is
    placed between two levels when the rows at or below it are MIN_FRACTION..MAX_FRACTION
    of the table and hold at least MIN_LEVELS distinct levels of every law input (and
    more rows than the law has parameters, plus two). Up to ORIGINS_PER_AXIS[axis]
    cutoffs per axis, evenly spread over the admissible ones, the largest always included.
    """
    law = get_law(law)
    if axes is None:
        axes = tuple(dict.fromkeys(("flops",) + tuple(law.inputs)))
    n = len(table)
    in_levels = {i: group_log(table[i].to_numpy(float), LEVEL_RTOL) for i in law.inputs}
    out = []
    for axis in axes:
        if axis not in table.columns:
            continue
        v = table[axis].to_numpy(float)
        lab = group_log(v, LEVEL_RTOL)
        tops = np.array([v[lab == g].max() for g in range(lab.max() + 1)])
        cands = []
        for g in range(len(tops) - 1):
            mask = lab <= g
            frac = mask.mean()
            if not (MIN_FRACTION <= frac <= MAX_FRACTION) or mask.sum() < law.n_params + 2:
                continue
            if any(len(np.unique(in_levels[i][mask])) < MIN_LEVELS for i in law.inputs):
                continue
            cutoff = float(np.sqrt(tops[g] * v[lab == g + 1].min()))
            cands.append((axis, cutoff, mask))
        m = ORIGINS_PER_AXIS.get(axis, 2)
        if len(cands) > m:
            idx = np.unique(np.round(np.linspace(len(cands) - 1, 0, m)).astype(int))
            cands = [cands[i] for i in idx]
        out.extend(cands)
    # identical inner sets (two axes cutting alike) are one origin
    seen, unique = set(), []
    for axis, cutoff, mask in out:
        key = mask.tobytes()
        if key not in seen and not mask.all() and mask.any() and n > 0:
            seen.add(key)
            unique.append((axis, cutoff, mask))
    return unique


def inner_backtests(table: pd.DataFrame, law, *, origins=None, fit_kw=None) -> pd.DataFrame:
    """Refit ``law`` on each origin's inner rows, predict the rest: one row per (origin,
    held-out row) with axis, cutoff, origin, row, distance (e-folds outside the inner
    fit's box), log_pred and error = ln(observed) - ln(predicted).

    Every inner fit is a full fit_law from the law's whole starting grid (pruned as a
    grid bootstrap is, ``GRID_BOOTSTRAP_PRUNE``, unless fit_kw says otherwise), on the
    same points with zero weight on the held-out rows, so all of them share one compiled
    program."""
    law = get_law(law)
    fit_kw = {"prune": INNER_PRUNE, **(fit_kw or {})}
    if origins is None:
        origins = rolling_origins(table, law)
    logx = _log_inputs(table, law.inputs)
    logy = np.log(table["loss"].to_numpy(float))
    rows = []
    for j, (axis, cutoff, mask) in enumerate(origins):
        f = fit_law(table, law, weights=mask.astype(float), **fit_kw)
        test = ~mask
        inner = logx[mask]
        lp = np.log(np.asarray(law.predict(f.params, **{c: table[c].to_numpy(float)[test] for c in law.inputs})))
        d = extrapolation_distance(logx[test], inner.min(0), inner.max(0))
        rows.append(
            pd.DataFrame(
                dict(
                    origin=j,
                    axis=axis,
                    cutoff=cutoff,
                    row=np.flatnonzero(test),
                    distance=d,
                    log_pred=lp,
                    error=logy[test] - lp,
                )
            )
        )
    if not rows:
        return pd.DataFrame(columns=["origin", "axis", "cutoff", "row", "distance", "log_pred", "error"])
    return pd.concat(rows, ignore_index=True)


def _noise(table: pd.DataFrame, fit, law) -> tuple[float, str]:
    """Run-to-run noise of log loss: pooled within-group SD over repeated seeds at one
    (inputs) when the table has them, else the robust scale of the fit's log residuals
    (1.4826·MAD, corrected for the parameters fitted)."""
    logy = np.log(table["loss"].to_numpy(float))
    if "seed" in table.columns:
        key = table[list(law.inputs)].round(6).astype(str).agg("|".join, axis=1)
        g = pd.DataFrame({"k": key, "y": logy}).groupby("k")["y"]
        sizes = g.size()
        if (sizes > 1).sum() >= 2:
            var = g.var(ddof=1)[sizes > 1]
            dof = (sizes[sizes > 1] - 1).to_numpy()
            return float(np.sqrt(np.sum(var.to_numpy() * dof) / dof.sum())), "seeds"
    pred = np.log(np.asarray(fit.predict(**{c: table[c].to_numpy(float) for c in law.inputs})))
    r = logy - pred
    n, p = len(r), law.n_params
    mad = 1.4826 * np.median(np.abs(r - np.median(r)))
    return float(mad * math.sqrt(n / max(n - p, 1))), "residuals"


def _weighted_quantile(values, weights, q: float) -> float:
    order = np.argsort(values)
    v, w = np.asarray(values)[order], np.asarray(weights)[order]
    c = np.cumsum(w) / np.sum(w)
    return float(v[min(int(np.searchsorted(c, q)), len(v) - 1)])


def calibrate(data, fit, *, origins=None, pairs: pd.DataFrame | None = None, fit_kw=None) -> Calibration:
    """The predictive-interval model for ``fit`` (a FitResult of ``data``): noise,
    misspecification growth and conformal multipliers from inner rolling-origin
    backtests of the same law on the same table (see the module docstring).

    pairs: precomputed ``inner_backtests`` output (e.g. shared with compare_laws).
    fit_kw: options for the inner fits (default: the outer fit's delta)."""
    from .fit import as_table

    table = as_table(data)
    law = get_law(fit.law)
    fit_kw = {"delta": fit.delta, **(fit_kw or {})}
    logx = _log_inputs(table, law.inputs)
    noise, source = _noise(table, fit, law)
    warns = []
    if pairs is None:
        origins = rolling_origins(table, law) if origins is None else origins
        pairs = inner_backtests(table, law, origins=origins, fit_kw=fit_kw)
    pairs = pairs[np.isfinite(pairs["error"].to_numpy(float))]
    n_origins = int(pairs["origin"].nunique()) if len(pairs) else 0
    calibrated = n_origins >= 1
    multipliers = {lv: normal_quantile(lv) for lv in LEVELS}
    if calibrated:
        e2 = pairs["error"].to_numpy(float) ** 2
        d2 = pairs["distance"].to_numpy(float) ** 2
        w = 1.0 / pairs.groupby("origin")["origin"].transform("size").to_numpy(float)
        s0, kappa = _fit_growth(e2, d2, w, noise)
        sig = np.sqrt(s0**2 + kappa**2 * d2)
        u = np.sqrt(e2) / np.maximum(sig, 1e-12)
        for lv in LEVELS:
            multipliers[lv] = max(normal_quantile(lv), _weighted_quantile(u, w, lv))
        if n_origins < 3:
            warns.append(
                f"only {n_origins} inner backtest(s) could be run: the misspecification growth is poorly determined"
            )
    else:
        s0 = noise
        kappa = max(FALLBACK_KAPPA_FACTOR * noise, FALLBACK_KAPPA_MIN)
        warns.append(
            "cannot calibrate the predictive interval: no cutoff leaves enough rows and distinct levels "
            f"(>= {MIN_LEVELS} of each of {list(law.inputs)}) to backtest inside the data; falling back to "
            f"a misspecification growth of {100 * kappa:.1f}% per e-fold of extrapolation"
        )
    for w_ in warns:
        _warnings.warn(w_, stacklevel=2)
    return Calibration(
        law=law.name,
        inputs=tuple(law.inputs),
        sigma0=float(s0),
        kappa=float(kappa),
        multipliers=multipliers,
        box_lo=tuple(float(v) for v in logx.min(0)),
        box_hi=tuple(float(v) for v in logx.max(0)),
        noise=float(noise),
        noise_source=source,
        n_origins=n_origins,
        n_pairs=int(len(pairs)),
        calibrated=calibrated,
        warnings=tuple(warns),
        pairs=pairs,
    )


def _fit_growth(e2, d2, w, noise) -> tuple[float, float]:
    """Weighted non-negative least squares of e^2 on [1, d^2]: (sigma0, kappa), with
    sigma0 >= noise."""
    from scipy.optimize import nnls

    sw = np.sqrt(w)
    A = np.stack([np.ones_like(d2), d2], axis=1) * sw[:, None]
    coef, _ = nnls(A, e2 * sw)
    s0 = max(math.sqrt(coef[0]), noise)
    # with sigma0 fixed at its floor, refit the growth alone
    resid = e2 - s0**2
    k2 = max(float(np.sum(w * d2 * resid) / max(np.sum(w * d2 * d2), 1e-300)), 0.0)
    return s0, math.sqrt(k2)


def check_interval(interval: str) -> None:
    """Raise on an interval kind other than "predictive" or "law"."""
    if interval not in INTERVALS:
        raise ValueError(f"interval must be one of {list(INTERVALS)}; got {interval!r}")


def interval_level(level, boot) -> float:
    """The level asked for, else the bootstrap's, else 0.95; checked to be in (0, 1)."""
    level = (boot.level if boot is not None else 0.95) if level is None else float(level)
    if not 0 < level < 1:
        raise ValueError(f"interval level must be in (0, 1); got {level}")
    return level


def calibration_for(fit, boot, interval: str):
    """The Calibration to use for ``interval`` ("law": None). A predictive interval
    asked of a bootstrapped fit without one is an error, not a silent law-only band."""
    if interval == "law":
        return None
    cal = getattr(fit, "calibration", None)
    if cal is None and boot is not None:
        raise ValueError(
            "this fit carries a bootstrap but no predictive calibration (a fit saved before calibrations "
            "existed, or bootstrap(..., calibrate=False)): rerun bootstrap(...) / `scaling fit --n-boot N`, "
            "or ask for interval='law'"
        )
    return cal


def predictive_bounds(boot, cal, inputs: dict, center, level: float, draws=None):
    """(lo, hi) of the predictive interval at ``inputs`` (arrays) around ``center`` (the
    law's loss there): the bootstrap band's log offsets (from ``draws`` (R, ...) of the
    loss, default each resample's law at the inputs) combined with the calibration."""
    log_c = np.log(center)
    plo = phi = None
    if boot is not None:
        if draws is None:
            draws = boot.predict(**inputs)
        with np.errstate(all="ignore"):
            lo, hi = boot.interval(np.log(draws), level)
        plo, phi = log_c - lo, hi - log_c
    d = cal.distance(**{i: inputs[i] for i in cal.inputs})
    return cal.bounds(log_c, d, level, param_lo=plo, param_hi=phi)
