"""Law-form uncertainty: score candidate laws by the same inner backtests, and stack them.

Chinchilla's form is one candidate among several the literature supports. Each law in
``laws`` is refitted on the same rolling-origin cutoffs inside the data
(``predictive.rolling_origins``: fit below a cutoff, predict above) and scored by its
held-out log errors, every origin weighted equally:

- ``rmse``: root mean squared log error of the inner backtests (the stacking target);
- ``mean_are``: mean absolute relative error of the same predictions;
- ``bias``: mean signed log error (observed - predicted);
- ``weight``: stacking weights (Yao et al. 2018, "Using stacking to average Bayesian
  predictive distributions"): the convex combination of the laws' inner predictions with
  the least weighted squared log error, found by non-negative least squares and
  normalised to sum to one.

The stacked prediction is sum_l weight_l · ln L_l(x). With few origins the weights are
noisy: they say which forms extrapolated best *inside* these data, not a law of nature.

The default candidates (``DEFAULT_LAWS``, all in the law registry, ``laws.py``):
``chinchilla``; ``chinchilla_dexp``, a data exponent that drifts with model size (the
effect Farseer, Li et al. 2025, models with N-dependent exponents); ``kaplan`` (Kaplan
et al. 2020: N and D interact, no irreducible term).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .laws import get_law
from .predictive import inner_backtests, rolling_origins
from .table import as_table

__all__ = ["compare_laws", "stack_weights", "DEFAULT_LAWS"]

DEFAULT_LAWS = ("chinchilla", "chinchilla_dexp", "kaplan")


def stack_weights(pred: np.ndarray, obs: np.ndarray, w: np.ndarray | None = None) -> np.ndarray:
    """Convex weights (L,) minimising sum_j w_j (sum_l a_l pred[j, l] - obs[j])^2:
    non-negative least squares, then normalised (equal weights when all are zero)."""
    from scipy.optimize import nnls

    pred, obs = np.asarray(pred, float), np.asarray(obs, float)
    w = np.ones(len(obs)) if w is None else np.asarray(w, float)
    sw = np.sqrt(w)
    # sum-to-one by a heavily weighted extra row
    big = 1e3 * np.sqrt(w.sum())
    A = np.vstack([pred * sw[:, None], np.full((1, pred.shape[1]), big)])
    b = np.r_[obs * sw, big]
    a, _ = nnls(A, b)
    return a / a.sum() if a.sum() > 0 else np.full(pred.shape[1], 1.0 / pred.shape[1])


def compare_laws(data, laws=DEFAULT_LAWS, *, fit_kw=None, origins=None) -> pd.DataFrame:
    """Score ``laws`` by inner rolling-origin backtests on ``data`` (one row per law:
    law, n_params, n_origins, n_pairs, rmse, mean_are, bias, weight), best rmse first.
    The inner pairs of every law are in ``result.attrs["pairs"]`` (law -> DataFrame).

    All laws must read the same inputs (the cutoffs are shared). Raises ValueError when
    no cutoff admits an inner backtest (too few budgets or sizes)."""
    table = as_table(data)
    laws = [get_law(law) for law in laws]
    if not laws:
        raise ValueError("compare_laws needs at least one law")
    inputs = {tuple(law.inputs) for law in laws}
    if len(inputs) > 1:
        raise ValueError(
            f"compare_laws: the laws read different inputs {sorted(inputs)}; compare laws of the same inputs"
        )
    if origins is None:
        # the strictest law's admissible cutoffs, shared by all (same inner sets for all)
        origins = rolling_origins(table, max(laws, key=lambda law: law.n_params))
    if not origins:
        raise ValueError(
            "compare_laws: no cutoff leaves enough rows and distinct sizes/budgets for an inner backtest; "
            "the data cannot rank the laws"
        )
    pairs = {law.name: inner_backtests(table, law, origins=origins, fit_kw=fit_kw) for law in laws}
    first = pairs[laws[0].name]
    w = 1.0 / first.groupby("origin")["origin"].transform("size").to_numpy(float)
    obs = first["log_pred"].to_numpy(float) + first["error"].to_numpy(float)
    P = np.stack([pairs[law.name]["log_pred"].to_numpy(float) for law in laws], axis=1)
    finite = np.all(np.isfinite(P), axis=1)
    weights = np.zeros(len(laws))
    weights[:] = stack_weights(np.where(finite[:, None], P, 0.0)[finite], obs[finite], w[finite])
    rows = []
    for i, law in enumerate(laws):
        e = obs - P[:, i]
        ok = np.isfinite(e)
        ww = w[ok] / w[ok].sum()
        rows.append(
            dict(
                law=law.name,
                n_params=law.n_params,
                n_origins=len(origins),
                n_pairs=int(ok.sum()),
                rmse=float(np.sqrt(np.sum(ww * e[ok] ** 2))),
                mean_are=float(np.sum(ww * np.abs(np.expm1(-e[ok])))),
                bias=float(np.sum(ww * e[ok])),
                weight=float(weights[i]),
            )
        )
    out = pd.DataFrame(rows).sort_values("rmse", kind="stable").reset_index(drop=True)
    out.attrs["pairs"] = pairs
    return out
