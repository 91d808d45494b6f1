"""Schedule-aware loss-curve law (Tissue et al. 2024, "Scaling Law with Learning Rate
Annealing", arXiv:2408.11029):

    L(s) = L0 + A · S1(s)^(-alpha) - C · S2(s)

with, for the per-step learning rates eta_1, eta_2, ... (``schedule_areas``):

    S1(s) = sum_{i<=s} eta_i                         forward area
    m_i   = decay · m_{i-1} + (eta_{i-1} - eta_i)    annealing momentum, m_0 = 0, eta_0 = eta_1
    S2(s) = sum_{i<=s} m_i                           annealing area

``decay`` (lambda in the paper, which uses 0.999) sets how long an LR drop keeps
paying off. Our choices where the paper leaves room: LR increases during the first
``warmup_steps`` steps are not counted as (negative) annealing; S1 counts every step.
The LR scale is arbitrary (rescaling every eta rescales A and C only).

``fit_curve_law`` fits (L0, A, alpha, C) to one or more curves with known schedules:
a grid over alpha with the other three solved by bounded linear least squares
(variable projection) picks the starts, then a joint bounded refinement minimises
the Huber (default) or squared error of log loss. C is identified only by curves
whose LR decreases; a constant-LR curve alone leaves it unknown (C = 0, flagged).
``decay='fit'`` also picks lambda from a grid (needs annealing of several lengths).
``backtest_cooldowns`` checks the law on a constant-LR run with cooldown branches:
fit on the main curve plus the earliest branches, predict the later ones.

Predictions: ``CurveLawFit.predict(lr, steps)`` for any schedule (cosine, WSD with
linear or 1-sqrt cooldown, ...; see ``schedules.py``), and ``predict_cooldown`` for the
loss a cooldown branched from a checkpoint would reach.
"""

from __future__ import annotations

import warnings as _warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import optimize, signal

from .schedules import branch_cooldown

__all__ = [
    "DECAY_GRID",
    "ScheduledCurve",
    "CurveLawFit",
    "schedule_areas",
    "curve_law",
    "fit_curve_law",
    "predict_cooldown",
    "backtest_cooldowns",
]

# lambda values tried by decay='fit'
DECAY_GRID = (0.0, 0.5, 0.8, 0.9, 0.95, 0.97, 0.98, 0.99, 0.995, 0.998, 0.999, 0.9995)


def schedule_areas(lr, *, decay: float = 0.999, warmup_steps: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(S1, S2) after each step of the per-step schedule ``lr``: entry s-1 is the value
    after s steps."""
    eta = np.asarray(lr, dtype=float)
    if eta.ndim != 1 or len(eta) == 0:
        raise ValueError(f"lr must be a non-empty 1-D per-step array; got shape {eta.shape}")
    if np.any(~np.isfinite(eta)) or np.any(eta < 0):
        raise ValueError("lr must be finite and non-negative at every step")
    if not 0.0 <= decay < 1.0:
        raise ValueError(f"decay (lambda) must be in [0, 1); got {decay}")
    if warmup_steps < 0:
        raise ValueError(f"warmup_steps must be >= 0, got {warmup_steps}")
    drop = np.r_[0.0, eta[:-1] - eta[1:]]  # drop[j] = eta_j - eta_{j+1} (0-based), paid at step j+1
    drop[: int(warmup_steps)] = 0.0  # warmup's rise is not (negative) annealing
    m = signal.lfilter([1.0], [1.0, -decay], drop)
    return np.cumsum(eta), np.cumsum(m)


def _per_step(lr, n_steps: int) -> np.ndarray:
    """A schedule as a per-step array: arrays pass through, functions of the step are
    evaluated at steps 1..n_steps."""
    if callable(lr):
        return np.asarray(lr(np.arange(1, n_steps + 1)), dtype=float)
    return np.asarray(lr, dtype=float)


def curve_law(S1, S2, L0: float, A: float, alpha: float, C: float):
    """L = L0 + A·S1^(-alpha) - C·S2."""
    return L0 + A * np.asarray(S1, dtype=float) ** (-alpha) - C * np.asarray(S2, dtype=float)


@dataclass(frozen=True)
class ScheduledCurve:
    """Evaluations of one run: loss after ``steps[j]`` optimizer steps of the schedule
    ``lr``: a per-step array (lr[i] is the LR of step i+1; it must cover the last step)
    or a function of the step (e.g. ``partial(wsd_lr, peak=..., ...)``)."""

    lr: np.ndarray
    steps: np.ndarray
    loss: np.ndarray

    def __post_init__(self):
        steps = np.atleast_1d(np.asarray(self.steps))
        lr = _per_step(self.lr, int(steps.max()) if steps.size else 0)
        loss = np.atleast_1d(np.asarray(self.loss, dtype=float))
        if steps.shape != loss.shape or steps.ndim != 1:
            raise ValueError(f"steps and loss must be 1-D of one length; got {steps.shape} and {loss.shape}")
        if np.any(steps < 1) or np.any(steps != np.round(steps)):
            raise ValueError("steps must be whole numbers >= 1 (the number of optimizer steps done)")
        if steps.max() > len(lr):
            raise ValueError(f"the schedule has {len(lr)} steps but the curve is evaluated at step {int(steps.max())}")
        if np.any(~np.isfinite(loss)) or np.any(loss <= 0):
            raise ValueError("loss must be finite and positive")
        object.__setattr__(self, "lr", lr)
        object.__setattr__(self, "steps", steps.astype(int))
        object.__setattr__(self, "loss", loss)

    def areas(self, decay: float, warmup_steps: int = 0) -> tuple[np.ndarray, np.ndarray]:
        s1, s2 = schedule_areas(self.lr[: self.steps.max()], decay=decay, warmup_steps=warmup_steps)
        return s1[self.steps - 1], s2[self.steps - 1]


@dataclass(frozen=True)
class CurveLawFit:
    """Fitted L0, A, alpha, C (and the decay lambda used); callable on schedules."""

    L0: float
    A: float
    alpha: float
    C: float
    decay: float
    warmup_steps: int
    loss: str
    delta: float
    n_points: int
    rmse_log: float  # root-mean-square residual of log loss over the fitted points
    objective: float
    c_identified: bool
    warnings: tuple[str, ...] = ()
    decay_scan: dict = field(default_factory=dict, repr=False)  # lambda -> objective (decay='fit')

    @property
    def params(self) -> dict:
        return dict(L0=self.L0, A=self.A, alpha=self.alpha, C=self.C)

    def to_dict(self) -> dict:
        return {
            "params": {k: float(v) for k, v in self.params.items()},
            "decay": float(self.decay),
            "warmup_steps": int(self.warmup_steps),
            "loss": self.loss,
            "delta": float(self.delta),
            "n_points": int(self.n_points),
            "rmse_log": float(self.rmse_log),
            "objective": float(self.objective),
            "c_identified": bool(self.c_identified),
            "warnings": list(self.warnings),
            **({"decay_scan": {str(k): float(v) for k, v in self.decay_scan.items()}} if self.decay_scan else {}),
        }

    def to_frame(self) -> pd.DataFrame:
        """One row per parameter: param, value."""
        return pd.DataFrame({"param": list(self.params), "value": [float(v) for v in self.params.values()]})

    def summary(self) -> str:
        lines = [
            f"L(s) = {self.L0:.6g} + {self.A:.6g}·S1^-{self.alpha:.4g} - {self.C:.6g}·S2   (decay {self.decay:g}, "
            f"{self.loss} loss, {self.n_points} points, rms log residual {self.rmse_log:.2e})"
        ]
        return "\n".join(lines + [f"warning: {w}" for w in self.warnings])

    __str__ = summary

    def predict(self, lr, steps=None):
        """Loss after each of ``steps`` (default: every step) of the schedule ``lr`` (a
        per-step array, or a function of the step, which then needs ``steps``)."""
        if callable(lr) and steps is None:
            raise ValueError("a schedule given as a function needs the steps to predict at")
        lr = _per_step(lr, int(np.max(steps)) if steps is not None else 0)
        s1, s2 = schedule_areas(lr, decay=self.decay, warmup_steps=self.warmup_steps)
        if not self.c_identified and np.any(s2 > 1e-12 * max(1.0, s1[-1])):
            _warnings.warn(
                "this fit never saw an LR decrease, so its annealing term C is unknown (set to 0): "
                "the prediction for an annealing schedule leaves out the annealing drop",
                stacklevel=2,
            )
        if steps is None:
            return curve_law(s1, s2, self.L0, self.A, self.alpha, self.C)
        idx = np.asarray(steps, dtype=int) - 1
        if np.any(idx < 0) or np.any(idx >= len(lr)):
            raise ValueError(f"steps must lie in [1, {len(lr)}] (the schedule's length)")
        out = curve_law(s1[idx], s2[idx], self.L0, self.A, self.alpha, self.C)
        return float(out) if np.ndim(out) == 0 else out


def _design(S1, S2, alpha, with_c):
    cols = [np.ones_like(S1), S1 ** (-alpha)]
    if with_c:
        cols.append(-S2)
    return np.stack(cols, axis=1)


def _objective(r: np.ndarray, loss: str, delta: float) -> float:
    if loss == "l2":
        return float(0.5 * np.sum(r * r))
    a = np.abs(r)
    return float(np.sum(np.where(a <= delta, 0.5 * r * r, delta * (a - 0.5 * delta))))


def _fit_fixed_decay(S1, S2, y, *, with_c, loss, delta, alpha_bounds, n_alpha, n_starts):
    """Best (L0, A, alpha, C) and objective for fixed areas."""
    ly = np.log(y)
    lo_b = np.array([0.0, 0.0] + ([0.0] if with_c else []))
    # 1. variable projection over an alpha grid (linear least squares in loss space)
    alphas = np.geomspace(*alpha_bounds, n_alpha)
    sse = np.empty(n_alpha)
    lin = []
    for k, a in enumerate(alphas):
        X = _design(S1, S2, a, with_c)
        scale = np.abs(X).max(axis=0)
        scale[scale == 0] = 1.0
        sol = optimize.lsq_linear(X / scale, y, bounds=(lo_b, np.inf))
        theta = sol.x / scale
        lin.append(theta)
        sse[k] = np.sum((X @ theta - y) ** 2)
    # starts: the best grid points that are local minima along the grid
    local = [
        k for k in range(n_alpha) if (k == 0 or sse[k] <= sse[k - 1]) and (k == n_alpha - 1 or sse[k] <= sse[k + 1])
    ]
    starts = sorted(local, key=lambda k: sse[k])[:n_starts] or [int(np.argmin(sse))]

    # 2. joint refinement of (L0, A, alpha[, C]) on log loss
    def resid(p):
        L0, A, a = p[0], p[1], p[2]
        C = p[3] if with_c else 0.0
        pred = curve_law(S1, S2, L0, A, a, C)
        return np.log(np.maximum(pred, 1e-12)) - ly

    lower = [0.0, 0.0, alpha_bounds[0]] + ([0.0] if with_c else [])
    upper = [np.inf, np.inf, alpha_bounds[1]] + ([np.inf] if with_c else [])
    best = None
    for k in starts:
        th = lin[k]
        p0 = np.array([th[0], th[1], alphas[k]] + ([th[2]] if with_c else []), dtype=float)
        p0 = np.clip(p0, np.array(lower) + 1e-12, upper)
        sol = optimize.least_squares(
            resid,
            p0,
            bounds=(lower, upper),
            loss="linear" if loss == "l2" else "huber",
            f_scale=delta,
            x_scale="jac",
            xtol=1e-12,
            ftol=1e-12,
            gtol=1e-12,
            max_nfev=2000,
        )
        obj = _objective(resid(sol.x), loss, delta)
        if best is None or obj < best[1]:
            best = (sol.x, obj)
    p, obj = best
    return (p[0], p[1], p[2], p[3] if with_c else 0.0), obj, resid(p)


def fit_curve_law(
    curves: ScheduledCurve | Sequence[ScheduledCurve],
    *,
    decay: float | str = 0.999,
    warmup_steps: int = 0,
    loss: str = "huber",
    delta: float = 1e-3,
    alpha_bounds: tuple[float, float] = (0.02, 3.0),
    n_alpha: int = 60,
    n_starts: int = 3,
    decay_grid: Sequence[float] = DECAY_GRID,
) -> CurveLawFit:
    """Fit L0, A, alpha, C to one or more curves (each with its own schedule).

    decay: lambda of the annealing momentum, or ``'fit'`` to choose it from
        ``decay_grid`` by the fit objective.
    loss: ``'huber'`` (on log-loss residuals, threshold ``delta``) or ``'l2'``.
    """
    if isinstance(curves, ScheduledCurve):
        curves = [curves]
    curves = list(curves)
    if not curves:
        raise ValueError("fit_curve_law needs at least one ScheduledCurve")
    if loss not in ("huber", "l2"):
        raise ValueError(f"loss must be 'huber' or 'l2', got {loss!r}")
    if not delta > 0:
        raise ValueError(f"delta must be positive; got {delta!r}")
    if not 0 < alpha_bounds[0] < alpha_bounds[1]:
        raise ValueError(f"alpha_bounds must be (low, high) with 0 < low < high; got {alpha_bounds!r}")
    if decay != "fit" and not (isinstance(decay, (int, float)) and 0 <= decay < 1):
        raise ValueError(f"decay must be in [0, 1) or 'fit'; got {decay!r}")
    y = np.concatenate([c.loss for c in curves])
    if len(y) < 4:
        raise ValueError(f"fit_curve_law needs at least 4 evaluation points for 4 parameters; got {len(y)}")
    decays = list(decay_grid) if decay == "fit" else [float(decay)]
    results = {}
    for lam in decays:
        areas = [c.areas(lam, warmup_steps) for c in curves]
        S1 = np.concatenate([a[0] for a in areas])
        S2 = np.concatenate([a[1] for a in areas])
        if np.any(S1 <= 0):
            raise ValueError("every evaluation needs a positive forward area S1 (some LR before it)")
        with_c = bool(np.any(np.abs(S2) > 1e-12 * S1.max()))
        results[lam] = (
            *_fit_fixed_decay(
                S1,
                S2,
                y,
                with_c=with_c,
                loss=loss,
                delta=delta,
                alpha_bounds=alpha_bounds,
                n_alpha=n_alpha,
                n_starts=n_starts,
            ),
            with_c,
        )
    lam = min(results, key=lambda k: results[k][1])
    (L0, A, alpha, C), obj, r, with_c = results[lam]
    warns = []
    if not with_c:
        warns.append("no LR decrease in the fitted curves: the annealing term C cannot be identified (set to 0)")
    if np.isclose(alpha, alpha_bounds[0], rtol=1e-3) or np.isclose(alpha, alpha_bounds[1], rtol=1e-3):
        warns.append(f"alpha={alpha:.4g} sits at a bound of alpha_bounds={alpha_bounds}")
    if decay == "fit" and lam in (min(decays), max(decays)):
        warns.append(f"the fitted decay {lam} is at the edge of the grid {min(decays)}..{max(decays)}")
    return CurveLawFit(
        L0=float(L0),
        A=float(A),
        alpha=float(alpha),
        C=float(C),
        decay=float(lam),
        warmup_steps=int(warmup_steps),
        loss=loss,
        delta=float(delta),
        n_points=len(y),
        rmse_log=float(np.sqrt(np.mean(r * r))),
        objective=float(obj),
        c_identified=with_c,
        warnings=tuple(warns),
        decay_scan={k: v[1] for k, v in results.items()} if decay == "fit" else {},
    )


def predict_cooldown(
    fit: CurveLawFit,
    lr,
    branch_step: int,
    cooldown_steps: int,
    *,
    shape: str = "linear",
    floor: float = 0.0,
    curve: bool = False,
):
    """Loss a cooldown would reach if branched after ``branch_step`` steps of schedule
    ``lr`` (e.g. a constant-LR run), cooling to ``floor`` over ``cooldown_steps`` steps
    with the given shape. With curve=True, returns the loss after every cooldown step."""
    sched = branch_cooldown(lr, branch_step, cooldown_steps, shape=shape, floor=floor)
    if curve:
        return fit.predict(sched, np.arange(branch_step + 1, branch_step + cooldown_steps + 1))
    return fit.predict(sched, len(sched))


def backtest_cooldowns(
    main: ScheduledCurve,
    branch_steps,
    end_steps,
    end_losses,
    *,
    calibrate: int = 2,
    shape: str = "linear",
    floor: float = 0.0,
    **fit_options,
) -> tuple[CurveLawFit, pd.DataFrame]:
    """Fit the law on a main run plus its ``calibrate`` earliest cooldown branches, then
    predict the end loss of every branch.

    main: the main run's schedule (covering every branch step) and evaluations.
    branch_steps, end_steps, end_losses: per branch, the step it leaves the main run,
        the step its cooldown ends (to ``floor``, shaped ``shape``) and the loss there.
    fit_options: passed to ``fit_curve_law`` (decay, loss, ...).
    Returns the fit and a table: branch_step, end_step, end_loss, predicted, role
    ('calibration' or 'test').
    """
    b = np.asarray(branch_steps, dtype=int)
    e = np.asarray(end_steps, dtype=int)
    y = np.asarray(end_losses, dtype=float)
    if not b.shape == e.shape == y.shape or b.ndim != 1:
        raise ValueError("branch_steps, end_steps and end_losses must be 1-D of one length")
    if np.any(e <= b):
        raise ValueError("every cooldown must end after it branches (end_steps > branch_steps)")
    if not 0 <= calibrate <= len(b):
        raise ValueError(f"calibrate must be in [0, {len(b)}] (the number of branches); got {calibrate}")
    order = np.argsort(b, kind="stable")
    b, e, y = b[order], e[order], y[order]
    scheds = [branch_cooldown(main.lr, int(bs), int(es - bs), shape=shape, floor=floor) for bs, es in zip(b, e)]
    cal = [ScheduledCurve(s, np.array([len(s)]), np.array([yy])) for s, yy in zip(scheds[:calibrate], y[:calibrate])]
    fit = fit_curve_law([main, *cal], **fit_options)
    with _warnings.catch_warnings():
        # an uncalibrated C is already recorded in fit.warnings
        _warnings.simplefilter("ignore")
        pred = np.array([fit.predict(s, len(s)) for s in scheds])
    table = pd.DataFrame(
        dict(
            branch_step=b,
            end_step=e,
            end_loss=y,
            predicted=pred,
            role=np.where(np.arange(len(b)) < calibrate, "calibration", "test"),
        )
    )
    return fit, table
