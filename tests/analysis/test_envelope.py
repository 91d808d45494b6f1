import numpy as np
import pytest

from scaling.analysis.envelope import curve_matrix, envelope_analysis
from scaling.analysis.synthetic import TEST_LAW, chinchilla_optimum, training_curves

A_TRUE = TEST_LAW["beta"] / (TEST_LAW["alpha"] + TEST_LAW["beta"])
B_TRUE = TEST_LAW["alpha"] / (TEST_LAW["alpha"] + TEST_LAW["beta"])
SIZES = np.geomspace(1e6, 1e10, 33)


@pytest.mark.parametrize("method", ["linear", "pchip"])
def test_recovers_allocation_exponents(method):
    curves = training_curves(SIZES, noise=0.002, seed=0)
    r = envelope_analysis(curves, method=method, n_boot=200)
    lo, hi = r.n_opt.exponent_interval
    assert lo < A_TRUE < hi and hi - lo < 0.05
    lo, hi = r.d_opt.exponent_interval
    assert lo < B_TRUE < hi
    assert r.a == pytest.approx(A_TRUE, abs=0.015) and r.b == pytest.approx(B_TRUE, abs=0.015)
    # the envelope's winners sit next to the law's optimum (sizes are 1.33x apart)
    g = r.grid[r.grid.used]
    n_true, _ = chinchilla_optimum(g.flops.to_numpy(), **TEST_LAW)
    assert np.all(np.abs(np.log(g.params / n_true)) < np.log(1.6))
    assert r.n_opt(1e20) == pytest.approx(chinchilla_optimum(1e20, **TEST_LAW)[0], rel=0.1)


def test_envelope_is_the_lowest_curve_and_never_extrapolates():
    curves = training_curves([1e7, 1e8], tokens_per_param=(1, 100), evals=10)
    m = curve_matrix(curves, [6e14, 6e15, 6e16, 6e17])
    # 6e14 is before the 1e8 run's first point (6e16): only the small run reaches it
    assert np.isfinite(m.loss[0, 0]) and np.isnan(m.loss[1, 0])
    assert np.isnan(m.loss[0, 3]) and np.isfinite(m.loss[1, 3])
    np.testing.assert_allclose(m.tokens[:, 2], 6e16 / (6 * np.array([1e7, 1e8])))


def test_boundary_points_are_left_out_and_bootstrap_is_seeded():
    curves = training_curves(SIZES[::4], noise=0.002, seed=1)
    r = envelope_analysis(curves, n_boot=100, seed=3)
    g = r.grid
    assert not (g.used & g.boundary).any() and g.used.sum() > 10
    r2 = envelope_analysis(curves, n_boot=100, seed=3)
    assert r.n_opt.exponent_interval == r2.n_opt.exponent_interval
    bad = curves.copy()
    bad.loc[5, "flops"] = -1.0  # e.g. an int64 overflow of 6*N*D upstream
    with pytest.raises(ValueError, match="column 'flops' must be finite and positive; row 5 has -1.0"):
        envelope_analysis(bad)
    with pytest.raises(ValueError, match="missing column"):
        envelope_analysis(curves.drop(columns="tokens"))
    with pytest.raises(ValueError, match="usable grid points"):
        envelope_analysis(curves[curves.run_id == curves.run_id.iloc[0]])
