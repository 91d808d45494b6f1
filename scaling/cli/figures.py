"""`scaling figures [RESULTS_DIR] [--out DIR] [--only fig1,fig3]`

Regenerates every paper figure (paper_figures/fig*.py) as PNG and PDF from a results
directory (default: the committed results/quickstart), into DIR (default:
paper_figures/out for the committed results, RESULTS_DIR/figures for any other store, so
your figures never overwrite the committed ones). A results directory without a runs table
is an error; a figure whose other inputs are absent (e.g. muP or interpolation results) is
skipped with a note. The same inputs give byte-identical files.
"""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "figures",
        help="regenerate the paper figures (PNG + PDF)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("results_dir", nargs="?", default=None, help="results directory (default: results/quickstart)")
    p.add_argument(
        "--out",
        default=None,
        help="output folder (default: paper_figures/out for results/quickstart, else RESULTS_DIR/figures)",
    )
    p.add_argument("--only", default=None, help="comma-separated figure names or prefixes, e.g. fig1,fig3")
    p.set_defaults(func=run)


def _make_all_module():
    import importlib.util

    from scaling.plotting.figure import REPO

    script = REPO / "paper_figures" / "make_all.py"
    if not script.is_file():
        raise FileNotFoundError(f"{script} not found: `scaling figures` runs from a checkout of the repository")
    spec = importlib.util.spec_from_file_location("paper_figures.make_all", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run(args) -> int:
    from scaling.plotting.figure import resolve_dirs

    results, out = resolve_dirs(args.results_dir, args.out)
    from scaling.runtime import enable_compilation_cache

    enable_compilation_cache()
    made = _make_all_module().make_all(results, out, only=args.only)
    print(f"{sum(bool(v) for v in made.values())} of {len(made)} figures written to {out}")
    return 0
