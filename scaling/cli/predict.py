"""`scaling predict FIT.json --params N --tokens D [--json OUT]` (or `--flops C` for a
one-variable law of C, or a law of N and D at its compute-optimal allocation): print the
fitted law's loss, with an interval when the fit was bootstrapped: by default the
predictive interval of a new run's observed loss (bootstrap + run-to-run noise +
misspecification growing with the extrapolation distance, calibrated on the fit's own
data by `scaling fit --n-boot N`); --interval law gives the law's bootstrap band only.
Several values per flag broadcast (e.g. --params 1e9 1e10 --tokens 2e10)."""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    p = subparsers.add_parser("predict", help="predict loss from a fitted law (FIT.json from `scaling fit --json`)",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("fit", help="fit JSON written by `scaling fit --json`")
    p.add_argument("--params", nargs="+", default=None, metavar="N", help="parameter count(s)")
    p.add_argument("--tokens", nargs="+", default=None, metavar="D", help="training tokens")
    p.add_argument("--flops", nargs="+", default=None, metavar="C", help="training FLOPs")
    p.add_argument("--level", type=float, default=None, help="interval level (default: the fit's)")
    p.add_argument("--interval", default="predictive", choices=["predictive", "law"],
                   help="predictive (default: a new run's loss) or law (the law's bootstrap band only)")  # fmt: skip
    p.add_argument("--json", default=None, metavar="OUT", help="write the numbers as JSON")
    p.set_defaults(func=run)


def run(args) -> int:
    import numpy as np

    from scaling.analysis.extrapolate import predict_loss
    from scaling.cli._analysis import jsonable, positive_floats, print_rows, read_fit, write_json

    fit = read_fit(args.fit)
    given = {k: positive_floats(getattr(args, k), k) for k in ("params", "tokens", "flops") if getattr(args, k)}
    if not given:
        raise ValueError(f"give the inputs of law {fit.law!r}: --params/--tokens/--flops")
    try:
        arrays = dict(zip(given, np.broadcast_arrays(*[np.asarray(v) for v in given.values()])))
    except ValueError:
        raise ValueError("--params/--tokens/--flops need equal numbers of values (or one)") from None
    out = predict_loss(fit, **arrays, level=args.level, interval=args.interval)
    cols = [c for c in ("params", "tokens", "flops", "loss", "loss_lo", "loss_hi") if c in out]
    n = len(np.atleast_1d(out["loss"]))
    rows = [{c: float(np.atleast_1d(out[c])[i]) for c in cols} for i in range(n)]
    print_rows(rows, cols)
    if args.json:
        write_json(args.json, {"law": fit.law, "interval": args.interval, "predictions": jsonable(rows)})
    return 0
