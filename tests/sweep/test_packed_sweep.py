"""The sweep runner trains an LR grid packed with the real trainer: each run recorded as its
own row, a rerun skips them all."""

from __future__ import annotations

import json

import pytest
from sweep_helpers import write_config

from scaling.sweep import ResultsStore, load_sweep_config, run_sweep
from scaling.sweep.lr_tuning import tuning_plan

TINY = """
[hparams]
lr = "tuned"
lr_tune_grid = [0.5, 1, 2]

[data]
source = "embedded"
"""


@pytest.mark.slow
def test_runner_trains_an_lr_tune_grid_packed(tmp_path):
    overrides = [
        "data.num_eval_batches=2",
        "train.global_batch_size=8",
        "train.eval_every=1000",
        "family.widths={start=4,stop=32,step=4}",
        "model.head_dim=4",
        "sweep.tokens_per_param_range=[2,500]",
        "sweep.points_per_budget=3",
    ]
    cfg = load_sweep_config(write_config(tmp_path, budgets="[3e8, 6e8]", extra=TINY), overrides)
    plan = tuning_plan(cfg)
    logs = []
    report = run_sweep(plan, tmp_path / "out", pack=8, progress=False, record_environment=False, log=logs.append)
    assert [r["status"] for r in report.rows] == ["done"] * len(plan.runs), [r.get("error") for r in report.rows]
    assert sum("packed" in m for m in logs) == len({r.width for r in plan.runs})  # one pack per width
    rows = ResultsStore(tmp_path / "out").rows()
    assert len({r["eval_loss"] for r in rows}) == len(rows)  # every run its own numbers
    for r in plan.runs:
        stored = json.loads((ResultsStore(tmp_path / "out").run_dir(r.run_id) / "config.json").read_text())
        assert stored["config"]["optimizer"]["lr"] == r.lr and stored["packed"]["runs"]
    again = run_sweep(plan, tmp_path / "out", pack=8, progress=False, record_environment=False, log=logs.append)
    assert {r["action"] for r in again.rows} == {"skipped"}
