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

The law is built into the registry (``laws.py``) as ``data_constrained`` (inputs params,
tokens, unique_tokens); this module adds the effective-data helpers and the staged fit.
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

from .laws import Law, held_law

__all__ = [
    "PARAMS",
    "PUBLISHED_C4",
    "data_constrained_law",
    "effective_tokens",
    "fit_data_constrained",
    "with_unique_tokens",
]

PARAMS = ("E", "A", "B", "alpha", "beta", "RD_star", "RN_star")
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


def data_constrained_law(fixed: Mapping[str, float] | None = None) -> Law:
    """The data-constrained law with the parameters in ``fixed`` (natural values) held.

    ``fixed=None`` is the registered 7-parameter ``data_constrained``. Otherwise the law
    ``data_constrained[name=value,...]`` (``laws.held_law``: lower case, registered once, and
    rebuilt from that name by ``get_law``, so its FitResult JSON reloads in any process).
    Use RN_star = inf to switch excess parameters off (N' = N).
    """
    fixed = dict(fixed or {})
    unknown = [k for k in fixed if k not in PARAMS]
    if unknown:
        raise ValueError(f"fixed parameters {unknown} are not among the data-constrained law's {list(PARAMS)}")
    return held_law("data_constrained", fixed)


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
