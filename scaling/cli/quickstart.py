"""`scaling quickstart [--out DIR]`: the whole loop on a laptop CPU in about ten minutes.

plan (printed) → train the IsoFLOP sweep of experiments/quickstart.toml (tiny byte-level
Transformers on CPython's own source, no download) → fit IsoFLOP parabolas (Approach 2)
and the Chinchilla law L(N, D) = E + A/N^α + B/D^β (Approach 3) → write the IsoFLOP
figure DIR/isoflop.png → print the fitted law and the compute-optimal N and D for a
budget 10x the largest one trained: from the IsoFLOP minima's power laws, and as the
family member that minimises the fitted law at that budget.

Default DIR: runs/quickstart/ (git-ignored), so the command always does the whole job
on a fresh clone while the committed reference results in results/quickstart/ (which
figures and the notebook read) stay untouched; `--out results/quickstart` regenerates
those, adopting the runs already recorded there. Rerunning skips finished runs (only the
fit and the figure are redone); an interrupted run resumes from its checkpoint.
Checkpoints stay in DIR/runs/, which is git-ignored.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

CONFIG = Path(__file__).resolve().parents[2] / "experiments" / "quickstart.toml"
FIGURE = "isoflop.png"


def register(subparsers) -> None:
    p = subparsers.add_parser("quickstart", help="plan, train, fit and plot a small IsoFLOP sweep on CPU",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument(
        "--out",
        default="runs/quickstart",
        help="results directory (default: runs/quickstart, git-ignored; the committed reference is results/quickstart)",
    )
    p.add_argument("--config", default=str(CONFIG), help="sweep config (default: experiments/quickstart.toml)")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override a config value (a TOML literal); repeatable",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=run)


def run(args) -> int:
    from scaling.cli.sweep import sweep
    from scaling.sweep import load_sweep_config, plan_sweep

    plan = plan_sweep(load_sweep_config(args.config, args.overrides))
    out = Path(args.out)
    report = sweep(plan, out, progress=not args.no_progress)
    if report.preempted:  # no analysis of a partial sweep; rerunning the command resumes it
        from scaling.runtime import PREEMPTED_EXIT_CODE

        return PREEMPTED_EXIT_CODE
    print()
    analyze(out, plan.config)
    return 1 if report.count("failed") else 0


def analyze(out: Path, config) -> dict:
    """Approach 2 and the Chinchilla law on DIR's finished runs; the figure; a printout."""
    import numpy as np
    import pandas as pd

    from scaling.analysis.fit import fit_law
    from scaling.analysis.isoflop import isoflop_analysis
    from scaling.analysis.table import load_table

    runs = pd.read_csv(out / "runs.csv")
    done = runs[runs["status"] == "done"]
    # FLOPs per (non-embedding) parameter per token, as the runs were counted. Under the
    # "exact" convention it is not one number (it is 12-22 here): the median stands in
    # for the tables that need one; budgets and FLOPs themselves stay exact.
    k = float(np.median(done["flops"] / (done["params_nonembedding"] * done["tokens"])))
    df = load_table(out, convention=k)
    iso = isoflop_analysis(df, budget="budget", n_boot=500, seed=0)
    law = fit_law(df, "chinchilla")
    target = 10 * max(config.sweep.budgets)
    n2, d2 = float(iso.n_opt(target)), float(iso.d_opt(target))
    best = law_optimum_on_family(law, config, target)

    print("IsoFLOP minima (Approach 2):")
    for row in iso.to_frame().itertuples():
        where = "interior" if row.interior else "AT THE EDGE of the sizes tried"
        print(f"  C = {row.budget:.3g} FLOPs: N* = {row.n_opt:,.0f} [{row.n_opt_lo:,.0f}, {row.n_opt_hi:,.0f}], "
              f"D* = {row.d_opt:,.0f}, loss {row.loss_opt:.4f} ({row.n_points} sizes; minimum {where})")  # fmt: skip
    lo, hi = iso.n_opt.exponent_interval
    print(f"  N_opt ∝ C^{iso.a:.3f} (95% CI {lo:.3f} to {hi:.3f}),  D_opt ∝ C^{iso.b:.3f}")
    for w in iso.warnings:
        print(f"  warning: {w}")
    print(f"\nChinchilla law fitted to the {len(df)} finished runs (Approach 3):")
    print("  " + law.summary().replace("\n", "\n  "))
    p = law.params
    print(f"  L(N, D) = {p['E']:.3f} + {p['A']:.4g} / N^{p['alpha']:.3f} + {p['B']:.4g} / D^{p['beta']:.3f}")
    conv = config.sweep.flop_convention
    print(f"\nCompute-optimal allocation at C = {target:.3g} FLOPs ({conv}; 10x the largest budget):")
    (n_lo,), (n_hi,) = iso.n_opt.interval(target)
    print(
        f"  IsoFLOP power laws (Approach 2): N = {n2:,.0f} parameters (95% interval {n_lo:,.0f} to {n_hi:,.0f}), "
        f"D = {d2:,.0f} tokens ({d2 / n2:.0f} tokens/param)"
    )
    if best is not None:
        print(f"  Chinchilla law    (Approach 3): N = {best['N']:,.0f} parameters (width {best['width']}, depth "
              f"{best['depth']}), D = {best['D']:,.0f} tokens ({best['D'] / best['N']:.0f} tokens/param), "
              f"predicted loss {best['loss']:.4f}")  # fmt: skip
    figure = out / FIGURE
    isoflop_figure(iso, figure, target=target, chinchilla=(best["N"], best["D"]) if best else (math.nan, math.nan))
    print(f"\nfigure: {figure}")
    return {"isoflop": iso, "law": law, "target": target, "approach2": (n2, d2), "approach3": best}


def law_optimum_on_family(law, config, flops: float) -> dict | None:
    """The family member minimising the fitted law at `flops` under the sweep's own FLOP
    count (D = C / flops_per_token(member)), over widths up to 8x the largest tried."""
    import dataclasses

    from scaling.analysis.optimal import family_optimum
    from scaling.sweep.plan import family_sizes

    fam = config.family
    if fam.grid is None:
        step = fam.widths[1] - fam.widths[0] if len(fam.widths) > 1 else fam.widths[0]
        if fam.depths is not None:  # paired depths cannot be extended: keep the family as it is
            step = None
        if step:
            widths = {"start": fam.widths[0], "stop": 8 * fam.widths[-1], "step": step}
            config = dataclasses.replace(config, family=dataclasses.replace(fam, widths=widths))
    return family_optimum(law, family_sizes(config), flops)


def isoflop_figure(iso, path: Path, *, target: float, chinchilla: tuple[float, float]) -> None:
    """Left: loss against N per budget, parabolas and minima. Right: N* against C."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, (ax, bx) = plt.subplots(1, 2, figsize=(10, 4), dpi=100)
    colors = plt.cm.viridis(np.linspace(0, 0.85, len(iso.profiles)))
    for p, c in zip(iso.profiles, colors):
        ax.scatter(p.params, p.loss, color=c, s=18, zorder=3)
        grid = np.geomspace(p.params.min() / 1.15, p.params.max() * 1.15, 100)
        ax.plot(grid, p.parabola(grid), color=c, lw=1.2, label=f"C = {p.budget:.2g}")
        if np.isfinite(p.n_opt):
            ax.scatter([p.n_opt], [p.loss_opt], color=c, marker="*", s=120, edgecolor="k", zorder=4)
    ax.set_xscale("log")
    _plain_log_ticks(ax.xaxis, np.concatenate([p.params for p in iso.profiles]))
    ax.set_xlabel("non-embedding parameters N")
    ax.set_ylabel("final eval loss (nats/token)")
    ax.set_title("IsoFLOP profiles (stars: fitted minima)")
    ax.legend(fontsize=8)

    used = [p for p in iso.profiles if p.budget in iso.used]
    C = np.array([p.budget for p in used])
    bx.errorbar(C, [p.n_opt for p in used],
                yerr=np.abs(np.array([p.n_opt_interval for p in used]).T - np.array([p.n_opt for p in used])),
                fmt="o", color="k", ms=4, capsize=2, label="IsoFLOP minima (95% CI)")  # fmt: skip
    cc = np.geomspace(C.min() / 2, target * 1.5, 50)
    bx.plot(cc, iso.n_opt(cc), color="C0", label=f"N* ∝ C^{iso.a:.2f} (Approach 2)")
    if all(math.isfinite(v) for v in chinchilla):
        bx.scatter(
            [target], [chinchilla[0]], marker="D", color="C3", zorder=4, label="Chinchilla fit at 10x (Approach 3)"
        )
    bx.axvline(target, color="gray", ls=":", lw=1)
    bx.set_xscale("log")
    bx.set_yscale("log")
    bx.set_xlabel("compute C (FLOPs)")
    bx.set_ylabel("compute-optimal N")
    bx.set_title("Optimal size against compute")
    bx.legend(fontsize=8)
    fig.tight_layout()
    from scaling.atomic import atomic_path

    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=Path(path).suffix.lstrip(".") or "png")
    plt.close(fig)


def _plain_log_ticks(axis, values) -> None:
    """Major ticks at 1, 2, 5 x 10^k within the data, labelled plainly (2k, 50k, 1.2M)."""
    import numpy as np
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter

    lo, hi = float(np.min(values)) / 1.2, float(np.max(values)) * 1.2
    ticks = [m * 10.0**e for e in range(int(np.floor(np.log10(lo))), int(np.ceil(np.log10(hi))) + 1)
             for m in (1, 2, 5) if lo <= m * 10.0**e <= hi]  # fmt: skip
    axis.set_major_locator(FixedLocator(ticks))
    axis.set_major_formatter(
        FuncFormatter(lambda v, _: f"{v / 1e6:g}M" if v >= 1e6 else f"{v / 1e3:g}k" if v >= 1e3 else f"{v:g}")
    )
    axis.set_minor_formatter(NullFormatter())
