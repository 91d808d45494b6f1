"""The bridge from a sweep's base sections to each run's trainer config.

The sweep file's [model] [data] [optimizer] [schedule] [train] [mesh] tables are the
trainer's own (`scaling.train.config.RunConfig`), validated by the trainer's parser;
the plan fills in, per run, what the sweep decides: model.width/depth, train.steps,
train.global_batch_size, train.seed, optimizer.lr, the schedule of WSD trunks and
branches, checkpoint steps, and the FLOP convention.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

# Keys the plan sets per run: giving them in the sweep file is an error, not a silent override.
PLAN_OWNED = {
    "model": ("width", "depth"),
    "train": ("steps", "tokens", "init_from"),
}


def _raw(base: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    return {name: copy.deepcopy(dict(section)) for name, section in base.items() if section is not None}


def check_base(base: Mapping[str, Mapping[str, Any]], flop_convention: str):
    """Validate the base sections with the trainer's parser; returns its RunConfig."""
    from scaling.train.config import RunConfig

    for section, keys in PLAN_OWNED.items():
        for key in keys:
            if key in base.get(section, {}):
                raise ValueError(f"{section}.{key} is set per run by the sweep plan; remove it from the sweep config")
    conv = base.get("train", {}).get("flops_convention")
    if conv is not None and conv != flop_convention:
        raise ValueError(
            f"train.flops_convention={conv!r} differs from sweep.flop_convention={flop_convention!r}; give it once, in [sweep]"
        )
    raw = _raw(base)
    model = raw.setdefault("model", {})
    model["width"] = model.get("head_dim", 64)  # placeholders: the family sets these
    model["depth"] = 1
    raw.setdefault("train", {})["steps"] = 1
    return RunConfig.from_dict(raw)


def base_model_dict(base: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """The resolved base [model] table (seq_len taken from [data] when given there)."""
    model = dict(base.get("model", {}))
    if "seq_len" not in model and "seq_len" in base.get("data", {}):
        model["seq_len"] = base["data"]["seq_len"]
    return model


def base_batch_size(base: Mapping[str, Mapping[str, Any]]) -> int:
    from scaling.train.config import TrainConfig

    return int(base.get("train", {}).get("global_batch_size", TrainConfig.global_batch_size))


def base_eval_every(base: Mapping[str, Mapping[str, Any]]) -> int:
    from scaling.train.config import TrainConfig

    return int(base.get("train", {}).get("eval_every", TrainConfig.eval_every))


def base_lr(base: Mapping[str, Mapping[str, Any]]) -> float:
    from scaling.train.config import OptimizerConfig

    return float(base.get("optimizer", {}).get("lr", OptimizerConfig.lr))


def schedule_config(base: Mapping[str, Mapping[str, Any]], override: Mapping[str, Any] | None = None):
    from scaling.train.config import ScheduleConfig

    return ScheduleConfig(**{**base.get("schedule", {}), **(override or {})})


def warmup_steps(base: Mapping[str, Mapping[str, Any]], total_steps: int,
                 override: Mapping[str, Any] | None = None) -> int:  # fmt: skip
    """The warmup in steps the trainer will use for a run of `total_steps` steps."""
    from scaling.train.schedules import warmup_steps as trainer_warmup

    return trainer_warmup(schedule_config(base, override), total_steps)


def run_config(
    base: Mapping[str, Mapping[str, Any]],
    *,
    width: int,
    depth: int,
    steps: int,
    batch_size: int,
    lr: float,
    seed: int,
    flop_convention: str,
    schedule: Mapping[str, Any] | None = None,
    save_steps: list[int] | tuple[int, ...] = (),
    init_from: tuple[str, int] | None = None,
) -> dict[str, dict[str, Any]]:
    """One run's resolved trainer config, as plain data (`RunConfig.to_dict()`)."""
    from scaling.train.config import RunConfig

    raw = _raw(base)
    raw.setdefault("model", {}).update(width=width, depth=depth)
    train = raw.setdefault("train", {})
    train.update(steps=steps, global_batch_size=batch_size, seed=seed, flops_convention=flop_convention)
    if save_steps:
        train["save_steps"] = sorted({*train.get("save_steps", ()), *save_steps})
    if init_from is not None:
        train["init_from"] = list(init_from)
    raw.setdefault("optimizer", {})["lr"] = lr
    if schedule:
        raw.setdefault("schedule", {}).update(schedule)
    return RunConfig.from_dict(raw).to_dict()


def identity(config: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """The part of a resolved config that defines a run (what its id hashes).

    Every value that differs from the trainer's default, except the keys the trainer
    lets change on resume (progress, logging, mesh shape). Leaving defaults out keeps
    ids stable when the trainer gains a new option; changing a default changes them.
    """
    from scaling.train.config import RESUME_FREE_KEYS

    defaults = _defaults()
    return {
        s: {
            k: v for k, v in sec.items() if (s, k) not in RESUME_FREE_KEYS and defaults.get(s, {}).get(k, _MISSING) != v
        }
        for s, sec in config.items()
        if s != "track"  # where the metrics are mirrored does not define the run
    }


_MISSING = object()


def _defaults() -> dict[str, dict[str, Any]]:
    """Each trainer section's field defaults, in the JSON shape of `RunConfig.to_dict()`."""
    from scaling.train.config import SECTIONS, field_defaults

    return {name: field_defaults(name) for name in SECTIONS}


def build(config: Mapping[str, Mapping[str, Any]]):
    """Plain data → the trainer's RunConfig."""
    from scaling.train.config import RunConfig

    return RunConfig.from_dict(copy.deepcopy(dict(config)))
