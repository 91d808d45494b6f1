"""The loss along the straight line between two checkpoints, and its barrier.

    from scaling.interpolate import interpolate
    path = interpolate("runs/tiny@200", "runs/tiny@400", points=21, t_range=(-0.5, 1.5))
    path.t, path.loss, path.barrier          # grid, nats/token, nats

θ(t) = (1 − t)·θ_a + t·θ_b is evaluated on the validation batches of run A (the batches the
trainer evaluates with), with the trainer's compiled eval step, on a mesh with the trainer's
shardings. Every θ(t) is made on the devices by one compiled function of (θ_a, θ_b, t); the
losses of the whole grid are pulled to the host in one sync.

The barrier (Frankle et al. 2020, "linear mode connectivity") is the largest excess of the
loss over the straight line between the endpoint losses, over t in [0, 1]:
    max_t  L(θ(t)) − [(1 − t)·L(θ_a) + t·L(θ_b)].
It is computed on the grid's points inside [0, 1] plus both endpoints (which are always
evaluated, on the grid or not), so it is >= 0 and its resolution is the grid's spacing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from scaling.interpolate.checkpoints import Checkpoint, resolve


def grid(points: int = 11, t_range: tuple[float, float] = (-0.5, 1.5)) -> list[float]:
    """`points` evenly spaced values of t over `t_range` (both ends included)."""
    if isinstance(points, bool) or not isinstance(points, (int, np.integer)) or points < 2:
        raise ValueError(f"points={points!r} must be an integer >= 2")
    try:
        lo, hi = (float(x) for x in t_range)
    except (TypeError, ValueError):
        raise ValueError(f"range={t_range!r} must be two numbers (LO HI)") from None
    if not (math.isfinite(lo) and math.isfinite(hi)) or not lo < hi:
        raise ValueError(f"range=({lo}, {hi}) must be finite with LO < HI")
    return [float(x) for x in np.linspace(lo, hi, int(points))]


def barrier(t, loss, loss_a: float, loss_b: float) -> tuple[float, float]:
    """(barrier, t where it is attained) from losses on a grid; endpoints count with excess 0.

    Non-finite losses inside [0, 1] give an infinite barrier (the path leaves the basin)."""
    best, at = 0.0, 0.0
    for ti, li in zip(t, loss):
        if not 0.0 <= ti <= 1.0:
            continue
        excess = li - ((1 - ti) * loss_a + ti * loss_b) if math.isfinite(li) else math.inf
        if excess > best:
            best, at = excess, ti
    return best, at


def _finite(x):
    return x if isinstance(x, (int, float)) and math.isfinite(x) else None


@dataclass
class PathResult:
    """The loss along θ(t) = (1 − t)·θ_a + t·θ_b on a grid of t, with provenance."""

    a: Checkpoint
    b: Checkpoint
    t: list[float]
    loss: list[float]  # nats per token, on run A's validation batches
    bpb: list[float | None]
    loss_a: float  # at t = 0 exactly
    loss_b: float  # at t = 1 exactly
    barrier: float
    barrier_t: float
    eval_tokens: int
    eval_run: str
    mesh: dict
    params: int
    distance: float  # ‖θ_b − θ_a‖₂
    norm_a: float
    norm_b: float
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        """The JSON written by `scaling interpolate --json` (non-finite numbers as null)."""
        return {
            "t": self.t,
            "loss": [_finite(x) for x in self.loss],
            "bpb": [_finite(x) for x in self.bpb],
            "barrier": _finite(self.barrier),
            "barrier_t": self.barrier_t,
            "loss_a": _finite(self.loss_a),
            "loss_b": _finite(self.loss_b),
            "checkpoint_a": {"spec": str(self.a), **self.a.to_dict()},
            "checkpoint_b": {"spec": str(self.b), **self.b.to_dict()},
            "step_a": self.a.step,
            "step_b": self.b.step,
            "eval_tokens": self.eval_tokens,
            "eval_run": self.eval_run,
            "loss_units": "nats per token",
            "mesh": self.mesh,
            "params": self.params,
            "distance": self.distance,
            "norm_a": self.norm_a,
            "norm_b": self.norm_b,
            "notes": self.notes,
        }

    def table(self) -> str:
        """The grid (with the endpoints, marked, where the grid misses them) and the barrier."""
        rows = sorted({**dict(zip(self.t, self.loss)), 0.0: self.loss_a, 1.0: self.loss_b}.items())
        mark = {0.0: "  (a)", 1.0: "  (b)"}
        lines = [
            f"θ(t) = (1 − t)·θ_a + t·θ_b    a = {self.a}    b = {self.b}",
            f"loss: nats/token on {self.eval_tokens} validation tokens of {self.eval_run}",
            f"{'t':>8}  {'loss':>10}",
        ]
        lines += [f"{t:8.3f}  {loss:10.5f}{mark.get(t, '')}" for t, loss in rows]
        lines.append(
            f"barrier {self.barrier:.5f} nats at t = {self.barrier_t:.3f} "
            "(max over t in [0, 1] of the loss above the straight line between the endpoints)"
        )
        rel = self.distance / self.norm_a if self.norm_a else math.nan
        lines.append(f"‖θ_b − θ_a‖ = {self.distance:.4g} ({rel:.3%} of ‖θ_a‖), {self.params:,} parameters")
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)


def path_losses(ev, theta_a: dict, theta_b: dict, ts) -> list[float]:
    """Loss (nats/token) at θ(t) = (1 − t)·θ_a + t·θ_b for each t, with `ev` (a
    `scaling.train.Evaluator`); θ_a, θ_b are flat dicts placed on its shardings (`ev.place`).

    Each θ(t) is made on the devices by one compiled function of (θ_a, θ_b, t); at most two
    are alive at once, and the losses come to the host in one sync at the end."""
    from scaling.interpolate.ops import compiled, scalar

    lerp = compiled(ev)[0]
    sums = []
    for t in ts:
        sums.append(ev.loss_sum(lerp(theta_a, theta_b, scalar(t))))
        if len(sums) >= 2:  # bound memory to two θ(t), the device never idle
            sums[-2].block_until_ready()
    return ev.losses(sums)


def interpolate(
    a, b, ts=None, *, points: int = 11, t_range: tuple[float, float] = (-0.5, 1.5), mesh=None
) -> PathResult:
    """The held-out loss along the straight line from checkpoint `a` to checkpoint `b`.

    a, b: "RUN_DIR@STEP" (or "RUN_DIR" for the latest), (run_dir, step) or `Checkpoint`.
    ts: the values of t (any order, outside [0, 1] allowed); default `grid(points, t_range)`.
    mesh: None = run A's training mesh config on all devices; a Mesh, a MeshConfig, or
        (data, fsdp, model) sizes.
    Errors (missing run or step, different architectures, bad grid) are raised before
    anything is loaded or compiled.
    """
    from scaling.interpolate.compat import check_same_architecture
    from scaling.interpolate.ops import compiled
    from scaling.train import evaluator, load_params, run_config

    ts = grid(points, t_range) if ts is None else [float(x) for x in ts]
    if not ts or not all(math.isfinite(x) for x in ts):
        raise ValueError(f"t values {ts!r} must be a non-empty list of finite numbers")
    a, b = resolve(a), resolve(b)
    cfg_a, cfg_b = run_config(a.run_dir), run_config(b.run_dir)
    check_same_architecture(cfg_a.model, cfg_b.model, names=(str(a), str(b)))
    notes = []
    if cfg_a.data != cfg_b.data:
        notes.append(f"the runs' data configs differ; every point is evaluated on {a.run_dir}'s validation batches")
    ev = evaluator(cfg_a, cfg_a.mesh if mesh is None else mesh)  # None: run A's training mesh
    theta_a = ev.place(load_params(a.run_dir, a.step, ev.mesh))
    theta_b = ev.place(load_params(b.run_dir, b.step, ev.mesh))
    todo = list(dict.fromkeys(ts + [0.0, 1.0]))  # the grid, then the endpoints if missing
    losses = dict(zip(todo, path_losses(ev, theta_a, theta_b, todo)))
    distance, norm_a, norm_b = (float(x) for x in compiled(ev)[2](theta_a, theta_b))
    loss = [losses[t] for t in ts]
    value, at = barrier(todo, [losses[t] for t in todo], losses[0.0], losses[1.0])
    return PathResult(
        a=a,
        b=b,
        t=ts,
        loss=loss,
        bpb=[ev.bpb(x) for x in loss],
        loss_a=losses[0.0],
        loss_b=losses[1.0],
        barrier=value,
        barrier_t=at,
        eval_tokens=ev.tokens,
        eval_run=str(a.run_dir),
        mesh=dict(ev.mesh.shape),
        params=ev.param_count,
        distance=distance,
        norm_a=norm_a,
        norm_b=norm_b,
        notes=notes,
    )
