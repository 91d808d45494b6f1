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

__all__ = ["DEFAULT_OUT", "DEFAULT_RESULTS", "REPO", "figure", "run_script"]

REPO = Path(__file__).resolve().parents[2]
DEFAULT_RESULTS = REPO / "results" / "quickstart"
DEFAULT_OUT = REPO / "paper_figures" / "out"

Make = Callable[[Path, Path], list]

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


def run_script(make: Make, doc: str | None = None, argv: list[str] | None = None) -> int:
    """Command line of one figure script: ``[RESULTS_DIR] [--out DIR]``."""
    p = argparse.ArgumentParser(description=(doc or "").strip().splitlines()[0] if doc else None)
    p.add_argument("results_dir", nargs="?", default=str(DEFAULT_RESULTS),
                   help=f"results directory (default: {DEFAULT_RESULTS.relative_to(REPO)})")
    p.add_argument("--out", default=str(DEFAULT_OUT), help=f"output folder (default: {DEFAULT_OUT.relative_to(REPO)})")
    args = p.parse_args(argv)
    for path in make(Path(args.results_dir), Path(args.out)):
        print(path)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit("run a script in paper_figures/ instead")
