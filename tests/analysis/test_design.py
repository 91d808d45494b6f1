"""Active design: the Fisher criterion's updates, the picks, bad targets, the IsoFLOP grid bias."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from scaling.analysis.design import grid_bias, jacobian, propose_runs
from scaling.analysis.fit import fit_law
from scaling.analysis.laws import get_law

TRUE = {"E": 1.82, "A": 482.0, "B": 2085.0, "alpha": 0.3478, "beta": 0.3658}
REPO = Path(__file__).resolve().parents[2]


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
    ratio = picks["expected_width"].iloc[1] / res.start["width"]
    assert ratio == pytest.approx(np.sqrt(v2 / v0), rel=1e-3)  # the ridge differs slightly
    assert "expected interval" in res.summary()


def test_target_below_the_runs_done_is_an_error(setting):
    fit, done, cand = setting
    with pytest.raises(ValueError, match=r"target flops 1e\+17 is not above the largest run done \(8e\+17"):
        propose_runs(fit, done, cand, 1e17, 2)
    with pytest.raises(ValueError, match="k_next must be a positive integer"):
        propose_runs(fit, done, cand, 1e20, 0)


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


@pytest.mark.slow  # a full chinchilla fit (4,500 starts) of the quickstart runs: ~30 s alone
def test_cli_next_and_its_errors(capsys):
    from scaling.cli.main import main

    cfg, res = REPO / "experiments" / "quickstart.toml", REPO / "results" / "quickstart"
    if not (res / "runs.csv").exists():
        pytest.skip("no committed quickstart results")
    more = ["--set", "sweep.budgets=[5e10, 1.58113883e11, 5e11, 1.6e12]", "--results", str(res)]
    assert main(["plan", str(cfg), "--next", "2", "--target-flops", "1e14", *more]) == 0
    out = capsys.readouterr().out
    assert "target C = 1e+14 FLOPs" in out and out.count("[") >= 3
    assert main(["plan", str(cfg), "--next", "2", "--target-flops", "1e11", *more]) == 2
    assert "is not above the largest run done" in capsys.readouterr().err


def test_n_opt_target_and_bad_quantity(setting):
    fit, done, cand = setting
    res = propose_runs(fit, done, cand, 1e20, 3, quantity="params", sigma=0.01)
    assert res.quantity == "params" and np.all(np.diff(res.picks["expected_width"]) < 0)
    from scaling.analysis.optimal import compute_optimal

    assert res.start["value"] == pytest.approx(compute_optimal(fit, 1e20)["params"])
    assert "N_opt" in res.summary()
    with pytest.raises(ValueError, match="quantity must be 'loss' or 'params'"):
        propose_runs(fit, done, cand, 1e20, 1, quantity="tokens")
