"""Metrics: one JSON object per evaluation in `DIR/metrics.jsonl` (pandas.read_json(lines=True)),
and the accelerator peak-FLOP/s table behind the `mfu` column.

Columns: step, tokens, flops, flops_convention, train_loss (the loss of that step's
batch), eval_loss (nats/token), eval_ppl, eval_bpb (bits per byte), lr, grad_norm,
tokens_per_s (training throughput since the previous row, excluding evaluation and
checkpoint time), mfu (model FLOP utilisation, "exact" FLOPs over the devices' bf16 dense
peak; null where the peak is unknown, e.g. CPU), elapsed (seconds of training wall time,
summed over resumptions).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from scaling import atomic

# bf16 dense peak FLOP/s per device (per chip for TPUs) by substring of `device_kind`
# (vendors' datasheets, without sparsity); the first match wins, so variants come first.
PEAK_FLOPS: tuple[tuple[str, float], ...] = (
    ("TPU v6 lite", 918e12),  # v6e (Trillium)
    ("TPU v6e", 918e12),
    ("TPU v5 lite", 197e12),  # v5e
    ("TPU v5e", 197e12),
    ("TPU v5p", 459e12),
    ("TPU v5", 459e12),  # v5p reports "TPU v5"
    ("TPU v4", 275e12),
    ("H200", 989e12),
    ("H100 PCIe", 756e12),
    ("H100 NVL", 835e12),
    ("H100", 989e12),  # SXM ("NVIDIA H100 80GB HBM3")
    ("A100", 312e12),
)


def peak_flops(device_kind: str) -> float | None:
    for key, flops in PEAK_FLOPS:
        if key.lower() in device_kind.lower():
            return flops
    return None


def _clean(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_json_atomic(path: str | Path, obj) -> None:
    atomic.write_text(path, json.dumps(obj, indent=2, default=str) + "\n")


def read_rows(path: str | Path) -> list[dict]:
    path = Path(path)
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            break  # a torn last line (killed mid-write)
    return rows


class MetricsLog:
    """Appends rows; on resume from `step`, first drops every row after it (atomically)."""

    def __init__(self, path: str | Path, *, resume_step: int | None, enabled: bool = True):
        self.path = Path(path)
        self.enabled = enabled
        if not enabled:
            return
        rows = [r for r in read_rows(self.path) if resume_step is not None and r.get("step", 0) <= resume_step]
        atomic.write_text(self.path, "".join(json.dumps(r) + "\n" for r in rows))
        self.last = rows[-1] if rows else None

    def write(self, row: dict) -> None:
        if not self.enabled:
            return
        with self.path.open("a") as f:
            f.write(json.dumps({k: _clean(v) for k, v in row.items()}) + "\n")
        self.last = row
