"""Active sweep design: which runs to train next, and the bias an IsoFLOP grid would carry.

``propose_runs(fit, done, candidates, target_flops, k_next)`` picks, greedily, the candidate
runs that most shrink the **calibrated predictive interval** of the loss at the
compute-optimal point of ``target_flops`` (the interval ``predict_loss`` reports by default,
``predictive.py``) per FLOP spent, and gives the expected interval after each pick.

The predictive half-width at the target (in log loss) has two parts,

    half = sqrt( param^2 + (q · sigma(d))^2 ),   sigma(d)^2 = sigma_0^2 + (kappa · d)^2,

the bootstrap band of the law's parameters (param) and the calibrated run noise plus
misspecification growing with the extrapolation distance d of the target from the fit
data's box (kappa, q, sigma_0 learned by the calibration's inner backtests). A new run
shrinks them differently, and the expected interval after a set S of new runs models both:

- param: scaled by sqrt(var_S / var_0), the Fisher / Jacobian (c-optimal) variance of
  the target on the linearised law. With J the Jacobian of each point's log prediction in
  fit coordinates and sigma the residual scale, Sigma = (J'J / sigma^2)^-1 and the
  target's variance is g' Sigma g (g: its gradient; for the loss at the optimum the
  Jacobian at (N_opt, D_opt), by the envelope theorem); a run j lowers it in closed form
  (Sherman-Morrison): var' = var - (g' Sigma J_j)^2 / (sigma^2 + J_j Sigma J_j').
- d: recomputed exactly from the data box grown by the new runs (a run at a larger
  budget brings the target closer; one inside the box does not), with kappa, q and
  sigma_0 held at the current calibration's values (plug-in).

Why this and not refitting the bootstrap ensemble with imputed outcomes: imputation costs
one batched bootstrap *and* one calibration (several inner refits) per candidate per pick,
hundreds of refits for one proposal, while the criterion above scores every candidate in
one matrix product; and imputed outcomes lie on the current law by construction, so a
recalibration on them would learn a *smaller* misspecification than the real runs will
show. Plug-in kappa is the honest choice; the validation (experiments/active_design.py)
judges coverage of the truth with the interval recalibrated on the runs actually chosen.

Greedy selection conditions each pick on the previous ones (rank-one update of Sigma, box
grown), so a batch of k_next runs is chosen jointly, not k times the same best run; it
stops early when no remaining candidate shrinks the interval, or, with ``max_flops``,
when none is affordable. For N_opt (``quantity="params"``) there is no calibrated
predictive model, only the bootstrap band of the law, which the Fisher ratio scales.

``method="relaxed"`` (with max_flops) plans the whole budget instead: the convex relaxation
of the c-optimal design (each candidate a weight in [0, 1] under the FLOP budget) is solved,
its runs of weight >= 1/2 are taken first, largest weight first, then greedy continues. Greedy
is myopic: on a synthetic IsoFLOP pool, planned on the true surface, it lands 6-10% above
the certified bound, the rounded relaxation 1-3% (results/active_design/fisher_bound.csv).
``design_bound`` gives that bound: the lowest Fisher sd of the target that *any* choice
within a budget could reach, certified by convexity.

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

__all__ = ["DesignResult", "choose_batch", "design_bound", "grid_bias", "jacobian", "propose_runs"]

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

    opt = compute_optimal(fit, target_flops, interval="law")
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
    expected_width, expected_lo, expected_hi, expected_distance (e-folds of extrapolation
    left), width_per_flop_gain); start: the current prediction and interval (same keys);
    interval: "predictive" (calibrated) or "law" (bootstrap band only); stopped: why the
    list is shorter than asked, or "".
    """

    picks: pd.DataFrame
    start: dict
    target_flops: float
    quantity: str
    sigma: float
    interval: str = "predictive"
    level: float = 0.95
    criterion: str = ""
    stopped: str = ""
    notes: tuple = ()
    info: dict = field(default_factory=dict, repr=False)

    def to_frame(self) -> pd.DataFrame:
        return self.picks.copy()

    def to_dict(self) -> dict:
        return {
            "target_flops": self.target_flops,
            "quantity": self.quantity,
            "interval": self.interval,
            "level": self.level,
            "criterion": self.criterion,
            "sigma": self.sigma,
            "start": self.start,
            "picks": self.picks.to_dict(orient="records"),
            "stopped": self.stopped,
            "notes": list(self.notes),
        }

    def summary(self) -> str:
        s = self.start
        what = "loss" if self.quantity == "loss" else "N_opt"
        kind = "calibrated predictive" if self.interval == "predictive" else "bootstrap (law-only)"
        lines = [
            f"target C = {self.target_flops:.3g} FLOPs: predicted {what} {s['value']:.5g}, {100 * self.level:.0f}% "
            f"{kind} interval [{s['lo']:.5g}, {s['hi']:.5g}] (width {s['width']:.4g}; {s['distance']:.2f} e-folds "
            f"beyond the data) from {s['n_done']} runs ({s['flops_done']:.3g} FLOPs)",
            f"criterion: {self.criterion}",
            f"{'#':>3} {'params':>10} {'tokens':>10} {'flops':>10} {'cum. flops':>10} {'exp. width':>11} "
            f"{'e-folds':>7}  expected interval after it",
        ]
        for i, r in enumerate(self.picks.itertuples(), 1):
            ident = f"  {r.run_id}" if "run_id" in self.picks.columns else ""
            lines.append(
                f"{i:>3} {r.params:>10.3g} {r.tokens:>10.3g} {r.flops:>10.3g} {r.cumulative_flops:>10.3g} "
                f"{r.expected_width:>11.4g} {r.expected_distance:>7.2f}  [{r.expected_lo:.5g}, {r.expected_hi:.5g}]{ident}"
            )
        if self.stopped:
            lines.append(f"stopped: {self.stopped}")
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)

    __str__ = summary


@dataclass
class _Interval:
    """The target's interval as a function of (Fisher variance ratio, data box): the
    bootstrap band's log offsets scaled by sqrt(var/var0), combined with the calibrated
    noise + misspecification at the target's distance from the box."""

    value: float
    plo: float
    phi: float
    cal: object  # Calibration or None (law-only interval)
    level: float
    target_x: np.ndarray  # the target's coordinates (levels.coordinates of its log inputs)

    def distance(self, box_lo, box_hi) -> np.ndarray:
        from .levels import extrapolation_distance

        return extrapolation_distance(self.target_x, box_lo, box_hi)

    def bounds(self, ratio, box_lo, box_hi):
        """(lo, hi, distance) arrays over the leading axis of ratio / boxes."""
        ratio = np.asarray(ratio, dtype=float)
        d = self.distance(box_lo, box_hi)  # reported either way; widens only a predictive interval
        h = 0.0 if self.cal is None else self.cal.multiplier(self.level) * self.cal.sigma(d)
        lo = self.value * np.exp(-np.sqrt((ratio * self.plo) ** 2 + h**2))
        hi = self.value * np.exp(np.sqrt((ratio * self.phi) ** 2 + h**2))
        return lo, hi, d


def propose_runs(
    fit,
    done,
    candidates: pd.DataFrame,
    target_flops: float,
    k_next: int,
    *,
    quantity: str = "loss",
    level: float | None = None,
    interval: str = "predictive",
    sigma: float | None = None,
    max_flops: float | None = None,
    method: str = "greedy",
) -> DesignResult:
    """The (up to) k_next candidates that most shrink the target's interval per FLOP, in order.

    fit: a FitResult or BootstrapResult of the runs done (``bootstrap`` attaches the
    calibration the predictive interval needs); done: their table (what the fit saw);
    candidates: a table with params, tokens (and flops, else k·N·D; other columns such
    as run_id are carried along). interval: "predictive" (default, as ``predict_loss``)
    or "law". sigma: residual scale of log loss for the Fisher information (default:
    1.4826·MAD of the fit's log residuals). max_flops: spend at most this on the picks.
    method: "greedy" (each pick the best per FLOP given the previous ones) or "relaxed"
    (needs max_flops: plan the whole budget by the convex relaxation of ``design_bound``,
    take its runs of weight >= 1/2, largest weight first, then continue greedily; 1-3%
    above the certified bound on a synthetic IsoFLOP pool where greedy is 6-10% above it,
    results/active_design/fisher_bound.csv; the bound is in ``info["bound"]``). Raises
    ValueError, before any compute, on a target not above the largest run done, k_next <
    1, an empty or malformed candidate table, a bad quantity, interval or method.
    """
    from .levels import coordinates
    from .predictive import calibration_for, check_interval, interval_level
    from .table import as_table

    if isinstance(k_next, bool) or not isinstance(k_next, (int, np.integer)) or k_next < 1:
        raise ValueError(f"k_next must be a positive integer; got {k_next!r}")
    if quantity not in ("loss", "params"):
        raise ValueError(f"quantity must be 'loss' or 'params'; got {quantity!r}")
    check_interval(interval)
    if method not in ("greedy", "relaxed"):
        raise ValueError(f"method must be 'greedy' or 'relaxed'; got {method!r}")
    if method == "relaxed" and max_flops is None:
        raise ValueError("method='relaxed' plans a FLOP budget: pass max_flops")
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
    cand = _candidates(fit, candidates)
    cost = cand["flops"].to_numpy(float)
    if max_flops is not None and not max_flops > 0:
        raise ValueError(f"max_flops must be a positive number of FLOPs; got {max_flops!r}")
    cal = None
    if quantity == "loss":
        cal = calibration_for(fit, boot, interval)
    level = interval_level(level, boot)

    theta = fit.theta
    sigma, info = _information(law, fit, done, sigma)
    Sigma = np.linalg.pinv(info)
    g, value, opt = _target_gradient(law, fit, target_flops, quantity)
    var0 = float(g @ Sigma @ g)
    target = _target_interval(fit, boot, cal, target_flops, quantity, level, value, var0, opt)
    done_x = coordinates(_logx(law, done))
    box_lo, box_hi = (np.asarray(cal.box_lo), np.asarray(cal.box_hi)) if cal is not None else (
        done_x.min(0), done_x.max(0))  # fmt: skip
    lo0, hi0, d0 = target.bounds(1.0, box_lo, box_hi)
    width = float(hi0 - lo0)
    cand_x = coordinates(_logx(law, cand))
    Jc = jacobian(law, theta, _logx(law, cand))
    chosen: list[int] = []
    rows: list[dict] = []
    var, cum, stopped = var0, 0.0, ""
    plan: list[int] = []
    bound = None
    if method == "relaxed" and max_flops is not None:  # (checked above: relaxed needs max_flops)
        bound = design_bound(fit if boot is None else boot, done, cand, target_flops, max_flops, quantity=quantity,
                             sigma=sigma)  # fmt: skip
        w = bound["weights"]
        plan = [int(i) for i in np.argsort(-w, kind="stable") if w[i] >= 0.5]
    for _ in range(min(k_next, len(cand))):
        u = Jc @ (Sigma @ g)  # (m,)
        s = np.einsum("mp,pq,mq->m", Jc, Sigma, Jc)
        new_var = np.maximum(var - u**2 / (sigma**2 + s), 0.0)
        ratio = np.sqrt(new_var / var0) if var0 > 0 else np.ones(len(cand))
        lo, hi, d = target.bounds(ratio, np.minimum(box_lo, cand_x), np.maximum(box_hi, cand_x))
        gain = (width - (hi - lo)) / cost
        gain[chosen] = -np.inf
        if max_flops is not None:
            gain[cost > max_flops - cum] = -np.inf
        planned = [i for i in plan if np.isfinite(gain[i])]  # the plan's runs still affordable
        j = planned[0] if planned else int(np.argmax(gain))
        if planned:
            plan.remove(j)
        elif not np.isfinite(gain[j]):
            stopped = f"no remaining candidate fits in max_flops={max_flops:.4g} (spent {cum:.4g})"
            break
        elif not gain[j] > 0:
            stopped = "no remaining candidate shrinks the interval"
            break
        v = Sigma @ Jc[j]
        Sigma = Sigma - np.outer(v, v) / (sigma**2 + Jc[j] @ v)
        var = float(new_var[j])
        box_lo, box_hi = np.minimum(box_lo, cand_x[j]), np.maximum(box_hi, cand_x[j])
        cum += cost[j]
        width = float(hi[j] - lo[j])
        chosen.append(j)
        rows.append({**cand.iloc[j].to_dict(), "cumulative_flops": cum, "expected_width": width,
                     "expected_lo": float(lo[j]), "expected_hi": float(hi[j]), "expected_distance": float(d[j]),
                     "fisher_ratio": float(ratio[j]), "width_per_flop_gain": float(gain[j])})  # fmt: skip
    notes = []
    if boot is None:
        notes.append("no bootstrap attached: the law's part of the interval is the Fisher normal approximation")
    if quantity == "params":
        notes.append("N_opt has no calibrated predictive model: the interval is the law's bootstrap band")
    elif cal is None:
        notes.append("law-only interval: run noise and misspecification are left out")
    elif not cal.calibrated:
        notes.append("the predictive calibration fell back (too few levels to backtest inside the data)")
    if cal is not None:
        crit = ("calibrated predictive interval: Fisher c-optimal update of the bootstrap band, extrapolation "
                f"term at the grown data box (kappa {cal.kappa:.3g}/e-fold held)")  # fmt: skip
    else:
        crit = "Fisher c-optimal update of the bootstrap band (linearised law)"
    if method == "relaxed":
        crit += f"; runs of the relaxed optimal design for {max_flops:.3g} FLOPs first"
    start = {"value": value, "lo": float(lo0), "hi": float(hi0), "width": float(hi0 - lo0), "distance": float(d0),
             "n_done": int(len(done)), "flops_done": float(done["flops"].sum()), "fisher_sd_log": float(np.sqrt(var0)),
             "kappa": None if cal is None else float(cal.kappa)}  # fmt: skip
    cols = [*cand.columns, "cumulative_flops", "expected_width", "expected_lo", "expected_hi", "expected_distance",
            "fisher_ratio", "width_per_flop_gain"]  # fmt: skip
    return DesignResult(
        picks=pd.DataFrame(rows, columns=cols),
        start=start,
        target_flops=target_flops,
        quantity=quantity,
        sigma=float(sigma),
        interval="predictive" if cal is not None else "law",
        level=float(level),
        criterion=crit,
        stopped=stopped,
        notes=tuple(notes),
        info={"chosen_index": chosen, **({} if bound is None else {"bound": bound})},
    )


def _candidates(fit, candidates) -> pd.DataFrame:
    """The candidate table, re-indexed, with flops (k·N·D where absent); a malformed one
    is an error naming the row."""
    if not isinstance(candidates, pd.DataFrame):
        raise TypeError(f"candidates must be a DataFrame of params, tokens; got {type(candidates).__name__}")
    missing = [c for c in ("params", "tokens") if c not in candidates.columns]
    if missing:
        raise ValueError(f"candidates need columns params, tokens; missing {missing}")
    if len(candidates) == 0:
        raise ValueError("no candidate runs to choose from (the pool is empty: every planned run is done)")
    cand = candidates.reset_index(drop=True).copy()
    if "flops" not in cand.columns:
        cand["flops"] = fit.k * cand["params"] * cand["tokens"]
    cost = cand["flops"].to_numpy(float)
    bad = ~((cand["params"].to_numpy(float) > 0) & (cand["tokens"].to_numpy(float) > 0) & (cost > 0))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"candidate row {i} has a non-positive params, tokens or flops: {cand.iloc[i].to_dict()}")
    return cand


def _information(law, fit, done: pd.DataFrame, sigma: float | None):
    """(sigma, Fisher information of the runs in ``done``): J'J / sigma^2 on the
    linearised law at the fit, with a relative ridge; sigma defaults to 1.4826·MAD of
    the fit's log residuals there (floored at MIN_SIGMA)."""
    Jd = jacobian(law, fit.theta, _logx(law, done))
    if sigma is None:
        r = np.log(law.predict(fit.params, **{c: done[c].to_numpy(float) for c in law.inputs})) - np.log(
            done["loss"].to_numpy(float)
        )
        sigma = max(1.4826 * float(np.median(np.abs(r - np.median(r)))), MIN_SIGMA)
    info = Jd.T @ Jd / sigma**2
    info += RIDGE * np.trace(info) / len(fit.theta) * np.eye(len(fit.theta))
    return float(sigma), info


def design_bound(
    fit,
    done,
    candidates: pd.DataFrame,
    target_flops: float,
    max_flops: float,
    *,
    quantity: str = "loss",
    sigma: float | None = None,
) -> dict:
    """How narrow the law's band at the target could get for ``max_flops`` more FLOPs,
    for *any* choice among the candidates (each at most once): a certified lower bound.

    Why: before trusting an adaptive design's savings, know what the best possible design
    would save. The exact problem (which subset) is combinatorial; its convex relaxation
    (each candidate a weight in [0, 1], cost·w <= max_flops, minimise the target's Fisher
    variance g' (I_done + sum_i w_i J_i'J_i / sigma^2)^-1 g) is solved by SLSQP, and the
    bound is certified by convexity: the variance at the relaxed solution plus the
    minimum of its linearisation over the feasible set (a fractional knapsack), a lower
    bound even if the solver stopped early. Every real design's variance is >= it.
    Returns sd_done (the runs done), sd_all (every candidate added), sd_bound (the
    certified lower bound at max_flops), sd_relaxed (the relaxed design's sd), weights
    (the relaxed design per candidate row) and the FLOPs it spends. The sd are of the
    log target on the linearised law (what ``propose_runs``'s Fisher update scales)."""
    from scipy.optimize import Bounds, LinearConstraint, minimize

    from .table import as_table

    if quantity not in ("loss", "params"):
        raise ValueError(f"quantity must be 'loss' or 'params'; got {quantity!r}")
    if not max_flops > 0:
        raise ValueError(f"max_flops must be a positive number of FLOPs; got {max_flops!r}")
    fit, _ = fit_and_bootstrap(fit)
    law = get_law(fit.law)
    done = as_table(done)
    cand = _candidates(fit, candidates)
    cost = cand["flops"].to_numpy(float)
    sigma, info0 = _information(law, fit, done, sigma)
    g, _, _ = _target_gradient(law, fit, target_flops, quantity)
    Jc = jacobian(law, fit.theta, _logx(law, cand)) / sigma

    def var(w):
        u = np.linalg.solve(info0 + (Jc * w[:, None]).T @ Jc, g)
        return float(g @ u), -((Jc @ u) ** 2)  # the variance and its gradient in w

    cap = float(max_flops)
    w0 = np.clip(np.full(len(cand), cap / max(cost.sum(), 1e-300)), 0.0, 1.0)
    res = minimize(var, w0, jac=True, method="SLSQP", bounds=Bounds(0.0, 1.0),
                   constraints=[LinearConstraint(cost[None, :], -np.inf, cap)],
                   options={"maxiter": 1000, "ftol": 1e-14})  # fmt: skip
    w = np.clip(res.x, 0.0, 1.0)
    if cost @ w > cap:
        w *= cap / (cost @ w)
    v, grad = var(w)
    # min over {0 <= x <= 1, cost·x <= cap} of grad·x: the cheapest-per-gain first (grad <= 0)
    x, left = np.zeros(len(cand)), cap
    for i in np.argsort(grad / np.maximum(cost, 1e-300)):
        if grad[i] >= 0 or left <= 0:
            break
        x[i] = min(1.0, left / cost[i])
        left -= x[i] * cost[i]
    lower = max(v + float(grad @ (x - w)), 0.0)
    return {"sd_done": float(np.sqrt(var(np.zeros(len(cand)))[0])), "sd_all": float(np.sqrt(var(np.ones(len(cand)))[0])),
            "sd_bound": float(np.sqrt(lower)), "sd_relaxed": float(np.sqrt(v)), "weights": w,
            "flops": float(cost @ w), "sigma": sigma, "converged": bool(res.success)}  # fmt: skip


def _target_interval(fit, boot, cal, target_flops, quantity, level, value, var0, opt) -> _Interval:
    """The current interval's parts: the bootstrap band's log offsets (the Fisher normal
    approximation without a bootstrap) and the calibration."""
    from .levels import coordinates
    from .optimal import compute_optimal
    from .results import normal_quantile

    if boot is not None:
        o = compute_optimal(boot, target_flops, level=level, interval="law")
        key = "loss" if quantity == "loss" else "params"
        with np.errstate(all="ignore"):
            plo, phi = np.log(value / o[f"{key}_lo"]), np.log(o[f"{key}_hi"] / value)
        plo, phi = float(np.nan_to_num(max(plo, 0.0))), float(np.nan_to_num(max(phi, 0.0)))
    else:
        plo = phi = normal_quantile(level) * float(np.sqrt(var0))
    x = coordinates(np.log([[opt["params"], opt["tokens"]]]))[0]
    return _Interval(value=value, plo=plo, phi=phi, cal=cal, level=level, target_x=x)


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


def choose_batch(
    fit,
    done,
    candidates: pd.DataFrame,
    target_flops: float,
    max_flops: float,
    *,
    k_next: int = 3,
    draws: int = 2,
    n_boot: int = 50,
    seed: int = 0,
) -> tuple[list[int], pd.DataFrame | list]:
    """One batch of runs within ``max_flops``, chosen by refitting with imputed outcomes.

    The calibrated interval is relearned from the whole table after every round (its
    misspecification growth comes from backtests inside the data), which the plug-in
    criterion of ``propose_runs`` cannot foresee. Here a few batches built without any
    outcome (the calibrated greedy picks, the law-band greedy picks, and at each of the
    three largest affordable budget levels the runs nearest the fit's N_opt there) are each imputed
    ``draws`` times, outcome = the fit's law times exp(e), e ~ N(0, the calibration's
    error scale at that run's distance from the data: the posterior predictive, common
    random numbers across batches), refitted (warm start), bootstrapped (n_boot) and
    recalibrated; the batch with the largest mean width reduction per FLOP wins.
    Returns (candidate row positions, a DataFrame with one row per batch scored), or
    ([], []) when no candidate fits max_flops. Costs draws ×
    (batches) calibrated bootstraps: seconds, not the milliseconds of propose_runs.
    """
    import warnings

    from .extrapolate import predict_loss
    from .fit import fit_law
    from .levels import group_log
    from .optimal import compute_optimal
    from .table import as_table
    from .uncertainty import bootstrap

    fit, boot = fit_and_bootstrap(fit)
    if not max_flops > 0:
        raise ValueError(f"max_flops must be a positive number of FLOPs; got {max_flops!r}")
    done = as_table(done)
    cand = candidates.reset_index(drop=True)
    cost = cand["flops"].to_numpy(float)
    afford = np.flatnonzero(cost <= max_flops)
    if not len(afford):
        return [], []
    batches: dict[str, list[int]] = {}
    for interval in ("predictive", "law"):
        res = propose_runs(fit if boot is None else boot, done, cand, target_flops, k_next,
                           interval=interval, max_flops=max_flops)  # fmt: skip
        if res.info["chosen_index"]:
            batches[f"greedy ({interval})"] = list(res.info["chosen_index"])
    levels = group_log(cost, 0.05)
    order = sorted(set(levels[afford]), key=lambda g: -cost[levels == g].min())[:3]  # the largest affordable
    for g in order:
        idx = np.flatnonzero((levels == g) & (cost <= max_flops))
        c = float(np.median(cost[idx]))
        n_opt = float(compute_optimal(fit, c, interval="law")["params"])
        idx = idx[np.argsort(np.abs(np.log(cand["params"].to_numpy(float)[idx] / n_opt)))]
        keep = idx[np.cumsum(cost[idx]) <= max_flops][:k_next]
        if len(keep):
            batches[f"{len(keep)} nearest N_opt at C={c:.3g}"] = [int(i) for i in keep]
    cal = fit.calibration
    law = get_law(fit.law)
    pred = np.asarray(law.predict(fit.params, **{c: cand[c].to_numpy(float) for c in law.inputs}), dtype=float)
    scale = cal.sigma(cal.distance(**{c: cand[c].to_numpy(float) for c in law.inputs})) if cal is not None else 0.0
    eps = np.random.default_rng(seed).standard_normal((draws, len(cand)))
    now = predict_loss(fit if boot is None else boot, flops=target_flops)
    width0 = now["loss_hi"] - now["loss_lo"]
    rows = []
    noise = np.broadcast_to(scale, len(cand)) * eps  # (draws, candidates)
    for name, members in batches.items():
        widths = []
        for j in range(draws):
            new = cand.iloc[members][list(law.inputs) + ["flops"]].assign(
                loss=pred[members] * np.exp(noise[j, members])
            )
            table = pd.concat([done[list(law.inputs) + ["flops", "loss"]], new], ignore_index=True)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                f = fit_law(table, law, grid=fit.theta[None, :], delta=fit.delta)
                b = bootstrap(table, fit=f, n_boot=n_boot, seed=seed)
            try:
                p = predict_loss(b, flops=target_flops)
                widths.append(p["loss_hi"] - p["loss_lo"])
            except ValueError:
                widths.append(np.inf)
        w = float(np.mean(widths))
        spent = float(cost[members].sum())
        rows.append({"batch": name, "n_runs": len(members), "flops": spent, "expected_width": w,
                     "gain_per_flop": (width0 - w) / spent, "index": list(members)})  # fmt: skip
    scores = pd.DataFrame(rows)
    best = scores.loc[scores["gain_per_flop"].idxmax()]
    return list(best["index"]), scores
