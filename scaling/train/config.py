"""A training run's configuration: TOML sections parsed into frozen, validated dataclasses.

    [model]      -> scaling.model.ModelConfig   (the model engineer's)
    [data]       -> scaling.data.DataConfig     (the data engineer's)
    [optimizer]  -> OptimizerConfig
    [schedule]   -> ScheduleConfig
    [train]      -> TrainConfig
    [mesh]       -> MeshConfig
    [track]      -> scaling.train.tracking.TrackConfig  (live TensorBoard / W&B mirrors)

`load_config(path, overrides)` reads a TOML (or a run dir's `config.json`) file and applies
dotted overrides (`optimizer.lr=3e-3`, values parsed as TOML literals). Unknown sections and
keys are errors that name the closest valid key. Validation here is cheap and device-free;
checks that need the devices (mesh shape, batch divisibility) live in `scaling.train.mesh`.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scaling.config_keys import check_known_keys

OPTIMIZERS = ("adamw", "sgd")
SCHEDULES = ("cosine", "wsd", "constant")
DECAY_SHAPES = ("linear", "sqrt")
FLOPS_CONVENTIONS = ("6N", "6N+attention", "exact", "exact-causal")


def _fail(section: str, name: str, value: Any, why: str) -> None:
    raise ValueError(f"{section}.{name}={value!r}: {why}")


def _check_number(
    section: str, name: str, value: Any, *, minimum: float | None = None, positive: bool = False, integer: bool = False
) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        _fail(section, name, value, "must be a number")
    if integer and not isinstance(value, int):
        _fail(section, name, value, "must be an integer")
    if not math.isfinite(value):
        _fail(section, name, value, "must be finite")
    if positive and not value > 0:
        _fail(section, name, value, "must be > 0")
    if minimum is not None and value < minimum:
        _fail(section, name, value, f"must be >= {minimum}")


def _check_choice(section: str, name: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        close = difflib.get_close_matches(str(value), choices, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        _fail(section, name, value, f"must be one of {', '.join(map(repr, choices))}{hint}")


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
        s = "optimizer"
        _check_choice(s, "name", self.name, OPTIMIZERS)
        _check_number(s, "lr", self.lr, positive=True)
        for name in ("b1", "b2"):
            value = getattr(self, name)
            _check_number(s, name, value, minimum=0.0)
            if value >= 1:
                _fail(s, name, value, "must be < 1")
        _check_number(s, "eps", self.eps, positive=True)
        for name in ("weight_decay", "clip_norm", "z_loss"):
            _check_number(s, name, getattr(self, name), minimum=0.0)
        if not isinstance(self.decay_embeddings, bool):
            _fail(s, "decay_embeddings", self.decay_embeddings, "must be true or false")


@dataclass(frozen=True)
class ScheduleConfig:
    """Learning-rate schedule (peak = optimizer.lr); see `scaling.train.schedules`.

    kind: "cosine" (warmup, then cosine to min_lr_ratio × peak at the last step),
        "wsd" (warmup, stable at peak, then a cooldown over the last decay_fraction of the
        steps to min_lr_ratio × peak, shape "linear" or "sqrt" = 1−√), or "constant".
    warmup: linear warmup length: a step count if >= 1, a fraction of the run's steps if < 1.
    """

    kind: str = "cosine"
    warmup: float = 0.0
    min_lr_ratio: float = 0.1
    decay_fraction: float = 0.2
    decay_shape: str = "linear"

    def __post_init__(self) -> None:
        s = "schedule"
        _check_choice(s, "kind", self.kind, SCHEDULES)
        _check_number(s, "warmup", self.warmup, minimum=0.0)
        if self.warmup >= 1 and self.warmup != int(self.warmup):
            _fail(s, "warmup", self.warmup, "a warmup >= 1 is a step count and must be a whole number")
        _check_number(s, "min_lr_ratio", self.min_lr_ratio, minimum=0.0)
        if self.min_lr_ratio > 1:
            _fail(s, "min_lr_ratio", self.min_lr_ratio, "must be <= 1")
        _check_number(s, "decay_fraction", self.decay_fraction, minimum=0.0)
        if self.decay_fraction > 1:
            _fail(s, "decay_fraction", self.decay_fraction, "must be <= 1")
        _check_choice(s, "decay_shape", self.decay_shape, DECAY_SHAPES)


@dataclass(frozen=True)
class TrainConfig:
    """The loop: length, batch, evaluation, checkpoints.

    steps | tokens: run length; give exactly one (tokens -> ceil(tokens / (batch × seq_len)) steps).
    global_batch_size: sequences per optimizer step, over all devices and hosts.
    microbatches: gradient accumulation; the gradient is the mean over the whole batch.
    eval_every: held-out evaluation every this many steps (0 = only at the end).
    eval_batches, eval_batch_size: the fixed validation set (batch size 0 = global_batch_size).
    checkpoint_every: save every this many steps (0 = only at the end and on SIGTERM).
    keep: how many of the latest checkpoints to keep.
    keep_eval_checkpoints: also save at every evaluation step and keep all of those
        (weight-space interpolation between steps needs them).
    save_steps: extra steps to save and keep forever (e.g. WSD branch points).
    init_from: ["checkpoint_dir", step]: start from another run's params and optimizer
        state at that step (the step counter continues from there) under this config's
        schedule, e.g. a WSD cooldown branch. "" = a fresh start.
    seed: parameter-initialisation seed (the data order has its own, data.seed).
    flops_convention: how the `flops` column counts ("6N", "6N+attention", "exact",
        "exact-causal").
    mfu_convention: the FLOP count behind the `mfu` column: "exact" (the causal attention
        matrix in full, as computed) or "exact-causal" (half of it, MaxText's convention,
        for comparing MFU with toolkits that count so); any convention is accepted.
    peak_flops: the devices' peak FLOP/s per device for `mfu` (0 = from the table in
        scaling.train.metrics by device kind; set it for chips the table lacks).
    profile_steps: [start, stop]: write a jax.profiler trace of steps start..stop-1 to
        RUN_DIR/profile (TensorBoard's profile plugin / Perfetto); [] = no trace.
    """

    steps: int = 0
    tokens: int = 0
    global_batch_size: int = 32
    microbatches: int = 1
    eval_every: int = 100
    eval_batches: int = 8
    eval_batch_size: int = 0
    eval_at_start: bool = False
    checkpoint_every: int = 100
    keep: int = 2
    keep_eval_checkpoints: bool = False
    save_steps: tuple[int, ...] = ()
    init_from: tuple[str, int] | None = None
    seed: int = 0
    log_every: int = 10
    flops_convention: str = "6N"
    progress: bool = True
    async_checkpointing: bool = True
    mfu_convention: str = "exact"
    peak_flops: float = 0.0
    profile_steps: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        s = "train"
        for name in ("steps", "tokens", "eval_every", "eval_batch_size", "checkpoint_every", "seed"):
            _check_number(s, name, getattr(self, name), minimum=0, integer=True)
        for name in ("global_batch_size", "microbatches", "eval_batches", "keep", "log_every"):
            _check_number(s, name, getattr(self, name), minimum=1, integer=True)
        if (self.steps > 0) == (self.tokens > 0):
            raise ValueError(
                f"train: give exactly one of train.steps or train.tokens (got steps={self.steps}, tokens={self.tokens})"
            )
        if self.global_batch_size % self.microbatches:
            _fail(s, "microbatches", self.microbatches, f"must divide train.global_batch_size={self.global_batch_size}")
        for name in ("eval_at_start", "keep_eval_checkpoints", "progress", "async_checkpointing"):
            if not isinstance(getattr(self, name), bool):
                _fail(s, name, getattr(self, name), "must be true or false")
        _check_choice(s, "flops_convention", self.flops_convention, FLOPS_CONVENTIONS)
        _check_choice(s, "mfu_convention", self.mfu_convention, FLOPS_CONVENTIONS)
        _check_number(s, "peak_flops", self.peak_flops, minimum=0.0)
        from scaling.train.profile import check_window

        object.__setattr__(self, "profile_steps", check_window(self.profile_steps, f"{s}.profile_steps"))
        steps = self.save_steps
        if not isinstance(steps, (list, tuple)) or any(
            isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in steps
        ):
            _fail(s, "save_steps", steps, "must be a list of positive step numbers")
        object.__setattr__(self, "save_steps", tuple(sorted(set(steps))))
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
            _fail(s, "init_from", init, 'must be ["checkpoint_dir", step] or ""')
        else:
            init = (str(init[0]), int(init[1]))
        object.__setattr__(self, "init_from", init)

    def num_steps(self, seq_len: int) -> int:
        if self.steps:
            return self.steps
        return max(1, -(-self.tokens // (self.global_batch_size * seq_len)))

    @property
    def eval_size(self) -> int:
        return self.eval_batch_size or self.global_batch_size


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
        from scaling.sharding import DEFAULT_RULES, MESH_AXES

        sizes = [self.data, self.fsdp, self.model]
        for name, value in zip(MESH_AXES, sizes):
            _check_number("mesh", name, value, integer=True)
            if value == 0 or value < -1:
                _fail("mesh", name, value, "must be a positive size or -1 (fill)")
        if sizes.count(-1) > 1:
            raise ValueError(
                f"mesh: at most one axis may be -1 (got data={self.data}, fsdp={self.fsdp}, model={self.model})"
            )
        rules = self.rules
        if isinstance(rules, dict):
            rules = tuple(rules.items())
        logical = [name for name, _ in DEFAULT_RULES]
        clean = []
        for name, target in rules:
            if name not in logical:
                close = difflib.get_close_matches(name, logical, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else f"; known: {', '.join(logical)}"
                raise ValueError(f"mesh.rules: unknown logical axis {name!r}{hint}")
            targets = [target] if isinstance(target, str) else list(target or [])
            targets = [t for t in targets if t]
            for t in targets:
                if t not in MESH_AXES:
                    _fail("mesh.rules", name, target, f"mesh axes are {', '.join(MESH_AXES)}")
            value = None if not targets else targets[0] if len(targets) == 1 else tuple(targets)
            clean.append((name, value))
        object.__setattr__(self, "rules", tuple(clean))

    def sharding_rules(self) -> tuple:
        from scaling.sharding import DEFAULT_RULES

        override = dict(self.rules)
        return tuple((name, override.get(name, target)) for name, target in DEFAULT_RULES)


# ---- the whole run ------------------------------------------------------------------------

_OWN_SECTIONS = {
    "optimizer": OptimizerConfig,
    "schedule": ScheduleConfig,
    "train": TrainConfig,
    "mesh": MeshConfig,
}
SECTIONS = ("model", "data", *_OWN_SECTIONS, "track")
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
    ("train", "mfu_convention"),
    ("train", "peak_flops"),
    ("train", "profile_steps"),
    *(("track", key) for key in ("backends", "project", "group", "run_id", "entity", "tensorboard_dir", "wandb_dir")),
}


def _section_class(name: str):
    if name == "model":
        from scaling.model import ModelConfig

        return ModelConfig
    if name == "data":
        from scaling.data import DataConfig

        return DataConfig
    if name == "track":
        from scaling.train.tracking import TrackConfig

        return TrackConfig
    return _OWN_SECTIONS[name]


def _build(section: str, values: dict) -> Any:
    cls = _section_class(section)
    if not isinstance(values, dict):
        raise ValueError(f"[{section}] must be a table, got {values!r}")
    known = [f.name for f in dataclasses.fields(cls)]
    check_known_keys(values, known, lambda key: f"unknown config key {section}.{key}", show=lambda k: f"{section}.{k}")
    if hasattr(cls, "from_dict"):
        return cls.from_dict(dict(values))
    return cls(**values)


def _as_dict(obj: Any) -> dict:
    d = obj.to_dict() if hasattr(obj, "to_dict") else dataclasses.asdict(obj)
    return json.loads(json.dumps(d, default=list))  # tuples -> lists: the JSON/TOML shape


@dataclass(frozen=True)
class RunConfig:
    model: Any
    data: Any
    optimizer: OptimizerConfig = OptimizerConfig()
    schedule: ScheduleConfig = ScheduleConfig()
    train: TrainConfig = TrainConfig(steps=1)
    mesh: MeshConfig = MeshConfig()
    track: Any = None  # scaling.train.tracking.TrackConfig; None = no tracking

    def __post_init__(self) -> None:
        if self.track is None:
            from scaling.train.tracking import TrackConfig

            object.__setattr__(self, "track", TrackConfig())

    @classmethod
    def from_dict(cls, raw: dict) -> RunConfig:
        for key in raw:
            if key not in SECTIONS:
                close = difflib.get_close_matches(key, SECTIONS, n=1)
                hint = f"; did you mean [{close[0]}]?" if close else f"; sections: {', '.join(SECTIONS)}"
                raise ValueError(f"unknown config section [{key}]{hint}")
        if "model" not in raw:
            raise ValueError("config has no [model] section (needs at least width and depth)")
        model = dict(raw.get("model", {}))
        data = dict(raw.get("data", {}))
        # seq_len is the model's and the data's: one value, given in either section.
        if "seq_len" in model and "seq_len" in data and model["seq_len"] != data["seq_len"]:
            raise ValueError(
                f"model.seq_len={model['seq_len']} and data.seq_len={data['seq_len']} differ; give it once"
            )
        built = {}
        for section in ("model", "data"):
            built[section] = _build(section, {"model": model, "data": data}[section])
        if built["model"].seq_len != built["data"].seq_len:
            seq = model.get("seq_len", data.get("seq_len", built["model"].seq_len))
            built["model"] = _build("model", {**model, "seq_len": seq})
            built["data"] = _build("data", {**data, "seq_len": seq})
        for section in _OWN_SECTIONS:
            values = dict(raw.get(section, {}))
            if section == "train" and not values.get("steps") and not values.get("tokens"):
                raise ValueError("train: give train.steps or train.tokens")
            built[section] = _build(section, values)
        built["track"] = _build("track", dict(raw.get("track", {})))
        return cls(**built)

    def to_dict(self) -> dict:
        # [track] only when set: configs (and config.json files, sweep run ids) of runs
        # without tracking stay what they were before the section existed.
        names = SECTIONS if self.track.backends or self.track != type(self.track)() else SECTIONS[:-1]
        return {name: _as_dict(getattr(self, name)) for name in names}

    @property
    def steps(self) -> int:
        return self.train.num_steps(self.model.seq_len)


def parse_value(text: str) -> Any:
    """A `--set` value: a TOML literal (3e-3, true, [1, 2], "x"), else the bare string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def apply_overrides(raw: dict, overrides: list[str] | dict | None) -> dict:
    """Apply `section.key=value` overrides (strings) or a {"section.key": value} mapping."""
    out = json.loads(json.dumps(raw))
    if not overrides:
        return out
    items = overrides.items() if isinstance(overrides, dict) else [_split_override(o) for o in overrides]
    for dotted, value in items:
        parts = dotted.split(".")
        if len(parts) < 2 or not all(parts):
            raise ValueError(f"override {dotted!r} must look like section.key=value")
        if parts[0] not in SECTIONS:
            close = difflib.get_close_matches(parts[0], SECTIONS, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; sections: {', '.join(SECTIONS)}"
            raise ValueError(f"override {dotted!r}: unknown section {parts[0]!r}{hint}")
        node = out
        for p in parts[:-1]:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise ValueError(f"override {dotted!r}: {p!r} is not a table")
        node[parts[-1]] = parse_value(value) if isinstance(value, str) and not isinstance(overrides, dict) else value
    return out


def _split_override(text: str) -> tuple[str, str]:
    if "=" not in text:
        raise ValueError(f"override {text!r} must look like section.key=value")
    key, value = text.split("=", 1)
    return key.strip(), value.strip()


def read_raw(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file {str(path)!r} not found")
    text = path.read_text()
    if path.suffix == ".json":
        raw = json.loads(text)
        return raw.get("config", raw)
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ValueError(f"{path}: invalid TOML: {err}") from None


def load_config(path: str | Path, overrides: list[str] | dict | None = None) -> RunConfig:
    """Read a TOML file (or a run dir's config.json), apply overrides, validate."""
    return RunConfig.from_dict(apply_overrides(read_raw(path), overrides))


def diff_configs(old: dict, new: dict, ignore=RESUME_FREE_KEYS) -> list[str]:
    """Human-readable differences between two `RunConfig.to_dict()` results."""
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
        cls = _section_class(section)
    except KeyError:
        return {}
    out = {}
    for f in dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING:
            out[f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            out[f.name] = f.default_factory()
    return json.loads(json.dumps(out, default=list))
