"""The data-constrained scaling law of Muennighoff et al. 2023 (arXiv:2305.16264).

With U unique tokens seen for D tokens in all (R_D = D/U - 1 repeated epochs), repeated
tokens are worth less than fresh ones, and parameters beyond those that U tokens can use
compute-optimally are worth less than the first ones:

    D' = U + U·R*_D·(1 - exp(-R_D/R*_D))
    U_N = min(N, N_opt(U)),  R_N = N/U_N - 1,  N' = U_N + U_N·R*_N·(1 - exp(-R_N/R*_N))
    L  = E + A/N'^alpha + B/D'^beta

N_opt(U) is the Chinchilla-optimal size for U tokens, G·(U·G)^(beta/alpha) with
G = (alpha·A/(beta·B))^(1/(alpha+beta)). R*_D is the number of repetitions after which a
repeated token has lost 1 - 1/e of its value; the published C4 fit gives R*_D = 15.4,
R*_N = 5.3 (``PUBLISHED_C4``, from the datablations README).

The law is registered as ``data_constrained`` (inputs params, tokens, unique_tokens).
Muennighoff et al. fit its Chinchilla part on single-epoch runs first and then R*_D and
R*_N on repeated runs with that part held fixed: ``data_constrained_law(fixed={...})``
builds (and registers) the law with some parameters held at given values, so
``fit_law`` / ``bootstrap`` fit only the others. ``with_unique_tokens`` checks a table's
unique-token counts (or derives them from an ``epochs`` column).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from .laws import Law, get_law, list_laws, register_law

__all__ = [
    "PARAMS",
    "PUBLISHED_C4",
    "data_constrained_law",
    "effective_tokens",
    "fit_data_constrained",
    "with_unique_tokens",
]

PARAMS = ("E", "A", "B", "alpha", "beta", "RD_star", "RN_star")
_LOG = ("E", "A", "B", "RD_star", "RN_star")
# datablations README (huggingface/datablations): a, b, e = log A, log B, log E.
PUBLISHED_C4 = {
    "E": float(np.exp(0.6254804)),
    "A": float(np.exp(6.255414)),
    "B": float(np.exp(7.3049974)),
    "alpha": 0.3526596,
    "beta": 0.3526596,
    "RD_star": 15.387756,
    "RN_star": 5.309743,
}
_GRID = {
    "log_E": [0.0, 0.5, 1.0],
    "log_A": [4.0, 6.0, 8.0],
    "log_B": [4.0, 7.0, 10.0],
    "alpha": [0.2, 0.35, 0.5],
    "beta": [0.2, 0.35, 0.5],
    "log_RD_star": np.log([3.0, 10.0, 30.0, 100.0]).tolist(),
    "log_RN_star": np.log([2.0, 5.0, 20.0]).tolist(),
}


def _fit_name(p: str) -> str:
    return f"log_{p}" if p in _LOG else p


def _log_loss(q, x):
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
    terms = (q["log_E"], q["log_A"] - alpha * lnNp, q["log_B"] - beta * lnDp)
    return jnp.log(sum(jnp.exp(t) for t in terms))


def data_constrained_law(fixed: Mapping[str, float] | None = None) -> Law:
    """The data-constrained law with the parameters in ``fixed`` (natural values) held.

    ``fixed=None`` is the registered 7-parameter ``data_constrained``. Otherwise a law named
    ``data_constrained[name=value,...]`` (lower case) with the remaining parameters is registered (once)
    and returned; its FitResult JSON reloads after the same call.
    Use RN_star = inf to switch excess parameters off (N' = N).
    """
    fixed = {k: float(v) for k, v in (fixed or {}).items()}
    unknown = [k for k in fixed if k not in PARAMS]
    if unknown:
        raise ValueError(f"fixed parameters {unknown} are not among the data-constrained law's {list(PARAMS)}")
    if not fixed:
        return get_law("data_constrained")
    for k, v in fixed.items():
        if k in _LOG and not v > 0:
            raise ValueError(f"fixed {k}={v} must be positive")
    # lower case: the registry's keys are (get_law lower-cases what it is asked for)
    name = ("data_constrained[" + ",".join(f"{k}={fixed[k]:.8g}" for k in PARAMS if k in fixed) + "]").lower()
    if name in list_laws():
        return get_law(name)
    held = {_fit_name(k): (np.log(min(v, 1e300)) if k in _LOG else v) for k, v in fixed.items()}
    free = tuple(p for p in PARAMS if p not in fixed)
    if not free:
        raise ValueError("every parameter is fixed: nothing to fit")

    def log_loss(q, x):
        return _log_loss({**held, **q}, x)

    return register_law(
        Law(
            name=name,
            params=free,
            log_params=tuple(p for p in free if p in _LOG),
            inputs=("params", "tokens", "unique_tokens"),
            log_loss=log_loss,
            grid={_fit_name(p): _GRID[_fit_name(p)] for p in free},
            description=f"data-constrained law (Muennighoff et al. 2023) with {fixed} held",
        )
    )


register_law(
    Law(
        name="data_constrained",
        params=PARAMS,
        log_params=_LOG,
        inputs=("params", "tokens", "unique_tokens"),
        log_loss=_log_loss,
        grid=_GRID,
        description="L = E + A/N'^alpha + B/D'^beta with repeated-data D' and excess-parameter N' "
        "(Muennighoff et al. 2023)",
    )
)


def effective_tokens(tokens, unique_tokens, RD_star: float = PUBLISHED_C4["RD_star"]) -> np.ndarray:
    """D' = U + U·R*_D·(1 - exp(-R_D/R*_D)), R_D = max(D/U - 1, 0): what D tokens drawn
    from U unique ones are worth in fresh tokens."""
    D, U = np.asarray(tokens, dtype=float), np.asarray(unique_tokens, dtype=float)
    if np.any(~(U > 0)) or np.any(~(D > 0)):
        raise ValueError("tokens and unique_tokens must be positive")
    RD = np.maximum(D / U - 1.0, 0.0)
    return U + U * RD_star * (-np.expm1(-RD / RD_star))


def with_unique_tokens(data) -> pd.DataFrame:
    """The canonical table with a checked ``unique_tokens`` column (from ``unique_tokens``,
    or from ``epochs`` as tokens/epochs). A table with neither is an error: without unique
    token counts repeated and fresh data cannot be told apart."""
    from .table import load_table

    df = load_table(data)
    if "unique_tokens" not in df.columns:
        if "epochs" not in df.columns:
            raise ValueError(
                "the data-constrained law needs unique-token counts: give a 'unique_tokens' column "
                f"(distinct tokens each run saw) or an 'epochs' column; the table has {list(df.columns)}"
            )
        ep = pd.to_numeric(df["epochs"], errors="coerce").to_numpy(float)
        if np.any(~(ep > 0)):
            i = int(np.nonzero(~(ep > 0))[0][0])
            raise ValueError(f"column 'epochs' must be positive; row {i} is {df['epochs'].iloc[i]!r}")
        df["unique_tokens"] = df["tokens"] / ep
    u = pd.to_numeric(df["unique_tokens"], errors="coerce").to_numpy(float)
    bad = ~(np.isfinite(u) & (u > 0))
    if bad.any():
        i = int(np.nonzero(bad)[0][0])
        raise ValueError(
            f"column 'unique_tokens' must be finite and positive; row {i} is {df['unique_tokens'].iloc[i]!r}"
        )
    over = u > df["tokens"].to_numpy(float) * (1 + 1e-6)
    if over.any():
        i = int(np.nonzero(over)[0][0])
        raise ValueError(f"row {i}: unique_tokens {u[i]:.4g} exceeds tokens {df['tokens'].iloc[i]:.4g}")
    df["unique_tokens"] = u
    df["epochs"] = df["tokens"] / u
    return df


def fit_data_constrained(data, *, fixed: Mapping[str, float] | None = None, n_boot: int = 0, seed: int = 0,
                         level: float = 0.95, **fit_kw):  # fmt: skip
    """Fit the data-constrained law (parameters in ``fixed`` held) to a table with unique
    tokens; with n_boot, bootstrap it (``.intervals``, ``.bootstrap`` on the returned FitResult)."""
    from .fit import fit_law
    from .uncertainty import bootstrap

    table = with_unique_tokens(data)
    law = data_constrained_law(fixed)
    fit = fit_law(table, law, **fit_kw)
    if n_boot:
        boot = bootstrap(table, fit=fit, n_boot=n_boot, seed=seed, level=level)
        assert boot.fit is not None  # bootstrap attaches the full-data fit
        fit = boot.fit
    return fit
