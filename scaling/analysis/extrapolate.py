"""Extrapolation with intervals, and backtests of it.

``predict_loss(fit, params=N, tokens=D)`` or ``predict_loss(fit, flops=C)``: the fitted
law's loss with an interval. At a budget C alone (for a law of N and D) the prediction
is the loss at the compute-optimal allocation, each resample at its own optimum.

Two intervals (``interval=``):

- ``"predictive"`` (default): where a new run's *observed* loss will fall: the law's
  bootstrap band combined with run-to-run noise and a misspecification term that grows
  with the extrapolation distance, both calibrated by backtests inside the fit data
  (``predictive.py``; the fit carries it as ``fit.calibration``, set by ``bootstrap``).
- ``"law"``: the bootstrap band of the law alone (parameter uncertainty), narrower and,
  on published scaling data, far below its stated coverage for real held-out runs.

``backtest(data, cutoff_flops | holdout_budgets=K | holdout_params=N)``: fit on the
smaller runs, predict the others, and report per-point absolute relative error, the
mean signed error, coverage at 50/80/90/95% and the sharpness (median relative
half-width) of the interval.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .fit import DEFAULT_DELTA, as_table, fit_law
from .laws import get_law
from .predictive import INTERVALS, check_interval, interval_level, predictive_bounds

__all__ = ["BacktestResult", "backtest", "predict_loss", "INTERVALS"]

COVERAGE_LEVELS = (0.5, 0.8, 0.9, 0.95)


def _calibration_of(fit_, interval: str):
    if interval == "law":
        return None
    cal = getattr(fit_, "calibration", None)
    return cal


def predict_loss(
    fit,
    params=None,
    tokens=None,
    flops=None,
    *,
    k: float | None = None,
    level: float | None = None,
    interval: str = "predictive",
) -> dict:
    """Predicted loss with its interval.

    fit: a FitResult (with .bootstrap and/or .calibration) or a BootstrapResult.
    Give the inputs the law needs (params/tokens/flops), or only flops for a law of
    (params, tokens): then N and D are the compute-optimal allocation at C = k·N·D.
    interval: "predictive" (default; a new run's observed loss: needs the fit's
    calibration, which ``bootstrap`` attaches) or "law" (the bootstrap band only).
    level: default the bootstrap's (0.95 without one).
    Returns a dict of arrays shaped like the inputs (floats for scalars): loss, and
    loss_lo, loss_hi when an interval is available (plus params, tokens at the optimum
    for a C-only query).
    """
    from .optimal import _fit_and_boot, compute_optimal

    check_interval(interval)
    fit_, boot = _fit_and_boot(fit)
    law = get_law(fit_.law)
    given = {"params": params, "tokens": tokens, "flops": flops}
    needs = set(law.inputs)
    if flops is not None and "flops" not in needs and params is None and tokens is None:
        opt = compute_optimal(fit, flops, k=k, level=level, interval=interval)
        keys = ["flops", "params", "tokens", "loss"] + (["loss_lo", "loss_hi"] if "loss_lo" in opt else [])
        return {key: opt[key] for key in keys}
    missing = [i for i in law.inputs if given[i] is None]
    if missing:
        raise ValueError(f"law {law.name!r} needs {list(law.inputs)}; missing {missing}")
    inputs = {i: given[i] for i in law.inputs}
    scalar = all(np.ndim(v) == 0 for v in inputs.values())
    out = {i: np.asarray(v, dtype=float) for i, v in inputs.items()}
    out["loss"] = fit_.predict(**inputs)
    cal = _calibration_of(fit_, interval)
    if interval == "predictive" and cal is None and boot is not None:
        raise ValueError(
            "this fit carries a bootstrap but no predictive calibration (fits saved before it existed): "
            "refit with bootstrap(...) / `scaling fit --bootstrap N`, or ask for interval='law'"
        )
    if cal is not None:
        arrays = dict(zip(inputs, np.broadcast_arrays(*[np.asarray(v, dtype=float) for v in inputs.values()])))
        out["loss_lo"], out["loss_hi"] = predictive_bounds(boot, cal, arrays, out["loss"], interval_level(level, boot))
    elif boot is not None:
        out["loss_lo"], out["loss_hi"] = boot.predict_interval(level=level, **inputs)
    if scalar:
        out = {key: float(v) for key, v in out.items()}
    return out


@dataclass
class BacktestResult:
    """points: one row per held-out point (params, tokens, flops, loss, pred, lo, hi,
    abs_rel_error, signed_error, covered, and per level covered_50 ... covered_95);
    summary: n_fit, n_test, mean_abs_rel_error, mean_signed_error, coverage (at
    ``level``), coverage_by_level, median_rel_halfwidth, interval, level, warnings."""

    points: pd.DataFrame
    summary: dict
    fit: object = field(repr=False, default=None)


def holdout_mask(df: pd.DataFrame, cutoff_flops=None, *, holdout_budgets=None, holdout_params=None) -> np.ndarray:
    """Boolean mask of the rows to predict: flops > cutoff_flops, or the
    ``holdout_budgets`` largest budgets (FLOPs grouped in log space at 10%), or
    params >= holdout_params. Exactly one must be given."""
    given = [v is not None for v in (cutoff_flops, holdout_budgets, holdout_params)]
    if sum(given) != 1:
        raise ValueError("give exactly one of cutoff_flops, holdout_budgets, holdout_params")
    if cutoff_flops is not None:
        if not cutoff_flops > 0:
            raise ValueError(f"cutoff_flops must be positive; got {cutoff_flops!r}")
        return df["flops"].to_numpy(float) > cutoff_flops
    if holdout_params is not None:
        if not holdout_params > 0:
            raise ValueError(f"holdout_params must be positive; got {holdout_params!r}")
        return df["params"].to_numpy(float) >= holdout_params
    from .levels import group_log

    k = holdout_budgets
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"holdout_budgets must be a positive integer; got {k!r}")
    col = "budget" if "budget" in df.columns else "flops"
    lab = group_log(df[col].to_numpy(float), 0.1)
    nb = int(lab.max()) + 1
    if k >= nb:
        raise ValueError(f"holdout_budgets={k} leaves no budget to fit on: the table has {nb} budgets")
    return lab >= nb - k


def backtest(
    data,
    cutoff_flops: float | None = None,
    law="chinchilla",
    *,
    holdout_budgets: int | None = None,
    holdout_params: float | None = None,
    n_boot: int = 200,
    level: float = 0.9,
    interval: str = "predictive",
    seed: int = 0,
    delta: float = DEFAULT_DELTA,
    bootstrap: int | None = None,
    **fit_kw,
) -> BacktestResult:
    """Fit on the smaller runs, predict the held-out larger ones (see ``holdout_mask``).

    n_boot: resamples for the bootstrap (0: no bootstrap; the predictive interval then
    has no parameter term); ``bootstrap`` is an old alias. interval: "predictive"
    (default) or "law" (with n_boot=0 and interval="law" there is no interval; coverage
    is NaN). fit_kw: passed to fit_law (grid, method, prune, k, ...).
    """
    import warnings

    from .uncertainty import bootstrap as _bootstrap

    check_interval(interval)
    if bootstrap is not None:
        n_boot = bootstrap
    if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)) or n_boot < 0:
        raise ValueError(f"n_boot must be a non-negative integer; got {n_boot!r}")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1); got {level!r}")
    df = as_table(data)
    test_mask = holdout_mask(df, cutoff_flops, holdout_budgets=holdout_budgets, holdout_params=holdout_params)
    train = df[~test_mask].reset_index(drop=True)
    test = df[test_mask]
    lawobj = get_law(law)
    where = (
        f"cutoff_flops={cutoff_flops:.3g}"
        if cutoff_flops is not None
        else f"holdout_budgets={holdout_budgets}"
        if holdout_budgets is not None
        else f"holdout_params={holdout_params:.3g}"
    )
    if len(test) == 0:
        raise ValueError(f"no rows held out by {where} (max flops {df['flops'].max():.3g}): nothing to predict")
    if len(train) < lawobj.n_params:
        raise ValueError(
            f"only {len(train)} rows left to fit by {where}; law {lawobj.name!r} has {lawobj.n_params} parameters"
        )
    fit = fit_law(train, lawobj, delta=delta, **fit_kw)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if n_boot:
            fit = _bootstrap(train, fit=fit, n=n_boot, seed=seed, level=level).fit
        if interval == "predictive" and getattr(fit, "calibration", None) is None:
            from .predictive import calibrate

            fit.calibration = calibrate(train, fit)
    warns = list(dict.fromkeys(str(w.message) for w in caught))
    inputs = {i: test[i].to_numpy(float) for i in lawobj.inputs}
    obs = test["loss"].to_numpy(float)
    pts = test[["params", "tokens", "flops", "loss"] + (["run_id"] if "run_id" in test.columns else [])].copy()
    pts["pred"] = np.asarray(fit.predict(**inputs))
    pts["abs_rel_error"] = np.abs(pts["pred"] - obs) / obs
    pts["signed_error"] = pts["pred"] / obs - 1
    has_interval = interval == "predictive" or n_boot > 0
    coverage_by_level = {}
    if has_interval:
        for lv in sorted(set(COVERAGE_LEVELS) | {float(level)}):
            pred = predict_loss(fit, **inputs, level=lv, interval=interval)
            covered = (np.asarray(pred["loss_lo"]) <= obs) & (obs <= np.asarray(pred["loss_hi"]))
            coverage_by_level[lv] = float(np.mean(covered))
            if lv in COVERAGE_LEVELS:
                pts[f"covered_{int(round(100 * lv))}"] = covered
            if lv == float(level):
                pts["lo"], pts["hi"], pts["covered"] = np.asarray(pred["loss_lo"]), np.asarray(pred["loss_hi"]), covered
        half = (pts["hi"] - pts["lo"]) / (2 * pts["pred"])
    summary = {
        "law": lawobj.name,
        "split": where,
        "cutoff_flops": float(cutoff_flops) if cutoff_flops is not None else float("nan"),
        "n_fit": int(len(train)),
        "n_test": int(len(test)),
        "mean_abs_rel_error": float(pts["abs_rel_error"].mean()),
        "max_abs_rel_error": float(pts["abs_rel_error"].max()),
        "mean_signed_error": float(pts["signed_error"].mean()),
        "coverage": coverage_by_level.get(float(level), float("nan")),
        "coverage_by_level": {lv: coverage_by_level[lv] for lv in COVERAGE_LEVELS if lv in coverage_by_level},
        "median_rel_halfwidth": float(half.median()) if has_interval else float("nan"),
        "interval": interval if has_interval else "none",
        "level": float(level),
        "warnings": warns,
    }
    return BacktestResult(points=pts.reset_index(drop=True), summary=summary, fit=fit)
