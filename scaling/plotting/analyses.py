"""The analyses the figures share, computed once per results directory and process
(``make_all`` draws eight figures from one set of fits). Fixed seeds throughout, so the
figures are deterministic.

Each function takes a ``Results`` and raises ``MissingInput`` when the data cannot
support the analysis (too few budgets, sizes or evaluations), naming what is missing.
"""

from __future__ import annotations

import functools

from scaling.plotting.results import MissingInput, Results

__all__ = ["isoflop", "envelope", "cached"]

SEED = 0
N_BOOT = 1000


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
