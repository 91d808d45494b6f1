"""Active sweep design validated by simulation: active vs uniform IsoFLOP grid vs random at equal FLOPs.

    python experiments/active_design.py [--out results/active_design] [--seeds 5] [--n-boot 100]
        [--strategies uniform,random,active,active_law,active_lookahead] [--skip-porian]
    python experiments/active_design.py --fixed      # the fixed-design study: fixed_designs.csv
    python experiments/active_design.py --summarize  # summary.json, checkpoints.csv, tables.md from runs.csv
    python experiments/active_design.py --bound      # what ANY design could reach: fisher_bound.csv

Two pools, each starting from the runs of its three smallest budgets:

* synthetic: Epoch AI's Chinchilla fit as the true surface (E=1.82, A=482, B=2085,
  alpha=0.348, beta=0.366), 10 IsoFLOP budgets 1e17 * 2^k, 9 sizes per budget (tokens per
  parameter 4..256), log-normal noise sd 0.01, one pool per noise seed; target: the true
  optimal loss at C = 1e21 (3 e-folds beyond the pool), known exactly.
* porian: Porian et al.'s rw/tuned/short/const/standard/val IsoFLOP points (12 budgets,
  1.25e16..2.56e19); the top budget is held out and its IsoFLOP minimum (parabola vertex) is
  the truth the prediction at C = 2.56e19 is scored against.

Every strategy spends the same FLOPs, judged at the same checkpoints: the cumulative FLOPs
of the uniform grid (the next budget's whole IsoFLOP curve at a time), so each checkpoint is
"equal FLOPs" for all strategies. random: pool runs in a random order, each added when it
fits the checkpoint's FLOPs (3 orders per pool). active: ``propose_runs`` (calibrated
predictive criterion), PER_ROUND runs per round with max_flops = what is left to the next
checkpoint, refitted after each round; active_law: the same with interval="law" (the
Fisher criterion on the bootstrap band alone: the ablation); active_lookahead:
``choose_batch`` (a few batches refitted and recalibrated on imputed outcomes). After each
step: the chinchilla fit, a bootstrap (its calibration included), the 95% calibrated
predictive interval of the loss at the target (what ``predict_loss`` reports), the
law-only band, the error against the truth and whether each interval covers it.

Writes runs.csv (every step), checkpoints.csv (every strategy at each checkpoint),
summary.json and tables.md (generated from them; the README quotes them).
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

TRUE = {"E": 1.82, "A": 482.0, "B": 2085.0, "alpha": 0.3478, "beta": 0.3658}
NOISE = 0.01
N_BOOT = 100
PER_ROUND = 3
RANDOM_ORDERS = 3
LOOKAHEAD_DRAWS, LOOKAHEAD_BOOT = 1, 30  # choose_batch: imputation draws and resamples per scored batch
STRATEGIES = ("uniform", "random", "active", "active_relaxed", "active_law", "active_lookahead")
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


def synthetic_truth(target: float) -> float:
    from scaling.analysis.laws import get_law
    from scaling.analysis.optimal import allocation

    law = get_law("chinchilla")
    G, a, b = allocation(law, np.array([TRUE[p] for p in law.params]), 6.0)
    return float(law.predict(TRUE, params=G * (target / 6) ** a, tokens=(target / 6) ** b / G))


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
    """Chinchilla fit from a coarse grid plus the previous optimum, then a calibrated bootstrap."""

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
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # fallback calibrations are recorded, not printed
            fit = fit_law(table, "chinchilla", grid=starts)
            self.prev = fit.theta
            boot = bootstrap(table, fit=fit, n_boot=self.n_boot, seed=0)
        nan = {"loss": np.nan, "loss_lo": np.nan, "loss_hi": np.nan}
        try:
            p = predict_loss(boot, flops=target)
            pl = predict_loss(boot, flops=target, interval="law")
        except ValueError:  # a fit with no finite optimum (an exponent <= 0): no prediction
            p, pl = nan, nan
        return boot, p, pl


class DesignSd:
    """The target's Fisher sd for a table of runs on a fixed surface (the truth, or an
    assumed fit): the noise-free measure of how good a design is, in the units of
    fisher_bound.csv (the same sigma)."""

    def __init__(self, surface, target: float, sigma: float | None):
        from scaling.analysis.design import jacobian
        from scaling.analysis.laws import get_law
        from scaling.analysis.optimal import compute_optimal

        self.law, self.surface = get_law("chinchilla"), surface
        opt = compute_optimal(surface, target, interval="law")
        self.g = jacobian(self.law, surface.theta, np.log([[opt["params"], opt["tokens"]]]))[0]
        self.sigma = sigma

    def __call__(self, table: pd.DataFrame) -> float:
        from scaling.analysis.design import jacobian

        J = jacobian(self.law, self.surface.theta, np.log(table[["params", "tokens"]].to_numpy(float))) / self.sigma
        return float(np.sqrt(self.g @ np.linalg.pinv(J.T @ J) @ self.g))


def surface_of(label: str, pool: pd.DataFrame):
    """(surface, sigma) the design quality is measured on: the truth and its noise for the
    synthetic pool; the fit of the whole pool and its residual scale for a real one."""
    from scaling.analysis.fit import fit_law
    from scaling.analysis.results import FitResult

    if label == "synthetic":
        return FitResult(law="chinchilla", params=dict(TRUE), objective=0.0, grad_norm=0.0, converged=True,
                         n_points=0), NOISE  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        surface = fit_law(pool, "chinchilla")
    r = np.log(surface.predict(params=pool["params"], tokens=pool["tokens"])) - np.log(pool["loss"].to_numpy(float))
    return surface, float(1.4826 * np.median(np.abs(r - np.median(r))))


def run_strategies(pool, target, truth, n_boot, label, *, orders=RANDOM_ORDERS, strategies=STRATEGIES):
    """Every strategy from the three smallest budgets to the uniform grid's FLOPs: (steps, checkpoints)."""
    from scaling.analysis.design import choose_batch, propose_runs

    surface, sigma = surface_of(label, pool)
    design_sd = DesignSd(surface, target, sigma)

    budgets = sorted(pool["flops"].unique())
    start = pool[pool["flops"].isin(budgets[:3])]
    rest = pool[~pool["flops"].isin(budgets[:3])]
    base = float(start["flops"].sum())
    checkpoints = list(np.cumsum([rest.loc[rest["flops"] == C, "flops"].sum() for C in budgets[3:]]))
    rows = []

    def record(strategy, seed, table, fitter, checkpoint):
        boot, p, pl = fitter(table, target)
        cal = boot.fit.calibration
        rows.append({
            "pool": label, "strategy": strategy, "order": seed, "n_runs": len(table), "checkpoint": checkpoint,
            "flops_added": float(table["flops"].sum() - base), "top_budget": float(table["flops"].max()),
            "pred": p["loss"], "lo": p["loss_lo"], "hi": p["loss_hi"], "width": p["loss_hi"] - p["loss_lo"],
            "law_lo": pl["loss_lo"], "law_hi": pl["loss_hi"], "law_width": pl["loss_hi"] - pl["loss_lo"],
            "abs_rel_error": abs(p["loss"] / truth - 1), "covered": bool(p["loss_lo"] <= truth <= p["loss_hi"]),
            "law_covered": bool(pl["loss_lo"] <= truth <= pl["loss_hi"]),
            "kappa": cal.kappa, "calibrated": cal.calibrated, "fit_alpha": boot.fit.params["alpha"],
            "design_sd": design_sd(table),
            "fit_beta": boot.fit.params["beta"],
        })  # fmt: skip
        return boot

    if "uniform" in strategies:
        fitter, table = Fitter(n_boot), start
        record("uniform", 0, table, fitter, 0)
        for i, C in enumerate(budgets[3:]):
            table = pd.concat([table, rest[rest["flops"] == C]])
            record("uniform", 0, table, fitter, i + 1)
    if "random" in strategies:
        for seed in range(orders):
            order = list(np.random.default_rng(100 + seed).permutation(rest.index))
            fitter, table, spent = Fitter(n_boot), start, 0.0
            for i, cp in enumerate(checkpoints):
                take = []
                for idx in list(order):  # each run in the order that still fits this checkpoint
                    if spent + rest.at[idx, "flops"] <= cp * (1 + 1e-9):
                        take.append(idx)
                        spent += rest.at[idx, "flops"]
                        order.remove(idx)
                table = pd.concat([table, rest.loc[take]])
                record("random", seed, table, fitter, i + 1)
    for name, interval in (("active", "predictive"), ("active_relaxed", "relaxed"), ("active_law", "law"),
                           ("active_lookahead", "lookahead")):  # fmt: skip
        if name not in strategies:
            continue
        fitter, table, left = Fitter(n_boot), start, rest.copy()
        boot = record(name, 0, table, fitter, 0)
        for i, cp in enumerate(checkpoints):
            while len(left):
                spent = float(table["flops"].sum() - base)
                allow = max(cp * (1 + 1e-9) - spent, 1.0)
                try:
                    if interval == "lookahead":
                        chosen, _ = choose_batch(boot, table, left, target, allow, k_next=PER_ROUND,
                                                 draws=LOOKAHEAD_DRAWS, n_boot=LOOKAHEAD_BOOT)  # fmt: skip
                    else:
                        method = "relaxed" if interval == "relaxed" else "greedy"
                        chosen = propose_runs(boot, table, left, target, PER_ROUND, max_flops=allow, method=method,
                                              interval="law" if interval == "law" else "predictive",
                                              ).info["chosen_index"]  # fmt: skip
                    idx = left.index[chosen]
                except ValueError:  # the current fit has no optimum to target: the cheapest affordable runs
                    ok = left[left["flops"] <= cp * (1 + 1e-9) - spent]
                    idx = ok.sort_values("flops").index[:PER_ROUND]
                if not len(idx):
                    break
                table = pd.concat([table, left.loc[idx]])
                left = left.drop(index=idx)
                boot = record(name, 0, table, fitter, -1)  # a step inside the checkpoint
            rows[-1]["checkpoint"] = i + 1 if rows[-1]["checkpoint"] == -1 else rows[-1]["checkpoint"]
            if rows[-1]["strategy"] != name or rows[-1]["checkpoint"] != i + 1:
                rows.append({**rows[-1], "checkpoint": i + 1})  # nothing added: the last state carries over
    steps = pd.DataFrame(rows)
    steps["checkpoint_flops"] = [0.0 if c <= 0 else checkpoints[c - 1] for c in steps["checkpoint"]]
    steps["checkpoint_fraction"] = steps["checkpoint_flops"] / checkpoints[-1]
    return steps, checkpoints


def _middle(g: pd.DataFrame, k: int) -> pd.Index:
    """The k middle sizes of one budget's IsoFLOP curve (by rank of N: no outcome is used)."""
    order = g.sort_values("params").index
    lo = max((len(order) - k) // 2, 0)
    return order[lo : lo + k]


def fixed_designs(pool: pd.DataFrame, target, truth, n_boot, label) -> pd.DataFrame:
    """Structured designs of about half the uniform grid's FLOPs or less, chosen before any
    outcome is seen: is *any* of them as narrow as the uniform grid's final interval?"""
    budgets = sorted(pool["flops"].unique())
    start = pool[pool["flops"].isin(budgets[:3])]
    rest = pool[~pool["flops"].isin(budgets[:3])]
    by = dict(tuple(rest.groupby("flops")))
    n = int(np.median([len(g) for g in by.values()]))

    def middle(k, which=budgets[3:]):
        return np.concatenate([_middle(by[b], k) for b in which])

    def ends_and_centre(g):
        o = g.sort_values("params").index
        return [o[0], o[len(o) // 2], o[-1]]

    designs = {
        "uniform without the top budget": rest.index[rest["flops"] < budgets[-1]],
        f"middle {n // 2 + 1} of {n} sizes at every budget": middle(n // 2 + 1),
        f"middle 3 of {n} sizes at every budget": middle(3),
        "smallest, middle, largest size at every budget": np.concatenate([ends_and_centre(by[b]) for b in budgets[3:]]),
        "every other budget whole, the top budget's middle half": np.concatenate(
            [by[b].index for b in budgets[3:-1][::-2]] + [_middle(by[budgets[-1]], n // 2)]),
        "the whole pool (= the uniform grid's final table)": rest.index,
    }  # fmt: skip
    rows = []
    total = float(rest["flops"].sum())
    surface, sigma = surface_of(label, pool)
    design_sd = DesignSd(surface, target, sigma)
    for name, idx in designs.items():
        table = pd.concat([start, rest.loc[idx]])
        boot, p, pl = Fitter(n_boot)(table, target)
        rows.append({
            "pool": label, "design": name, "n_runs": len(table), "flops_fraction": float(rest.loc[idx, "flops"].sum() / total),
            "width": p["loss_hi"] - p["loss_lo"], "law_width": pl["loss_hi"] - pl["loss_lo"],
            "kappa": boot.fit.calibration.kappa, "abs_rel_error": abs(p["loss"] / truth - 1),
            "design_sd": design_sd(table),
            "covered": bool(p["loss_lo"] <= truth <= p["loss_hi"]),
        })  # fmt: skip
    return pd.DataFrame(rows)


def at_checkpoints(steps: pd.DataFrame) -> pd.DataFrame:
    """One row per (strategy, order, checkpoint): the state when that checkpoint's FLOPs were spent."""
    return steps[steps["checkpoint"] >= 0].drop_duplicates(["strategy", "order", "checkpoint"], keep="last")


def flops_fraction_to(width: float, g: pd.DataFrame, total: float, column: str = "width") -> float:
    """The share of the uniform grid's FLOPs at which a strategy's interval first got as narrow as width."""
    ok = g[g[column] <= width * (1 + 1e-9)]
    return float(ok["flops_added"].min() / total) if len(ok) else float("inf")  # inf: never, not even at 100%


def summarize(steps: pd.DataFrame, total: float) -> dict:
    cp = at_checkpoints(steps)
    last = int(cp["checkpoint"].max())
    u = cp[cp["strategy"] == "uniform"].set_index("checkpoint")
    w_final = float(u.loc[last, "width"])
    half = int(cp.loc[cp["checkpoint_fraction"] <= 0.5 + 1e-9, "checkpoint"].max())
    out = {"uniform_final": {"flops_added": total, "width": w_final, "law_width": float(u.loc[last, "law_width"]),
                             "abs_rel_error": float(u.loc[last, "abs_rel_error"]),
                             "covered": bool(u.loc[last, "covered"])},
           "half_checkpoint": {"checkpoint": half, "fraction": float(cp.loc[cp["checkpoint"] == half,
                                                                          "checkpoint_fraction"].iloc[0])},
           "checkpoint_fractions": {int(c): float(f) for c, f in
                                    u.loc[u.index >= 1, "checkpoint_fraction"].items()}}  # fmt: skip
    for s, g in cp.groupby("strategy"):
        st = g  # judged at the checkpoints only: every strategy gets the same number of looks at the same FLOPs
        h, f = g[g["checkpoint"] == half], g[g["checkpoint"] == last]
        out[s] = {
            "width_at_half": float(h["width"].median()),
            "width_ratio_at_half": float(h["width"].median() / w_final),
            "abs_rel_error_at_half": float(h["abs_rel_error"].median()),
            "covered_at_half": float(h["covered"].mean()),
            "width_final": float(f["width"].median()),
            "abs_rel_error_final": float(f["abs_rel_error"].median()),
            "flops_fraction_to_uniform_width": float(np.nanmedian(
                [flops_fraction_to(w_final, gg, total) for _, gg in st.groupby("order")] or [np.nan])),
            "law_width_at_half": float(h["law_width"].median()),
            "kappa_at_half": float(h["kappa"].median()),
            "law_flops_fraction_to_uniform_law_width": float(np.nanmedian(
                [flops_fraction_to(float(u.loc[last, "law_width"]), gg, total, "law_width")
                 for _, gg in st.groupby("order")] or [np.nan])),
            "coverage_checkpoints": float(g["covered"].mean()),
            "law_coverage_checkpoints": float(g["law_covered"].mean()),
            "median_abs_rel_error_checkpoints": float(g["abs_rel_error"].median()),
            # at each uniform checkpoint c: FLOPs this strategy needed to get as narrow as the
            # uniform grid at c, over the uniform grid's FLOPs at c (median over random orders)
            "flops_ratio_per_checkpoint": {
                int(c): float(np.nanmedian([flops_fraction_to(u.loc[c, "width"], gg, u.loc[c, "flops_added"])
                                            for _, gg in st.groupby("order")]))
                for c in u.index if c >= 1
            },
        }  # fmt: skip
        if "design_sd" in g.columns and g["design_sd"].notna().all():  # the noise-free design quality
            out[s].update({
                "design_sd_at_half": float(h["design_sd"].median()),
                "design_sd_ratio_at_half": float(h["design_sd"].median() / u.loc[last, "design_sd"]),
                "design_flops_ratio_per_checkpoint": {
                    int(c): float(np.nanmedian([flops_fraction_to(u.loc[c, "design_sd"], gg, u.loc[c, "flops_added"],
                                                                  "design_sd") for _, gg in st.groupby("order")]))
                    for c in u.index if c >= 1},
                "design_sd_ratio_per_checkpoint": {
                    int(c): float(g.loc[g["checkpoint"] == c, "design_sd"].median() / u.loc[c, "design_sd"])
                    for c in u.index if c >= 1},
            })  # fmt: skip
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="../shared/reference_data/porian2024_isoflop")
    ap.add_argument("--out", default="results/active_design")
    ap.add_argument("--seeds", type=int, default=5, help="noise seeds of the synthetic pool")
    ap.add_argument("--n-boot", type=int, default=N_BOOT)
    ap.add_argument("--skip-porian", action="store_true")
    ap.add_argument("--summarize", action="store_true", help="recompute summary.json from OUT/runs.csv only")
    ap.add_argument(
        "--merge", metavar="DIR", help="add DIR/runs.csv's non-uniform strategies to OUT's, then --summarize"
    )
    ap.add_argument("--fixed", action="store_true", help="only the fixed-design study: OUT/fixed_designs.csv")
    ap.add_argument("--bound", action="store_true", help="only the design bound: OUT/fisher_bound.csv")
    ap.add_argument(
        "--strategies", default=",".join(STRATEGIES), help="comma-separated subset of " + ",".join(STRATEGIES)
    )
    args = ap.parse_args(argv)
    if args.merge:
        return merge_runs(Path(args.out), Path(args.merge))
    if args.summarize:
        return resummarize(Path(args.out))
    if args.fixed:
        return run_fixed(args)
    if args.bound:
        return run_bound(args)
    from scaling.atomic import write_text
    from scaling.runtime import enable_compilation_cache

    enable_compilation_cache()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    strategies = tuple(x for x in args.strategies.split(",") if x)
    unknown = [x for x in strategies if x not in STRATEGIES]
    if unknown or "uniform" not in strategies:
        raise SystemExit(f"--strategies: unknown {unknown} (the uniform grid is always needed); pick from {STRATEGIES}")
    meta = {"seeds": args.seeds, "n_boot": args.n_boot, "per_round": PER_ROUND, "random_orders": RANDOM_ORDERS,
            "noise": NOISE, "true_surface": TRUE, "command": "python experiments/active_design.py " +
            f"--seeds {args.seeds} --n-boot {args.n_boot}"}  # fmt: skip
    target = 1e21
    truth = synthetic_truth(target)
    summary: dict = {"meta": meta, "synthetic_truth": {"target_flops": target, "loss": truth}}
    frames = []
    for s in range(args.seeds):
        steps, cps = run_strategies(synthetic_pool(s), target, truth, args.n_boot, "synthetic", strategies=strategies)
        steps["noise_seed"] = s
        frames.append(steps)
        summary[f"synthetic_seed{s}"] = summarize(steps, cps[-1])
        print(f"synthetic seed {s} ({time.time() - t0:.0f} s)", json.dumps(summary[f"synthetic_seed{s}"]), flush=True)
    if not args.skip_porian:
        data = Path(args.data)
        if not (data / "porian_isoflop_points.csv").exists():
            raise SystemExit(f"{data}/porian_isoflop_points.csv not found (pass --data or --skip-porian)")
        pool, top, ptruth = porian_pool(data)
        steps, cps = run_strategies(pool, top, ptruth, args.n_boot, "porian", strategies=strategies)
        steps["noise_seed"] = -1
        frames.append(steps)
        summary["porian"] = summarize(steps, cps[-1])
        summary["porian_truth"] = {"target_flops": top, "loss": ptruth}
        print(f"porian ({time.time() - t0:.0f} s)", json.dumps(summary["porian"]), flush=True)
    allrows = pd.concat(frames, ignore_index=True)
    if args.seeds:  # --seeds 0: the real pool only
        summary["synthetic_over_seeds"] = over_seeds(summary, args.seeds)
    meta["seconds"] = round(time.time() - t0)
    meta.update(provenance(Path(args.data)))
    write_text(out / "runs.csv", allrows.to_csv(index=False))
    cp = at_checkpoints_all(allrows)
    write_text(out / "checkpoints.csv", cp.to_csv(index=False))
    write_text(out / "summary.json", json.dumps(summary, indent=2, default=float) + "\n")
    return 0


def run_fixed(args) -> int:
    """fixed_designs on every synthetic seed and on Porian's pool: OUT/fixed_designs.csv."""
    from scaling.atomic import write_text
    from scaling.runtime import enable_compilation_cache

    enable_compilation_cache()
    target = 1e21
    truth = synthetic_truth(target)
    frames = []
    for s in range(args.seeds):
        frames.append(fixed_designs(synthetic_pool(s), target, truth, args.n_boot, "synthetic").assign(noise_seed=s))
        print(frames[-1].to_string(), flush=True)
    if not args.skip_porian:
        pool, top, ptruth = porian_pool(Path(args.data))
        frames.append(fixed_designs(pool, top, ptruth, args.n_boot, "porian").assign(noise_seed=-1))
        print(frames[-1].to_string(), flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_text(out / "fixed_designs.csv", pd.concat(frames, ignore_index=True).to_csv(index=False))
    return 0


def fisher_bounds(pool: pd.DataFrame, surface, sigma: float, target: float, label: str) -> pd.DataFrame:
    """At every checkpoint of the uniform grid: its Fisher sd of the target against the
    certified lower bound (``design_bound``) for any design from the same pool at half
    its FLOPs: the best a design could do, on the linearised law at ``surface``; and how
    far above that bound the greedy and the relaxed planner land when each plans that half
    budget once, on the surface itself (no noise, no refits)."""
    from scaling.analysis.design import design_bound, propose_runs

    budgets = sorted(pool["flops"].unique())
    start = pool[pool["flops"].isin(budgets[:3])]
    rest = pool[~pool["flops"].isin(budgets[:3])]
    design_sd = DesignSd(surface, target, sigma)
    total, rows = float(rest["flops"].sum()), []
    for k, C in enumerate(budgets[3:], 1):
        uni = pd.concat([start, rest[rest["flops"] <= C]])
        flops = float(uni["flops"].sum() - start["flops"].sum())
        b = design_bound(surface, start, rest, target, flops / 2, sigma=sigma)
        sd_u = design_sd(uni)
        r = b["sd_bound"] / sd_u
        n = b["sigma"]  # the run noise the predictive interval adds (kappa = 0: the law is right)
        planned = {}  # each planner once, on the surface itself, for the same half budget
        for method in ("greedy", "relaxed"):
            res = propose_runs(surface, start, rest, target, len(rest), interval="law", sigma=b["sigma"],
                               max_flops=flops / 2, method=method)  # fmt: skip
            planned[method] = design_sd(pd.concat([start, rest.iloc[res.info["chosen_index"]]])) / b["sd_bound"]
        rows.append({"pool": label, "checkpoint": k, "fraction": flops / total, "sd_uniform": sd_u,
                     "sd_bound_at_half": b["sd_bound"], "sd_relaxed_at_half": b["sd_relaxed"], "ratio_bound": r,
                     "predictive_ratio_bound": float(np.sqrt((r * sd_u) ** 2 + n**2) / np.sqrt(sd_u**2 + n**2)),
                     "sigma": n, "solver_converged": b["converged"], "greedy_over_bound": planned["greedy"],
                     "relaxed_over_bound": planned["relaxed"]})  # fmt: skip
    return pd.DataFrame(rows)


def run_bound(args) -> int:
    """fisher_bounds on the synthetic pool (the true surface, its true noise) and on
    Porian's (the fit of the whole pool as the surface): OUT/fisher_bound.csv."""
    from scaling.atomic import write_text

    frames = [fisher_bounds(synthetic_pool(0), *surface_of("synthetic", None), 1e21, "synthetic")]
    if not args.skip_porian:
        pool, top, _ = porian_pool(Path(args.data))
        frames.append(fisher_bounds(pool, *surface_of("porian", pool), top, "porian"))
    out = pd.concat(frames, ignore_index=True)
    print(out.to_string(), flush=True)
    Path(args.out).mkdir(parents=True, exist_ok=True)
    write_text(Path(args.out) / "fisher_bound.csv", out.to_csv(index=False))
    return 0


def provenance(data: Path = Path("../shared/reference_data/porian2024_isoflop")) -> dict:
    """Versions and the Porian table's hash, recorded with every summary."""
    import hashlib
    from importlib.metadata import version

    csv = data / "porian_isoflop_points.csv"
    return {
        "versions": {p: version(p) for p in ("jax", "numpy", "scipy", "pandas", "optax")},
        "porian_sha256": hashlib.sha256(csv.read_bytes()).hexdigest() if csv.exists() else None,
        "lookahead": {"draws": LOOKAHEAD_DRAWS, "n_boot": LOOKAHEAD_BOOT},
    }


def merge_runs(out: Path, other: Path) -> int:
    """Another run's strategies (e.g. --strategies uniform,active_lookahead on fewer seeds)
    into OUT/runs.csv: their rows replace OUT's rows of the same strategies; the uniform
    grid, the checkpoints' reference, must agree between the two on the pools they share."""
    from scaling.atomic import write_text

    mine, new = pd.read_csv(out / "runs.csv"), pd.read_csv(other / "runs.csv")
    key = ["pool", "noise_seed", "checkpoint"]
    u = mine[mine["strategy"] == "uniform"].merge(new[new["strategy"] == "uniform"], on=key, suffixes=("", "_new"))
    if not len(u) or not np.allclose(u["width"], u["width_new"], rtol=1e-6, equal_nan=True):
        raise SystemExit(f"{other}: its uniform grid differs from {out}'s (another pool, seed or code): not merged")
    added = set(new["strategy"]) - {"uniform"}
    merged = pd.concat([mine[~mine["strategy"].isin(added)], new[new["strategy"].isin(added)]], ignore_index=True)
    write_text(out / "runs.csv", merged.to_csv(index=False))
    print(f"merged {sorted(added)} ({int(new['strategy'].isin(added).sum())} rows) from {other}")
    return resummarize(out)


def resummarize(out: Path) -> int:
    """summary.json and checkpoints.csv again from runs.csv (no fit is repeated)."""
    from scaling.atomic import write_text

    allrows = pd.read_csv(out / "runs.csv")
    summary = json.loads((out / "summary.json").read_text())
    seeds = sorted(s for s in allrows["noise_seed"].unique() if s >= 0)
    for pool, g in allrows.groupby("pool"):
        for seed, gs in g.groupby("noise_seed"):
            total = float(gs.loc[gs["strategy"] == "uniform", "checkpoint_flops"].max())
            key = f"synthetic_seed{seed}" if pool == "synthetic" else "porian"
            summary[key] = summarize(gs.drop(columns="noise_seed"), total)
    summary["synthetic_over_seeds"] = over_seeds(summary, len(seeds))
    summary["meta"].update(provenance())
    write_text(out / "checkpoints.csv", at_checkpoints_all(allrows).to_csv(index=False))
    write_text(out / "summary.json", json.dumps(summary, indent=2, default=float) + "\n")
    fixed = pd.read_csv(out / "fixed_designs.csv") if (out / "fixed_designs.csv").exists() else None
    write_text(out / "tables.md", markdown(summary, fixed))
    return 0


def markdown(summary: dict, fixed: pd.DataFrame | None) -> str:
    """tables.md: the headline numbers of summary.json (and fixed_designs.csv) as tables."""
    o = summary["synthetic_over_seeds"]
    names = [s for s in STRATEGIES if s in o]

    def mr(d, pct=False):  # pct: decimals of a percentage
        f = (
            (lambda x: f"{100 * x:.{pct}f}%" if np.isfinite(x) else "never")
            if pct is not False
            else (lambda x: f"{x:.3g}")
        )
        return f"{f(d['median'])} [{f(d['min'])}, {f(d['max'])}]"

    def mr1(x):
        return f"{100 * x:.0f}%" if np.isfinite(x) else "never"

    uw, ul = o["uniform_final_width"], o["uniform_final_law_width"]
    lines = [
        "## Synthetic surface: median [range] over the noise seeds",
        "",
        f"Uniform grid's final table (the whole pool): predictive width {mr(uw)}, law-band width {mr(ul)}.",
        "At the checkpoint of 49.6% of the uniform grid's FLOPs:",
        "",
        "| strategy | predictive width | / uniform final (per seed) | law-band width | abs. error | "
        "FLOPs to reach the uniform final width | coverage (all checkpoints) |",
        "|---|---|---|---|---|---|---|",
    ]
    for n in names:
        d = o[n]
        lines.append(
            f"| {n} ({d['n_seeds']} seeds) | {mr(d['width_at_half'])} | {mr(d['width_ratio_at_half'])} | {mr(d['law_width_at_half'])} | "
            f"{mr(d['abs_rel_error_at_half'], 1)} | {mr(d['flops_fraction_to_uniform_width'], 0)} | "
            f"{mr(d['coverage_checkpoints'], 0)} (law band {mr(d['law_coverage_checkpoints'], 0)}) |"
        )
    if any("design_flops_ratio_per_checkpoint" in o[n] for n in names):
        fr = summary["synthetic_seed0"]["checkpoint_fractions"]
        head = " | ".join(f"{100 * fr[c]:.1f}%" for c in sorted(fr, key=int))
        lines += ["", "At each checkpoint of the uniform grid (its share of the FLOPs in the header), median over "
                  "the seeds: the FLOPs a strategy needed to get as narrow as the uniform grid there, over the "
                  "uniform grid's FLOPs there (<= 50% is the target; 'never' = not even with the whole pool), "
                  "by the calibrated predictive width and by the design's Fisher sd on the true surface "
                  "(noise-free), and that sd over the uniform grid's at equal FLOPs.", "",
                  f"| strategy | measure | {head} |", "|---|---|" + "---|" * len(fr)]  # fmt: skip
        for n in names:
            for key, what in (("flops_ratio_per_checkpoint", "FLOPs to the width"),
                              ("design_flops_ratio_per_checkpoint", "FLOPs to the Fisher sd"),
                              ("design_sd_ratio_per_checkpoint", "Fisher sd / uniform's")):  # fmt: skip
                if key in o[n]:
                    v = o[n][key]
                    cells = [mr1(v[c]) if "FLOPs" in what else f"{v[c]:.3f}" for c in sorted(v, key=int)]
                    lines.append(f"| {n} | {what} | " + " | ".join(cells) + " |")
    if "porian" in summary:
        p = summary["porian"]
        h = p["half_checkpoint"]
        lines += [
            "",
            f"## Porian et al. (top budget held out; truth {summary['porian_truth']['loss']:.4f})",
            "",
            f"Uniform grid's final width {p['uniform_final']['width']:.3g} (law band "
            f"{p['uniform_final']['law_width']:.3g}), error {100 * p['uniform_final']['abs_rel_error']:.1f}%. "
            f"Half checkpoint: {100 * h['fraction']:.0f}% of its FLOPs. Random: median over 3 orders.",
            "",
            "| strategy | width at the half checkpoint | / uniform final | law band | abs. error | FLOPs to reach "
            "the uniform final width | coverage (predictive / law band, all checkpoints) |",
            "|---|---|---|---|---|---|---|",
        ]
        for n in [s for s in STRATEGIES if s in p]:
            d = p[n]
            lines.append(
                f"| {n} | {d['width_at_half']:.3g} | {d['width_ratio_at_half']:.2f} | {d['law_width_at_half']:.3g} | "
                f"{100 * d['abs_rel_error_at_half']:.1f}% | {mr1(d['flops_fraction_to_uniform_width'])} | "
                f"{100 * d['coverage_checkpoints']:.0f}% / {100 * d['law_coverage_checkpoints']:.0f}% |"
            )
    if fixed is not None and len(fixed):
        lines += ["", "## Fixed designs chosen before any outcome (fixed_designs.csv)", "",
                  "| pool | design | FLOPs share | predictive width: median [range] over seeds | law band | "
                  "abs. error | covered |", "|---|---|---|---|---|---|---|"]  # fmt: skip
        for (pool, design), g in fixed.groupby(["pool", "design"], sort=False):
            w = g["width"]
            lines.append(
                f"| {pool} | {design} | {100 * g['flops_fraction'].iloc[0]:.0f}% | {w.median():.3g} "
                f"[{w.min():.3g}, {w.max():.3g}] | {g['law_width'].median():.3g} | "
                f"{100 * g['abs_rel_error'].median():.1f}% | {100 * g['covered'].mean():.0f}% |"
            )
    return "\n".join(lines) + "\n"


def at_checkpoints_all(allrows: pd.DataFrame) -> pd.DataFrame:
    keys = ["pool", "noise_seed", "strategy", "order", "checkpoint"]
    return allrows[allrows["checkpoint"] >= 0].drop_duplicates(keys, keep="last")


def over_seeds(summary: dict, seeds: int) -> dict:
    """Median and range over the synthetic noise seeds of each strategy's headline numbers."""
    out = {}
    per = [summary[f"synthetic_seed{s}"] for s in range(seeds)]
    for strategy in STRATEGIES:
        if not any(strategy in p for p in per):
            continue
        out[strategy] = {}
        for key in ("flops_fraction_to_uniform_width", "width_at_half", "width_ratio_at_half", "law_width_at_half",
                    "law_flops_fraction_to_uniform_law_width", "kappa_at_half", "coverage_checkpoints",
                    "law_coverage_checkpoints", "abs_rel_error_at_half", "width_final"):  # fmt: skip
            v = np.array([p[strategy][key] for p in per if strategy in p], dtype=float)
            out[strategy][key] = {"median": float(np.nanmedian(v)), "min": float(np.nanmin(v)),
                                  "max": float(np.nanmax(v)), "values": v.tolist()}  # fmt: skip
        out[strategy]["n_seeds"] = sum(strategy in p for p in per)
        for key in (
            "flops_ratio_per_checkpoint",
            "design_flops_ratio_per_checkpoint",
            "design_sd_ratio_per_checkpoint",
        ):
            have = [p[strategy][key] for p in per if strategy in p and key in p[strategy]]
            if have:
                out[strategy][key] = {c: float(np.nanmedian([h[c] for h in have])) for c in have[0]}
    for key in ("width", "law_width"):
        uw = np.array([p["uniform_final"][key] for p in per])
        out[f"uniform_final_{key}"] = {"median": float(np.median(uw)), "min": float(uw.min()), "max": float(uw.max())}
    return out


if __name__ == "__main__":
    raise SystemExit(main())
