"""Variable projection for laws linear in some non-negative coefficients.

For Chinchilla, L = E·1 + A·N^-alpha + B·D^-beta is linear in (E, A, B) once the
exponents are fixed. So only the exponents are searched: over a dense exponent grid,
each point's coefficients come from non-negative least squares, and the exponent points
are ranked by the exact objective. The best few become starting points that
``fit_law(method="varpro")`` polishes by L-BFGS on the exact objective.

The inner problem is solved on relative residuals (L̂ - L)/L, the first-order
expansion of the log residual log(L̂/L), made robust by iteratively reweighted least
squares (IRLS) with Huber weights min(1, delta/|r|) from the exact log residuals.
Non-negativity is exact: with K <= 4 coefficients every support (2^K - 1 subsets) is
solved and the best feasible one kept, which is the NNLS solution.
"""

from __future__ import annotations

import itertools
from functools import cache

import numpy as np

from .engine import Points, lane_weights, shared_arrays
from .laws import Law

__all__ = ["varpro_starts"]

_MAX_GRID = 2500  # exponent points searched
_IRLS = 4  # reweighting passes


@cache
def _solver(law: Law, delta: float):
    import jax
    import jax.numpy as jnp

    K = len(law.linear)
    nl = [fn for fn, p in zip(law.fit_names, law.params) if p not in law.linear]
    supports = np.array([m for m in itertools.product([0, 1], repeat=K) if any(m)], dtype=bool)  # (S, K)
    lin_idx = [law.params.index(p) for p in law.linear]
    nl_idx = [law.fit_names.index(n) for n in nl]

    def solve_one(q_nl, logx, logy, w):
        q = {n: q_nl[i] for i, n in enumerate(nl)}
        x = {n: logx[:, i] for i, n in enumerate(law.inputs)}
        # linear coefficients enter as exp(log_c); basis terms do not depend on them
        for p in law.linear:
            q[f"log_{p}"] = jnp.zeros(())
        Phi = jnp.stack([jnp.broadcast_to(t, logy.shape) for t in law.basis(q, x)], axis=0)  # (K, n)
        Lobs = jnp.exp(logy)
        A = (Phi / Lobs).T  # (n, K): relative residual = A c - 1

        def nnls(u):
            M = (A * u[:, None]).T @ A  # (K, K)
            v = (A * u[:, None]).T @ jnp.ones_like(u)

            def on_support(m):
                mm = m[:, None] & m[None, :]
                Ms = jnp.where(mm, M, jnp.eye(K))
                vs = jnp.where(m, v, 0.0)
                c = jnp.linalg.solve(Ms, vs)
                r = A @ c - 1.0
                sse = jnp.sum(u * r * r)
                ok = jnp.all(c >= 0) & jnp.all(jnp.isfinite(c))
                return c, jnp.where(ok, sse, jnp.inf)

            cs, sses = jax.vmap(on_support)(jnp.asarray(supports))
            return cs[jnp.argmin(sses)]

        def irls(c, _):
            pred = Phi.T @ c
            r = jnp.log(jnp.maximum(pred, 1e-300)) - logy
            u = w * jnp.minimum(1.0, delta / jnp.maximum(jnp.abs(r), 1e-300))
            return nnls(u), None

        c = nnls(w)
        c, _ = jax.lax.scan(irls, c, None, length=_IRLS)
        pred = Phi.T @ c
        r = jnp.log(jnp.maximum(pred, 1e-300)) - logy
        a = jnp.abs(r)
        obj = jnp.dot(jnp.where(a <= delta, 0.5 * r * r, delta * (a - 0.5 * delta)), w)
        return c, jnp.where(jnp.isfinite(obj), obj, jnp.inf)

    batched = jax.jit(jax.vmap(solve_one, in_axes=(0, None, None, None)))
    return batched, nl, nl_idx, lin_idx


def varpro_starts(law: Law, pts: Points, w, *, delta: float, grid=None, n_polish: int = 16) -> np.ndarray:
    """Best exponent points with their NNLS coefficients, as (n_polish, P) fit-coordinate starts."""
    if not law.linear or law.basis is None:
        raise ValueError(f"law {law.name!r} declares no linear coefficients: method='varpro' needs them")
    not_log = [p for p in law.linear if p not in law.log_params]
    if not_log:
        raise ValueError(f"varpro needs the linear coefficients to be positive (log) parameters; {not_log} are not")
    solve, nl, nl_idx, lin_idx = _solver(law, float(delta))
    g = law.grid if grid is None or not hasattr(grid, "keys") else grid
    per_axis = max(2, int(_MAX_GRID ** (1.0 / max(len(nl), 1))))
    axes = []
    for n in nl:
        v = np.asarray(g[n], dtype=float)
        lo, hi = float(v.min()), float(v.max())
        axes.append(np.linspace(lo, hi, per_axis) if hi > lo else np.array([lo]))
    Q = np.array(list(itertools.product(*axes)), dtype=float).reshape(-1, len(nl))
    sh = shared_arrays(pts)  # padded with zero-weight points
    c, obj = solve(Q, sh["logx"], sh["logy"], lane_weights(pts, w)[0])
    c, obj = np.asarray(c), np.asarray(obj)
    order = np.argsort(obj, kind="stable")[:n_polish]
    order = order[np.isfinite(obj[order])]
    if len(order) == 0:
        raise ValueError(f"varpro found no exponent point with a finite objective for law {law.name!r}")
    starts = np.zeros((len(order), law.n_params))
    starts[:, nl_idx] = Q[order]
    floor = 1e-12 * np.maximum(c[order].max(axis=1, keepdims=True), 1e-300)
    starts[:, lin_idx] = np.log(np.maximum(c[order], floor))
    return starts
