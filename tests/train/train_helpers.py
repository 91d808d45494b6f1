"""Shared tiny configurations and helpers for tests/train (kept tiny: compile time dominates)."""

from __future__ import annotations

import copy
import json
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

# One model shape for every test, so compiled functions are shared (in-process lru caches
# and the persistent compilation cache across subprocesses).
MODEL = {"width": 64, "depth": 1, "head_dim": 32, "seq_len": 32}

RUN = {
    "model": MODEL,
    "data": {"source": "stdlib", "num_eval_batches": 2},
    "optimizer": {"lr": 1e-2},
    "schedule": {"kind": "cosine", "warmup": 2},
    "train": {
        "steps": 12,
        "global_batch_size": 8,
        "eval_every": 4,
        "checkpoint_every": 4,
        "log_every": 2,
        "progress": False,
    },
}


def run_config(**sections) -> dict:
    """RUN with some sections' keys replaced: run_config(train={"steps": 20})."""
    raw = copy.deepcopy(RUN)
    for name, values in sections.items():
        raw.setdefault(name, {}).update(values)
    return raw


def write_toml(path: Path, raw: dict) -> Path:
    def lit(v):
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, str):
            return json.dumps(v)
        if isinstance(v, (list, tuple)):
            return "[" + ", ".join(lit(x) for x in v) + "]"
        return repr(v)

    lines = []
    for section, values in raw.items():
        lines.append(f"[{section}]")
        lines += [f"{k} = {lit(v)}" for k, v in values.items()]
        lines.append("")
    path.write_text("\n".join(lines))
    return path


def read_metrics(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (Path(run_dir) / "metrics.jsonl").read_text().splitlines()]


def child_env(cpu_devices: int | None = 8) -> dict:
    """Environment for a `scaling` subprocess: CPU, `cpu_devices` fake devices, shared compile cache."""
    env = dict(os.environ)
    flags = " ".join(f for f in env.get("XLA_FLAGS", "").split() if "force_host_platform_device_count" not in f)
    if cpu_devices:
        flags += f" --xla_force_host_platform_device_count={cpu_devices}"
    env["XLA_FLAGS"] = flags.strip()
    env["JAX_PLATFORMS"] = "cpu"
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def scaling_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "scaling.cli.main", *args]
