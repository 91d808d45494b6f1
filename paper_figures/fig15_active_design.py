"""Figure 15: active sweep design against a uniform IsoFLOP grid and random choice at equal FLOPs.

Every strategy starts from the pool's three smallest budgets and is judged at the uniform
grid's cumulative FLOPs (one more whole budget each). Top: the 95% calibrated predictive
interval width of the loss at the target budget (what ``predict_loss`` reports after the
refit and recalibration), against the share of the uniform grid's FLOPs spent; the dashed
line is the uniform grid's final width, the dotted one 50% of its FLOPs (the issue's
target: that width at or left of that line). Bottom: the error of the prediction against
the truth; open markers: the interval misses the truth. Third row: the noise-free quality of
each design, the target's Fisher sd on the surface (the truth, or the fit of the whole pool),
with the certified lower bound for any design at that many FLOPs (``design_bound``,
``fisher_bound.csv``: the bound for half of each uniform checkpoint's FLOPs, drawn at that
half). (a, c, e) synthetic Chinchilla
surface, median and range over noise seeds (random: over seeds and orders; a strategy run on
fewer seeds says so in the legend, and its median is not comparable with the dashed line); (b, d, f)
Porian et al.'s IsoFLOP points, the top budget held out (random: median and range over
orders).

Data: ``results/active_design/checkpoints.csv``, written by ``experiments/active_design.py``
(RESULTS_DIR/active_design/ is used instead when it exists).

    python paper_figures/fig15_active_design.py [RESULTS_DIR] [--out DIR]
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from scaling.plotting import MissingInput, paper_style, save
from scaling.plotting.figure import REPO, figure, run_script

NAME = "fig15_active_design"
STYLE = {
    "uniform": dict(color="black", marker="o", label="uniform IsoFLOP grid"),
    "random": dict(color="0.55", marker="s", label="random"),
    "active": dict(color="#d95f02", marker="^", label="active (calibrated predictive criterion)"),
    "active_relaxed": dict(color="#e7298a", marker="P", label="active, relaxed plan (convex design, rounded)"),
    "active_law": dict(color="#7570b3", marker="v", label="active (Fisher on the law band only)"),
    "active_lookahead": dict(color="#1b9e77", marker="D", label="active (batches refitted on imputed outcomes)"),
}
POOLS = (("synthetic", "synthetic surface (Chinchilla, 1% noise)"), ("porian", "Porian et al. IsoFLOP points"))


def design_dir(results_dir: Path) -> Path:
    for d in (Path(results_dir) / "active_design", REPO / "results" / "active_design"):
        if (d / "checkpoints.csv").is_file():
            return d
    raise MissingInput("results/active_design/checkpoints.csv not found (run experiments/active_design.py)")


def _panel(ax, cp: pd.DataFrame, column: str, scale: float = 1.0):
    seeds = cp.groupby("strategy")["noise_seed"].nunique()
    for strategy, st in STYLE.items():
        g = cp[(cp["strategy"] == strategy) & (cp["checkpoint"] >= 1)]
        if not len(g) or g[column].isna().all():  # e.g. design_sd of runs recorded before it existed
            continue
        label = st["label"] + (f" ({seeds[strategy]} seeds)" if seeds[strategy] < seeds.max() else "")
        by = g.groupby("checkpoint_fraction")
        x = np.array(sorted(by.groups))
        med = by[column].median().reindex(x).to_numpy() * scale
        ax.fill_between(x, by[column].min().reindex(x) * scale, by[column].max().reindex(x) * scale,
                        color=st["color"], alpha=0.15, linewidth=0)  # fmt: skip
        ax.plot(x, med, color=st["color"], linewidth=1.2, label=label)
        cov = by["covered"].mean().reindex(x).to_numpy() >= 0.5
        ax.plot(x[cov], med[cov], linestyle="none", marker=st["marker"], color=st["color"], markersize=4)
        ax.plot(x[~cov], med[~cov], linestyle="none", marker=st["marker"], markerfacecolor="white",
                color=st["color"], markersize=4)  # fmt: skip
    ax.axvline(0.5, color="0.4", linestyle=":", linewidth=0.9)
    ax.set_xscale("log")


@figure(NAME)
def make(results_dir, out_dir):
    where = design_dir(results_dir)
    cp = pd.read_csv(where / "checkpoints.csv")
    bound = pd.read_csv(where / "fisher_bound.csv") if (where / "fisher_bound.csv").is_file() else None
    rows = 3 if "design_sd" in cp.columns else 2
    with paper_style():
        fig, axes = plt.subplots(rows, 2, figsize=(9.0, 3.2 * rows), sharex="col")
        for j, (pool, title) in enumerate(POOLS):
            g = cp[cp["pool"] == pool]
            ax, axe = axes[0, j], axes[1, j]
            if not len(g):
                for a in axes[:, j]:
                    a.set_axis_off()
                continue
            _panel(ax, g, "width")
            u = g[(g["strategy"] == "uniform") & (g["checkpoint"] == g["checkpoint"].max())]
            ax.axhline(u["width"].median(), color="black", linestyle="--", linewidth=0.8)
            ax.set_yscale("log")
            ax.set_ylabel("95% predictive interval width at the target")
            ax.set_title(f"({'ab'[j]}) {title}")
            _panel(axe, g, "abs_rel_error", 100.0)
            axe.set_yscale("log")
            axe.set_ylabel("|error| of the predicted loss (%)")
            axe.set_title(f"({'cd'[j]}) error at the target (open: interval misses the truth)")
            if rows == 3:
                axf = axes[2, j]
                _panel(axf, g, "design_sd")
                axf.axhline(u["design_sd"].median(), color="black", linestyle="--", linewidth=0.8)
                if bound is not None and len(b := bound[bound["pool"] == pool]):
                    axf.plot(b["fraction"] / 2, b["sd_bound_at_half"], color="#66a61e", linestyle="-.",
                             linewidth=1.2, label="lower bound, any design (design_bound)")  # fmt: skip
                    axf.legend(loc="upper right", fontsize=6.5)
                axf.set_yscale("log")
                axf.set_ylabel("Fisher sd of log L at the target")
                axf.set_title(f"({'ef'[j]}) design quality, noise-free (on the surface)")
            axes[-1, j].set_xlabel("FLOPs added / the uniform grid's total")
        axes[0, 0].legend(loc="upper right", fontsize=6.5)
        fig.tight_layout()
        return save(fig, out_dir, NAME)


if __name__ == "__main__":
    sys.exit(run_script(make, __doc__))
