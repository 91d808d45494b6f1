"""Figure 13: Step Law's loss landscapes over learning rate x batch size, with the optima
and the fitted hyperparameter laws (Li et al. 2025, arXiv:2503.04715).

Four (N, D) cells of the released dense grid (``dense_lr_bs_loss.csv``, ~120 runs each):
colour is the smoothed loss above the cell's best run (clipped at 5%); x the grid argmin,
star the smooth optimum (``cell_optima``: a quadratic in (log lr, log batch) around the
best points); open markers the (lr, batch) that each law puts there: the published law
(1.79·N^-0.713·D^0.307, 0.58·D^0.571), Step Law's own method rerun on the released data,
and our smooth-optimum refit. All three lie within the near-tied region of every cell,
which is why the data cannot tell them apart (results/steplaw/README.md).

Data: ``results/steplaw/{landscape_cells.csv, optima.csv, summary.json}``, written by
``experiments/steplaw.py`` (RESULTS_DIR/steplaw/ is used instead when it exists).

    python paper_figures/fig13_steplaw.py [RESULTS_DIR] [--out DIR]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from scaling.plotting import MissingInput, paper_style, save
from scaling.plotting.figure import REPO, figure, run_script

NAME = "fig13_steplaw"
SEQ_LEN = 2048  # Step Law's batch sizes are sequences of 2,048 tokens; the tables hold tokens
LAWS = {  # summary.json key -> (label, marker, colour)
    "published": ("published law", "s", "tab:red"),
    "steplaw_rerun_on_released_data": ("their method, rerun", "^", "tab:orange"),
    "smooth_refit": ("our smooth refit", "o", "tab:blue"),
}


def steplaw_dir(results_dir: Path) -> Path:
    for d in (Path(results_dir) / "steplaw", REPO / "results" / "steplaw"):
        if all((d / f).is_file() for f in ("landscape_cells.csv", "optima.csv", "summary.json")):
            return d
    raise MissingInput("results/steplaw/{landscape_cells.csv, optima.csv, summary.json} not found "
                       "(run experiments/steplaw.py)")  # fmt: skip


def law_point(law: dict, N: float, D: float) -> tuple[float, float]:
    lr, b = law["lr"], law["batch_tokens"]
    return lr["a"] * N ** lr["alpha"] * D ** lr["beta"], b["c"] * D ** b["gamma"]


@figure(NAME)
def make(results_dir, out_dir):
    d = steplaw_dir(results_dir)
    runs = pd.read_csv(d / "landscape_cells.csv")
    optima = pd.read_csv(d / "optima.csv")
    summary = json.loads((d / "summary.json").read_text())
    cells = runs.groupby(["params", "tokens"]).size().index.tolist()
    with paper_style():
        fig, axes = plt.subplots(1, len(cells), figsize=(3.6 * len(cells), 3.9), sharey=True, constrained_layout=True)
        for ax, (N, D) in zip(np.atleast_1d(axes), cells):
            g = runs[(runs["params"] == N) & (runs["tokens"] == D)]
            rel = np.clip(g["loss"] / g["loss"].min() - 1, 0, 0.05) * 100
            sc = ax.scatter(g["lr"], g["batch_size"] / SEQ_LEN, c=rel, cmap="viridis_r", s=34, marker="s",
                            vmin=0, vmax=5)  # fmt: skip
            o = optima[np.isclose(optima["params"], N, rtol=1e-5) & np.isclose(optima["tokens"], D, rtol=1e-5)]
            o = o.iloc[0]
            ax.scatter([o["argmin_lr"]], [o["argmin_batch"] / SEQ_LEN], marker="x", c="k", s=60, label="grid argmin")
            ax.scatter([o["lr"]], [o["batch_size"] / SEQ_LEN], marker="*", c="w", edgecolors="k", s=180,
                       label="smooth optimum")  # fmt: skip
            for key, (label, marker, colour) in LAWS.items():
                lr, b = law_point(summary[key], N, D)
                ax.scatter([lr], [b / SEQ_LEN], marker=marker, facecolors="none", edgecolors=colour, s=120,
                           linewidths=1.8, label=label)  # fmt: skip
            ax.set(xscale="log", yscale="log", xlabel="peak learning rate", title=f"N = {N:.3g}, D = {D:.3g}")
        np.atleast_1d(axes)[0].set_ylabel("batch size (sequences of 2,048)")
        fig.colorbar(sc, ax=axes, label="loss above the cell's best (%, clipped at 5)")
        handles, labels = np.atleast_1d(axes)[0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="outside lower center", ncol=5, fontsize="small")
        return save(fig, out_dir, NAME)


if __name__ == "__main__":
    sys.exit(run_script(make, __doc__))
