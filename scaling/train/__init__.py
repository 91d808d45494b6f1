"""The trainer: one model trained on a device mesh, evaluated, checkpointed, resumable.

    from scaling.train import load_config, train
    result = train(load_config("experiments/tiny.toml", ["optimizer.lr=3e-3"]), "runs/tiny")
    result.status, result.final_eval_loss          # "done", 2.1...

    from scaling.train import load_params, evaluate, evaluator
    params = load_params("runs/tiny", step=100)    # flat {name: array}
    evaluate("runs/tiny", params)                   # {"eval_loss", "eval_ppl", "eval_bpb"}
    ev = evaluator("runs/tiny", mesh=(1, 1, 1))     # compiled once: ev.loss_sum / ev.losses

Modules: config (TOML -> frozen dataclasses), mesh, schedules, optimizer, params (flat
parameter dicts and their shardings), step (compiled init/train/eval), checkpoint (Orbax),
metrics (metrics.jsonl, MFU), distributed (multi-host start-up), trainer (the loop),
evaluate (the public evaluation API: run directories read back, the `Evaluator`).
Other packages (scaling.interpolate) import only the names below.
"""

from scaling.train.config import (
    MeshConfig,
    OptimizerConfig,
    RunConfig,
    ScheduleConfig,
    TrainConfig,
    load_config,
)
from scaling.train.evaluate import (
    Evaluator,
    checkpoint_steps,
    evaluate,
    evaluator,
    load_params,
    param_shapes,
    resolve_mesh,
    run_config,
)
from scaling.train.trainer import TrainResult, read_result, train

__all__ = [
    "Evaluator",
    "MeshConfig",
    "OptimizerConfig",
    "RunConfig",
    "ScheduleConfig",
    "TrainConfig",
    "TrainResult",
    "checkpoint_steps",
    "evaluate",
    "evaluator",
    "load_config",
    "load_params",
    "param_shapes",
    "read_result",
    "resolve_mesh",
    "run_config",
    "train",
]
