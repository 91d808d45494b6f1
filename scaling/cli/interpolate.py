"""`scaling interpolate`: the loss along the straight line between two checkpoints, and
checkpoint averaging.

  scaling interpolate CKPT_A CKPT_B [--points 11] [--range -0.5 1.5] [--json OUT]
      Held-out loss at θ(t) = (1 − t)·θ_a + t·θ_b for `--points` values of t evenly spaced
      over `--range` (t outside [0, 1] extrapolates), and the barrier: the largest excess over
      t in [0, 1] of the loss above the straight line between the two endpoint losses (the
      endpoints are always evaluated). Losses are nats per token on the validation batches
      that CKPT_A's trainer evaluated with.

  scaling interpolate PRE FT --eval-data NAME=SOURCE ... [--rule constrained|weighted]
                     [--target NAME] [--keep NAME] [--epsilon EPS] [--weights NAME=W ...]
      The pre-trained <-> fine-tuned path on several validation sets at once: the loss at
      θ(t) on each set (default --range 0 1), the Pareto front over the sets, and the best t
      by a stated rule: "constrained" (default): the lowest loss on --target (default: the
      last set) with the loss on --keep (default: the first) at most --epsilon nats (default
      0.02) above its t = 0 value; "weighted": the lowest --weights-weighted mean (default
      equal). SOURCE: a run directory (the validation batches its trainer evaluated with),
      "stdlib" (the default corpus), or text files / a directory / a glob (byte tokens).
      Reports the forgetting at t = 1 on --keep and the gain on --target at the best t.

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
  scaling interpolate runs/pre@600 runs/ft@300 --eval-data pre=runs/pre ft=runs/ft --epsilon 0.05
  scaling interpolate average runs/tiny --last 3
  scaling interpolate average runs/tiny --ema 0.8 --json ema.json
"""

from __future__ import annotations

import argparse

AVERAGE = "average"
_PATH_ONLY = ("points", "range")
_AVERAGE_ONLY = ("last", "steps", "ema")
_EVAL_DATA_ONLY = ("rule", "target", "keep", "epsilon", "weights")


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
    g = p.add_argument_group("several validation sets (PRE FT --eval-data ...)")
    g.add_argument("--eval-data", nargs="+", default=None, metavar="NAME=SOURCE", help="named validation sets")
    g.add_argument("--rule", default=None, choices=("constrained", "weighted"), help="how the best t is chosen")
    g.add_argument("--target", default=None, metavar="NAME", help="constrained: the set to improve (default: last)")
    g.add_argument("--keep", default=None, metavar="NAME", help="constrained: the set to keep (default: first)")
    g.add_argument("--epsilon", type=float, default=None, metavar="EPS", help="constrained: allowed rise (nats)")
    g.add_argument("--weights", nargs="+", default=None, metavar="NAME=W", help="weighted: per-set weights")
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


def _parse_weights(items):
    if items is None:
        return None
    out = {}
    for item in items:
        name, sep, value = item.partition("=")
        try:
            out[name.strip()] = float(value)
        except ValueError:
            sep = ""
        if not sep or not name.strip():
            raise ValueError(f"--weights {item!r}: expected NAME=W (e.g. pre=1)")
    return out


def _reject(args, names, mode: str) -> None:
    given = [f"--{n.replace('_', '-')}" for n in names if getattr(args, n, None) is not None]
    if given:
        raise ValueError(f"{', '.join(given)} {'does' if len(given) == 1 else 'do'} not apply to {mode}")


def run(args) -> int:
    mesh = _parse_mesh(args.mesh)
    eval_data = getattr(args, "eval_data", None)
    if eval_data is None:
        _reject(args, _EVAL_DATA_ONLY, "a path without --eval-data")
    if args.targets[0] == AVERAGE and len(args.targets) == 2:
        _reject(args, _PATH_ONLY + ("eval_data",), "`scaling interpolate average`")
        steps = _parse_steps(args.steps)
        kind = "average"
    elif len(args.targets) == 2:
        _reject(args, _AVERAGE_ONLY, "a path between two checkpoints (did you mean `scaling interpolate average`?)")
        points = 11 if args.points is None else args.points
        default_range = (-0.5, 1.5) if eval_data is None else (0.0, 1.0)
        t_range = default_range if args.range is None else tuple(args.range)
        from scaling.interpolate.path import grid

        grid(points, t_range)  # bad grid: fail before JAX starts
        kind = "path"
        if eval_data is not None:
            from scaling.interpolate.tradeoff import check_rule, parse_eval_data

            sets = parse_eval_data(eval_data)
            weights = _parse_weights(args.weights)
            check_rule(sets, args.rule or "constrained", args.target, args.keep, args.epsilon, weights)
            kind = "tradeoff"
    else:
        raise ValueError(f"expected CKPT_A CKPT_B or `average RUN_DIR`, got {' '.join(args.targets)!r}")

    from scaling.train.distributed import initialize

    initialize()
    from scaling.runtime import enable_compilation_cache

    enable_compilation_cache()
    import jax

    if kind == "tradeoff":
        from scaling.interpolate.tradeoff import tradeoff

        result = tradeoff(
            args.targets[0],
            args.targets[1],
            sets,
            points=points,
            t_range=t_range,
            rule=args.rule or "constrained",
            target=args.target,
            keep=args.keep,
            epsilon=args.epsilon,
            weights=weights,
            mesh=mesh,
        )
    elif kind == "path":
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
