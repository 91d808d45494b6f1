"""`scaling quickstart [--out DIR]`: the whole loop on a laptop CPU in about ten minutes.

plan (printed) → train the IsoFLOP sweep of experiments/quickstart.toml (tiny byte-level
Transformers on CPython's own source, no download) → fit IsoFLOP parabolas (Approach 2)
and the Chinchilla law L(N, D) = E + A/N^α + B/D^β (Approach 3) → write the IsoFLOP
figure DIR/isoflop.png → print the fitted law and the compute-optimal N and D for a
budget 10x the largest one trained.

Default DIR: results/quickstart/. Rerunning skips finished runs (only the fit and the
figure are redone); an interrupted run resumes from its checkpoint. Checkpoints stay
in DIR/runs/, which is git-ignored.
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
    p.add_argument("--out", default="results/quickstart", help="results directory (default: results/quickstart)")
    p.add_argument("--config", default=str(CONFIG), help="sweep config (default: experiments/quickstart.toml)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override a config value (a TOML literal); repeatable")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=run)


def run(args) -> int:
    from scaling.cli.sweep import sweep
    from scaling.sweep import load_sweep_config, plan_sweep

    plan = plan_sweep(load_sweep_config(args.config, args.overrides))
    out = Path(args.out)
    report = sweep(plan, out, progress=not args.no_progress)
    print()
    analyze(out, budgets=plan.config.sweep.budgets)
    return 1 if report.count("failed") else 0


def analyze(out: Path, budgets) -> dict:
    """Fit Approach 2 and the Chinchilla law on DIR's finished runs; write the figure; print."""
    from scaling.analysis.fit import fit_law
    from scaling.analysis.isoflop import isoflop_analysis
    from scaling.analysis.table import load_table

    df = load_table(out)
    iso = isoflop_analysis(df, budget="budget", n_boot=500, seed=0)
    law = fit_law(df, "chinchilla")
    target = 10 * max(budgets)
    n2, d2 = float(iso.n_opt(target)), float(iso.d_opt(target))
    n3, d3 = _chinchilla_optimal(law, target)

    print("IsoFLOP minima (Approach 2):")
    table = iso.table()
    for row in table.itertuples():
        where = "interior" if row.interior else "AT THE EDGE of the sizes tried"
        print(f"  C = {row.budget:.3g} FLOPs: N* = {row.n_opt:,.0f} [{row.n_opt_lo:,.0f}, {row.n_opt_hi:,.0f}], "
              f"D* = {row.d_opt:,.0f}, loss {row.loss_opt:.4f} ({row.n_points} sizes; minimum {where})")  # fmt: skip
    print(f"  N_opt ∝ C^{iso.a:.3f} [{iso.n_opt.exponent_ci[0]:.3f}, {iso.n_opt.exponent_ci[1]:.3f}], "
          f"D_opt ∝ C^{iso.b:.3f}")  # fmt: skip
    for w in iso.warnings:
        print(f"  warning: {w}")
    print("\nChinchilla law fitted to all finished runs (Approach 3):")
    print("  " + law.summary().replace("\n", "\n  "))
    p = law.params
    print(f"  L(N, D) = {p['E']:.3f} + {p['A']:.4g} / N^{p['alpha']:.3f} + {p['B']:.4g} / D^{p['beta']:.3f}")
    print(f"\nCompute-optimal allocation at C = {target:.3g} FLOPs (10x the largest budget):")
    print(f"  IsoFLOP power laws (Approach 2): N = {n2:,.0f} parameters, D = {d2:,.0f} tokens ({d2 / n2:.1f} tokens/param)")
    if math.isfinite(n3):
        print(f"  Chinchilla law    (Approach 3): N = {n3:,.0f} parameters, D = {d3:,.0f} tokens ({d3 / n3:.1f} tokens/param)")
    else:
        print("  Chinchilla law    (Approach 3): no finite optimum (see the fit's warnings)")
    figure = out / FIGURE
    isoflop_figure(iso, figure, target=target, chinchilla=(n3, d3))
    print(f"\nfigure: {figure}")
    return {"isoflop": iso, "law": law, "target": target, "approach2": (n2, d2), "approach3": (n3, d3)}


def _chinchilla_optimal(law, flops: float) -> tuple[float, float]:
    """(N, D) minimising the fitted law at `flops` = k·N·D."""
    try:
        from scaling.analysis.optimal import compute_optimal
    except ImportError:  # pragma: no cover - until the allocation module lands
        compute_optimal = None
    if compute_optimal is not None:
        opt = compute_optimal(law, flops)
        n = _field(opt, "params", "n_opt", "N")
        d = _field(opt, "tokens", "d_opt", "D")
        return float(n), float(d)
    from scaling.analysis.laws import get_law

    G, a, _ = get_law(law.law).optimum(law.params, law.k)
    n = G * (flops / law.k) ** a
    return float(n), float(flops / (law.k * n))


def _field(obj, *names):
    for name in names:
        if isinstance(obj, dict) and name in obj:
            return obj[name]
        if hasattr(obj, name):
            return getattr(obj, name)
    raise AttributeError(f"compute_optimal result has none of {names}")


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
    ax.set_xlabel("non-embedding parameters N")
    ax.set_ylabel("final eval loss (nats/token)")
    ax.set_title("IsoFLOP profiles (stars: fitted minima)")
    ax.legend(fontsize=8)

    used = [p for p in iso.profiles if p.budget in iso.used]
    C = np.array([p.budget for p in used])
    bx.errorbar(C, [p.n_opt for p in used],
                yerr=np.abs(np.array([p.n_opt_ci for p in used]).T - np.array([p.n_opt for p in used])),
                fmt="o", color="k", ms=4, capsize=2, label="IsoFLOP minima (95% CI)")  # fmt: skip
    cc = np.geomspace(C.min() / 2, target * 1.5, 50)
    bx.plot(cc, iso.n_opt(cc), color="C0", label=f"N* ∝ C^{iso.a:.2f} (Approach 2)")
    if all(math.isfinite(v) for v in chinchilla):
        bx.scatter([target], [chinchilla[0]], marker="D", color="C3", zorder=4, label="Chinchilla fit at 10x (Approach 3)")
    bx.axvline(target, color="gray", ls=":", lw=1)
    bx.set_xscale("log")
    bx.set_yscale("log")
    bx.set_xlabel("compute C (FLOPs)")
    bx.set_ylabel("compute-optimal N")
    bx.set_title("Optimal size against compute")
    bx.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
