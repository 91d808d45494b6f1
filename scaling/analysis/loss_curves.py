"""Loss-curve interpolation: a run's loss between its evaluation points.

Every interpolant works in log-log space (log x, log loss), where training curves
are close to straight lines, and is one named method from a small registry:

- ``linear``: piecewise linear in log-log (a local power law between neighbours).
- ``polynomial``: a least-squares polynomial of a chosen ``degree`` in log-log.
- ``cubic``: a cubic spline through every point (scipy ``CubicSpline``, not-a-knot).
- ``pchip``: a monotone piecewise cubic (scipy ``PchipInterpolator``); a monotone
  curve stays monotone between its points.
- ``akima``: Akima's piecewise cubic (scipy ``Akima1DInterpolator``): little overshoot
  near outliers; Porian et al. (2024) locate IsoFLOP minima with it.
- ``smoothing``: a cubic smoothing spline (scipy ``make_smoothing_spline``). Its
  penalty ``lam`` is chosen by generalized cross-validation unless given, so it
  follows the trend of a noisy curve without passing through every point.

``interpolate_curve(x, loss, method=...)`` returns a ``CurveInterpolant``, callable at
any x inside the observed range; outside it the call refuses, naming x and the range,
unless ``extrapolate=True`` (at construction or per call).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from scipy import interpolate as _si

__all__ = ["CurveInterpolant", "interpolate_curve", "METHODS", "MIN_POINTS"]

# Relative slack on the range check, so the end points themselves always pass.
_RANGE_RTOL = 1e-9


def _linear(u: np.ndarray, v: np.ndarray, **_: object) -> Callable[[np.ndarray], np.ndarray]:
    slope_lo = (v[1] - v[0]) / (u[1] - u[0])
    slope_hi = (v[-1] - v[-2]) / (u[-1] - u[-2])

    def f(q: np.ndarray) -> np.ndarray:
        out = np.interp(q, u, v)
        lo, hi = q < u[0], q > u[-1]
        out[lo] = v[0] + slope_lo * (q[lo] - u[0])
        out[hi] = v[-1] + slope_hi * (q[hi] - u[-1])
        return out

    return f


def _polynomial(u: np.ndarray, v: np.ndarray, *, degree: int = 2, **_: object):
    poly = np.polynomial.Polynomial.fit(u, v, deg=degree)
    return lambda q: poly(q)


def _cubic(u: np.ndarray, v: np.ndarray, **_: object):
    return _si.CubicSpline(u, v, bc_type="not-a-knot", extrapolate=True)


def _pchip(u: np.ndarray, v: np.ndarray, **_: object):
    return _si.PchipInterpolator(u, v, extrapolate=True)


def _akima(u: np.ndarray, v: np.ndarray, **_: object):
    return _si.Akima1DInterpolator(u, v, extrapolate=True)


def _smoothing(u: np.ndarray, v: np.ndarray, *, lam: float | None = None, **_: object):
    return _si.make_smoothing_spline(u, v, lam=lam)


# name -> builder(log x, log loss, **options) -> callable on log x
METHODS: dict[str, Callable[..., Callable[[np.ndarray], np.ndarray]]] = {
    "linear": _linear,
    "polynomial": _polynomial,
    "cubic": _cubic,
    "pchip": _pchip,
    "akima": _akima,
    "smoothing": _smoothing,
}
# Fewest distinct points each method accepts (polynomial: degree + 1).
MIN_POINTS: dict[str, int | None] = {
    "linear": 2,
    "polynomial": None,
    "cubic": 3,
    "pchip": 2,
    "akima": 2,
    "smoothing": 5,
}


@dataclass(frozen=True)
class CurveInterpolant:
    """Loss as a function of x (tokens or FLOPs) for one run, from its evaluation points.

    Call it with a scalar or an array of x; it returns loss of the same shape.
    ``x``/``loss`` hold the (sorted, de-duplicated) points it was built from.
    """

    method: str
    x: np.ndarray
    loss: np.ndarray
    extrapolate: bool
    options: dict = field(default_factory=dict)
    _fn: Callable[[np.ndarray], np.ndarray] | None = field(default=None, repr=False, compare=False)

    @property
    def x_range(self) -> tuple[float, float]:
        return float(self.x[0]), float(self.x[-1])

    def covers(self, x) -> np.ndarray:
        """True where x lies inside the observed range (end points included)."""
        x = np.asarray(x, dtype=float)
        lo, hi = self.x_range
        return (x >= lo * (1 - _RANGE_RTOL)) & (x <= hi * (1 + _RANGE_RTOL))

    def __call__(self, x, *, extrapolate: bool | None = None):
        q = np.asarray(x, dtype=float)
        if np.any(~np.isfinite(q)) or np.any(q <= 0):
            raise ValueError(f"x must be finite and positive; got {x!r}")
        allow = self.extrapolate if extrapolate is None else extrapolate
        if not allow:
            outside = ~self.covers(q)
            if np.any(outside):
                bad = q[outside].ravel()[0]
                lo, hi = self.x_range
                raise ValueError(
                    f"x={bad:.6g} is outside the observed range [{lo:.6g}, {hi:.6g}] of this "
                    f"'{self.method}' interpolant; pass extrapolate=True to extrapolate"
                )
        if self._fn is None:
            raise ValueError("build interpolants with interpolate_curve (this one has no function)")
        out = np.exp(np.asarray(self._fn(np.log(q.ravel())), dtype=float)).reshape(q.shape)
        return float(out) if out.ndim == 0 else out


def _validate(x, loss, duplicates: str) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(x, dtype=float)
    loss = np.asarray(loss, dtype=float)
    if x.ndim != 1 or loss.ndim != 1 or x.shape != loss.shape:
        raise ValueError(f"x and loss must be 1-D arrays of one length; got shapes {x.shape} and {loss.shape}")
    for name, arr in (("x", x), ("loss", loss)):
        bad = ~np.isfinite(arr) | (arr <= 0)
        if np.any(bad):
            raise ValueError(
                f"{name} must be finite and positive (log-log space); {name}[{int(np.argmax(bad))}]={float(arr[bad][0])!r}"
            )
    order = np.argsort(x, kind="stable")
    x, loss = x[order], loss[order]
    ux, inverse, counts = np.unique(x, return_inverse=True, return_counts=True)
    if len(ux) < len(x):
        if duplicates == "error":
            dup = ux[counts > 1][0]
            raise ValueError(f"x has repeated values (e.g. x={dup:.6g}); pass duplicates='mean' to average them")
        if duplicates != "mean":
            raise ValueError(f"duplicates must be 'mean' or 'error', got {duplicates!r}")
        # average in log space, like every other operation here
        loss = np.exp(np.bincount(inverse, weights=np.log(loss)) / counts)
        x = ux
    return x, loss


def interpolate_curve(
    x,
    loss,
    method: str = "linear",
    *,
    extrapolate: bool = False,
    degree: int = 2,
    lam: float | None = None,
    duplicates: str = "mean",
) -> CurveInterpolant:
    """Build a named interpolant of loss(x) in log-log space.

    x: tokens or FLOPs at the evaluation points (positive; any order: they are sorted).
    loss: loss at those points (positive).
    method: one of ``METHODS``.
    extrapolate: allow evaluation outside [min x, max x] by default (per-call override).
    degree: polynomial degree (``polynomial`` only).
    lam: smoothing-spline penalty (``smoothing`` only); None = generalized cross-validation.
    duplicates: repeated x values are averaged (geometric mean of loss) with ``'mean'``,
        rejected with ``'error'``.
    """
    if method not in METHODS:
        raise ValueError(f"unknown interpolation method {method!r}; choose one of {sorted(METHODS)}")
    if method == "polynomial" and (not isinstance(degree, (int, np.integer)) or degree < 1):
        raise ValueError(f"degree must be an integer >= 1, got {degree!r}")
    x, loss = _validate(x, loss, duplicates)
    need = degree + 1 if method == "polynomial" else int(MIN_POINTS[method] or 0)
    if len(x) < need:
        raise ValueError(f"method '{method}' needs at least {need} distinct x values; got {len(x)}")
    options = {"degree": int(degree)} if method == "polynomial" else ({"lam": lam} if method == "smoothing" else {})
    fn = METHODS[method](np.log(x), np.log(loss), **options)
    return CurveInterpolant(method=method, x=x, loss=loss, extrapolate=extrapolate, options=options, _fn=fn)
