"""`scaling plan FILE --next K --target-flops C [--results DIR]` and the IsoFLOP grid-bias report.

--next: fit the chinchilla law to the finished runs in DIR (default results/<sweep name>),
bootstrap it (with the calibration of the predictive interval, ``predictive.py``) and
propose the K planned-but-not-done runs that most shrink the calibrated predictive interval
of the loss (or, with --quantity params, the bootstrap interval of N_opt) at the
compute-optimal point of C per FLOP (``scaling.analysis.design.propose_runs``), printing
the expected interval and the extrapolation distance left after each. --budget-flops B:
plan B FLOPs as a whole (the convex relaxation of the design, rounded; a few percent above
the best possible, where greedy picks can be 6-10% above it) and print the certified bound on
what any choice within B could reach. Every input error
(K < 1, a target not above the runs done, no candidate left, a results directory without a
fit-able table) is raised before any fit.

The grid-bias report (an isoflop plan): Approach 2 run on a surface with no noise at the
plan's own (N, D) points, against the surface's true exponents: the bias the grid's spacing
alone puts into a and b. The surface is the fit of DIR's runs when there are enough, else
Epoch AI's refit of Chinchilla (an assumed shape; only where the grid sits relative to the
optimum matters).
"""

from __future__ import annotations

from pathlib import Path

ASSUMED_SURFACE = {"E": 1.82, "A": 482.0, "B": 2085.0, "alpha": 0.3478, "beta": 0.3658}  # Besiroglu et al. 2024
N_BOOT = 200


def planned_table(plan):
    import pandas as pd

    return pd.DataFrame(
        [
            {"run_id": r.run_id, "width": r.width, "depth": r.depth, "budget": r.budget,
             "params": float(r.params_nonembedding), "tokens": float(r.tokens), "flops": float(r.own_flops)}
            for r in plan.runs
            if r.plan_kind != "trunk"
        ]
    )  # fmt: skip


def results_dir(plan, results) -> Path:
    return Path(results) if results else Path("results") / plan.config.sweep.name


def done_table(path: Path):
    """The finished runs in ``path`` as a canonical table, None when it holds no runs file;
    a file that cannot be read as one is an error naming the directory."""
    from scaling.analysis.table import load_table

    if not (path / "runs.csv").exists() and not (path / "runs.parquet").exists():
        return None
    try:
        return load_table(path)
    except ValueError as err:
        raise ValueError(f"{path} holds no fit-able table of finished runs: {err}") from err


MIN_RUNS = 5  # the chinchilla law's parameters


def next_runs(plan, k: int, target_flops: float, results=None, quantity: str = "loss", budget_flops=None) -> str:
    """The proposal's printout; with ``budget_flops`` the K runs come from the relaxed plan
    of that many FLOPs (``propose_runs(method="relaxed")``) and the printout ends with the
    certified bound on what any choice within it could reach (``design_bound``)."""
    from scaling.analysis.design import propose_runs
    from scaling.analysis.fit import fit_law
    from scaling.analysis.uncertainty import bootstrap

    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"--next={k} must be a positive number of runs")
    if not target_flops > 0:
        raise ValueError(f"--target-flops={target_flops} must be a positive number of FLOPs")
    if budget_flops is not None and not budget_flops > 0:
        raise ValueError(f"--budget-flops={budget_flops:g} must be a positive number of FLOPs")
    path = results_dir(plan, results)
    done = done_table(path)
    if done is None or len(done) < MIN_RUNS:
        have = 0 if done is None else len(done)
        raise ValueError(
            f"--next needs finished runs to fit: {path} has {have} (the chinchilla law has {MIN_RUNS} parameters); "
            "train some first (`scaling sweep`) or pass --results DIR"
        )
    if not target_flops > done["flops"].max():
        raise ValueError(
            f"--target-flops={target_flops:.4g} is not above the largest run done ({done['flops'].max():.4g} FLOPs "
            f"in {path}): the design targets an extrapolation"
        )
    planned = planned_table(plan)
    ids = set(done["run_id"]) if "run_id" in done.columns else set()
    cand = planned[~planned["run_id"].isin(ids)] if len(planned) else planned
    if not len(cand):
        raise ValueError(
            f"no candidate runs: every planned run is already done in {path}; add budgets or sizes to the plan"
        )
    fit = fit_law(done, "chinchilla")
    boot = bootstrap(done, fit=fit, n_boot=N_BOOT, seed=0)
    if budget_flops is None:
        return propose_runs(boot, done, cand, target_flops, k, quantity=quantity).summary()
    res = propose_runs(boot, done, cand, target_flops, k, quantity=quantity, max_flops=budget_flops, method="relaxed")
    b = res.info["bound"]  # the relaxed plan's own bound: solved once
    what = "log loss" if quantity == "loss" else "log N_opt"
    return res.summary() + (
        f"\nbound: within {budget_flops:.3g} FLOPs no choice of these {len(cand)} candidates gets the Fisher sd of "
        f"{what} at the target below {b['sd_bound']:.4g} (now {b['sd_done']:.4g}; all of them: {b['sd_all']:.4g}; "
        f"the relaxed plan spends {b['flops']:.3g} FLOPs)"
    )


def grid_bias_report(plan, results=None) -> str:
    from scaling.analysis.design import grid_bias

    if plan.config.sweep.kind != "isoflop":
        return ""
    planned = planned_table(plan)
    if planned["budget"].nunique() < 2:
        return ""
    surface, where = ASSUMED_SURFACE, "an assumed surface (Epoch AI's Chinchilla refit)"
    done = done_table(results_dir(plan, results))
    if done is not None and len(done) >= 5:
        from scaling.analysis.fit import fit_law

        fit = fit_law(done, "chinchilla")
        if fit.converged and fit.params["alpha"] > 0 and fit.params["beta"] > 0:
            surface, where = fit, f"the chinchilla fit of the {len(done)} runs done"
    r = grid_bias(surface, planned)
    lines = [
        f"Approach 2 grid bias on {where}, no noise: a = {r['a']:.4f} vs true {r['a_true']:.4f} "
        f"(bias {r['a_bias']:+.4f}), b = {r['b']:.4f} vs {r['b_true']:.4f} (bias {r['b_bias']:+.4f})"
    ]
    worst = max(r["budgets"], key=lambda b: abs(b["log_ratio"]))
    lines.append(
        f"  largest vertex error at C={worst['budget']:.3g}: N* off by a factor {pow(2.718281828, worst['log_ratio']):.3f} "
        f"(grid centre {worst['grid_centre_log']:+.2f} in ln N from the true optimum, span {worst['grid_span_log']:.2f})"
    )
    return "\n".join(lines)
