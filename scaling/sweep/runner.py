"""Train a plan's runs into one results directory: resumable, partitioned, fault-tolerant.

* Idempotent: a run whose status is done (or diverged) is skipped; one interrupted
  mid-way is trained again on the same directory, and the trainer resumes it from its
  last checkpoint. A failed run is retried on the next invocation. A failed or diverged
  run never stops the sweep.
* Partitioned: ``num_workers`` independent workers (e.g. a SLURM array) split the plan's
  groups (a run, or a WSD trunk with its branches) by a deterministic longest-first
  assignment; all write to one directory, a local or NFS path or an object store
  (s3://, gs://). Each run is trained under its own claim (a conditional create with a
  lease that a killed worker's successor takes over), so even overlapping workers never
  train a run twice, and whichever worker finishes a run rebuilds the tables from the
  per-run files (see `scaling.sweep.store`).
* On an object store, the real trainer works in a local scratch copy of the run
  directory that follows the store at each checkpoint (`scaling.storage.Mirror`); packs
  (--pack) train only on local results directories.
* Multi-host: on a pod slice every host runs the same command and the hosts train one
  run at a time together. Process 0 alone decides (skip or train) and writes the store;
  its decision is broadcast so the hosts stay in step.

The train function is a parameter, typed by `scaling.core.protocol`:
``train_fn(config: dict, run_dir: Path) -> TrainOutcome``, where ``config`` is the run's
resolved trainer config as plain data and ``run_dir`` a local directory (on an object
store, a scratch copy of the run's directory, pulled before the call and pushed after it;
the default trainer is given the URL instead and mirrors it itself, pushing at every
checkpoint) and the outcome has (as attributes or keys)
``status`` (done | diverged | failed | preempted) and optionally ``eval_loss``,
``steps``, ``tokens``, ``flops``, ``wall_time_s``, ``error``. The default is
`scaling.train.train`. A preempted run
is left pending and the sweep stops; rerunning the command resumes it. The real trainer
signals preemption (SIGTERM, checkpoint saved) by raising
`scaling.train.trainer.Preempted`, a SystemExit; a train function may also return
status "preempted". A SIGTERM outside the trainer's loop (between runs, or while a run is
set up or compiled) stops a single-process sweep the same way, the run pending at its last
complete checkpoint. `scaling sweep` then exits with `scaling.runtime.PREEMPTED_EXIT_CODE`
(75) so that a cluster scheduler requeues the job.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import socket
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scaling.core.protocol import TrainFn, TrainOutcome, outcome_field
from scaling.core.status import DIVERGED, DONE, FAILED, PENDING, PREEMPTED
from scaling.core.status import FINISHED as TERMINAL  # finished: never trained again
from scaling.sweep.plan import BRANCH_PARENT, Plan, PlannedRun
from scaling.sweep.store import ResultsStore


# ---- hosts ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Hosts:
    """The processes of one multi-host job (1 of 1 on a single machine)."""

    index: int = 0
    count: int = 1

    @property
    def is_writer(self) -> bool:
        return self.index == 0

    def agree(self, value: int) -> int:
        """Process 0's `value`, on every process."""
        if self.count == 1:
            return value
        import numpy as np
        from jax.experimental import multihost_utils

        return int(multihost_utils.broadcast_one_to_all(np.int32(value)))

    @classmethod
    def from_jax(cls) -> Hosts:
        import jax

        return cls(jax.process_index(), jax.process_count())


# ---- partitioning --------------------------------------------------------------------
def worker_from_env(num_workers: int | None, worker_index: int | None) -> tuple[int, int]:
    """(num_workers, worker_index), defaulting to a SLURM array's variables, else (1, 0)."""
    env = os.environ
    if num_workers is None:
        num_workers = int(env.get("SLURM_ARRAY_TASK_COUNT", 1))
    if worker_index is None:
        if "SLURM_ARRAY_TASK_ID" in env:
            worker_index = int(env["SLURM_ARRAY_TASK_ID"]) - int(env.get("SLURM_ARRAY_TASK_MIN", 0))
        else:
            worker_index = 0
    if num_workers < 1:
        raise ValueError(f"--num-workers={num_workers} must be >= 1")
    if not 0 <= worker_index < num_workers:
        raise ValueError(
            f"--worker-index={worker_index} must be in [0, {num_workers - 1}] for --num-workers={num_workers}"
        )
    return num_workers, worker_index


def partition(runs: Iterable[PlannedRun], num_workers: int, worker_index: int) -> list[PlannedRun]:
    """This worker's runs, in plan order. Groups (a run, or a trunk and its branches) go
    whole to one worker, and so do all groups of one shape (`program_key`: the runs one
    compiled program serves) unless that shape alone is more than a worker's share: each
    program then compiles on one worker only, where two workers compiling it at once
    would both pay for it. Units are placed heaviest first on the least-loaded worker
    (ties: lowest index), which is deterministic and balances FLOPs."""
    runs = list(runs)
    groups: dict[str, list[PlannedRun]] = {}
    for r in runs:
        groups.setdefault(r.group, []).append(r)
    flops = {g: sum(r.own_flops for r in rs) for g, rs in groups.items()}
    shapes: dict[str, list[str]] = {}
    for g, rs in groups.items():
        shapes.setdefault(program_key(rs[0]), []).append(g)
    share = sum(flops.values()) / num_workers
    units = []
    for gs in shapes.values():
        load = sum(flops[g] for g in gs)
        units += [[g] for g in gs] if load > share and len(gs) > 1 else [gs]
    load = [0.0] * num_workers
    owner: dict[str, int] = {}
    for unit in sorted(units, key=lambda u: (-sum(flops[g] for g in u), min(u))):
        w = min(range(num_workers), key=lambda i: (load[i], i))
        for g in unit:
            owner[g] = w
        load[w] += sum(flops[g] for g in unit)
    return [r for r in runs if owner[r.group] == worker_index]


def program_key(run: PlannedRun) -> str:
    """Equal for runs that one compiled train step serves: the config without the values
    passed to the step at run time (learning rate, seed, schedule, length, data)."""
    d = run.train_config
    return json.dumps({k: d.get(k) for k in ("model", "mesh")} | {
        "optimizer": {k: v for k, v in d.get("optimizer", {}).items() if k != "lr"},
        "batch": [d.get("train", {}).get(k) for k in ("global_batch_size", "microbatches")],
    }, sort_keys=True, default=str)  # fmt: skip


# ---- results -------------------------------------------------------------------------
def _number(value: Any) -> float | int | None:
    if value is None:
        return None
    if hasattr(value, "item"):
        value = value.item()
    return value


def result_record(result: TrainOutcome | Mapping[str, Any]) -> dict[str, Any]:
    """A train function's outcome (`scaling.core.protocol`) as the fields of a run's status.json."""
    status = outcome_field(result, "status") or DONE
    if status == PREEMPTED:  # SIGTERM: checkpointed; the next invocation resumes it
        steps = outcome_field(result, "steps")
        return {"status": PENDING, "preempted": True, "error": f"preempted at step {steps}; rerun to resume"}
    if status not in (DONE, DIVERGED, FAILED):
        raise ValueError(f"train function returned status {status!r}; expected done, diverged, failed or preempted")
    record: dict[str, Any] = {"status": status}
    for name in ("eval_loss", "steps", "tokens", "flops", "wall_time_s"):
        record[name] = _number(outcome_field(result, name))
    record["error"] = outcome_field(result, "error")
    loss = record["eval_loss"]
    if status == DONE and loss is not None and not math.isfinite(loss):
        record["status"] = DIVERGED
        record["error"] = record["error"] or f"final eval loss is {loss}"
    if record["status"] == DIVERGED and not record["error"]:  # say where and what, never an empty cell
        record["error"] = f"diverged at step {record['steps']}" + (f": loss {loss}" if loss is not None else "")
    return {k: v for k, v in record.items() if v is not None}


class SweepTerminated(BaseException):
    """SIGTERM reached the sweep outside the trainer's own handler (between runs, or while a
    run was being set up or compiled). A BaseException, so that no `except Exception`
    mistakes it for a failed run; the runner records the run as preempted and stops."""


@contextlib.contextmanager
def _sigterm_unwinds(hosts: Hosts):
    """While the sweep runs, SIGTERM raises SweepTerminated, except inside the trainer's
    loop, whose own handler saves a checkpoint first and raises Preempted. Single-process
    only: on a multi-host job an exception on one process would strand the others in
    their collectives, so there the default (terminate) stays."""
    if hosts.count != 1 or threading.current_thread() is not threading.main_thread():
        yield
        return

    def handle(signum, frame):
        raise SweepTerminated()

    old = signal.signal(signal.SIGTERM, handle)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def preempted_step(err: BaseException) -> int | None:
    """The step a `scaling.train.trainer.Preempted` was raised at; None for any other
    exception. (Only a loaded trainer module can have raised one, so the check never
    imports JAX.)"""
    trainer = sys.modules.get("scaling.train.trainer")
    if trainer is not None and isinstance(err, trainer.Preempted):
        return err.step
    return None


def default_train_fn(config: dict, run_dir: Path) -> Any:
    """`scaling.train.train` on the run's config (the real trainer)."""
    from scaling.sweep.trainer_config import build
    from scaling.train import train

    return train(build(config), run_dir)


# ---- the sweep -----------------------------------------------------------------------
@dataclass
class SweepReport:
    """What one invocation did: per run of this worker, the action and final status."""

    out_dir: Path
    rows: list[dict[str, Any]] = field(default_factory=list)
    terminated: bool = False  # SIGTERM between runs

    def count(self, status: str) -> int:
        return sum(1 for r in self.rows if r["status"] == status)

    @property
    def preempted(self) -> bool:
        """A run was preempted, or SIGTERM came between runs: the sweep stopped early and a
        rerun resumes it."""
        return self.terminated or any(r.get("preempted") for r in self.rows)

    @property
    def trained(self) -> int:
        return sum(1 for r in self.rows if r["action"] == "trained")


def run_sweep(
    plan: Plan,
    out_dir: str | os.PathLike,
    *,
    train_fn: TrainFn | None = None,
    num_workers: int = 1,
    worker_index: int = 0,
    hosts: Hosts = Hosts(),
    retry_failed: bool = True,
    progress: bool = True,
    record_environment: bool = True,
    log: Callable[[str], None] | None = None,
    pack: int = 1,
    lease_s: float | None = None,
) -> SweepReport:
    """Train this worker's share of `plan` into `out_dir` (see the module docstring).

    pack: up to this many same-shape runs of one group (an LR grid, seeds) train as one
    program (`scaling.sweep.packing.pack_units`); only with the default train function on
    a single process, on a local results directory. lease_s: how long a killed worker's
    claim on another host holds its run (default `scaling.sweep.store.CLAIM_LEASE_S`)."""
    from scaling.sweep.store import CLAIM_LEASE_S

    store = ResultsStore(out_dir, lease_s=CLAIM_LEASE_S if lease_s is None else lease_s)
    if train_fn is not None or hosts.count != 1 or store.remote:
        pack = 1
    train_fn = train_fn or default_train_fn
    log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    if hosts.is_writer:
        from scaling.sweep.manifest import data_manifest, write_sweep_files

        # Everything that can reject this invocation, before its first write: a rejected
        # sweep leaves an existing results directory byte-identical and creates no new one.
        store.check_new_output()
        data = None
        if record_environment and any(store.read_status(r.run_id)["status"] not in TERMINAL for r in plan.runs):
            data = data_manifest(plan.config)  # a bad data source fails here (not probed when all is done)
        store.create()
        if not store.exclusive_claims and num_workers > 1:
            raise ValueError(
                f"{store.root}: this storage has no atomic conditional create, so claims cannot keep two workers "
                f"off one run; run one worker per results directory (--num-workers={num_workers}, --jobs)"
            )
        adopted = store.adopt_tables()
        if adopted:
            log(f"[sweep] {len(adopted)} finished runs taken from runs.csv (no run directories): not retrained")
        write_sweep_files(store, plan, record_environment=record_environment, data=data)
    mine = partition(plan.runs, num_workers, worker_index)
    report = SweepReport(store.root)
    summary = _summary_tracker(plan, store, num_workers, worker_index) if hosts.is_writer else None
    # Bars on a terminal; off one (CI, SLURM files) a line per run instead.
    tty = progress and hosts.is_writer and sys.stderr.isatty()
    bar = _SweepBar(mine, enabled=tty, log=None if tty or not hosts.is_writer else log)
    quiet = not sys.stderr.isatty()
    sweep_name = plan.config.sweep.name
    try:
        with _sigterm_unwinds(hosts):
            try:
                for unit in _units(plan, mine, store, pack, bar, hosts, num_workers):
                    if len(unit) == 1:
                        run = unit[0]
                        rows = [
                            _run_one(run, store, train_fn, hosts, retry_failed, log, progress and not quiet, sweep_name)
                        ]
                    else:
                        rows = _run_pack(unit, store, retry_failed, log)
                    for run, row in zip(unit, rows):
                        report.rows.append(row)
                        bar.advance(run, row)
                    if hosts.is_writer and any(row["action"] != "skipped" for row in rows):
                        store.consolidate()
                    if summary is not None:
                        finished = {r["run_id"] for r in rows if r["action"] == "trained" and r["status"] in TERMINAL}
                        for r in store.rows() if finished else ():
                            if r["run_id"] in finished:
                                summary.log_run(r)
                        _push_summary(store, summary)
                    if any(row.get("preempted") for row in rows):
                        log("[sweep] preempted (SIGTERM): stopping; rerun the same command to resume")
                        break
            except SweepTerminated:  # between runs: nothing was training
                report.terminated = True
                log("[sweep] SIGTERM between runs: stopping; rerun the same command to resume")
    finally:
        bar.close()
        if summary is not None:
            summary.close()
            _push_summary(store, summary)
        if hosts.is_writer:
            store.consolidate()
            if report.trained:
                from scaling.sweep.manifest import record_training

                record_training(store, plan, record_environment=record_environment)
    return report


# decisions broadcast from process 0
_TRAIN, _SKIP, _BUSY, _BLOCKED = 0, 1, 2, 3


def _units(plan: Plan, mine: list[PlannedRun], store: ResultsStore, pack: int, bar: _SweepBar, hosts: Hosts,
           num_workers: int):  # fmt: skip
    """This worker's units (`pack_units`), then, when its share is done and other workers
    share the plan, the runs of theirs that nobody has started, last first: a worker that
    finishes early takes over work instead of idling (FLOPs are not wall time: the
    smallest models run far below a core's FLOP rate). A trunk and its branches are taken
    whole or not at all; the independent runs of a group (a cell's seeds) one by one, so
    the last seeds of a cell its owner has begun are not left to it alone (their program
    is then in the shared compilation cache already). The claims keep two workers off one
    run; the owner skips a run it finds finished or held. Not in a multi-process job,
    whose processes must agree on every unit."""
    from scaling.sweep.packing import pack_units  # imports the trainer's packing: JAX

    yield from pack_units(mine, pack)
    if num_workers == 1 or hosts.count > 1:
        return

    def pending(run: PlannedRun) -> bool:
        return store.effective_status(run.run_id)["status"] == PENDING

    taken = {r.run_id for r in mine}
    groups: dict[str, list[PlannedRun]] = {}
    for r in plan.runs:
        if r.run_id not in taken:
            groups.setdefault(r.group, []).append(r)
    for group in reversed(list(groups.values())):
        whole = any(r.parent_run_id for r in group)  # a trunk and its branches
        if whole and not all(pending(r) for r in group):
            continue
        for unit in pack_units(group if whole else group[::-1], pack):
            unit = [r for r in unit if pending(r)]  # the owner may have started some meanwhile
            if unit:
                bar.extend(unit)
                yield unit


def _summary_tracker(plan: Plan, store: ResultsStore, num_workers: int, worker_index: int):
    """The sweep's own tracker (one row per finished run), or None without [track] backends."""
    from scaling.train.tracking import SweepTracker

    cfg = plan.config.base.track
    if cfg is None or not cfg.backends:
        return None
    worker = f"w{worker_index}" if num_workers > 1 else ""
    where = str(store.root)
    if store.remote:  # trackers write local files: here to this worker's scratch directory (`_push_summary`)
        from scaling.storage import scratch_dir

        where = str(scratch_dir(where))
    return SweepTracker.open(cfg, where, name=plan.config.sweep.name, worker=worker)


def _call_train(train_fn: TrainFn, config: dict, store: ResultsStore, run: PlannedRun) -> Any:
    """train_fn on the run's directory: as it is when local; on an object store the URL for
    the default trainer (which mirrors it, pushing at each checkpoint), else a local copy
    pulled first and pushed when the function returns or fails."""
    where = store.run_dir(run.run_id)
    if not store.remote or train_fn is default_train_fn:
        return train_fn(config, where)
    import shutil

    from scaling.storage import Mirror, scratch_dir

    local = scratch_dir(str(where))
    mirror = Mirror(store.storage, store.run_key(run.run_id), local)
    mirror.pull()
    try:
        return train_fn(config, local)
    finally:
        mirror.push()
        shutil.rmtree(local, ignore_errors=True)


def _push_summary(store: ResultsStore, summary) -> None:
    """On an object store, copy the sweep tracker's local TensorBoard files (this worker's
    scratch directory) to DIR/tensorboard/, so a dashboard reading the bucket sees them."""
    if not store.remote or summary is None:
        return
    from scaling.storage import Mirror, scratch_dir
    from scaling.train.tracking import TENSORBOARD_DIR

    local = scratch_dir(str(store.root)) / TENSORBOARD_DIR
    if local.is_dir():
        Mirror(store.storage, TENSORBOARD_DIR, local).push()


def _run_one(
    run: PlannedRun,
    store: ResultsStore,
    train_fn: TrainFn,
    hosts: Hosts,
    retry_failed: bool,
    log,
    progress: bool = True,
    sweep: str = "",
) -> dict:
    row = {"run_id": run.run_id, "width": run.width, "depth": run.depth, "budget": run.budget}
    decision, why = _SKIP, ""
    if hosts.is_writer:
        decision, why = _decide(run, store, retry_failed)
    decision = hosts.agree(decision)
    if decision == _SKIP:
        return {**row, "action": "skipped", **_final(store, run, hosts)}
    if decision == _BUSY:
        log(f"[sweep] {run.run_id}: being trained by another process; skipped here")
        return {**row, "action": "busy", "status": "running"}
    if decision == _BLOCKED:
        if hosts.is_writer:
            store.write_status(run.run_id, "failed", error=why)
        log(f"[sweep] {run.run_id}: {why}")
        return {**row, "action": "blocked", "status": "failed", "error": why}

    with store.claim(run.run_id) if hosts.is_writer else _nothing() as held:
        if hosts.agree(int(bool(held)) if hosts.is_writer else 1) == 0:
            return {**row, "action": "busy", "status": "running"}
        if hosts.is_writer and store.read_status(run.run_id)["status"] in TERMINAL:  # finished meanwhile
            decision = _SKIP
        if hosts.agree(decision) == _SKIP:
            return {**row, "action": "skipped", **_final(store, run, hosts)}
        if hosts.is_writer:
            store.write_status(run.run_id, "running", host=socket.gethostname(), pid=os.getpid(),
                               started_at=time.time())  # fmt: skip
        budget = f" budget={run.budget:.3g}" if run.budget else ""
        log(f"[sweep] training {run.run_id} ({run.plan_kind}): width={run.width} depth={run.depth} "
            f"steps={run.steps} tokens={run.tokens:.3g}{budget}")  # fmt: skip
        t0 = time.time()
        try:
            record = result_record(_call_train(train_fn, _resolved_config(run, store, progress, sweep), store, run))
        except SystemExit as err:  # the trainer's Preempted: checkpointed, resumable
            step = preempted_step(err)
            if step is None:
                raise
            record = result_record({"status": "preempted", "steps": step})
        except SweepTerminated:  # SIGTERM before the trainer took over its handling (set-up, compile)
            record = result_record({"status": "preempted", "steps": store.last_checkpoint(run.run_id)})
        except KeyboardInterrupt:
            raise  # stays "running"; a rerun finds it unclaimed (pending) and resumes it
        except Exception as err:  # noqa: BLE001 - any error fails this run, never the sweep
            record = {"status": "failed", "error": f"{type(err).__name__}: {err}".strip()}
            if hosts.is_writer:
                store.write_file(run.run_id, "error.txt", traceback.format_exc())
            log(f"[sweep] {run.run_id} failed: {record['error']}")
        record.setdefault("wall_time_s", time.time() - t0)
        if hosts.is_writer and held.lost:  # paused past the lease: the run is another worker's now
            log(f"[sweep] {run.run_id}: its claim expired and another worker took it over; result not recorded")
            return {**row, "action": "busy", "status": "running"}
        if hosts.is_writer:
            store.write_status(run.run_id, **record)
    return {**row, "action": "trained", **record}


def _decide(run: PlannedRun, store: ResultsStore, retry_failed: bool) -> tuple[int, str]:
    status = store.effective_status(run.run_id)["status"]
    if status in TERMINAL or (status == "failed" and not retry_failed):
        return _SKIP, ""
    if status == "running":
        return _BUSY, ""
    if run.parent_run_id:
        parent = store.read_status(run.parent_run_id)["status"]
        if parent != "done":
            return _BLOCKED, f"its WSD trunk {run.parent_run_id} is {parent}, so the branch cannot start"
    return _TRAIN, ""


def _final(store: ResultsStore, run: PlannedRun, hosts: Hosts) -> dict:
    if not hosts.is_writer:
        return {"status": "done"}
    return dict(store.read_status(run.run_id))


def _run_pack(runs: list[PlannedRun], store: ResultsStore, retry_failed: bool, log) -> list[dict]:
    """Runs of one shape trained as one packed program (single process): each decided,
    claimed and recorded as its own run; a preempted pack reruns from step 0 as a unit."""
    from scaling.train.packed import train_packed

    rows: dict[str, dict] = {}
    base = {r.run_id: {"run_id": r.run_id, "width": r.width, "depth": r.depth, "budget": r.budget} for r in runs}
    with contextlib.ExitStack() as stack:
        todo = []
        for r in runs:
            decision, _ = _decide(r, store, retry_failed)
            if decision == _SKIP:
                rows[r.run_id] = {**base[r.run_id], "action": "skipped", **store.read_status(r.run_id)}
            elif decision == _TRAIN and stack.enter_context(store.claim(r.run_id)):
                todo.append(r)
            else:
                rows[r.run_id] = {**base[r.run_id], "action": "busy", "status": "running"}
        if todo:
            for r in todo:
                store.write_status(r.run_id, "running", host=socket.gethostname(), pid=os.getpid(),
                                   started_at=time.time())  # fmt: skip
            r0 = todo[0]
            log(f"[sweep] training {len(todo)} runs packed ({r0.plan_kind}): width={r0.width} depth={r0.depth} "
                f"steps={r0.steps} lr={','.join(f'{r.lr:.3g}' for r in todo)} seeds={','.join(str(r.seed) for r in todo)}")  # fmt: skip
            t0 = time.time()
            try:
                results = train_packed([_resolved_config(r, store, False) for r in todo],
                                       [store.run_dir(r.run_id) for r in todo], log=log)  # fmt: skip
                records = [result_record(x) for x in results]
            except SystemExit as err:
                step = preempted_step(err)
                if step is None:
                    raise
                records = [result_record({"status": "preempted", "steps": 0}) for _ in todo]
            except SweepTerminated:
                records = [result_record({"status": "preempted", "steps": 0}) for _ in todo]
            except Exception as err:  # noqa: BLE001 - a failed pack fails its runs, never the sweep
                error = f"{type(err).__name__}: {err}".strip()
                records = [{"status": "failed", "error": error} for _ in todo]
                store.write_file(r0.run_id, "error.txt", traceback.format_exc())
                log(f"[sweep] pack of {len(todo)} runs failed: {error}")
            for r, record in zip(todo, records):
                record.setdefault("wall_time_s", (time.time() - t0) / len(todo))
                store.write_status(r.run_id, **record)
                rows[r.run_id] = {**base[r.run_id], "action": "trained", **record}
    return [rows[r.run_id] for r in runs]


def _resolved_config(run: PlannedRun, store: ResultsStore, progress: bool = True, sweep: str = "") -> dict:
    """The run's trainer config with a branch's trunk reference made a real path, the
    trainer's own progress bar off when the sweep's is (train.progress changes no result),
    and its tracker named after the sweep: project and group default to the sweep's name,
    the run id is the tracker's run id."""
    config = {k: dict(v) for k, v in run.train_config.items()}
    if not progress:
        config.setdefault("train", {})["progress"] = False
    track = config.get("track")
    if track and track.get("backends"):
        track["project"] = track.get("project") or sweep
        track["group"] = track.get("group") or sweep
        track["run_id"] = run.run_id
        if track.get("tensorboard_dir"):
            track["tensorboard_dir"] = str(Path(track["tensorboard_dir"]) / run.run_id)
    init = config.get("train", {}).get("init_from")
    if init and isinstance(init[0], str) and init[0].startswith(BRANCH_PARENT):
        parent = init[0][len(BRANCH_PARENT) :]
        where = store.run_dir(parent)
        config["train"]["init_from"] = [where if store.remote else str(Path(where).resolve()), init[1]]
    return config


class _nothing:
    def __enter__(self):
        return True

    def __exit__(self, *exc):
        return False


# ---- progress ------------------------------------------------------------------------
class _SweepBar:
    """A tqdm bar over this worker's FLOPs, with runs done / total and ETA."""

    def __init__(self, runs: list[PlannedRun], enabled: bool, log=None):
        self.total_runs = len(runs)
        self.done_runs = 0
        self.bar = None
        self.log = log  # no bar: one line per finished run
        self.t0 = time.time()
        self.flops_left = sum(r.own_flops for r in runs)
        self.flops_done = 0.0
        if enabled and runs:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=sum(r.own_flops for r in runs), unit="FLOP", unit_scale=True, desc="sweep",
                            position=0, dynamic_ncols=True, file=sys.stderr,
                            bar_format="{desc}: {percentage:3.0f}%|{bar}| {n:.3g}/{total:.3g} FLOPs "
                                       "[{elapsed}<{remaining}] {postfix}")  # fmt: skip
            self.bar.set_postfix_str(f"runs 0/{self.total_runs}")

    def extend(self, runs: list[PlannedRun]) -> None:
        """Runs taken over from another worker (`_units`)."""
        self.total_runs += len(runs)
        self.flops_left += sum(r.own_flops for r in runs)
        if self.bar is not None:
            self.bar.total += sum(r.own_flops for r in runs)

    def advance(self, run: PlannedRun, row: dict) -> None:
        self.done_runs += 1
        self.flops_left -= run.own_flops
        if row["action"] == "trained":
            self.flops_done += run.own_flops
        if self.log is not None and row["action"] != "skipped":
            from scaling.sweep.report import run_line

            self.log(run_line(self.done_runs, self.total_runs, row, time.time() - self.t0,
                              self.flops_done, self.flops_left))  # fmt: skip
        if self.bar is None:
            return
        self.bar.set_postfix_str(f"runs {self.done_runs}/{self.total_runs}", refresh=False)
        if row["action"] == "trained":
            self.bar.update(run.own_flops)
        else:  # work done earlier or elsewhere: out of the total, so the rate and ETA stay honest
            self.bar.total -= run.own_flops
            self.bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
