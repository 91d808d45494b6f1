"""Approach 3 of Hoffmann et al. (2022): the compute-optimal allocation from a fitted law.

Minimising L(N, D) = E + A/N^alpha + B/D^beta subject to C = k·N·D gives
    G = (alpha·A / (beta·B))^(1/(alpha+beta)),
    N_opt = G·(C/k)^a,  D_opt = G^-1·(C/k)^b,  a = beta/(alpha+beta), b = alpha/(alpha+beta).
k is the FLOP convention (FLOPs per parameter per token; default the fit's, usually 6).
With a bootstrap (a BootstrapResult, or a FitResult carrying one) every resample's own
optimum gives percentile intervals.

``compute_optimal(fit, flops)`` and ``allocation_exponents(fit)`` are what the
side-by-side comparison of Approaches 1-3 calls.
"""

from __future__ import annotations

import numpy as np

from .laws import get_law, paired_log_loss
from .predictive import calibration_for, check_interval, interval_level, predictive_bounds
from .results import BootstrapResult, FitResult, fit_and_bootstrap

__all__ = ["allocation", "allocation_exponents", "compute_optimal", "family_optimum"]


def allocation(law, natural: np.ndarray, k: float):
    """(G, a, b) arrays for natural parameter vectors (..., P) of a law with an optimum."""
    law = get_law(law)
    if law.optimum is None:
        raise ValueError(
            f"law {law.name!r} has no closed-form compute-optimal allocation; "
            "Approach 3 needs a law of (params, tokens) such as 'chinchilla'"
        )
    natural = np.asarray(natural, dtype=float)
    p = {name: natural[..., i] for i, name in enumerate(law.params)}
    with np.errstate(all="ignore"):
        return law.optimum(p, float(k))


def allocation_exponents(fit: FitResult | BootstrapResult, level: float | None = None):
    """(a, b) with N_opt ∝ C^a and D_opt ∝ C^b. With level (and a bootstrap attached),
    returns ((a, a_lo, a_hi), (b, b_lo, b_hi))."""
    fit, boot = fit_and_bootstrap(fit)
    law = get_law(fit.law)
    natural = np.array([fit.params[p] for p in law.params])
    _, a, b = allocation(law, natural, fit.k)
    if level is None:
        return float(a), float(b)
    if boot is None:
        raise ValueError("intervals need a bootstrap: run bootstrap(...) and pass its result (or its .fit)")
    _, ad, bd = allocation(law, boot.draws, fit.k)
    (alo, blo), (ahi, bhi) = boot.interval(np.stack([ad, bd], axis=1), level)
    return (float(a), float(alo), float(ahi)), (float(b), float(blo), float(bhi))


def compute_optimal(
    fit: FitResult | BootstrapResult,
    flops,
    k: float | None = None,
    level: float | None = None,
    interval: str = "predictive",
) -> dict:
    """Compute-optimal N, D, tokens per parameter and loss at budgets C = flops.

    fit: a FitResult (with .bootstrap for intervals) or a BootstrapResult.
    k: FLOPs per parameter per token (default: the fit's k, from the data's convention).
    interval: for the loss, "predictive" (default: where a new run at the optimum will
    land: the bootstrap band of each resample's own optimal loss widened by the fit's
    calibrated noise and misspecification, ``predictive.py``) or "law" (the bootstrap
    band alone). N, D and the exponents always carry bootstrap intervals.
    Returns a dict (arrays shaped like flops; floats for a scalar): flops, params,
    tokens, tokens_per_param, loss, a, b, G, and when bootstrapped the percentile
    intervals params_lo/_hi, tokens_lo/_hi, tokens_per_param_lo/_hi, loss_lo/_hi,
    a_lo/_hi, b_lo/_hi. ``pd.DataFrame(result)`` makes a table of it.
    """
    check_interval(interval)
    fit, boot = fit_and_bootstrap(fit)
    law = get_law(fit.law)
    cal = calibration_for(fit, boot, interval)
    k = fit.k if k is None else float(k)
    C = np.asarray(flops, dtype=float)
    if np.any(~(C > 0)):
        raise ValueError("flops must be positive")
    natural = np.array([fit.params[p] for p in law.params])
    G, a, b = allocation(law, natural, k)
    n_opt = G * (C / k) ** a
    d_opt = (C / k) ** b / G
    out = {
        "flops": C,
        "params": n_opt,
        "tokens": d_opt,
        "tokens_per_param": d_opt / n_opt,
        "loss": law.predict(natural, params=n_opt, tokens=d_opt),
        "a": float(a),
        "b": float(b),
        "G": float(G),
    }
    if boot is not None:
        Gd, ad, bd = allocation(law, boot.draws, k)
        c = (C / k)[None, ...]
        shape = (-1,) + (1,) * C.ndim
        with np.errstate(all="ignore"):
            nd = Gd.reshape(shape) * c ** ad.reshape(shape)
            dd = c ** bd.reshape(shape) / Gd.reshape(shape)
        # a resample whose A or B vanished has no finite optimum: it drops out of the intervals
        bad = ~(np.isfinite(nd) & np.isfinite(dd) & (nd > 0) & (dd > 0))
        nd, dd = np.where(bad, np.nan, nd), np.where(bad, np.nan, dd)
        ld = _loss_draws(law, boot.draws, nd, dd)
        for name, draws in (("params", nd), ("tokens", dd), ("tokens_per_param", dd / nd), ("loss", ld)):
            lo, hi = boot.interval(draws, level)
            out[f"{name}_lo"], out[f"{name}_hi"] = lo, hi
        (alo, blo), (ahi, bhi) = boot.interval(np.stack([ad, bd], axis=1), level)
        out.update(a_lo=float(alo), a_hi=float(ahi), b_lo=float(blo), b_hi=float(bhi))
    if cal is not None:
        inputs = {"params": np.asarray(n_opt, dtype=float), "tokens": np.asarray(d_opt, dtype=float)}
        out["loss_lo"], out["loss_hi"] = predictive_bounds(
            boot, cal, inputs, np.asarray(out["loss"], dtype=float), interval_level(level, boot),
            draws=ld if boot is not None else None,
        )  # fmt: skip
    if C.ndim == 0:
        out = {key: float(v) for key, v in out.items()}
    return out


def family_optimum(fit: FitResult, sizes, flops: float) -> dict | None:
    """The member of a model family that minimises the fitted law at budget ``flops``,
    each member trained for D = flops / its own FLOPs per token (so any FLOP count, even
    one that is not k·N·D, is respected). Approach 3 restricted to sizes one can build.

    sizes: members with ``.params`` (N, as the law counts it) and ``.flops_per_token``
    (e.g. ``scaling.sweep.plan.family_sizes``); ``.width``/``.depth`` are reported when
    present. Returns {"N", "D", "width", "depth", "loss"} or None when no member has a
    finite predicted loss.
    """
    law = get_law(fit.law)
    best = None
    for size in sizes:
        d = flops / size.flops_per_token
        loss = float(law.predict(fit.params, params=size.params, tokens=d))
        if np.isfinite(loss) and (best is None or loss < best["loss"]):
            best = {
                "N": size.params,
                "D": d,
                "width": getattr(size, "width", None),
                "depth": getattr(size, "depth", None),
                "loss": loss,
            }
    return best


def _loss_draws(law, draws, nd, dd) -> np.ndarray:
    """Each resample's law at its own optimum: (R, ...)."""
    import jax

    R = len(draws)
    ok = (
        np.all(np.isfinite(draws), axis=1)
        & np.all(np.isfinite(nd.reshape(R, -1)), axis=1)
        & np.all(np.isfinite(dd.reshape(R, -1)), axis=1)
    )
    theta = np.nan_to_num(law.to_fit(np.where(ok[:, None], draws, 1.0), strict=False), nan=0.0)
    cols = {"params": nd.reshape(R, -1), "tokens": dd.reshape(R, -1)}
    with np.errstate(all="ignore"):
        logx = np.stack([np.log(np.where(ok[:, None], cols[i], 1.0)) for i in law.inputs], axis=-1)  # (R, m, k)
    with jax.enable_x64(True):
        out = np.exp(np.asarray(paired_log_loss(law)(theta, logx)))
    out[~ok] = np.nan
    return out.reshape(nd.shape)
