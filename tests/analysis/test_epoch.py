"""Epoch AI's digitized Chinchilla data (Besiroglu et al. 2024): our fitter must reproduce
their fit and their bootstrap. Data read from ../shared/reference_data (never copied)."""

import numpy as np
import pandas as pd
import pytest

from scaling.analysis import bootstrap, fit_law

pytestmark = pytest.mark.slow

# Epoch's grid optimum (their code, summed Huber with delta 1e-3) and bootstrap SEs.
OBJECTIVE = 1.018274e-3
EPOCH_SE = {"alpha": 0.0154, "beta": 0.0206, "E": 0.0257}


@pytest.fixture(scope="module")
def epoch(reference_data):
    raw = pd.read_csv(reference_data / "epoch_chinchilla_fig4" / "svg_extracted_data.csv")
    raw = raw[raw["loss"] < np.sort(raw["loss"].to_numpy())[-5]]  # drop the 5 highest losses, as Epoch did
    N, C = raw["Model Size"].to_numpy(float), raw["Training FLOP"].to_numpy(float)
    return pd.DataFrame(dict(params=N, tokens=C / (6 * N), flops=C, loss=raw["loss"].to_numpy(float)))


@pytest.fixture(scope="module")
def fit(epoch):
    return fit_law(epoch, "chinchilla")


def test_grid_fit_reaches_epochs_optimum(epoch, fit):
    assert len(epoch) == 240
    assert fit.converged and fit.n_starts == 4500
    assert abs(fit.objective - OBJECTIVE) <= 1e-6 * OBJECTIVE
    assert fit.params["E"] == pytest.approx(1.8172, abs=0.002)
    assert fit.params["alpha"] == pytest.approx(0.3473, abs=0.002)
    assert fit.params["beta"] == pytest.approx(0.3672, abs=0.002)
    # A and B are the loosely determined directions here
    assert any("poorly determined" in w and "log_A" in w for w in fit.warnings)


def test_bootstrap_standard_errors_match_epoch(epoch, fit):
    b = bootstrap(epoch, fit=fit, n_boot=4000, seed=0)
    assert b.converged.all()
    se = b.se()
    for p, ref in EPOCH_SE.items():
        assert se[p] == pytest.approx(ref, rel=0.2), (p, se[p], ref)
    lo, hi = b.intervals()["alpha"]
    assert lo == pytest.approx(0.317, abs=0.01) and hi == pytest.approx(0.373, abs=0.01)
