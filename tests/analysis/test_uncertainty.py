import numpy as np
import pandas as pd
import pytest

from scaling.analysis import bootstrap, fit_law, resample_weights
from scaling.analysis.synthetic import TEST_LAW, chinchilla_loss


def synthetic(noise=0.02, seed=0, n=240, per_run=1):
    rng = np.random.default_rng(seed)
    m = n // per_run
    N = np.repeat(np.exp(rng.uniform(np.log(1e7), np.log(1e10), m)), per_run)
    D = N * np.exp(rng.uniform(np.log(2), np.log(200), n))
    L = chinchilla_loss(N, D, **TEST_LAW) * np.exp(noise * rng.standard_normal(n))
    return pd.DataFrame(dict(params=N, tokens=D, flops=6 * N * D, loss=L, run_id=np.repeat(np.arange(m), per_run)))


def test_true_parameters_inside_bootstrap_intervals():
    df = synthetic(seed=11)
    b = bootstrap(df, n_boot=128, seed=0, level=0.95)
    assert b.unit == "points" and b.converged.all() and not b.warnings
    ci = b.intervals()
    for p in ("E", "alpha", "beta"):
        lo, hi = ci[p]
        assert lo < TEST_LAW[p] < hi, (p, lo, hi)
        assert lo <= b.fit.params[p] <= hi
    assert b.fit.intervals == ci and b.fit.bootstrap is b
    se = b.se()
    assert 0 < se["alpha"] < 0.1 and 0 < se["E"] < 0.2
    lo, hi = b.predict_interval(params=1e11, tokens=2e12)
    point = b.fit.predict(params=1e11, tokens=2e12)
    assert lo < point < hi


def test_resampling_whole_runs():
    df = synthetic(seed=12, n=240, per_run=4)  # 60 runs, 4 rows each
    W = resample_weights(len(df), 5, groups=df["run_id"].to_numpy(), seed=0)
    assert W.shape == (5, 240) and np.allclose(W.sum(1), 240)
    assert np.all(W.reshape(5, 60, 4).std(axis=2) == 0)  # a run's rows move together
    b = bootstrap(df, n_boot=64, seed=0)
    assert b.unit == "runs"
    assert bootstrap(df, n_boot=64, seed=0, groups=None, fit=b.fit).unit == "points"
    with pytest.raises(ValueError, match="group column 'batch'"):
        bootstrap(df, n_boot=5, groups="batch", fit=b.fit)


def test_points_resampling_weights():
    W = resample_weights(10, 1000, seed=1)
    assert np.allclose(W.sum(1), 10)
    assert abs(W.mean() - 1) < 0.05


def test_grid_bootstrap_matches_optimum_starts_on_easy_data():
    df = synthetic(seed=13, noise=0.01)
    small = {"log_E": [0.0, 0.5], "log_A": [5.0, 6.0], "log_B": [7.0, 8.0], "alpha": [0.3, 0.4], "beta": [0.3, 0.4]}
    fit = fit_law(df, grid=small)
    # 4 resamples x 32 starts = 128 lanes: the same compiled shapes as the other bootstraps here
    g = bootstrap(df, n_boot=4, seed=2, fit=fit, start="grid", grid=small)
    o = bootstrap(df, n_boot=4, seed=2, fit=fit)
    np.testing.assert_allclose(g.objectives, o.objectives, rtol=1e-7)
    np.testing.assert_allclose(g.draws[:, 3:], o.draws[:, 3:], atol=1e-5)


def test_json_round_trip_keeps_draws():
    from scaling.analysis import FitResult

    b = bootstrap(synthetic(seed=14), n_boot=64, seed=0)
    back = FitResult.from_json(b.fit.to_json())
    assert back.bootstrap.n_boot == 64
    np.testing.assert_allclose(back.bootstrap.draws, b.draws, rtol=1e-9)
    assert back.intervals.keys() == b.fit.intervals.keys()


def test_bad_arguments():
    df = synthetic(n=40)
    with pytest.raises(ValueError, match="n_boot >= 1"):
        bootstrap(df, n_boot=0)
    with pytest.raises(ValueError, match="start must be"):
        bootstrap(df, n_boot=5, start="random")
