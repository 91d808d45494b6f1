"""`scaling optimal FIT.json --flops C [C ...] [--k K] [--json OUT]`: the compute-optimal
parameters N_opt, tokens D_opt, tokens per parameter and loss at each budget C from a
fitted Chinchilla law (Approach 3: N_opt = G·(C/k)^a, D_opt = (C/k)^b / G), with
bootstrap intervals when the fit was bootstrapped. k defaults to the fit's FLOP
convention (6 for C = 6·N·D)."""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    p = subparsers.add_parser("optimal", help="compute-optimal N and D at given FLOPs from a fitted law",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("fit", help="fit JSON written by `scaling fit --json`")
    p.add_argument("--flops", nargs="+", required=True, metavar="C", help="compute budget(s) in FLOPs")
    p.add_argument("--k", type=float, default=None, help="FLOPs per parameter per token (default: the fit's, 6)")
    p.add_argument("--level", type=float, default=None, help="interval level (default: the fit's)")
    p.add_argument("--json", default=None, metavar="OUT", help="write the numbers as JSON")
    p.set_defaults(func=run)


def run(args) -> int:
    import numpy as np

    from scaling.analysis.optimal import compute_optimal
    from scaling.cli._analysis import jsonable, positive_floats, print_rows, read_fit, write_json

    fit = read_fit(args.fit)
    flops = np.asarray(positive_floats(args.flops, "flops"))
    out = compute_optimal(fit, flops, k=args.k, level=args.level)
    cols = [c for c in ("flops", "params", "params_lo", "params_hi", "tokens", "tokens_lo", "tokens_hi",
                        "tokens_per_param", "loss", "loss_lo", "loss_hi") if c in out]  # fmt: skip
    rows = [{c: float(out[c][i]) for c in cols} for i in range(len(flops))]
    print_rows(rows, cols)
    line = f"N_opt ∝ C^{out['a']:.4f}, D_opt ∝ C^{out['b']:.4f}"
    if "a_lo" in out:
        line = (
            f"N_opt ∝ C^{out['a']:.4f} [{out['a_lo']:.4f}, {out['a_hi']:.4f}], "
            f"D_opt ∝ C^{out['b']:.4f} [{out['b_lo']:.4f}, {out['b_hi']:.4f}]"
        )
    print(line)
    if args.json:
        scalars = {k: out[k] for k in ("a", "b", "G", "a_lo", "a_hi", "b_lo", "b_hi") if k in out}
        write_json(
            args.json,
            {"law": fit.law, "k": fit.k if args.k is None else args.k, **jsonable(scalars), "optimal": jsonable(rows)},
        )
    return 0
