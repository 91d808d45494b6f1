"""Active sweep design: which runs to train next, and the bias an IsoFLOP grid would carry.

``propose_runs(fit, done, candidates, target_flops, k_next)`` picks, greedily, the candidate
runs that most shrink the predictive interval of the loss at the compute-optimal point of
``target_flops`` (or of N_opt there) per FLOP spent.

Criterion: Fisher / Jacobian (c-optimal design on the linearised law). With J the
Jacobian of each point's log prediction in fit coordinates and sigma the residual scale of
the fit, the parameter covariance is Sigma = (J'J / sigma^2)^-1, the target's variance is
g' Sigma g (g its gradient; for the loss at the optimum g is the Jacobian at (N_opt, D_opt),
by the envelope theorem), and adding a run j lowers it in closed form (Sherman-Morrison):
    var' = var - (g' Sigma J_j)^2 / (sigma^2 + J_j Sigma J_j').
Why this and not refitting the bootstrap ensemble with imputed outcomes: that costs one
batched bootstrap per candidate per pick (hundreds of refits for one proposal), while the
Jacobian criterion scores every candidate in one matrix product and is exact for the
linearised law the bootstrap itself samples around. The bootstrap is used to *calibrate*:
the printed widths are the bootstrap's current percentile width times sqrt(var'/var),
so they are in the units of the interval a researcher reads (``predict_loss``).

``grid_bias(surface, runs)``: the Approach 2 exponents that an IsoFLOP grid's spacing
would report on a known (fitted or assumed) surface with no noise, against the surface's
own a = beta/(alpha+beta): an off-centre or asymmetric grid biases the parabola vertices.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache

import numpy as np
import pandas as pd

from .laws import get_law
from .results import fit_and_bootstrap

__all__ = ["DesignResult", "grid_bias", "jacobian", "propose_runs"]

RIDGE = 1e-9  # relative ridge on the information matrix (a sloppy direction stays finite)
MIN_SIGMA = 1e-4  # floor on the residual scale (log loss) for noiseless or perfect fits


def jacobian(law, theta, logx) -> np.ndarray:
    """(n, P) derivatives of log L at each point (log inputs (n, k)) in fit coordinates."""
    import jax

    law = get_law(law)
    with jax.enable_x64(True):
        return np.asarray(_jacobian_fn(law)(np.asarray(theta, dtype=float), np.asarray(logx, dtype=float)))


@cache
def _jacobian_fn(law):
    import jax

    return jax.jit(jax.vmap(jax.grad(law.log_loss_vec), in_axes=(None, 0)))


def _logx(law, table: pd.DataFrame) -> np.ndarray:
    return np.stack([np.log(table[c].to_numpy(float)) for c in law.inputs], axis=-1)


def _target_gradient(law, fit, target_flops: float, quantity: str):
    """Gradient (P,) of the target (log loss at the optimum, or log N_opt) and its value."""
    from .optimal import allocation, compute_optimal

    opt = compute_optimal(fit, target_flops)
    theta = fit.theta
    if quantity == "loss":
        x = np.log([[opt[c] for c in law.inputs]])
        return jacobian(law, theta, x)[0], float(opt["loss"]), opt
    if quantity == "params":
        k = fit.k

        def log_n(th):
            G, a, _ = allocation(law, law.to_natural(th), k)
            return np.log(G) + a * np.log(target_flops / k)

        h = 1e-6
        g = np.array([(log_n(theta + h * e) - log_n(theta - h * e)) / (2 * h) for e in np.eye(len(theta))])
        return g, float(opt["params"]), opt
    raise ValueError(f"quantity must be 'loss' or 'params'; got {quantity!r}")


@dataclass
class DesignResult:
    """The proposed runs, in order, with the expected interval after each.

    picks: one row per proposed run (its candidate columns, flops, cumulative_flops,
    expected_width, expected_lo, expected_hi, width_per_flop_gain); start: the current
    prediction and interval; criterion, quantity, target_flops, sigma.
    """

    picks: pd.DataFrame
    start: dict
    target_flops: float
    quantity: str
    sigma: float
    criterion: str = "fisher (c-optimal, linearised law), widths calibrated to the bootstrap interval"
    notes: tuple = ()
    info: dict = field(default_factory=dict, repr=False)

    def to_frame(self) -> pd.DataFrame:
        return self.picks.copy()

    def to_dict(self) -> dict:
        return {
            "target_flops": self.target_flops,
            "quantity": self.quantity,
            "criterion": self.criterion,
            "sigma": self.sigma,
            "start": self.start,
            "picks": self.picks.to_dict(orient="records"),
            "notes": list(self.notes),
        }

    def summary(self) -> str:
        s = self.start
        what = "loss" if self.quantity == "loss" else "N_opt"
        lines = [
            f"target C = {self.target_flops:.3g} FLOPs: predicted {what} {s['value']:.5g}, interval "
            f"[{s['lo']:.5g}, {s['hi']:.5g}] (width {s['width']:.4g}) from {s['n_done']} runs "
            f"({s['flops_done']:.3g} FLOPs)",
            f"criterion: {self.criterion}",
            f"{'#':>3} {'params':>10} {'tokens':>10} {'flops':>10} {'cum. flops':>10} {'exp. width':>11}  expected interval",
        ]
        for i, r in enumerate(self.picks.itertuples(), 1):
            ident = f"  {r.run_id}" if "run_id" in self.picks.columns else ""
            lines.append(
                f"{i:>3} {r.params:>10.3g} {r.tokens:>10.3g} {r.flops:>10.3g} {r.cumulative_flops:>10.3g} "
                f"{r.expected_width:>11.4g}  [{r.expected_lo:.5g}, {r.expected_hi:.5g}]{ident}"
            )
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)

    __str__ = summary


def propose_runs(
    fit,
    done,
    candidates: pd.DataFrame,
    target_flops: float,
    k_next: int,
    *,
    quantity: str = "loss",
    level: float | None = None,
    sigma: float | None = None,
) -> DesignResult:
    """The k_next candidates that most shrink the target's interval per FLOP, in order.

    fit: a FitResult (with .bootstrap for calibrated widths) or BootstrapResult of the
    runs done; done: their table (what the fit saw); candidates: a table with params,
    tokens (and flops, else k·N·D; other columns such as run_id are carried along).
    sigma: residual scale of log loss (default: 1.4826·MAD of the fit's log residuals).
    Raises ValueError when target_flops is not above the largest run done.
    """
    from .table import as_table

    fit, boot = fit_and_bootstrap(fit)
    law = get_law(fit.law)
    if not {"params", "tokens"} <= set(law.inputs):
        raise ValueError(f"propose_runs needs a law of (params, tokens) with an optimum; got {law.name!r}")
    done = as_table(done)
    target_flops = float(target_flops)
    if not target_flops > done["flops"].max():
        raise ValueError(
            f"target flops {target_flops:.4g} is not above the largest run done ({done['flops'].max():.4g} FLOPs): "
            "active design chooses runs for an extrapolation; pick a larger target"
        )
    if isinstance(k_next, bool) or not isinstance(k_next, (int, np.integer)) or k_next < 1:
        raise ValueError(f"k_next must be a positive integer; got {k_next!r}")
    cand = candidates.reset_index(drop=True).copy()
    missing = [c for c in ("params", "tokens") if c not in cand.columns]
    if missing:
        raise ValueError(f"candidates need columns params, tokens; missing {missing}")
    if "flops" not in cand.columns:
        cand["flops"] = fit.k * cand["params"] * cand["tokens"]
    if len(cand) == 0:
        raise ValueError("no candidate runs to choose from (every planned run is done)")
    theta = fit.theta
    Jd = jacobian(law, theta, _logx(law, done))
    if sigma is None:
        r = np.log(law.predict(fit.params, **{c: done[c].to_numpy(float) for c in law.inputs})) - np.log(
            done["loss"].to_numpy(float)
        )
        sigma = max(1.4826 * float(np.median(np.abs(r - np.median(r)))), MIN_SIGMA)
    info = Jd.T @ Jd / sigma**2
    info += RIDGE * np.trace(info) / len(theta) * np.eye(len(theta))
    Sigma = np.linalg.pinv(info)
    g, value, _ = _target_gradient(law, fit, target_flops, quantity)
    var0 = float(g @ Sigma @ g)
    lo, hi = _current_interval(fit, boot, target_flops, quantity, level, value, var0)
    width0 = hi - lo
    Jc = jacobian(law, theta, _logx(law, cand))
    cost = cand["flops"].to_numpy(float)
    chosen: list[int] = []
    rows: list[dict] = []
    var, cum = var0, 0.0
    for _ in range(min(k_next, len(cand))):
        u = Jc @ (Sigma @ g)  # (m,)
        s = np.einsum("mp,pq,mq->m", Jc, Sigma, Jc)
        new_var = np.maximum(var - u**2 / (sigma**2 + s), 0.0)
        gain = (np.sqrt(var) - np.sqrt(new_var)) / cost
        gain[chosen] = -np.inf
        j = int(np.argmax(gain))
        v = Sigma @ Jc[j]
        Sigma = Sigma - np.outer(v, v) / (sigma**2 + Jc[j] @ v)
        var = float(new_var[j])
        cum += cost[j]
        chosen.append(j)
        ratio = np.sqrt(var / var0) if var0 > 0 else 1.0
        w = width0 * ratio
        c_lo, c_hi = value - (value - lo) * ratio, value + (hi - value) * ratio
        rows.append({**cand.iloc[j].to_dict(), "cumulative_flops": cum, "expected_width": w,
                     "expected_lo": c_lo, "expected_hi": c_hi, "width_per_flop_gain": float(gain[j])})  # fmt: skip
    notes = []
    if boot is None:
        notes.append("no bootstrap attached: widths are the Fisher normal-approximation interval")
    start = {"value": value, "lo": float(lo), "hi": float(hi), "width": float(width0), "n_done": int(len(done)),
             "flops_done": float(done["flops"].sum()), "fisher_sd_log": float(np.sqrt(var0))}  # fmt: skip
    return DesignResult(
        picks=pd.DataFrame(rows),
        start=start,
        target_flops=target_flops,
        quantity=quantity,
        sigma=float(sigma),
        notes=tuple(notes),
        info={"chosen_index": chosen},
    )


def _current_interval(fit, boot, target_flops, quantity, level, value, var0):
    from scipy.stats import norm

    from .optimal import compute_optimal

    if boot is not None:
        opt = compute_optimal(boot, target_flops, level=level)
        key = "loss" if quantity == "loss" else "params"
        return float(opt[f"{key}_lo"]), float(opt[f"{key}_hi"])
    z = norm.ppf(0.5 + 0.5 * (0.95 if level is None else level))
    sd = np.sqrt(var0)
    return value * np.exp(-z * sd), value * np.exp(z * sd)


def grid_bias(surface, runs: pd.DataFrame, *, k: float = 6.0) -> dict:
    """Approach 2 on the surface's noiseless losses at the planned IsoFLOP runs.

    surface: a FitResult or a mapping of chinchilla parameters (E, A, B, alpha, beta).
    runs: the grid, columns params and budget (or flops); each row's D is taken as C/(k·N). Returns the surface's
    exponents (a_true, b_true), Approach 2's (a, b), their differences, and per budget the
    vertex against the true N_opt (log ratio) and where the grid sits around it.
    """
    from .isoflop import isoflop_analysis
    from .optimal import allocation

    law = get_law("chinchilla")
    p = surface.params if hasattr(surface, "params") else dict(surface)
    missing = [n for n in law.params if n not in p]
    if missing:
        raise ValueError(f"the surface needs chinchilla parameters {list(law.params)}; missing {missing}")
    natural = np.array([p[n] for n in law.params])
    t = runs.copy()
    if "budget" not in t.columns:
        t["budget"] = t["flops"]
    # the grid's sizes N at each budget, with D = C/(k·N) so that C = k·N·D exactly: only
    # the spacing of the sizes (not a FLOP convention's per-size cost) can bias
    t["tokens"] = t["budget"] / (k * t["params"])
    t["flops"] = t["budget"]
    t["loss"] = law.predict(natural, params=t["params"].to_numpy(float), tokens=t["tokens"].to_numpy(float))
    res = isoflop_analysis(t, budget="budget", n_boot=1, seed=0, keep_flagged=True)
    G, a, b = allocation(law, natural, k)
    per = []
    for prof in res.profiles:
        n_true = float(G * (prof.budget / k) ** a)
        ln = np.log(np.asarray(prof.params, dtype=float) / n_true)
        per.append({"budget": prof.budget, "n_true": n_true, "n_vertex": prof.n_opt,
                    "log_ratio": float(np.log(prof.n_opt / n_true)),
                    "grid_centre_log": float(0.5 * (ln.min() + ln.max())), "grid_span_log": float(np.ptp(ln))})  # fmt: skip
    return {"a_true": float(a), "b_true": float(b), "a": float(res.a), "b": float(res.b),
            "a_bias": float(res.a - a), "b_bias": float(res.b - b), "budgets": per}  # fmt: skip
