import numpy as np
import pandas as pd
import pytest

from scaling.analysis import FitResult, fit_law, get_law
from scaling.analysis.synthetic import TEST_LAW, chinchilla_loss

TRUE = TEST_LAW  # E=1.7, A=400, B=2000, alpha=0.34, beta=0.37


def synthetic(noise=0.0, seed=0, n=240):
    """n runs: sizes 1e7..1e10, 2..200 tokens per parameter, log-normal noise on the loss."""
    rng = np.random.default_rng(seed)
    N = np.exp(rng.uniform(np.log(1e7), np.log(1e10), n))
    D = N * np.exp(rng.uniform(np.log(2), np.log(200), n))
    L = chinchilla_loss(N, D, **TRUE) * np.exp(noise * rng.standard_normal(n))
    return pd.DataFrame(dict(params=N, tokens=D, flops=6 * N * D, loss=L))


def test_clean_data_recovers_the_law_exactly():
    fit = fit_law(synthetic())
    assert fit.converged and fit.objective < 1e-12
    for p, v in TRUE.items():
        assert fit.params[p] == pytest.approx(v, rel=1e-5), p
    assert fit.n_points == 240 and fit.n_starts == 4500 and fit.n_at_best >= 1
    assert fit.grad_norm <= fit.gtol


def test_varpro_lands_on_the_same_optimum():
    df = synthetic(noise=0.01, seed=3)
    lbfgs = fit_law(df)
    varpro = fit_law(df, method="varpro")
    assert varpro.converged and varpro.method == "varpro"
    assert varpro.objective == pytest.approx(lbfgs.objective, rel=1e-8)
    for p in ("E", "alpha", "beta"):
        assert varpro.params[p] == pytest.approx(lbfgs.params[p], abs=1e-5)


@pytest.mark.slow
def test_pruning_finds_the_optimum_of_every_start():
    df = synthetic(noise=0.01, seed=3)
    pruned = fit_law(df)
    full = fit_law(df, prune=None)  # every one of the 4,500 starts converged
    assert full.n_kept == full.n_starts == 4500 and pruned.n_kept < 4500
    assert full.objective == pytest.approx(pruned.objective, rel=1e-8)
    for p in ("E", "alpha", "beta"):
        assert full.params[p] == pytest.approx(pruned.params[p], abs=1e-5)


def test_weights_are_multiplicities():
    df = synthetic(noise=0.01, seed=4)
    one = fit_law(df)
    two = fit_law(df, weights=np.full(len(df), 2.0))
    assert two.objective == pytest.approx(2 * one.objective, rel=1e-8)
    assert two.params["alpha"] == pytest.approx(one.params["alpha"], abs=1e-6)


def test_result_round_trip_and_predict(tmp_path):
    fit = fit_law(synthetic(noise=0.01, seed=5))
    back = FitResult.from_json(fit.to_json(tmp_path / "fit.json"))
    assert back.params == fit.params and back.objective == fit.objective
    assert back.warnings == fit.warnings and back.n_at_best == fit.n_at_best
    N, D = np.array([1e9, 1e11]), np.array([2e10, 3e12])
    np.testing.assert_allclose(
        back.predict(params=N, tokens=D), get_law("chinchilla").predict(fit.params, params=N, tokens=D)
    )
    assert "alpha" in fit.summary()


def test_warnings_for_grid_edge_and_poor_determination():
    df = synthetic(noise=0.01, seed=6)
    narrow = {"log_E": [0.0], "log_A": [1.0, 2.0], "log_B": [1.0, 2.0], "alpha": [0.1, 0.2], "beta": [0.1, 0.2]}
    fit = fit_law(df, grid=narrow)
    assert any("outside the start grid" in w for w in fit.warnings)
    assert len(fit.hessian_eigenvalues) == 5
    # the sloppy-direction rule: a unit move along the flattest eigenvector raises the
    # objective by less than SLOPPY_RISE -> a warning naming the parameters involved
    from scaling.analysis.fit import SLOPPY_RISE

    flat = 0.5 * min(fit.hessian_eigenvalues) / fit.objective < SLOPPY_RISE
    assert flat == any("poorly determined" in w for w in fit.warnings)


def test_unknown_method_and_bad_grid():
    df = synthetic(n=20)
    with pytest.raises(ValueError, match="unknown method"):
        fit_law(df, method="newton")
    with pytest.raises(ValueError, match="lacks"):
        fit_law(df, grid={"alpha": [0.3]})
    with pytest.raises(ValueError, match="no linear coefficients"):
        fit_law(df, "kaplan", method="varpro")
