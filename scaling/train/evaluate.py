"""Reading a finished (or running) run directory back: parameters and held-out loss.

    params = load_params("runs/a", step=1000)            # {"blocks.0.attn.q": Array, ...}
    mixed = {k: 0.5 * params[k] + 0.5 * other[k] for k in params}   # weight-space interpolation
    evaluate("runs/a", mixed)  # {"eval_loss": ..., "eval_ppl": ..., "eval_bpb": ...}

Both default to one device; pass `mesh` (a `jax.sharding.Mesh` with axes data, fsdp,
model) to shard. Compiled functions and the validation batches are cached per run config
and mesh, so evaluating many points along an interpolation path compiles once.
"""

from __future__ import annotations

import functools
from pathlib import Path

import jax
import numpy as np

from scaling.train.checkpoint import Checkpoints, checkpoint_dir
from scaling.train.config import MeshConfig, RunConfig, load_config
from scaling.train.mesh import check_batch, make_mesh
from scaling.train.step import Program, program


def run_config(run_dir: str | Path) -> RunConfig:
    path = Path(run_dir) / "config.json"
    if not path.exists():
        raise FileNotFoundError(f"{run_dir} is not a run directory (no config.json)")
    return load_config(path)


def _default_mesh():
    return make_mesh(MeshConfig(data=1), jax.local_devices()[:1])


def _program(cfg: RunConfig, mesh) -> Program:
    return program(cfg.model, cfg.optimizer, 1, mesh, cfg.mesh.sharding_rules())


def checkpoint_steps(run_dir: str | Path) -> list[int]:
    """Steps with a complete checkpoint in `run_dir`."""
    with Checkpoints(checkpoint_dir(run_dir), read_only=True) as ckpts:
        return ckpts.steps()


def load_params(run_dir: str | Path, step: int | None = None, mesh=None) -> dict[str, jax.Array]:
    """The parameters saved at `step` (default: the latest) as a flat dict of arrays,
    placed on `mesh` (default: one device) by the run's sharding rules."""
    cfg = run_config(run_dir)
    prog = _program(cfg, mesh or _default_mesh())
    with Checkpoints(checkpoint_dir(run_dir), read_only=True) as ckpts:
        if step is None:
            step = ckpts.latest_step()
            if step is None:
                raise FileNotFoundError(f"{run_dir} has no complete checkpoint")
        return ckpts.restore(step, prog.abstract_params())["params"]


@functools.lru_cache(maxsize=4)
def _eval_setup(cfg: RunConfig, mesh) -> tuple[Program, list[jax.Array], float]:
    from scaling.data import build_dataset
    from scaling.train.trainer import eval_arrays

    t = cfg.train
    check_batch(mesh, t.eval_size, what="train.eval_batch_size")
    ds = build_dataset(cfg.data.replace(eval_batch_size=t.eval_size, num_eval_batches=t.eval_batches))
    prog = _program(cfg, mesh)
    return prog, eval_arrays(prog, ds, cfg), ds.bytes_per_token


def evaluate(run_dir: str | Path, params: dict, mesh=None) -> dict:
    """Held-out loss of `params` (a flat dict as from `load_params`, arrays or numpy) on the
    run's fixed validation batches: {"eval_loss" (nats/token), "eval_ppl", "eval_bpb"}."""
    from scaling.train.trainer import eval_loss, eval_metrics

    cfg = run_config(run_dir)
    prog, batches, bytes_per_token = _eval_setup(cfg, mesh or _default_mesh())
    missing = set(prog.layout.names) ^ set(params)
    if missing:
        raise ValueError(f"params do not match the run's model; differing names: {sorted(missing)[:5]}")
    placed = {k: jax.device_put(np.asarray(v) if not isinstance(v, jax.Array) else v, prog.param_shardings[k])
              for k, v in params.items()}
    return eval_metrics(eval_loss(prog, placed, batches), bytes_per_token)
