"""Scaling-law analysis on any table of (params, tokens or flops, loss).

Never imports the training stack, so it runs on published data as well as on our
sweeps. Names load lazily (JAX is imported only by what needs it):

    from scaling.analysis import load_table, fit_law, bootstrap, compute_optimal
    df = load_table("results/quickstart")            # or a CSV / DataFrame
    fit = fit_law(df, "chinchilla")                   # Huber on log loss, 4,500-start grid
    boot = bootstrap(df, fit=fit, n_boot=1000)        # refits batched; boot.fit has .intervals
    compute_optimal(boot, 1e21)                       # Approach 3, with intervals
    predict_loss(boot, params=7e10, tokens=1.4e12)    # extrapolation with an interval
    backtest(df, cutoff_flops=1e20)                   # fit small, predict large

Modules, in one-way layers (each imports only from those before it; checked by
tests/analysis/test_analysis_imports.py): laws, table -> engine (objective, starts,
batched L-BFGS) -> varpro, results (FitResult, BootstrapResult, BacktestResult) -> fit
-> uncertainty (bootstrap) -> optimal -> extrapolate -> approaches. Beside them, numpy
only: allocation, loss_curves, envelope (Approach 1), isoflop (Approach 2), schedules,
curve_law.

Floating point: the fitting code runs inside ``jax.enable_x64(True)`` contexts, so it
computes in float64 without changing JAX's process-wide default (float32 for the
trainer running in the same process).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # what editors and type checkers see; at run time names load lazily
    from .approaches import compare_approaches
    from .compare import compare_laws
    from .curve_law import fit_curve_law, predict_cooldown
    from .data_constrained import fit_data_constrained
    from .design import grid_bias, propose_runs
    from .engine import objective
    from .envelope import envelope_analysis
    from .extrapolate import backtest, predict_loss
    from .fit import fit_law
    from .hparams import HparamLaws, cell_optima, fit_hparam_laws
    from .isoflop import isoflop_analysis, isoflop_loss_at
    from .laws import Law, get_law, list_laws, register_law
    from .loss_curves import interpolate_curve
    from .optimal import allocation_exponents, compute_optimal
    from .predictive import calibrate
    from .results import BacktestResult, BootstrapResult, Calibration, FitResult
    from .table import load_table
    from .uncertainty import bootstrap, resample_weights

_EXPORTS = {
    # laws
    "Law": "laws",
    "get_law": "laws",
    "register_law": "laws",
    "list_laws": "laws",
    # data
    "load_table": "table",
    # fitting
    "fit_law": "fit",
    "objective": "engine",
    # results
    "FitResult": "results",
    "BootstrapResult": "results",
    "BacktestResult": "results",
    "Calibration": "results",
    # uncertainty
    "bootstrap": "uncertainty",
    "resample_weights": "uncertainty",
    "calibrate": "predictive",
    "compare_laws": "compare",
    # Approach 3 and extrapolation
    "compute_optimal": "optimal",
    "allocation_exponents": "optimal",
    "predict_loss": "extrapolate",
    "backtest": "extrapolate",
    # Approaches 1 and 2, loss-curve interpolation (numpy only)
    "isoflop_analysis": "isoflop",
    "envelope_analysis": "envelope",
    "interpolate_curve": "loss_curves",
    "isoflop_loss_at": "isoflop",
    "compare_approaches": "approaches",
    # schedule-aware loss-curve law (Tissue et al. 2024)
    "fit_curve_law": "curve_law",
    "predict_cooldown": "curve_law",
    # beyond Chinchilla: hyperparameter laws, data-constrained law, active design
    "cell_optima": "hparams",
    "fit_hparam_laws": "hparams",
    "HparamLaws": "hparams",
    "fit_data_constrained": "data_constrained",
    "propose_runs": "design",
    "grid_bias": "design",
}

__all__ = [
    "BacktestResult",
    "BootstrapResult",
    "Calibration",
    "FitResult",
    "HparamLaws",
    "Law",
    "allocation_exponents",
    "backtest",
    "bootstrap",
    "calibrate",
    "cell_optima",
    "compare_approaches",
    "compare_laws",
    "compute_optimal",
    "envelope_analysis",
    "fit_curve_law",
    "fit_data_constrained",
    "fit_hparam_laws",
    "fit_law",
    "get_law",
    "grid_bias",
    "interpolate_curve",
    "isoflop_analysis",
    "isoflop_loss_at",
    "list_laws",
    "load_table",
    "objective",
    "predict_cooldown",
    "predict_loss",
    "propose_runs",
    "register_law",
    "resample_weights",
]  # = sorted(_EXPORTS); tests/analysis/test_analysis_imports.py checks


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'scaling.analysis' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))
