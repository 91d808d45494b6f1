"""backtest holdouts and scores, and `scaling backtest` (small synthetic tables)."""

import json

import numpy as np
import pandas as pd
import pytest

from scaling.analysis import backtest
from scaling.analysis.extrapolate import holdout_mask
from scaling.analysis.synthetic import TEST_LAW, chinchilla_loss
from scaling.cli.main import main


def grid(noise=0.003, seed=3):
    rng = np.random.default_rng(seed)
    N, M = np.meshgrid(np.geomspace(2e7, 2e9, 7), np.array([5.0, 10, 20, 40, 80]), indexing="ij")
    N, D = N.ravel(), (N * M).ravel()
    L = chinchilla_loss(N, D, **TEST_LAW) * np.exp(noise * rng.standard_normal(len(N)))
    return pd.DataFrame(dict(params=N, tokens=D, flops=6 * N * D, loss=L))


def test_holdout_masks():
    df = grid()
    assert holdout_mask(df, holdout_params=1e9).sum() == 5
    assert np.all(df["flops"][holdout_mask(df, 1e18)] > 1e18)
    iso = pd.DataFrame(dict(flops=[1e18, 1.02e18, 2e18, 2.05e18, 4e18, 8e18]))
    np.testing.assert_array_equal(holdout_mask(iso, holdout_budgets=2), [0, 0, 0, 0, 1, 1])
    with pytest.raises(ValueError, match="exactly one"):
        holdout_mask(df, 1e18, holdout_params=1e9)
    with pytest.raises(ValueError, match="leaves no budget"):
        holdout_mask(iso, holdout_budgets=4)


def test_backtest_scores_predictive_and_law_intervals():
    df = grid()
    bt = backtest(df, holdout_params=1e9, n_boot=64)
    assert bt.n_fit == 30 and bt.n_test == 5 and bt.interval == "predictive"
    assert set(bt.coverage_by_level) == {0.5, 0.8, 0.9, 0.95}
    assert bt.coverage_by_level[0.9] >= 0.7  # well-specified law, 0.3% noise
    assert 0 < bt.median_rel_halfwidth < 0.05
    np.testing.assert_allclose(bt.mean_signed_error, np.mean(bt.points["pred"] / bt.points["loss"] - 1))
    assert np.all(bt.points["pred_lo"] < bt.points["pred"]) and np.all(bt.points["pred"] < bt.points["pred_hi"])
    law = backtest(df, holdout_params=1e9, n_boot=64, interval="law")
    # the law-only band is narrower than the predictive interval
    assert law.median_rel_halfwidth < bt.median_rel_halfwidth
    assert "interval coverage" in bt.summary()


def test_cli_backtest_prints_and_writes_json(tmp_path, capsys):
    path = tmp_path / "runs.csv"
    grid().to_csv(path, index=False)
    out = tmp_path / "bt.json"
    assert main(["backtest", str(path), "--holdout-params", "1e9", "--n-boot", "32", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "mean ARE" in text and "coverage 50%:" in text and "median relative half-width" in text
    d = json.loads(out.read_text())
    assert d["summary"]["n_test"] == 5 and len(d["points"]["pred"]) == 5


def test_cli_backtest_rejects_bad_input(tmp_path, capsys):
    path = tmp_path / "runs.csv"
    grid().to_csv(path, index=False)
    assert main(["backtest", str(path), "--holdout-params", "1e12", "--n-boot", "0"]) == 2
    assert "nothing to predict" in capsys.readouterr().err


def test_cli_fit_then_predict_predictive_and_law(tmp_path, capsys):
    path, fitfile = tmp_path / "runs.csv", tmp_path / "fit.json"
    grid().to_csv(path, index=False)
    assert main(["fit", str(path), "--n-boot", "32", "--json", str(fitfile)]) == 0
    assert "predictive interval: noise" in capsys.readouterr().out
    assert json.loads(fitfile.read_text())["calibration"]["n_origins"] >= 1
    out = {}
    for kind in ("predictive", "law"):
        j = tmp_path / f"{kind}.json"
        assert main(["predict", str(fitfile), "--params", "2e10", "--tokens", "4e11", "--interval", kind,
                     "--json", str(j)]) == 0  # fmt: skip
        out[kind] = json.loads(j.read_text())["predictions"][0]
    assert out["predictive"]["loss"] == pytest.approx(out["law"]["loss"])
    width = {k: v["loss_hi"] - v["loss_lo"] for k, v in out.items()}
    assert width["predictive"] > width["law"] > 0  # 10x beyond the largest size: wider than the law's band
