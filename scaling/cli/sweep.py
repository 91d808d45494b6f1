"""`scaling sweep FILE.toml [--out DIR]`: train every planned run into one results directory.

Idempotent: rerunning skips finished runs and resumes interrupted ones from their last
checkpoint; failed runs are retried. Results: DIR/runs.csv, DIR/curves.csv,
DIR/sweep.toml, DIR/manifest.json, and DIR/runs/<run_id>/ (trainer output, checkpoints).
DIR may be an object store: --out s3://bucket/prefix or gs://bucket/prefix (the s3 / gcs
extras); runs train in a local scratch copy that follows the store at each checkpoint.

Several workers (e.g. a SLURM array) split the runs: --num-workers K --worker-index I,
defaulting to SLURM_ARRAY_TASK_COUNT / SLURM_ARRAY_TASK_ID. All write to the same DIR.

Multi-host (a TPU pod slice, or a SLURM job of several tasks): every host runs this same
command; JAX finds its peers (or pass --coordinator/--num-processes/--process-id) and
the hosts train one run at a time, sharded; only process 0 writes the tables.

--dry-run prints the plan and stops, exactly as `scaling plan FILE.toml` does.
--track tensorboard|wandb mirrors every run's metrics live (project and group: the sweep's
name; tracker run id: the run id) and logs one summary row per finished run.
Many small runs at once: --jobs J trains with J worker processes sharing this machine's
cores (XLA threads split between them; default 1, `auto` = one per core on a CPU), and
--pack K trains up to K same-shape runs of one group (an LR grid, seeds) as one program
(default auto: 1 on a CPU, where packing saves nothing, else 8).
A sweep with `[hparams] lr = "tuned"` first trains its LR grid at the smallest budget,
then every budget at the LRs chosen per width (scaling.sweep.lr_tuning).

Exit status: 0 when no run failed, 1 when some failed (see runs.csv), 2 bad input, 75
when a run was preempted (SIGTERM: its checkpoint is saved and the sweep stopped; a
scheduler that requeues on 75 reruns the command, which resumes it).
"""

from __future__ import annotations

import argparse
import errno
import sys
from pathlib import Path

from scaling.cli.plan import add_config_args, add_track_arg, track_overrides


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "sweep",
        help="train a sweep's runs (resumable, partitionable)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_config_args(p)
    p.add_argument("--out", help="results directory (default: results/<sweep name>)")
    p.add_argument(
        "--num-workers", type=int, help="independent workers sharing the runs (default: SLURM array size, else 1)"
    )
    p.add_argument("--worker-index", type=int, help="this worker, 0..K-1 (default: SLURM_ARRAY_TASK_ID, else 0)")
    p.add_argument("--jobs", default="1", help="worker processes on this machine: a number or 'auto' (default 1)")
    p.add_argument("--pack", default="auto",
                   help="train up to K same-shape runs as one program: a number or 'auto' (1 on a CPU, else 8)")  # fmt: skip
    p.add_argument("--no-retry-failed", action="store_true", help="leave failed runs failed instead of retrying them")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--no-compilation-cache", action="store_true", help="do not use JAX's persistent compilation cache")
    p.add_argument("--coordinator", help="HOST:PORT of process 0, for a multi-host run")
    p.add_argument("--num-processes", type=int, help="number of processes (with --coordinator)")
    p.add_argument("--process-id", type=int, help="this process's index (with --coordinator)")
    add_track_arg(p)
    p.add_argument(
        "--dry-run", action="store_true", help="print the plan and stop (what `scaling plan` does); nothing is trained"
    )
    p.add_argument("--throughput", type=float, metavar="FLOP/S", help="with --dry-run: as for `scaling plan`")
    p.set_defaults(func=run)


def parse_jobs(value: str) -> int | None:
    """--jobs: a positive integer, or 'auto' (None: decided once JAX knows the backend)."""
    from scaling.sweep.pool import parse_count

    return parse_count("--jobs", value)


def run(args) -> int:
    args.overrides = list(args.overrides) + track_overrides(args)
    if args.dry_run:  # exactly `scaling plan`, with its own defaults for every other option
        from scaling.cli.main import main

        argv = ["plan", args.config, *(a for o in args.overrides for a in ("--set", o))]
        return main(argv + (["--throughput", repr(args.throughput)] if args.throughput is not None else []))
    from scaling.sweep import load_sweep_config, plan_sweep, worker_from_env

    cfg = load_sweep_config(args.config, args.overrides)
    jobs = parse_jobs(args.jobs)
    from scaling.sweep.pool import parse_pack

    pack = parse_pack(args.pack)
    tuned = cfg.hparams.lr == "tuned"
    plan = None if tuned else plan_sweep(cfg)  # bad input fails before JAX starts
    num_workers, worker_index = worker_from_env(args.num_workers, args.worker_index)
    from scaling.storage import Storage, is_url

    out = (args.out if is_url(args.out) else Path(args.out)) if args.out else Path("results") / cfg.sweep.name
    if is_url(out):
        Storage.at(out)  # a missing s3 / gcs extra fails here, before JAX starts
    kwargs = dict(num_workers=num_workers, worker_index=worker_index, retry_failed=not args.no_retry_failed,
                  progress=not args.no_progress, compilation_cache=not args.no_compilation_cache,
                  coordinator=args.coordinator, num_processes=args.num_processes, process_id=args.process_id,
                  jobs=jobs, pack=pack)  # fmt: skip
    try:
        if tuned:
            from scaling.sweep.lr_tuning import tune_and_sweep

            report, _, _ = tune_and_sweep(cfg, out, lambda p: sweep(p, out, **kwargs))
        else:
            report = sweep(plan, out, **kwargs)
    except OSError as err:
        if err.errno != errno.ENOSPC:
            raise
        print(f"scaling sweep: error: disk full: no space left on device writing {err.filename or out}; "
              "free space and rerun the same command to resume", file=sys.stderr)  # fmt: skip
        return 1
    if report is None:
        return 0
    from scaling.runtime import PREEMPTED_EXIT_CODE

    if report.preempted:
        return PREEMPTED_EXIT_CODE
    return 1 if report.count("failed") else 0


def sweep(plan, out: Path, *, num_workers: int = 1, worker_index: int = 0, retry_failed: bool = True,
          progress: bool = True, compilation_cache: bool = True, coordinator: str | None = None,
          num_processes: int | None = None, process_id: int | None = None, jobs: int | None = 1,
          pack: int | None = 1):  # fmt: skip
    """Plan printed → runs trained → summary printed (process 0 prints). Shared with quickstart.

    jobs: worker processes on this machine (None: `scaling.sweep.pool.default_jobs`).
    pack: runs per packed program (None: `scaling.sweep.pool.default_pack`)."""
    from scaling.train.distributed import initialize

    initialize(coordinator, num_processes, process_id)
    from scaling.runtime import enable_compilation_cache
    from scaling.sweep import ResultsStore, run_sweep
    from scaling.sweep.report import format_plan, format_summary
    from scaling.sweep.runner import Hosts
    from scaling.sweep.throughput import from_report, remember, resolve

    if compilation_cache:
        enable_compilation_cache()
    hosts = Hosts.from_jax()
    say = print if hosts.is_writer else (lambda *a, **k: None)
    rate, source = resolve(plan)
    say(format_plan(plan, rate, source))
    if num_workers > 1:
        say(f"\nworker {worker_index} of {num_workers}")
    say(f"\nresults: {out}", flush=True)
    if jobs is None:
        from scaling.sweep.pool import default_jobs

        jobs = default_jobs()
    if pack is None:
        from scaling.sweep.pool import default_pack

        pack = default_pack()
    if jobs > 1 and hosts.count == 1 and num_workers == 1:
        from scaling.sweep.pool import run_jobs

        say(f"{jobs} jobs on this machine", flush=True)
        report = run_jobs(plan, out, jobs=jobs, retry_failed=retry_failed, pack=pack)
        ResultsStore(out).consolidate()
    else:
        report = run_sweep(plan, out, num_workers=num_workers, worker_index=worker_index, hosts=hosts,
                           retry_failed=retry_failed, progress=progress, pack=pack)  # fmt: skip
    if hosts.is_writer:
        measured = from_report(plan, report)
        if measured:
            source = f"measured by sweep {plan.config.sweep.name!r} here, over its runs' training wall time"
            remember(plan.config.sweep.flop_convention, measured, source)
        say("\n" + format_summary(ResultsStore(out).rows()))
        sys.stdout.flush()
    return report
