"""Figure 2: loss against training compute.

Every run's eval-loss curve (thin, in its budget's colour; its final loss marked),
the compute-efficient envelope of all curves (Approach 1, ``scaling.analysis.envelope``;
drawn when runs have 2+ evaluations), the IsoFLOP minima L*(C) with their intervals
(Approach 2), and the fitted compute-optimal loss L_opt(C) = L(N_opt(C), D_opt(C)) of
the parametric law (Approach 3), extrapolated to 100× the largest budget with its 95%
bootstrap band.

    python paper_figures/fig2_loss_vs_compute.py [RESULTS_DIR] [--out DIR]
"""

from __future__ import annotations

import sys

import matplotlib.pyplot as plt
import numpy as np

from scaling.analysis import compute_optimal
from scaling.plotting import LABELS, BudgetScale, MissingInput, analyses, load_results, paper_style, save
from scaling.plotting.figure import figure, run_script
from scaling.plotting.style import format_budget, log_axis, loss_axis

NAME = "fig2_loss_vs_compute"
EXTRAPOLATE = 100.0


@figure(NAME)
def make(results_dir, out_dir):
    res = load_results(results_dir)
    fit = analyses.parametric(res)
    iso = analyses.isoflop(res)
    scale = BudgetScale(res.budgets)
    c_max = res.budgets.max()
    try:
        env = analyses.envelope(res)
    except MissingInput as why:
        print(f"{NAME}: envelope left out: {why}")
        env = None

    with paper_style():
        fig, ax = plt.subplots(figsize=(6.0, 4.0))
        if res.curves is not None:
            for _, run in res.curves.groupby("run_id", sort=True):
                c = float(run["budget"].iloc[0])
                ax.plot(run["flops"], run["loss"], color=scale.color(c), linewidth=0.7, alpha=0.7, zorder=2)
        for c in res.budgets:
            r = res.runs[res.runs["budget"] == c]
            ax.plot(
                r["flops"],
                r["loss"],
                linestyle="none",
                marker=scale.marker(c),
                color=scale.color(c),
                markeredgecolor="white",
                markeredgewidth=0.4,
                markersize=4,
                zorder=3,
                label=f"runs at $C$ = {format_budget(c)}",
            )
        if env is not None:
            g = env.grid[np.isfinite(env.grid["loss"])]
            ax.plot(
                g["flops"],
                g["loss"],
                color="black",
                linewidth=2.2,
                alpha=0.8,
                zorder=4,
                label="envelope of all curves (Approach 1)",
            )
        prof = [p for p in iso.profiles if np.isfinite(p.loss_opt)]
        ax.errorbar(
            [p.budget for p in prof],
            [p.loss_opt for p in prof],
            yerr=np.clip(
                np.array([[p.loss_opt - p.loss_opt_interval[0], p.loss_opt_interval[1] - p.loss_opt] for p in prof]).T,
                0,
                None,
            ),
            marker="*",
            markersize=10,
            color="white",
            markeredgecolor="black",
            ecolor="black",
            linestyle="none",
            zorder=6,
            label="IsoFLOP minima $L^*(C)$ (Approach 2)",
        )
        C = np.geomspace(res.runs["flops"].min() / 1.5, c_max * EXTRAPOLATE, 300)
        opt = compute_optimal(fit, C, level=0.95)
        lo, hi = opt["loss_lo"], opt["loss_hi"]
        fit_part = C <= c_max
        ax.fill_between(C, lo, hi, color="#7570b3", alpha=0.2, linewidth=0, zorder=1, label="95% interval (bootstrap)")
        ax.plot(
            C[fit_part],
            opt["loss"][fit_part],
            color="#7570b3",
            linewidth=1.6,
            zorder=5,
            label="fitted $L_\\mathrm{opt}(C)$ (Approach 3)",
        )
        ax.plot(
            C[~fit_part],
            opt["loss"][~fit_part],
            color="#7570b3",
            linewidth=1.6,
            linestyle="--",
            zorder=5,
            label=f"extrapolation to {EXTRAPOLATE:g}× the largest budget",
        )
        ax.axvline(c_max, color="0.6", linewidth=0.6, linestyle=":")
        ax.set_xscale("log")
        loss_axis(ax)
        ax.set_xlim(C.min(), C.max())
        ax.set_ylim(min(lo.min(), res.runs["loss"].min()) * 0.97, res.runs["loss"].max() * 1.2)
        log_axis(ax.xaxis)
        ax.set_xlabel(LABELS["flops"])
        ax.set_ylabel(LABELS["loss"])
        ax.set_title(
            f"Loss against compute: $L_\\mathrm{{opt}}$(100× largest budget) = "
            f"{opt['loss'][-1]:.3f} [{lo[-1]:.3f}, {hi[-1]:.3f}]",
            fontsize=9,
        )
        ax.legend(loc="upper right", fontsize=6.5)
        return save(fig, out_dir, NAME)


if __name__ == "__main__":
    sys.exit(run_script(make, __doc__))
