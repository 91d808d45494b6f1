"""`scaling train --config FILE.toml [--set section.key=value ...] --out DIR`

Trains one model (see scaling.train). Rerunning the same command on the same DIR resumes
from the last complete checkpoint, or reports that the run already finished.

Multi-host: on a TPU slice or under SLURM (several tasks) every process runs this same
command and JAX finds its peers; elsewhere pass --coordinator HOST:PORT --num-processes N
--process-id I (or SCALING_COORDINATOR / SCALING_NUM_PROCESSES / SCALING_PROCESS_ID), or
--distributed for JAX's own cluster detection (Open MPI, Kubernetes, ...).

Exit status: 0 done, 3 diverged, 1 failed, 75 preempted (SIGTERM; rerun to resume), 2 bad input.
"""

from __future__ import annotations

import json
import sys

from scaling.cli.plan import add_track_arg, track_overrides
from scaling.core.status import DIVERGED, DONE, FAILED

EXIT_CODES = {DONE: 0, FAILED: 1, DIVERGED: 3}  # preempted: 75, raised as SystemExit


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "train",
        help="train one model (resumable)",
        description=__doc__,
        formatter_class=__import__("argparse").RawDescriptionHelpFormatter,
    )
    p.add_argument("--config", required=True, help="TOML config file (or a run dir's config.json)")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help='override a config value (a TOML literal: 3e-3, true, "text", [1, 2]); repeatable',
    )
    p.add_argument("--out", required=True, help="run directory (created; rerun to resume)")
    p.add_argument("--coordinator", help="HOST:PORT of process 0, for multi-process runs")
    p.add_argument("--num-processes", type=int, help="number of processes (with --coordinator)")
    p.add_argument("--process-id", type=int, help="this process's index (with --coordinator)")
    p.add_argument(
        "--distributed",
        action="store_true",
        help="call jax.distributed.initialize() with JAX's cluster auto-detection (MPI, k8s, ...)",
    )
    p.add_argument(
        "--local-devices", type=int, help="CPU devices for this process (testing multi-device code on a CPU)"
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_track_arg(p)
    p.add_argument(
        "--profile",
        metavar="START:STOP",
        help="write a jax.profiler trace of steps START..STOP-1 to DIR/profile (train.profile_steps)",
    )
    p.set_defaults(func=run)


def run(args) -> int:
    from scaling.train.config import load_config

    overrides = list(args.overrides) + (["train.progress=false"] if args.no_progress else []) + track_overrides(args)
    if args.profile:
        from scaling.train.profile import parse_window

        start, stop = parse_window(args.profile)
        overrides.append(f"train.profile_steps=[{start}, {stop}]")
    cfg = load_config(args.config, overrides)  # bad config fails before JAX starts
    from scaling.storage import Storage, is_url

    if is_url(args.out):
        Storage.at(args.out)  # a missing s3 / gcs extra fails here too
    from scaling.train.distributed import initialize

    initialize(args.coordinator, args.num_processes, args.process_id, args.local_devices, auto=args.distributed)

    from scaling.runtime import enable_compilation_cache
    from scaling.train import train

    enable_compilation_cache()
    result = train(cfg, args.out)
    import jax

    if jax.process_index() == 0:
        print(json.dumps(result.to_dict()), file=sys.stdout)
    return EXIT_CODES.get(result.status, 1)
