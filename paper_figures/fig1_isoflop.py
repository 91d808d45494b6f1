"""Figure 1: IsoFLOP profiles (Approach 2 of Hoffmann et al. 2022).

Final eval loss against model size for every compute budget, the parabola in ln N
fitted to each budget (``scaling.analysis.isoflop``), and its minimum N*(C) with the
bootstrap interval. Budgets whose fit is flagged (no minimum, or a minimum outside
the sizes tried) are drawn with hollow minima and left out of the power laws.

    python paper_figures/fig1_isoflop.py [RESULTS_DIR] [--out DIR]
"""

from __future__ import annotations

import sys

import matplotlib.pyplot as plt
import numpy as np

from scaling.plotting import LABELS, BudgetScale, analyses, load_results, paper_style, save
from scaling.plotting.figure import figure, run_script
from scaling.plotting.style import format_budget

NAME = "fig1_isoflop"


@figure(NAME)
def make(results_dir, out_dir):
    res = load_results(results_dir)
    iso = analyses.isoflop(res)
    scale = BudgetScale(res.budgets)
    with paper_style():
        fig, ax = plt.subplots(figsize=(5.2, 3.6))
        for p in iso.profiles:
            c, m = scale.color(p.budget), scale.marker(p.budget)
            used = p.budget in iso.used
            ax.plot(
                p.params,
                p.loss,
                linestyle="none",
                marker=m,
                color=c,
                markeredgecolor="white",
                markeredgewidth=0.5,
                label=f"$C$ = {format_budget(p.budget)}",
                zorder=3,
            )
            span = np.log(p.params.max() / p.params.min())
            grid = np.geomspace(p.params.min() * np.exp(-0.15 * span), p.params.max() * np.exp(0.15 * span), 200)
            ax.plot(grid, p.parabola(grid), color=c, linestyle="-" if used else "--", linewidth=1.1, zorder=2)
            if np.isfinite(p.n_opt):
                lo, hi = p.n_opt_interval
                ax.errorbar(
                    [p.n_opt],
                    [p.loss_opt],
                    xerr=[[p.n_opt - lo], [hi - p.n_opt]] if np.isfinite(lo) and lo <= p.n_opt <= hi else None,
                    marker="*",
                    markersize=11,
                    color=c,
                    markeredgecolor="black",
                    markeredgewidth=0.6,
                    markerfacecolor=c if used else "white",
                    ecolor="black",
                    elinewidth=0.8,
                    zorder=4,
                )
        # the minima across budgets, joined: the compute-efficient frontier in this plane
        mins = [(p.n_opt, p.loss_opt) for p in iso.profiles if p.budget in iso.used]
        if len(mins) > 1:
            n, loss = np.array(mins).T
            ax.plot(n, loss, color="0.3", linestyle=":", linewidth=1.0, zorder=1, label="minima $N^*(C)$")
        ax.set_xscale("log")
        ax.set_xlabel(LABELS["params"])
        ax.set_ylabel(LABELS["loss"])
        lo, hi = iso.n_opt.exponent_interval
        ax.set_title(f"IsoFLOP profiles: $N_\\mathrm{{opt}} \\propto C^{{a}}$, $a$ = {iso.a:.3f} [{lo:.3f}, {hi:.3f}]")
        ax.legend(loc="upper right", ncol=1, handlelength=1.2)
        return save(fig, out_dir, NAME)


if __name__ == "__main__":
    sys.exit(run_script(make, __doc__))
