"""Synthetic runs from a known Chinchilla law, L(N, D) = E + A/N^alpha + B/D^beta, for
checking that the compute-optimal approaches recover what they should:
a = beta/(alpha+beta) for N_opt ∝ C^a and b = alpha/(alpha+beta) for D_opt ∝ C^b
(with C = 6·N·D)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .laws import get_law

__all__ = ["TEST_LAW", "chinchilla_loss", "chinchilla_optimum", "isoflop_runs", "training_curves"]

# The law the tests use (close to Hoffmann et al.'s published fit).
TEST_LAW = dict(E=1.7, A=400.0, B=2000.0, alpha=0.34, beta=0.37)


def chinchilla_loss(N, D, *, E, A, B, alpha, beta):
    return E + A * np.asarray(N, dtype=float) ** -alpha + B * np.asarray(D, dtype=float) ** -beta


def chinchilla_optimum(C, *, E, A, B, alpha, beta, k: float = 6.0):
    """Closed-form (N_opt, D_opt) minimising the law at C = k·N·D (the law registry's
    own optimum, so tests compare against the same formula Approach 3 uses)."""
    optimum = get_law("chinchilla").optimum
    assert optimum is not None  # the built-in chinchilla law has its closed form
    G, a, b = optimum(dict(E=E, A=A, B=B, alpha=alpha, beta=beta), k)
    c = np.asarray(C, dtype=float) / k
    return G * c**a, c**b / G


def _noisy(loss, noise: float, rng) -> np.ndarray:
    return loss * np.exp(noise * rng.standard_normal(np.shape(loss))) if noise > 0 else loss


def isoflop_runs(
    budgets,
    *,
    sizes: int = 9,
    span: float = 1.0,
    noise: float = 0.0,
    seed: int = 0,
    law: dict = TEST_LAW,
) -> pd.DataFrame:
    """Final losses of runs on IsoFLOP budgets: at each C, ``sizes`` sizes log-spaced over
    ±``span`` decades around the law's N_opt(C); D = C/(6N). Multiplicative log-normal
    noise of relative size ``noise``. Columns: budget, params, tokens, flops, loss."""
    rng = np.random.default_rng(seed)
    rows = []
    for C in np.atleast_1d(np.asarray(budgets, dtype=float)):
        n_opt, _ = chinchilla_optimum(C, **law)
        N = n_opt * np.logspace(-span, span, sizes)
        D = C / (6 * N)
        L = _noisy(chinchilla_loss(N, D, **law), noise, rng)
        rows.append(pd.DataFrame(dict(budget=C, params=N, tokens=D, flops=6 * N * D, loss=L)))
    return pd.DataFrame(pd.concat(rows, ignore_index=True))


def training_curves(
    sizes,
    *,
    tokens_per_param: tuple[float, float] = (0.5, 500.0),
    evals: int = 40,
    noise: float = 0.0,
    seed: int = 0,
    law: dict = TEST_LAW,
) -> pd.DataFrame:
    """Loss curves: each size N evaluated at ``evals`` log-spaced token counts from
    tokens_per_param[0]·N to tokens_per_param[1]·N, loss = the law at (N, D) (each point
    as if from a run tuned for that length). Columns: run_id, params, tokens, flops,
    step, loss."""
    rng = np.random.default_rng(seed)
    rows = []
    for i, N in enumerate(np.atleast_1d(np.asarray(sizes, dtype=float))):
        D = N * np.geomspace(*tokens_per_param, evals)
        L = _noisy(chinchilla_loss(N, D, **law), noise, rng)
        rows.append(
            pd.DataFrame(
                dict(run_id=f"n{i:03d}", params=N, tokens=D, flops=6 * N * D, step=np.arange(1, evals + 1), loss=L)
            )
        )
    return pd.DataFrame(pd.concat(rows, ignore_index=True))
