"""Sweeps: compute budgets → a plan of runs → resumable training → one results store.

from scaling.sweep import load_sweep_config, plan_sweep, run_sweep
plan = plan_sweep(load_sweep_config("experiments/quickstart.toml"))
run_sweep(plan, "results/quickstart")          # runs.csv, curves.csv, sweep.toml, manifest.json
"""

from scaling.sweep.config import SweepConfig, load_sweep_config
from scaling.sweep.plan import Plan, PlannedRun, plan_sweep, run_id
from scaling.sweep.runner import Hosts, SweepReport, partition, run_sweep, worker_from_env
from scaling.sweep.store import CURVE_COLUMNS, RUN_COLUMNS, ResultsStore

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
