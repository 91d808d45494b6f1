"""Figure 8: backtest of the extrapolation: fit the parametric law on the smaller
budgets only, predict the held-out larger runs (``scaling.analysis.backtest``).

(a) Predicted against observed loss of every held-out run, with the 95% predictive
interval of a new run (bootstrap + noise + misspecification calibrated inside the fit
budgets, ``scaling.analysis.predictive``), for each cutoff (every split that leaves at
least two budgets to fit on). (b) The held-out IsoFLOP profiles: observed losses and the
profile predicted from the smaller budgets, L(N, C/(kN)), with its predictive band.

    python paper_figures/fig8_backtest.py [RESULTS_DIR] [--out DIR]
"""

from __future__ import annotations

import sys

import matplotlib.pyplot as plt
import numpy as np

from scaling.analysis import predict_loss
from scaling.plotting import LABELS, BudgetScale, MissingInput, analyses, load_results, paper_style, save
from scaling.plotting.figure import figure, run_script
from scaling.plotting.style import format_budget, log_axis, loss_axis

NAME = "fig8_backtest"
CUTOFF_MARKERS = ("o", "s", "^", "D")
CUTOFF_COLORS = ("black", "#d95f02", "#7570b3", "#1b9e77")
MIN_FIT_BUDGETS = 2


def backtests(res):
    """[(cutoff, BacktestResult)]: one per split leaving >= MIN_FIT_BUDGETS budgets to fit."""
    b = res.budgets
    if len(b) <= MIN_FIT_BUDGETS:
        raise MissingInput(f"a backtest needs more than {MIN_FIT_BUDGETS} budgets; {res.root} has {len(b)}")
    out = []
    for i in range(MIN_FIT_BUDGETS, len(b)):
        cutoff = float(np.sqrt(b[i - 1] * b[i]))  # between two budgets
        if (res.runs["flops"] <= cutoff).sum() <= 5:
            continue
        out.append((cutoff, analyses.backtest(res.runs, cutoff)))
    if not out:
        raise MissingInput("no split leaves more than 5 runs to fit on")
    return out


@figure(NAME)
def make(results_dir, out_dir):
    res = load_results(results_dir)
    tests = backtests(res)
    scale = BudgetScale(res.budgets)

    with paper_style():
        fig, (ax, axp) = plt.subplots(1, 2, figsize=(8.8, 3.8))
        lo_all, hi_all = [], []
        for j, (cutoff, bt) in enumerate(tests):
            p = bt.points.merge(res.runs[["run_id", "budget"]], on="run_id")
            yerr = np.abs(np.stack([p["pred"] - p["pred_lo"], p["pred_hi"] - p["pred"]]))
            ax.errorbar(
                p["loss"],
                p["pred"],
                yerr=yerr,
                linestyle="none",
                marker=CUTOFF_MARKERS[j % 4],
                color=CUTOFF_COLORS[j % 4],
                markerfacecolor="white" if j else CUTOFF_COLORS[0],
                ecolor=CUTOFF_COLORS[j % 4],
                elinewidth=0.8,
                markersize=5,
                label=f"fit $C$ < {format_budget(cutoff)} ({bt.n_fit} runs): "
                f"error {100 * bt.mean_abs_rel_error:.2f}%, coverage {100 * bt.coverage:.0f}%",
            )
            lo_all += [p["loss"].min(), p["pred_lo"].min()]
            hi_all += [p["loss"].max(), p["pred_hi"].max()]
        lim = [min(lo_all) * 0.98, max(hi_all) * 1.02]
        ax.plot(lim, lim, color="0.5", linewidth=0.8, linestyle="--", zorder=0)
        ax.set_xlim(lim)
        ax.set_ylim(lim)
        ax.set_xlabel("Observed loss of held-out run (nats/token)")
        ax.set_ylabel("Predicted loss (nats/token)")
        ax.set_title("(a) held-out runs: predicted vs observed (95% interval)")
        ax.legend(loc="upper left", fontsize=6.5)

        # (b) the largest cutoff's fit, on every held-out budget
        cutoff, bt = tests[-1]
        for c in res.budgets[res.budgets > cutoff]:
            r = res.runs[res.runs["budget"] == c]
            n = np.geomspace(r["params"].min() / 1.5, r["params"].max() * 1.5, 100)
            pred = predict_loss(bt.fit, params=n, tokens=c / (bt.fit.k * n), level=0.95)
            axp.fill_between(n, pred["loss_lo"], pred["loss_hi"], color=scale.color(c), alpha=0.2, linewidth=0)
            axp.plot(
                n, pred["loss"], color=scale.color(c), linestyle="--", label=f"predicted at $C$ = {format_budget(c)}"
            )
            axp.plot(
                r["params"],
                r["loss"],
                linestyle="none",
                marker=scale.marker(c),
                color=scale.color(c),
                markeredgecolor="black",
                markeredgewidth=0.5,
                label=f"observed at $C$ = {format_budget(c)}",
            )
        axp.set_xscale("log")
        loss_axis(axp)
        log_axis(axp.xaxis)
        axp.set_xlabel(LABELS["params"])
        axp.set_ylabel(LABELS["loss"])
        axp.set_title(f"(b) IsoFLOP profiles predicted from $C$ < {format_budget(cutoff)}")
        axp.legend(loc="upper center", fontsize=6.5)
        fig.tight_layout()
        return save(fig, out_dir, NAME)


if __name__ == "__main__":
    sys.exit(run_script(make, __doc__))
