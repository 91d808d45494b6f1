"""`scaling quickstart [--out DIR]`: the whole loop on a laptop CPU in under ten minutes.

tune the learning rate per width at the smallest budget (an LR grid x the seeds) →
train the IsoFLOP sweep of experiments/quickstart.toml at those LRs (tiny byte-level
Transformers on the embedded corpus, no download; one worker process per core) → fit
IsoFLOP parabolas (Approach 2) and the Chinchilla law L(N, D) = E + A/N^α + B/D^β
(Approach 3, bootstrapped) → backtest: the law fitted without the top budget predicts
that budget's minimum loss → write the IsoFLOP figure DIR/isoflop.png → print the
exponents of both approaches with their 95% intervals and the compute-optimal N and D for
a budget 10x the largest one trained. The corpus hash is compared with the committed
reference's (results/quickstart/manifest.json): different data, not comparable losses.

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
REFERENCE = Path(__file__).resolve().parents[2] / "results" / "quickstart"
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
    p.add_argument("--jobs", default="auto", help="worker processes: a number or 'auto' (one per core on a CPU)")
    p.add_argument("--pack", default="auto",
                   help="train up to K same-shape runs as one program: a number or 'auto' (1 on a CPU, else 8)")  # fmt: skip
    p.set_defaults(func=run)


def run(args) -> int:
    from scaling.cli.sweep import parse_jobs, sweep
    from scaling.sweep import load_sweep_config, plan_sweep

    cfg = load_sweep_config(args.config, args.overrides)
    out = Path(args.out)
    from scaling.sweep.pool import parse_pack

    kwargs = dict(progress=not args.no_progress, jobs=parse_jobs(args.jobs), pack=parse_pack(args.pack))
    if cfg.hparams.lr == "tuned":
        from scaling.sweep.lr_tuning import tune_and_sweep

        report, plan, _ = tune_and_sweep(cfg, out, lambda p: sweep(p, out, **kwargs))
    else:
        plan = plan_sweep(cfg)
        report = sweep(plan, out, **kwargs)
    if report.preempted:  # no analysis of a partial sweep; rerunning the command resumes it
        from scaling.runtime import PREEMPTED_EXIT_CODE

        return PREEMPTED_EXIT_CODE
    print()
    analyze(out, plan.config)
    return 1 if report.count("failed") else 0


def corpus_check(out: Path, reference: Path = REFERENCE) -> str:
    """One line: is DIR's corpus the committed reference's (so that losses compare)?"""
    import json

    def corpus(d: Path):
        try:
            return json.loads((d / "manifest.json").read_text())["data"]["corpus_hash"]
        except (OSError, KeyError, TypeError, ValueError):
            return None

    mine, ref = corpus(out), corpus(reference)
    if mine is None:
        return "corpus: no data manifest in the results: cannot tell whether they compare with the reference"
    if Path(out).resolve() == Path(reference).resolve():
        return f"corpus {mine[:12]}: this is the committed reference"
    if ref is None:
        return f"corpus {mine[:12]}: no committed reference to compare with"
    if mine == ref:
        return f"corpus {mine[:12]}: the committed reference's (results/quickstart): losses compare run by run"
    return (f"corpus {mine[:12]} is NOT the committed reference's ({ref[:12]}): these losses are not comparable "
            "with results/quickstart")  # fmt: skip


def analyze(out: Path, config, *, n_boot: int = 200) -> dict:
    """Approaches 2 and 3 on DIR's finished law runs, the backtest, the figure, a printout."""
    import numpy as np
    import pandas as pd

    from scaling.analysis.extrapolate import backtest, predict_loss
    from scaling.analysis.fit import fit_law
    from scaling.analysis.isoflop import isoflop_analysis
    from scaling.analysis.optimal import compute_optimal
    from scaling.analysis.table import load_table
    from scaling.analysis.uncertainty import bootstrap
    from scaling.core.columns import LR_TUNE

    print(corpus_check(out))
    runs = pd.read_csv(out / "runs.csv")
    done = runs[(runs["status"] == "done") & (runs["plan_kind"] != LR_TUNE)]
    # FLOPs per (non-embedding) parameter per token, as the runs were counted. Under the
    # "exact" convention it is not one number (it is 12-22 here): the median stands in
    # for the tables that need one; budgets and FLOPs themselves stay exact.
    k = float(np.median(done["flops"] / (done["params_nonembedding"] * done["tokens"])))
    df = load_table(out, convention=k)
    iso = isoflop_analysis(df, budget="budget", n_boot=500, seed=0)
    law = fit_law(df, "chinchilla")
    boot = bootstrap(df, fit=law, n_boot=n_boot, seed=0)
    target = 10 * max(config.sweep.budgets)
    n2, d2 = float(iso.n_opt(target)), float(iso.d_opt(target))
    best = law_optimum_on_family(law, config, target)
    opt3 = compute_optimal(boot, target)

    print("IsoFLOP minima (Approach 2):")
    for row in iso.to_frame().itertuples():
        where = "interior" if row.interior else "AT THE EDGE of the sizes tried"
        print(f"  C = {row.budget:.3g} FLOPs: N* = {row.n_opt:,.0f} [{row.n_opt_lo:,.0f}, {row.n_opt_hi:,.0f}], "
              f"D* = {row.d_opt:,.0f}, loss {row.loss_opt:.4f} ({row.n_points} sizes; minimum {where})")  # fmt: skip
    lo, hi = iso.n_opt.exponent_interval
    print(f"  N_opt ∝ C^{iso.a:.3f} (95% CI {lo:.3f} to {hi:.3f}, width {hi - lo:.3f}),  D_opt ∝ C^{iso.b:.3f}")
    for w in iso.warnings:
        print(f"  warning: {w}")
    print(f"\nChinchilla law fitted to the {len(df)} finished law runs (Approach 3; {n_boot} bootstrap refits):")
    print("  " + law.summary().replace("\n", "\n  "))
    p = law.params
    print(f"  L(N, D) = {p['E']:.3f} + {p['A']:.4g} / N^{p['alpha']:.3f} + {p['B']:.4g} / D^{p['beta']:.3f}")
    a3, a3_lo, a3_hi = float(opt3["a"]), float(opt3.get("a_lo", np.nan)), float(opt3.get("a_hi", np.nan))
    print(f"\nN_opt ∝ C^a:  Approach 2 (IsoFLOP minima) a = {iso.a:.3f} [{lo:.3f}, {hi:.3f}];  "
          f"Approach 3 (Chinchilla law, β/(α+β)) a = {a3:.3f} [{a3_lo:.3f}, {a3_hi:.3f}]")  # fmt: skip
    bt = _backtest(df, iso, config, n_boot, backtest, predict_loss)
    if bt is not None:
        print(f"\nBacktest: the law fitted to the {bt['n_fit']} runs below C = {bt['budget']:.3g} predicts that budget's "
              f"minimum loss {bt['pred']:.4f} (95% interval {bt['lo']:.4f} to {bt['hi']:.4f}) at N = {bt['N']:,.0f}; "
              f"observed: {bt['observed']:.4f} (IsoFLOP parabola minimum; best run {bt['best_run']:.4f}) -> "
              f"{'inside' if bt['lo'] <= bt['observed'] <= bt['hi'] else 'OUTSIDE'} the interval; its "
              f"{bt['n_test']} runs: {bt['coverage']:.0%} covered, mean |error| {bt['mare']:.2%}")  # fmt: skip
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
    return {"isoflop": iso, "law": law, "bootstrap": boot, "target": target, "approach2": (n2, d2),
            "approach3": best, "a3": (a3, a3_lo, a3_hi), "backtest": bt}  # fmt: skip


def _backtest(df, iso, config, n_boot: int, backtest, predict_loss) -> dict | None:
    """The law fitted below the top budget, asked for the top budget's minimum loss (the
    family member its own fit puts there) with a predictive interval, against the
    top budget's observed IsoFLOP minimum."""
    import math

    budgets = sorted(df["budget"].unique())
    if len(budgets) < 3:
        return None
    top = budgets[-1]
    cutoff = math.sqrt(budgets[-2] * top)  # between the top two budgets
    bt = backtest(df[df["budget"] <= top], cutoff_flops=cutoff, n_boot=n_boot, seed=0)
    best = law_optimum_on_family(bt.fit, config, top)
    pred = predict_loss(bt.fit, params=best["N"], tokens=best["D"])
    prof = next(p for p in iso.profiles if p.budget == top)
    s = bt.to_dict()
    return {"budget": top, "N": best["N"], "pred": float(pred["loss"]), "lo": float(pred["loss_lo"]),
            "hi": float(pred["loss_hi"]), "observed": float(prof.loss_opt), "best_run": float(prof.loss.min()),
            "n_fit": int(s["n_fit"]), "n_test": int(s["n_test"]), "coverage": float(s["coverage"]),
            "mare": float(s["mean_abs_rel_error"])}  # fmt: skip


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
