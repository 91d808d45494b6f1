"""Figure 7: interpolation between checkpoints.

(a) One run's eval loss between its evaluations under each named interpolant of
``scaling.analysis.loss_curves`` (log-log linear, PCHIP, cubic spline, smoothing
spline, quadratic), and (b) how far each departs from the log-log linear one, which
is where the choice of interpolant matters. (c) When ``RESULTS_DIR/interpolation/*.json``
exists (written by ``scaling interpolate CKPT_A CKPT_B --json``), the loss along the
straight weight path θ(t) = (1 - t)·θ_a + t·θ_b between two checkpoints; the arrow is
the barrier, the largest excess over the chord between the endpoint losses (dotted).

    python paper_figures/fig7_interpolation.py [RESULTS_DIR] [--out DIR]
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from scaling.analysis.loss_curves import MIN_POINTS
from scaling.plotting import LABELS, BudgetScale, load_results, paper_style, save
from scaling.plotting.figure import figure, run_script
from scaling.plotting.style import log_axis, loss_axis, sci

NAME = "fig7_interpolation"

INTERPOLANTS = (  # name, options, style
    ("linear", {}, dict(color="black", linestyle="-", label="log-log linear")),
    ("pchip", {}, dict(color="#1b9e77", linestyle="--", label="PCHIP (monotone)")),
    ("cubic", {}, dict(color="#d95f02", linestyle="-.", label="cubic spline")),
    ("smoothing", {}, dict(color="#7570b3", linestyle=":", label="smoothing spline (GCV)")),
    (
        "polynomial",
        {"degree": 2},
        dict(color="#e7298a", linestyle=(0, (5, 1, 1, 1, 1, 1)), label="quadratic (least squares)"),
    ),
)
PATH_STYLES = ("-", "--", "-.", ":")


def path_label(path, data: dict) -> str:
    """ "RUN: step A → step B, barrier X nats" from a `scaling interpolate --json` result."""
    run = data.get("run_id") or Path(str(data.get("eval_run") or path.stem)).name
    label = run
    if data.get("step_a") is not None and data.get("step_b") is not None:
        label = f"{run}: step {data['step_a']} → {data['step_b']}"
    if data.get("barrier") is not None:
        label += f"\nbarrier {float(data['barrier']):.3g} nats"
    return label


def pick_run(curves):
    """The run with the most evaluations; ties go to the largest budget, then size."""
    n = curves.groupby("run_id").agg(n=("step", "nunique"), budget=("budget", "first"), params=("params", "first"))
    return n.sort_values(["n", "budget", "params"], ascending=False).index[0]


@figure(NAME)
def make(results_dir, out_dir):
    from scaling.analysis.loss_curves import interpolate_curve

    res = load_results(results_dir)
    curves = res.curves_with(4)  # 4 evaluations: one interval each side of the middle at least
    run_id = pick_run(curves)
    run = curves[curves["run_id"] == run_id].sort_values("tokens")
    x, y = run["tokens"].to_numpy(float), run["loss"].to_numpy(float)
    paths = res.interpolations()
    budget = float(run["budget"].iloc[0])
    color = BudgetScale(res.budgets).color(budget)

    with paper_style():
        ncols = 3 if paths else 2
        fig, axes = plt.subplots(
            1, ncols, figsize=(3.4 * ncols, 3.2), width_ratios=[1.25, 1] + ([1.1] if paths else [])
        )
        ax, axd = axes[0], axes[1]
        grid = np.geomspace(x.min(), x.max(), 400)
        ref = interpolate_curve(x, y, method="linear")(grid)
        for method, opts, style in INTERPOLANTS:
            if len(x) < (MIN_POINTS[method] or 0):  # the smoothing spline needs 5 evaluations
                continue
            f = interpolate_curve(x, y, method=method, **opts)
            g = f(grid)
            ax.plot(grid, g, linewidth=1.0, **style)
            axd.plot(grid, 100 * (g / ref - 1), linewidth=1.0, **style)
        ax.plot(
            x,
            y,
            linestyle="none",
            marker="o",
            color=color,
            markeredgecolor="black",
            markeredgewidth=0.5,
            zorder=5,
            label="evaluations (checkpoints)",
        )
        ax.set_xscale("log")
        loss_axis(ax)
        log_axis(ax.xaxis)
        ax.set_xlabel(LABELS["tokens"])
        ax.set_ylabel(LABELS["loss"])
        n = float(run["params"].iloc[0])
        ax.set_title(f"(a) run {run_id}: $N$ = {sci(n, 3)}")
        ax.legend(loc="lower left")
        axd.axhline(0, color="0.5", linewidth=0.6)
        for xi in x:
            axd.axvline(xi, color="0.85", linewidth=0.6, zorder=0)
        axd.set_xscale("log")
        log_axis(axd.xaxis)
        axd.set_xlabel(LABELS["tokens"])
        axd.set_ylabel("Difference from log-log linear (%)")
        axd.set_title("(b) interpolants between checkpoints")
        if paths:
            axp = axes[2]
            for i, (path, data) in enumerate(paths[: len(PATH_STYLES)]):
                t = np.asarray(data["t"], dtype=float)
                loss = np.asarray(data["loss"], dtype=float)  # null (diverged) -> NaN
                order = np.argsort(t)
                axp.plot(
                    t[order],
                    loss[order],
                    color="black",
                    linestyle=PATH_STYLES[i],
                    marker="o",
                    markersize=2.5,
                    label=path_label(path, data),
                )
                la, lb = data.get("loss_a"), data.get("loss_b")
                if la is not None and lb is not None:  # the barrier is measured above this chord
                    axp.plot([0, 1], [la, lb], color="0.45", linestyle=":", linewidth=0.9)
                bt, b = data.get("barrier_t"), data.get("barrier")
                if bt is not None and b is not None and la is not None and lb is not None and np.isfinite(b):
                    base = (1 - bt) * la + bt * lb
                    axp.annotate(
                        "",
                        xy=(bt, base + b),
                        xytext=(bt, base),
                        arrowprops=dict(arrowstyle="<->", color="#d95f02", linewidth=1.0),
                    )
            axp.axvspan(0, 1, color="0.93", zorder=0)
            for t0, name in ((0, "$\\theta_a$"), (1, "$\\theta_b$")):
                axp.axvline(t0, color="0.5", linewidth=0.6)
                axp.annotate(name, (t0, 1.0), xycoords=("data", "axes fraction"), ha="center", va="bottom", fontsize=8)
            axp.set_xlabel("Interpolation coefficient $t$")
            axp.set_ylabel(LABELS["loss"])
            axp.set_title("(c) loss along $(1-t)\\,\\theta_a + t\\,\\theta_b$", pad=12)
            axp.legend(loc="upper center", fontsize="small")
        fig.tight_layout()
        return save(fig, out_dir, NAME)


if __name__ == "__main__":
    sys.exit(run_script(make, __doc__))
