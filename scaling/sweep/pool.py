"""Many small runs at once: packs of same-shape runs, and J worker processes on one machine.

* Packs (`scaling.sweep.packing.pack_units`): consecutive same-shape runs of one plan
  group train as one program (`scaling.train.packed`), each its own run in the store.
* Jobs: `scaling sweep --jobs J` starts J worker processes over one results directory,
  the plan split between them as for independent workers (`runner.partition`), each with
  its share of the machine's cores for XLA's threads. Small CPU models use about one core
  per process; each job pays its own JAX start-up and compilations, so the gain needs a plan
  long enough to amortize them.

Defaults, from benchmarks/results/quickstart_throughput.md (an idle 2-core CPU, a slice of
the quickstart): jobs, one per core, gain about 1.2x over one process; packing on top of
them gains nothing from a cold cache (a vmapped step of K runs costs at least K steps on a
CPU, and every pack compiles its own program), so `default_pack` is 1 on a CPU and 8
elsewhere: on an accelerator one small model leaves the chip idle, which packs fill. On an
accelerator host, jobs (one per device) would need one device each; this module only
splits CPU cores, so `default_jobs` is 1 unless the backend is the CPU.
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


def _start_worker(flags: str) -> None:
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " " + flags).strip()


def _worker(plan: Plan, out: str, jobs: int, index: int, kwargs: dict):
    from scaling.runtime import enable_compilation_cache
    from scaling.sweep.runner import run_sweep

    enable_compilation_cache()
    tag = f"[job {index}/{jobs}]"
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
    with ProcessPoolExecutor(jobs, mp_context=ctx, initializer=_start_worker, initargs=(thread_flags(threads),)) as ex:
        futures = [ex.submit(_worker, plan, str(out), jobs, i, kwargs) for i in range(jobs)]
        for f in futures:
            r = f.result()
            if report is None:
                report = SweepReport(r.out_dir)
            report.rows += r.rows
            report.terminated |= r.terminated
    return report
