"""`scaling fit-hparams DATA.csv|RESULTS_DIR [--out laws.json] [--n-boot N]`: fit the
optimal learning rate and batch size as power laws of N and D from an lr x batch grid.

A command of its own rather than a `scaling fit --law` mode: its input is a grid of runs
per (N, D) cell (lr and batch columns beside the loss), its first step is per-cell optima,
and its output is a pair of laws (an HparamLaws file), not one loss-law fit.

DATA is a results directory of the sweep runner (a sweep.kind = "hparam_grid" store: its
hparam_grid runs, batch in sequences of the recorded seq_len) or a CSV/Parquet table with
columns for N, D, lr, batch and loss (defaults: params or N, tokens or D, lr, batch_size or
batch or bs, loss; set them with --params-col etc.). Per cell, the optimum is the minimum
of a quadratic in (log lr, log batch) fitted around the best grid points (not the raw
argmin); then eta* = a·N^alpha·D^beta (lr_nd) and B* = c·D^gamma (batch_d, or batch_nd)
are fitted with bootstrap intervals over cells. An axis with a single value in a cell is
an error; a cell whose best point is on the grid's edge is a warning naming the cell.

--out writes the HparamLaws JSON that a sweep's `[hparams] lr = "law"` / `batch_size =
"law"` reads (hparams.law_file).
"""

from __future__ import annotations

import argparse

ALIASES = {
    "params": ("params", "N"),
    "tokens": ("tokens", "D"),
    "lr": ("lr",),
    "batch": ("batch_size", "batch", "bs"),
}


def register(subparsers) -> None:
    p = subparsers.add_parser("fit-hparams", help="fit optimal-lr and optimal-batch laws to an lr x batch grid of runs",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("data", help="CSV/Parquet file or results directory")
    p.add_argument("--out", default=None, metavar="LAWS.json", help="write the HparamLaws JSON (hparams.law_file)")
    p.add_argument("--params-col", default=None, help="column of parameter counts N (default: params, else N)")
    p.add_argument("--tokens-col", default=None, help="column of training tokens D (default: tokens, else D)")
    p.add_argument("--lr-col", default=None, help="column of learning rates (default: lr)")
    p.add_argument("--batch-col", default=None, help="column of batch sizes (default: batch_size, batch or bs)")
    p.add_argument("--loss-col", default=None, help="column of final losses (default: loss; a store's eval_loss)")
    p.add_argument(
        "--batch-unit",
        default=None,
        choices=["sequences", "tokens"],
        help="unit of a CSV's batch column, in which the batch law is fitted (default: sequences); "
        "for a results directory (batches in sequences), tokens fits the law in tokens",
    )
    p.add_argument("--seq-len", type=int, default=None, help="tokens per sequence (default: a seq_len column)")
    p.add_argument("--lr-law", default="lr_nd", help="law of the optimal lr (default: lr_nd)")
    p.add_argument("--batch-law", default="batch_d", choices=["batch_d", "batch_nd"], help="default: batch_d")
    p.add_argument("--n-boot", type=int, default=1000, metavar="N", help="bootstrap resamples of cells (default 1000)")
    p.add_argument("--level", type=float, default=0.95, help="interval level (default: 0.95)")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed (default: 0)")
    p.set_defaults(func=run)


def _column(df, given: str | None, role: str, flag: str) -> str:
    if given is not None:
        if given not in df.columns:
            raise ValueError(f"{flag} {given!r}: no such column; the table has columns {list(df.columns)}")
        return given
    for name in ALIASES[role]:
        if name in df.columns:
            return name
    raise ValueError(
        f"no {role} column (looked for {list(ALIASES[role])}; name it with {flag}); "
        f"the table has columns {list(df.columns)}"
    )


def _header(path):
    """An empty frame with the file's columns (to pick the column names before loading)."""
    import pandas as pd

    if not path.is_file():
        raise FileNotFoundError(f"no such file or directory: {path}")
    if path.suffix.lower() in (".parquet", ".pq"):
        return pd.read_parquet(path).iloc[:0]
    return pd.read_csv(path, nrows=0)


def read_grid(args):
    """(table with params, tokens, loss and the lr and batch columns; their names; batch unit;
    seq_len; a note or None). The user's column names are kept so that errors name them."""
    from pathlib import Path

    import numpy as np
    import pandas as pd

    from scaling.analysis.table import load_table

    is_store = Path(args.data).is_dir()
    if is_store:
        df = load_table(args.data, loss_col=args.loss_col)
        note = None
        if "plan_kind" in df.columns and (df["plan_kind"] == "hparam_grid").any():
            kept = df["plan_kind"] == "hparam_grid"
            if not kept.all():
                note = f"using the {int(kept.sum())} hparam_grid runs of {len(df)} finished runs"
            df = df[kept].reset_index(drop=True)
    else:
        header = _header(Path(args.data))
        params = _column(header, args.params_col, "params", "--params-col")
        tokens = _column(header, args.tokens_col, "tokens", "--tokens-col")
        df = load_table(args.data, params_col=params, tokens_col=tokens, loss_col=args.loss_col)
        note = None
    lr = _column(df, args.lr_col, "lr", "--lr-col")
    batch = _column(df, args.batch_col, "batch", "--batch-col")
    seq_len = args.seq_len
    if seq_len is None and "seq_len" in df.columns:
        lens = df["seq_len"].dropna().unique()
        if len(lens) > 1:
            raise ValueError(f"the runs have several seq_len values {sorted(lens)}; give --seq-len")
        seq_len = int(lens[0]) if len(lens) else None
    if seq_len is not None and not seq_len > 0:
        raise ValueError(f"--seq-len must be positive; got {seq_len}")
    if len(df) == 0:
        raise ValueError(f"{args.data}: no finished runs to fit")
    for axis, name in (("lr", lr), ("batch", batch)):
        values = np.unique(pd.to_numeric(df[name], errors="coerce"))
        if len(values) < 2:
            raise ValueError(
                f"column {name!r} has a single value ({values[0]:.4g}) across the table: the {axis} axis of the "
                "grid needs 2+ values (3+ to locate an optimum between them)"
            )
    table = df[list(dict.fromkeys(["params", "tokens", "loss", lr, batch]))].copy()
    unit = args.batch_unit or "sequences"
    if is_store and unit == "tokens":  # a store's batch sizes are sequences: fit the law in tokens
        if seq_len is None:
            raise ValueError("--batch-unit tokens needs the runs' seq_len (give --seq-len)")
        table[batch] = table[batch] * seq_len
    return table, lr, batch, unit, seq_len, note


def provenance(args, table, lr: str, batch: str) -> dict:
    """What the law file records about its inputs: enough to tell whether a rerun saw the same runs."""
    import hashlib
    from importlib.metadata import version

    import scaling

    cols = ["params", "tokens", lr, batch, "loss"]
    rows = table[cols].sort_values(cols).to_csv(index=False, float_format="%.10g")
    return {
        "source": str(args.data),
        "columns": dict(zip(("params", "tokens", "lr", "batch", "loss"), cols)),
        "n_runs": int(len(table)),
        "runs_sha256": hashlib.sha256(rows.encode()).hexdigest(),
        "seed": int(args.seed),
        "n_boot": int(args.n_boot),
        "level": float(args.level),
        "versions": {"scaling": scaling.__version__, **{m: version(m) for m in ("jax", "numpy", "pandas")}},
    }


def run(args) -> int:
    import warnings

    from scaling.analysis.hparams import EdgeOptimumWarning, cell_optima, fit_hparam_laws
    from scaling.analysis.laws import get_law
    from scaling.cli._analysis import print_rows

    get_law(args.lr_law)  # fails early, listing the known laws
    if args.n_boot < 0:
        raise ValueError(f"--n-boot must be >= 0; got {args.n_boot}")
    if not 0 < args.level < 1:
        raise ValueError(f"--level must be in (0, 1); got {args.level}")
    table, lr, batch, unit, seq_len, note = read_grid(args)
    if note:
        print(note)
    from scaling.runtime import enable_compilation_cache

    enable_compilation_cache()
    with warnings.catch_warnings(record=True) as caught:  # printed as "warning: ..." lines after the results
        warnings.simplefilter("always")
        optima = cell_optima(table, lr=lr, batch=batch)
        laws = fit_hparam_laws(optima, lr_law=args.lr_law, batch_law=args.batch_law, n_boot=args.n_boot,
                               level=args.level, seed=args.seed, batch_unit=unit, seq_len=seq_len)  # fmt: skip
    laws.provenance = provenance(args, table, lr, batch)
    edge = [w for w in caught if issubclass(w.category, EdgeOptimumWarning)]
    other = list(dict.fromkeys(str(w.message) for w in caught if w not in edge))
    print(f"per-cell optima ({len(optima)} cells; batch in {unit}):")
    print_rows(optima.to_dict("records"),
               ["params", "tokens", "lr", "batch_size", "loss", "argmin_lr", "argmin_batch", "method", "edge"])  # fmt: skip
    print()
    print(laws.summary())
    for w in edge:
        print(f"warning: {w.message}")
    for w in other:
        print(f"warning: {w}")
    if args.out:
        from scaling.atomic import write_text

        print(f"wrote {write_text(args.out, laws.to_json() + chr(10))}")
    return 0
