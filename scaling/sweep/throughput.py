"""How fast this machine trains, for the plan's time estimates.

Three sources, in order: a `--throughput` given by the user; a value measured on this
machine and cached in ~/.cache/scaling/throughput.json (by `--calibrate`, which times a
few steps of one of the plan's models, or by the last sweep that trained here, as its
FLOPs over its wall time); else none, and the plan says so. Values are FLOP/s under the
sweep's FLOP convention, keyed by host, devices and convention.
"""

from __future__ import annotations

import json
import os
import socket
import tempfile
import time
from pathlib import Path
from typing import Any

from scaling.sweep.store import write_json


def cache_path() -> Path:
    root = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return root / "scaling" / "throughput.json"


def machine_key(convention: str) -> str:
    """host / backend / device kinds and count / FLOP convention."""
    from scaling.runtime import describe_devices

    d = describe_devices()
    kinds = "+".join(f"{n}x{k}" for k, n in sorted(d["device_kinds"].items()))
    return f"{socket.gethostname()}|{d['backend']}|{kinds}|{convention}"


def _read() -> dict[str, Any]:
    try:
        return json.loads(cache_path().read_text())
    except (OSError, ValueError):
        return {}


def cached(convention: str) -> tuple[float, str] | None:
    """(FLOP/s, where it came from) for this machine, or None."""
    entry = _read().get(machine_key(convention))
    if not entry:
        return None
    return float(entry["flops_per_s"]), f"{entry['source']}, {entry['when']}"


def remember(convention: str, flops_per_s: float, source: str) -> None:
    path = cache_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        data = _read()
        data[machine_key(convention)] = {"flops_per_s": flops_per_s, "source": source,
                                         "when": time.strftime("%Y-%m-%d %H:%M")}  # fmt: skip
        write_json(path, data)
    except OSError:
        pass  # a read-only home: estimates are a convenience


def from_report(plan, report) -> float | None:
    """This sweep's FLOPs over wall time for the runs it trained (compile and eval included)."""
    flops = wall = 0.0
    by_id = {r.run_id: r for r in plan.runs}
    for row in report.rows:
        if row.get("action") == "trained" and row.get("status") == "done" and row.get("wall_time_s"):
            run = by_id[row["run_id"]]
            flops += run.own_flops
            wall += row["wall_time_s"]
    return flops / wall if wall > 0 else None


def calibrate(plan, steps: int = 30) -> float:
    """Time `steps` steps of the plan's median-size model here; returns FLOP/s (cached).

    Excludes compilation (the trainer's tokens_per_s starts after the first step) and
    evaluation, so it is an upper bound on a whole run's rate.
    """
    from scaling.sweep.trainer_config import build
    from scaling.train import train

    runs = sorted((r for r in plan.runs if not r.parent_run_id), key=lambda r: r.params_nonembedding)
    run = runs[len(runs) // 2]
    config = {k: dict(v) for k, v in run.train_config.items()}
    config["data"]["num_eval_batches"] = 1
    config["train"].update(steps=steps, eval_every=0, checkpoint_every=0, save_steps=[],
                           init_from=None, progress=False, log_every=steps)  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="scaling-calibrate-") as tmp:
        result = train(build(config), Path(tmp) / "run")
        rows = [json.loads(line) for line in (Path(tmp) / "run" / "metrics.jsonl").read_text().splitlines() if line]
    rates = [r["tokens_per_s"] for r in rows if r.get("tokens_per_s")]
    if result.status != "done" or not rates:
        raise RuntimeError(f"calibration run failed ({result.status}: {result.error})")
    flops_per_s = rates[-1] * run.flops_per_token
    source = (
        f"calibrated here on ({run.width}, {run.depth}), batch {run.batch_size}, {steps} steps; "
        "compilation and evaluation excluded"
    )
    remember(plan.config.sweep.flop_convention, flops_per_s, source)
    return flops_per_s


def resolve(plan, given: float | None = None, calibrate_now: bool = False) -> tuple[float | None, str]:
    """(FLOP/s, a sentence saying where it came from) for the plan table."""
    conv = plan.config.sweep.flop_convention
    if given:
        return given, "given by --throughput"
    if calibrate_now:
        return calibrate(plan), "calibrated just now on this machine"
    hit = cached(conv)
    if hit:
        return hit[0], f"cached for this machine: {hit[1]}"
    return None, ""
