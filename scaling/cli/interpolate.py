"""`scaling interpolate`: the loss along the straight line between two checkpoints, and
checkpoint averaging.

  scaling interpolate CKPT_A CKPT_B [--points 11] [--range -0.5 1.5] [--json OUT]
      Held-out loss at θ(t) = (1 − t)·θ_a + t·θ_b for `--points` values of t evenly spaced
      over `--range` (t outside [0, 1] extrapolates), and the barrier: the largest excess over
      t in [0, 1] of the loss above the straight line between the two endpoint losses (the
      endpoints are always evaluated). Losses are nats per token on the validation batches
      that CKPT_A's trainer evaluated with.

  scaling interpolate average RUN_DIR [--last K | --steps S1,S2,...] [--ema DECAY] [--json OUT]
      The uniform mean of the last K saved checkpoints (or of the listed steps, or of every
      saved one), or with --ema an exponential moving average over them (oldest first,
      DECAY per saved checkpoint), evaluated against the last of them.

A CKPT is a run directory written by `scaling train` with @STEP appended (runs/tiny@900);
without @STEP (or with @latest), its latest checkpoint. Keep the steps you need with
train.keep / train.keep_eval_checkpoints / train.save_steps.

--json OUT writes (atomically) for a path: t, loss (nats/token, per t), bpb, barrier,
barrier_t, loss_a, loss_b, checkpoint_a/b {spec, run_dir, step}, step_a, step_b,
eval_tokens, eval_run, mesh, params, distance (‖θ_b − θ_a‖₂), norm_a, norm_b; for an
average: method, decay, steps, weights, loss, last_step, last_loss, improvement
(last_loss − loss), eval_tokens, mesh. (A run directory literally named "average": ./average.)

Parameters are restored onto a device mesh with the trainer's shardings (by default the
run's own mesh config, as in training; --mesh D,F,M to choose) and mixed on the devices.

Examples:
  scaling interpolate runs/tiny@800 runs/tiny@1000 --points 21 --range -0.5 1.5
  scaling interpolate runs/seed0 runs/seed1 --range 0 1 --json seeds.json
  scaling interpolate average runs/tiny --last 3
  scaling interpolate average runs/tiny --ema 0.8 --json ema.json
"""

from __future__ import annotations

import argparse

AVERAGE = "average"
_PATH_ONLY = ("points", "range")
_AVERAGE_ONLY = ("last", "steps", "ema")


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "interpolate",
        help="loss along a weight-space path between checkpoints; checkpoint averaging",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        usage="%(prog)s CKPT_A CKPT_B [--points N] [--range LO HI] [--mesh D,F,M] [--json OUT]\n"
        "       %(prog)s average RUN_DIR [--last K | --steps S1,S2,...] [--ema DECAY] "
        "[--mesh D,F,M] [--json OUT]",
    )
    p.add_argument("targets", nargs="+", metavar="CKPT", help="CKPT_A CKPT_B, or: average RUN_DIR")
    g = p.add_argument_group("path (CKPT_A CKPT_B)")
    g.add_argument("--points", type=int, default=None, help="number of values of t (default 11)")
    g.add_argument(
        "--range",
        type=float,
        nargs=2,
        default=None,
        metavar=("LO", "HI"),
        help="the range of t, ends included (default -0.5 1.5)",
    )
    g = p.add_argument_group("averaging (average RUN_DIR)")
    g.add_argument("--last", type=int, default=None, metavar="K", help="average the last K saved checkpoints")
    g.add_argument("--steps", default=None, metavar="S1,S2,...", help="average these saved steps")
    g.add_argument(
        "--ema",
        type=float,
        default=None,
        metavar="DECAY",
        help="exponential moving average with this decay per checkpoint, in [0, 1) (default: the uniform mean)",
    )
    p.add_argument(
        "--mesh",
        default=None,
        metavar="D,F,M",
        help="device mesh sizes data,fsdp,model (default: the run's own mesh config)",
    )
    p.add_argument("--json", default=None, metavar="OUT", help="also write the result as JSON (atomically)")
    p.set_defaults(func=run)


def _parse_mesh(text: str | None):
    if text is None:
        return None
    try:
        sizes = tuple(int(x) for x in text.split(","))
    except ValueError:
        sizes = ()
    if len(sizes) != 3 or any(s < 1 for s in sizes):
        raise ValueError(f"--mesh {text!r}: expected three positive sizes data,fsdp,model (e.g. 2,2,2)")
    return sizes


def _parse_steps(text: str | None):
    if text is None:
        return None
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise ValueError(f"--steps {text!r}: expected comma-separated step numbers (e.g. 400,500,600)") from None


def _reject(args, names, mode: str) -> None:
    given = [f"--{n}" for n in names if getattr(args, n) is not None]
    if given:
        raise ValueError(f"{', '.join(given)} {'does' if len(given) == 1 else 'do'} not apply to {mode}")


def run(args) -> int:
    mesh = _parse_mesh(args.mesh)
    if args.targets[0] == AVERAGE and len(args.targets) == 2:
        _reject(args, _PATH_ONLY, "`scaling interpolate average`")
        steps = _parse_steps(args.steps)
        kind = "average"
    elif len(args.targets) == 2:
        _reject(args, _AVERAGE_ONLY, "a path between two checkpoints (did you mean `scaling interpolate average`?)")
        points = 11 if args.points is None else args.points
        t_range = (-0.5, 1.5) if args.range is None else tuple(args.range)
        from scaling.interpolate.path import grid

        grid(points, t_range)  # bad grid: fail before JAX starts
        kind = "path"
    else:
        raise ValueError(f"expected CKPT_A CKPT_B or `average RUN_DIR`, got {' '.join(args.targets)!r}")

    from scaling.train.distributed import initialize

    initialize()
    from scaling.runtime import enable_compilation_cache

    enable_compilation_cache()
    import jax

    if kind == "path":
        from scaling.interpolate import interpolate

        result = interpolate(args.targets[0], args.targets[1], points=points, t_range=t_range, mesh=mesh)
    else:
        from scaling.interpolate import average

        result = average(args.targets[1], last=args.last, steps=steps, ema=args.ema, mesh=mesh)
    if jax.process_index() == 0:
        print(result.table())
        if args.json:
            from scaling.train.metrics import write_json_atomic

            write_json_atomic(args.json, result.to_dict())
    return 0
