"""scaling.storage against a real S3 API: moto's server on 127.0.0.1, reached through
s3fs, and the same primitives on a local directory: whole-object puts, conditional
create (one winner among racing workers), leases that a killed worker's successor takes
over, a mirrored run directory, and `scaling fit s3://...` reading a results directory
from the bucket. The whole sweep on s3:// (two workers, one killed, a rerun) is in
test_object_store_sweep.py."""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("s3fs", reason="needs the s3 extra (in the test extra)")
pytest.importorskip("moto.server", reason="needs moto's server mode (moto[s3] and flask, in the test extra)")

from s3_helpers import BUCKET  # noqa: E402

from scaling.storage import Lease, LocalStorage, Mirror, Storage  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(params=["local", "s3"])
def storage(request, tmp_path, s3_endpoint) -> Storage:
    if request.param == "local":
        return Storage.at(tmp_path / "store")
    return Storage.at(f"s3://{BUCKET}/{request.node.name.replace('[', '-').rstrip(']')}-{time.time_ns()}")


def test_storage_at_picks_the_backend(tmp_path, s3_endpoint):
    assert isinstance(Storage.at(tmp_path), LocalStorage)
    assert isinstance(Storage.at(f"file://{tmp_path}"), LocalStorage)
    assert type(Storage.at(f"s3://{BUCKET}/x")).__name__ == "FsspecStorage"
    if not _has("gcsfs"):  # not in the test extra: the gcs extra's error is what a user sees
        with pytest.raises(
            ValueError, match=r"gs:// paths need gcsfs, which is not installed: pip install 'scaling\[gcs\]'"
        ):
            Storage.at("gs://bucket/results")


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def test_primitives(storage):
    storage.put("a/b.json", b'{"x": 1}')
    assert storage.read_json("a/b.json") == {"x": 1} and storage.exists("a/b.json")
    before = storage.versions("a/*.json")
    storage.put("a/b.json", b'{"x": 2}')
    assert storage.read_json("a/b.json") == {"x": 2}
    assert storage.versions("a/*.json").keys() == before.keys() == {"a/b.json"}
    assert storage.versions("a/*.json") != before  # a rewrite is seen in one listing
    assert storage.create("a/c", b"first") is True
    assert storage.create("a/c", b"second") is False
    assert storage.read_bytes("a/c") == b"first"
    storage.append("a/log.jsonl", "1\n")
    storage.append("a/log.jsonl", "2\n")
    assert storage.read_text("a/log.jsonl") == "1\n2\n"
    assert storage.listdir("a") == ["b.json", "c", "log.jsonl"] and storage.listdir("none") == []
    storage.delete("a/c")
    assert not storage.exists("a/c")
    storage.check_conditional_create()


def test_racing_creates_have_one_winner(storage):
    url = storage.url()
    wins, barrier = [], threading.Barrier(8)

    def worker(i):
        mine = Storage.at(url)  # a client of its own, as another worker would have
        barrier.wait()
        if mine.create("claims/00000001.json", f"worker {i}".encode()):
            wins.append(i)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(wins) == 1
    assert storage.read_text("claims/00000001.json") == f"worker {wins[0]}"


def test_lease_is_renewed_released_and_exclusive(storage):
    a = Lease(storage, "runs/r1", lease_s=1.0, holder="a")
    b = Lease(Storage.at(storage.url()), "runs/r1", lease_s=1.0, holder="b")
    assert a.acquire()
    assert not b.acquire()
    time.sleep(2.5)  # well past lease_s: a's thread renews the heartbeat
    assert a.is_held() and not b.acquire()
    a.release()
    assert not a.is_held() and b.acquire()
    assert b.current()["holder"] == "b" and b.current()["n"] == 2
    b.release()


def test_a_paused_holder_learns_its_claim_was_taken_over(storage):
    """A holder stalled past its lease (its successor claimed the run) sees `lost` at its
    next heartbeat, so the runner never records a result over its successor's."""
    a = Lease(storage, "runs/r4", lease_s=0.8, holder="a")
    with a.held() as held:
        assert held is a and not a.lost
        storage.create("runs/r4/claims/00000002.json", json.dumps({"holder": "b", "heartbeat": time.time()}).encode())
        deadline = time.time() + 10
        while not a.lost:
            assert time.time() < deadline, "the lost claim was never noticed"
            time.sleep(0.05)
    assert a.current()["holder"] == "b"


HOLD_AND_WAIT = textwrap.dedent(
    """
    import sys, time
    from scaling.storage import Lease, Storage
    lease = Lease(Storage.at(sys.argv[1]), "runs/r1", lease_s=float(sys.argv[2]), holder="killed")
    assert lease.acquire()
    print("held", flush=True)
    time.sleep(600)
    """
)


@pytest.mark.multiprocess
def test_a_killed_workers_claim_expires_and_is_taken_over(storage, tmp_path):
    lease_s = 2.0
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD_AND_WAIT, storage.url(), str(lease_s)], env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout.readline().strip() == "held"
        rerun = Lease(storage, "runs/r1", lease_s=lease_s, holder="rerun")
        time.sleep(lease_s * 1.5)
        assert rerun.is_held() and not rerun.acquire()  # alive: its heartbeat keeps the claim
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    deadline = time.time() + 10 * lease_s
    while not rerun.acquire():
        assert time.time() < deadline, "the killed worker's claim never expired"
        time.sleep(0.2)
    assert rerun.current()["holder"] == "rerun" and rerun.current()["n"] == 2
    rerun.release()


def test_scaling_fit_reads_a_results_directory_on_s3(s3_endpoint, tmp_path):
    results = REPO / "results" / "quickstart"
    if not (results / "runs.csv").exists():
        pytest.skip("results/quickstart is not in this checkout")
    import pandas as pd
    import s3fs

    from scaling.analysis import load_table

    url = f"s3://{BUCKET}/fit-{time.time_ns()}/quickstart"
    fs = s3fs.S3FileSystem()
    for name in ("runs.csv", "curves.csv", "sweep.toml", "manifest.json"):
        fs.put_file(str(results / name), f"{url}/{name}")
    for curves in (False, True):
        pd.testing.assert_frame_equal(load_table(url, curves=curves), load_table(results, curves=curves))
    cols = {"params_col": "params_nonembedding", "loss_col": "eval_loss"}
    pd.testing.assert_frame_equal(load_table(f"{url}/runs.csv", **cols), load_table(results / "runs.csv", **cols))
    with pytest.raises(FileNotFoundError, match="no runs.csv there"):
        load_table(f"s3://{BUCKET}/nothing-here")

    from scaling.cli.main import main

    out = tmp_path / "fit.json"
    assert main(["fit", url, "--json", str(out)]) == 0
    fit = json.loads(out.read_text())
    assert fit["params"] and all(v == v for v in fit["params"].values())  # finite numbers, read from the bucket


def test_a_lease_of_a_dead_process_on_this_host_is_free_at_once(storage):
    """The SIGKILL-and-rerun-here case: no waiting out the lease (flock's behaviour)."""
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    record = {"holder": "gone", "host": socket.gethostname(), "pid": int(dead.stdout), "heartbeat": time.time()}
    storage.put_json("runs/r2/claims/00000001.json", record)
    lease = Lease(storage, "runs/r2", lease_s=600.0, holder="rerun")
    assert not lease.is_held()
    other_host = {**record, "host": "some-other-host"}  # its process cannot be seen from here: trust the lease
    storage.put_json("runs/r3/claims/00000001.json", other_host)
    assert Lease(storage, "runs/r3", lease_s=600.0).is_held()
    assert lease.acquire() and lease.current()["holder"] == "rerun"
    lease.release()
    from scaling.storage import process_start

    if process_start(os.getpid()) is not None:  # Linux: a reused pid (a restarted container) is not its old claim
        reused = {**record, "pid": os.getpid(), "pid_start": "1"}
        storage.put_json("runs/r5/claims/00000001.json", reused)
        assert not Lease(storage, "runs/r5", lease_s=600.0).is_held()
        storage.put_json("runs/r5/claims/00000001.json", {**reused, "pid_start": process_start(os.getpid())})
        assert Lease(storage, "runs/r5", lease_s=600.0).is_held()  # really this process: held


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_mirror_pushes_complete_checkpoints_once_and_pulls_only_what_its_manifest_names(storage, tmp_path):
    scratch = tmp_path / "scratch"
    (scratch / "checkpoints" / "10" / "params").mkdir(parents=True)
    (scratch / "checkpoints" / "10" / "params" / "a").write_bytes(b"step 10")
    (scratch / "checkpoints" / "20.orbax-checkpoint-tmp-1").mkdir()
    (scratch / "checkpoints" / "20.orbax-checkpoint-tmp-1" / "a").write_bytes(b"half written")
    (scratch / "metrics.jsonl").write_text('{"step": 10}\n')
    mirror = Mirror(storage, "runs/r1", scratch)
    assert mirror.new_checkpoint() and mirror.push() == 2
    assert not mirror.new_checkpoint() and mirror.sync() == 0 and mirror.push() == 0  # nothing changed
    assert set(mirror.remote_files()) == {"metrics.jsonl", "checkpoints/10/params/a"}  # no temporary step
    with open(scratch / "metrics.jsonl", "a") as f:
        f.write('{"step": 20}\n')
    assert mirror.sync() == 0  # metrics alone wait for the next checkpoint
    (scratch / "checkpoints" / "20.orbax-checkpoint-tmp-1").rename(scratch / "checkpoints" / "20")
    assert mirror.sync() == 2  # the new step and the metrics that lead up to it
    # a push killed half-way: a file of step 30 is up, the manifest does not name it yet
    storage.put("runs/r1/checkpoints/30/params/a", b"partial")
    import shutil

    shutil.rmtree(scratch / "checkpoints" / "10")  # Orbax's keep= removed it: unlisted, then deleted
    assert mirror.push() == 0
    assert not storage.exists("runs/r1/checkpoints/10/params/a")
    elsewhere = tmp_path / "other-host"
    (elsewhere / "stale").mkdir(parents=True)
    (elsewhere / "stale" / "x").write_text("left from an older start")
    assert Mirror(storage, "runs/r1", elsewhere).pull() == 2
    assert _tree(elsewhere) == {"checkpoints/20/a": b"half written", "metrics.jsonl": b'{"step": 10}\n{"step": 20}\n'}
    one = tmp_path / "one-step"
    assert Mirror(storage, "runs/r1", one).pull(only="checkpoints/20/") == 1
    assert _tree(one) == {"checkpoints/20/a": b"half written"}


def test_a_mirrors_finished_marker_is_pushed_last_and_trusted_only_when_complete(storage, tmp_path):
    scratch = tmp_path / "scratch"
    (scratch / "checkpoints" / "4").mkdir(parents=True)
    (scratch / "checkpoints" / "4" / "a").write_bytes(b"step 4")
    (scratch / "result.json").write_text('{"status": "preempted"}')
    mirror = Mirror(storage, "run", scratch, last=("result.json",))
    assert mirror.push() == 2
    # the final push dies after result.json is up, before the manifest names step 8
    storage.put("run/checkpoints/8/a", b"step 8")
    storage.put("run/result.json", b'{"status": "done"}')
    other = tmp_path / "other"
    Mirror(storage, "run", other, last=("result.json",)).pull()
    assert _tree(other) == {"checkpoints/4/a": b"step 4"}  # not "done" without its final checkpoint
    assert Mirror(storage, "run", tmp_path / "third", last=("result.json",)).pull() == 1
    (scratch / "checkpoints" / "8").mkdir()
    (scratch / "checkpoints" / "8" / "a").write_bytes(b"step 8")
    (scratch / "result.json").write_text('{"status": "done"}')
    assert mirror.push() == 2
    Mirror(storage, "run", other, last=("result.json",)).pull()
    assert _tree(other) == {
        "checkpoints/4/a": b"step 4",
        "checkpoints/8/a": b"step 8",
        "result.json": b'{"status": "done"}',
    }


TINY_RUN = {  # tests/train's shape: its compiled programs are in the persistent cache
    "model": {"width": 64, "depth": 1, "head_dim": 32, "seq_len": 32},
    "data": {"source": "stdlib", "num_eval_batches": 2},
    "optimizer": {"lr": 1e-2},
    "schedule": {"kind": "cosine", "warmup": 2},
    "train": {"steps": 12, "global_batch_size": 8, "eval_every": 4, "checkpoint_every": 4, "log_every": 2,
              "progress": False},
}  # fmt: skip


def _losses(text: str) -> list[tuple[int, float]]:
    return [(r["step"], r["eval_loss"]) for r in map(json.loads, text.splitlines())]


@pytest.mark.slow
def test_a_run_directory_on_s3_trains_resumes_and_branches_as_a_local_one(s3_endpoint, tmp_path, monkeypatch):
    """The trainer on an s3:// run directory (its local mirror): the same curve as on a
    local disk, checkpoints in the bucket, a finished run reported from the bucket by a
    host with an empty scratch directory, and a branch (train.init_from) read from a URL."""
    from scaling.train import train

    monkeypatch.setenv("SCALING_SCRATCH", str(tmp_path / "scratch"))
    url = f"s3://{BUCKET}/train-{time.time_ns()}"
    local = train(TINY_RUN, tmp_path / "local")
    remote = train(TINY_RUN, f"{url}/run")
    assert remote.status == local.status == "done" and remote.out_dir == f"{url}/run"
    storage = Storage.at(f"{url}/run")
    assert _losses(storage.read_text("metrics.jsonl")) == _losses((tmp_path / "local" / "metrics.jsonl").read_text())
    ckpts = {
        k.split("/")[1] for k in Mirror(storage, "", tmp_path / "x").remote_files() if k.startswith("checkpoints/")
    }
    assert ckpts == {p.name for p in (tmp_path / "local" / "checkpoints").iterdir() if p.name.isdigit()}
    assert storage.read_json("result.json")["status"] == "done"
    assert not list((tmp_path / "scratch").iterdir())  # the scratch copy is gone once the bucket has it
    again = train(TINY_RUN, f"{url}/run")  # pulled from the bucket: finished, nothing trained
    assert again.status == "done" and again.final_eval_loss == remote.final_eval_loss
    assert len(storage.read_json("config.json")["starts"]) == 1

    branch = {**TINY_RUN, "train": {**TINY_RUN["train"], "steps": 16}}
    local_branch = train({**branch, "train": {**branch["train"], "init_from": [str(tmp_path / "local"), 8]}},
                         tmp_path / "local-branch")  # fmt: skip
    remote_branch = train({**branch, "train": {**branch["train"], "init_from": [f"{url}/run", 8]}}, f"{url}/branch")
    assert remote_branch.status == local_branch.status == "done"
    assert _losses(Storage.at(f"{url}/branch").read_text("metrics.jsonl")) == _losses(
        (tmp_path / "local-branch" / "metrics.jsonl").read_text()
    )


def test_sweep_and_train_name_the_missing_extra_of_a_url_out_dir(tmp_path, capsys):
    """--out gs://... without gcsfs: one line naming the extra, before JAX starts, no
    local directory named 'gs:'."""
    if _has("gcsfs"):
        pytest.skip("gcsfs is installed here: there is no missing extra to report")
    from scaling.cli.main import main

    sweep = REPO / "experiments" / "quickstart.toml"
    assert main(["sweep", str(sweep), "--out", "gs://bucket/results", "--no-progress"]) == 2
    assert "pip install 'scaling[gcs]'" in capsys.readouterr().err
    assert main(["train", "--config", str(REPO / "experiments" / "tiny.toml"), "--out", "gs://b/run"]) == 2
    assert "pip install 'scaling[gcs]'" in capsys.readouterr().err
    assert not Path("gs:").exists()


def test_a_backend_without_conditional_create_gets_one_worker(tmp_path, monkeypatch):
    """The documented fallback: a backend whose create() overwrites (a server that ignores
    If-None-Match) fails the probe; a sweep there runs one worker and refuses two."""
    from sweep_helpers import fake_train, write_config

    from scaling.storage import FsspecStorage
    from scaling.sweep import load_sweep_config, plan_sweep, run_sweep

    def overwrites(self, path, data):
        self.put(path, data)
        return True

    monkeypatch.setattr(FsspecStorage, "create", overwrites)
    with pytest.raises(RuntimeError, match="does not support conditional create.*one worker per results directory"):
        Storage.at(f"memory://probe-{time.time_ns()}").check_conditional_create()
    plan = plan_sweep(load_sweep_config(write_config(tmp_path, budgets="[1e11]")))
    url = f"memory://fallback-{time.time_ns()}"
    kw = dict(train_fn=fake_train, progress=False, record_environment=False, log=lambda m: None)
    with pytest.raises(ValueError, match="no atomic conditional create.*one worker per results directory"):
        run_sweep(plan, url, num_workers=2, worker_index=0, **kw)
    report = run_sweep(plan, url, **kw)
    assert report.count("done") == len(plan.runs) and Storage.at(url).exists("runs.csv")
    # a train function of one's own gets a local directory, pushed to the store after it returns
    curves = Storage.at(url).read_text("curves.csv").splitlines()
    assert len(curves) == 1 + 2 * len(plan.runs)  # fake_train's two evaluations per run
    assert not Path("memory:").exists()


@pytest.mark.parametrize("where", ["local", "s3"])
def test_a_stale_rebuild_is_redone_so_the_last_tables_are_current(where, tmp_path, s3_endpoint):
    """Worker A reads the per-run files; before it writes its tables, worker B finishes a
    run and writes newer tables; A's stale write would hide B's run, so A's check after
    the write sees the changed input and rebuilds."""
    import csv

    from sweep_helpers import fake_train, write_config

    from scaling.sweep import ResultsStore, load_sweep_config, plan_sweep, run_sweep

    plan = plan_sweep(load_sweep_config(write_config(tmp_path, budgets="[1e11]")))
    out = str(tmp_path / "out") if where == "local" else f"s3://{BUCKET}/stale-{time.time_ns()}"
    run_sweep(plan, out, train_fn=fake_train, progress=False, record_environment=False, log=lambda m: None)
    a, b = ResultsStore(out), ResultsStore(out)
    rid = plan.runs[0].run_id
    real, calls = a._table_rows, []

    def read_then_b_finishes(**kw):
        rows = real(**kw)
        if not calls:  # the first read only: B writes between A's read and A's write
            calls.append(rid)
            b.write_status(rid, "diverged", error="diverged at step 3: loss nan")
            b.consolidate()
        return rows

    a._table_rows = read_then_b_finishes
    a.consolidate()
    status = {r["run_id"]: r["status"] for r in csv.DictReader(io.StringIO(a.storage.read_text("runs.csv")))}
    assert calls == [rid] and status[rid] == "diverged"
    assert a.check_tables() is None
