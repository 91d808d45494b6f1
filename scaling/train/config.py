"""A training run's configuration: TOML sections parsed into frozen, validated dataclasses.

    [model]      -> scaling.model.ModelConfig   (the model engineer's)
    [data]       -> scaling.data.DataConfig     (the data engineer's; the validation set too)
    [optimizer]  -> OptimizerConfig
    [schedule]   -> ScheduleConfig
    [train]      -> TrainConfig
    [mesh]       -> MeshConfig

`load_config(path, overrides)` reads a TOML (or a run dir's `config.json`) file and applies
dotted overrides (`optimizer.lr=3e-3`, values parsed as TOML literals). Every section
validates itself with `scaling.core.config` (errors read `section.key=value: why`, an
unknown key names the closest valid one). Validation here is cheap and device-free;
checks that need the devices (mesh shape, batch divisibility) live in `scaling.train.mesh`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scaling.core import config as cc
from scaling.core.flops import DEFAULT_FLOP_CONVENTION, FLOP_CONVENTIONS
from scaling.core.mesh import DEFAULT_RULES, MESH_AXES
from scaling.core.schedules import COOLDOWN_SHAPES, SCHEDULE_KINDS

if TYPE_CHECKING:
    from scaling.data.config import DataConfig
    from scaling.model.config import ModelConfig

OPTIMIZERS = ("adamw", "sgd")


@dataclass(frozen=True)
class OptimizerConfig:
    """AdamW (decoupled weight decay, as in optax/PyTorch: the decay term is scaled by the
    learning rate and by muP's per-tensor multiplier) with global-norm clipping.

    weight_decay applies to every weight matrix; never to norm scales (or any 1-D
    parameter). decay_embeddings=false also exempts the token-embedding table (with tied
    embeddings, that is the readout too).
    clip_norm: clip the gradient's global norm to this (0 = no clipping).
    z_loss: coefficient of the auxiliary log²Z loss (PaLM); 0 = off.
    name "sgd": plain SGD (lr × gradient, no decay); used by equality tests.
    """

    name: str = "adamw"
    lr: float = 3e-3
    b1: float = 0.9
    b2: float = 0.95
    eps: float = 1e-8
    weight_decay: float = 0.1
    decay_embeddings: bool = True
    clip_norm: float = 1.0
    z_loss: float = 0.0

    def __post_init__(self) -> None:
        check = cc.Checks("optimizer", self)
        check.choice("name", OPTIMIZERS)
        check.number("lr", "eps", positive=True)
        check.number("b1", "b2", minimum=0.0, below=1)
        check.number("weight_decay", "clip_norm", "z_loss", minimum=0.0)
        check.boolean("decay_embeddings")


@dataclass(frozen=True)
class ScheduleConfig:
    """Learning-rate schedule (peak = optimizer.lr); see `scaling.core.schedules`.

    kind: "cosine" (warmup, then cosine to min_lr_ratio × peak at the last step),
        "wsd" (warmup, stable at peak, then a cooldown over the last cooldown_fraction of
        the steps to min_lr_ratio × peak, cooldown_shape "linear" or "1-sqrt"), or
        "constant".
    warmup: linear warmup length: a step count if >= 1, a fraction of the run's steps if < 1.
    """

    kind: str = "cosine"
    warmup: float = 0.0
    min_lr_ratio: float = 0.1
    cooldown_fraction: float = 0.2
    cooldown_shape: str = "linear"

    def __post_init__(self) -> None:
        check = cc.Checks("schedule", self)
        check.choice("kind", SCHEDULE_KINDS)
        check.number("warmup", minimum=0.0)
        if self.warmup >= 1 and self.warmup != int(self.warmup):
            check.fail("warmup", "a warmup >= 1 is a step count and must be a whole number")
        check.number("min_lr_ratio", "cooldown_fraction", minimum=0.0, maximum=1)
        check.choice("cooldown_shape", COOLDOWN_SHAPES)


@dataclass(frozen=True)
class TrainConfig:
    """The loop: length, batch, evaluation, checkpoints.

    steps | tokens: run length; give exactly one (tokens -> ceil(tokens / (batch × seq_len))
        steps). Both 0 is a section without a length yet (a sweep's base: the plan sets it);
        a RunConfig needs one.
    global_batch_size: sequences per optimizer step, over all devices and hosts.
    microbatches: gradient accumulation; the gradient is the mean over the whole batch.
    eval_every: held-out evaluation every this many steps (0 = only at the end); the
        validation set itself is data.num_eval_batches × data.eval_batch_size windows.
    checkpoint_every: save every this many steps (0 = only at the end and on SIGTERM).
    keep: how many of the latest checkpoints to keep.
    keep_eval_checkpoints: also save at every evaluation step and keep all of those
        (weight-space interpolation between steps needs them).
    save_steps: extra steps to save and keep forever (e.g. WSD branch points).
    init_from: ["checkpoint_dir", step]: start from another run's params and optimizer
        state at that step (the step counter continues from there) under this config's
        schedule, e.g. a WSD cooldown branch. "" = a fresh start.
    init_params_from: "RUN_DIR@STEP": start from another run's parameters only, with a fresh
        optimizer state and this run's own schedule from step 0 (fine-tuning, typically on
        another data source). The parent must have this run's architecture (checked before
        anything compiles); config.json records it under "parent". "" = a fresh start.
    seed: parameter-initialisation seed (the data order has its own, data.seed).
    flop_convention: how the `flops` column counts (`scaling.core.flops`; "exact" by default).
    """

    steps: int = 0
    tokens: int = 0
    global_batch_size: int = 32
    microbatches: int = 1
    eval_every: int = 100
    eval_at_start: bool = False
    checkpoint_every: int = 100
    keep: int = 2
    keep_eval_checkpoints: bool = False
    save_steps: tuple[int, ...] = ()
    init_from: tuple[str, int] | None = None
    init_params_from: str = ""
    seed: int = 0
    log_every: int = 10
    flop_convention: str = DEFAULT_FLOP_CONVENTION
    progress: bool = True
    async_checkpointing: bool = True

    def __post_init__(self) -> None:
        check = cc.Checks("train", self)
        check.integer("steps", "tokens", "eval_every", "checkpoint_every", "seed", minimum=0)
        check.integer("global_batch_size", "microbatches", "keep", "log_every", minimum=1)
        if self.steps > 0 and self.tokens > 0:
            raise ValueError(
                f"train: give exactly one of train.steps or train.tokens (got steps={self.steps}, tokens={self.tokens})"
            )
        if self.global_batch_size % self.microbatches:
            check.fail("microbatches", f"must divide train.global_batch_size={self.global_batch_size}")
        check.boolean("eval_at_start", "keep_eval_checkpoints", "progress", "async_checkpointing")
        check.choice("flop_convention", FLOP_CONVENTIONS)
        steps = self.save_steps
        if not isinstance(steps, (list, tuple)) or any(
            isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in steps
        ):
            check.fail("save_steps", "must be a list of positive step numbers")
        check.set("save_steps", tuple(sorted(set(steps))))
        init = self.init_from
        if init in ("", None, [], ()):
            init = None
        elif (
            not isinstance(init, (list, tuple))
            or len(init) != 2
            or not isinstance(init[0], str)
            or isinstance(init[1], bool)
            or not isinstance(init[1], int)
            or init[1] < 0
        ):
            check.fail("init_from", 'must be ["checkpoint_dir", step] or ""')
        else:
            init = (str(init[0]), int(init[1]))
        check.set("init_from", init)
        spec = self.init_params_from
        if not isinstance(spec, str):
            check.fail("init_params_from", 'must be "RUN_DIR@STEP" or ""')
        if spec:
            run, _, step = spec.rpartition("@")
            if not run or not step.isdigit():
                check.fail("init_params_from", 'must be "RUN_DIR@STEP" (e.g. "runs/pretrain@1000") or ""')
            if init is not None:
                check.fail("init_params_from", "give train.init_from or train.init_params_from, not both")

    @property
    def has_length(self) -> bool:
        return self.steps > 0 or self.tokens > 0

    @property
    def init_params_step(self) -> tuple[str, int] | None:
        """(run_dir, step) of `init_params_from`, or None."""
        if not self.init_params_from:
            return None
        run, _, step = self.init_params_from.rpartition("@")
        return run, int(step)

    def num_steps(self, seq_len: int) -> int:
        if self.steps:
            return self.steps
        return max(1, -(-self.tokens // (self.global_batch_size * seq_len)))


@dataclass(frozen=True)
class MeshConfig:
    """Device-mesh axis sizes (data, fsdp, model); one may be -1 (= the remaining devices).

    rules: overrides of `scaling.sharding.DEFAULT_RULES`, logical axis -> mesh axis
    ("" or [] = replicated; a list = several mesh axes), e.g. {vocab = ""}.
    """

    data: int = -1
    fsdp: int = 1
    model: int = 1
    rules: tuple[tuple[str, Any], ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        check = cc.Checks("mesh", self)
        check.integer(*MESH_AXES)
        sizes = [self.data, self.fsdp, self.model]
        for name, value in zip(MESH_AXES, sizes):
            if value == 0 or value < -1:
                check.fail(name, "must be a positive size or -1 (fill)")
        if sizes.count(-1) > 1:
            raise ValueError(
                f"mesh: at most one axis may be -1 (got data={self.data}, fsdp={self.fsdp}, model={self.model})"
            )
        rules = self.rules
        if isinstance(rules, dict):
            rules = tuple(rules.items())
        logical = [name for name, _ in DEFAULT_RULES]
        cc.check_keys("mesh.rules", [name for name, _ in rules], logical)
        clean = []
        for name, target in rules:
            targets = [target] if isinstance(target, str) else list(target or [])
            targets = [t for t in targets if t]
            for t in targets:
                if t not in MESH_AXES:
                    cc.fail(f"mesh.rules.{name}", target, f"mesh axes are {', '.join(MESH_AXES)}")
            mapped = None if not targets else targets[0] if len(targets) == 1 else tuple(targets)
            clean.append((name, mapped))
        check.set("rules", tuple(clean))

    def sharding_rules(self) -> tuple:
        override = dict(self.rules)
        return tuple((name, override.get(name, target)) for name, target in DEFAULT_RULES)


# ---- the whole run ------------------------------------------------------------------------

_OWN_SECTIONS = {
    "optimizer": OptimizerConfig,
    "schedule": ScheduleConfig,
    "train": TrainConfig,
    "mesh": MeshConfig,
}
SECTIONS = ("model", "data", *_OWN_SECTIONS)
# Keys that may differ when a run directory is resumed (they do not change the numbers).
RESUME_FREE_KEYS = {
    ("data", "cache_dir"),
    ("train", "progress"),
    ("train", "log_every"),
    ("train", "async_checkpointing"),
    ("mesh", "data"),
    ("mesh", "fsdp"),
    ("mesh", "model"),
    ("mesh", "rules"),
    ("model", "remat"),
}


def section_class(name: str) -> type:
    """The dataclass of a run config section (model and data imported on demand: their
    packages pull in JAX and the tokenizers)."""
    if name == "model":
        from scaling.model.config import ModelConfig

        return ModelConfig
    if name == "data":
        from scaling.data.config import DataConfig

        return DataConfig
    return _OWN_SECTIONS[name]


def build_section(section: str, values: Any) -> Any:
    """One section of a run config from its TOML table."""
    required = ("width", "depth") if section == "model" else ()
    return cc.build_section(section_class(section), section, values, required=required)


def reconcile_seq_len(model: dict[str, Any], data: dict[str, Any]) -> int | None:
    """seq_len is the model's and the data's: one value, given in either section (or
    neither: the default). Returns it, or None when neither gives it."""
    if "seq_len" in model and "seq_len" in data and model["seq_len"] != data["seq_len"]:
        raise ValueError(f"model.seq_len={model['seq_len']} and data.seq_len={data['seq_len']} differ; give it once")
    return model.get("seq_len", data.get("seq_len"))


@dataclass(frozen=True)
class RunConfig:
    model: ModelConfig
    data: DataConfig
    optimizer: OptimizerConfig = OptimizerConfig()
    schedule: ScheduleConfig = ScheduleConfig()
    train: TrainConfig = TrainConfig(steps=1)
    mesh: MeshConfig = MeshConfig()

    def __post_init__(self) -> None:
        if not self.train.has_length:
            raise ValueError("train: give train.steps or train.tokens")
        if self.model.seq_len != self.data.seq_len:
            raise ValueError(
                f"model.seq_len={self.model.seq_len} and data.seq_len={self.data.seq_len} differ; give it once"
            )

    @classmethod
    def from_dict(cls, raw: dict) -> RunConfig:
        cc.check_sections(raw, SECTIONS)
        if "model" not in raw:
            raise ValueError("config has no [model] section (needs at least width and depth)")
        model, data = dict(raw.get("model", {})), dict(raw.get("data", {}))
        seq = reconcile_seq_len(model, data)
        if seq is not None:
            model["seq_len"] = data["seq_len"] = seq
        built = {
            section: build_section(section, {"model": model, "data": data}[section]) for section in ("model", "data")
        }
        if built["model"].seq_len != built["data"].seq_len:  # neither gave it: the model's default
            built["data"] = build_section("data", {**data, "seq_len": built["model"].seq_len})
        for section in _OWN_SECTIONS:
            built[section] = build_section(section, raw.get(section, {}))
        return cls(**built)

    def to_dict(self) -> dict:
        return {name: cc.plain(getattr(self, name)) for name in SECTIONS}

    @property
    def steps(self) -> int:
        return self.train.num_steps(self.model.seq_len)

    @property
    def eval_batch_size(self) -> int:
        """Sequences per evaluation batch (data.eval_batch_size, 0 = train.global_batch_size)."""
        return self.data.eval_batch_size or self.train.global_batch_size


def apply_overrides(raw: dict, overrides: list[str] | dict | None) -> dict:
    """Apply `section.key=value` overrides (strings) or a {"section.key": value} mapping."""
    return cc.apply_overrides(raw, overrides, SECTIONS)


def read_raw(path: str | Path) -> dict:
    """A TOML config file, or a run directory's config.json (older spellings upgraded)."""
    path = Path(path)
    if path.suffix == ".json":
        if not path.is_file():
            raise FileNotFoundError(f"config file {str(path)!r} not found")
        raw = json.loads(path.read_text())
        return cc.upgrade(raw.get("config", raw))
    return cc.read_toml(path)


def load_config(path: str | Path, overrides: list[str] | dict | None = None) -> RunConfig:
    """Read a TOML file (or a run dir's config.json), apply overrides, validate."""
    return RunConfig.from_dict(apply_overrides(read_raw(path), overrides))


def diff_configs(old: dict, new: dict, ignore=RESUME_FREE_KEYS) -> list[str]:
    """Human-readable differences between two `RunConfig.to_dict()` results (a config
    stored by an older version is read in today's spelling first)."""
    old, new = cc.upgrade(old), cc.upgrade(new)
    out = []
    for section in sorted(set(old) | set(new)):
        a, b = old.get(section, {}) or {}, new.get(section, {}) or {}
        defaults = field_defaults(section)
        for key in sorted(set(a) | set(b)):
            if (section, key) in ignore:
                continue
            # an option added after the run started reads as its default there
            va, vb = a.get(key, defaults.get(key)), b.get(key, defaults.get(key))
            if va != vb:
                out.append(f"{section}.{key}: {va!r} (existing run) != {vb!r} (this config)")
    return out


def field_defaults(section: str) -> dict[str, Any]:
    """A config section's field defaults in the JSON shape of `RunConfig.to_dict()` (as a
    run's config.json holds them); {} for an unknown section."""
    try:
        cls = section_class(section)
    except KeyError:
        return {}
    return cc.field_defaults(cls)
