"""Regenerate every figure in this folder (``fig*.py``) from one results directory.

    python paper_figures/make_all.py [RESULTS_DIR] [--out DIR] [--only fig1,fig3]
    scaling figures [RESULTS_DIR] [--out DIR] [--only fig1,fig3]      # the same

Each figure writes NAME.png and NAME.pdf; a figure whose inputs are absent is skipped
with a printed note. The same inputs give byte-identical files. The analyses the
figures share (IsoFLOP, envelope, parametric fit and bootstrap) run once.
"""

from __future__ import annotations

import importlib.util
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def figure_scripts(only: str | None = None) -> list[Path]:
    """The figure scripts, in numeric order; ``only``: comma-separated names or prefixes
    ending at an underscore (fig1 is fig1_isoflop, not fig10_...)."""
    scripts = sorted(HERE.glob("fig*.py"), key=_order)
    if only:
        wanted = [w.strip() for w in only.split(",") if w.strip()]
        unknown = [w for w in wanted if not any(_matches(p.stem, w) for p in scripts)]
        if unknown:
            raise ValueError(
                f"no figure named {', '.join(unknown)}; the figures are {', '.join(p.stem for p in scripts)}"
            )
        scripts = [p for p in scripts if any(_matches(p.stem, w) for w in wanted)]
    return scripts


def _order(path: Path) -> tuple:
    number = path.stem[3:].split("_")[0]
    return (int(number) if number.isdigit() else 10**6, path.stem)


def _matches(stem: str, wanted: str) -> bool:
    return stem == wanted or stem.startswith(wanted if wanted.endswith("_") else wanted + "_")


def load(script: Path):
    spec = importlib.util.spec_from_file_location(f"paper_figures.{script.stem}", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def make_all(results_dir, out_dir, *, only: str | None = None, verbose: bool = True) -> dict[str, list[Path]]:
    """Run every figure's ``make``; returns {figure name: written paths} ([] = skipped)."""
    made = {}
    for script in figure_scripts(only):
        t0 = time.perf_counter()
        paths = load(script).make(Path(results_dir), Path(out_dir))
        made[script.stem] = paths
        if verbose and paths:
            print(f"{script.stem}: {', '.join(p.name for p in paths)} ({time.perf_counter() - t0:.1f} s)", flush=True)
    return made


def main(argv: list[str] | None = None) -> int:
    import argparse

    from scaling.plotting.figure import add_dir_args, resolve_dirs

    p = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    add_dir_args(p)
    p.add_argument("--only", default=None, help="comma-separated figure names or prefixes (fig1,fig3)")
    args = p.parse_args(argv)
    try:
        results, out = resolve_dirs(args.results_dir, args.out)
    except FileNotFoundError as err:
        p.error(str(err))
    from scaling.runtime import enable_compilation_cache

    enable_compilation_cache()
    made = make_all(results, out, only=args.only)
    done = sum(bool(v) for v in made.values())
    print(f"{done} of {len(made)} figures written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
