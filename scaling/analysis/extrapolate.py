"""Extrapolation with intervals, and backtests of it.

``predict_loss(fit, params=N, tokens=D)`` or ``predict_loss(fit, flops=C)``: the fitted
law's loss with a percentile interval over the bootstrap resamples. At a budget C alone
(for a law of N and D) the prediction is the loss at the compute-optimal allocation,
each resample at its own optimum.

The interval is for the *law* (parameter uncertainty), not for one new noisy run:
a run's own noise around the law comes on top.

``backtest(data, cutoff_flops)``: fit on runs with compute <= cutoff, predict the
others, and report per-point absolute relative error, its mean, and whether each
interval covered the observed loss.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .engine import DEFAULT_DELTA
from .fit import fit_law
from .laws import get_law
from .optimal import compute_optimal
from .results import BacktestResult, BootstrapResult, FitResult, fit_and_bootstrap
from .table import as_table, flops_per_param_token
from .uncertainty import bootstrap

__all__ = ["BacktestResult", "backtest", "predict_loss"]


def predict_loss(
    fit: FitResult | BootstrapResult,
    params=None,
    tokens=None,
    flops=None,
    *,
    k: float | None = None,
    level: float | None = None,
) -> dict:
    """Predicted loss with its bootstrap interval (when the fit carries one).

    fit: a FitResult (intervals need .bootstrap) or a BootstrapResult.
    Give the inputs the law needs (params/tokens/flops), or only flops for a law of
    (params, tokens): then N and D are the compute-optimal allocation at C = k·N·D.
    Returns a dict of arrays shaped like the inputs (floats for scalars): loss, and
    loss_lo, loss_hi when bootstrapped (plus params, tokens at the optimum for a C-only
    query).
    """
    fit_, boot = fit_and_bootstrap(fit)
    law = get_law(fit_.law)
    given = {"params": params, "tokens": tokens, "flops": flops}
    needs = set(law.inputs)
    if flops is not None and "flops" not in needs and params is None and tokens is None:
        opt = compute_optimal(fit, flops, k=k, level=level)
        keys = ["flops", "params", "tokens", "loss"] + (["loss_lo", "loss_hi"] if boot is not None else [])
        return {key: opt[key] for key in keys}
    missing = [i for i in law.inputs if given[i] is None]
    if missing:
        raise ValueError(f"law {law.name!r} needs {list(law.inputs)}; missing {missing}")
    inputs = {i: given[i] for i in law.inputs}
    scalar = all(np.ndim(v) == 0 for v in inputs.values())
    out: dict[str, Any] = {i: np.asarray(v, dtype=float) for i, v in inputs.items()}
    out["loss"] = fit_.predict(**inputs)
    if boot is not None:
        out["loss_lo"], out["loss_hi"] = boot.predict_interval(level=level, **inputs)
    if scalar:
        out = {key: float(v) for key, v in out.items()}
    return out


def backtest(
    data,
    cutoff_flops: float,
    law="chinchilla",
    *,
    n_boot: int = 200,
    level: float = 0.95,
    seed: int = 0,
    delta: float = DEFAULT_DELTA,
    k: float | None = None,
    **fit_kw,
) -> BacktestResult:
    """Fit on rows with flops <= cutoff_flops, predict the rows above it.

    n_boot: bootstrap resamples for the intervals (0: no intervals, coverage is NaN).
    k: FLOPs per parameter-token (default: the whole table's, ``flops_per_param_token``,
    so the held-out rows do not change it). fit_kw: passed to fit_law (grid, method, prune, ...).
    """
    df = as_table(data)
    train = df[df["flops"] <= cutoff_flops]
    test = df[df["flops"] > cutoff_flops]
    lawobj = get_law(law)
    if len(test) == 0:
        raise ValueError(
            f"no rows above cutoff_flops={cutoff_flops:.3g} (max flops {df['flops'].max():.3g}): nothing to predict"
        )
    if len(train) < lawobj.n_params:
        raise ValueError(
            f"only {len(train)} rows at or below cutoff_flops={cutoff_flops:.3g}; law {lawobj.name!r} "
            f"has {lawobj.n_params} parameters"
        )
    k = flops_per_param_token(df) if k is None else float(k)
    fit = fit_law(train, lawobj, delta=delta, k=k, **fit_kw)
    if n_boot:
        fit, _ = fit_and_bootstrap(bootstrap(train, fit=fit, n_boot=n_boot, seed=seed, level=level))
    inputs = {i: test[i].to_numpy(float) for i in lawobj.inputs}
    pred = predict_loss(fit, **inputs, level=level)
    obs = test["loss"].to_numpy(float)
    pts = test[["params", "tokens", "flops", "loss"] + (["run_id"] if "run_id" in test.columns else [])].copy()
    pts["pred"] = np.asarray(pred["loss"])
    pts["abs_rel_error"] = np.abs(pts["pred"] - obs) / obs
    if n_boot:
        pts["pred_lo"] = np.asarray(pred["loss_lo"])
        pts["pred_hi"] = np.asarray(pred["loss_hi"])
        pts["covered"] = (pts["pred_lo"] <= obs) & (obs <= pts["pred_hi"])
        coverage = float(pts["covered"].mean())
    else:
        coverage = float("nan")
    return BacktestResult(
        points=pts.reset_index(drop=True),
        law=lawobj.name,
        cutoff_flops=float(cutoff_flops),
        n_fit=int(len(train)),
        n_test=int(len(test)),
        mean_abs_rel_error=float(pts["abs_rel_error"].mean()),
        max_abs_rel_error=float(pts["abs_rel_error"].max()),
        coverage=coverage,
        level=float(level),
        fit=fit,
    )
