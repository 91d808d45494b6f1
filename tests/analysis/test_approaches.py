import numpy as np
import pytest

from scaling.analysis.approaches import COLUMNS, compare_approaches
from scaling.analysis.synthetic import TEST_LAW, chinchilla_optimum, isoflop_runs, training_curves

A_TRUE = TEST_LAW["beta"] / (TEST_LAW["alpha"] + TEST_LAW["beta"])
B_TRUE = TEST_LAW["alpha"] / (TEST_LAW["alpha"] + TEST_LAW["beta"])
C = 1e21
# a small starting grid around the truth keeps the L-BFGS compile small; the fitter's
# own tests cover its default grid
GRID = dict(log_E=[0.5], log_A=[5.0, 7.0], log_B=[7.0, 9.0], alpha=[0.3, 0.5], beta=[0.3, 0.5])


@pytest.fixture(scope="module")
def data():
    curves = training_curves(np.geomspace(1e6, 1e10, 33), noise=0.002, seed=0)
    runs = isoflop_runs(np.logspace(18, 22, 9), noise=0.005, seed=1)
    return curves, runs


@pytest.mark.slow
def test_three_approaches_recover_the_chinchilla_allocation(data):
    curves, runs = data
    table = compare_approaches(
        curves, runs, flops=C, n_boot=100, isoflop_options=dict(budget="budget"), fit_options=dict(grid=GRID)
    )
    assert list(table.columns) == list(COLUMNS)
    assert list(table.approach) == [1, 2, 3]
    n_true, d_true = chinchilla_optimum(C, **TEST_LAW)
    for row in table.itertuples():
        assert row.a_lo < A_TRUE < row.a_hi, row
        assert row.b_lo < B_TRUE < row.b_hi, row
        assert row.a == pytest.approx(A_TRUE, abs=0.01) and row.b == pytest.approx(B_TRUE, abs=0.01)
        assert row.n_opt_lo < row.n_opt < row.n_opt_hi and row.d_opt_lo < row.d_opt < row.d_opt_hi
        assert row.n_opt == pytest.approx(n_true, rel=0.1) and row.d_opt == pytest.approx(d_true, rel=0.1)
        assert row.warnings == 0
    # approach 3 from a fit that already carries its bootstrap gives the same row
    from scaling.analysis.fit import fit_law
    from scaling.analysis.uncertainty import bootstrap

    fit = bootstrap(runs, fit=fit_law(runs, "chinchilla", grid=GRID), n_boot=100, seed=0, level=0.95).fit
    only3 = compare_approaches(fit=fit, flops=C, n_boot=100)
    assert list(only3.approach) == [3]
    np.testing.assert_allclose(
        only3.iloc[0][["a", "a_lo", "a_hi", "n_opt"]].to_numpy(float),
        table.iloc[2][["a", "a_lo", "a_hi", "n_opt"]].to_numpy(float),
    )


def test_inputs_decide_which_approaches_run(data):
    curves, _ = data
    only1 = compare_approaches(curves, flops=C, n_boot=20)
    assert list(only1.approach) == [1] and only1.a.iloc[0] == pytest.approx(A_TRUE, abs=0.02)
    with pytest.raises(ValueError, match="needs curves"):
        compare_approaches()
    with pytest.raises(ValueError, match="flops must be positive"):
        compare_approaches(curves, flops=0)
