"""Checks of a table and of a fitted law that a converged optimizer does not make.

``fit_diagnostics(table, law, params)`` returns warning strings (``fit_law`` appends
them to ``FitResult.warnings``, which ``scaling fit`` prints):

- a non-positive exponent (a single IsoFLOP budget can give alpha = -7 with
  converged=True: the law then *rises* with N); ``fit_law(..., exponent_min=0)`` bounds
  them, and an exponent that ends on that bound is reported instead;
- duplicated rows (one row repeated 10x silently moves beta from 0.37 to 0.47: repeats
  act as weights);
- too few spare points: fewer points beyond the number of parameters than parameters
  (5 points fit a 5-parameter law exactly, residuals say nothing);
- FLOPs inconsistent with k·N·D for the table's convention (rows whose C/(N·D)
  differs from the median by more than FLOPS_RTOL);
- a law of N and D fitted to a single size or a single compute budget (one of its two
  directions is then determined by the functional form alone).
"""

from __future__ import annotations

import numpy as np

from scaling.core.columns import FLOP_CONVENTION

from .laws import get_law
from .levels import group_log

__all__ = ["exponent_params", "fit_diagnostics", "FLOPS_RTOL", "BOUND_ATOL"]

FLOPS_RTOL = 0.1  # C/(N·D) may differ from the table's median by 10% (embedding/attention terms)
BOUND_ATOL = 1e-6  # an exponent this close to exponent_min sits on the bound


def exponent_params(law) -> list[str]:
    """The natural parameters that are decay exponents: fitted as they are (not as logs),
    except the law's ``signed`` ones (chinchilla_dexp's drift gamma, hyperparameter laws)."""
    law = get_law(law)
    return [p for p in law.params if p not in law.log_params and p not in law.signed]


def fit_diagnostics(table, law, params: dict, *, weights=None, exponent_min: float | None = None) -> list[str]:
    """Warnings about ``table`` (canonical columns) and the fitted natural ``params``
    of ``law`` (see the module docstring). weights: the fit's point weights (rows with
    weight 0 do not count). exponent_min: the bound the exponents were fitted under."""
    law = get_law(law)
    w = np.ones(len(table)) if weights is None else np.asarray(weights, dtype=float)
    rows = table[w > 0]
    warns = []
    for p in exponent_params(law):
        if exponent_min is not None and params.get(p, np.inf) <= exponent_min + BOUND_ATOL:
            warns.append(
                f"exponent {p} = {params[p]:.4g} sits on its bound exponent_min = {exponent_min:g}: "
                "the data push it lower, so the bound, not the data, sets it"
            )
        elif params.get(p, 1.0) <= 0:
            warns.append(
                f"exponent {p} = {params[p]:.4g} is not positive: the law does not fall with "
                f"{'N' if 'alpha' in p else 'D'} (too little spread in the data?); "
                "fit_law(..., exponent_min=0) or scaling fit --exponent-min 0 bounds the exponents"
            )
    cols = [c for c in ("params", "tokens", "flops", "loss") if c in rows.columns]
    dup = rows.duplicated(subset=cols, keep="first")
    if dup.any():
        warns.append(
            f"{int(dup.sum())} duplicated row(s) (same {', '.join(cols)}): repeats weigh as extra points; "
            "drop them unless they are real repeated runs"
        )
    n, P = len(rows), law.n_params
    if n - P < P:
        warns.append(
            f"only {n} points for {P} parameters ({n - P} spare): the fit can pass through the points, "
            "its residuals and intervals say little"
        )
    # Only a fixed-k convention (6N) makes C/(N·D) a constant; a store's model-dependent
    # conventions (exact, 6N+attention: attention and embeddings count too) vary it by design.
    conventions = set(rows[FLOP_CONVENTION].astype(str)) if FLOP_CONVENTION in rows.columns else {"6N"}
    if {"params", "tokens", "flops"} <= set(rows.columns) and n and conventions <= {"6N", "nan"}:
        ratio = rows["flops"].to_numpy(float) / (rows["params"].to_numpy(float) * rows["tokens"].to_numpy(float))
        med = float(np.median(ratio))
        off = np.abs(ratio / med - 1) > FLOPS_RTOL
        if off.any():
            warns.append(
                f"{int(off.sum())} row(s) have FLOPs inconsistent with k·N·D (C/(N·D) from {ratio.min():.3g} "
                f"to {ratio.max():.3g}, median k = {med:.3g}): check the FLOP convention and the columns"
            )
    if set(law.inputs) == {"params", "tokens"} and n:
        n_sizes = len(np.unique(group_log(rows["params"].to_numpy(float), 0.01)))
        n_budgets = len(np.unique(group_log(rows["flops"].to_numpy(float), 0.1))) if "flops" in rows else 2
        if n_sizes == 1:
            warns.append("a law of N and D fitted to a single model size: its N dependence is not determined")
        if n_budgets == 1:
            warns.append(
                "a law of N and D fitted to a single compute budget: N and D vary together along it, "
                "so the two exponents are not separately determined"
            )
    return warns
