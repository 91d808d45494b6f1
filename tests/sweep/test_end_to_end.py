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
    "wsd": {"cooldown_fraction": 0.25, "cooldown_shape": "1-sqrt"},
    "model": {"head_dim": 8, "seq_len": 32},
    "optimizer": {"lr": 1e-2},
    "data": {"num_eval_batches": 1},
    "schedule": {"warmup": 2},
    "train": {"global_batch_size": 8, "eval_every": 10, "checkpoint_every": 0,
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


@pytest.mark.slow
def test_sigterm_preempts_a_real_run_and_the_next_sweep_resumes_it(tmp_path, monkeypatch):
    """The real trainer, SIGTERMed mid-run: it saves and raises `Preempted`; the sweep
    records the run as pending ("preempted at step N; rerun to resume") and stops; the
    next invocation resumes it from that checkpoint to the end."""
    import os
    import signal

    from scaling.train import metrics

    config = {k: v for k, v in TINY.items() if k != "wsd"}
    config["sweep"] = {**TINY["sweep"], "kind": "isoflop", "budgets": [2e8]}
    plan = plan_sweep(SweepConfig.from_dict(config))
    (run,) = plan.runs
    assert run.steps > 30
    write = metrics.MetricsLog.write
    sent = []

    def write_then_sigterm(self, row):  # the first evaluation (step 10) is logged, then SIGTERM arrives
        write(self, row)
        if not sent:
            sent.append(row["step"])
            os.kill(os.getpid(), signal.SIGTERM)  # the trainer's handler is installed while it trains

    monkeypatch.setattr(metrics.MetricsLog, "write", write_then_sigterm)
    out = tmp_path / "out"
    report = run_sweep(plan, out, progress=False, record_environment=False, log=lambda m: None)
    assert sent == [10] and report.preempted
    with open(out / "runs.csv", newline="") as f:
        (row,) = csv.DictReader(f)
    assert row["status"] == "pending" and row["error"] == "preempted at step 10; rerun to resume"
    assert (out / "runs" / run.run_id / "checkpoints" / "10").is_dir()

    again = run_sweep(plan, out, progress=False, record_environment=False, log=lambda m: None)
    assert again.trained == 1 and not again.preempted
    with open(out / "runs.csv", newline="") as f:
        (row,) = csv.DictReader(f)
    assert row["status"] == "done" and int(row["steps"]) == run.steps and math.isfinite(float(row["eval_loss"]))
    with open(out / "curves.csv", newline="") as f:
        steps = [int(c["step"]) for c in csv.DictReader(f)]
    assert steps == sorted(set(range(10, run.steps + 1, 10)) | {run.steps})  # one curve, resumed after step 10
