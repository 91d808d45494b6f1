"""Figure 9: reliability of the extrapolation intervals on published scaling data.

Nominal level against the empirical coverage of held-out larger runs, one line per
family of ``../shared/reference_data`` (Porian x15, Gadre x3, Epoch's Chinchilla
points, (Mis)Fitting, Step Law, Gemstones): (a) the predictive interval of a new run
(bootstrap + noise + misspecification calibrated inside the fit data, the default of
``predict_loss``), (b) the law-only bootstrap band (``interval="law"``). On the
diagonal an interval covers what it promises; below it, it over-promises.

Data: ``results/calibration/splits/*.csv``, written by ``experiments/calibration.py``
(RESULTS_DIR/calibration/ is used instead when it exists).

    python paper_figures/fig9_calibration.py [RESULTS_DIR] [--out DIR]
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from scaling.plotting import MissingInput, paper_style, save
from scaling.plotting.figure import REPO, figure, run_script

NAME = "fig9_calibration"
COLORS = ("#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d")
MARKERS = ("o", "s", "^", "D", "v", "P", "X")


def calibration_points(results_dir: Path) -> pd.DataFrame:
    """The per-split tables of RESULTS_DIR/calibration, else the committed results/calibration."""
    for d in (Path(results_dir) / "calibration", REPO / "results" / "calibration"):
        files = sorted((d / "splits").glob("*.csv"))
        if files:
            return pd.concat([pd.read_csv(f) for f in files], ignore_index=True)
    raise MissingInput("results/calibration/splits/*.csv not found (run experiments/calibration.py)")


@figure(NAME)
def make(results_dir, out_dir):
    pts = calibration_points(results_dir)
    families = sorted(pts["family"].unique())
    with paper_style():
        fig, axes = plt.subplots(1, 2, figsize=(8.0, 3.8), sharey=True)
        for ax, col, title in ((axes[0], "covered", "(a) predictive interval (default)"),
                               (axes[1], "law_covered", "(b) law-only bootstrap band")):  # fmt: skip
            ax.plot([0, 1], [0, 1], color="0.6", linewidth=0.8, linestyle=":")
            for i, fam in enumerate(families):
                g = pts[pts["family"] == fam]
                cov = g.groupby("level")[col].mean()
                n = int((g["level"] == g["level"].iloc[0]).sum())
                ax.plot(cov.index, cov.values, color=COLORS[i % 7], marker=MARKERS[i % 7], label=f"{fam} ({n} runs)")
            allc = pts.groupby("level")[col].mean()
            ax.plot(allc.index, allc.values, color="black", linewidth=2.0, label="all")
            ax.set_xlim(0.45, 1.0)
            ax.set_ylim(0.0, 1.02)
            ax.set_xlabel("nominal level")
            ax.set_title(title)
        axes[0].set_ylabel("coverage of held-out larger runs")
        axes[0].legend(loc="lower right", fontsize="small")
        fig.tight_layout()
        return save(fig, out_dir, NAME)


if __name__ == "__main__":
    sys.exit(run_script(make, __doc__))
