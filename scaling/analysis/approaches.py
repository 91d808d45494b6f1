"""The three compute-optimal approaches of Hoffmann et al. (2022) side by side.

1. envelope of training curves (``envelope.py``): needs loss curves;
2. IsoFLOP profiles (``isoflop.py``): needs final losses of runs on shared budgets;
3. a fitted parametric law, L = E + A/N^alpha + B/D^beta (``fit.py``, ``optimal.py``,
   with intervals from ``uncertainty.py``'s bootstrap): needs final losses.

``compare_approaches`` runs whichever the inputs allow and returns one table: per
approach the exponents a (N_opt ∝ C^a) and b (D_opt ∝ C^b) with intervals, and N_opt,
D_opt at a requested budget C with intervals. Agreement between the rows is the
check; disagreement says which assumption (curve shape, parabola, functional form)
is doing the work.
"""

from __future__ import annotations

import pandas as pd

from .allocation import PowerLawFit
from .envelope import envelope_analysis
from .fit import fit_law
from .isoflop import isoflop_analysis
from .optimal import compute_optimal
from .results import BootstrapResult, FitResult, fit_and_bootstrap
from .uncertainty import bootstrap

__all__ = ["compare_approaches", "COLUMNS"]

COLUMNS = (
    "approach",
    "name",
    "a",
    "a_lo",
    "a_hi",
    "b",
    "b_lo",
    "b_hi",
    "flops",
    "n_opt",
    "n_opt_lo",
    "n_opt_hi",
    "d_opt",
    "d_opt_lo",
    "d_opt_hi",
    "warnings",
)


def _from_power_laws(approach: int, name: str, n_fit: PowerLawFit, d_fit: PowerLawFit, C: float, warns) -> dict:
    n_lo, n_hi = n_fit.interval(C)
    d_lo, d_hi = d_fit.interval(C)
    return dict(
        approach=approach,
        name=name,
        a=n_fit.exponent,
        a_lo=n_fit.exponent_interval[0],
        a_hi=n_fit.exponent_interval[1],
        b=d_fit.exponent,
        b_lo=d_fit.exponent_interval[0],
        b_hi=d_fit.exponent_interval[1],
        flops=C,
        n_opt=float(n_fit(C)),
        n_opt_lo=float(n_lo[0]),
        n_opt_hi=float(n_hi[0]),
        d_opt=float(d_fit(C)),
        d_opt_lo=float(d_lo[0]),
        d_opt_hi=float(d_hi[0]),
        warnings=len(warns),
    )


def _parametric(fit, runs, C, k, n_boot, level, seed, fit_options, bootstrap_options) -> dict:
    if fit is None or (isinstance(fit, FitResult) and fit.bootstrap is None and runs is not None):
        if runs is None:
            raise ValueError("approach 3 needs runs (final losses) or a fit")
        if fit is None:
            fit = fit_law(runs, "chinchilla", **(fit_options or {}))
        fit = bootstrap(runs, fit=fit, n_boot=n_boot, seed=seed, level=level, **(bootstrap_options or {})).fit
    if not isinstance(fit, (FitResult, BootstrapResult)):
        raise ValueError(f"fit must be a FitResult or BootstrapResult; got {type(fit).__name__}")
    base, boot = fit_and_bootstrap(fit)
    out = compute_optimal(fit, C, k=k, level=level if boot is not None else None)
    nan = float("nan")
    return dict(
        approach=3,
        name="parametric",
        a=out["a"],
        a_lo=out.get("a_lo", nan),
        a_hi=out.get("a_hi", nan),
        b=out["b"],
        b_lo=out.get("b_lo", nan),
        b_hi=out.get("b_hi", nan),
        flops=C,
        n_opt=out["params"],
        n_opt_lo=out.get("params_lo", nan),
        n_opt_hi=out.get("params_hi", nan),
        d_opt=out["tokens"],
        d_opt_lo=out.get("tokens_lo", nan),
        d_opt_hi=out.get("tokens_hi", nan),
        warnings=len(base.warnings) + (len(boot.warnings) if boot is not None else 0),
    )


def compare_approaches(
    curves: pd.DataFrame | None = None,
    runs: pd.DataFrame | None = None,
    *,
    fit=None,
    flops: float = 1e21,
    k: float | None = None,
    n_boot: int = 200,
    level: float = 0.95,
    seed: int = 0,
    envelope_options: dict | None = None,
    isoflop_options: dict | None = None,
    fit_options: dict | None = None,
    bootstrap_options: dict | None = None,
) -> pd.DataFrame:
    """One row per approach the inputs allow (columns ``COLUMNS``).

    curves: loss curves (run_id, params, tokens, flops, loss per evaluation) -> approach 1.
    runs: final losses (params, tokens, flops, loss; IsoFLOP budgets by a ``budget``
        column named in isoflop_options or by FLOPs) -> approach 2, and approach 3 when
        no bootstrapped ``fit`` is given.
    fit: a FitResult (with a bootstrap attached for intervals) or BootstrapResult for
        approach 3; a FitResult without a bootstrap is bootstrapped on ``runs`` when given.
    flops: the budget C at which N_opt and D_opt are reported.
    k: FLOPs per parameter-token for approach 3 (default: the fit's).
    n_boot, level, seed: bootstrap size, interval level and seed for every approach.
    *_options: passed to envelope_analysis, isoflop_analysis, fit_law and bootstrap.
    """
    if curves is None and runs is None and fit is None:
        raise ValueError("compare_approaches needs curves (approach 1), runs (approaches 2, 3) or a fit (approach 3)")
    if not flops > 0:
        raise ValueError(f"flops must be positive; got {flops!r}")
    C = float(flops)
    rows = []
    if curves is not None:
        env = envelope_analysis(curves, n_boot=n_boot, level=level, seed=seed, **(envelope_options or {}))
        rows.append(_from_power_laws(1, "envelope", env.n_opt, env.d_opt, C, env.warnings))
    if runs is not None:
        iso = isoflop_analysis(runs, n_boot=n_boot, level=level, seed=seed, **(isoflop_options or {}))
        rows.append(_from_power_laws(2, "isoflop", iso.n_opt, iso.d_opt, C, iso.warnings))
    if fit is not None or runs is not None:
        rows.append(_parametric(fit, runs, C, k, n_boot, level, seed, fit_options, bootstrap_options))
    return pd.DataFrame(rows, columns=list(COLUMNS))
