"""A run started from another run's parameters (`train.init_params_from = "RUN_DIR@STEP"`):
the parent checked before anything compiles, and what the child records about it.

Fine-tuning restores the parent's parameters only: the optimizer state is fresh and the
schedule is the child's own, from step 0 (unlike `train.init_from`, which continues the
parent's optimizer and step counter for WSD branches). The parent must have the child's
architecture: the same parameter names and shapes, and the same model config except for
keys that do not change the function of the parameters (`FREE_KEYS`: sequence length,
numerics, initialisation, rematerialization).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from scaling.train.checkpoint import Checkpoints, checkpoint_dir
from scaling.train.config import load_config
from scaling.train.params import param_layout

FREE_KEYS = frozenset({"init_std", "compute_dtype", "attention", "remat", "seq_len"})


def check_parent(spec: str, run_dir: str, step: int, model_cfg) -> dict:
    """Raise (naming `train.init_params_from` and the problem) unless `run_dir` holds a complete
    checkpoint at `step` of a model with `model_cfg`'s architecture; return the parent's
    record for the child's config.json: {run_dir, step, spec, data_manifest_hash, model}."""
    where = f"train.init_params_from={spec!r}"
    path = Path(run_dir).absolute()
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"{where}: {str(run_dir)!r} is not a run directory written by `scaling train`")
    if not checkpoint_dir(path).is_dir():
        raise FileNotFoundError(f"{where}: {str(run_dir)!r} has no checkpoints/ directory")
    with Checkpoints(checkpoint_dir(path), read_only=True) as ckpts:
        steps = ckpts.steps()
    if step not in steps:
        raise FileNotFoundError(
            f"{where}: step {step} is not saved in {str(run_dir)!r}; available steps: {', '.join(map(str, steps)) or 'none'}"
        )
    parent = load_config(path / "config.json").model
    mine = {n: tuple(a.shape) for n, a in param_layout(model_cfg).abstract.items()}
    theirs = {n: tuple(a.shape) for n, a in param_layout(parent).abstract.items()}
    for name in sorted(set(mine) | set(theirs)):
        if mine.get(name) != theirs.get(name):
            raise ValueError(
                f"{where}: a checkpoint of another architecture: parameter {name!r} has shape "
                f"{theirs.get(name, 'none')} in the parent but {mine.get(name, 'none')} in this run"
            )
    a, b = dataclasses.asdict(parent), dataclasses.asdict(model_cfg)
    diffs = [
        f"model.{k}: {a[k]!r} in the parent, {b.get(k)!r} here" for k in a if k not in FREE_KEYS and a[k] != b.get(k)
    ]
    if diffs:
        raise ValueError(f"{where}: a checkpoint of another architecture (same shapes): " + "; ".join(diffs))
    stored = json.loads((path / "config.json").read_text())
    return {
        "spec": spec,
        "run_dir": str(path),
        "step": step,
        "data_manifest_hash": stored.get("data_manifest_hash"),
        "data": stored.get("config", {}).get("data"),
    }
