"""The bridge from a sweep's base sections to each run's trainer config.

The sweep file's [model] [data] [optimizer] [schedule] [train] [mesh] tables are the
trainer's own (`scaling.train.config`). A `RunTemplate` holds them typed, validated when
the sweep is read, without what the plan decides per run: model.width/depth,
train.steps, train.global_batch_size, train.seed, optimizer.lr, the schedule of WSD
trunks and branches, checkpoint steps, and the FLOP convention. `RunTemplate.run_config`
fills those in and returns the run's `RunConfig`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from scaling.core import config as cc
from scaling.data.config import DataConfig
from scaling.train.config import (
    RESUME_FREE_KEYS,
    SECTIONS,
    MeshConfig,
    OptimizerConfig,
    RunConfig,
    ScheduleConfig,
    TrainConfig,
    build_section,
    field_defaults,
    reconcile_seq_len,
)
from scaling.train.schedules import warmup_steps as trainer_warmup

TRAINER_SECTIONS = SECTIONS
# Keys the plan sets per run: giving them in the sweep file is an error, not a silent override.
PLAN_OWNED = {
    "model": ("width", "depth"),
    "train": ("steps", "tokens", "init_from"),
}


@dataclass(frozen=True)
class RunTemplate:
    """A sweep's base run config: every trainer section but what the plan sets per run.

    model: the [model] table (keys checked, seq_len reconciled with [data]); its values
        are checked as each family member's ModelConfig is built (`model_config`), since
        most need a width to be checked against.
    data, optimizer, schedule, train (without a length), mesh: typed and validated.
    given: the tables as written, which DIR/sweep.toml repeats.
    """

    model: Mapping[str, Any] = field(default_factory=dict)
    data: DataConfig = field(default_factory=DataConfig)
    optimizer: OptimizerConfig = OptimizerConfig()
    schedule: ScheduleConfig = ScheduleConfig()
    train: TrainConfig = TrainConfig()
    mesh: MeshConfig = MeshConfig()
    given: Mapping[str, Mapping[str, Any]] = field(default_factory=dict, compare=False)

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any], *, flop_convention: str) -> RunTemplate:
        for name, section in raw.items():
            if not isinstance(section, Mapping):
                raise ValueError(f"[{name}] must be a table, got {section!r}")
        given = {name: dict(raw[name]) for name in SECTIONS if name in raw}
        for section, keys in PLAN_OWNED.items():
            for key in keys:
                if key in given.get(section, {}):
                    raise ValueError(
                        f"{section}.{key} is set per run by the sweep plan; remove it from the sweep config"
                    )
        conv = given.get("train", {}).get("flop_convention")
        if conv is not None and conv != flop_convention:
            raise ValueError(
                f"train.flop_convention={conv!r} differs from sweep.flop_convention={flop_convention!r}; "
                "give it once, in [sweep]"
            )
        model, data = dict(given.get("model", {})), dict(given.get("data", {}))
        from scaling.model.config import ModelConfig

        cc.check_keys("model", model, cc.field_names(ModelConfig))
        seq = reconcile_seq_len(model, data)
        if seq is not None:
            model["seq_len"] = data["seq_len"] = seq
        else:
            model["seq_len"] = data["seq_len"] = ModelConfig.__dataclass_fields__["seq_len"].default
        train = {**given.get("train", {}), "flop_convention": flop_convention}
        return cls(
            model=model,
            data=build_section("data", data),
            optimizer=build_section("optimizer", given.get("optimizer", {})),
            schedule=build_section("schedule", given.get("schedule", {})),
            train=build_section("train", train),
            mesh=build_section("mesh", given.get("mesh", {})),
            given=given,
        )

    def given_dict(self) -> dict[str, dict[str, Any]]:
        """The non-empty tables as written (for DIR/sweep.toml)."""
        return {name: dict(section) for name, section in self.given.items() if section}

    def model_config(self, width: int, depth: int):
        """The family member (width, depth) as a validated `ModelConfig`."""
        from scaling.model.config import ModelConfig

        return ModelConfig.from_dict({**self.model, "width": width, "depth": depth})

    def schedule_for(self, override: Mapping[str, Any] | None = None) -> ScheduleConfig:
        return dataclasses.replace(self.schedule, **override) if override else self.schedule

    def warmup_steps(self, total_steps: int, override: Mapping[str, Any] | None = None) -> int:
        """The warmup in steps the trainer will use for a run of `total_steps` steps."""
        return trainer_warmup(self.schedule_for(override), total_steps)

    def run_config(
        self,
        *,
        width: int,
        depth: int,
        steps: int,
        batch_size: int,
        lr: float,
        seed: int,
        schedule: Mapping[str, Any] | None = None,
        save_steps: list[int] | tuple[int, ...] = (),
        init_from: tuple[str, int] | None = None,
    ) -> RunConfig:
        """One run's resolved trainer config."""
        train = dataclasses.replace(
            self.train,
            steps=steps,
            global_batch_size=batch_size,
            seed=seed,
            save_steps=tuple(sorted({*self.train.save_steps, *save_steps})),
            init_from=init_from,
        )
        return RunConfig(
            model=self.model_config(width, depth),
            data=self.data,
            optimizer=dataclasses.replace(self.optimizer, lr=lr),
            schedule=self.schedule_for(schedule),
            train=train,
            mesh=self.mesh,
        )


# Run ids hash each key in the spelling, and against the default, that it had when ids were
# first made: renaming a key changes no run's id, so a sweep's finished runs stay finished.
# current (section, key) -> (hashed section, hashed key, default then, {value now: value then})
_FIRST_DEFAULTS = {
    ("train", "flops_convention"): "6N",
    ("train", "eval_batches"): 8,
    ("train", "eval_batch_size"): 0,
    ("schedule", "decay_fraction"): 0.2,
    ("schedule", "decay_shape"): "linear",
}
_HASHED_AS: dict[tuple[str, str], tuple[str, str, Any, dict[Any, Any]]] = {}
for (_section, _key), _default in _FIRST_DEFAULTS.items():
    _new_section, _new_key, _values = cc.RENAMED[_section, _key]
    _HASHED_AS[_new_section, _new_key] = (_section, _key, _default, {v: k for k, v in _values.items()})
_MISSING = object()


def identity(config: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """The part of a resolved config (`RunConfig.to_dict()`) that defines a run (what its
    id hashes).

    Every value that differs from the trainer's default, except the keys the trainer
    lets change on resume (progress, logging, mesh shape). Leaving defaults out keeps
    ids stable when the trainer gains a new option; changing a default changes them
    (renamed keys are hashed as first spelled, `_HASHED_AS`).
    """
    defaults = {name: field_defaults(name) for name in SECTIONS}
    out: dict[str, dict[str, Any]] = {s: {} for s in config}
    for s, sec in config.items():
        for k, v in sec.items():
            if (s, k) in RESUME_FREE_KEYS:
                continue
            if (s, k) in _HASHED_AS:
                s_then, k_then, default_then, values_then = _HASHED_AS[s, k]
                v = values_then.get(v, v) if isinstance(v, str) else v
                if v != default_then:
                    out.setdefault(s_then, {})[k_then] = v
            elif defaults.get(s, {}).get(k, _MISSING) != v:
                out[s][k] = v
    return out


def build(config: Mapping[str, Mapping[str, Any]]) -> RunConfig:
    """Plain data → the trainer's RunConfig."""
    return RunConfig.from_dict(cc.upgrade(dict(config)))
