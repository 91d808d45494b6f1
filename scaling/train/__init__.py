"""The trainer: one model trained on a device mesh, evaluated, checkpointed, resumable.

    from scaling.train import load_config, train
    result = train(load_config("experiments/tiny.toml", ["optimizer.lr=3e-3"]), "runs/tiny")
    result.status, result.final_eval_loss          # "done", 2.1...

    from scaling.train import load_params, evaluate
    params = load_params("runs/tiny", step=100)    # flat {name: array}
    evaluate("runs/tiny", params)                   # {"eval_loss", "eval_ppl", "eval_bpb"}

Modules: config (TOML -> frozen dataclasses), mesh, schedules, optimizer, params (flat
parameter dicts and their shardings), step (compiled init/train/eval), checkpoint (Orbax),
metrics (metrics.jsonl, MFU), distributed (multi-host start-up), trainer (the loop),
evaluate (reading run directories back).
"""

from scaling.train.config import (
    MeshConfig,
    OptimizerConfig,
    RunConfig,
    ScheduleConfig,
    TrainConfig,
    load_config,
)
from scaling.train.evaluate import checkpoint_steps, evaluate, load_params, run_config
from scaling.train.trainer import TrainResult, read_result, train

__all__ = [
    "MeshConfig",
    "OptimizerConfig",
    "RunConfig",
    "ScheduleConfig",
    "TrainConfig",
    "TrainResult",
    "checkpoint_steps",
    "evaluate",
    "load_config",
    "load_params",
    "read_result",
    "run_config",
    "train",
]
