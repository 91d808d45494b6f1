"""Checkpoint averaging: the uniform mean of a run's last k checkpoints, or an exponential
moving average over its saved checkpoints, evaluated against the last checkpoint.

    from scaling.interpolate import average
    res = average("runs/tiny", last=4)            # uniform mean of the last 4 saved steps
    res = average("runs/tiny", ema=0.7)           # EMA over every saved step, oldest first
    res.loss, res.last_loss, res.improvement      # nats/token; improvement = last − averaged

Both are one running update, acc ← acc + w·(θ_i − acc), applied on the devices as the
checkpoints are restored one at a time (memory: two copies of the parameters, sharded):
w = 1/i gives the uniform mean, w = 1 − decay the EMA, started at the oldest checkpoint
(so the oldest keeps weight decay^(n−1); the effective weights are reported). The EMA is
per *saved checkpoint*, not per optimizer step: with checkpoints every c steps, a decay d
per checkpoint is d^(1/c) per step. The update is exact for identical checkpoints: the
average of k copies of θ is θ, bit for bit.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


def select_steps(available: list[int], *, last: int | None = None, steps=None, run_dir="run") -> list[int]:
    """Which saved steps to average: `steps` (explicit), the `last` k, or all of them."""
    if last is not None and steps is not None:
        raise ValueError("give either last=K or steps=[...], not both")
    if not available:
        raise FileNotFoundError(f"run {str(run_dir)!r} has no complete checkpoint")
    listed = ", ".join(map(str, available))
    if steps is not None:
        steps = list(steps)
        if not steps:
            raise ValueError("steps=[]: give at least one step")
        bad = [s for s in steps if isinstance(s, bool) or not isinstance(s, (int, np.integer))]
        if bad:
            raise ValueError(f"steps: {bad[0]!r} is not a step number")
        if len(set(steps)) != len(steps):
            raise ValueError(f"steps={steps}: a step is listed twice")
        missing = [s for s in steps if s not in available]
        if missing:
            raise FileNotFoundError(f"step {missing[0]} is not saved in {str(run_dir)!r}; available steps: {listed}")
        return sorted(int(s) for s in steps)
    if last is not None:
        if isinstance(last, bool) or not isinstance(last, (int, np.integer)) or last < 1:
            raise ValueError(f"last={last!r} must be a positive integer")
        if last > len(available):
            raise ValueError(
                f"last={last}, but {str(run_dir)!r} has only {len(available)} checkpoints "
                f"(steps: {listed}); keep more with train.keep or train.keep_eval_checkpoints"
            )
        return available[-last:]
    return list(available)


def check_decay(ema) -> float | None:
    if ema is None:
        return None
    if isinstance(ema, bool) or not isinstance(ema, (int, float)) or not 0 <= ema < 1:
        raise ValueError(f"ema={ema!r}: the decay must be a number in [0, 1)")
    return float(ema)


def weights(n: int, ema: float | None = None) -> list[float]:
    """The effective weight of each of n checkpoints (oldest first) in the average."""
    if ema is None:
        return [1.0 / n] * n
    return [ema ** (n - 1)] + [(1 - ema) * ema ** (n - 1 - i) for i in range(1, n)]


def average_params(params: Iterable[dict], *, ema: float | None = None, toward=None) -> dict:
    """The uniform mean (ema None) or the EMA with decay `ema` of a sequence of flat param
    dicts, oldest first, consumed one at a time. `toward` is a compiled
    (acc, x, w) -> acc + w·(x − acc) that donates acc (default: jitted for any placement)."""
    import jax
    import jax.numpy as jnp

    from scaling.interpolate import ops

    ema = check_decay(ema)
    toward = toward or jax.jit(ops.toward, donate_argnums=0)
    acc = None
    for i, theta in enumerate(params, start=1):
        if acc is None:
            acc = {k: jnp.copy(v) for k, v in theta.items()}  # a buffer of our own, to donate
            continue
        acc = toward(acc, theta, ops.scalar(1.0 / i if ema is None else 1.0 - ema))
    if acc is None:
        raise ValueError("no parameters to average")
    return acc


def _finite(x):
    return x if isinstance(x, (int, float)) and math.isfinite(x) else None


@dataclass
class AverageResult:
    run_dir: str
    method: str  # "uniform" | "ema"
    decay: float | None
    steps: list[int]
    weights: list[float]
    loss: float  # of the averaged parameters, nats/token
    last_step: int
    last_loss: float  # of the last averaged checkpoint
    eval_tokens: int
    mesh: dict
    notes: list[str] = field(default_factory=list)

    @property
    def improvement(self) -> float:
        """last_loss − loss: positive when the average beats the last checkpoint."""
        return self.last_loss - self.loss

    def to_dict(self) -> dict:
        return {
            "run_dir": self.run_dir,
            "method": self.method,
            "decay": self.decay,
            "steps": self.steps,
            "weights": self.weights,
            "loss": _finite(self.loss),
            "last_step": self.last_step,
            "last_loss": _finite(self.last_loss),
            "improvement": _finite(self.improvement),
            "eval_tokens": self.eval_tokens,
            "loss_units": "nats per token",
            "mesh": self.mesh,
            "notes": self.notes,
        }

    def table(self) -> str:
        what = "uniform mean" if self.method == "uniform" else f"EMA (decay {self.decay:g} per checkpoint)"
        steps = ", ".join(map(str, self.steps))
        return "\n".join(
            [
                f"{what} of {len(self.steps)} checkpoints of {self.run_dir}: steps {steps}",
                f"loss: nats/token on {self.eval_tokens} validation tokens",
                f"{'':24}{'loss':>10}",
                f"{'averaged':24}{self.loss:10.5f}",
                f"{f'last (step {self.last_step})':24}{self.last_loss:10.5f}",
                f"improvement {self.improvement:+.5f} nats ({'better' if self.improvement > 0 else 'not better'} "
                "than the last checkpoint)",
            ]
            + [f"note: {n}" for n in self.notes]
        )


def average(
    run_dir: str | Path,
    *,
    last: int | None = None,
    steps=None,
    ema: float | None = None,
    mesh=None,
    return_params: bool = False,
):
    """Average a run's checkpoints and evaluate the result on the run's validation batches.

    last: the last k saved checkpoints; steps: an explicit list; neither: every saved one.
    ema: None for the uniform mean, else the EMA decay per checkpoint, in [0, 1).
    mesh: as in `interpolate` (None = the run's training mesh config on all devices).
    Returns an `AverageResult` (and the averaged flat params if `return_params`).
    """
    from scaling.interpolate.ops import compiled
    from scaling.train import checkpoint_steps, evaluator, load_params, run_config

    ema = check_decay(ema)
    chosen = select_steps(checkpoint_steps(run_dir), last=last, steps=steps, run_dir=run_dir)
    cfg = run_config(run_dir)
    ev = evaluator(cfg, cfg.mesh if mesh is None else mesh)  # None: the run's training mesh
    _, toward, _ = compiled(ev)
    last_sum = []

    def restored():
        for s in chosen:
            theta = ev.place(load_params(run_dir, s, ev.mesh))
            if s == chosen[-1]:
                last_sum.append(ev.loss_sum(theta))
            yield theta

    avg = average_params(restored(), ema=ema, toward=toward)
    loss, last_loss = ev.losses([ev.loss_sum(avg), last_sum[0]])
    res = AverageResult(
        run_dir=str(Path(run_dir).absolute()),
        method="uniform" if ema is None else "ema",
        decay=ema,
        steps=chosen,
        weights=weights(len(chosen), ema),
        loss=loss,
        last_step=chosen[-1],
        last_loss=last_loss,
        eval_tokens=ev.tokens,
        mesh=dict(ev.mesh.shape),
    )
    return (res, avg) if return_params else res
