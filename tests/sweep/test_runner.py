"""The runner and the results store, with fake (fast) train functions."""

from __future__ import annotations

import csv
import dataclasses
import importlib.util
import json
import os
import pickle
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from sweep_helpers import CountingTrain, fake_train, write_config

from scaling.sweep import CURVE_COLUMNS, RUN_COLUMNS, ResultsStore, load_sweep_config, partition, plan_sweep, run_sweep
from scaling.sweep.runner import worker_from_env

HERE = Path(__file__).parent


def _plan(tmp_path, kind="isoflop"):
    return plan_sweep(load_sweep_config(write_config(tmp_path, kind)))


def _sweep(plan, out, train_fn, **kw):
    return run_sweep(plan, out, train_fn=train_fn, progress=False, record_environment=False, log=lambda m: None, **kw)


def _read(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_store_schema_and_contents(tmp_path):
    plan = _plan(tmp_path)
    out = tmp_path / "out"
    report = _sweep(plan, out, CountingTrain())
    assert report.trained == len(plan.runs)
    parquet = ["curves.parquet"] if importlib.util.find_spec("pyarrow") else []  # the parquet extra
    assert sorted(p.name for p in out.iterdir()) == [
        ".gitignore",
        "curves.csv",
        *parquet,
        "manifest.json",
        "runs",
        "runs.csv",
        "sweep.toml",
        "tables.json",
    ]
    assert (out / ".gitignore").read_text().strip().endswith("runs/")
    with open(out / "runs.csv", newline="") as f:
        assert tuple(next(csv.reader(f))) == RUN_COLUMNS
    with open(out / "curves.csv", newline="") as f:
        assert tuple(next(csv.reader(f))) == CURVE_COLUMNS
    rows = _read(out / "runs.csv")
    assert [r["run_id"] for r in rows] == [r.run_id for r in plan.runs]
    for row, run in zip(rows, plan.runs):
        assert row["status"] == "done" and row["error"] == ""
        assert int(row["width"]) == run.width and float(row["budget"]) == run.budget
        assert int(row["tokens"]) == run.steps * 4 * 32  # what was trained, from the result
        assert row["flop_convention"] == "6N" and row["schedule"] == "cosine"
        assert float(row["eval_loss"]) > 2
    curves = _read(out / "curves.csv")
    assert len(curves) == 2 * len(plan.runs)
    assert {c["run_id"] for c in curves} == {r.run_id for r in plan.runs}
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["seeds"] == [0] and manifest["sweep"]["runs"] == len(plan.runs)
    assert manifest["packages"]["jax"] and "commit" in manifest["git"]
    assert manifest["created_at"] <= manifest["updated_at"]
    # the analysis package reads the directory directly
    pd = pytest.importorskip("pandas")
    df = pd.read_csv(out / "runs.csv")
    assert len(df) == len(plan.runs) and df["eval_loss"].notna().all()


def test_rerun_skips_done_runs(tmp_path):
    plan = _plan(tmp_path)
    out = tmp_path / "out"
    first = CountingTrain()
    _sweep(plan, out, first)
    assert sorted(first.calls) == sorted(r.run_id for r in plan.runs)
    before = (out / "runs.csv").read_text()
    manifest = out / "manifest.json"
    stamp = json.loads(manifest.read_text())
    stamp["git"] = {"commit": "c0ffee", "dirty": False}  # as if trained by an earlier commit
    manifest.write_text(json.dumps(stamp))
    again = CountingTrain()
    report = _sweep(plan, out, again)
    assert again.calls == [] and report.trained == 0
    assert (out / "runs.csv").read_text() == before
    # nothing trained: the manifest still names the environment that trained the runs
    assert json.loads(manifest.read_text()) == stamp
    assert ResultsStore(out).consolidate() == (len(plan.runs), 2 * len(plan.runs))  # re-runnable
    assert (out / "runs.csv").read_text() == before


def test_failed_and_diverged_runs_are_recorded_and_the_sweep_goes_on(tmp_path):
    plan = _plan(tmp_path)
    out = tmp_path / "out"
    bad, nan = plan.runs[0].run_id, plan.runs[1].run_id
    train = CountingTrain(fail={bad}, diverge={nan})
    report = _sweep(plan, out, train)
    assert len(train.calls) == len(plan.runs)
    rows = {r["run_id"]: r for r in _read(out / "runs.csv")}
    assert rows[bad]["status"] == "failed" and "RuntimeError: out of memory" in rows[bad]["error"]
    assert "RuntimeError" in (out / "runs" / bad / "error.txt").read_text()
    assert rows[nan]["status"] == "diverged" and "nan" in rows[nan]["error"]
    assert report.count("done") == len(plan.runs) - 2
    # a rerun retries the failed run only; a diverged run is final
    stamp = json.loads((out / "manifest.json").read_text())
    (out / "manifest.json").write_text(json.dumps({**stamp, "git": {"commit": "c0ffee"}}))
    retry = CountingTrain()
    _sweep(plan, out, retry)
    assert retry.calls == [bad]
    rows = {r["run_id"]: r for r in _read(out / "runs.csv")}
    assert rows[bad]["status"] == "done" and rows[nan]["status"] == "diverged"
    # this invocation trained a run: the manifest names its environment again, created_at kept
    after = json.loads((out / "manifest.json").read_text())
    assert after["git"] == stamp["git"] and after["created_at"] == stamp["created_at"]


def test_interrupted_run_resumes_in_its_directory(tmp_path):
    plan = _plan(tmp_path)
    out = tmp_path / "out"
    victim = plan.runs[2].run_id
    train = CountingTrain(interrupt={victim})
    with pytest.raises(KeyboardInterrupt):
        _sweep(plan, out, train)
    store = ResultsStore(out)
    assert store.read_status(victim)["status"] == "running"
    assert store.effective_status(victim)["status"] == "pending"  # nobody holds it
    rows = {r["run_id"]: r["status"] for r in _read(out / "runs.csv")}
    assert rows[victim] == "pending" and list(rows.values()).count("done") == 2
    resumed = CountingTrain()
    _sweep(plan, out, resumed)
    assert resumed.calls[0] == victim and len(resumed.calls) == len(plan.runs) - 2
    rows = {r["run_id"]: r["status"] for r in _read(out / "runs.csv")}
    assert set(rows.values()) == {"done"}
    # the trainer's output of the interrupted attempt is still in the run's directory
    assert '"train_loss": 9.0' in (out / "runs" / victim / "metrics.jsonl").read_text()


def test_wsd_branch_starts_from_its_trunk(tmp_path):
    plan = _plan(tmp_path, "wsd")
    out = tmp_path / "out"
    seen = {}

    def train(config, run_dir):
        seen[Path(run_dir).name] = config["train"]["init_from"]
        return fake_train(config, run_dir)

    _sweep(plan, out, train)
    for r in plan.runs:
        if r.plan_kind == "branch":
            assert seen[r.run_id] == [str((out / "runs" / r.parent_run_id).resolve()), r.init_step]
    # a failed trunk fails its branches (named), without training them
    trunk = next(r for r in plan.runs if r.plan_kind == "trunk")
    out2 = tmp_path / "out2"
    train2 = CountingTrain(fail={trunk.run_id})
    _sweep(plan, out2, train2)
    rows = {r["run_id"]: r for r in _read(out2 / "runs.csv")}
    for r in plan.runs:
        if r.parent_run_id == trunk.run_id:
            assert r.run_id not in train2.calls
            assert rows[r.run_id]["status"] == "failed" and trunk.run_id in rows[r.run_id]["error"]


def test_partition_covers_every_run_once(tmp_path):
    plan = _plan(tmp_path, "wsd")
    parts = [partition(plan.runs, 3, i) for i in range(3)]
    ids = [r.run_id for p in parts for r in p]
    assert sorted(ids) == sorted(r.run_id for r in plan.runs)
    for p in parts:
        assert p  # balanced enough that every worker has work
        for r in p:
            if r.parent_run_id:
                assert r.parent_run_id in {x.run_id for x in p}  # a branch goes with its trunk
                assert [x.run_id for x in p].index(r.parent_run_id) < [x.run_id for x in p].index(r.run_id)


def test_a_worker_done_with_its_share_takes_over_runs_nobody_started(tmp_path):
    plan = _plan(tmp_path)
    mine = [r.run_id for r in partition(plan.runs, 2, 0)]
    theirs = [r for r in plan.runs if r.run_id not in mine]
    groups: dict[str, list[str]] = {}
    for r in theirs:
        groups.setdefault(r.group, []).append(r.run_id)
    taken_over = [rid for g in reversed(list(groups.values())) for rid in g]  # their last groups first
    assert mine and taken_over

    out = tmp_path / "out"
    train = CountingTrain()
    report = _sweep(plan, out, train, num_workers=2, worker_index=0)  # worker 1 never comes
    assert train.calls == mine + taken_over
    assert {r["run_id"] for r in report.rows if r["action"] == "trained"} == {r.run_id for r in plan.runs}

    # a run another worker holds is left to it, and one it finished is not trained again
    out2 = tmp_path / "out2"
    store = ResultsStore(out2)
    store.create()
    held, finished = taken_over[0], taken_over[-1]
    store.write_status(finished, "done", eval_loss=3.0)
    train2 = CountingTrain()
    with store.claim(held) as lease:
        assert lease is not None
        report = _sweep(plan, out2, train2, num_workers=2, worker_index=0)
    assert held not in train2.calls and finished not in train2.calls
    assert train2.calls == mine + [r for r in taken_over if r not in (held, finished)]
    assert {r["run_id"]: r["action"] for r in report.rows}[held] == "busy"


def test_a_worker_takes_over_the_unstarted_seeds_of_a_cell_its_owner_began(tmp_path):
    base = _plan(tmp_path)
    cell = [r.run_id for r in base.runs if r.budget == max(x.budget for x in base.runs)]  # a cell's "seeds"
    assert len(cell) >= 3
    plan = dataclasses.replace(base, runs=tuple(dataclasses.replace(r, group=cell[0]) if r.run_id in cell else r
                                                for r in base.runs))  # fmt: skip
    owner = 0 if cell[0] in {r.run_id for r in partition(plan.runs, 2, 0)} else 1
    taker = 1 - owner
    mine = [r.run_id for r in partition(plan.runs, 2, taker)]
    groups: dict[str, list[str]] = {}
    for r in plan.runs:
        if r.run_id not in mine:
            groups.setdefault(r.group, []).append(r.run_id)
    # the owner is training the cell's first run: the taker leaves it, and takes the others last first
    expected = [rid for g, ids in reversed(groups.items()) for rid in (ids[:0:-1] if g == cell[0] else ids)]
    out = tmp_path / "out"
    store = ResultsStore(out)
    store.create()
    store.write_status(cell[0], "running")
    train = CountingTrain()
    with store.claim(cell[0]) as lease:
        assert lease is not None
        _sweep(plan, out, train, num_workers=2, worker_index=taker)
    assert train.calls == mine + expected
    assert cell[0] not in train.calls and set(cell[1:]) <= set(train.calls)


def test_worker_defaults_from_slurm(monkeypatch):
    monkeypatch.setenv("SLURM_ARRAY_TASK_COUNT", "4")
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "2")
    monkeypatch.delenv("SLURM_ARRAY_TASK_MIN", raising=False)
    assert worker_from_env(None, None) == (4, 2)
    assert worker_from_env(2, 1) == (2, 1)
    with pytest.raises(ValueError, match="--worker-index=4"):
        worker_from_env(4, 4)


def test_unwritable_results_directory(tmp_path):
    plan = _plan(tmp_path)
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(PermissionError, match="not writable"):
        _sweep(plan, blocker / "out", CountingTrain())


@pytest.mark.multiprocess
def test_concurrent_workers_write_each_run_once(tmp_path):
    """Three real processes on one directory at once: workers 0 and 1 of 2 (partitioned)
    and a third that claims every run (1 of 1, overlapping both). Every run is trained
    exactly once and listed exactly once."""
    plan = _plan(tmp_path)
    plan_file = tmp_path / "plan.pkl"
    plan_file.write_bytes(pickle.dumps(plan))
    out, calls = tmp_path / "out", tmp_path / "calls.log"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])}
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                str(HERE / "sweep_helpers.py"),
                str(plan_file),
                str(out),
                str(k),
                str(i),
                str(calls),
                "0.05",
            ],
            env=env,
        )
        for k, i in [(2, 0), (2, 1), (1, 0)]
    ]
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0]
    trained = calls.read_text().split()
    assert sorted(trained) == sorted(r.run_id for r in plan.runs)  # each exactly once
    rows = _read(out / "runs.csv")
    assert [r["run_id"] for r in rows] == [r.run_id for r in plan.runs]
    assert {r["status"] for r in rows} == {"done"}
    assert len(_read(out / "curves.csv")) == 2 * len(plan.runs)
    assert ResultsStore(out).check_tables() is None  # the last writer's pair is one generation
    assert list(out.rglob(".*.tmp")) == []  # and no worker left a temp file


@pytest.mark.multiprocess
def test_multihost_pod_trains_runs_together_and_only_process_0_writes(tmp_path):
    """Two processes joined by jax.distributed act as one pod slice: both train every
    run, in the same order, process 0's decisions are broadcast, and the store is written
    once. A second invocation skips everything on both hosts."""
    plan = _plan(tmp_path)
    plan_file = tmp_path / "plan.pkl"
    plan_file.write_bytes(pickle.dumps(plan))
    out = tmp_path / "out"
    flags = " ".join(f for f in os.environ.get("XLA_FLAGS", "").split() if "device_count" not in f)
    env = {
        **os.environ,
        "XLA_FLAGS": flags,
        "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
    }
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    logs = [tmp_path / f"host{i}.log" for i in range(2)]
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                str(HERE / "sweep_helpers.py"),
                "host",
                str(plan_file),
                str(out),
                f"127.0.0.1:{port}",
                str(i),
                str(logs[i]),
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for i in range(2)
    ]
    outputs = [p.communicate(timeout=180)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], "\n".join(outputs)
    calls = [log.read_text().split() for log in logs]
    assert calls[0] == calls[1]  # the same runs, in the same order, on both hosts
    ids = [r.run_id for r in plan.runs]
    assert calls[0] == [*ids, "trained", str(len(ids)), "trained", "0"]
    rows = _read(out / "runs.csv")
    assert [r["run_id"] for r in rows] == [r.run_id for r in plan.runs]
    assert {r["status"] for r in rows} == {"done"}


def test_workers_starting_together_do_not_trip_over_each_other(tmp_path):
    """Many stores created at once on one directory (each worker does so at start)."""
    from concurrent.futures import ThreadPoolExecutor

    out = tmp_path / "out"
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda _: ResultsStore(out).create(), range(64)))
    assert sorted(p.name for p in out.iterdir()) == [".gitignore", "runs"]


@pytest.mark.parametrize("how", ["raised", "returned"])
def test_preempted_run_stops_the_sweep_and_resumes_next_time(tmp_path, how):
    """SIGTERM: the real trainer checkpoints and raises `Preempted` (a SystemExit, code
    75); a train function may also return status "preempted". Either way the run is left
    pending (resumable) with a note, the sweep stops at once (the job is going away), and
    the next invocation resumes it."""
    from scaling.train.trainer import Preempted

    plan = _plan(tmp_path)
    out = tmp_path / "out"
    victim = plan.runs[1].run_id
    calls = []

    def train(config, run_dir):
        calls.append(Path(run_dir).name)
        if Path(run_dir).name == victim and calls.count(victim) == 1:
            if how == "raised":
                raise Preempted(7)
            return {"status": "preempted", "steps": 7}
        return fake_train(config, run_dir)

    report = _sweep(plan, out, train)
    assert calls == [plan.runs[0].run_id, victim]  # nothing after the preemption
    assert report.preempted and report.rows[-1]["status"] == "pending"
    rows = {r["run_id"]: r for r in _read(out / "runs.csv")}
    assert rows[victim]["status"] == "pending" and "preempted at step 7; rerun to resume" in rows[victim]["error"]
    assert not (out / "runs" / victim / "error.txt").exists()  # not a failure
    again = _sweep(plan, out, train)
    assert calls[2] == victim and len(calls) == len(plan.runs) + 1
    assert not again.preempted
    assert {r["status"] for r in _read(out / "runs.csv")} == {"done"}


@pytest.mark.parametrize("when", ["set-up", "runner"])
def test_sigterm_outside_the_trainers_loop_stops_the_sweep_resumably(tmp_path, when):
    """SIGTERM before the trainer installs its own handler (data, compile), or in the
    runner's own code between trainings: the sweep stops without a traceback, a run that
    had started is pending at its last complete checkpoint, the SIGTERM handler is
    restored, and a rerun finishes everything."""
    import signal

    plan = _plan(tmp_path)
    out = tmp_path / "out"
    victim = plan.runs[1].run_id
    calls = []

    def train(config, run_dir):
        calls.append(Path(run_dir).name)
        if when == "set-up" and Path(run_dir).name == victim and calls.count(victim) == 1:
            (Path(run_dir) / "checkpoints" / "4").mkdir(parents=True)  # an earlier start's checkpoint
            (Path(run_dir) / "checkpoints" / "8.orbax-checkpoint-tmp-1").mkdir()  # half-written
            os.kill(os.getpid(), signal.SIGTERM)
            raise AssertionError("SIGTERM did not interrupt")
        return fake_train(config, run_dir)

    def log(message):  # the runner logs just before it calls the train function
        if when == "runner" and message.startswith(f"[sweep] training {victim}") and victim not in calls:
            os.kill(os.getpid(), signal.SIGTERM)

    before = signal.getsignal(signal.SIGTERM)
    report = run_sweep(plan, out, train_fn=train, progress=False, record_environment=False, log=log)
    assert signal.getsignal(signal.SIGTERM) is before
    assert report.preempted
    rows = {r["run_id"]: r for r in _read(out / "runs.csv")}
    assert rows[plan.runs[0].run_id]["status"] == "done" and rows[plan.runs[2].run_id]["status"] == "pending"
    if when == "set-up":
        assert calls == [plan.runs[0].run_id, victim]
        assert rows[victim]["status"] == "pending" and "preempted at step 4" in rows[victim]["error"]
    else:
        assert calls == [plan.runs[0].run_id] and rows[victim]["status"] == "pending"
    again = _sweep(plan, out, CountingTrain())
    assert not again.preempted and all(r["status"] == "done" for r in _read(out / "runs.csv"))


def test_other_system_exits_are_not_taken_for_preemption(tmp_path):
    plan = _plan(tmp_path)

    def train(config, run_dir):
        raise SystemExit(3)

    with pytest.raises(SystemExit) as err:
        _sweep(plan, tmp_path / "out", train)
    assert err.value.code == 3


def test_scaling_sweep_exits_75_when_preempted(tmp_path, monkeypatch, capsys):
    """`scaling sweep` exits 75 (EX_TEMPFAIL) on preemption, so a scheduler requeues it."""
    from scaling.cli.main import main
    from scaling.sweep import runner
    from scaling.train.trainer import Preempted

    def train(config, run_dir):
        raise Preempted(3)

    monkeypatch.setattr(runner, "default_train_fn", train)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # the throughput cache stays untouched
    assert main(["sweep", str(write_config(tmp_path)), "--out", str(tmp_path / "out"), "--no-progress"]) == 75
    assert "preempted" in capsys.readouterr().err
    rows = _read(tmp_path / "out" / "runs.csv")
    assert [r["status"] for r in rows] == ["pending"] * len(rows)
    assert "preempted at step 3" in rows[0]["error"] and rows[1]["error"] == ""


def test_horizons_sweep_has_one_final_row_per_size_and_horizon(tmp_path):
    """A horizons store gives Approach 1 (and 3) one annealed final loss per (N, D): each
    run's curve ends at its own horizon, and runs.csv holds that final point."""
    pd = pytest.importorskip("pandas")
    from scaling.analysis.envelope import envelope_analysis
    from scaling.analysis.table import load_table

    plan = _plan(tmp_path, "horizons")
    out = tmp_path / "out"
    report = _sweep(plan, out, CountingTrain())
    assert report.trained == len(plan.runs) and report.count("done") == len(plan.runs)
    runs = load_table(out)
    assert len(runs) == len(plan.runs) and set(runs["plan_kind"]) == {"horizon"}
    assert not runs.duplicated(["params", "tokens"]).any()
    for r in plan.runs:
        row = runs[runs["run_id"] == r.run_id].iloc[0]
        assert row["tokens"] == r.steps * 128 and row["budget"] == r.budget  # trained to its own horizon
    curves = load_table(out, curves=True)
    last = curves.sort_values("tokens").groupby("run_id").tail(1).set_index("run_id")
    final = runs.set_index("run_id")
    assert sorted(last.index) == sorted(final.index)
    pd.testing.assert_series_equal(last["loss"].sort_index(), final["loss"].sort_index(), check_names=False)
    pd.testing.assert_series_equal(last["tokens"].sort_index(), final["tokens"].sort_index(), check_names=False)
    # Approach 1 reads the store (the fake loss falls with width alone, so the widest run
    # reaching each FLOP value wins: keep those boundary points)
    env = envelope_analysis(curves, n_boot=20, drop_boundary=False)
    assert set(env.grid["run_id"].dropna()) <= set(final.index) and env.grid["used"].sum() >= 2


def test_finished_runs_in_committed_tables_are_adopted_not_retrained(tmp_path):
    """A results directory committed without runs/ (as results/quickstart is) must not be
    retrained on a fresh clone, and its rows must come back unchanged."""
    import shutil

    plan = plan_sweep(load_sweep_config(write_config(tmp_path)))
    out = tmp_path / "out"
    first = CountingTrain()
    run_sweep(plan, out, train_fn=first, progress=False, record_environment=False)
    runs_before, curves_before = (out / "runs.csv").read_text(), (out / "curves.csv").read_text()
    shutil.rmtree(out / "runs")  # what a clone of the committed results has
    again = CountingTrain()
    run_sweep(plan, out, train_fn=again, progress=False, record_environment=False)
    assert first.calls and not again.calls
    assert (out / "runs.csv").read_text() == runs_before
    assert (out / "curves.csv").read_text() == curves_before
