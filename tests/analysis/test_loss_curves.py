import numpy as np
import pytest

from scaling.analysis.loss_curves import METHODS, interpolate_curve

RNG = np.random.default_rng(0)
X = np.geomspace(1e8, 1e11, 12)
LOSS = 1.8 + 300.0 * X**-0.3  # a decreasing, curved (in log-log) training curve


@pytest.mark.parametrize("method", ["linear", "cubic", "pchip", "akima"])
def test_exact_interpolants_pass_through_points(method):
    f = interpolate_curve(X, LOSS, method=method)
    np.testing.assert_allclose(f(X), LOSS, rtol=1e-12)


def test_polynomial_is_exact_for_polynomial_data_in_log_log():
    u = np.log(X)
    loglo = 3.0 - 0.05 * (u - 20) + 0.004 * (u - 20) ** 2 - 1e-4 * (u - 20) ** 3
    f = interpolate_curve(X, np.exp(loglo), method="polynomial", degree=3)
    q = np.geomspace(X[0], X[-1], 101)
    uq = np.log(q)
    np.testing.assert_allclose(
        np.log(f(q)), 3.0 - 0.05 * (uq - 20) + 0.004 * (uq - 20) ** 2 - 1e-4 * (uq - 20) ** 3, atol=1e-10
    )
    # a lower degree is a least-squares fit, not an interpolant, but stays close
    g = interpolate_curve(X, LOSS, method="polynomial", degree=2)
    assert np.max(np.abs(np.log(g(X) / LOSS))) < 0.01


def test_smoothing_spline_residuals_are_bounded_by_the_noise():
    noise = 0.01
    xs = np.geomspace(X[0], X[-1], 40)
    noisy = (1.8 + 300.0 * xs**-0.3) * np.exp(noise * RNG.standard_normal(len(xs)))
    f = interpolate_curve(xs, noisy, method="smoothing")
    resid = np.log(f(xs) / noisy)
    assert np.sqrt(np.mean(resid**2)) < 1.5 * noise
    # and it tracks the clean curve more closely than the noisy points do
    clean = 1.8 + 300.0 * xs**-0.3
    assert np.sqrt(np.mean(np.log(f(xs) / clean) ** 2)) < noise


def test_pchip_preserves_monotonicity_densely():
    # a monotone curve with a plateau and a sharp drop: a cubic spline overshoots here
    x = np.geomspace(1, 1000, 9)
    loss = np.array([5.0, 4.9, 4.85, 4.84, 4.839, 3.0, 2.99, 2.98, 2.975])
    q = np.geomspace(1, 1000, 5001)
    assert np.all(np.diff(interpolate_curve(x, loss, method="pchip")(q)) <= 1e-12)
    assert np.any(np.diff(interpolate_curve(x, loss, method="cubic")(q)) > 0)  # the contrast


@pytest.mark.parametrize("method", sorted(METHODS))
def test_out_of_range_refuses_with_the_value_and_range(method):
    f = interpolate_curve(X, LOSS, method=method, degree=2)
    with pytest.raises(ValueError, match=r"x=2e\+11 is outside the observed range \[1e\+08, 1e\+11\]"):
        f(2e11)
    assert np.isfinite(f(2e11, extrapolate=True))
    assert np.isfinite(interpolate_curve(X, LOSS, method=method, extrapolate=True)(5e7))


def test_linear_extrapolates_as_the_end_power_law():
    x = np.array([1.0, 10.0, 100.0])
    loss = 5.0 * x**-0.5
    f = interpolate_curve(x, loss, extrapolate=True)
    np.testing.assert_allclose(f([0.1, 1000.0]), 5.0 * np.array([0.1, 1000.0]) ** -0.5)


def test_input_validation():
    perm = RNG.permutation(len(X))
    np.testing.assert_allclose(interpolate_curve(X[perm], LOSS[perm])(X), LOSS)  # unsorted is fine
    xd = np.r_[X, X[3]]
    ld = np.r_[LOSS, LOSS[3] * 1.1]
    f = interpolate_curve(xd, ld)  # duplicates averaged (geometric mean)
    np.testing.assert_allclose(f(X[3]), LOSS[3] * np.sqrt(1.1))
    with pytest.raises(ValueError, match="repeated"):
        interpolate_curve(xd, ld, duplicates="error")
    with pytest.raises(ValueError, match="loss must be finite and positive"):
        interpolate_curve(X, -LOSS)
    with pytest.raises(ValueError, match="x must be finite and positive"):
        interpolate_curve(np.r_[0.0, X[1:]], LOSS)
    with pytest.raises(ValueError, match="at least 5"):
        interpolate_curve(X[:4], LOSS[:4], method="smoothing")
    with pytest.raises(ValueError, match="at least 4"):
        interpolate_curve(X[:3], LOSS[:3], method="polynomial", degree=3)
    with pytest.raises(ValueError, match="unknown interpolation method 'spline'"):
        interpolate_curve(X, LOSS, method="spline")
    with pytest.raises(ValueError, match="one length"):
        interpolate_curve(X, LOSS[:-1])
