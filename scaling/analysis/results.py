"""What a parametric law fit returns: FitResult (one fit), BootstrapResult (refits of
resamples) and BacktestResult (fit small, predict large).

They live together so that each can name the others' types: a bootstrapped FitResult
carries its BootstrapResult (``fit.bootstrap``), whose ``.fit`` is that FitResult again,
and both serialise through ``FitResult.to_dict`` (the JSON of ``scaling fit --json``).
Nothing here fits anything; ``fit.py`` and ``uncertainty.py`` build these.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from scaling.atomic import write_text

from .engine import DEFAULT_DELTA, DEFAULT_GTOL
from .laws import Law, get_law
from .levels import coordinates, extrapolation_distance

__all__ = ["BacktestResult", "BootstrapResult", "Calibration", "FitResult", "fit_and_bootstrap", "normal_quantile"]


def normal_quantile(level: float) -> float:
    """z with P(|Z| <= z) = level for a standard normal Z."""
    from scipy.stats import norm

    return float(norm.ppf(0.5 + level / 2))


@dataclass
class Calibration:
    """The predictive-interval model of one fit (see the module docstring).

    sigma0: log-loss noise at distance 0; kappa: misspecification growth per e-fold;
    multipliers: level -> q_level; box_lo/box_hi: the fit data's log-input box per input;
    (in ``coordinates``); inputs: the law's inputs; n_origins, n_pairs: inner backtests behind kappa;
    calibrated: False when it fell back (see warnings); noise_source: "residuals"/"seeds".
    """

    law: str
    inputs: tuple
    sigma0: float
    kappa: float
    multipliers: dict
    box_lo: tuple
    box_hi: tuple
    noise: float = float("nan")
    noise_source: str = "residuals"
    n_origins: int = 0
    n_pairs: int = 0
    calibrated: bool = True
    warnings: tuple = ()
    pairs: pd.DataFrame | None = field(default=None, repr=False)

    def distance(self, **inputs) -> np.ndarray:
        arrays = np.broadcast_arrays(*[np.asarray(inputs[i], dtype=float) for i in self.inputs])
        logx = coordinates(np.stack([np.log(a) for a in arrays], axis=-1))
        return extrapolation_distance(logx, self.box_lo, self.box_hi)

    def sigma(self, distance) -> np.ndarray:
        d = np.asarray(distance, dtype=float)
        return np.sqrt(self.sigma0**2 + (self.kappa * d) ** 2)

    def multiplier(self, level: float) -> float:
        """q_level: the stored one, else interpolated in Gaussian-quantile space."""
        if not 0 < level < 1:
            raise ValueError(f"interval level must be in (0, 1); got {level}")
        levels = np.array(sorted(self.multipliers))
        q = np.array([self.multipliers[lv] for lv in levels])
        if any(abs(level - lv) < 1e-9 for lv in levels):
            return float(q[np.argmin(np.abs(levels - level))])
        ratio = np.interp(
            normal_quantile(level),
            [normal_quantile(lv) for lv in levels],
            q / np.array([normal_quantile(lv) for lv in levels]),
        )
        return float(ratio * normal_quantile(level))

    def bounds(self, log_center, distance, level: float, param_lo=None, param_hi=None):
        """(lo, hi) of the loss: log_center ± sqrt(param offset^2 + (q·sigma(d))^2);
        param_lo/param_hi: the bootstrap band's log offsets below/above (>= 0)."""
        h = self.multiplier(level) * self.sigma(distance)
        plo = 0.0 if param_lo is None else np.maximum(param_lo, 0.0)
        phi = 0.0 if param_hi is None else np.maximum(param_hi, 0.0)
        lo = log_center - np.sqrt(plo**2 + h**2)
        hi = log_center + np.sqrt(phi**2 + h**2)
        return np.exp(lo), np.exp(hi)

    def to_dict(self) -> dict:
        return {
            "law": self.law,
            "inputs": list(self.inputs),
            "sigma0": float(self.sigma0),
            "kappa": float(self.kappa),
            "noise": float(self.noise),
            "noise_source": self.noise_source,
            "multipliers": {str(k): float(v) for k, v in self.multipliers.items()},
            "box_lo": [float(v) for v in self.box_lo],
            "box_hi": [float(v) for v in self.box_hi],
            "n_origins": int(self.n_origins),
            "n_pairs": int(self.n_pairs),
            "calibrated": bool(self.calibrated),
            "warnings": list(self.warnings),
        }

    @classmethod
    def from_dict(cls, d: Mapping) -> Calibration:
        return cls(
            law=d["law"],
            inputs=tuple(d["inputs"]),
            sigma0=float(d["sigma0"]),
            kappa=float(d["kappa"]),
            noise=float(d.get("noise", np.nan)),
            noise_source=d.get("noise_source", "residuals"),
            multipliers={float(k): float(v) for k, v in d["multipliers"].items()},
            box_lo=tuple(float(v) for v in d["box_lo"]),
            box_hi=tuple(float(v) for v in d["box_hi"]),
            n_origins=int(d.get("n_origins", 0)),
            n_pairs=int(d.get("n_pairs", 0)),
            calibrated=bool(d.get("calibrated", True)),
            warnings=tuple(d.get("warnings", ())),
        )

    def summary(self) -> str:
        head = "predictive interval" + ("" if self.calibrated else " (NOT calibrated: fallback)")
        return (
            f"{head}: noise {100 * self.sigma0:.2f}% + misspecification {100 * self.kappa:.2f}% per e-fold "
            f"of extrapolation (from {self.n_origins} inner backtests, {self.n_pairs} held-out rows); "
            "multipliers " + ", ".join(f"{int(round(100 * k))}%: {v:.2f}" for k, v in sorted(self.multipliers.items()))
        )


@dataclass
class FitResult:
    """A fitted law: natural parameters plus the diagnostics of the fit.

    params: natural scale (e.g. E, A, B, alpha, beta). theta: fit coordinates (log of the
    log_params). objective: summed Huber at the optimum; grad_norm: largest |gradient|
    component there (fit coordinates); converged: the best start met gtol. n_at_best:
    how many starts ended within BEST_RTOL of the best objective (of n_kept starts run
    to convergence, out of n_starts screened).
    warnings: optimum outside the start grid, degenerate terms, poorly determined
    directions (from the Hessian's eigen-decomposition), an optimum that pruning had
    missed, and ``diagnostics.fit_diagnostics``.
    """

    law: str
    params: dict
    objective: float
    grad_norm: float
    converged: bool
    n_points: int
    n_starts: int = 1
    n_kept: int = 1  # starts run to convergence (the others were pruned after screening)
    n_at_best: int = 1
    warnings: tuple = ()
    method: str = "lbfgs"
    delta: float = DEFAULT_DELTA
    gtol: float = DEFAULT_GTOL
    n_iter: int = 0
    k: float = 6.0  # FLOPs per parameter per token of the data (used by optimal allocation)
    hessian_eigenvalues: tuple = ()
    intervals: dict = field(default_factory=dict)  # parameter -> (low, high), set by a bootstrap
    bootstrap: BootstrapResult | None = field(default=None, repr=False)  # when bootstrapped
    calibration: Calibration | None = field(default=None, repr=False)  # predictive intervals (predictive.py)
    start_objectives: np.ndarray | None = field(default=None, repr=False)  # per start
    start_theta: np.ndarray | None = field(default=None, repr=False)  # end points, fit coords
    exponent_min: float | None = None  # the lower bound the exponents were fitted under (fit_law)
    n_rechecked: int = 0  # pruned starts continued to convergence after the fit (fit_law's recheck)

    @property
    def law_obj(self) -> Law:
        return get_law(self.law)

    @property
    def theta(self) -> np.ndarray:
        law = self.law_obj
        return law.to_fit([self.params[p] for p in law.params])

    def predict(self, params=None, tokens=None, flops=None, **inputs) -> np.ndarray:
        """Predicted loss at the given inputs (those the law needs, e.g. unique_tokens for
        the data-constrained law; arrays broadcast)."""
        return self.law_obj.predict(self.params, params=params, tokens=tokens, flops=flops, **inputs)

    def __getitem__(self, name: str) -> float:
        return self.params[name]

    def to_dict(self) -> dict:
        d = {
            "law": self.law,
            "params": {k: float(v) for k, v in self.params.items()},
            "objective": float(self.objective),
            "grad_norm": float(self.grad_norm),
            "converged": bool(self.converged),
            "n_points": int(self.n_points),
            "n_starts": int(self.n_starts),
            "n_kept": int(self.n_kept),
            "n_at_best": int(self.n_at_best),
            "method": self.method,
            "delta": float(self.delta),
            "gtol": float(self.gtol),
            "n_iter": int(self.n_iter),
            "k": float(self.k),
            "hessian_eigenvalues": [float(v) for v in self.hessian_eigenvalues],
            "warnings": list(self.warnings),
            "n_rechecked": int(self.n_rechecked),
        }
        if self.exponent_min is not None:
            d["exponent_min"] = float(self.exponent_min)
        if self.intervals:
            d["intervals"] = {k: [float(lo), float(hi)] for k, (lo, hi) in self.intervals.items()}
        if self.bootstrap is not None:
            d["bootstrap"] = self.bootstrap.to_dict()
        if self.calibration is not None:
            d["calibration"] = self.calibration.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: Mapping) -> FitResult:
        law = get_law(d["law"])
        missing = [p for p in law.params if p not in d.get("params", {})]
        if missing:
            raise ValueError(f"fit for law {law.name!r} lacks parameters {missing}")
        res = cls(
            law=law.name,
            params={p: float(d["params"][p]) for p in law.params},
            objective=float(d.get("objective", np.nan)),
            grad_norm=float(d.get("grad_norm", np.nan)),
            converged=bool(d.get("converged", False)),
            n_points=int(d.get("n_points", 0)),
            n_starts=int(d.get("n_starts", 1)),
            n_kept=int(d.get("n_kept", d.get("n_starts", 1))),
            n_at_best=int(d.get("n_at_best", 1)),
            warnings=tuple(d.get("warnings", ())),
            method=d.get("method", "lbfgs"),
            delta=float(d.get("delta", DEFAULT_DELTA)),
            gtol=float(d.get("gtol", DEFAULT_GTOL)),
            n_iter=int(d.get("n_iter", 0)),
            k=float(d.get("k", 6.0)),
            hessian_eigenvalues=tuple(d.get("hessian_eigenvalues", ())),
            exponent_min=None if d.get("exponent_min") is None else float(d["exponent_min"]),
            n_rechecked=int(d.get("n_rechecked", 0)),
            # "ci": the key of fit files written before it was named "intervals"
            intervals={k: tuple(v) for k, v in d.get("intervals", d.get("ci", {})).items()},
        )
        if d.get("bootstrap"):
            res.bootstrap = BootstrapResult.from_dict(d["bootstrap"], fit=res)
        if d.get("calibration"):
            res.calibration = Calibration.from_dict(d["calibration"])
        return res

    def to_json(self, path=None, **kw) -> str:
        text = json.dumps(self.to_dict(), indent=2, **kw)
        if path is not None:
            write_text(path, text + "\n")
        return text

    @classmethod
    def from_json(cls, path_or_text) -> FitResult:
        s = str(path_or_text)
        text = s if s.lstrip().startswith("{") else Path(s).read_text()
        return cls.from_dict(json.loads(text))

    def summary(self) -> str:
        """A small text table of the parameters (with intervals when bootstrapped)."""
        lines = [
            f"law: {self.law}   points: {self.n_points}   objective: {self.objective:.6e}   "
            f"converged: {self.converged}   starts at best: {self.n_at_best}/{self.n_kept}"
            + (f" (of {self.n_starts} screened)" if self.n_kept < self.n_starts else "")
        ]
        ci_lvl = f"{int(round(100 * self.bootstrap.level))}% CI" if self.bootstrap is not None else "CI"
        lines.append(f"{'param':>10} {'value':>14}" + (f" {ci_lvl:>30}" if self.intervals else ""))
        for p, v in self.params.items():
            row = f"{p:>10} {v:>14.6g}"
            if p in self.intervals:
                lo, hi = self.intervals[p]
                row += f"   [{lo:>12.6g}, {hi:>12.6g}]"
            lines.append(row)
        lines += [f"warning: {w}" for w in self.warnings]
        return "\n".join(lines)

    __str__ = summary

    def to_frame(self) -> pd.DataFrame:
        """One row per parameter: param, value, and value_lo/value_hi when bootstrapped."""
        frame = pd.DataFrame({"param": list(self.params), "value": [float(v) for v in self.params.values()]})
        if self.intervals:
            frame["value_lo"] = [float(self.intervals[p][0]) for p in self.params]
            frame["value_hi"] = [float(self.intervals[p][1]) for p in self.params]
        return frame


@dataclass
class BootstrapResult:
    """Refitted parameters of n_boot resamples (natural scale), with interval helpers."""

    law: str
    draws: np.ndarray  # (R, P) natural parameters
    objectives: np.ndarray  # (R,)
    converged: np.ndarray  # (R,) bool
    level: float = 0.95
    start: str = "optimum"
    unit: str = "points"  # or "runs"
    seed: int = 0
    warnings: tuple = ()
    fit: FitResult | None = field(default=None, repr=False)

    @property
    def n_boot(self) -> int:
        return len(self.draws)

    @property
    def params(self) -> tuple[str, ...]:
        return get_law(self.law).params

    def _q(self, level):
        level = self.level if level is None else float(level)
        if not 0 < level < 1:
            raise ValueError(f"interval level must be in (0, 1); got {level}")
        return 50 * (1 - level), 50 * (1 + level)

    def _ok(self) -> np.ndarray:
        return np.all(np.isfinite(self.draws), axis=1)

    def interval(self, values, level=None) -> tuple[np.ndarray, np.ndarray]:
        """Percentile interval of per-resample values (R, ...) along the first axis."""
        values = np.asarray(values, dtype=float)
        ok = self._ok() & np.all(np.isfinite(values.reshape(len(values), -1)), axis=1)
        lo, hi = np.percentile(values[ok], self._q(level), axis=0)
        return lo, hi

    def intervals(self, level=None) -> dict:
        """Parameter -> (low, high) percentile interval (at ``level``, default the result's)."""
        lo, hi = self.interval(self.draws, level)
        return {p: (float(a), float(b)) for p, a, b in zip(self.params, lo, hi)}

    def se(self) -> dict:
        """Parameter -> bootstrap standard error (standard deviation over resamples)."""
        d = self.draws[self._ok()]
        return {p: float(s) for p, s in zip(self.params, d.std(axis=0, ddof=1))}

    def predict(self, params=None, tokens=None, flops=None, **inputs) -> np.ndarray:
        """(R, ...) predicted loss of every resample's law at the inputs."""
        law = get_law(self.law)
        return law.predict_many(self.draws, params=params, tokens=tokens, flops=flops, **inputs)

    def predict_interval(self, params=None, tokens=None, flops=None, level=None):
        """Percentile interval (low, high) of the predicted loss at the inputs."""
        return self.interval(self.predict(params=params, tokens=tokens, flops=flops), level)

    def to_dict(self) -> dict:
        return {
            "law": self.law,
            "n_boot": int(self.n_boot),
            "level": float(self.level),
            "start": self.start,
            "unit": self.unit,
            "seed": int(self.seed),
            "converged_fraction": float(np.mean(self.converged)) if self.n_boot else 0.0,
            "se": self.se(),
            "warnings": list(self.warnings),
            "params": list(self.params),
            "draws": [[float(f"{v:.10g}") for v in row] for row in self.draws],
        }

    @classmethod
    def from_dict(cls, d: Mapping, fit: FitResult | None = None) -> BootstrapResult:
        law = fit.law if fit is not None else d["law"]
        draws = np.asarray(d.get("draws", []), dtype=float).reshape(-1, get_law(law).n_params)
        return cls(
            law=law,
            draws=draws,
            objectives=np.full(len(draws), np.nan),
            converged=np.ones(len(draws), bool),
            level=float(d.get("level", 0.95)),
            start=d.get("start", "optimum"),
            unit=d.get("unit", "points"),
            seed=int(d.get("seed", 0)),
            warnings=tuple(d.get("warnings", ())),
            fit=fit,
        )

    def to_frame(self) -> pd.DataFrame:
        """One row per resample: its parameters (natural scale), objective and convergence."""
        frame = pd.DataFrame(self.draws, columns=list(self.params))
        frame["objective"] = self.objectives
        frame["converged"] = self.converged
        return frame

    def summary(self) -> str:
        """Resampling scheme, convergence, and per parameter its standard error and interval."""
        lines = [
            f"bootstrap of law {self.law}: {self.n_boot} resamples of {self.unit} (refits from the {self.start}, "
            f"seed {self.seed}), {int(np.sum(self.converged))} converged"
        ]
        if self.n_boot > 1:
            se, iv = self.se(), self.intervals()
            lines.append(f"{'param':>10} {'se':>14} {f'{int(round(100 * self.level))}% interval':>30}")
            lines += [f"{p:>10} {se[p]:>14.6g}   [{iv[p][0]:>12.6g}, {iv[p][1]:>12.6g}]" for p in self.params]
        lines += [f"warning: {w}" for w in self.warnings]
        return "\n".join(lines)

    __str__ = summary


@dataclass
class BacktestResult:
    """A fit on the runs with flops <= cutoff_flops, scored on the runs above it.

    points: one row per held-out run (params, tokens, flops, loss, pred, pred_lo,
    pred_hi, abs_rel_error, covered; the intervals only when bootstrapped). The scores:
    mean/max absolute relative error of pred, and coverage, the fraction of observed
    losses inside their interval (NaN without a bootstrap). fit: the fit on the kept runs.
    """

    points: pd.DataFrame
    law: str
    cutoff_flops: float
    n_fit: int
    n_test: int
    mean_abs_rel_error: float
    max_abs_rel_error: float
    coverage: float
    level: float
    fit: FitResult | None = field(repr=False, default=None)
    split: str = ""  # how the held-out rows were chosen (e.g. "holdout_params=1e+09")
    interval: str = "law"  # "predictive", "law" or "none"
    mean_signed_error: float = float("nan")  # mean of pred/observed - 1
    coverage_by_level: dict = field(default_factory=dict)  # level -> coverage (50/80/90/95%)
    median_rel_halfwidth: float = float("nan")  # sharpness of the interval at `level`
    warnings: tuple = ()  # from the fit's bootstrap and calibration

    def to_frame(self) -> pd.DataFrame:
        """The held-out points (a copy of ``points``)."""
        return self.points.copy()

    def to_dict(self) -> dict:
        """The scores as plain numbers."""
        return {
            "law": self.law,
            "cutoff_flops": float(self.cutoff_flops),
            "n_fit": int(self.n_fit),
            "n_test": int(self.n_test),
            "mean_abs_rel_error": float(self.mean_abs_rel_error),
            "max_abs_rel_error": float(self.max_abs_rel_error),
            "coverage": float(self.coverage),
            "level": float(self.level),
            "split": self.split,
            "interval": self.interval,
            "mean_signed_error": float(self.mean_signed_error),
            "coverage_by_level": {str(k): float(v) for k, v in self.coverage_by_level.items()},
            "median_rel_halfwidth": float(self.median_rel_halfwidth),
            "warnings": list(self.warnings),
        }

    def summary(self) -> str:
        cover = "no intervals" if np.isnan(self.coverage) else f"coverage {100 * self.coverage:.0f}%"
        text = (
            f"backtest of law {self.law}: fit on {self.n_fit} runs ({self.split or f'flops <= {self.cutoff_flops:.3g}'}), "
            f"predict {self.n_test}: mean |relative error| {100 * self.mean_abs_rel_error:.2f}% "
            f"(max {100 * self.max_abs_rel_error:.2f}%, mean signed {100 * self.mean_signed_error:+.2f}%), "
            f"{cover} at level {self.level:g}"
        )
        if self.coverage_by_level:
            text += (
                f"\n{self.interval} interval coverage "
                + ", ".join(f"{int(round(100 * k))}%: {100 * v:.0f}%" for k, v in self.coverage_by_level.items())
                + f"; median relative half-width {100 * self.median_rel_halfwidth:.2f}% at {self.level:g}"
            )
        return text + "".join(f"\nwarning: {w}" for w in self.warnings)

    __str__ = summary


def fit_and_bootstrap(result: FitResult | BootstrapResult) -> tuple[FitResult, BootstrapResult | None]:
    """(full-data fit, its bootstrap or None) from either result type."""
    if isinstance(result, BootstrapResult):
        if result.fit is None:
            raise ValueError("this BootstrapResult carries no full-data fit; pass the FitResult it came from")
        return result.fit, result
    if isinstance(result, FitResult):
        return result, result.bootstrap
    raise TypeError(f"expected a FitResult or BootstrapResult; got {type(result).__name__}")
