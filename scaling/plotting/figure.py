"""The shared shape of a figure script in ``paper_figures/``.

Each script defines ``make(results_dir, out_dir) -> list[Path]`` (empty when the
figure's inputs are absent; a note says why) and ends with ``run_script(make, __doc__)``
so that ``python paper_figures/figN_name.py [RESULTS_DIR] [--out DIR]`` works alone.
"""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Callable
from pathlib import Path

import matplotlib

from scaling.plotting.results import MissingInput

__all__ = ["DEFAULT_OUT", "DEFAULT_RESULTS", "REPO", "figure", "resolve_dirs", "run_script"]

REPO = Path(__file__).resolve().parents[2]
DEFAULT_RESULTS = REPO / "results" / "quickstart"
DEFAULT_OUT = REPO / "paper_figures" / "out"

Make = Callable[[Path, Path], list]


def resolve_dirs(results_dir=None, out_dir=None) -> tuple[Path, Path]:
    """The results store to draw from (default: the committed results/quickstart) and the
    folder to draw into: paper_figures/out for the committed store, else RESULTS_DIR/figures,
    so that figures of your own sweep never overwrite the committed ones. A store without a
    runs table is an error here, before any figure is attempted."""
    results = Path(results_dir) if results_dir else DEFAULT_RESULTS
    if not any((results / f"runs{ext}").is_file() for ext in (".csv", ".parquet")):
        why = "does not exist" if not results.exists() else "has no runs.csv"
        raise FileNotFoundError(
            f"results directory {str(results)!r} {why}: give a store written by `scaling sweep` or `scaling quickstart`"
        )
    if out_dir:
        return results, Path(out_dir)
    return results, DEFAULT_OUT if results.resolve() == DEFAULT_RESULTS.resolve() else results / "figures"


matplotlib.use("Agg")  # figure scripts write files; they never open a window


def figure(name: str) -> Callable[[Make], Make]:
    """Decorate a figure's ``make``: paths become Path objects, and a MissingInput raised
    inside becomes a printed note ("NAME: skipped: why") and an empty list."""

    def wrap(fn: Make) -> Make:
        @functools.wraps(fn)
        def make(results_dir=DEFAULT_RESULTS, out_dir=DEFAULT_OUT) -> list[Path]:
            try:
                return list(fn(Path(results_dir), Path(out_dir)))
            except MissingInput as why:
                print(f"{name}: skipped: {why}")
                return []

        make.figure_name = name
        return make

    return wrap


def add_dir_args(p: argparse.ArgumentParser) -> None:
    """``[RESULTS_DIR] [--out DIR]``, shared by every figure script and make_all."""
    p.add_argument(
        "results_dir",
        nargs="?",
        default=str(DEFAULT_RESULTS),
        help=f"results directory (default: {DEFAULT_RESULTS.relative_to(REPO)})",
    )
    p.add_argument(
        "--out",
        default=None,
        help=f"output folder (default: {DEFAULT_OUT.relative_to(REPO)} for the "
        "committed results, else RESULTS_DIR/figures)",
    )


def run_script(make: Make, doc: str | None = None, argv: list[str] | None = None) -> int:
    """Command line of one figure script: ``[RESULTS_DIR] [--out DIR]``."""
    p = argparse.ArgumentParser(description=(doc or "").strip().splitlines()[0] if doc else None)
    add_dir_args(p)
    args = p.parse_args(argv)
    try:
        results, out = resolve_dirs(args.results_dir, args.out)
    except FileNotFoundError as err:
        p.error(str(err))
    for path in make(results, out):
        print(path)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit("run a script in paper_figures/ instead")
