"""Shared pieces of the sweep tests: a small sweep config and fake train functions.

Importable by subprocesses (the concurrent-worker test puts this folder on sys.path).
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path

SMALL_SWEEP = """
[sweep]
name = "test"
kind = "{kind}"
budgets = {budgets}
points_per_budget = 4
tokens_per_param = 20
tokens_per_param_range = [5, 80]
flop_convention = "6N"

[family]
widths = {{ start = 16, stop = 160, step = 8 }}
depth = 2

[model]
head_dim = 8
seq_len = 32

[optimizer]
lr = 0.01

[schedule]
kind = "cosine"
warmup = 0.1

[train]
global_batch_size = 4
eval_every = 50
"""


def write_config(tmp_path: Path, kind: str = "isoflop", budgets: str = "[1e11, 3e11, 1e12]", extra: str = "") -> Path:
    path = tmp_path / f"{kind}.toml"
    path.write_text(SMALL_SWEEP.format(kind=kind, budgets=budgets) + extra)
    return path


def fake_train(config: dict, run_dir: Path, *, calls_log: Path | None = None, sleep: float = 0.0) -> dict:
    """Pretend to train: write metrics.jsonl like the trainer, return a done result.

    The loss falls with width, like a real sweep, so every value is distinct.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    if calls_log is not None:
        with open(calls_log, "a") as f:
            f.write(run_dir.name + "\n")
    if sleep:
        time.sleep(sleep)
    steps = config["train"]["steps"]
    tokens_per_step = config["train"]["global_batch_size"] * config["model"]["seq_len"]
    width = config["model"]["width"]
    rows = []
    for step in sorted({max(1, steps // 2), steps}):
        loss = 2.0 + 10.0 / width + 1.0 / math.sqrt(step)
        rows.append(
            {
                "step": step,
                "tokens": step * tokens_per_step,
                "flops": 6.0 * step * tokens_per_step,
                "train_loss": loss + 0.01,
                "eval_loss": loss,
                "lr": 0.01,
            }
        )
    with open(run_dir / "metrics.jsonl", "a") as f:
        f.writelines(json.dumps(r) + "\n" for r in rows)
    return {
        "status": "done",
        "eval_loss": rows[-1]["eval_loss"],
        "steps": steps,
        "tokens": steps * tokens_per_step,
        "flops": rows[-1]["flops"],
        "wall_time_s": 0.01,
    }


class CountingTrain:
    """A fake train function that counts its calls per run, with scripted outcomes."""

    def __init__(
        self, fail: set[str] = frozenset(), diverge: set[str] = frozenset(), interrupt: set[str] = frozenset()
    ):
        self.calls: list[str] = []
        self.fail, self.diverge, self.interrupt = set(fail), set(diverge), set(interrupt)

    def __call__(self, config: dict, run_dir: Path):
        rid = Path(run_dir).name
        self.calls.append(rid)
        if rid in self.interrupt:
            self.interrupt.discard(rid)
            Path(run_dir).mkdir(parents=True, exist_ok=True)
            (Path(run_dir) / "metrics.jsonl").write_text(
                json.dumps({"step": 1, "tokens": 1, "flops": 1.0, "train_loss": 9.0, "eval_loss": 9.0, "lr": 0.0})
                + "\n"
            )
            raise KeyboardInterrupt
        if rid in self.fail:
            raise RuntimeError("out of memory (scripted)")
        if rid in self.diverge:
            return {"status": "diverged", "eval_loss": float("nan"), "steps": 3, "error": "loss is nan at step 3"}
        return fake_train(config, run_dir)


def worker_main(plan_path: str, out: str, num_workers: int, worker_index: int, calls_log: str, sleep: float) -> None:
    """Entry point of one worker process in the concurrency test.

    The plan comes pickled (reading one back needs no JAX), so the process starts fast.
    """
    import pickle
    from functools import partial

    from scaling.sweep.runner import run_sweep

    with open(plan_path, "rb") as f:
        plan = pickle.load(f)
    run_sweep(
        plan,
        out,
        train_fn=partial(fake_train, calls_log=Path(calls_log), sleep=sleep),
        num_workers=num_workers,
        worker_index=worker_index,
        progress=False,
        record_environment=False,
        log=lambda m: None,
    )


def host_main(plan_path: str, out: str, coordinator: str, process_id: int, calls_log: str) -> None:
    """One host of a 2-process "pod" (jax.distributed over localhost, one CPU device each)."""
    import pickle

    from scaling.sweep.runner import Hosts, run_sweep
    from scaling.train.distributed import initialize

    initialize(coordinator, 2, process_id, local_devices=1)
    with open(plan_path, "rb") as f:
        plan = pickle.load(f)
    hosts = Hosts.from_jax()

    def train(config, run_dir):  # like the trainer: every host computes, process 0 writes
        with open(calls_log, "a") as f:
            f.write(Path(run_dir).name + "\n")
        if hosts.is_writer:
            return fake_train(config, run_dir)
        return {"status": "done"}

    for _ in range(2):  # the second invocation finds every run done
        report = run_sweep(
            plan, out, train_fn=train, hosts=hosts, progress=False, record_environment=False, log=lambda m: None
        )
        with open(calls_log, "a") as f:
            f.write(f"trained {report.trained}\n")


if __name__ == "__main__":  # pragma: no cover - used by subprocesses
    import sys

    a = sys.argv[1:]
    if a[0] == "host":
        host_main(a[1], a[2], a[3], int(a[4]), a[5])
    else:
        worker_main(a[0], a[1], int(a[2]), int(a[3]), a[4], float(a[5]))
    sys.stdout.flush()
    os._exit(0)


def affinity_train(config: dict, run_dir: Path) -> dict:
    """`fake_train`, recording the cores and XLA flags of the process that ran it (the
    `--jobs` test: each worker process must run on its own cores)."""
    result = fake_train(config, run_dir)
    seen = {"cores": sorted(os.sched_getaffinity(0)), "pid": os.getpid(), "xla_flags": os.environ.get("XLA_FLAGS", "")}
    (Path(run_dir) / "affinity.json").write_text(json.dumps(seen))
    return result
