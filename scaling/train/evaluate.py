"""The public evaluation API: a run directory read back, and the held-out loss of any
parameters of its model, computed exactly as the trainer computes its `eval_loss`.

    from scaling.train import evaluate, evaluator, load_params
    params = load_params("runs/a", step=1000)      # flat {"blocks.0.attn.q": Array, ...}
    evaluate("runs/a", params)                      # {"eval_loss", "eval_ppl", "eval_bpb"}

    ev = evaluator("runs/a", mesh=(1, 2, 4))        # compiled once per (config, mesh), cached
    a, b = ev.place(load_params("runs/a", 500, ev.mesh)), ev.place(params)
    sums = [ev.loss_sum({k: (1 - t) * a[k] + t * b[k] for k in a}) for t in (0.25, 0.5)]
    ev.losses(sums)                                 # nats/token, one host sync for all

An `Evaluator` holds the trainer's compiled eval step for the run's config on one mesh
(`scaling.train.step.program`, so nothing compiles twice), the run's fixed validation
batches (`eval_arrays`, which the trainer uses too), and sums the per-batch mean losses
in the trainer's order; the loss of a checkpoint therefore equals the `eval_loss` the
trainer logged for it, bit for bit on the same mesh. `loss_sum` stays on the devices, so
many parameter sets (an interpolation path, an average) are dispatched before one sync.

Every `mesh` argument accepts what `resolve_mesh` does; the default is one device.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding

from scaling.train.checkpoint import Checkpoints, checkpoint_dir
from scaling.train.config import MeshConfig, RunConfig, load_config
from scaling.train.mesh import check_batch, make_mesh
from scaling.train.params import param_layout
from scaling.train.step import Program, program

# ---- the validation set and its loss (the trainer's too) ------------------------------


def put_batch(prog: Program, local: np.ndarray, global_rows: int) -> jax.Array:
    """This process's rows -> one global array sharded over the batch axes."""
    return jax.make_array_from_process_local_data(prog.batch_sharding(), local, (global_rows, local.shape[1]))


def eval_arrays(prog: Program, ds, cfg: RunConfig) -> list[jax.Array]:
    size = cfg.eval_batch_size
    local = ds.eval_batches(size, cfg.data.num_eval_batches, jax.process_index(), jax.process_count())
    return [put_batch(prog, b, size) for b in local]


def eval_loss_sum(prog: Program, params: dict, batches) -> jax.Array:
    """Sum over the fixed validation batches of the per-batch mean loss, as a device scalar
    (no host sync; the one summation order every evaluation uses)."""
    total = None
    for b in batches:
        loss = prog.eval_step(params, b)
        total = loss if total is None else total + loss
    return total


def eval_loss(prog: Program, params: dict, batches: list[jax.Array]) -> float:
    """Mean held-out loss (nats/token) over the fixed validation batches (one host sync)."""
    return float(jax.device_get(eval_loss_sum(prog, params, batches))) / len(batches)


def eval_metrics(loss: float, bytes_per_token: float) -> dict:
    finite = math.isfinite(loss)
    return {
        "eval_loss": loss,
        "eval_ppl": math.exp(min(loss, 700.0)) if finite else None,
        "eval_bpb": loss / math.log(2) / bytes_per_token if finite else None,
    }


# ---- run directories -----------------------------------------------------------------


def _check_run_dir(run_dir: str | Path) -> Path:
    path = Path(run_dir)
    if not path.is_dir():
        raise FileNotFoundError(f"no run directory {str(run_dir)!r}")
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"{str(run_dir)!r} is not a run directory written by `scaling train` (no config.json)")
    return path


def run_config(run_dir: str | Path) -> RunConfig:
    """The resolved `RunConfig` a run directory was trained with (its config.json)."""
    return load_config(_check_run_dir(run_dir) / "config.json")


class _ReadOnlyNoise(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        return not ("read_only=True" in msg or "is read only" in msg)


_READ_ONLY_NOISE = _ReadOnlyNoise()


@contextlib.contextmanager
def _read_only():
    """Silence Orbax's two warnings per read-only open ("read only", "save_interval_steps=0"):
    reading a run back opens its checkpoints read-only on purpose, so they are noise."""
    logger = logging.getLogger("absl")
    logger.addFilter(_READ_ONLY_NOISE)
    try:
        yield
    finally:
        logger.removeFilter(_READ_ONLY_NOISE)


def checkpoint_steps(run_dir: str | Path) -> list[int]:
    """Steps with a complete checkpoint in `run_dir` (ascending; [] before the first save).
    A path that is not a run directory, or has no checkpoints/, is a FileNotFoundError."""
    path = _check_run_dir(run_dir)
    if not checkpoint_dir(path).is_dir():
        raise FileNotFoundError(f"run {str(run_dir)!r} has no checkpoints/ directory")
    with _read_only(), Checkpoints(checkpoint_dir(path), read_only=True) as ckpts:
        return ckpts.steps()


def param_shapes(model_cfg) -> dict[str, tuple[int, ...]]:
    """{flat name: shape} of the model's parameters, in the trainer's order and naming (the
    keys of `load_params`), found without allocating anything."""
    return {name: tuple(a.shape) for name, a in param_layout(model_cfg).abstract.items()}


# ---- meshes ----------------------------------------------------------------------------


def resolve_mesh(mesh: Any = None) -> Mesh:
    """A device mesh with axes (data, fsdp, model) from
    None                one device (the first local one);
    a jax `Mesh`        used as is (it must have those axes);
    a `MeshConfig`      on all devices, -1 filling: `run_config(d).mesh` is the run's own
                        training mesh;
    (data, fsdp, model) sizes, on the first data·fsdp·model devices.
    """
    if mesh is None:
        return make_mesh(MeshConfig(data=1), jax.local_devices()[:1])
    if isinstance(mesh, Mesh):
        missing = {"data", "fsdp", "model"} - set(mesh.axis_names)
        if missing:
            raise ValueError(f"mesh axes {mesh.axis_names} must be (data, fsdp, model); missing {sorted(missing)}")
        return mesh
    if isinstance(mesh, MeshConfig):
        return make_mesh(mesh)
    if isinstance(mesh, (tuple, list)) and len(mesh) == 3:
        if any(isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 1 for s in mesh):
            raise ValueError(f"mesh sizes {tuple(mesh)} must be positive integers (data, fsdp, model)")
        sizes = [int(s) for s in mesh]
        n = math.prod(sizes)
        if n > jax.device_count():
            raise ValueError(f"mesh {tuple(sizes)} needs {n} devices but {jax.device_count()} are available")
        return make_mesh(MeshConfig(data=sizes[0], fsdp=sizes[1], model=sizes[2]), jax.devices()[:n])
    raise ValueError(f"mesh={mesh!r}: expected None, a jax Mesh, a MeshConfig or (data, fsdp, model) sizes")


def _program(cfg: RunConfig, mesh: Mesh) -> Program:
    # microbatches=1: the eval step does not depend on them, and this is the cache entry
    # `load_params` and every Evaluator of this config and mesh share.
    return program(cfg.model, cfg.optimizer, 1, mesh, cfg.mesh.sharding_rules())


# ---- the evaluator -----------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Evaluator:
    """The compiled eval program of one run config on one mesh, and its fixed validation
    batches. Build it with `evaluator(...)` (cached), not directly."""

    cfg: RunConfig
    prog: Program  # the trainer's compiled functions (internal; use the properties below)
    batches: tuple  # the validation batches, sharded over the mesh's batch axes
    bytes_per_token: float

    @property
    def mesh(self) -> Mesh:
        return self.prog.mesh

    @property
    def param_shardings(self) -> dict[str, NamedSharding]:
        """{flat name: sharding}: where `place` puts each parameter (the trainer's layout)."""
        return self.prog.param_shardings

    @property
    def param_count(self) -> int:
        """Total number of parameters (embeddings included)."""
        return sum(math.prod(a.shape) for a in self.prog.layout.abstract.values())

    @property
    def tokens(self) -> int:
        """Predicted tokens per evaluation (every position of every validation sequence)."""
        return self.cfg.eval_batch_size * self.cfg.data.num_eval_batches * self.cfg.model.seq_len

    def place(self, params: dict) -> dict[str, jax.Array]:
        """A flat dict (jax or numpy arrays) put on `param_shardings`: device to device, a
        no-op for arrays already placed so. Names and shapes must be the run's model's."""
        abstract = self.prog.layout.abstract
        differ = set(abstract) ^ set(params)
        if differ:
            raise ValueError(f"params do not match the run's model; differing names: {sorted(differ)[:5]}")
        for name, a in abstract.items():
            if tuple(np.shape(params[name])) != tuple(a.shape):
                raise ValueError(
                    f"params[{name!r}] has shape {tuple(np.shape(params[name]))}, "
                    f"but the run's model has {tuple(a.shape)}"
                )
        return {
            k: jax.device_put(v if isinstance(v, jax.Array) else np.asarray(v), self.param_shardings[k])
            for k, v in params.items()
        }

    def loss_sum(self, params: dict) -> jax.Array:
        """Sum over the validation batches of the per-batch mean loss, as a device scalar
        (no host sync): the trainer's `eval_loss` before its division, in its order.
        `params` must be placed (`place`)."""
        return eval_loss_sum(self.prog, params, self.batches)

    def losses(self, sums) -> list[float]:
        """Host floats (nats per token) of several `loss_sum` results, in one sync."""
        return [float(s) / len(self.batches) for s in jax.device_get(list(sums))]

    def loss(self, params: dict) -> float:
        """Held-out loss (nats per token) of a flat dict of parameters (placed if need be)."""
        return self.losses([self.loss_sum(self.place(params))])[0]

    def bpb(self, loss: float) -> float | None:
        """Bits per byte of the validation text for a loss in nats/token (None if not finite)."""
        return eval_metrics(loss, self.bytes_per_token)["eval_bpb"]

    def metrics(self, params: dict) -> dict:
        """{"eval_loss" (nats/token), "eval_ppl", "eval_bpb"}, as the trainer reports them."""
        return eval_metrics(self.loss(params), self.bytes_per_token)


def evaluator(run: str | Path | RunConfig, mesh: Any = None) -> Evaluator:
    """The `Evaluator` of a run directory's (or a `RunConfig`'s) model on `mesh` (see
    `resolve_mesh`; default one device). Cached per (config, mesh): repeated calls reuse
    the compiled step and the validation batches. A mesh that cannot split the validation
    batch is an error naming both, raised before anything compiles."""
    cfg = run if isinstance(run, RunConfig) else run_config(run)
    mesh = resolve_mesh(mesh)
    try:
        check_batch(mesh, cfg.eval_batch_size, what="data.eval_batch_size")
    except ValueError as err:
        raise ValueError(
            f"{err}; choose another mesh (mesh=(data, fsdp, model) sizes, or --mesh D,F,M on the command line)"
        ) from None
    return _evaluator(cfg, mesh)


@functools.lru_cache(maxsize=4)
def _evaluator(cfg: RunConfig, mesh: Mesh) -> Evaluator:
    from scaling.data import build_dataset

    ds = build_dataset(cfg.data.replace(eval_batch_size=cfg.eval_batch_size))
    prog = _program(cfg, mesh)
    return Evaluator(cfg, prog, tuple(eval_arrays(prog, ds, cfg)), ds.bytes_per_token)


# ---- one-call conveniences ----------------------------------------------------------------


def load_params(run_dir: str | Path, step: int | None = None, mesh: Any = None) -> dict[str, jax.Array]:
    """The parameters saved at `step` (default: the latest) as a flat dict of arrays, placed
    on `mesh` (see `resolve_mesh`; default one device) by the run's sharding rules."""
    cfg = run_config(run_dir)
    prog = _program(cfg, resolve_mesh(mesh))
    with _read_only(), Checkpoints(checkpoint_dir(run_dir), read_only=True) as ckpts:
        if step is None:
            step = ckpts.latest_step()
            if step is None:
                raise FileNotFoundError(f"{run_dir} has no complete checkpoint")
        return ckpts.restore(step, prog.abstract_params())["params"]


def evaluate(run: str | Path | RunConfig, params: dict, mesh: Any = None) -> dict:
    """Held-out loss of `params` (a flat dict as from `load_params`, jax or numpy arrays) on
    the run's fixed validation batches: {"eval_loss" (nats/token), "eval_ppl", "eval_bpb"}.
    `evaluator(run, mesh).metrics(params)`."""
    return evaluator(run, mesh).metrics(params)
