"""Active sweep design validated by simulation: active vs uniform IsoFLOP grid vs random at equal FLOPs.

    python experiments/active_design.py [--out results/active_design] [--seeds 3] [--quick]

Two pools, each starting from the runs of its three smallest budgets:

* synthetic: Epoch AI's Chinchilla fit as the true surface (E=1.82, A=482, B=2085,
  alpha=0.348, beta=0.366), 10 IsoFLOP budgets 1e17 * 2^k, 9 sizes per budget (tokens per
  parameter 4..256), log-normal noise sd 0.01; target: the loss at the optimum of C = 1e21,
  known exactly; repeated over noise seeds for coverage.
* porian: Porian et al.'s rw/tuned/short/const/standard/val IsoFLOP points (12 budgets,
  1.25e16..2.56e19); the top budget is held out and its IsoFLOP minimum (parabola vertex) is
  the truth the prediction at C = 2.56e19 is scored against.

Strategies, each adding runs from the pool until it has spent the uniform grid's FLOPs:
uniform (the next budget's whole IsoFLOP curve at a time), random (pool runs in a random
order, scored at the uniform grid's cumulative FLOPs), active (``propose_runs``, 3 runs per
round, refit and re-bootstrapped after each round). After each step: the chinchilla fit,
100 bootstrap resamples, the 95% interval of the predicted loss at the target, its error.
Writes runs.csv (every step), summary.json and active_design.png.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd

TRUE = {"E": 1.82, "A": 482.0, "B": 2085.0, "alpha": 0.3478, "beta": 0.3658}
NOISE = 0.01
N_BOOT = 100
PER_ROUND = 3
COARSE = {
    "log_E": [-1.0, 0.0, 1.0],
    "log_A": [2.0, 8.0, 16.0],
    "log_B": [2.0, 8.0, 16.0],
    "alpha": [0.2, 0.5, 1.0],
    "beta": [0.2, 0.5, 1.0],
}


def synthetic_pool(seed: int) -> pd.DataFrame:
    from scaling.analysis.laws import get_law

    rng = np.random.default_rng(seed)
    rows = []
    for kk in range(10):
        C = 1e17 * 2.0**kk
        for tpp in np.geomspace(4, 256, 9):
            N = np.sqrt(C / (6 * tpp))
            rows.append({"flops": C, "params": N, "tokens": C / (6 * N)})
    t = pd.DataFrame(rows)
    law = get_law("chinchilla")
    loss = law.predict(TRUE, params=t["params"].to_numpy(), tokens=t["tokens"].to_numpy())
    t["loss"] = loss * np.exp(NOISE * rng.normal(size=len(t)))
    return t


def porian_pool(data_dir: Path) -> tuple[pd.DataFrame, float, float]:
    d = pd.read_csv(data_dir / "porian_isoflop_points.csv")
    q = d.query(
        "dataset=='rw' and hparams=='tuned' and warmup=='short' and decay=='const' "
        "and param_count=='standard' and loss_split=='val'"
    )[["flops", "params", "tokens", "loss"]].reset_index(drop=True)
    top = q["flops"].max()
    held = q[q["flops"] == top]
    x, y = np.log(held["params"].to_numpy()), held["loss"].to_numpy()
    c = np.polyfit(x, y, 2)  # the held-out budget's IsoFLOP parabola; its vertex is the truth
    xv = -c[1] / (2 * c[0])
    truth = float(np.polyval(c, xv)) if c[0] > 0 and x.min() < xv < x.max() else float(y.min())
    return q[q["flops"] < top].reset_index(drop=True), float(top), truth


class Fitter:
    """Chinchilla fit from a coarse grid plus the previous optimum, then a bootstrap."""

    def __init__(self, n_boot: int):
        from scaling.analysis.laws import get_law

        self.law = get_law("chinchilla")
        self.grid = self.law.start_grid(COARSE)
        self.prev = None
        self.n_boot = n_boot

    def __call__(self, table: pd.DataFrame, target: float):
        from scaling.analysis.extrapolate import predict_loss
        from scaling.analysis.fit import fit_law
        from scaling.analysis.uncertainty import bootstrap

        starts = self.grid if self.prev is None else np.vstack([self.prev[None, :], self.grid])
        fit = fit_law(table, "chinchilla", grid=starts)
        self.prev = fit.theta
        boot = bootstrap(table, fit=fit, n_boot=self.n_boot, seed=0)
        try:
            p = predict_loss(boot, flops=target)
        except ValueError:  # a fit with no finite optimum (an exponent <= 0): no prediction
            p = {"loss": np.nan, "loss_lo": np.nan, "loss_hi": np.nan}
        return boot, p


def run_strategies(pool, start_budgets, target, truth, seeds_random, n_boot, label, per_round=PER_ROUND):
    from scaling.analysis.design import propose_runs

    budgets = sorted(pool["flops"].unique())
    start = pool[pool["flops"].isin(start_budgets)]
    rest = pool[~pool["flops"].isin(start_budgets)].reset_index(drop=True)
    rows = []

    def record(strategy, seed, table, fitter):
        boot, p = fitter(table, target)
        rows.append({
            "pool": label, "strategy": strategy, "seed": seed, "n_runs": len(table),
            "flops_added": float(table["flops"].sum() - start["flops"].sum()),
            "pred": p["loss"], "lo": p["loss_lo"], "hi": p["loss_hi"], "width": p["loss_hi"] - p["loss_lo"],
            "abs_rel_error": abs(p["loss"] / truth - 1), "covered": bool(p["loss_lo"] <= truth <= p["loss_hi"]),
            "fit_alpha": boot.fit.params["alpha"], "fit_beta": boot.fit.params["beta"],
        })  # fmt: skip
        return boot

    # uniform: whole budgets in increasing order
    fitter = Fitter(n_boot)
    table = start
    record("uniform", 0, table, fitter)
    checkpoints = []
    for C in [b for b in budgets if b not in start_budgets]:
        table = pd.concat([table, rest[rest["flops"] == C]])
        checkpoints.append(float(table["flops"].sum() - start["flops"].sum()))
        record("uniform", 0, table, fitter)
    budget_total = checkpoints[-1]
    # random: a random order, scored at the uniform checkpoints
    for seed in range(seeds_random):
        order = np.random.default_rng(100 + seed).permutation(len(rest))
        cum = rest["flops"].to_numpy()[order].cumsum()
        fitter = Fitter(n_boot)
        for cp in checkpoints:
            take = order[cum <= cp * (1 + 1e-9)]
            record("random", seed, pd.concat([start, rest.iloc[take]]), fitter)
    # active: rounds of propose_runs until the uniform grid's FLOPs are spent
    fitter = Fitter(n_boot)
    table, left = start, rest.copy()
    boot = record("active", 0, table, fitter)
    spent = 0.0
    while len(left) and spent < budget_total:
        afford = left[left["flops"] <= budget_total - spent]
        if not len(afford):
            break
        try:
            prop = propose_runs(boot, table, afford, target, per_round)
            idx = afford.index[prop.info["chosen_index"]]
        except ValueError:  # the current fit has no optimum to target: take the cheapest runs
            idx = afford.sort_values("flops").index[:per_round]
        table = pd.concat([table, left.loc[idx]])
        left = left.drop(index=idx)
        spent = float(table["flops"].sum() - start["flops"].sum())
        boot = record("active", 0, table, fitter)
    return pd.DataFrame(rows), budget_total


def flops_to_width(df: pd.DataFrame, width: float) -> float:
    """The FLOPs added when a strategy's interval first got as narrow as ``width``."""
    ok = df[df["width"] <= width * (1 + 1e-9)]
    return float(ok["flops_added"].min()) if len(ok) else float("nan")


def summarize(df: pd.DataFrame, total: float) -> dict:
    out = {}
    u = df[df["strategy"] == "uniform"]
    final_w = float(u["width"].iloc[-1])
    a = df[df["strategy"] == "active"]
    r = df[df["strategy"] == "random"]
    out["uniform_final"] = {"flops_added": total, "width": final_w, "abs_rel_error": float(u["abs_rel_error"].iloc[-1]),
                            "covered": bool(u["covered"].iloc[-1])}  # fmt: skip
    out["active_flops_to_uniform_width"] = flops_to_width(a, final_w)
    out["active_flops_fraction"] = out["active_flops_to_uniform_width"] / total
    out["active_final"] = {"flops_added": float(a["flops_added"].iloc[-1]), "width": float(a["width"].iloc[-1]),
                           "abs_rel_error": float(a["abs_rel_error"].iloc[-1]), "covered": bool(a["covered"].iloc[-1])}  # fmt: skip
    rf = r[np.isclose(r["flops_added"], r["flops_added"].max())] if len(r) else r
    out["random_final_median_width"] = float(rf["width"].median()) if len(rf) else float("nan")
    out["random_flops_fraction_median"] = float(np.nanmedian([flops_to_width(g, final_w) for _, g in r.groupby("seed")]) / total) if len(r) else float("nan")  # fmt: skip
    out["coverage"] = {s: float(g["covered"].mean()) for s, g in df.groupby("strategy")}
    return out


def plot(frames: dict, path: Path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from scaling.plotting.style import save

    fig, axes = plt.subplots(1, len(frames), figsize=(6 * len(frames), 4.3), constrained_layout=True, squeeze=False)
    colors = {"uniform": "tab:blue", "random": "tab:gray", "active": "tab:red"}
    for ax, (label, df) in zip(axes[0], frames.items()):
        keys = [c for c in ("strategy", "noise_seed", "seed") if c in df.columns]
        seen = set()
        for key, g in df.groupby(keys):
            strategy = key[0]
            g = g.sort_values("flops_added")
            x = np.maximum(g["flops_added"], 1e15)
            ax.plot(x, g["width"], "o-" if strategy != "random" else ".-", color=colors[strategy], alpha=0.8 if strategy != "random" else 0.35,
                    label=None if strategy in seen else strategy, ms=3)  # fmt: skip
            seen.add(strategy)
        ax.set(xscale="log", yscale="log", xlabel="FLOPs added beyond the three smallest budgets",
               ylabel="95% interval width of the loss at the target", title=label)  # fmt: skip
        ax.legend(fontsize=8)
    save(fig, path.parent, path.stem, formats=("png",))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="../shared/reference_data/porian2024_isoflop")
    ap.add_argument("--out", default="results/active_design")
    ap.add_argument("--seeds", type=int, default=3, help="noise seeds (synthetic) and random orders")
    ap.add_argument("--n-boot", type=int, default=N_BOOT)
    args = ap.parse_args(argv)
    from scaling.analysis.extrapolate import predict_loss  # noqa: F401  (fail early if missing)
    from scaling.analysis.laws import get_law
    from scaling.atomic import write_text

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    frames, summary = {}, {"seeds": args.seeds, "n_boot": args.n_boot, "per_round": PER_ROUND}
    # synthetic, several noise seeds
    law = get_law("chinchilla")
    from scaling.analysis.optimal import allocation

    G, a, b = allocation(law, np.array([TRUE[p] for p in law.params]), 6.0)
    target = 1e21
    n_t, d_t = G * (target / 6) ** a, (target / 6) ** b / G
    truth = float(law.predict(TRUE, params=n_t, tokens=d_t))
    syn = []
    for s in range(args.seeds):
        pool = synthetic_pool(s)
        df, total = run_strategies(pool, sorted(pool["flops"].unique())[:3], target, truth, 2, args.n_boot, "synthetic")
        df["noise_seed"] = s
        syn.append(df)
        summary[f"synthetic_seed{s}"] = summarize(df.drop(columns="noise_seed"), total)
        print("synthetic", s, json.dumps(summary[f"synthetic_seed{s}"]))
    syn = pd.concat(syn)
    summary["synthetic_truth"] = {"target_flops": target, "loss": truth}
    summary["synthetic_coverage"] = {k: float(g["covered"].mean()) for k, g in syn.groupby("strategy")}
    frames["synthetic (Chinchilla surface, noise 1%)"] = syn
    # Porian's real points as the pool
    pool, top, ptruth = porian_pool(Path(args.data))
    df, total = run_strategies(pool, sorted(pool["flops"].unique())[:3], top, ptruth, args.seeds, args.n_boot, "porian")
    summary["porian"] = summarize(df, total)
    summary["porian_truth"] = {"target_flops": top, "loss": ptruth}
    print("porian", json.dumps(summary["porian"]))
    frames["Porian et al. rw/tuned/const IsoFLOP points"] = df
    allrows = pd.concat([syn, df.assign(noise_seed=-1)])
    write_text(out / "runs.csv", allrows.to_csv(index=False))
    write_text(out / "summary.json", json.dumps(summary, indent=2) + "\n")
    plot(frames, out / "active_design.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
