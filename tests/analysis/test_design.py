"""Active design: the Fisher criterion's updates, the picks, bad targets, the IsoFLOP grid bias."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from scaling.analysis.design import grid_bias, jacobian, propose_runs
from scaling.analysis.fit import fit_law
from scaling.analysis.laws import get_law

TRUE = {"E": 1.82, "A": 482.0, "B": 2085.0, "alpha": 0.3478, "beta": 0.3658}


TPP = np.geomspace(4, 256, 7)


def isoflop_grid(budgets, tpp=TPP):
    rows = [{"params": np.sqrt(C / (6 * t)), "budget": C} for C in budgets for t in tpp]
    t = pd.DataFrame(rows)
    t["tokens"] = t["budget"] / (6 * t["params"])
    t["flops"] = t["budget"]
    return t


def noisy(t, seed=0, sd=0.01):
    law = get_law("chinchilla")
    loss = law.predict(TRUE, params=t["params"].to_numpy(), tokens=t["tokens"].to_numpy())
    return t.assign(loss=loss * np.exp(sd * np.random.default_rng(seed).normal(size=len(t))))


@pytest.fixture(scope="module")
def setting():
    done = noisy(isoflop_grid([1e17, 2e17, 4e17, 8e17]))
    fit = fit_law(done, "chinchilla", grid=get_law("chinchilla").start_grid({
        "log_E": [0.0, 1.0], "log_A": [4.0, 8.0], "log_B": [4.0, 8.0], "alpha": [0.3, 0.6], "beta": [0.3, 0.6]}))  # fmt: skip
    cand = isoflop_grid([1.6e18, 3.2e18, 6.4e18])
    return fit, done, cand


def test_picks_shrink_the_fisher_variance_as_a_direct_recomputation_says(setting):
    fit, done, cand = setting
    res = propose_runs(fit, done, cand, 1e20, 4, sigma=0.01)
    picks = res.picks
    assert len(picks) == 4 and len(set(res.info["chosen_index"])) == 4
    assert np.all(np.diff(picks["expected_width"]) < 0)
    assert np.all(np.diff(picks["cumulative_flops"]) > 0)
    # the rank-one updates equal a direct inverse of the augmented information
    law = get_law("chinchilla")
    lx = lambda t: np.log(t[["params", "tokens"]].to_numpy(float))  # noqa: E731
    from scaling.analysis.optimal import compute_optimal

    opt = compute_optimal(fit, 1e20)
    g = jacobian(law, fit.theta, np.log([[opt["params"], opt["tokens"]]]))[0]

    def var(table):
        J = jacobian(law, fit.theta, lx(table))
        info = J.T @ J / 0.01**2
        info += 1e-9 * np.trace(info) / 5 * np.eye(5)
        return g @ np.linalg.pinv(info) @ g

    v0 = var(done)
    v2 = var(pd.concat([done, cand.iloc[res.info["chosen_index"][:2]]]))
    assert picks["fisher_ratio"].iloc[1] == pytest.approx(np.sqrt(v2 / v0), rel=1e-3)  # the ridge differs slightly
    assert res.interval == "law" and "no bootstrap attached" in res.summary()  # a bare fit: no calibration
    assert "expected interval" in res.summary()


def test_target_below_the_runs_done_is_an_error(setting):
    fit, done, cand = setting
    with pytest.raises(ValueError, match=r"target flops 1e\+17 is not above the largest run done \(8e\+17"):
        propose_runs(fit, done, cand, 1e17, 2)
    with pytest.raises(ValueError, match="k_next must be a positive integer; got 0"):
        propose_runs(fit, done, cand, 1e20, 0)
    with pytest.raises(ValueError, match="no candidate runs to choose from"):
        propose_runs(fit, done, cand.iloc[:0], 1e20, 2)
    with pytest.raises(ValueError, match=r"candidates need columns params, tokens; missing \['tokens'\]"):
        propose_runs(fit, done, cand.drop(columns="tokens"), 1e20, 2)
    with pytest.raises(ValueError, match="max_flops must be a positive number of FLOPs; got 0"):
        propose_runs(fit, done, cand, 1e20, 2, max_flops=0)
    with pytest.raises(ValueError, match="interval must be one of"):
        propose_runs(fit, done, cand, 1e20, 2, interval="bootstrap")


def test_grid_bias_centred_vs_off_centre():
    budgets = [1e18 * 4.0**i for i in range(5)]
    law = get_law("chinchilla")
    from scaling.analysis.optimal import allocation

    G, a, _ = allocation(law, np.array([TRUE[p] for p in law.params]), 6.0)
    centred = pd.DataFrame(
        [{"params": G * (C / 6) ** a * f, "budget": C} for C in budgets for f in np.geomspace(1 / 8, 8, 7)]
    )
    r0 = grid_bias(TRUE, centred)
    assert r0["a_true"] == pytest.approx(a)
    assert abs(r0["a_bias"]) < 2e-3
    # the same sizes at every budget (a fixed family): off-centre at both ends of the range
    fixed = pd.DataFrame([{"params": n, "budget": C} for C in budgets for n in np.geomspace(1e8, 3e9, 7)])
    r1 = grid_bias(TRUE, fixed)
    assert abs(r1["a_bias"]) > 5 * abs(r0["a_bias"])
    assert r1["a_bias"] + r1["b_bias"] == pytest.approx(0, abs=1e-6)


SWEEP = """
[sweep]
name = "tiny"
kind = "isoflop"
budgets = [1e15, 2e15, 4e15, 8e15, 1.6e16]
points_per_budget = 5
tokens_per_param = 20
tokens_per_param_range = [4, 100]
flop_convention = "6N"

[family]
widths = { start = 16, stop = 512, step = 8 }
depth = 4

[model]
head_dim = 8
seq_len = 32

[optimizer]
lr = 0.01
"""


def tiny_store(tmp_path, n_budgets=3, sweep=SWEEP):
    """A sweep config and a results directory holding its smallest budgets' runs, their
    losses drawn from the synthetic surface."""
    from scaling.sweep import load_sweep_config, plan_sweep

    cfg = tmp_path / "tiny.toml"
    cfg.write_text(sweep)
    plan = plan_sweep(load_sweep_config(cfg))
    budgets = sorted({r.budget for r in plan.runs})[:n_budgets]
    runs = pd.DataFrame(
        [{"run_id": r.run_id, "params_nonembedding": float(r.params_nonembedding), "tokens": float(r.tokens),
          "flops": float(r.own_flops), "budget": r.budget, "status": "done", "flop_convention": "6N"}
         for r in plan.runs if r.budget in budgets]
    )  # fmt: skip
    t = noisy(runs.rename(columns={"params_nonembedding": "params"}), seed=3)
    runs["eval_loss"] = t["loss"].to_numpy()
    store = tmp_path / "results"
    store.mkdir()
    runs.to_csv(store / "runs.csv", index=False)
    return cfg, store, runs


@pytest.mark.slow  # a full chinchilla fit (every start), 200 resamples and a calibration: ~15 s alone
def test_cli_next_round_trip_on_a_tiny_store(tmp_path, capsys):
    from scaling.cli.main import main

    cfg, store, runs = tiny_store(tmp_path)
    assert main(["plan", str(cfg), "--next", "2", "--target-flops", "1e17", "--results", str(store)]) == 0
    out = capsys.readouterr().out
    assert "target C = 1e+17 FLOPs" in out and "calibrated predictive interval" in out
    picked = [line.split()[-1] for line in out.splitlines() if line.strip()[:2] in ("1 ", "2 ")]
    assert len(picked) == 2 and not set(picked) & set(runs["run_id"])  # planned runs not done yet
    # the whole budget planned at once: the relaxed design's runs, and the bound any design obeys
    args = [
        "plan",
        str(cfg),
        "--next",
        "2",
        "--target-flops",
        "1e17",
        "--results",
        str(store),
        "--budget-flops",
        "3e16",
    ]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "runs of the relaxed optimal design for 3e+16 FLOPs first" in out
    bound = next(line for line in out.splitlines() if line.startswith("bound: within 3e+16 FLOPs"))
    sd_bound, sd_now = (float(bound.split(x)[1].split()[0].rstrip(";)")) for x in ("below ", "(now "))
    assert 0 < sd_bound < sd_now
    assert main(["plan", str(cfg), "--budget-flops", "3e16", "--results", str(store)]) == 2
    assert "--budget-flops B needs both" in capsys.readouterr().err
    assert main([*args[:-1], "-1"]) == 2
    assert "--budget-flops=-1 must be a positive number of FLOPs" in capsys.readouterr().err


def test_cli_next_errors_before_any_fit(tmp_path, capsys):
    from scaling.cli.main import main

    cfg, store, runs = tiny_store(tmp_path)
    base = ["plan", str(cfg), "--results", str(store)]
    assert main([*base, "--next", "2", "--target-flops", "3e15"]) == 2
    assert "--target-flops=3e+15 is not above the largest run done (4e+15 FLOPs" in capsys.readouterr().err
    assert main([*base, "--next", "0", "--target-flops", "1e17"]) == 2
    assert "--next=0 must be a positive number of runs" in capsys.readouterr().err
    assert main([*base, "--next", "2", "--target-flops", "1e17", "--set", "sweep.budgets=[1e15, 2e15]"]) == 2
    assert "no candidate runs: every planned run is already done" in capsys.readouterr().err
    runs.drop(columns="eval_loss").to_csv(store / "runs.csv", index=False)
    assert main([*base, "--next", "2", "--target-flops", "1e17"]) == 2
    err = capsys.readouterr().err
    assert f"{store} holds no fit-able table of finished runs" in err and "loss" in err
    runs.iloc[:3].to_csv(store / "runs.csv", index=False)
    assert main([*base, "--next", "2", "--target-flops", "1e17"]) == 2
    assert "--next needs finished runs to fit" in capsys.readouterr().err


def test_n_opt_target_and_bad_quantity(setting):
    fit, done, cand = setting
    res = propose_runs(fit, done, cand, 1e20, 3, quantity="params", sigma=0.01)
    assert res.quantity == "params" and np.all(np.diff(res.picks["expected_width"]) < 0)
    from scaling.analysis.optimal import compute_optimal

    assert res.start["value"] == pytest.approx(compute_optimal(fit, 1e20)["params"])
    assert "N_opt" in res.summary()
    with pytest.raises(ValueError, match="quantity must be 'loss' or 'params'"):
        propose_runs(fit, done, cand, 1e20, 1, quantity="tokens")


@pytest.fixture(scope="module")
def calibrated(setting):
    """The same runs bootstrapped, so the fit carries the predictive calibration."""
    import warnings

    from scaling.analysis.uncertainty import bootstrap

    fit, done, cand = setting
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # few budgets: the calibration may say it is poorly determined
        boot = bootstrap(done, fit=fit, n_boot=20, seed=0)
    return boot, done, cand


def test_start_is_the_calibrated_interval_predict_loss_reports(calibrated):
    from scaling.analysis.extrapolate import predict_loss

    boot, done, cand = calibrated
    res = propose_runs(boot, done, cand, 1e20, 3)
    p = predict_loss(boot, flops=1e20)
    assert res.interval == "predictive" and "calibrated predictive interval" in res.summary()
    assert (res.start["lo"], res.start["hi"]) == pytest.approx(
        (p["loss_lo"], p["loss_hi"]), rel=1e-4
    )  # percentiles of L vs ln L
    law = predict_loss(boot, flops=1e20, interval="law")
    assert res.start["width"] > law["loss_hi"] - law["loss_lo"]  # noise and extrapolation on top of the band
    # the extrapolation term is recomputed at the grown box: a pick at a larger budget brings the target closer
    assert res.start["distance"] > 0 and res.picks["expected_distance"].iloc[-1] < res.start["distance"]
    assert np.all(np.diff(res.picks["expected_width"]) < 0)


def test_a_run_inside_the_data_box_leaves_the_extrapolation_term(calibrated):
    boot, done, cand = calibrated
    inside = done.iloc[[10]].assign(loss=np.nan)[["params", "tokens", "flops"]]  # a repeat of a run done
    res = propose_runs(boot, done, inside, 1e20, 1)
    assert res.picks["expected_distance"].iloc[0] == pytest.approx(res.start["distance"])
    assert res.picks["fisher_ratio"].iloc[0] < 1  # it still narrows the law's band a little


def test_max_flops_and_stop_reason(calibrated):
    boot, done, cand = calibrated
    res = propose_runs(boot, done, cand, 1e20, 20, max_flops=2 * cand["flops"].min())
    assert res.picks["cumulative_flops"].max() <= 2 * cand["flops"].min() * (1 + 1e-12)
    assert "fits in max_flops" in res.stopped and "stopped:" in res.summary()


def test_proposals_shrink_the_refitted_band_more_than_a_naive_pick_at_equal_flops(calibrated):
    """Train what the design proposes (the synthetic surface's noisy losses), refit and
    bootstrap: the law's band at the target is narrower than after the naive choice of the
    same FLOPs (the next budget's runs nearest 20 tokens per parameter). The law band is
    what the Fisher part predicts; the calibrated extrapolation term is relearned from the
    new table, see results/active_design/README.md for how that plays out."""
    import warnings

    from scaling.analysis.extrapolate import predict_loss
    from scaling.analysis.uncertainty import bootstrap

    boot, done, cand = calibrated
    res = propose_runs(boot, done, cand, 1e20, 3, interval="law")
    spent = res.picks["cumulative_flops"].iloc[-1]
    nxt = cand[cand["budget"] == cand["budget"].min()]
    naive = nxt.iloc[np.argsort(np.abs(np.log(nxt["tokens"] / nxt["params"] / 20)))]
    naive = naive[naive["flops"].cumsum() <= spent * (1 + 1e-9)]
    assert len(naive) >= 1

    def refit_width(extra):
        table = pd.concat([done, noisy(extra, seed=7)], ignore_index=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit = fit_law(table, "chinchilla", grid=boot.fit.theta[None, :])
            b = bootstrap(table, fit=fit, n_boot=40, seed=0, calibrate=False)
        p = predict_loss(b, flops=1e20, interval="law")
        return p["loss_hi"] - p["loss_lo"]

    top = cand[cand["budget"] == cand["budget"].max()]
    top = top.iloc[np.argsort(np.abs(np.log(top["tokens"] / top["params"] / 20)))][:1]  # one big run
    assert top["flops"].sum() <= spent
    w_active = refit_width(cand.iloc[res.info["chosen_index"]])
    assert w_active == pytest.approx(res.picks["expected_width"].iloc[-1], rel=0.15)  # the Fisher update held
    assert w_active < refit_width(naive) and w_active < 0.8 * refit_width(top)


def test_choose_batch_checks_its_budget(calibrated):
    from scaling.analysis.design import choose_batch

    boot, done, cand = calibrated
    with pytest.raises(ValueError, match="max_flops must be a positive number of FLOPs; got 0"):
        choose_batch(boot, done, cand, 1e20, 0)
    assert choose_batch(boot, done, cand, 1e20, 0.5 * cand["flops"].min()) == ([], [])  # nothing affordable


@pytest.mark.slow  # five batches, each refitted, bootstrapped and recalibrated: ~10 s
def test_choose_batch_scores_batches_by_their_recalibrated_width(calibrated):
    from scaling.analysis.design import choose_batch

    boot, done, cand = calibrated
    allow = 4 * cand["flops"].min()
    idx, scores = choose_batch(boot, done, cand, 1e20, allow, n_boot=10)
    assert 1 <= len(idx) <= 3 and cand["flops"].iloc[idx].sum() <= allow
    assert {"greedy (predictive)", "greedy (law)"} <= set(scores["batch"])
    best = scores.loc[scores["gain_per_flop"].idxmax()]
    assert list(best["index"]) == idx and np.all(scores["flops"] <= allow)
    assert np.isfinite(scores["expected_width"]).all() and (scores["expected_width"] > 0).all()


def test_design_bound_is_below_every_real_design_within_the_budget(setting):
    """The certified relaxation bound: no subset of the candidates within max_flops gets
    the target's Fisher sd below it, and with the budget for all of them it is sd_all."""
    from scaling.analysis.design import design_bound
    from scaling.analysis.optimal import compute_optimal

    fit, done, cand = setting
    cand = cand.assign(flops=6 * cand["params"] * cand["tokens"])
    cap = 0.4 * float(cand["flops"].sum())
    b = design_bound(fit, done, cand, 1e20, cap, sigma=0.01)
    assert b["sd_all"] < b["sd_bound"] <= b["sd_relaxed"] * (1 + 1e-9) < b["sd_done"]
    assert b["flops"] <= cap * (1 + 1e-9) and np.all((b["weights"] >= 0) & (b["weights"] <= 1))
    law = get_law("chinchilla")
    opt = compute_optimal(fit, 1e20)
    g = jacobian(law, fit.theta, np.log([[opt["params"], opt["tokens"]]]))[0]
    Jd = jacobian(law, fit.theta, np.log(done[["params", "tokens"]].to_numpy(float)))
    Jc = jacobian(law, fit.theta, np.log(cand[["params", "tokens"]].to_numpy(float)))
    rng = np.random.default_rng(0)
    cost = cand["flops"].to_numpy(float)
    for _ in range(200):  # random affordable subsets, and the greedy picks
        idx = [i for i in rng.permutation(len(cand)) if rng.random() < 0.5]
        idx = [i for i, c in zip(idx, np.cumsum(cost[idx])) if c <= cap]
        J = np.vstack([Jd, Jc[idx]])
        sd = np.sqrt(g @ np.linalg.pinv(J.T @ J / 0.01**2) @ g)
        assert sd >= b["sd_bound"] * (1 - 1e-6)
    full = design_bound(fit, done, cand, 1e20, 2 * float(cand["flops"].sum()), sigma=0.01)
    assert full["sd_bound"] == pytest.approx(full["sd_all"], rel=1e-3)
    with pytest.raises(ValueError, match="max_flops"):
        design_bound(fit, done, cand, 1e20, 0.0)


def test_relaxed_method_plans_the_budget_at_least_as_well_as_greedy(setting):
    from scaling.analysis.design import design_bound
    from scaling.analysis.optimal import compute_optimal

    fit, done, cand = setting
    cand = cand.assign(flops=6 * cand["params"] * cand["tokens"])
    law = get_law("chinchilla")
    opt = compute_optimal(fit, 1e20)
    g = jacobian(law, fit.theta, np.log([[opt["params"], opt["tokens"]]]))[0]

    def sd(table):
        J = jacobian(law, fit.theta, np.log(table[["params", "tokens"]].to_numpy(float))) / 0.01
        return float(np.sqrt(g @ np.linalg.pinv(J.T @ J) @ g))

    out = {}
    for frac in (0.2, 0.4):
        cap = frac * float(cand["flops"].sum())
        bound = design_bound(fit, done, cand, 1e20, cap, sigma=0.01)["sd_bound"]
        for method in ("greedy", "relaxed"):
            res = propose_runs(fit, done, cand, 1e20, len(cand), sigma=0.01, max_flops=cap, method=method)
            assert res.picks["flops"].sum() <= cap * (1 + 1e-9)
            out[frac, method] = sd(pd.concat([done, cand.iloc[res.info["chosen_index"]]])) / bound
        assert 1 - 1e-6 <= out[frac, "relaxed"] <= out[frac, "greedy"] * (1 + 1e-6)
        assert "relaxed optimal design" in res.criterion
    with pytest.raises(ValueError, match="max_flops"):
        propose_runs(fit, done, cand, 1e20, 3, method="relaxed")
    with pytest.raises(ValueError, match="method"):
        propose_runs(fit, done, cand, 1e20, 3, method="exchange")
