"""A real sweep: tiny models trained by `scaling.train` (CPU, seconds)."""

from __future__ import annotations

import csv
import math

import pytest

from scaling.sweep import SweepConfig, plan_sweep, run_sweep

TINY = {
    "sweep": {"name": "e2e", "kind": "wsd", "budgets": [6e7, 1.2e8], "points_per_budget": 1, "tokens_per_param": 10,
              "tokens_per_param_range": [0.5, 200], "flop_convention": "6N"},
    "family": {"grid": [[16, 1]]},  # one trunk, two cooldown branches: one compilation
    "wsd": {"cooldown_fraction": 0.25, "decay_shape": "sqrt"},
    "model": {"head_dim": 8, "seq_len": 32},
    "optimizer": {"lr": 1e-2},
    "schedule": {"warmup": 2},
    "train": {"global_batch_size": 8, "eval_every": 10, "eval_batches": 1, "checkpoint_every": 0,
              "progress": False, "async_checkpointing": False},
}  # fmt: skip


@pytest.mark.slow
def test_wsd_sweep_trains_trunks_and_branches(tmp_path):
    plan = plan_sweep(SweepConfig.from_dict(TINY))
    kinds = sorted(r.plan_kind for r in plan.runs)
    assert kinds == ["branch", "branch", "trunk"]
    out = tmp_path / "out"
    report = run_sweep(plan, out, progress=False, record_environment=False, log=lambda m: None)
    assert report.trained == 3
    with open(out / "runs.csv", newline="") as f:
        rows = {r["run_id"]: r for r in csv.DictReader(f)}
    for run in plan.runs:
        row = rows[run.run_id]
        assert row["status"] == "done", row["error"]
        assert math.isfinite(float(row["eval_loss"])) and float(row["eval_loss"]) < 6  # below uniform: ln 257 = 5.55
        assert int(row["steps"]) == run.steps and int(row["tokens"]) == run.steps * 8 * 32
        if run.plan_kind == "branch":  # it started from its trunk's checkpoint, not from scratch
            trunk_dir = out / "runs" / run.parent_run_id
            assert (trunk_dir / "checkpoints" / str(run.init_step)).is_dir()
    with open(out / "curves.csv", newline="") as f:
        curves = list(csv.DictReader(f))
    branch = next(r for r in plan.runs if r.plan_kind == "branch")
    steps = [int(c["step"]) for c in curves if c["run_id"] == branch.run_id]
    assert steps and min(steps) > branch.init_step  # its curve starts after the branch point
    # a second invocation trains nothing
    again = run_sweep(plan, out, progress=False, record_environment=False, log=lambda m: None)
    assert again.trained == 0 and again.count("done") == 3
