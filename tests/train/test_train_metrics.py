"""The metrics log (resume truncation, torn lines) and the accelerator peak table behind MFU."""

from __future__ import annotations

import json

import pytest

from scaling.train.metrics import MetricsLog, peak_flops, read_rows


@pytest.mark.parametrize(
    "kind, peak",
    [
        ("NVIDIA H100 80GB HBM3", 989e12),
        ("NVIDIA H100 PCIe", 756e12),
        ("NVIDIA H100 NVL", 835e12),
        ("NVIDIA H200", 989e12),
        ("NVIDIA A100-SXM4-80GB", 312e12),
        ("TPU v4", 275e12),
        ("TPU v5 lite", 197e12),
        ("TPU v5", 459e12),
        ("TPU v6 lite", 918e12),
        ("cpu", None),
        ("NVIDIA GeForce RTX 4090", None),
    ],
)
def test_peak_flops_by_device_kind(kind, peak):
    assert peak_flops(kind) == peak


def test_resume_drops_rows_after_the_checkpoint_and_a_torn_line(tmp_path):
    path = tmp_path / "metrics.jsonl"
    log = MetricsLog(path, resume_step=None)
    for step in (10, 20, 30):
        log.write({"step": step, "eval_loss": float("nan") if step == 30 else 1.0 / step})
    assert read_rows(path)[-1]["eval_loss"] is None  # non-finite values are written as null
    with path.open("a") as f:
        f.write('{"step": 40, "eval_lo')  # killed mid-write
    assert [r["step"] for r in read_rows(path)] == [10, 20, 30]
    resumed = MetricsLog(path, resume_step=20)
    assert [r["step"] for r in read_rows(path)] == [10, 20] and resumed.last["step"] == 20
    resumed.write({"step": 30, "eval_loss": 0.5})
    assert [json.loads(line)["step"] for line in path.read_text().splitlines()] == [10, 20, 30]
    MetricsLog(path, resume_step=None)  # a fresh start (no checkpoint) keeps nothing
    assert path.read_text() == ""
