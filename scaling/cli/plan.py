"""`scaling plan FILE.toml`: print a sweep's runs without training.

Shows each run's id, size (width, depth, N), tokens D, budget C, tokens per parameter,
batch, steps, learning rate and an estimated time, then the total FLOPs (for a WSD plan,
the saving over independent runs; for a horizons plan, what its runs would cost as WSD
cooldown branches instead). The time estimate uses --throughput, else a
FLOP/s measured on this machine earlier (--calibrate, or the last sweep trained here).
An isoflop plan also reports the bias its grid's spacing alone would put into the
Approach 2 exponents (on the fit of --results' runs, else an assumed surface).

--next K --target-flops C [--results DIR]: the K planned runs not yet done that most
shrink the predictive interval at C per FLOP (see scaling.cli.plan_next); --budget-flops B
plans B FLOPs as a whole and prints the bound any design within B obeys.
"""

from __future__ import annotations

import argparse


def add_config_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", help="sweep config (TOML), e.g. experiments/quickstart.toml")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override a config value (a TOML literal); repeatable",
    )


def add_track_arg(p: argparse.ArgumentParser) -> None:
    from scaling.train.tracking import TRACK_BACKENDS

    p.add_argument(
        "--track",
        action="append",
        default=[],
        choices=TRACK_BACKENDS,
        help="mirror metrics live to this tracker (track.backends; repeatable; needs the "
        "scaling[tensorboard] / scaling[wandb] extra)",
    )


def track_overrides(args) -> list[str]:
    """--track flags as a track.backends override ([] when none given)."""
    if not getattr(args, "track", None):
        return []
    return ["track.backends=[" + ", ".join(f'"{b}"' for b in dict.fromkeys(args.track)) + "]"]


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "plan",
        help="print a sweep's planned runs (no training)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_config_args(p)
    p.add_argument(
        "--throughput",
        type=float,
        metavar="FLOP/S",
        help="training speed for the time estimates, in FLOP/s under the sweep's FLOP convention",
    )
    p.add_argument(
        "--calibrate",
        action="store_true",
        help="time a few training steps of one planned model here (and cache the result)",
    )
    p.add_argument(
        "--next",
        type=int,
        metavar="K",
        help="propose the K runs that most shrink the interval at --target-flops per FLOP",
    )
    p.add_argument("--target-flops", type=float, metavar="C", help="the budget the --next design targets")
    p.add_argument("--results", metavar="DIR", help="finished runs for --next (default results/<sweep name>)")
    p.add_argument("--quantity", choices=("loss", "params"), default="loss", help="--next shrinks the interval of this")
    p.add_argument(
        "--budget-flops",
        type=float,
        metavar="B",
        help="--next plans B FLOPs as a whole (relaxed optimal design) and prints the bound any design within B obeys",
    )
    p.set_defaults(func=run)


def run(args) -> int:
    from scaling.sweep import load_sweep_config, plan_sweep
    from scaling.sweep.report import format_plan
    from scaling.sweep.throughput import resolve

    cfg = load_sweep_config(args.config, args.overrides)
    tuning = None
    if cfg.hparams.lr == "tuned":  # two phases: the LR grid at the smallest budget, then every budget
        from scaling.sweep.lr_tuning import shapes_plan, tuning_plan

        tuning, plan = tuning_plan(cfg), shapes_plan(cfg)
    else:
        plan = plan_sweep(cfg)
    if args.next is not None or args.target_flops is not None or args.budget_flops is not None:
        from scaling.cli.plan_next import next_runs

        if args.next is None or args.target_flops is None:
            raise ValueError("--next K and --target-flops C go together (and --budget-flops B needs both)")
        if args.next < 1:
            raise ValueError(f"--next={args.next} must be a positive number of runs")
        print(next_runs(plan, args.next, args.target_flops, args.results, args.quantity, args.budget_flops))
        return 0
    if args.throughput is not None and not args.throughput > 0:
        raise ValueError(f"--throughput={args.throughput} must be a positive FLOP/s")
    if args.calibrate:
        from scaling.runtime import enable_compilation_cache

        enable_compilation_cache()
    rate, source = resolve(plan, args.throughput, args.calibrate)
    if tuning is not None:
        print(format_plan(tuning, rate, source))
        print()
    print(format_plan(plan, rate, source))
    from scaling.cli.plan_next import grid_bias_report

    bias = grid_bias_report(plan, args.results)
    if bias:
        print(bias)
    return 0
