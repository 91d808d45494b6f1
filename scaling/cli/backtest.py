"""`scaling backtest DATA (--cutoff-flops C | --holdout-budgets K | --holdout-params N)`:
fit the law on the smaller runs, predict the larger ones, and say how good the
predictions and their intervals were.

--cutoff-flops C: fit on runs with FLOPs <= C; --holdout-budgets K: hold out the K
largest compute budgets (FLOPs grouped in log space, 10% tolerance); --holdout-params N:
hold out every run with N or more parameters.

Prints one row per held-out run (observed, predicted, the interval at --level, its
absolute relative error) and a summary: mean ARE, mean signed error (predicted/observed
- 1), coverage at 50/80/90/95%, and the median relative half-width of the --level
interval (sharpness). The interval is the predictive interval of a new run
(bootstrap + noise + misspecification calibrated inside the fit data) unless
--interval law asks for the law's bootstrap band only.
"""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    p = subparsers.add_parser("backtest", help="fit on small runs, predict the large ones: errors and coverage",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("data", help="CSV/Parquet file or results directory")
    split = p.add_mutually_exclusive_group(required=True)
    split.add_argument("--cutoff-flops", type=float, default=None, metavar="C", help="fit on runs with FLOPs <= C")
    split.add_argument("--holdout-budgets", type=int, default=None, metavar="K", help="hold out the K largest budgets")
    split.add_argument("--holdout-params", type=float, default=None, metavar="N", help="hold out runs with >= N params")
    p.add_argument("--law", default="chinchilla", help="law name (default: chinchilla)")
    p.add_argument("--convention", default=None, help="FLOPs per parameter per token, e.g. 6N (default: 6N)")
    p.add_argument("--n-boot", type=int, default=200, metavar="R", help="bootstrap resamples (default: 200)")
    p.add_argument("--level", type=float, default=0.9, help="interval level printed per run (default: 0.9)")
    p.add_argument("--interval", default="predictive", choices=["predictive", "law"],
                   help="predictive (default: a new run's loss) or law (the law's bootstrap band only)")  # fmt: skip
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed (default: 0)")
    p.add_argument("--json", default=None, metavar="OUT", help="write points and summary as JSON")
    p.set_defaults(func=run)


def run(args) -> int:
    from scaling.analysis.extrapolate import backtest
    from scaling.analysis.laws import get_law
    from scaling.analysis.table import load_table
    from scaling.cli._analysis import jsonable, print_rows, write_json
    from scaling.runtime import enable_compilation_cache

    law = get_law(args.law)
    if not 0 < args.level < 1:
        raise ValueError(f"--level must be in (0, 1); got {args.level}")
    if args.n_boot < 0:
        raise ValueError(f"--n-boot must be >= 0; got {args.n_boot}")
    enable_compilation_cache()
    df = load_table(args.data, convention=args.convention)
    bt = backtest(df, args.cutoff_flops, law, holdout_budgets=args.holdout_budgets,
                  holdout_params=args.holdout_params, n_boot=args.n_boot, level=args.level,
                  interval=args.interval, seed=args.seed)  # fmt: skip
    cols = [c for c in ("params", "tokens", "flops", "loss", "pred", "pred_lo", "pred_hi", "abs_rel_error")
            if c in bt.points]  # fmt: skip
    print_rows(bt.points[cols].to_dict("records"), cols)
    print(
        f"fit on {bt.n_fit} runs ({bt.split}), predicted {bt.n_test}: mean ARE {100 * bt.mean_abs_rel_error:.2f}%, "
        f"mean signed error {100 * bt.mean_signed_error:+.2f}%"
    )
    if bt.coverage_by_level:
        cov = ", ".join(f"{int(round(100 * k))}%: {100 * v:.0f}%" for k, v in bt.coverage_by_level.items())
        print(
            f"{bt.interval} interval: coverage {cov}; median relative half-width at "
            f"{int(round(100 * bt.level))}%: {100 * bt.median_rel_halfwidth:.2f}%"
        )
    if bt.fit is not None and bt.fit.calibration is not None:
        print(bt.fit.calibration.summary())
    for w in bt.warnings:
        print(f"warning: {w}")
    if args.json:
        write_json(args.json, {"summary": jsonable(bt.to_dict()), "points": jsonable(bt.points.to_dict("list"))})
    return 0
