import jax
import jax.numpy as jnp
import numpy as np
import pytest

from scaling.analysis import fit_law
from scaling.analysis.laws import Law, get_law, list_laws, register_law


def test_registry_lists_known_laws_in_errors():
    assert {"chinchilla", "kaplan", "power_params", "power_tokens", "power_flops"} <= set(list_laws())
    with pytest.raises(ValueError, match="unknown law 'chinchila'.*chinchilla.*kaplan"):
        get_law("chinchila")
    assert get_law("Chinchilla") is get_law("chinchilla")
    with pytest.raises(ValueError, match="already registered"):
        register_law(get_law("chinchilla"))


def test_chinchilla_form_and_coordinates():
    law = get_law("chinchilla")
    assert law.params == ("E", "A", "B", "alpha", "beta")
    assert law.fit_names == ("log_E", "log_A", "log_B", "alpha", "beta")
    assert law.start_grid().shape == (4500, 5)  # Hoffmann's grid
    p = dict(E=1.8, A=480.0, B=2100.0, alpha=0.35, beta=0.37)
    N, D = np.array([1e8, 3e9]), np.array([2e9, 6e10])
    want = p["E"] + p["A"] / N ** p["alpha"] + p["B"] / D ** p["beta"]
    np.testing.assert_allclose(law.predict(p, params=N, tokens=D), want, rtol=1e-12)
    theta = law.to_fit(list(p.values()))
    np.testing.assert_allclose(theta[:3], np.log([1.8, 480.0, 2100.0]))
    np.testing.assert_allclose(law.to_natural(theta), list(p.values()))
    with pytest.raises(ValueError, match="missing"):
        law.predict(p, params=N)


def test_kaplan_and_power_forms():
    k = get_law("kaplan")
    p = dict(Nc=8.8e13, Dc=5.4e13, alpha_N=0.076, alpha_D=0.095)
    N, D = 1e9, 1e10
    want = ((p["Nc"] / N) ** (p["alpha_N"] / p["alpha_D"]) + p["Dc"] / D) ** p["alpha_D"]
    np.testing.assert_allclose(k.predict(p, params=N, tokens=D), want, rtol=1e-12)
    pw = get_law("power_flops")
    np.testing.assert_allclose(pw.predict(dict(E=1.5, A=30.0, alpha=0.1), flops=1e20), 1.5 + 30.0 * 1e20**-0.1)


def test_a_new_law_in_a_few_lines_fits():
    law = register_law(
        Law(
            name="test_pure_power_flops",
            params=("A", "alpha"),
            log_params=("A",),
            inputs=("flops",),
            log_loss=lambda q, x: q["log_A"] - q["alpha"] * x["flops"],
            grid={"log_A": [0.0, 2.0, 4.0], "alpha": [0.0, 0.1, 0.3]},
        ),
        overwrite=True,
    )
    C = np.geomspace(1e17, 1e21, 12)
    fit = fit_law({"flops": C, "params": C / 1e10, "loss": 40.0 * C**-0.05}, law)
    assert fit.converged
    assert fit.params["A"] == pytest.approx(40.0, rel=1e-6)
    assert fit.params["alpha"] == pytest.approx(0.05, rel=1e-6)


def test_malformed_law_is_rejected():
    with pytest.raises(ValueError, match="grid keys must be the fit names"):
        Law(name="bad", params=("E",), log_params=("E",), inputs=("flops",), log_loss=None, grid={"E": [1.0]})
    with pytest.raises(ValueError, match="inputs"):
        Law(name="bad", params=("E",), inputs=("steps",), log_loss=None, grid={"E": [1.0]})


def test_float64_stays_local():
    fit_law(
        {"params": [1e8, 1e9, 1e10] * 3, "tokens": np.repeat([1e9, 1e10, 1e11], 3), "loss": np.linspace(3, 2, 9)},
        "power_params",
        grid={"log_E": [0.0], "log_A": [2.0], "alpha": [0.2]},
    )
    assert jnp.ones(2).dtype == jnp.float32
    assert not jax.config.jax_enable_x64
