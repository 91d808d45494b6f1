"""`scaling fit DATA.csv|RESULTS_DIR --law chinchilla [--n-boot N] [--json OUT]`:
fit a scaling law (Huber on log loss, L-BFGS from a grid of starts) and print it.

DATA is a CSV (or Parquet) table with columns params, tokens and/or flops, loss (names
set by --params-col etc.), or a results directory of the sweep runner (its runs.csv:
params_nonembedding, eval_loss, status == "done"). Missing tokens come from
D = C/(k·N), missing flops from C = k·N·D, with k from --convention. The
data_constrained law also needs unique_tokens (or epochs, from which it is derived).

The JSON has: law, params (for chinchilla E, A, B, alpha, beta), objective, n_points,
converged, warnings, intervals (parameter -> [low, high], when bootstrapped), plus the fit's
diagnostics and, when bootstrapped, the resampled parameters (which `scaling predict`
and `scaling optimal` use for intervals).
"""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    p = subparsers.add_parser("fit", help="fit a scaling law (chinchilla, kaplan, power_*) to a table of runs",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("data", help="CSV/Parquet file or results directory")
    p.add_argument("--law", default="chinchilla", help="law name (default: chinchilla)")
    p.add_argument("--params-col", default=None, help="column of parameter counts N (default: params)")
    p.add_argument("--tokens-col", default=None, help="column of training tokens D (default: tokens)")
    p.add_argument("--flops-col", default=None, help="column of training FLOPs C (default: flops)")
    p.add_argument("--loss-col", default=None, help="column of final losses (default: loss)")
    p.add_argument(
        "--convention",
        default=None,
        help="FLOPs per parameter per token, e.g. 6N or 6 (default: a results directory's "
        "recorded convention, else 6N)",
    )
    p.add_argument("--method", default="lbfgs", choices=["lbfgs", "varpro"], help="fitting method (default: lbfgs)")
    p.add_argument("--delta", type=float, default=1e-3, help="Huber delta on log residuals (default: 1e-3)")
    p.add_argument("--n-boot", type=int, default=0, metavar="N", help="bootstrap resamples for intervals (default: 0)")
    p.add_argument(
        "--bootstrap-start",
        default="optimum",
        choices=["optimum", "grid"],
        help="start each refit at the full-data optimum (default) or search the whole grid",
    )
    p.add_argument(
        "--exponent-min",
        type=float,
        default=None,
        metavar="LO",
        help="keep the law's exponents (alpha, beta, ...) >= LO, e.g. 0 so the law falls with N and D; "
        "the bootstrap refits keep the bound (default: unbounded)",
    )
    p.add_argument("--level", type=float, default=0.95, help="interval level (default: 0.95)")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed (default: 0)")
    p.add_argument("--json", default=None, metavar="OUT", help="write the fit as JSON")
    p.add_argument(
        "--skip-bad-lines",
        action="store_true",
        help="drop CSV rows whose field count differs from the header's, with a warning that counts them "
        "(default: such a row is an error naming the file and line)",
    )
    p.set_defaults(func=run)


def run(args) -> int:
    from scaling.analysis.fit import fit_law
    from scaling.analysis.laws import get_law
    from scaling.analysis.table import load_table
    from scaling.cli._analysis import write_json

    law = get_law(args.law)  # fails early, listing the known laws
    from scaling.runtime import enable_compilation_cache

    enable_compilation_cache()  # the batched L-BFGS compiles per law and data size: ~10 s saved per call
    if args.n_boot < 0:
        raise ValueError(f"--n-boot must be >= 0; got {args.n_boot}")
    if not 0 < args.level < 1:
        raise ValueError(f"--level must be in (0, 1); got {args.level}")
    df = load_table(args.data, params_col=args.params_col, tokens_col=args.tokens_col, flops_col=args.flops_col,
                    loss_col=args.loss_col, convention=args.convention,
                    bad_lines="warn" if args.skip_bad_lines else "error")  # fmt: skip
    if "unique_tokens" in law.inputs:
        from scaling.analysis.data_constrained import with_unique_tokens

        df = with_unique_tokens(df)  # checked counts, or derived from an 'epochs' column; else an error naming both
    fit = fit_law(df, law, delta=args.delta, method=args.method, exponent_min=args.exponent_min)
    if args.n_boot:
        from scaling.analysis.uncertainty import bootstrap

        fit = bootstrap(
            df, fit=fit, n_boot=args.n_boot, seed=args.seed, level=args.level, start=args.bootstrap_start
        ).fit
    print(fit.summary())
    if fit.bootstrap is not None:
        se = fit.bootstrap.se()
        print(
            "bootstrap: "
            + f"{fit.bootstrap.n_boot} resamples of {fit.bootstrap.unit}; standard errors "
            + ", ".join(f"{k} {v:.4g}" for k, v in se.items())
        )
        for w in fit.bootstrap.warnings:
            print(f"warning: {w}")
    if fit.calibration is not None:
        print(fit.calibration.summary())
        for w in fit.calibration.warnings:
            print(f"warning: {w}")
    if args.json:
        write_json(args.json, fit.to_dict())
    return 0
