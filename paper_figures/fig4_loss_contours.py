"""Figure 4: the fitted loss surface L(N, D) = E + A/N^α + B/D^β (Approach 3), its
compute-efficient frontier, and the runs.

Contours of the fitted law over model size and training tokens; dashed grey lines are
constant compute C = k·N·D through each budget; the solid line is the efficient
frontier (N_opt(C), D_opt(C)) with its 95% band; the runs are overlaid in the budget
colours.

    python paper_figures/fig4_loss_contours.py [RESULTS_DIR] [--out DIR]
"""

from __future__ import annotations

import sys

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import MaxNLocator

from scaling.analysis import compute_optimal
from scaling.plotting import LABELS, BudgetScale, analyses, load_results, paper_style, save
from scaling.plotting.figure import figure, run_script
from scaling.plotting.style import format_budget, log_axis

NAME = "fig4_loss_contours"


@figure(NAME)
def make(results_dir, out_dir):
    res = load_results(results_dir)
    fit = analyses.parametric(res)
    runs = res.runs
    scale = BudgetScale(res.budgets)
    N, D = runs["params"].to_numpy(float), runs["tokens"].to_numpy(float)
    n_lim = (N.min() / 3, N.max() * 3)
    d_lim = (D.min() / 3, D.max() * 3)
    gn, gd = np.meshgrid(np.geomspace(*n_lim, 300), np.geomspace(*d_lim, 300))
    surface = fit.predict(params=gn, tokens=gd)

    with paper_style():
        fig, ax = plt.subplots(figsize=(6.6, 4.2))
        levels = MaxNLocator(nbins=12).tick_values(*np.quantile(surface, [0.02, 0.92]))
        levels = levels[(levels > surface.min()) & (levels < surface.max())]
        ax.contourf(gn, gd, surface, levels=np.r_[surface.min(), levels, surface.max()], cmap="Greys", alpha=0.3)
        ax.grid(False)
        cs = ax.contour(gn, gd, surface, levels=levels, colors="0.35", linewidths=0.6)
        ax.clabel(cs, fmt="%g", fontsize=6.5, inline_spacing=2)
        for c in res.budgets:  # IsoFLOP lines, C = k N D
            n_line = np.geomspace(*n_lim, 50)
            ax.plot(n_line, c / (fit.k * n_line), color=scale.color(c), linestyle="--", linewidth=0.9)
        C = np.geomspace(fit.k * n_lim[0] * d_lim[0], fit.k * n_lim[1] * d_lim[1], 300)
        opt = compute_optimal(fit, C, level=0.95)
        ax.fill_betweenx(opt["tokens"], opt["params_lo"], opt["params_hi"], color="black", alpha=0.12, linewidth=0)
        ax.plot(
            opt["params"],
            opt["tokens"],
            color="black",
            linewidth=1.8,
            label=f"efficient frontier: $N_\\mathrm{{opt}} \\propto C^{{{opt['a']:.2f}}}$",
        )
        for c in res.budgets:
            r = runs[runs["budget"] == c]
            ax.plot(
                r["params"],
                r["tokens"],
                linestyle="none",
                marker=scale.marker(c),
                color=scale.color(c),
                markeredgecolor="black",
                markeredgewidth=0.5,
                markersize=5.5,
                label=f"runs at $C$ = {format_budget(c)}",
                zorder=5,
            )
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlim(n_lim)
        ax.set_ylim(d_lim)
        log_axis(ax.xaxis)
        log_axis(ax.yaxis)
        ax.set_xlabel(LABELS["params"])
        ax.set_ylabel(LABELS["tokens"])
        p = fit.params
        ax.set_title(
            f"Fitted $L(N, D)$: E = {p['E']:.3g}, A = {p['A']:.3g}, B = {p['B']:.3g}, "
            f"α = {p['alpha']:.3f}, β = {p['beta']:.3f}",
            fontsize=8.5,
        )
        ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=7)
        return save(fig, out_dir, NAME)


if __name__ == "__main__":
    sys.exit(run_script(make, __doc__))
