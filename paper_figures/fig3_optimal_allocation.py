"""Figure 3: compute-optimal model size N_opt(C) and data D_opt(C) from the three
approaches of Hoffmann et al. (2022), each with its 95% bootstrap interval.

Approach 1: the lower envelope of all training curves (``scaling.analysis.envelope``;
drawn when the curves have 2+ evaluations per run). Approach 2: IsoFLOP parabola
minima (``scaling.analysis.isoflop``), with each budget's minimum and its interval.
Approach 3: the minimum of the fitted law L(N, D) = E + A/N^α + B/D^β at C = k·N·D
(``scaling.analysis.compute_optimal``; intervals from refits of resampled runs). The power laws are
drawn out to 100× the largest budget; the shaded region lies beyond the data.

    python paper_figures/fig3_optimal_allocation.py [RESULTS_DIR] [--out DIR]
"""

from __future__ import annotations

import sys

import matplotlib.pyplot as plt
import numpy as np

from scaling.analysis import compute_optimal
from scaling.plotting import LABELS, METHOD_STYLES, BudgetScale, MissingInput, analyses, load_results, paper_style, save
from scaling.plotting.figure import figure, run_script
from scaling.plotting.style import log_axis

NAME = "fig3_optimal_allocation"
EXTRAPOLATE = 100.0


def approaches(res):
    """({"approach1"/"approach2": (N_opt power law, D_opt power law)}, the IsoFLOP result)."""
    out = {}
    try:
        env = analyses.envelope(res)
        out["approach1"] = (env.n_opt, env.d_opt)
    except MissingInput as why:
        print(f"{NAME}: Approach 1 left out: {why}")
    iso = analyses.isoflop(res)
    out["approach2"] = (iso.n_opt, iso.d_opt)
    return out, iso


@figure(NAME)
def make(results_dir, out_dir):
    res = load_results(results_dir)
    laws, iso = approaches(res)
    scale = BudgetScale(res.budgets)
    c_max = res.budgets.max()
    C = np.geomspace(res.budgets.min() / 2, c_max * EXTRAPOLATE, 200)
    opt = compute_optimal(analyses.parametric(res), C, level=0.95)

    with paper_style():
        fig, axes = plt.subplots(1, 2, figsize=(8.6, 3.7))
        for j, (ax, what) in enumerate(zip(axes, ("params", "tokens"))):
            central = [opt[what]]
            for key, (n_law, d_law) in laws.items():
                law = n_law if what == "params" else d_law
                st = METHOD_STYLES[key]
                lo, hi = law.interval(C)
                central.append(law(C))
                ax.fill_between(C, lo, hi, color=st["color"], alpha=0.12, linewidth=0)
                elo, ehi = law.exponent_interval
                ax.plot(
                    C,
                    law(C),
                    color=st["color"],
                    linestyle=st["linestyle"],
                    label=f"{st['label']}: {'ab'[j]} = {law.exponent:.3f} [{elo:.3f}, {ehi:.3f}]",
                )
            # Approach 3
            st = METHOD_STYLES["approach3"]
            e = "ab"[j]
            ax.fill_between(C, opt[f"{what}_lo"], opt[f"{what}_hi"], color=st["color"], alpha=0.12, linewidth=0)
            ax.plot(
                C,
                opt[what],
                color=st["color"],
                linestyle=st["linestyle"],
                linewidth=1.8,
                label=f"{st['label']}: {e} = {opt[e]:.3f} [{opt[e + '_lo']:.3f}, {opt[e + '_hi']:.3f}]",
            )
            # Approach 2's per-budget minima, in the budget colours
            for p in iso.profiles:
                if not np.isfinite(p.n_opt):
                    continue
                y, (lo, hi) = (p.n_opt, p.n_opt_interval) if what == "params" else (p.d_opt, p.d_opt_interval)
                used = p.budget in iso.used
                ax.errorbar(
                    [p.budget],
                    [y],
                    yerr=[[max(y - lo, 0)], [max(hi - y, 0)]] if np.isfinite(lo) else None,
                    marker=scale.marker(p.budget),
                    color=scale.color(p.budget),
                    markeredgecolor="black",
                    markeredgewidth=0.5,
                    markerfacecolor=scale.color(p.budget) if used else "white",
                    ecolor="0.3",
                    elinewidth=0.8,
                    linestyle="none",
                    zorder=5,
                )
            ax.axvspan(c_max * 1.05, C.max(), color="0.94", zorder=0)
            ax.text(c_max * 1.25, 0.03, "extrapolation", transform=ax.get_xaxis_transform(), fontsize=7, color="0.4")
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlim(C.min(), C.max())
            # wide bands (few budgets) are cut at 10x beyond the central estimates
            ax.set_ylim(np.min(central) / 10, np.max(central) * 10)
            log_axis(ax.xaxis)
            log_axis(ax.yaxis)
            ax.set_xlabel(LABELS["flops"])
            ax.set_ylabel(LABELS[what])
            ax.set_title(
                f"({'ab'[j]}) "
                + ("$N_\\mathrm{opt}(C) \\propto C^a$" if what == "params" else "$D_\\mathrm{opt}(C) \\propto C^b$")
            )
            ax.legend(loc="upper left", fontsize=6.8)
        fig.tight_layout()
        return save(fig, out_dir, NAME)


if __name__ == "__main__":
    sys.exit(run_script(make, __doc__))
