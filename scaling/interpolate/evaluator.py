"""Held-out loss of many parameter sets of one run's model, compiled once, synced once.

Built from the trainer's public pieces (`program`, `eval_arrays`, the run's config), so a
loss here is computed by the very compiled `eval_step`, on the very validation batches and
with the same summation order as `scaling.train.evaluate.evaluate` and the trainer's
`eval_loss` column. The difference: `loss_sum` returns a device scalar instead of pulling it
to the host, so a whole interpolation path is dispatched before a single host sync.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any

import jax
from jax.sharding import Mesh

from scaling.train.config import MeshConfig, RunConfig


def resolve_mesh(mesh: Any, cfg: RunConfig) -> Mesh:
    """None: the run's own mesh config on all devices (sharded as in training); a `Mesh`; a
    `MeshConfig`; or (data, fsdp, model) sizes using the first data×fsdp×model devices."""
    from scaling.train.mesh import make_mesh

    if mesh is None:
        return make_mesh(cfg.mesh)
    if isinstance(mesh, Mesh):
        missing = {"data", "fsdp", "model"} - set(mesh.axis_names)
        if missing:
            raise ValueError(f"mesh axes {mesh.axis_names} must be (data, fsdp, model); missing {sorted(missing)}")
        return mesh
    if isinstance(mesh, MeshConfig):
        return make_mesh(mesh)
    if isinstance(mesh, (tuple, list)) and len(mesh) == 3:
        sizes = [int(s) for s in mesh]
        if any(s < 1 for s in sizes):
            raise ValueError(f"mesh sizes {tuple(mesh)} must be positive (data, fsdp, model)")
        n = math.prod(sizes)
        if n > jax.device_count():
            raise ValueError(f"mesh {tuple(sizes)} needs {n} devices but {jax.device_count()} are available")
        return make_mesh(MeshConfig(data=sizes[0], fsdp=sizes[1], model=sizes[2]), jax.devices()[:n])
    raise ValueError(f"mesh={mesh!r}: expected None, a jax Mesh, a MeshConfig or (data, fsdp, model) sizes")


@dataclass(frozen=True, eq=False)
class Evaluator:
    """The compiled program of one run config on one mesh, and its fixed validation batches."""

    cfg: RunConfig
    prog: Any  # scaling.train.step.Program
    batches: list
    bytes_per_token: float

    @property
    def mesh(self) -> Mesh:
        return self.prog.mesh

    @property
    def tokens(self) -> int:
        """Predicted tokens per evaluation (every position of every validation sequence)."""
        t = self.cfg.train
        return t.eval_size * t.eval_batches * self.cfg.model.seq_len

    def place(self, params: dict) -> dict:
        """Put a flat dict on this program's parameter shardings (device to device; a no-op
        for arrays already placed so)."""
        missing = set(self.prog.layout.names) ^ set(params)
        if missing:
            raise ValueError(f"params do not match the run's model; differing names: {sorted(missing)[:5]}")
        return {k: jax.device_put(v, self.prog.param_shardings[k]) for k, v in params.items()}

    def loss_sum(self, params: dict) -> jax.Array:
        """Sum over the validation batches of the per-batch mean loss, as a device scalar
        (the trainer's `eval_loss` before its division, in its order)."""
        total = None
        for b in self.batches:
            loss = self.prog.eval_step(params, b)
            total = loss if total is None else total + loss
        return total

    def losses(self, sums: list) -> list[float]:
        """Host floats (nats per token) of several `loss_sum` results, in one sync."""
        return [float(s) / len(self.batches) for s in jax.device_get(list(sums))]

    def loss(self, params: dict) -> float:
        return self.losses([self.loss_sum(params)])[0]

    def bpb(self, loss: float) -> float | None:
        return loss / math.log(2) / self.bytes_per_token if math.isfinite(loss) else None


def evaluator(cfg: RunConfig, mesh: Mesh) -> Evaluator:
    """The (cached) `Evaluator` of `cfg` on `mesh`; a mesh that cannot split the validation
    batch is an error naming both, before anything compiles."""
    try:
        return _evaluator(cfg, mesh)
    except ValueError as err:
        if "eval_batch_size" not in str(err):
            raise
        raise ValueError(f"{err}; choose another mesh (--mesh D,F,M, or mesh=(data, fsdp, model))") from None


@functools.lru_cache(maxsize=4)
def _evaluator(cfg: RunConfig, mesh: Mesh) -> Evaluator:
    from scaling.data import build_dataset
    from scaling.train.mesh import check_batch
    from scaling.train.step import program
    from scaling.train.trainer import eval_arrays

    t = cfg.train
    check_batch(mesh, t.eval_size, what="train.eval_batch_size")
    # The same program (cache key) as load_params/evaluate build, so nothing compiles twice.
    prog = program(cfg.model, cfg.optimizer, 1, mesh, cfg.mesh.sharding_rules())
    ds = build_dataset(cfg.data.replace(eval_batch_size=t.eval_size, num_eval_batches=t.eval_batches))
    return Evaluator(cfg, prog, eval_arrays(prog, ds, cfg), ds.bytes_per_token)
