"""Metrics: one JSON object per evaluation in `DIR/metrics.jsonl` (pandas.read_json(lines=True)),
and the accelerator peak-FLOP/s table behind the `mfu` column.

Columns: step, tokens, flops, flops_convention, train_loss (the loss of that step's
batch), eval_loss (nats/token), eval_ppl, eval_bpb (bits per byte), lr, grad_norm,
tokens_per_s (training throughput since the previous row, excluding evaluation and
checkpoint time), mfu (model FLOP utilisation: FLOPs under train.mfu_convention, "exact"
by default, over the devices' bf16 dense peak, train.peak_flops or the table below; null
where the peak is unknown, e.g. CPU), mfu_convention (that FLOP convention), elapsed
(seconds of training wall time, summed over resumptions).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from scaling import atomic

# bf16 dense peak FLOP/s per device (per chip for TPUs) by substring of `device_kind`
# (vendors' datasheets, without sparsity: a datasheet's "with sparsity" figure is twice
# these); the first match wins, so variants come first. `train.peak_flops` overrides it
# for any chip (and is the way to run on one this table lacks).
# Sources:
#   TPU v4, v5e, v5p, v6e: cloud.google.com/tpu/docs/{v4,v5e,v5p,v6e} ("peak compute per
#     chip (bf16)": 275, 197, 459, 918 TFLOP/s)
#   H100 SXM/PCIe/NVL, H200 SXM/NVL: NVIDIA H100 and H200 datasheets (BF16 Tensor Core
#     1,979 / 1,513 / 1,671 and 1,979 / 1,671 TFLOPS with sparsity)
#   B200, GB200: NVIDIA HGX B200 / GB200 NVL72 datasheets (BF16 per GPU 4.5 / 5 PFLOPS
#     with sparsity)
#   A100: NVIDIA A100 datasheet (BF16 312 TFLOPS dense)
#   MI300X, MI325X: AMD Instinct MI300X / MI325X datasheets (peak BF16 1,307.4 TFLOPS dense)
PEAK_FLOPS: tuple[tuple[str, float], ...] = (
    ("TPU v6 lite", 918e12),  # v6e (Trillium)
    ("TPU v6e", 918e12),
    ("TPU v5 lite", 197e12),  # v5e
    ("TPU v5e", 197e12),
    ("TPU v5p", 459e12),
    ("TPU v5", 459e12),  # v5p reports "TPU v5"
    ("TPU v4", 275e12),
    ("GB200", 2.5e15),  # before "B200": "NVIDIA GB200" contains it
    ("B200", 2.25e15),
    ("H200 NVL", 835e12),
    ("H200", 989e12),  # SXM ("NVIDIA H200")
    ("H100 PCIe", 756e12),
    ("H100 NVL", 835e12),
    ("H100", 989e12),  # SXM ("NVIDIA H100 80GB HBM3")
    ("A100", 312e12),
    ("MI325X", 1307.4e12),
    ("MI300X", 1307.4e12),
)


def peak_flops(device_kind: str, override: float = 0.0) -> float | None:
    """Peak bf16 FLOP/s of one device: `override` when > 0 (train.peak_flops), else the
    table's entry for `device_kind`, else None (MFU unknown, e.g. on a CPU)."""
    if override > 0:
        return float(override)
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
        self.tracker = None  # a scaling.train.tracking.Tracker, fed every row written
        self.kept: list[dict] = []
        if not enabled:
            return
        rows = [r for r in read_rows(self.path) if resume_step is not None and r.get("step", 0) <= resume_step]
        self.kept = rows  # the rows of earlier starts that stay (a tracker may replay them)
        atomic.write_text(self.path, "".join(json.dumps(r) + "\n" for r in rows))
        self.last = rows[-1] if rows else None

    def write(self, row: dict) -> None:
        if not self.enabled:
            return
        with self.path.open("a") as f:
            f.write(json.dumps({k: _clean(v) for k, v in row.items()}) + "\n")
        self.last = row
        if self.tracker is not None:  # after the file: a tracker never holds a row the file lacks
            self.tracker.log(row)
