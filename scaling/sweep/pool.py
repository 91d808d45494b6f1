"""Many small runs at once: packs of same-shape runs, and J worker processes on one machine.

* Packs (`scaling.sweep.packing.pack_units`): consecutive same-shape runs of one plan
  group train as one program (`scaling.train.packed`), each its own run in the store.
* Jobs: `scaling sweep --jobs J` starts J worker processes over one results directory,
  the plan split between them as for independent workers (`runner.partition`: each shape
  on one worker, so each program compiles once), each pinned to its own block of the
  machine's cores with XLA's threads limited to them. Each job pays its own JAX start-up,
  so the gain needs a plan long enough to amortize it.

Defaults, from benchmarks/results/quickstart_throughput.md (an idle 2-core CPU, a slice of
the quickstart): pinned jobs, one per core, with the trainer's one-call stretches of steps,
run the slice at 1.7-1.9x (cold compilation cache) and 1.9-2.0x (warm) the FLOPs per
wall-second of the previous one-process path (unpinned, jobs gained 1.2-1.3x: both processes' thread pools
ran over both cores); packing on top of them gains nothing on a CPU (a vmapped step of K
runs costs at least K steps there, and every pack compiles its own program), so
`default_pack` is 1 on a CPU and 8 elsewhere: on an accelerator one small model leaves the
chip idle, which packs fill. On an accelerator host, jobs (one per device) would need one
device each; this module only splits CPU cores, so `default_jobs` is 1 unless the backend
is the CPU.
"""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context

from scaling.sweep.plan import Plan


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def default_jobs() -> int:
    """One job per core on a CPU backend, else 1 (see the module docstring for when it pays)."""
    import jax

    return usable_cores() if jax.default_backend() == "cpu" else 1


def default_pack() -> int:
    """Runs per packed program: 1 on a CPU backend, 8 elsewhere (the module docstring says why)."""
    import jax

    return 1 if jax.default_backend() == "cpu" else 8


def parse_count(flag: str, value: str) -> int | None:
    """--jobs / --pack: a positive integer, or 'auto' (None: the default, decided once JAX
    knows the backend: `default_jobs` / `default_pack`)."""
    if value == "auto":
        return None
    try:
        count = int(value)
    except ValueError:
        count = 0
    if count < 1:
        raise ValueError(f"{flag}={value!r} must be a positive integer or 'auto'")
    return count


def parse_pack(value: str) -> int | None:
    return parse_count("--pack", value)


def thread_flags(threads: int) -> str:
    """XLA_FLAGS that keep one process's CPU work on `threads` threads."""
    if threads == 1:
        return "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
    return f"intra_op_parallelism_threads={threads}"


def core_sets(jobs: int, threads: int) -> list[list[int]]:
    """The cores each of `jobs` workers is pinned to: consecutive blocks of `threads` of
    this process's usable cores, wrapping round when the jobs ask for more than there are."""
    try:
        cores = sorted(os.sched_getaffinity(0))
    except AttributeError:  # not Linux: no pinning
        return [[] for _ in range(jobs)]
    return [[cores[(j * threads + t) % len(cores)] for t in range(threads)] for j in range(jobs)]


def _start_worker(flags: str, cores: list[list[int]], counter) -> None:
    """Runs once in each fresh worker, before JAX starts: its XLA flags and its own cores.

    Pinning matters as much as the flags: XLA:CPU's thread pools follow the process's
    affinity, and two unpinned processes on two cores each run their pools over both,
    at 6-7 ms a step where one pinned process takes 3.7-4.4 ms (width 12 of the
    quickstart, benchmarks/results/quickstart_throughput.md)."""
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " " + flags).strip()
    with counter.get_lock():
        slot = counter.value
        counter.value += 1
    mine = cores[slot % len(cores)]
    if mine and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, mine)
        _PINNED[:] = mine


_PINNED: list[int] = []  # this worker's cores, once `_start_worker` has pinned it


def _worker(plan: Plan, out: str, jobs: int, index: int, kwargs: dict):
    from scaling.runtime import enable_compilation_cache
    from scaling.sweep.runner import run_sweep

    enable_compilation_cache()
    tag = f"[job {index}/{jobs}]"
    if _PINNED:
        print(f"{tag} pinned to core{'s' if len(_PINNED) > 1 else ''} {','.join(map(str, _PINNED))}", flush=True)
    return run_sweep(plan, out, num_workers=jobs, worker_index=index, progress=False,
                     log=lambda msg: print(f"{tag} {msg}", flush=True), **kwargs)  # fmt: skip


def run_jobs(plan: Plan, out, *, jobs: int, threads_per_job: int | None = None, **kwargs):
    """`run_sweep` over `jobs` worker processes sharing this machine's cores; returns one
    SweepReport with every worker's rows (the store is consolidated by the workers)."""
    from scaling.sweep.runner import SweepReport

    if jobs < 1:
        raise ValueError(f"--jobs={jobs} must be >= 1")
    threads = threads_per_job or max(1, usable_cores() // jobs)
    ctx = get_context("spawn")  # fresh interpreters: XLA reads its flags at start-up
    report = None
    init = (thread_flags(threads), core_sets(jobs, threads), ctx.Value("i", 0))
    with ProcessPoolExecutor(jobs, mp_context=ctx, initializer=_start_worker, initargs=init) as ex:
        futures = [ex.submit(_worker, plan, str(out), jobs, i, kwargs) for i in range(jobs)]
        rows: dict[str, dict] = {}
        for f in futures:
            r = f.result()
            if report is None:
                report = SweepReport(r.out_dir)
            for row in r.rows:  # a run taken over from its owner has a row from each of them
                held = rows.get(row["run_id"])
                if held is None or _ACTION_RANK[row["action"]] < _ACTION_RANK[held["action"]]:
                    rows[row["run_id"]] = row
            report.terminated |= r.terminated
    report.rows = [rows[r.run_id] for r in plan.runs if r.run_id in rows]
    return report


_ACTION_RANK = {"trained": 0, "blocked": 1, "skipped": 2, "busy": 3}  # the row that says what happened
