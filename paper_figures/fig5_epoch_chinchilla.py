"""Figure 5: our fit of the Chinchilla law to Epoch AI's digitized Chinchilla data,
against the published parameters.

Data: ``../shared/reference_data/epoch_chinchilla_fig4/svg_extracted_data.csv`` (Hoffmann
et al. 2022, Fig. 4, digitized by Besiroglu et al. 2024; see its PROVENANCE.md), or the
folder named by ``$SCALING_REFERENCE_DATA``. As Epoch did: drop the 5 highest-loss
points, take D = C / (6N), fit L = E + A/N^α + B/D^β by Huber (δ = 1e-3) on log loss
from Hoffmann's grid of 4,500 starts (``scaling.analysis.fit.fit_law``).

(a) Observed against predicted loss for our fit. (b) Residuals log L̂ − log L of our
fit, Epoch's (E 1.82, A 482, B 2085, α 0.3478, β 0.3658) and Hoffmann et al.'s
(E 1.69, A 406.4, B 410.7, α 0.34, β 0.28), with the three parameter sets.
Skipped with a note when the data is absent. RESULTS_DIR is not used.

    python paper_figures/fig5_epoch_chinchilla.py [RESULTS_DIR] [--out DIR]
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from scaling.plotting import METHOD_STYLES, BudgetScale, MissingInput, analyses, paper_style, save
from scaling.plotting.figure import REPO, figure, run_script

NAME = "fig5_epoch_chinchilla"
DATA = Path("epoch_chinchilla_fig4") / "svg_extracted_data.csv"

PUBLISHED = {
    "epoch": dict(E=1.82, A=482.0, B=2085.0, alpha=0.3478, beta=0.3658),
    "hoffmann": dict(E=1.69, A=406.4, B=410.7, alpha=0.34, beta=0.28),
}


def reference_dir() -> Path:
    """``$SCALING_REFERENCE_DATA``, else ``../shared/reference_data`` beside the checkout."""
    env = os.environ.get("SCALING_REFERENCE_DATA")
    return Path(env) if env else REPO.parent / "shared" / "reference_data"


def load_epoch(path: Path) -> pd.DataFrame:
    """Epoch's points as (params, tokens, flops, loss), the 5 highest losses dropped."""
    if not path.is_file():
        raise MissingInput(f"Epoch AI's Chinchilla data not found at {path} (set SCALING_REFERENCE_DATA)")
    raw = pd.read_csv(path)
    loss = raw["loss"].to_numpy(float)
    keep = loss < np.sort(loss)[-5]  # Epoch's rule: drop the 5 highest-loss points
    N = raw["Model Size"].to_numpy(float)[keep]
    C = raw["Training FLOP"].to_numpy(float)[keep]
    return pd.DataFrame(dict(params=N, tokens=C / (6 * N), flops=C, loss=loss[keep]))


def chinchilla(p: dict, N, D):
    return p["E"] + p["A"] / N ** p["alpha"] + p["B"] / D ** p["beta"]


@figure(NAME)
def make(results_dir, out_dir):
    from scaling.analysis.fit import fit_law

    df = load_epoch(reference_dir() / DATA)
    fit = fit_law(df, "chinchilla", grid=analyses.QUICK_START if analyses.QUICK else None)
    sets = {"ours": fit.params, **PUBLISHED}
    N, D, L = (df[c].to_numpy(float) for c in ("params", "tokens", "loss"))
    scale = BudgetScale(df["flops"])

    with paper_style():
        fig, (ax, axr) = plt.subplots(1, 2, figsize=(8.6, 3.7), width_ratios=[1, 1.15])
        pred = chinchilla(fit.params, N, D)
        ax.scatter(pred, L, s=9, c=[scale.color(c) for c in df["flops"]], alpha=0.85, linewidths=0)
        lim = [min(L.min(), pred.min()) * 0.97, max(L.max(), pred.max()) * 1.03]
        ax.plot(lim, lim, color="black", linewidth=0.8, linestyle="--", label="$y = x$")
        ax.set_xlim(lim)
        ax.set_ylim(lim)
        ax.set_aspect("equal")
        ax.set_xlabel("Predicted loss, our fit (nats/token)")
        ax.set_ylabel("Observed final loss (nats/token)")
        ax.set_title(f"(a) our fit on {len(df)} points (Epoch AI data)")
        ax.legend(loc="upper left")
        scale.colorbar(fig, ax, label="Compute $\\log_{10} C$ (FLOPs)")

        bins = np.linspace(-0.07, 0.07, 57)
        rows = []
        for key, p in sets.items():
            r = np.log(chinchilla(p, N, D)) - np.log(L)
            st = METHOD_STYLES[key]
            axr.hist(
                r,
                bins=bins,
                histtype="step",
                color=st["color"],
                linestyle=st["linestyle"],
                linewidth=1.4,
                label=f"{st['label']}: median {np.median(r) + 0.0:+.4f}",
            )
            rows.append(
                f"{st['label']:<22} {p['E']:5.3g} {p['A']:6.4g} {p['B']:6.4g} {p['alpha']:6.4f} {p['beta']:6.4f}"
            )
        axr.axvline(0, color="0.5", linewidth=0.6)
        axr.set_xlabel("Residual $\\log \\hat L - \\log L$")
        axr.set_ylabel("Points")
        axr.set_title("(b) residuals of three parameter sets")
        axr.legend(loc="upper left")
        header = f"{'':<22} {'E':>5} {'A':>6} {'B':>6} {'α':>6} {'β':>6}"
        axr.text(
            0.99,
            0.72,
            "\n".join([header] + rows),
            transform=axr.transAxes,
            ha="right",
            va="top",
            family="monospace",
            fontsize=6.3,
            bbox=dict(facecolor="white", edgecolor="0.8", boxstyle="round"),
        )
        axr.set_ylim(0, axr.get_ylim()[1] * 2.3)
        fig.tight_layout()
        return save(fig, out_dir, NAME)


if __name__ == "__main__":
    sys.exit(run_script(make, __doc__))
