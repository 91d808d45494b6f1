"""One dialect for every result object: summary() -> str, to_frame() -> DataFrame,
to_dict() -> JSON-ready dict, with intervals named <x>_lo/<x>_hi in tables and dicts."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from scaling.analysis import backtest, bootstrap, envelope_analysis, fit_curve_law, fit_law, isoflop_analysis
from scaling.analysis.curve_law import ScheduledCurve, curve_law, schedule_areas
from scaling.analysis.schedules import cosine_lr
from scaling.analysis.synthetic import TEST_LAW, isoflop_runs, training_curves

ONE_START = {"log_E": [0.5], "log_A": [6.0], "log_B": [7.0], "alpha": [0.35], "beta": [0.35]}


@pytest.fixture(scope="module")
def results():
    runs = isoflop_runs([1e17, 1e18, 1e19, 1e20], sizes=7, noise=0.003, seed=0)
    fit = fit_law(runs, grid=ONE_START)
    boot = bootstrap(runs, fit=fit, n_boot=16, seed=0, level=0.9)
    iso = isoflop_analysis(runs, budget="budget", n_boot=50)
    env = envelope_analysis(training_curves(np.geomspace(1e7, 1e9, 6), evals=25), n_boot=20)
    steps = np.arange(1, 2001)
    lr = cosine_lr(steps, peak=1.0, total_steps=2000, floor=0.01)
    s1, s2 = schedule_areas(lr)
    evals = np.arange(100, 2001, 100)
    loss = curve_law(s1[evals - 1], s2[evals - 1], 2.0, 5.0, 0.4, 3e-4)
    return {
        "fit": fit,
        "bootstrap": boot,
        "bootstrapped fit": boot.fit,
        "backtest": backtest(runs, 3e19, n_boot=16, grid=ONE_START),
        "isoflop": iso,
        "isoflop profile": iso.profiles[0],
        "power law": iso.n_opt,
        "envelope": env,
        "curve law": fit_curve_law(ScheduledCurve(lr, evals, loss)),
    }


@pytest.mark.parametrize(
    "name",
    ["fit", "bootstrap", "bootstrapped fit", "backtest", "isoflop", "isoflop profile", "power law", "envelope",
     "curve law"],
)  # fmt: skip
def test_every_result_speaks_the_same_dialect(results, name):
    r = results[name]
    text = r.summary()
    assert isinstance(text, str) and len(text) > 20 and str(r) == text
    frame = r.to_frame()
    assert isinstance(frame, pd.DataFrame) and len(frame) > 0
    d = r.to_dict()
    assert isinstance(d, dict) and json.loads(json.dumps(d)).keys() == d.keys()
    assert not any(k == "ci" or k.endswith("_ci") for k in d), "intervals are <x>_lo/<x>_hi or 'intervals'"


def test_intervals_are_named_the_same_way(results):
    fit, boot, bt, iso = results["bootstrapped fit"], results["bootstrap"], results["backtest"], results["isoflop"]
    assert fit.intervals == boot.intervals() and boot.level == 0.9 and boot.n_boot == 16
    frame = fit.to_frame()
    assert list(frame.columns) == ["param", "value", "value_lo", "value_hi"]
    assert (frame["value_lo"] <= frame["value"]).all() and (frame["value"] <= frame["value_hi"]).all()
    assert frame.set_index("param")["value"].to_dict() == fit.params
    assert {"pred", "pred_lo", "pred_hi", "covered"} <= set(bt.to_frame().columns)
    assert bt.to_dict()["coverage"] == bt.coverage and bt.to_dict()["n_fit"] == bt.n_fit
    profile = iso.profiles[0]
    row = iso.to_frame().iloc[0]
    assert (row["n_opt_lo"], row["n_opt_hi"]) == profile.n_opt_interval
    assert iso.n_opt.to_dict()["exponent_lo"] == iso.n_opt.exponent_interval[0]
    draws = boot.to_frame()
    assert list(draws.columns[:5]) == ["E", "A", "B", "alpha", "beta"] and len(draws) == 16
    assert results["curve law"].to_frame().set_index("param")["value"]["alpha"] == pytest.approx(0.4, rel=0.05)
    assert results["fit"].params["alpha"] == pytest.approx(TEST_LAW["alpha"], abs=0.05)
