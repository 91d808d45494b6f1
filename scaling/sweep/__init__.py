"""Sweeps: compute budgets → a plan of runs → resumable training → one results store.

from scaling.sweep import load_sweep_config, plan_sweep, run_sweep
plan = plan_sweep(load_sweep_config("experiments/quickstart.toml"))
run_sweep(plan, "results/quickstart")          # runs.csv, curves.csv, sweep.toml, manifest.json
"""

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from scaling.sweep.config import SweepConfig, load_sweep_config
    from scaling.sweep.plan import Plan, PlannedRun, plan_sweep, run_id
    from scaling.sweep.runner import Hosts, SweepReport, partition, run_sweep, worker_from_env
    from scaling.sweep.store import CURVE_COLUMNS, RUN_COLUMNS, ResultsStore

# Names load lazily, so that `scaling.sweep.store` (the results store, JAX-free) can be
# imported by the analysis without pulling in the runner and the training stack.
_EXPORTS = {
    "SweepConfig": "config",
    "load_sweep_config": "config",
    "Plan": "plan",
    "PlannedRun": "plan",
    "plan_sweep": "plan",
    "run_id": "plan",
    "Hosts": "runner",
    "SweepReport": "runner",
    "partition": "runner",
    "run_sweep": "runner",
    "worker_from_env": "runner",
    "CURVE_COLUMNS": "store",
    "RUN_COLUMNS": "store",
    "ResultsStore": "store",
}


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'scaling.sweep' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


__all__ = [
    "CURVE_COLUMNS",
    "RUN_COLUMNS",
    "Hosts",
    "Plan",
    "PlannedRun",
    "ResultsStore",
    "SweepConfig",
    "SweepReport",
    "load_sweep_config",
    "partition",
    "plan_sweep",
    "run_id",
    "run_sweep",
    "worker_from_env",
]
