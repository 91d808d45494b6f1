"""The fitting engine: data as arrays, the robust objective, starting points, and a
batched L-BFGS that minimises many independent problems in one jitted computation.

Everything the fitters (``fit.py``, ``uncertainty.py``, ``varpro.py``) share lives here,
under public names, so that no module reaches into another's private helpers.

Objective (Hoffmann et al. 2022; Besiroglu et al. 2024): the Huber loss (delta, default
1e-3) of the log residuals r_i = log L̂(x_i) - log L_i, **summed** over points with
multiplicity weights (which is how a bootstrap resample enters). Point counts are
padded with zero-weight points to a ladder of sizes, so data sets of similar size
share compiled programs.

Batched L-BFGS: each *lane* is one minimisation (one start, or one bootstrap
resample). The loop is a ``lax.while_loop`` in which every pass evaluates the objective
and its gradient exactly once for all lanes; each lane's line search is a small state
machine advanced by that one evaluation (bracketing with expansion, then safeguarded
quadratic interpolation, until the weak Wolfe conditions hold). So no lane waits inside
a nested loop for another, and vmapped work is never wasted on nested control flow.

A lane stops when the largest absolute gradient component is <= gtol ("converged"),
after max_iter iterations, or when its line search cannot make progress at machine
precision. Relative-reduction rules are deliberately absent: with objectives near
1e-3 they stop far too early (benchmarks/results/fit_speed_notes.md).

``minimize`` drives the loop in chunks and *compacts* the batch as lanes finish: the
still-running lanes are gathered into a smaller batch (16, 128 or 1,024 lanes, or a
multiple of LANE_BLOCK), so the long tail of slow starts costs little while few
distinct shapes need compiling. Results come back in the original lane order.

Bounds: the L-BFGS itself is unconstrained, so a lower bound on some fit coordinates
(``lower``: one bound or None per coordinate, e.g. exponents >= 0) is a change of
variables, theta = lo + softplus(u): ``value_and_grad(law, delta, lower)`` takes u and
chains the gradient, ``free_coordinates`` / ``bounded_coordinates`` map between theta
and u, ``bounded_starts`` moves starts at or below a bound just inside it. Above the
bound by more than ~1 the map is nearly the identity; at the bound the gradient in u
vanishes like exp(u), so a lane whose optimum lies on the bound converges there.

Call the JAX-facing functions inside ``jax.enable_x64(True)`` for float64 (``objective``
and ``hessian`` enter it themselves); nothing here changes JAX's process-wide default.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any, NamedTuple

import numpy as np

from .laws import Law, get_law
from .table import as_table

__all__ = [
    "CONVERGED",
    "DEFAULT_DELTA",
    "DEFAULT_GTOL",
    "LANE_BLOCK",
    "MAX_ITER",
    "MinimizeResult",
    "PRUNED",
    "Points",
    "RUNNING",
    "STALLED",
    "STATUS_NAMES",
    "START_MARGIN",
    "as_points",
    "bounded_coordinates",
    "bounded_starts",
    "free_coordinates",
    "hessian",
    "huber",
    "lane_weights",
    "minimize",
    "objective",
    "padded_size",
    "shared_arrays",
    "start_points",
    "value_and_grad",
]

DEFAULT_DELTA = 1e-3
DEFAULT_GTOL = 1e-10  # largest |gradient component| at a converged start
# Lanes per block: value_and_grad maps large batches in blocks of this many lanes, and
# minimize pads batches above it to a multiple of it.
LANE_BLOCK = 512


# ---------------------------------------------------------------------------------------
# Data as arrays


@dataclass(frozen=True)
class Points:
    """log inputs (n, n_inputs), log loss (n,), and optional group labels (n,)."""

    logx: np.ndarray
    logy: np.ndarray
    groups: np.ndarray | None = None

    @property
    def n(self) -> int:
        return len(self.logy)


def as_points(data, law: Law, *, min_points: bool = True) -> Points:
    """Canonical table (or anything ``as_table`` takes) -> Points for this law."""
    if isinstance(data, Points):
        pts = data
    else:
        df = as_table(data)
        missing = [c for c in law.inputs if c not in df.columns]
        if missing:
            hint = (
                " (unique_tokens: the distinct tokens each run saw; "
                "scaling.analysis.data_constrained.with_unique_tokens derives it from an 'epochs' column)"
                if "unique_tokens" in missing
                else ""
            )
            raise ValueError(
                f"law {law.name!r} needs the column(s) {missing}{hint}; the table has columns {list(df.columns)}"
            )
        groups = df["run_id"].to_numpy() if "run_id" in df.columns else None
        logx = np.stack([np.log(df[c].to_numpy(float)) for c in law.inputs], axis=-1)
        pts = Points(logx=logx, logy=np.log(df["loss"].to_numpy(float)), groups=groups)
    if min_points and pts.n < law.n_params:
        raise ValueError(
            f"law {law.name!r} has {law.n_params} parameters {list(law.params)} but the data has only {pts.n} points"
        )
    return pts


def padded_size(n: int) -> int:
    """Point counts are padded (zero weight) to a ladder of sizes ~1.19x apart (multiples
    of 8), so data sets of similar size share compiled programs."""
    size = 16
    while size < n:
        size = int(np.ceil(size * 1.19 / 8) * 8)
    return size


def shared_arrays(pts: Points) -> dict:
    """{"logx", "logy"}: log inputs and log losses padded to padded_size(n) points (whose
    weights are 0); the part of the objective every lane shares."""
    import jax.numpy as jnp

    pad = padded_size(pts.n) - pts.n
    return {"logx": jnp.asarray(np.pad(pts.logx, ((0, pad), (0, 0)))), "logy": jnp.asarray(np.pad(pts.logy, (0, pad)))}


def lane_weights(pts: Points, W, lanes: int | None = None) -> np.ndarray:
    """Per-lane point weights (lanes, padded n): W (R, n) rows padded with zero-weight
    points; with ``lanes``, one weight vector (n,) repeated for every lane."""
    W = np.atleast_2d(np.asarray(W, dtype=float))
    W = np.pad(W, ((0, 0), (0, padded_size(pts.n) - pts.n)))
    return np.broadcast_to(W, (lanes, W.shape[1])) if lanes is not None else W


def start_points(law: Law, grid=None) -> np.ndarray:
    """(S, P) starts in fit coordinates: the law's grid, a mapping fit name -> values
    (Cartesian product), or an (S, P) array as given."""
    if grid is None or isinstance(grid, Mapping):
        return law.start_grid(grid)
    starts = np.atleast_2d(np.asarray(grid, dtype=float))
    if starts.shape[-1] != law.n_params:
        raise ValueError(f"starting points must have {law.n_params} columns {list(law.fit_names)}; got {starts.shape}")
    return starts


# ---------------------------------------------------------------------------------------
# Lower bounds as a change of variables, theta = lo + softplus(u)

START_MARGIN = 0.05  # a start at or below a bound moves this far inside it


def _bound_arrays(lower) -> tuple[np.ndarray, np.ndarray]:
    mask = np.array([lo is not None for lo in lower])
    return mask, np.array([0.0 if lo is None else float(lo) for lo in lower])


def free_coordinates(theta, lower) -> np.ndarray:
    """Fit coordinates theta (..., P) -> the free coordinates u that the bounded
    objective takes (u = softplus^-1(theta - lo) on bounded coordinates; a value on or
    below its bound maps to a very negative u, i.e. to the bound itself)."""
    theta = np.asarray(theta, dtype=float)
    if lower is None:
        return theta
    mask, lo = _bound_arrays(lower)
    x = np.maximum(theta - lo, 1e-300)
    with np.errstate(divide="ignore"):
        u = x + np.log(-np.expm1(-x))  # softplus^-1, stable for small and large x
    return np.where(mask, u, theta)


def bounded_coordinates(u, lower) -> np.ndarray:
    """Free coordinates u (..., P) -> fit coordinates theta (inverse of free_coordinates)."""
    u = np.asarray(u, dtype=float)
    if lower is None:
        return u
    mask, lo = _bound_arrays(lower)
    return np.where(mask, lo + np.logaddexp(0.0, u), u)


def bounded_starts(starts, lower) -> np.ndarray:
    """Starts (S, P) with every bounded coordinate at or below its bound moved to
    bound + START_MARGIN (duplicates that creates are dropped, order kept)."""
    starts = np.asarray(starts, dtype=float)
    if lower is None:
        return starts
    mask, lo = _bound_arrays(lower)
    moved = np.where(mask & (starts <= lo + 0.5 * START_MARGIN), lo + START_MARGIN, starts)
    _, first = np.unique(moved, axis=0, return_index=True)
    return moved[np.sort(first)]


# ---------------------------------------------------------------------------------------
# The objective


def huber(r, delta):
    """Huber loss of residuals r (jnp): quadratic within delta, linear beyond."""
    import jax.numpy as jnp

    a = jnp.abs(r)
    return jnp.where(a <= delta, 0.5 * r * r, delta * (a - 0.5 * delta))


@cache
def value_and_grad(law: Law, delta: float, lower: tuple | None = None):
    """vg(theta (B,P), lane, shared) -> (objective (B,), gradient (B,P)) for ``minimize``.

    lower: None, or one lower bound (or None) per fit coordinate: vg then takes the free
    coordinates u of ``free_coordinates`` and returns the gradient in u.

    lane: {"w": (B, n)} each lane's point weights (ones for a plain fit, multiplicities
    for a bootstrap resample; see lane_weights); shared: shared_arrays(pts).
    One program serves fits and bootstraps alike, so they share compilations.
    Per point, jax.value_and_grad of the law's log prediction gives r_i and dr_i/dtheta;
    the gradient is then sum_i w_i psi(r_i) dr_i/dtheta with psi = clip(r, -delta, delta).
    """
    import jax
    import jax.numpy as jnp

    point_vg = jax.vmap(jax.value_and_grad(law.log_loss_vec), in_axes=(None, 0))

    def one(theta, w, logx, logy):
        lp, J = point_vg(theta, logx)
        r = lp - logy
        psi = jnp.clip(r, -delta, delta) * w
        return jnp.dot(huber(r, delta), w), psi @ J

    def block(theta, w, shared):
        return jax.vmap(one, in_axes=(0, 0, None, None))(theta, w, shared["logx"], shared["logy"])

    def vg(theta, lane, shared):
        # Large batches go through lax.map in blocks of LANE_BLOCK lanes, so each block's
        # per-point temporaries stay in cache (about 1.5x faster per lane than one big vmap).
        B, P = theta.shape
        w = lane["w"]
        if B <= LANE_BLOCK or B % LANE_BLOCK:
            return block(theta, w, shared)
        nb = B // LANE_BLOCK
        f, g = jax.lax.map(
            lambda a: block(a[0], a[1], shared), (theta.reshape(nb, LANE_BLOCK, P), w.reshape(nb, LANE_BLOCK, -1))
        )
        return f.reshape(B), g.reshape(B, P)

    if lower is None:
        return vg
    mask, lo = _bound_arrays(lower)

    def bounded_vg(u, lane, shared):
        f, g = vg(jnp.where(mask, lo + jax.nn.softplus(u), u), lane, shared)
        return f, g * jnp.where(mask, jax.nn.sigmoid(u), 1.0)

    return bounded_vg


@cache
def _jitted_vg(law: Law, delta: float):
    import jax

    return jax.jit(value_and_grad(law, delta))


def objective(law, theta, data, *, delta: float = DEFAULT_DELTA, weights=None) -> np.ndarray:
    """Summed Huber objective at fit-coordinate parameters theta (P,) or (B, P)."""
    import jax
    import jax.numpy as jnp

    law = get_law(law)
    pts = as_points(data, law, min_points=False)
    theta = np.atleast_2d(np.asarray(theta, dtype=float))
    w = np.ones(pts.n) if weights is None else np.asarray(weights, dtype=float)
    with jax.enable_x64(True):
        lane = {"w": jnp.asarray(lane_weights(pts, w, len(theta)))}
        f, _ = _jitted_vg(law, float(delta))(jnp.asarray(theta), lane, shared_arrays(pts))
        return np.asarray(f)


@cache
def _hessian_fn(law: Law, delta: float):
    import jax
    import jax.numpy as jnp

    def f(theta, logx, logy, w):
        lp = jax.vmap(law.log_loss_vec, in_axes=(None, 0))(theta, logx)
        return jnp.dot(huber(lp - logy, delta), w)

    return jax.jit(jax.hessian(f))


def hessian(law: Law, delta: float, theta, pts: Points, w=None) -> np.ndarray:
    """(P, P) Hessian of the objective at theta (fit coordinates), weights w (n,)."""
    import jax

    w = np.ones(pts.n) if w is None else np.asarray(w, dtype=float)
    with jax.enable_x64(True):
        sh = shared_arrays(pts)
        H = _hessian_fn(law, float(delta))(
            np.asarray(theta, dtype=float), sh["logx"], sh["logy"], lane_weights(pts, w)[0]
        )
        return np.asarray(H)


# ---------------------------------------------------------------------------------------
# Batched L-BFGS

RUNNING, CONVERGED, MAX_ITER, STALLED, PRUNED = 0, 1, 2, 3, 4
STATUS_NAMES = {RUNNING: "running", CONVERGED: "converged", MAX_ITER: "max_iter", STALLED: "stalled", PRUNED: "pruned"}


class State(NamedTuple):
    x: Any  # (B, P) current iterate
    f: Any  # (B,)
    g: Any  # (B, P)
    S: Any  # (B, m, P) step memory, newest last
    Y: Any  # (B, m, P) gradient-change memory
    n_mem: Any  # (B,) pairs stored
    d: Any  # (B, P) search direction
    gd0: Any  # (B,) g·d at the start of the line search
    t: Any  # (B,) trial step
    t_lo: Any  # (B,) largest step known to satisfy Armijo (0 at first)
    f_lo: Any
    gd_lo: Any
    g_lo: Any  # (B, P)
    t_hi: Any  # (B,) smallest step known to fail Armijo (inf: none yet)
    f_hi: Any
    n_ls: Any  # (B,) evaluations in the current line search
    n_iter: Any  # (B,) accepted steps
    n_eval: Any  # (B,) objective evaluations
    status: Any  # (B,) int


def _dot(a, b):
    return (a * b).sum(-1)


def _direction(g, S, Y, n_mem):
    """Two-loop recursion, batched; memory slots with index >= m - n_mem are valid.
    Written with lax.scan (not unrolled) to keep the compiled program small."""
    import jax
    import jax.numpy as jnp

    m = S.shape[1]
    valid = jnp.arange(m)[None, :] >= (m - n_mem)[:, None]  # (B, m)
    sy = _dot(S, Y)
    rho = jnp.where(valid & (sy > 0), 1.0 / jnp.where(sy > 0, sy, 1.0), 0.0)
    Sm, Ym, rhom = jnp.moveaxis(S, 1, 0), jnp.moveaxis(Y, 1, 0), rho.T  # slot-major

    def backward(q, slot):
        s, y, r = slot
        a = r * _dot(s, q)
        return q - a[:, None] * y, a

    q, alphas = jax.lax.scan(backward, g, (Sm, Ym, rhom), reverse=True)
    yy = _dot(Y[:, -1], Y[:, -1])
    gamma = jnp.where(n_mem > 0, sy[:, -1] / jnp.where(yy > 0, yy, 1.0), 1.0)

    def forward(r, slot):
        s, y, rh, a = slot
        b = rh * _dot(y, r)
        return r + (a - b)[:, None] * s, None

    r, _ = jax.lax.scan(forward, gamma[:, None] * q, (Sm, Ym, rhom, alphas))
    return -r


def _new_search(g, S, Y, n_mem):
    """Direction and first trial step for a new line search (steepest descent if not a descent direction)."""
    import jax.numpy as jnp

    d = _direction(g, S, Y, n_mem)
    gd = _dot(g, d)
    bad = ~(gd < 0) | ~jnp.all(jnp.isfinite(d), axis=-1)
    d = jnp.where(bad[:, None], -g, d)
    n_mem = jnp.where(bad, 0, n_mem)
    gd = _dot(g, d)
    gnorm = jnp.sqrt(_dot(g, g))
    # Without curvature memory, scale the first step to unit length (as L-BFGS-B does).
    t0 = jnp.where(n_mem > 0, 1.0, jnp.minimum(1.0, 1.0 / jnp.where(gnorm > 0, gnorm, 1.0)))
    return d, gd, t0, n_mem


def _initial_state(x0: np.ndarray, idle: np.ndarray) -> State:
    """A state whose first loop pass evaluates f and g at x0 itself: the trial step is 0
    and the "current" objective +inf, so that pass is accepted as the first iterate
    (no curvature pair is stored, as s = 0). This needs no separately compiled init."""
    import jax.numpy as jnp

    B, P = x0.shape
    m = _MEMORY
    zeros, izeros = np.zeros(B), np.zeros(B, np.int32)
    state = State(
        x=x0,
        f=zeros + np.inf,
        g=np.zeros((B, P)),
        S=np.zeros((B, m, P)),
        Y=np.zeros((B, m, P)),
        n_mem=izeros,
        d=np.zeros((B, P)),
        gd0=zeros - 1.0,
        t=zeros,
        t_lo=zeros,
        f_lo=zeros + np.inf,
        gd_lo=zeros - 1.0,
        g_lo=np.zeros((B, P)),
        t_hi=zeros + np.inf,
        f_hi=zeros + np.inf,
        n_ls=izeros,
        n_iter=izeros - 1,
        n_eval=izeros,
        status=np.where(idle, MAX_ITER, RUNNING).astype(np.int32),
    )
    return State(*(jnp.asarray(a) for a in state))


_MEMORY = 10  # L-BFGS memory, as scipy's L-BFGS-B default
_C1, _C2 = 1e-4, 0.9  # weak Wolfe constants
_MAX_LS = 30  # evaluations per line search before giving up on it
_EPS_F = 1e-10  # relative objective noise tolerated by the approximate Wolfe test
_EXPAND = 4.0


def _step(vg, s: State, lane, shared, gtol, max_iter) -> State:
    """One evaluation for every lane: advance each lane's line search, maybe accept a step."""
    import jax.numpy as jnp

    active = s.status == RUNNING
    xt = s.x + s.t[:, None] * s.d
    ft, gt = vg(xt, lane, shared)
    finite = jnp.isfinite(ft) & jnp.all(jnp.isfinite(gt), axis=-1)
    ft = jnp.where(finite, ft, jnp.inf)
    dt = jnp.where(finite, _dot(gt, s.d), 0.0)
    # Armijo, or near machine precision (where f differences are rounding noise) the
    # approximate Wolfe test of Hager & Zhang: f barely above f0 and the slope says the
    # step has not overshot the minimum along d.
    armijo = finite & (
        (ft <= s.f + _C1 * s.t * s.gd0) | ((ft <= s.f + _EPS_F * jnp.abs(s.f)) & (dt <= (2 * _C1 - 1) * s.gd0))
    )
    wolfe = armijo & (dt >= _C2 * s.gd0)

    # Bracket update.
    lo_up = armijo & ~wolfe
    t_lo = jnp.where(lo_up, s.t, s.t_lo)
    f_lo = jnp.where(lo_up, ft, s.f_lo)
    gd_lo = jnp.where(lo_up, dt, s.gd_lo)
    g_lo = jnp.where(lo_up[:, None], gt, s.g_lo)
    hi_up = ~armijo
    t_hi = jnp.where(hi_up, s.t, s.t_hi)
    f_hi = jnp.where(hi_up, ft, s.f_hi)
    n_ls = s.n_ls + 1

    # Next trial: expand while no upper bracket, else interpolate (quadratic from the
    # lower end's value and slope and the upper end's value), kept 10% inside.
    width = t_hi - t_lo
    denom = 2.0 * (f_hi - f_lo - gd_lo * width)
    t_quad = t_lo - gd_lo * width * width / jnp.where(denom > 0, denom, 1.0)
    t_quad = jnp.where((denom > 0) & jnp.isfinite(f_hi), t_quad, t_lo + 0.1 * width)
    t_quad = jnp.clip(t_quad, t_lo + 0.1 * width, t_hi - 0.1 * width)
    t_next = jnp.where(jnp.isfinite(t_hi), t_quad, _EXPAND * jnp.maximum(s.t, t_lo))

    # Accept the Wolfe point, or (search exhausted or bracket collapsed) the best Armijo point.
    scale = 1.0 + jnp.max(jnp.abs(s.x), axis=-1)
    dmax = jnp.max(jnp.abs(s.d), axis=-1)
    collapsed = jnp.isfinite(t_hi) & (width * dmax <= 1e-15 * scale)
    give_up = (n_ls >= _MAX_LS) | collapsed
    take_lo = ~wolfe & give_up & (t_lo > 0)
    take = (wolfe | take_lo) & active
    stalled = ~wolfe & give_up & ~(t_lo > 0) & active

    x_new = jnp.where(wolfe[:, None], xt, s.x + t_lo[:, None] * s.d)
    f_new = jnp.where(wolfe, ft, f_lo)
    g_new = jnp.where(wolfe[:, None], gt, g_lo)
    sv = x_new - s.x
    yv = g_new - s.g
    sy = _dot(sv, yv)
    store = take & (sy > 1e-12 * jnp.sqrt(_dot(sv, sv) * _dot(yv, yv)))
    S = jnp.where(store[:, None, None], jnp.concatenate([s.S[:, 1:], sv[:, None]], axis=1), s.S)
    Y = jnp.where(store[:, None, None], jnp.concatenate([s.Y[:, 1:], yv[:, None]], axis=1), s.Y)
    n_mem = jnp.where(store, jnp.minimum(s.n_mem + 1, S.shape[1]), s.n_mem)

    x = jnp.where(take[:, None], x_new, s.x)
    f = jnp.where(take, f_new, s.f)
    g = jnp.where(take[:, None], g_new, s.g)
    n_iter = s.n_iter + take.astype(jnp.int32)
    d_new, gd_new, t0, n_mem_new = _new_search(g, S, Y, n_mem)

    converged = take & (jnp.max(jnp.abs(g), axis=-1) <= gtol)
    status = jnp.where(converged, CONVERGED, s.status)
    status = jnp.where(take & ~converged & (n_iter >= max_iter), MAX_ITER, status)
    status = jnp.where(stalled, STALLED, status).astype(jnp.int32)

    def pick(new_search_value, continuing_value):
        cond = take if jnp.ndim(new_search_value) == 1 else take[:, None]
        return jnp.where(cond, new_search_value, continuing_value)

    keep = lambda new, old: jnp.where(active if jnp.ndim(new) == 1 else active[:, None], new, old)  # noqa: E731
    return State(
        x=x,
        f=f,
        g=g,
        S=S,
        Y=Y,
        n_mem=keep(pick(n_mem_new, n_mem), s.n_mem),
        d=keep(pick(d_new, s.d), s.d),
        gd0=keep(pick(gd_new, s.gd0), s.gd0),
        t=keep(pick(t0, t_next), s.t),
        t_lo=keep(pick(jnp.zeros_like(t_lo), t_lo), s.t_lo),
        f_lo=keep(pick(f, f_lo), s.f_lo),
        gd_lo=keep(pick(gd_new, gd_lo), s.gd_lo),
        g_lo=keep(pick(g, g_lo), s.g_lo),
        t_hi=keep(pick(jnp.full_like(t_hi, jnp.inf), t_hi), s.t_hi),
        f_hi=keep(pick(jnp.full_like(f_hi, jnp.inf), f_hi), s.f_hi),
        n_ls=keep(pick(jnp.zeros_like(n_ls), n_ls), s.n_ls),
        n_iter=n_iter,
        n_eval=s.n_eval + active.astype(jnp.int32),
        status=status,
    )


@cache
def _compiled(vg: Callable, gtol: float):
    import jax
    import jax.numpy as jnp

    def run(state, lane, shared, n_steps, max_iter):
        def cond(c):
            i, s = c
            return (i < n_steps) & jnp.any(s.status == RUNNING)

        def body(c):
            i, s = c
            return i + 1, _step(vg, s, lane, shared, gtol, max_iter)

        return jax.lax.while_loop(cond, body, (jnp.int32(0), state))[1]

    return jax.jit(run)


_LADDER = (16, 128, 1024)  # batch sizes up to 1024: few distinct shapes, so few compilations


def _padded(n: int) -> int:
    """Batch size for n lanes: the next ladder size up to 1024, else a multiple of LANE_BLOCK."""
    for size in _LADDER:
        if n <= size:
            return size
    return -(-n // LANE_BLOCK) * LANE_BLOCK


def _bucket(n: int, current: int) -> int:
    """Compaction target for n running lanes (never above the current size)."""
    return min(_padded(n), current)


class MinimizeResult(NamedTuple):
    x: np.ndarray  # (L, P) end points
    f: np.ndarray  # (L,)
    g: np.ndarray  # (L, P)
    n_iter: np.ndarray
    n_eval: np.ndarray
    status: np.ndarray  # see STATUS_NAMES


def _take(tree, rows):
    import jax
    import jax.numpy as jnp

    r = jnp.asarray(rows)
    return jax.tree_util.tree_map(lambda a: a[r], tree)


def _gather(state, lane, pick: np.ndarray, size: int):
    """Rows ``pick`` of the batch, padded to ``size`` rows with idle copies of the first."""
    import jax.numpy as jnp

    n = len(pick)
    full = np.concatenate([pick, np.full(size - n, pick[0])])
    state = _take(state, full)
    if size > n:
        # padding rows copy a real lane: mark them finished so they idle
        state = state._replace(status=jnp.where(jnp.asarray(np.arange(size) >= n), MAX_ITER, state.status))
    return state, _take(lane, full)


def minimize(
    vg: Callable,
    x0,
    lane=None,
    shared=None,
    *,
    gtol: float = 1e-10,
    max_iter: int = 1000,
    prune=None,
    group_size: int | None = None,
    chunk: int = 40,
) -> MinimizeResult:
    """Minimise L independent problems from starts x0 (L, P).

    vg(x, lane, shared) -> (f (B,), g (B, P)) evaluates a batch of B lanes; lane is a
    pytree of per-lane arrays (leading axis L, gathered along with x when the batch is
    compacted), shared a pytree passed as is. vg must be a stable object (it keys the
    compilation cache). Call inside ``jax.enable_x64(True)`` for float64.

    Pruning (successive halving): prune = ((e1, k1), (e2, k2), ...) with e increasing
    and k decreasing. Lanes form consecutive groups of group_size (default: all L).
    Every lane runs until it has had e1 objective evaluations; then only the k1 lanes
    of each group with the lowest objective go on, their L-BFGS state intact, until e2;
    and so on; the last survivors run to convergence. Dropped lanes are returned as
    they were, with status PRUNED (unless they had already stopped).

    Returns numpy arrays in the original lane order.
    """
    import jax.numpy as jnp

    run = _compiled(vg, float(gtol))
    x0 = np.asarray(x0, dtype=float)
    L = x0.shape[0]
    lane = {} if lane is None else lane
    shared = {} if shared is None else shared
    gs = L if group_size is None else int(group_size)
    if L % gs:
        raise ValueError(f"{L} lanes do not split into groups of {gs}")
    size = _padded(L)
    pick = np.concatenate([np.arange(L), np.zeros(size - L, int)])
    lane = _take(lane, pick)
    state = _initial_state(x0[pick], np.arange(size) >= L)
    out = {
        k: np.empty((L,) + np.shape(getattr(state, k))[1:], dtype=np.asarray(getattr(state, k)).dtype)
        for k in MinimizeResult._fields
    }
    rows = np.arange(L)  # original lane of each real batch row (the first n_real rows are real)
    n_real = L

    def write_back(which):
        host = {k: np.asarray(getattr(state, k))[:n_real] for k in MinimizeResult._fields}
        for k in MinimizeResult._fields:
            out[k][rows[which]] = host[k][which]

    done_evals = 0
    for evals, keep in prune or ():
        if keep >= gs:
            continue
        if evals > done_evals:
            state = run(state, lane, shared, jnp.int32(evals - done_evals), jnp.int32(max_iter))
            done_evals = evals
        f = np.asarray(state.f)[:n_real].reshape(-1, gs)
        f = np.where(np.isfinite(f), f, np.inf)
        best = np.argsort(f, axis=1, kind="stable")[:, :keep]
        sel = np.sort((best + gs * np.arange(len(f))[:, None]).ravel())
        dropped = np.ones(n_real, bool)
        dropped[sel] = False
        write_back(dropped)
        still = np.asarray(state.status)[:n_real][dropped] == RUNNING
        out["status"][rows[dropped][still]] = PRUNED
        state, lane = _gather(state, lane, sel, _padded(len(sel)))
        rows, n_real, gs = rows[sel], len(sel), keep

    while True:
        state = run(state, lane, shared, jnp.int32(chunk), jnp.int32(max_iter))
        running = np.asarray(state.status)[:n_real] == RUNNING
        n_run = int(running.sum())
        size = state.x.shape[0]
        if n_run == 0:
            write_back(np.ones(n_real, bool))
            break
        if _bucket(n_run, size) * 4 <= size:
            write_back(~running)
            live = np.nonzero(running)[0]
            state, lane = _gather(state, lane, live, _bucket(n_run, size))
            rows, n_real = rows[live], n_run
    return MinimizeResult(**out)
