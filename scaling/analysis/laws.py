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
  variable x = N, D or C;
- ``lr_nd``, ``batch_d``, ``batch_nd``: optimal-hyperparameter power laws (hparams.py);
- ``data_constrained``: Muennighoff et al. 2023's repeated-data law (inputs params,
  tokens, unique_tokens).

Every built-in form lives here, so every one is registered in any process that looks a
law up (``scaling fit --law data_constrained`` in a fresh one). ``held_law`` holds some of
a law's parameters fixed; ``get_law`` rebuilds such a law from its name.

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

__all__ = ["Law", "register_law", "get_law", "held_law", "list_laws", "paired_log_loss", "INPUTS"]

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
    signed: parameters fitted as they are that are *not* decay exponents (of either sign:
        chinchilla_dexp's drift gamma, a hyperparameter law's exponents); the diagnostics'
        "exponent not positive" check and ``exponent_min`` skip them.
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
    signed: tuple[str, ...] = ()
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
        bad_signed = [p for p in self.signed if p not in self.params or p in self.log_params]
        if bad_signed:
            raise ValueError(f"law {self.name!r}: signed {bad_signed} must be params fitted as they are (not logs)")
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
    """The registered law of that name (a Law passes through).

    Every built-in law is registered when this module loads, so a fresh process finds
    them all. A name ``base[p=v,...]`` is ``held_law(base, {p: v, ...})``, built on first
    lookup: a fit of a law with held parameters reloads from its JSON in any process.
    """
    if isinstance(law, Law):
        return law
    key = str(law).lower()
    if key not in _REGISTRY and key.endswith("]") and "[" in key:
        base, _, spec = key[:-1].partition("[")
        if base in _REGISTRY:
            return held_law(base, _parse_held(_REGISTRY[base], spec, law))
    if key not in _REGISTRY:
        raise ValueError(f"unknown law {law!r}; known laws: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[key]


def list_laws() -> list[str]:
    return sorted(_REGISTRY)


def _parse_held(base: Law, spec: str, name) -> dict[str, float]:
    by_lower = {p.lower(): p for p in base.params}
    held = {}
    for item in spec.split(","):
        k, eq, v = item.partition("=")
        if not eq or k.strip() not in by_lower:
            raise ValueError(
                f"law name {name!r}: {item!r} is not 'parameter=value' with a parameter of {base.name!r} "
                f"{list(base.params)}"
            )
        try:
            held[by_lower[k.strip()]] = float(v)
        except ValueError:
            raise ValueError(f"law name {name!r}: the value of {k.strip()!r} is not a number ({v!r})") from None
    return held


def held_law(law: str | Law, fixed: Mapping[str, float]) -> Law:
    """``law`` with the parameters in ``fixed`` held at those natural values; the others are fitted.

    Registered (once) as ``name[p=v,...]`` (lower case, parameters in the law's order, values
    to 8 significant digits), the name its FitResults carry; ``get_law`` rebuilds it from that
    name in a fresh process. A held log parameter must be positive (inf is allowed: a term
    switched off, e.g. a data-constrained law's R*_N = inf, N' = N).
    """
    base = get_law(law)
    fixed = {k: float(v) for k, v in fixed.items()}
    unknown = [k for k in fixed if k not in base.params]
    if unknown:
        raise ValueError(f"fixed parameters {unknown} are not among law {base.name!r}'s parameters {list(base.params)}")
    if not fixed:
        return base
    for k, v in fixed.items():
        if k in base.log_params and not v > 0:
            raise ValueError(f"fixed {k}={v} must be positive (law {base.name!r} fits it as a logarithm)")
        if not (np.isfinite(v) or k in base.log_params):
            raise ValueError(f"fixed {k}={v} must be finite")
    free = tuple(p for p in base.params if p not in fixed)
    if not free:
        raise ValueError(f"every parameter of law {base.name!r} is fixed: nothing to fit")
    name = (base.name + "[" + ",".join(f"{k}={fixed[k]:.8g}" for k in base.params if k in fixed) + "]").lower()
    if name in _REGISTRY:
        return _REGISTRY[name]
    fit_name = dict(zip(base.params, base.fit_names))
    held = {fit_name[k]: (float(np.log(min(v, 1e300))) if k in base.log_params else v) for k, v in fixed.items()}

    def log_loss(q, x):
        return base.log_loss({**held, **q}, x)

    return register_law(
        Law(
            name=name,
            params=free,
            log_params=tuple(p for p in free if p in base.log_params),
            inputs=base.inputs,
            log_loss=log_loss,
            grid={fit_name[p]: base.grid[fit_name[p]] for p in free},
            description=f"{base.name} with {fixed} held",
            signed=tuple(p for p in base.signed if p in free),
        )
    )


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
        signed=("gamma",),
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


# log-linear in the parameters (any start converges); the coefficient's grid spans what
# batches in sequences or tokens, lrs of 1e-5..1 and N, D of 1e5..1e13 need
_LOG_COEF = [-30.0, -15.0, 0.0, 15.0, 30.0]


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
        grid={"log_a": _LOG_COEF, "alpha": [-1.0, 0.0], "beta": [0.0, 0.5]},
        description="optimal learning rate eta*(N, D) = a * N^alpha * D^beta (Li et al. 2025, Step Law)",
        signed=("alpha", "beta"),
    )
)
register_law(
    Law(
        name="batch_d",
        params=("c", "gamma"),
        log_params=("c",),
        inputs=("tokens",),
        log_loss=_batch_d_log,
        grid={"log_c": _LOG_COEF, "gamma": [0.0, 0.5, 1.0]},
        description="optimal batch size B*(D) = c * D^gamma (Li et al. 2025, Step Law)",
        signed=("gamma",),
    )
)
register_law(
    Law(
        name="batch_nd",
        params=("c", "alpha", "gamma"),
        log_params=("c",),
        inputs=("params", "tokens"),
        log_loss=_batch_nd_log,
        grid={"log_c": _LOG_COEF, "alpha": [-0.5, 0.0, 0.5], "gamma": [0.0, 0.5, 1.0]},
        description="optimal batch size B*(N, D) = c * N^alpha * D^gamma",
        signed=("alpha", "gamma"),
    )
)


# ---------------------------------------------------------------------------------------
# Data-constrained law (Muennighoff et al. 2023; scaling.analysis.data_constrained has the
# effective-data helpers and the staged fit). With U unique tokens seen for D tokens in all:
#   D' = U + U·R*_D·(1 - exp(-R_D/R*_D)),  R_D = max(D/U - 1, 0)
#   U_N = min(N, N_opt(U)), R_N = N/U_N - 1, N' = U_N + U_N·R*_N·(1 - exp(-R_N/R*_N))
#   L = E + A/N'^alpha + B/D'^beta
# N_opt(U) = G·(U·G)^(beta/alpha), G = (alpha·A/(beta·B))^(1/(alpha+beta)): the
# Chinchilla-optimal size for U tokens.


def _data_constrained_log_loss(q, x):
    import jax.numpy as jnp

    alpha, beta = q["alpha"], q["beta"]
    rd, rn = jnp.exp(q["log_RD_star"]), jnp.exp(q["log_RN_star"])
    lnN, lnD, lnU = x["params"], x["tokens"], x["unique_tokens"]
    RD = jnp.maximum(jnp.exp(lnD - lnU) - 1.0, 0.0)
    lnDp = lnU + jnp.log1p(-rd * jnp.expm1(-RD / rd))
    lnG = (jnp.log(alpha) + q["log_A"] - jnp.log(beta) - q["log_B"]) / (alpha + beta)
    lnUN = jnp.minimum(lnN, lnG + (beta / alpha) * (lnU + lnG))
    RN = jnp.exp(lnN - lnUN) - 1.0
    lnNp = lnUN + jnp.log1p(-rn * jnp.expm1(-RN / rn))
    return _lse(q["log_E"], q["log_A"] - alpha * lnNp, q["log_B"] - beta * lnDp)


register_law(
    Law(
        name="data_constrained",
        params=("E", "A", "B", "alpha", "beta", "RD_star", "RN_star"),
        log_params=("E", "A", "B", "RD_star", "RN_star"),
        inputs=("params", "tokens", "unique_tokens"),
        log_loss=_data_constrained_log_loss,
        grid={
            "log_E": [0.0, 0.5, 1.0],
            "log_A": [4.0, 6.0, 8.0],
            "log_B": [4.0, 7.0, 10.0],
            "alpha": [0.2, 0.35, 0.5],
            "beta": [0.2, 0.35, 0.5],
            "log_RD_star": np.log([3.0, 10.0, 30.0, 100.0]).tolist(),
            "log_RN_star": np.log([2.0, 5.0, 20.0]).tolist(),
        },
        description="L = E + A/N'^alpha + B/D'^beta with repeated-data D' and excess-parameter N' "
        "(Muennighoff et al. 2023)",
    )
)
