"""The analyses the figures share, computed once per results directory and process
(``make_all`` draws eight figures from one set of fits). Fixed seeds throughout, so the
figures are deterministic.

Each function takes a ``Results`` and raises ``MissingInput`` when the data cannot
support the analysis (too few budgets, sizes or evaluations), naming what is missing.
"""

from __future__ import annotations

import functools
import os

from scaling.plotting.results import MissingInput, Results

__all__ = ["cached", "envelope", "fit_parametric", "isoflop", "parametric"]

SEED = 0
N_BOOT = 1000
# SCALING_FIGURES_QUICK=1 (tests, smoke runs): one start for the parametric fit instead
# of Hoffmann's 4,500 and fewer bootstrap refits; the same figures, rougher intervals.
QUICK = os.environ.get("SCALING_FIGURES_QUICK", "") not in ("", "0")
N_BOOT_QUICK = 100
QUICK_START = {"log_E": [0.0], "log_A": [3.0], "log_B": [3.0], "alpha": [0.3], "beta": [0.3]}


def _key(res: Results) -> tuple:
    files = [res.root / "runs.csv", res.root / "curves.csv"]
    return (str(res.root.resolve()),) + tuple(p.stat().st_mtime_ns if p.exists() else 0 for p in files)


_CACHE: dict[tuple, object] = {}


def cached(fn):
    """Memoise ``fn(res)`` on the results directory (and its files' mtimes)."""

    @functools.wraps(fn)
    def wrapper(res: Results):
        key = (fn.__name__,) + _key(res)
        if key not in _CACHE:
            _CACHE[key] = fn(res)
        return _CACHE[key]

    return wrapper


@cached
def isoflop(res: Results):
    """Approach 2 on the finished runs, grouped by the plan's budget."""
    from scaling.analysis.isoflop import isoflop_analysis

    try:
        return isoflop_analysis(res.runs, budget="budget", n_boot=N_BOOT, seed=SEED)
    except ValueError as err:
        raise MissingInput(f"IsoFLOP analysis not possible on {res.root}: {err}") from None


@cached
def envelope(res: Results):
    """Approach 1 on the curves of runs with 2+ evaluations."""
    from scaling.analysis.envelope import envelope_analysis

    curves = res.curves_with(2)
    try:
        return envelope_analysis(curves, n_boot=200, seed=SEED)
    except ValueError as err:
        raise MissingInput(f"envelope analysis not possible on {res.root}: {err}") from None


def clear() -> None:
    _CACHE.clear()


# ---- Approach 3: the parametric law L(N, D) = E + A/N^alpha + B/D^beta ----------------


def fit_parametric(runs, *, n_boot: int | None = None, seed: int = SEED):
    """The Chinchilla law fitted to runs (columns params, tokens, flops, loss) by
    ``scaling.analysis.fit_law``, bootstrapped over runs (``scaling.analysis.bootstrap``):
    a FitResult carrying ``.bootstrap``, ready for ``compute_optimal``/``predict_loss``."""
    from scaling.analysis import bootstrap, fit_law
    from scaling.analysis.table import flops_per_param_token

    table = runs[["params", "tokens", "flops", "loss"]].reset_index(drop=True)
    if len(table) < 6:
        raise MissingInput(f"a 5-parameter law needs more than 5 runs; got {len(table)}")
    n_boot = (N_BOOT_QUICK if QUICK else N_BOOT) if n_boot is None else n_boot
    fit = fit_law(table, "chinchilla", grid=QUICK_START if QUICK else None, k=flops_per_param_token(table))
    return bootstrap(table, fit=fit, n_boot=n_boot, seed=seed).fit


@cached
def parametric(res: Results):
    """Approach 3 on every finished run."""
    return fit_parametric(res.runs)


def backtest(runs, cutoff_flops: float, *, seed: int = SEED):
    """``scaling.analysis.backtest`` on the runs (fit on flops <= cutoff, predict the
    rest), with the figures' starting grid, bootstrap size and k."""
    from scaling.analysis import backtest as _backtest
    from scaling.analysis.table import flops_per_param_token

    table = runs[["params", "tokens", "flops", "loss"] + (["run_id"] if "run_id" in runs.columns else [])]
    return _backtest(
        table,
        cutoff_flops,
        n_boot=N_BOOT_QUICK if QUICK else 200,
        level=0.95,
        seed=seed,
        grid=QUICK_START if QUICK else None,
        k=flops_per_param_token(table),
    )
