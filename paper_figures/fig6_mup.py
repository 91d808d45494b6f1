"""Figure 6: muP against the standard parameterization (SP).

Top: the coordinate check: the RMS of each activation after a few Adam steps at a
large learning rate, against width. Under muP it does not change with width; under SP
the logits and the residual stream grow with it. Bottom: learning-rate transfer: final
eval loss against peak learning rate for several widths; under muP the best learning
rate (stars) stays put as width grows, under SP it moves.

Data: ``results/mup/{coord_check.csv,lr_transfer.csv}``, written by
``experiments/mup_check.py`` (RESULTS_DIR/mup/ is used instead when it exists).

    python paper_figures/fig6_mup.py [RESULTS_DIR] [--out DIR]
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from scaling.plotting import LABELS, MissingInput, paper_style, save
from scaling.plotting.figure import REPO, figure, run_script

NAME = "fig6_mup"
TITLES = {"sp": "SP", "mup": "muP"}
ACT_COLORS = ("#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02")
ACT_MARKERS = ("o", "s", "^", "D", "v", "P")
ACT_STYLES = ("-", "--", "-.", ":", "-", "--")
WIDTH_MARKERS = ("o", "s", "^", "D", "v", "P")


def mup_dir(results_dir: Path) -> Path:
    """RESULTS_DIR/mup when it holds the tables, else the committed results/mup."""
    for d in (Path(results_dir) / "mup", REPO / "results" / "mup"):
        if (d / "coord_check.csv").is_file() and (d / "lr_transfer.csv").is_file():
            return d
    raise MissingInput("results/mup/{coord_check,lr_transfer}.csv not found (run experiments/mup_check.py)")


def act_order(name: str) -> tuple:
    if name.startswith("block_"):
        return (1, int(name.split("_")[1]))
    return (0 if name == "embedding" else 2, 0)


def act_label(name: str) -> str:
    if name.startswith("block_"):
        return f"residual after block {int(name.split('_')[1]) + 1}"
    return {"embedding": "token embedding", "logits": "logits"}.get(name, name)


@figure(NAME)
def make(results_dir, out_dir):
    d = mup_dir(results_dir)
    coord = pd.read_csv(d / "coord_check.csv")
    lr = pd.read_csv(d / "lr_transfer.csv")
    last = int(coord["step"].max())
    acts = sorted(coord["activation"].unique(), key=act_order)  # embedding, blocks, logits
    widths = sorted(lr["width"].unique())
    wcmap = plt.get_cmap("cividis")
    wcolor = {w: wcmap(0.85 * i / max(1, len(widths) - 1)) for i, w in enumerate(widths)}

    with paper_style():
        fig, axes = plt.subplots(2, 2, figsize=(8.0, 6.4), sharey="row")
        for j, param in enumerate(("sp", "mup")):
            ax = axes[0, j]
            c = coord[(coord["parameterization"] == param) & (coord["step"] == last)]
            mean = c.groupby(["activation", "width"])["rms"].mean()
            for i, a in enumerate(acts):
                s = mean.loc[a]
                ax.plot(
                    s.index,
                    s.values,
                    color=ACT_COLORS[i % 6],
                    marker=ACT_MARKERS[i % 6],
                    linestyle=ACT_STYLES[i % 6],
                    label=act_label(a),
                )
            ax.set_xscale("log", base=2)
            ax.set_yscale("log")
            ax.set_xlabel(LABELS["width"])
            ax.set_title(f"({'ab'[j]}) coordinate check, {TITLES[param]}: after {last} Adam steps")
            if j == 0:
                ax.set_ylabel(LABELS["rms"] + f" (mean of {c['seed'].nunique()} seeds)")
                ax.legend(loc="upper left")

            ax = axes[1, j]
            sub = lr[lr["parameterization"] == param]
            for i, w in enumerate(widths):
                s = sub[sub["width"] == w].sort_values("lr")
                ax.plot(s["lr"], s["eval_loss"], color=wcolor[w], marker=WIDTH_MARKERS[i % 6], label=f"width {w}")
                ok = s[np.isfinite(s["eval_loss"])]
                if len(ok):
                    best = ok.loc[ok["eval_loss"].idxmin()]
                    ax.plot(
                        [best["lr"]],
                        [best["eval_loss"]],
                        marker="*",
                        markersize=12,
                        color=wcolor[w],
                        markeredgecolor="black",
                        markeredgewidth=0.6,
                        linestyle="none",
                        zorder=5,
                    )
            ax.set_xscale("log", base=2)
            ax.set_xlabel(LABELS["lr"])
            ax.set_title(f"({'cd'[j]}) learning-rate transfer, {TITLES[param]}")
            if j == 0:
                ax.set_ylabel(LABELS["loss"])
                ax.legend(loc="upper center", ncol=2)
        finite = lr["eval_loss"][np.isfinite(lr["eval_loss"])]
        lo = finite.min()
        axes[1, 0].set_ylim(lo - 0.05, min(finite.max(), lo + 1.2) + 0.05)
        fig.tight_layout()
        return save(fig, out_dir, NAME)


if __name__ == "__main__":
    sys.exit(run_script(make, __doc__))
