"""Hyperparameter laws: per-cell smooth optima, power-law fits with intervals, bad grids."""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pandas as pd
import pytest

from scaling.analysis.hparams import EdgeOptimumWarning, HparamLaws, cell_optima, fit_hparam_laws

TRUE = {"a": 30.0, "alpha": -0.75, "beta": 0.25, "c": 0.5, "gamma": 0.6}


def true_opt(N, D):
    return TRUE["a"] * N ** TRUE["alpha"] * D ** TRUE["beta"], TRUE["c"] * D ** TRUE["gamma"]


def synthetic_grid(cells, lrs=None, batches=None, noise=0.0, seed=0):
    """Loss quadratic in (log lr, log batch) around the true optimum of each cell; the
    grids are a factor 2 apart, so the optimum is generally between grid points."""
    rng = np.random.default_rng(seed)
    rows = []
    for N, D in cells:
        lo, bo = true_opt(N, D)
        lr_grid = lrs if lrs is not None else lo * 2.0 ** (np.arange(-4, 5) + 0.37)
        b_grid = batches if batches is not None else bo * 2.0 ** (np.arange(-3, 4) - 0.29)
        for lr, b in itertools.product(lr_grid, b_grid):
            u, v = np.log(lr / lo), np.log(b / bo)
            loss = 2.5 + 0.02 * u * u + 0.01 * v * v + 0.005 * u * v + noise * rng.normal()
            rows.append({"params": N, "tokens": D, "lr": lr, "batch_size": b, "loss": loss})
    return pd.DataFrame(rows)


CELLS = [(N, N * r) for N in (1e7, 3e7, 1e8, 3e8) for r in (10.0, 40.0, 160.0)]


def test_smooth_optimum_finds_off_grid_optimum_exactly():
    opt = cell_optima(synthetic_grid(CELLS))
    assert len(opt) == len(CELLS)
    assert (opt["method"] == "quadratic").all()
    lo, bo = true_opt(opt["params"].to_numpy(), opt["tokens"].to_numpy())
    np.testing.assert_allclose(opt["lr"], lo, rtol=1e-6)
    np.testing.assert_allclose(opt["batch_size"], bo, rtol=1e-6)
    np.testing.assert_allclose(opt["loss"], 2.5, atol=1e-9)
    # the raw argmin is off by the grid offset (a factor 2^0.37 in lr)
    assert np.all(np.abs(np.log(opt["argmin_lr"] / lo)) > 0.2)


def test_power_laws_recover_exponents_with_intervals():
    opt = cell_optima(synthetic_grid(CELLS, noise=1e-4))
    laws = fit_hparam_laws(opt, n_boot=64, seed=1)
    assert laws.lr.law == "lr_nd" and laws.batch.law == "batch_d"
    assert laws.lr["alpha"] == pytest.approx(TRUE["alpha"], abs=0.02)
    assert laws.lr["beta"] == pytest.approx(TRUE["beta"], abs=0.02)
    assert laws.batch["gamma"] == pytest.approx(TRUE["gamma"], abs=0.02)
    for fit, name in ((laws.lr, "alpha"), (laws.lr, "beta"), (laws.batch, "gamma")):
        lo, hi = fit.intervals[name]
        assert lo < TRUE[name] < hi
    lr, b = laws.predict(1e9, 2e10)
    assert lr == pytest.approx(true_opt(1e9, 2e10)[0], rel=0.1)
    assert b == pytest.approx(true_opt(1e9, 2e10)[1], rel=0.1)
    (llo, lhi), _ = laws.predict_interval(1e9, 2e10)
    assert llo < lr < lhi


def test_json_round_trip(tmp_path):
    laws = fit_hparam_laws(cell_optima(synthetic_grid(CELLS)), n_boot=16, batch_unit="tokens", seq_len=128)
    path = tmp_path / "laws.json"
    laws.to_json(path)
    back = HparamLaws.from_json(path)
    assert back.batch_unit == "tokens" and back.seq_len == 128
    np.testing.assert_allclose(back.predict(3e8, 1e10), laws.predict(3e8, 1e10), rtol=1e-12)
    assert back.batch_sequences(3e8, 1e10, 128) == pytest.approx(laws.predict(3e8, 1e10)[1] / 128)
    assert len(back.optima) == len(CELLS)
    with pytest.raises(ValueError, match="hyperparameter-law file"):
        HparamLaws.from_dict({"law": "chinchilla"})


def test_single_value_axis_is_an_error():
    df = synthetic_grid(CELLS[:1], batches=[64.0])
    with pytest.raises(ValueError, match=r"cell \(params=1e\+07, tokens=1e\+08\): column 'batch_size' has a single"):
        cell_optima(df)


def test_edge_optimum_warns_naming_the_cell():
    N, D = CELLS[4]
    lo, _ = true_opt(N, D)
    df = synthetic_grid([(N, D)], lrs=lo * 2.0 ** np.arange(1, 7))  # every lr above the optimum
    with pytest.warns(EdgeOptimumWarning, match=r"params=3e\+07, tokens=1\.2e\+09.*smallest lr"):
        opt = cell_optima(df)
    assert opt["edge"].iloc[0] == "smallest lr"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cell_optima(synthetic_grid([(N, D)]))  # interior: no warning


def test_missing_columns_named():
    with pytest.raises(ValueError, match=r"missing \['lr'\]"):
        cell_optima(synthetic_grid(CELLS[:1]).drop(columns="lr"))


def test_steplaw_released_data(reference_data):
    """Regression numbers of the refit committed in results/steplaw (experiments/steplaw.py)."""
    raw = pd.read_csv(reference_data / "steplaw2025" / "dense_lr_bs_loss.csv")
    t = pd.DataFrame(
        {"params": raw["N"], "tokens": raw["D"], "lr": raw["lr"], "batch_size": raw["bs"] * 2048.0,
         "loss": raw["smooth loss"]}
    )  # fmt: skip
    opt = cell_optima(t)
    assert len(opt) == 17 and (opt["method"] == "quadratic").all()
    laws = fit_hparam_laws(opt, n_boot=0, batch_unit="tokens")
    assert laws.lr["alpha"] == pytest.approx(-0.788, abs=0.005)
    assert laws.lr["beta"] == pytest.approx(0.280, abs=0.005)
    assert laws.batch["gamma"] == pytest.approx(0.710, abs=0.005)
