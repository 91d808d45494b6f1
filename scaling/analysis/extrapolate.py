"""Extrapolation with intervals, and backtests of it.

``predict_loss(fit, params=N, tokens=D)`` or ``predict_loss(fit, flops=C)``: the fitted
law's loss with an interval. At a budget C alone (for a law of N and D) the prediction
is the loss at the compute-optimal allocation, each resample at its own optimum.

Two intervals (``interval=``):

- ``"predictive"`` (default): where a new run's *observed* loss will fall: the law's
  bootstrap band combined with run-to-run noise and a misspecification term that grows
  with the extrapolation distance, both calibrated by backtests inside the fit data
  (``predictive.py``; the fit carries it as ``fit.calibration``, set by ``bootstrap``).
- ``"law"``: the bootstrap band of the law alone (parameter uncertainty): narrower and,
  on published scaling data, far below its stated coverage for real held-out runs
  (results/calibration).

``backtest(data, cutoff_flops | holdout_budgets=K | holdout_params=N)``: fit on the
smaller runs, predict the others, and report per-point absolute relative error, the
mean signed error, coverage at 50/80/90/95% and the sharpness (median relative
half-width) of the interval.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .engine import DEFAULT_DELTA
from .fit import fit_law
from .laws import get_law
from .levels import group_log
from .optimal import compute_optimal
from .predictive import calibrate, calibration_for, check_interval, interval_level, predictive_bounds
from .results import BacktestResult, BootstrapResult, FitResult, fit_and_bootstrap
from .table import as_table, flops_per_param_token
from .uncertainty import bootstrap

__all__ = ["BacktestResult", "backtest", "holdout_mask", "predict_loss", "COVERAGE_LEVELS"]

COVERAGE_LEVELS = (0.5, 0.8, 0.9, 0.95)  # the levels every backtest reports coverage at


def predict_loss(
    fit: FitResult | BootstrapResult,
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
    interval: "predictive" (default: a new run's observed loss; uses the fit's
    calibration, which ``bootstrap`` attaches) or "law" (the bootstrap band only).
    level: default the bootstrap's (0.95 without one).
    Returns a dict of arrays shaped like the inputs (floats for scalars): loss, and
    loss_lo, loss_hi when an interval is available (plus params, tokens at the optimum
    for a C-only query).
    """
    check_interval(interval)
    fit_, boot = fit_and_bootstrap(fit)
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
    out: dict[str, Any] = {i: np.asarray(v, dtype=float) for i, v in inputs.items()}
    out["loss"] = fit_.predict(**inputs)
    cal = calibration_for(fit_, boot, interval)
    if cal is not None:
        arrays = dict(zip(inputs, np.broadcast_arrays(*[np.asarray(v, dtype=float) for v in inputs.values()])))
        out["loss_lo"], out["loss_hi"] = predictive_bounds(
            boot, cal, arrays, np.asarray(out["loss"], dtype=float), interval_level(level, boot)
        )
    elif boot is not None:
        out["loss_lo"], out["loss_hi"] = boot.predict_interval(level=level, **inputs)
    if scalar:
        out = {key: float(v) for key, v in out.items()}
    return out


def holdout_mask(df, cutoff_flops=None, *, holdout_budgets=None, holdout_params=None) -> np.ndarray:
    """Boolean mask of the rows to predict: flops > cutoff_flops, or the
    ``holdout_budgets`` largest budgets (a ``budget`` column, else FLOPs grouped in log
    space at 10%, ``levels.group_log``), or params >= holdout_params. Exactly one."""
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
    K = holdout_budgets
    if isinstance(K, bool) or not isinstance(K, (int, np.integer)) or K < 1:
        raise ValueError(f"holdout_budgets must be a positive integer; got {K!r}")
    lab = group_log(df["budget" if "budget" in df.columns else "flops"].to_numpy(float), 0.1)
    nb = int(lab.max()) + 1
    if K >= nb:
        raise ValueError(f"holdout_budgets={K} leaves no budget to fit on: the table has {nb} budgets")
    return lab >= nb - K


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
    k: float | None = None,
    **fit_kw,
) -> BacktestResult:
    """Fit on the smaller runs, predict the held-out larger ones (``holdout_mask``:
    cutoff_flops, holdout_budgets=K or holdout_params=N).

    n_boot: bootstrap resamples (0: none; the predictive interval then has no parameter
    term, and interval="law" has no interval at all: coverage NaN). interval:
    "predictive" (default; calibrated on the fit rows only) or "law". level: of the
    per-point lo/hi; coverage is reported at COVERAGE_LEVELS too.
    k: FLOPs per parameter-token (default: the whole table's, ``flops_per_param_token``,
    so the held-out rows do not change it). fit_kw: passed to fit_law (grid, method, prune, ...).
    """
    import warnings

    check_interval(interval)
    if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)) or n_boot < 0:
        raise ValueError(f"n_boot must be a non-negative integer; got {n_boot!r}")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1); got {level!r}")
    df = as_table(data)
    lawobj = get_law(law)
    test_mask = holdout_mask(df, cutoff_flops, holdout_budgets=holdout_budgets, holdout_params=holdout_params)
    where = (
        f"cutoff_flops={cutoff_flops:.3g}"
        if cutoff_flops is not None
        else f"holdout_budgets={holdout_budgets}"
        if holdout_budgets is not None
        else f"holdout_params={holdout_params:.3g}"
    )
    train = df[~test_mask].reset_index(drop=True)
    test = df[test_mask]
    if len(test) == 0:
        raise ValueError(f"no rows held out by {where} (max flops {df['flops'].max():.3g}): nothing to predict")
    if len(train) < lawobj.n_params:
        raise ValueError(
            f"only {len(train)} rows left to fit by {where}; law {lawobj.name!r} has {lawobj.n_params} parameters"
        )
    k = flops_per_param_token(df) if k is None else float(k)
    fit = fit_law(train, lawobj, delta=delta, k=k, **fit_kw)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if n_boot:
            boot = bootstrap(train, fit=fit, n_boot=n_boot, seed=seed, level=level, calibrate=interval == "predictive")
            fit, _ = fit_and_bootstrap(boot)
        elif interval == "predictive":
            fit.calibration = calibrate(train, fit)
    warns = list(dict.fromkeys(str(w.message) for w in caught))
    inputs = {i: test[i].to_numpy(float) for i in lawobj.inputs}
    obs = test["loss"].to_numpy(float)
    pts = test[["params", "tokens", "flops", "loss"] + (["run_id"] if "run_id" in test.columns else [])].copy()
    pts["pred"] = np.asarray(fit.predict(**inputs))
    pts["abs_rel_error"] = np.abs(pts["pred"] - obs) / obs
    pts["signed_rel_error"] = pts["pred"] / obs - 1
    has_interval = interval == "predictive" or n_boot > 0
    by_level = {}
    if has_interval:
        for lv in sorted(set(COVERAGE_LEVELS) | {float(level)}):
            pred = predict_loss(fit, **inputs, level=lv, interval=interval)
            lo, hi = np.asarray(pred["loss_lo"]), np.asarray(pred["loss_hi"])
            covered = (lo <= obs) & (obs <= hi)
            by_level[lv] = float(np.mean(covered))
            if lv == float(level):
                pts["pred_lo"], pts["pred_hi"], pts["covered"] = lo, hi, covered
        half = float(((pts["pred_hi"] - pts["pred_lo"]) / (2 * pts["pred"])).median())
    return BacktestResult(
        points=pts.reset_index(drop=True),
        law=lawobj.name,
        cutoff_flops=float(cutoff_flops) if cutoff_flops is not None else float(train["flops"].max()),
        n_fit=int(len(train)),
        n_test=int(len(test)),
        mean_abs_rel_error=float(pts["abs_rel_error"].mean()),
        max_abs_rel_error=float(pts["abs_rel_error"].max()),
        coverage=by_level.get(float(level), float("nan")),
        level=float(level),
        fit=fit,
        split=where,
        interval=interval if has_interval else "none",
        mean_signed_error=float(pts["signed_rel_error"].mean()),
        coverage_by_level={lv: by_level[lv] for lv in COVERAGE_LEVELS if lv in by_level},
        median_rel_halfwidth=half if has_interval else float("nan"),
        warnings=tuple(warns),
    )
