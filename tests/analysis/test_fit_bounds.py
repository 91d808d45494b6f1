"""Bounded exponents (fit_law / bootstrap exponent_min, scaling fit --exponent-min): a
change of variables exponent = lo + softplus(u) in the unconstrained batched L-BFGS."""

import json

import numpy as np
import pandas as pd
import pytest

from scaling.analysis import FitResult, bootstrap, fit_law
from scaling.analysis.engine import bounded_coordinates, bounded_starts, free_coordinates
from scaling.analysis.synthetic import TEST_LAW, chinchilla_loss
from scaling.cli.main import main


def one_budget(C=1e19):
    """One IsoFLOP budget whose loss rises with N along two powers: the unbounded fit
    explains one of them with a negative alpha (as a real single budget gave -6.99)."""
    N = np.geomspace(3e7, 3e9, 12)
    D = C / (6 * N)
    L = 1.5 + 0.3 * (N / 1e8) ** 0.2 + 0.2 * (N / 1e9) ** 1.5
    return pd.DataFrame(dict(params=N, tokens=D, flops=C, loss=L))


@pytest.fixture(scope="module")
def clean():
    N, M = np.meshgrid(np.geomspace(1e7, 3e9, 6), np.geomspace(5, 200, 5), indexing="ij")
    N, D = N.ravel(), (N * M).ravel()
    return pd.DataFrame(dict(params=N, tokens=D, flops=6 * N * D, loss=chinchilla_loss(N, D, **TEST_LAW)))


def test_single_budget_negative_exponent_is_bounded():
    df = one_budget()
    free = fit_law(df, "chinchilla")
    assert free.converged and free.params["alpha"] < 0 and free.exponent_min is None
    warn = [w for w in free.warnings if "is not positive" in w]
    assert len(warn) == 1 and "exponent_min=0" in warn[0] and "--exponent-min 0" in warn[0]

    bound = fit_law(df, "chinchilla", exponent_min=0.0)
    assert bound.exponent_min == 0.0
    assert bound.params["alpha"] >= 0 and bound.params["beta"] >= 0
    assert not any("is not positive" in w for w in bound.warnings)
    # a bound can only cost objective; it stays a fit of the data (losses within 5%)
    assert bound.objective >= free.objective
    assert np.max(np.abs(bound.predict(params=df["params"], tokens=df["tokens"]) / df["loss"] - 1)) < 0.05


def test_interior_optimum_is_unchanged_by_a_loose_bound(clean):
    free = fit_law(clean, "chinchilla")
    bound = fit_law(clean, "chinchilla", exponent_min=0.0)
    for p, v in TEST_LAW.items():
        assert free.params[p] == pytest.approx(v, rel=1e-5)
        assert bound.params[p] == pytest.approx(v, rel=1e-5), p
    assert bound.converged and not any("bound" in w for w in bound.warnings)


def test_an_exponent_on_its_bound_is_reported_and_bootstrap_keeps_the_bound(clean):
    fit = fit_law(clean, "chinchilla", exponent_min=0.5)  # true alpha 0.34, beta 0.37
    assert fit.params["alpha"] >= 0.5 and fit.params["beta"] >= 0.5
    assert fit.params["alpha"] == pytest.approx(0.5, abs=1e-6)
    assert any("exponent alpha = 0.5 sits on its bound exponent_min = 0.5" in w for w in fit.warnings)
    b = bootstrap(clean, fit=fit, n_boot=32, seed=0, calibrate=False)
    assert np.all(b.draws[:, 3:] >= 0.5)
    g = bootstrap(clean, fit=fit, n_boot=2, seed=0, calibrate=False, start="grid")
    assert np.all(g.draws[:, 3:] >= 0.5)
    with pytest.raises(ValueError, match="exponent_min=0.0 differs from the given fit's own bound"):
        bootstrap(clean, fit=fit, n_boot=4, exponent_min=0.0, calibrate=False)
    back = FitResult.from_dict(json.loads(fit.to_json()))
    assert back.exponent_min == 0.5 and back.n_rechecked == fit.n_rechecked


def test_coordinates_and_starts():
    lower = (None, 0.0, 0.25)
    theta = np.array([[-3.0, 1e-8, 0.3], [2.0, 5.0, 40.0]])
    u = free_coordinates(theta, lower)
    assert u[0, 0] == -3.0 and u[0, 1] < -18  # a value near its bound is far out in u
    np.testing.assert_allclose(bounded_coordinates(u, lower), theta, rtol=1e-9, atol=1e-15)
    assert free_coordinates(theta, None) is not None and np.array_equal(free_coordinates(theta, None), theta)
    starts = np.array([[0.0, 0.0, 0.0], [0.0, 0.0, 0.25], [0.0, 1.0, 1.0]])
    moved = bounded_starts(starts, lower)
    np.testing.assert_array_equal(moved, [[0.0, 0.05, 0.3], [0.0, 1.0, 1.0]])  # the first two coincide
    with pytest.raises(ValueError, match="exponent_min must be a finite number"):
        fit_law(one_budget(), "chinchilla", exponent_min=float("nan"))


def test_cli_exponent_min(tmp_path, capsys):
    path = tmp_path / "one_budget.csv"
    one_budget().to_csv(path, index=False)
    out = tmp_path / "fit.json"
    assert main(["fit", str(path), "--exponent-min", "0", "--json", str(out)]) == 0
    d = json.loads(out.read_text())
    assert d["exponent_min"] == 0.0 and d["params"]["alpha"] >= 0 and d["params"]["beta"] >= 0
    assert "is not positive" not in capsys.readouterr().out
