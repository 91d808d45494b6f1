"""A sweep whose results directory is an s3:// prefix, for real: moto's S3 server on
127.0.0.1 through s3fs, the real trainer, `scaling sweep` processes. Two workers share the
bucket, one is killed with SIGKILL once its run has a checkpoint in the bucket, and a
rerun (with a scratch directory of its own, as on another host) finishes the sweep:
nothing is lost, nothing is trained twice (the killed run resumes from its pushed
checkpoint), TensorBoard files reach the bucket, and `scaling fit s3://...` reads the
tables."""

from __future__ import annotations

import collections
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("s3fs", reason="needs the s3 extra (in the test extra)")
pytest.importorskip("moto.server", reason="needs moto's server mode (moto[s3] and flask, in the test extra)")
pytest.importorskip("tensorboardX", reason="needs the tensorboard extra (in the test extra)")

from s3_helpers import BUCKET  # noqa: E402

from scaling.storage import Mirror, Storage  # noqa: E402
from scaling.sweep import ResultsStore, load_sweep_config, partition, plan_sweep  # noqa: E402

REPO = Path(__file__).resolve().parents[2]

# Three runs of widths 16-32 (418, 187 and 105 steps of 4 x 32 tokens), a checkpoint every 100 steps.
SWEEP = """
[sweep]
name = "s3sweep"
kind = "isoflop"
budgets = [2e9]
points_per_budget = 3
tokens_per_param = 20
tokens_per_param_range = [0.5, 1000]
flop_convention = "6N"

[family]
widths = { start = 16, stop = 32, step = 8 }
depth = 2

[model]
head_dim = 8
seq_len = 32

[data]
num_eval_batches = 2

[optimizer]
lr = 0.01

[schedule]
kind = "cosine"
warmup = 0.1

[train]
global_batch_size = 4
eval_every = 50
checkpoint_every = 100
log_every = 10
"""


def _env(scratch: Path) -> dict:
    flags = " ".join(f for f in os.environ.get("XLA_FLAGS", "").split() if "device_count" not in f)
    return {**os.environ, "XLA_FLAGS": flags, "SCALING_SCRATCH": str(scratch), "PYTHONPATH": str(REPO)}


def _sweep(config: Path, url: str, scratch: Path, log: Path, *extra: str) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "scaling.cli.main", "sweep", str(config), "--out", url, "--pack", "1",
           "--jobs", "1", "--no-progress", "--track", "tensorboard", *extra]  # fmt: skip
    return subprocess.Popen(cmd, env=_env(scratch), stdout=log.open("w"), stderr=subprocess.STDOUT, cwd=REPO)


def _trained(log: Path) -> list[str]:
    """The run ids a worker's log says it started training."""
    return [line.split()[2] for line in log.read_text().splitlines() if line.startswith("[sweep] training ")]


@pytest.mark.slow
@pytest.mark.multiprocess
def test_two_workers_on_s3_one_killed_then_a_rerun(s3_endpoint, tmp_path):
    config = tmp_path / "s3sweep.toml"
    config.write_text(SWEEP)
    plan = plan_sweep(load_sweep_config(config))
    url = f"s3://{BUCKET}/sweep-{time.time_ns()}"
    victim = max(plan.runs, key=lambda r: r.steps)  # the longest run is killed mid-way
    owner = next(i for i in range(2) if victim in partition(plan.runs, 2, i))
    logs = [tmp_path / f"worker{i}.log" for i in range(2)]
    workers = [_sweep(config, url, tmp_path / f"scratch{i}", logs[i], "--num-workers", "2", "--worker-index", str(i))
               for i in range(2)]  # fmt: skip
    storage = Storage.at(url)
    remote = Mirror(storage, f"runs/{victim.run_id}", tmp_path / "unused")
    try:
        deadline = time.time() + 240
        while not any(k.startswith("checkpoints/") for k in remote.remote_files()):
            assert workers[owner].poll() is None, "the victim's worker ended before it pushed a checkpoint"
            assert time.time() < deadline, "no checkpoint of the victim reached the bucket"
            time.sleep(0.05)
        workers[owner].send_signal(signal.SIGKILL)
        assert workers[owner].wait(timeout=30) == -signal.SIGKILL
        # what the killed worker left, read before the other worker can take the run over
        pushed = {k for k in remote.remote_files() if k.startswith("checkpoints/")}
        metrics_before = storage.read_text(f"runs/{victim.run_id}/metrics.jsonl").splitlines()
        assert workers[1 - owner].wait(timeout=240) == 0, logs[1 - owner].read_text()[-3000:]
    finally:
        for w in workers:
            if w.poll() is None:
                w.kill()
                w.wait()
    store = ResultsStore(url)
    # the other worker, done with its share, may have taken the killed run over (its claim died
    # with its process: `runner._units`), resuming it; else the run is as the killed worker left it
    status = store.read_status(victim.run_id)["status"]
    assert status in ("running", "done")
    if status == "running":
        assert store.effective_status(victim.run_id)["status"] == "pending"
    pushed_step = max(int(k.split("/")[1]) for k in pushed)
    assert 0 < pushed_step < victim.steps
    first_trained = _trained(logs[0]) + _trained(logs[1])

    rerun_log = tmp_path / "rerun.log"
    rerun = _sweep(config, url, tmp_path / "scratch-rerun", rerun_log)
    assert rerun.wait(timeout=300) == 0, rerun_log.read_text()[-3000:]
    retrained = _trained(rerun_log)

    # nothing trained twice but the killed run, started once more (by the other worker or the
    # rerun); the rerun trains only what the first workers left
    starts_of = collections.Counter(first_trained + retrained)
    assert sorted(starts_of) == sorted(r.run_id for r in plan.runs)
    assert starts_of[victim.run_id] == 2 and all(n == 1 for rid, n in starts_of.items() if rid != victim.run_id)
    assert not set(retrained) & (set(first_trained) - {victim.run_id})
    # nothing lost: every run done, listed once, each evaluation once
    rows = store.rows()
    assert [r["run_id"] for r in rows] == [r.run_id for r in plan.runs] and {r["status"] for r in rows} == {"done"}
    assert store.check_tables() is None
    for run in plan.runs:
        starts = storage.read_json(f"runs/{run.run_id}/config.json")["starts"]
        assert len(starts) == (2 if run.run_id == victim.run_id else 1), run.run_id
        steps = [
            json.loads(line)["step"] for line in storage.read_text(f"runs/{run.run_id}/metrics.jsonl").splitlines()
        ]
        assert steps == sorted(set(steps)) and steps[-1] == run.steps, (run.run_id, steps)
    # the killed run resumed from its pushed checkpoint: the rows up to it are the first start's, untouched
    metrics_after = storage.read_text(f"runs/{victim.run_id}/metrics.jsonl").splitlines()
    kept = [line for line in metrics_before if json.loads(line)["step"] <= pushed_step]
    assert kept and metrics_after[: len(kept)] == kept

    from scaling.analysis import load_table
    from scaling.cli.main import main

    # live tracking follows the runs into the bucket: each run's event files, and the sweep summaries of
    # the worker that finished and of the rerun
    for run in plan.runs:
        files = Mirror(storage, f"runs/{run.run_id}", tmp_path / "unused").remote_files()
        assert any(k.startswith("tensorboard/events.out.tfevents") for k in files), (run.run_id, sorted(files))
    summaries = {k.split("/")[1] for k in storage.versions("tensorboard/*/*") if "tfevents" in k}
    assert {f"sweep-w{1 - owner}", *(["sweep"] if retrained else [])} <= summaries, summaries

    curves = load_table(url, curves=True)
    assert sorted(curves["run_id"].unique()) == sorted(r.run_id for r in plan.runs)
    out = tmp_path / "fit.json"
    assert main(["fit", url, "--law", "power_params", "--json", str(out)]) == 0
    assert json.loads(out.read_text())["n_points"] == len(plan.runs)
