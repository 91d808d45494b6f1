"""Scaling-law functional forms and their registry.

A law is a pure function of its parameters and inputs, written as a *log* prediction in
*fitting coordinates*: positive parameters listed in ``log_params`` are fitted as their
logarithm (``log_E`` for ``E``), the others as they are. Inputs arrive as logarithms too
(``x["params"]`` is ln N), so every form can be written in a numerically stable
log-sum-exp style. Laws are written for one point (scalars); the fitter vmaps them.

Built in:

- ``chinchilla``: L = E + A/N^alpha + B/D^beta (Hoffmann et al. 2022; the log-sum-exp
  form of Besiroglu et al. 2024, with a = log A, b = log B, e = log E);
- ``kaplan``: L = [(Nc/N)^(alpha_N/alpha_D) + Dc/D]^alpha_D (Kaplan et al. 2020);
- ``chinchilla_dexp``: L = E + A/N^alpha + B/D^(beta + gamma·ln(N/1e9)), a size-dependent
  data exponent (Farseer-like, Li et al. 2025);
- ``power_params`` / ``power_tokens`` / ``power_flops``: L = E + A·x^(-alpha) in one
  variable x = N, D or C.

Adding a form takes a few lines::

    register_law(Law(
        name="my_law", params=("E", "A", "alpha"), log_params=("E", "A"), inputs=("flops",),
        log_loss=lambda q, x: jnp.logaddexp(q["log_E"], q["log_A"] - q["alpha"] * x["flops"]),
        grid={"log_E": [-1, 0, 1], "log_A": [0, 5, 10], "alpha": [0.1, 0.5, 1.0]},
    ))
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["Law", "register_law", "get_law", "list_laws", "paired_log_loss", "INPUTS"]

# The canonical input columns a law may use (see table.py); unique_tokens (the distinct
# tokens a run saw, repeated tokens/unique_tokens epochs) is for data-constrained laws.
INPUTS = ("params", "tokens", "flops", "unique_tokens")


@dataclass(frozen=True, eq=False)
class Law:
    """One functional form.

    name: registry key.
    params: natural parameter names, in the order used everywhere (vectors, JSON).
    log_params: the positive parameters fitted as logarithms (fit name ``log_<name>``).
    inputs: canonical columns the law reads, among ``params``, ``tokens``, ``flops``.
    log_loss(q, x): log of the predicted loss; q maps fit names to values, x maps each
        input to its logarithm. Scalars in, scalar out (it is vmapped), written in jnp.
    grid: default starting grid, fit name -> values; the starts are its Cartesian product.
    linear: for ``method="varpro"``, the non-negative coefficients that enter linearly
        (natural names); basis(q, x) then returns one term per coefficient, evaluated at
        the remaining (nonlinear) fit parameters, so that loss = sum(coef * term).
    optimum(p, k): for laws of (params, tokens), the compute-optimal allocation under
        C = k·N·D as (G, a, b) with N_opt = G·(C/k)^a, D_opt = (C/k)^b / G.
    """

    name: str
    params: tuple[str, ...]
    inputs: tuple[str, ...]
    log_loss: Callable
    grid: Mapping[str, ArrayLike]
    log_params: tuple[str, ...] = ()
    linear: tuple[str, ...] = ()
    basis: Callable | None = None
    optimum: Callable | None = None
    description: str = ""
    fit_names: tuple[str, ...] = field(init=False)

    def __post_init__(self):
        unknown = [p for p in self.log_params if p not in self.params]
        if unknown:
            raise ValueError(f"law {self.name!r}: log_params {unknown} are not among params {list(self.params)}")
        bad_inputs = [i for i in self.inputs if i not in INPUTS]
        if bad_inputs:
            raise ValueError(f"law {self.name!r}: inputs {bad_inputs} must be among {list(INPUTS)}")
        fit_names = tuple(f"log_{p}" if p in self.log_params else p for p in self.params)
        object.__setattr__(self, "fit_names", fit_names)
        missing = [n for n in fit_names if n not in self.grid]
        extra = [n for n in self.grid if n not in fit_names]
        if missing or extra:
            raise ValueError(
                f"law {self.name!r}: grid keys must be the fit names {list(fit_names)}"
                f" (missing {missing}, unexpected {extra})"
            )
        if self.linear and self.basis is None:
            raise ValueError(f"law {self.name!r}: linear={self.linear} needs a basis function")

    # -- coordinates ---------------------------------------------------------------
    @property
    def n_params(self) -> int:
        return len(self.params)

    @property
    def is_log(self) -> np.ndarray:
        return np.array([p in self.log_params for p in self.params])

    def to_natural(self, theta) -> np.ndarray:
        """Fit coordinates (..., P) -> natural parameters (..., P)."""
        theta = np.asarray(theta, dtype=float)
        return np.where(self.is_log, np.exp(theta), theta)

    def to_fit(self, natural, *, strict: bool = True) -> np.ndarray:
        """Natural parameters (..., P) -> fit coordinates. A non-positive value of a log
        parameter is an error when strict; else 0 maps to -inf (the term vanishes, which
        the law evaluates exactly) and a negative value to NaN."""
        natural = np.asarray(natural, dtype=float)
        if strict and np.any(natural[..., self.is_log] <= 0):
            raise ValueError(f"law {self.name!r}: parameters {list(self.log_params)} must be positive")
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(self.is_log, np.log(np.where(self.is_log, natural, 1.0)), natural)

    def start_grid(self, grid: Mapping[str, ArrayLike] | None = None) -> np.ndarray:
        """Cartesian product of the grid (default: the law's) as a (S, P) array in fit coordinates."""
        g = dict(self.grid if grid is None else grid)
        missing = [n for n in self.fit_names if n not in g]
        if missing:
            raise ValueError(f"grid for law {self.name!r} lacks {missing}; it needs values for {list(self.fit_names)}")
        axes = [np.atleast_1d(np.asarray(g[n], dtype=float)) for n in self.fit_names]
        return np.array(list(itertools.product(*axes)), dtype=float).reshape(-1, self.n_params)

    # -- evaluation ------------------------------------------------------------------
    def log_loss_vec(self, theta, logx):
        """log L for one parameter vector theta (P,) and inputs logx (n_inputs,) (jnp)."""
        q = {n: theta[i] for i, n in enumerate(self.fit_names)}
        x = {n: logx[i] for i, n in enumerate(self.inputs)}
        return self.log_loss(q, x)

    def predict(self, natural: Mapping[str, float] | ArrayLike, **inputs) -> np.ndarray:
        """Loss at the given inputs (arrays broadcast), from natural parameters (numpy)."""
        return self.predict_many(_as_vector(self, natural)[None, :], **inputs)[0]

    def predict_many(self, natural, **inputs) -> np.ndarray:
        """(R, ...) losses for R natural parameter vectors (R, P) at the inputs (broadcast)."""
        import jax

        theta = self.to_fit(np.atleast_2d(np.asarray(natural, dtype=float)), strict=False)
        missing = [i for i in self.inputs if inputs.get(i) is None]
        if missing:
            raise ValueError(f"law {self.name!r} needs inputs {list(self.inputs)}; missing {missing}")
        arrays = np.broadcast_arrays(*[np.asarray(inputs[i], dtype=float) for i in self.inputs])
        if any(np.any(~(a > 0)) for a in arrays):
            raise ValueError(f"inputs {list(self.inputs)} must be positive")
        shape = arrays[0].shape
        logx = np.stack([np.log(a).ravel() for a in arrays], axis=-1)
        with jax.enable_x64(True):
            out = np.exp(np.asarray(_batch_log_loss(self)(theta, logx)))
        return out.reshape((len(theta),) + shape)


@cache
def _batch_log_loss(law: Law):
    import jax

    return jax.jit(jax.vmap(jax.vmap(law.log_loss_vec, in_axes=(None, 0)), in_axes=(0, None)))


@cache
def paired_log_loss(law: Law):
    """(R, P) parameters with their own (R, m, k) log inputs -> (R, m) log losses."""
    import jax

    return jax.jit(jax.vmap(jax.vmap(law.log_loss_vec, in_axes=(None, 0)), in_axes=(0, 0)))


def _as_vector(law: Law, natural) -> np.ndarray:
    if isinstance(natural, Mapping):
        missing = [p for p in law.params if p not in natural]
        if missing:
            raise ValueError(f"law {law.name!r} needs parameters {list(law.params)}; missing {missing}")
        return np.array([float(natural[p]) for p in law.params])
    v = np.asarray(natural, dtype=float)
    if v.shape[-1:] != (law.n_params,):
        raise ValueError(f"law {law.name!r} has {law.n_params} parameters {list(law.params)}; got shape {v.shape}")
    return v


_REGISTRY: dict[str, Law] = {}


def register_law(law: Law, *, overwrite: bool = False) -> Law:
    """Add a law to the registry (``get_law(law.name)`` then finds it)."""
    if law.name in _REGISTRY and not overwrite:
        raise ValueError(f"a law named {law.name!r} is already registered (pass overwrite=True to replace it)")
    _REGISTRY[law.name] = law
    return law


def get_law(law: str | Law) -> Law:
    """The registered law of that name (a Law passes through)."""
    if isinstance(law, Law):
        return law
    key = str(law).lower()
    if key not in _REGISTRY:
        raise ValueError(f"unknown law {law!r}; known laws: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[key]


def list_laws() -> list[str]:
    return sorted(_REGISTRY)


# ---------------------------------------------------------------------------------------
# Built-in laws. log(sum(exp(terms))) is written without the max shift: a sum of
# positive terms loses no precision, exp overflows only beyond e^709 (the optimizer then
# sees a non-finite value and backtracks), and the shift-free form is ~25% faster.


def _lse(*terms):
    import jax.numpy as jnp

    return jnp.log(sum(jnp.exp(t) for t in terms))


def _chinchilla_log_loss(q, x):
    return _lse(q["log_E"], q["log_A"] - q["alpha"] * x["params"], q["log_B"] - q["beta"] * x["tokens"])


def _chinchilla_basis(q, x):
    import jax.numpy as jnp

    return [jnp.ones_like(x["params"]), jnp.exp(-q["alpha"] * x["params"]), jnp.exp(-q["beta"] * x["tokens"])]


def _chinchilla_optimum(p, k):
    E, A, B, alpha, beta = (p[n] for n in ("E", "A", "B", "alpha", "beta"))
    s = alpha + beta
    G = (alpha * A / (beta * B)) ** (1.0 / s)
    return G, beta / s, alpha / s


def _kaplan_log_loss(q, x):
    ratio = q["alpha_N"] / q["alpha_D"]
    return q["alpha_D"] * _lse(ratio * (q["log_Nc"] - x["params"]), q["log_Dc"] - x["tokens"])


_HOFFMANN = {
    # Hoffmann et al.'s grid as used by Besiroglu et al.: 6 x 6 x 5 x 5 x 5 = 4,500 starts.
    "log_E": np.arange(-1.0, 1.01, 0.5),
    "log_A": np.arange(0.0, 25.1, 5.0),
    "log_B": np.arange(0.0, 25.1, 5.0),
    "alpha": np.arange(0.0, 2.01, 0.5),
    "beta": np.arange(0.0, 2.01, 0.5),
}

register_law(
    Law(
        name="chinchilla",
        params=("E", "A", "B", "alpha", "beta"),
        log_params=("E", "A", "B"),
        inputs=("params", "tokens"),
        log_loss=_chinchilla_log_loss,
        grid=_HOFFMANN,
        linear=("E", "A", "B"),
        basis=_chinchilla_basis,
        optimum=_chinchilla_optimum,
        description="L = E + A/N^alpha + B/D^beta (Hoffmann et al. 2022)",
    )
)

register_law(
    Law(
        name="kaplan",
        params=("Nc", "Dc", "alpha_N", "alpha_D"),
        log_params=("Nc", "Dc"),
        inputs=("params", "tokens"),
        log_loss=_kaplan_log_loss,
        grid={
            "log_Nc": [20.0, 25.0, 30.0, 35.0],
            "log_Dc": [20.0, 25.0, 30.0, 35.0],
            "alpha_N": [0.05, 0.1, 0.2, 0.4],
            "alpha_D": [0.05, 0.1, 0.2, 0.4],
        },
        description="L = [(Nc/N)^(alpha_N/alpha_D) + Dc/D]^alpha_D (Kaplan et al. 2020)",
    )
)


# A data exponent that drifts with model size, beta(N) = beta + gamma·ln(N/1e9): the
# effect Farseer (Li et al. 2025) models with N-dependent exponents; gamma = 0 is Chinchilla.
_LN_N0 = float(np.log(1e9))  # the size at which chinchilla_dexp's data exponent is beta


def _dexp_log_loss(q, x):
    beta_n = q["beta"] + q["gamma"] * (x["params"] - _LN_N0)
    return _lse(q["log_E"], q["log_A"] - q["alpha"] * x["params"], q["log_B"] - beta_n * x["tokens"])


register_law(
    Law(
        name="chinchilla_dexp",
        params=("E", "A", "B", "alpha", "beta", "gamma"),
        log_params=("E", "A", "B"),
        inputs=("params", "tokens"),
        log_loss=_dexp_log_loss,
        # Hoffmann's grid (coarsened in E, A, B) x three drifts of the data exponent
        grid={
            "log_E": [-1.0, 0.0, 1.0],
            "log_A": _HOFFMANN["log_A"],
            "log_B": _HOFFMANN["log_B"],
            "alpha": [0.0, 0.5, 1.0, 1.5],
            "beta": [0.0, 0.5, 1.0, 1.5],
            "gamma": [-0.02, 0.0, 0.02],
        },
        description="L = E + A/N^alpha + B/D^(beta + gamma ln(N/1e9)) (size-dependent data exponent)",
    )
)


def _power_law(var: str, symbol: str) -> Law:
    def log_loss(q, x):
        return _lse(q["log_E"], q["log_A"] - q["alpha"] * x[var])

    def basis(q, x):
        import jax.numpy as jnp

        return [jnp.ones_like(x[var]), jnp.exp(-q["alpha"] * x[var])]

    return Law(
        name=f"power_{var}",
        params=("E", "A", "alpha"),
        log_params=("E", "A"),
        inputs=(var,),
        log_loss=log_loss,
        grid={"log_E": _HOFFMANN["log_E"], "log_A": np.arange(0.0, 40.1, 5.0), "alpha": np.arange(0.0, 2.01, 0.25)},
        linear=("E", "A"),
        basis=basis,
        description=f"L = E + A*{symbol}^(-alpha)",
    )


for _var, _sym in (("params", "N"), ("tokens", "D"), ("flops", "C")):
    register_law(_power_law(_var, _sym))


# ---------------------------------------------------------------------------------------
# Hyperparameter laws (scaling.analysis.hparams): the "loss" they predict is the optimal
# learning rate or batch size of an (N, D) cell, fitted in log space like a loss law.


def _lr_nd_log(q, x):
    return q["log_a"] + q["alpha"] * x["params"] + q["beta"] * x["tokens"]


def _batch_d_log(q, x):
    return q["log_c"] + q["gamma"] * x["tokens"]


def _batch_nd_log(q, x):
    return q["log_c"] + q["alpha"] * x["params"] + q["gamma"] * x["tokens"]


register_law(
    Law(
        name="lr_nd",
        params=("a", "alpha", "beta"),
        log_params=("a",),
        inputs=("params", "tokens"),
        log_loss=_lr_nd_log,
        grid={"log_a": [-10.0, 0.0, 10.0], "alpha": [-1.0, 0.0], "beta": [0.0, 0.5]},
        description="optimal learning rate eta*(N, D) = a * N^alpha * D^beta (Li et al. 2025, Step Law)",
    )
)
register_law(
    Law(
        name="batch_d",
        params=("c", "gamma"),
        log_params=("c",),
        inputs=("tokens",),
        log_loss=_batch_d_log,
        grid={"log_c": [-10.0, 0.0, 10.0], "gamma": [0.0, 0.5, 1.0]},
        description="optimal batch size B*(D) = c * D^gamma (Li et al. 2025, Step Law)",
    )
)
register_law(
    Law(
        name="batch_nd",
        params=("c", "alpha", "gamma"),
        log_params=("c",),
        inputs=("params", "tokens"),
        log_loss=_batch_nd_log,
        grid={"log_c": [-10.0, 0.0, 10.0], "alpha": [-0.5, 0.0, 0.5], "gamma": [0.0, 0.5, 1.0]},
        description="optimal batch size B*(N, D) = c * N^alpha * D^gamma",
    )
)
