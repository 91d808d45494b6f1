import numpy as np
import pandas as pd
import pytest

from scaling.analysis import backtest, bootstrap, predict_loss
from scaling.analysis.synthetic import TEST_LAW, chinchilla_loss


def synthetic(noise=0.005, seed=0, n=240):
    rng = np.random.default_rng(seed)
    N = np.exp(rng.uniform(np.log(1e7), np.log(1e10), n))
    D = N * np.exp(rng.uniform(np.log(2), np.log(200), n))
    L = chinchilla_loss(N, D, **TEST_LAW) * np.exp(noise * rng.standard_normal(n))
    return pd.DataFrame(dict(params=N, tokens=D, flops=6 * N * D, loss=L))


def test_predict_with_intervals_at_N_D_and_at_C():
    b = bootstrap(synthetic(seed=21), n_boot=128, seed=0)
    one = predict_loss(b, params=7e10, tokens=1.4e12)
    assert isinstance(one["loss"], float) and one["loss_lo"] < one["loss"] < one["loss_hi"]
    assert one["loss"] == pytest.approx(chinchilla_loss(7e10, 1.4e12, **TEST_LAW), rel=0.01)
    many = predict_loss(b.fit, params=[1e9, 1e10], tokens=[2e10, 2e11])
    assert many["loss"].shape == (2,) and many["loss_lo"].shape == (2,)
    at_c = predict_loss(b, flops=1e23)
    assert at_c["params"] * at_c["tokens"] * 6 == pytest.approx(1e23)
    assert at_c["loss_lo"] < at_c["loss"] < at_c["loss_hi"]
    with pytest.raises(ValueError, match="missing"):
        predict_loss(b, params=1e9)


def test_backtest_reports_errors_and_coverage():
    df = synthetic(seed=22, n=300)
    cutoff = np.sort(df["flops"])[239]  # fit on 240 rows, predict 60
    bt = backtest(df, cutoff, n_boot=128)
    s = bt.to_dict()
    assert s["n_fit"] + s["n_test"] == len(df) and s["n_test"] == int((df["flops"] > cutoff).sum())
    assert s["mean_abs_rel_error"] < 0.02  # noise is 0.5%
    assert 0 <= s["coverage"] <= 1
    assert set(["pred", "pred_lo", "pred_hi", "abs_rel_error", "covered"]) <= set(bt.points.columns)
    np.testing.assert_allclose(bt.points["abs_rel_error"], np.abs(bt.points["pred"] / bt.points["loss"] - 1))
    with pytest.raises(ValueError, match="nothing to predict"):
        backtest(df, df["flops"].max() * 2, n_boot=0)
    with pytest.raises(ValueError, match="only 0 rows"):
        backtest(df, df["flops"].min() / 2, n_boot=0)
