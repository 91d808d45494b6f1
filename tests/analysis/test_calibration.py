"""Predictive intervals (scaling.analysis.predictive) and law comparison (compare), on
small synthetic tables that share one padded size (one compilation)."""

import warnings

import numpy as np
import pandas as pd
import pytest

from scaling.analysis import fit_law
from scaling.analysis.predictive import (
    Calibration,
    calibrate,
    extrapolation_distance,
    inner_backtests,
    rolling_origins,
)
from scaling.analysis.synthetic import TEST_LAW, chinchilla_loss

SIZES = np.geomspace(2e7, 2e9, 7)
MULTS = np.array([5.0, 10, 20, 40, 80])


def grid_table(noise=0.003, seed=0, gamma=0.0):
    """7 sizes x 5 tokens-per-parameter (35 rows); gamma != 0 makes the data exponent
    drift with size (so Chinchilla's form is misspecified)."""
    rng = np.random.default_rng(seed)
    N, M = np.meshgrid(SIZES, MULTS, indexing="ij")
    N, D = N.ravel(), (N * M).ravel()
    beta = TEST_LAW["beta"] + gamma * np.log(N / 1e9)
    law = {k: v for k, v in TEST_LAW.items() if k != "beta"}
    L = chinchilla_loss(N, D, beta=0.0, **law) - TEST_LAW["B"] + TEST_LAW["B"] * D**-beta
    L = L * np.exp(noise * rng.standard_normal(len(N)))
    return pd.DataFrame(dict(params=N, tokens=D, flops=6 * N * D, loss=L))


def test_extrapolation_distance_is_the_norm_of_the_excess_outside_the_box():
    lo, hi = np.log([1e8, 1e9]), np.log([1e9, 1e10])
    x = np.log([[5e8, 5e9], [np.e * 1e9, 5e9], [np.e * 1e9, np.e**2 * 1e10], [1e8 / np.e, 1e9]])
    np.testing.assert_allclose(extrapolation_distance(x, lo, hi), [0.0, 1.0, np.sqrt(5.0), 1.0], atol=1e-12)


def test_rolling_origins_respect_fraction_and_levels():
    df = grid_table()
    origins = rolling_origins(df, "chinchilla")
    assert origins, "a 7x5 grid admits inner backtests"
    for axis, cutoff, mask in origins:
        assert axis in ("flops", "params", "tokens")
        assert 0.3 <= mask.mean() <= 0.85
        assert np.all(df[axis][mask] <= cutoff) and np.all(df[axis][~mask] > cutoff)
        assert df["params"][mask].nunique() >= 3 and df["tokens"][mask].round(-3).nunique() >= 3
    assert {a for a, _, _ in origins} >= {"flops", "params"}


def test_well_specified_law_gets_noise_sized_intervals_that_cover():
    df = grid_table(noise=0.003, seed=1)
    train, test = train_rows(df), df[df["params"] >= 1e9]
    fit = fit_law(train, "chinchilla")
    cal = calibrate(train, fit)
    assert cal.calibrated and cal.n_origins >= 2
    assert 0.002 <= cal.sigma0 <= 0.01  # the noise, 0.3% (inner errors at d = 0 can add a little)
    pred = np.log(fit.predict(params=test["params"], tokens=test["tokens"]))
    d = cal.distance(params=test["params"], tokens=test["tokens"])
    assert np.all(d > 0)
    lo, hi = cal.bounds(pred, d, 0.9)
    obs = test["loss"].to_numpy()
    assert np.mean((lo <= obs) & (obs <= hi)) >= 0.8
    assert np.median((hi - lo) / (2 * np.exp(pred))) < 0.05  # still a useful interval


def test_misspecification_grows_with_distance_and_is_covered():
    df = grid_table(noise=0.002, seed=2, gamma=0.03)
    train, test = train_rows(df), df[df["params"] >= 1e9]
    fit = fit_law(train, "chinchilla")
    cal = calibrate(train, fit)
    pairs = cal.pairs
    assert len(pairs) == cal.n_pairs > 0
    # the inner errors are larger than the noise, so the growth term is non-zero
    assert cal.kappa > 0.002
    pred = np.log(fit.predict(params=test["params"], tokens=test["tokens"]))
    d = cal.distance(params=test["params"], tokens=test["tokens"])
    lo, hi = cal.bounds(pred, d, 0.9)
    obs = test["loss"].to_numpy()
    assert np.mean((lo <= obs) & (obs <= hi)) >= 0.7
    # wider further out
    assert np.all(np.diff(cal.sigma(np.array([0.0, 1.0, 2.0]))) > 0)


def train_rows(df):
    """The 30 rows of the six sizes below 1e9 (every fit here has 30 rows: one compilation)."""
    return df[df["params"] < 1e9].reset_index(drop=True)


def test_too_few_levels_warns_and_falls_back():
    few = train_rows(grid_table())
    # two sizes only: no inner fit can hold three, so nothing can be backtested along N
    few["params"] = np.where(few["params"] < 1e8, SIZES[0], SIZES[1])
    few["flops"] = 6 * few["params"] * few["tokens"]
    few["tokens"] = few["tokens"].round(-8)
    fit = fit_law(few, "chinchilla")
    with pytest.warns(UserWarning, match="cannot calibrate"):
        cal = calibrate(few, fit)
    assert not cal.calibrated and cal.n_origins == 0
    assert cal.kappa >= 0.02


def test_calibration_round_trips_and_interpolates_levels():
    df = train_rows(grid_table())
    fit = fit_law(df, "chinchilla")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cal = calibrate(df, fit)
    back = Calibration.from_dict(cal.to_dict())
    assert back.to_dict() == cal.to_dict()
    q = [cal.multiplier(lv) for lv in (0.5, 0.8, 0.85, 0.9, 0.95)]
    assert np.all(np.diff(q) > 0)
    with pytest.raises(ValueError, match="level"):
        cal.multiplier(1.5)


def test_inner_backtests_predict_only_beyond_each_cutoff():
    df = train_rows(grid_table())
    origins = rolling_origins(df, "chinchilla")[:1]
    pairs = inner_backtests(df, "chinchilla", origins=origins)
    axis, cutoff, mask = origins[0]
    assert sorted(pairs["row"]) == list(np.flatnonzero(~mask))
    assert np.all(df[axis].to_numpy()[pairs["row"]] > cutoff)
    assert np.all(np.isfinite(pairs["error"])) and np.all(pairs["distance"] >= 0)


def test_compare_laws_scores_and_stacks():
    from scaling.analysis import compare_laws

    df = train_rows(grid_table(noise=0.002, seed=4, gamma=0.03))
    scores = compare_laws(df, laws=["chinchilla", "chinchilla_dexp"])
    assert list(scores.columns) == ["law", "n_params", "n_origins", "n_pairs", "rmse", "mean_are", "bias", "weight"]
    assert set(scores["law"]) == {"chinchilla", "chinchilla_dexp"}
    assert scores["weight"].sum() == pytest.approx(1.0) and (scores["weight"] >= 0).all()
    assert scores["rmse"].is_monotonic_increasing and (scores["n_origins"] >= 2).all()
    # the data were made with a drifting data exponent: the form that has it extrapolates better
    assert scores.iloc[0]["law"] == "chinchilla_dexp"
    with pytest.raises(ValueError, match="different inputs"):
        compare_laws(df, laws=["chinchilla", "power_flops"])
