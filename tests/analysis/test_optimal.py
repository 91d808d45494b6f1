import numpy as np
import pytest
from scipy.optimize import minimize_scalar

from scaling.analysis import FitResult, allocation_exponents, bootstrap, compute_optimal
from scaling.analysis.synthetic import TEST_LAW, chinchilla_loss, chinchilla_optimum


def law_fit(params=TEST_LAW, k=6.0):
    return FitResult(law="chinchilla", params=dict(params), objective=0.0, grad_norm=0.0, converged=True,
                     n_points=0, k=k)  # fmt: skip


def test_closed_form_minimises_the_law_on_the_budget():
    fit = law_fit()
    for C in (1e19, 1e22, 1e25):
        opt = compute_optimal(fit, C)
        # numerical minimum of L(N, C/(6N)) over log N
        res = minimize_scalar(
            lambda x: chinchilla_loss(np.exp(x), C / (6 * np.exp(x)), **TEST_LAW),  # noqa: B023 (called at once)
            bounds=(np.log(1e3), np.log(1e15)),
            method="bounded",
            options={"xatol": 1e-10},
        )
        assert opt["params"] == pytest.approx(np.exp(res.x), rel=1e-4)
        assert opt["params"] * opt["tokens"] * 6 == pytest.approx(C, rel=1e-12)
        assert opt["loss"] == pytest.approx(res.fun, rel=1e-12)
        n_ref, d_ref = chinchilla_optimum(C, **TEST_LAW)
        assert opt["params"] == pytest.approx(n_ref, rel=1e-12) and opt["tokens"] == pytest.approx(d_ref, rel=1e-12)


def test_allocation_exponents_and_flop_convention():
    a, b = allocation_exponents(law_fit())
    s = TEST_LAW["alpha"] + TEST_LAW["beta"]
    assert a == pytest.approx(TEST_LAW["beta"] / s) and b == pytest.approx(TEST_LAW["alpha"] / s)
    o6 = compute_optimal(law_fit(), [1e21, 1e22])
    o8 = compute_optimal(law_fit(), [1e21, 1e22], k=8.0)
    assert isinstance(o6["params"], np.ndarray) and o6["params"].shape == (2,)
    np.testing.assert_allclose(o8["params"] * o8["tokens"] * 8, [1e21, 1e22])
    np.testing.assert_allclose(o6["tokens_per_param"], o6["tokens"] / o6["params"])


def test_intervals_from_a_bootstrap():
    rng = np.random.default_rng(0)
    N = np.exp(rng.uniform(np.log(1e7), np.log(1e10), 240))
    D = N * np.exp(rng.uniform(np.log(2), np.log(200), 240))
    L = chinchilla_loss(N, D, **TEST_LAW) * np.exp(0.01 * rng.standard_normal(240))
    b = bootstrap({"params": N, "tokens": D, "loss": L}, n_boot=128, seed=0)
    (a, alo, ahi), (bb, blo, bhi) = allocation_exponents(b, level=0.9)
    assert alo < a < ahi and blo < bb < bhi
    a_true = TEST_LAW["beta"] / (TEST_LAW["alpha"] + TEST_LAW["beta"])
    assert alo < a_true < ahi
    out = compute_optimal(b, 1e23)
    for key in ("params", "tokens", "tokens_per_param", "loss"):
        assert out[f"{key}_lo"] <= out[key] <= out[f"{key}_hi"], key
    true_n, _ = chinchilla_optimum(1e23, **TEST_LAW)
    assert out["params_lo"] < true_n < out["params_hi"]
    assert compute_optimal(b.fit, 1e23)["params_lo"] == out["params_lo"]  # a fit carrying its bootstrap


def test_laws_without_an_optimum_say_so():
    fit = FitResult(law="power_flops", params=dict(E=2.0, A=50.0, alpha=0.1), objective=0.0, grad_norm=0.0,
                    converged=True, n_points=0)  # fmt: skip
    with pytest.raises(ValueError, match="no closed-form compute-optimal allocation"):
        compute_optimal(fit, 1e22)


def test_resamples_with_a_vanished_term_drop_out_of_intervals():
    from scaling.analysis import BootstrapResult

    fit = law_fit()
    rng = np.random.default_rng(0)
    draws = np.array([[TEST_LAW[p] for p in ("E", "A", "B", "alpha", "beta")]] * 50) * rng.uniform(0.98, 1.02, (50, 5))
    draws[0, 1] = 0.0  # A vanished in one refit (exp of a very negative log A)
    b = BootstrapResult(law="chinchilla", draws=draws, objectives=np.zeros(50), converged=np.ones(50, bool), fit=fit)
    fit.bootstrap = b
    out = compute_optimal(fit, 1e22, level=0.9, interval="law")
    assert np.isfinite([out["params_lo"], out["params_hi"], out["loss_lo"], out["loss_hi"]]).all()
    assert out["params_lo"] < out["params"] < out["params_hi"]
    lo, hi = b.predict_interval(params=1e9, tokens=2e10)  # a law with A = 0 still predicts
    assert np.isfinite([lo, hi]).all()


def test_family_optimum_picks_the_buildable_size_nearest_the_closed_form():
    """Approach 3 on a family one can build: each member trained for D = C / its own FLOPs
    per token; with fpt = 6N the winner is the member closest (in loss) to the closed form."""
    from types import SimpleNamespace

    from scaling.analysis.optimal import family_optimum

    C = 1e21
    n_ref, _ = chinchilla_optimum(C, **TEST_LAW)
    sizes = [SimpleNamespace(params=n, flops_per_token=6 * n, width=int(i), depth=2)
             for i, n in enumerate(n_ref * np.geomspace(0.1, 10, 21))]  # fmt: skip
    best = family_optimum(law_fit(), sizes, C)
    losses = [chinchilla_loss(s.params, C / s.flops_per_token, **TEST_LAW) for s in sizes]
    assert best["width"] == int(np.argmin(losses)) == 10 and best["depth"] == 2
    assert best["N"] == pytest.approx(n_ref) and best["D"] == pytest.approx(C / (6 * n_ref))
    assert best["loss"] == pytest.approx(min(losses), rel=1e-12)
    assert family_optimum(law_fit(), [], C) is None
    bare = family_optimum(law_fit(), [SimpleNamespace(params=1e9, flops_per_token=6e9)], C)
    assert bare["width"] is None and bare["D"] == pytest.approx(C / 6e9)
