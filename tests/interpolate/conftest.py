"""One tiny training run, shared by every interpolation test (training dominates their time).

Width 64, depth 1, seq 32, 24 steps of batch 8, evaluated and checkpointed every 4 steps
with every checkpoint kept, trained by the trainer's Python API on its default mesh (all 8
fake CPU devices on the data axis).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

STEPS, EVERY = 24, 4
RUN = {
    "model": {"width": 64, "depth": 1, "head_dim": 32, "seq_len": 32},
    "data": {"source": "stdlib"},
    "optimizer": {"lr": 1e-2},
    "schedule": {"kind": "cosine", "warmup": 2},
    "train": {"steps": STEPS, "global_batch_size": 8, "eval_every": EVERY, "eval_batches": 2,
              "checkpoint_every": EVERY, "keep": 100, "log_every": EVERY, "progress": False},
}
EVAL_TOKENS = 8 * 2 * 32


@pytest.fixture(scope="session")
def run_dir(tmp_path_factory) -> Path:
    from scaling.train import train

    out = tmp_path_factory.mktemp("interpolate") / "tiny"
    result = train(RUN, out)
    assert result.status == "done", result
    return out


@pytest.fixture(scope="session")
def metrics(run_dir) -> dict[int, dict]:
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return {r["step"]: r for r in rows}
