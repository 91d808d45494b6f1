"""The sweep config: a TOML file describing a family, budgets and a plan kind.

    [sweep]      name, kind ("isoflop" | "horizons" | "wsd"), budgets, points_per_budget,
                 tokens_per_param (the expected optimum), tokens_per_param_range,
                 flop_convention, param_count, seeds
    [family]     widths (a list or {start, stop, step}) with a depth rule (aspect_ratio,
                 depth, or depths paired with widths), or an explicit grid of [width, depth]
    [hparams]    per-run hyperparameter rules: learning rate (muP transfer, or a power of
                 width), batch size (fixed, or a power of the budget), warmup
    [wsd]        cooldown_fraction, decay_shape ("linear" | "sqrt" = 1-sqrt)   (kind = "wsd")
    [model] [data] [optimizer] [schedule] [train] [mesh]
                 the trainer's own sections, passed through (width, depth, lengths,
                 learning rate, schedule and batch size are filled in per run) and
                 validated by the trainer's config parser, not here.

Every table rejects unknown keys, naming the closest valid one.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scaling.config_keys import check_known_keys

PLAN_KINDS = ("isoflop", "horizons", "wsd")
TRAINER_SECTIONS = ("model", "data", "optimizer", "schedule", "train", "mesh")
LR_RULES = ("mup", "width_power", "constant", "tuned", "per_width")
BATCH_RULES = ("fixed", "budget_power")
PARAM_COUNTS = ("nonembedding", "total")


def check_keys(where: str, data: Mapping[str, Any], known: list[str] | tuple[str, ...]) -> None:
    """Reject keys of `data` not in `known`, suggesting the closest valid key."""
    check_known_keys(data, known, lambda key: f"unknown key {key!r} in {where}", cutoff=0.5)


def _from_table(cls, where: str, data: Mapping[str, Any]):
    if not isinstance(data, Mapping):
        raise ValueError(f"{where} must be a table, got {data!r}")
    check_keys(where, data, [f.name for f in dataclasses.fields(cls)])
    return cls(**data)


def _positive(where: str, value: Any, *, integer: bool = False) -> None:
    ok_type = int if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, ok_type) or not value > 0 or not math.isfinite(value):
        kind = "a positive integer" if integer else "a positive number"
        raise ValueError(f"{where}={value!r} must be {kind}")


def _range(where: str, spec: Any, *, log: bool) -> list[float]:
    """A list of numbers, or {start, stop, num} (log-spaced when `log`) or {start, stop, step}."""
    if isinstance(spec, (list, tuple)):
        values = list(spec)
    elif isinstance(spec, Mapping):
        if log:
            check_keys(where, spec, ("start", "stop", "num"))
            missing = [k for k in ("start", "stop", "num") if k not in spec]
            if missing:
                raise ValueError(f"{where} needs start, stop and num (missing {', '.join(missing)})")
            start, stop, num = spec["start"], spec["stop"], spec["num"]
            _positive(f"{where}.start", start)
            _positive(f"{where}.stop", stop)
            _positive(f"{where}.num", num, integer=True)
            if stop < start:
                raise ValueError(f"{where}: stop={stop!r} is below start={start!r}")
            if num == 1:
                values = [float(start)]
            else:
                r = math.log(stop / start)
                values = [float(start * math.exp(r * i / (num - 1))) for i in range(num)]
                values[-1] = float(stop)
        else:
            check_keys(where, spec, ("start", "stop", "step"))
            missing = [k for k in ("start", "stop", "step") if k not in spec]
            if missing:
                raise ValueError(f"{where} needs start, stop and step (missing {', '.join(missing)})")
            start, stop, step = spec["start"], spec["stop"], spec["step"]
            for k in ("start", "stop", "step"):
                _positive(f"{where}.{k}", spec[k], integer=True)
            values = list(range(start, stop + 1, step))
    else:
        raise ValueError(f"{where} must be a list or a table, got {spec!r}")
    if not values:
        raise ValueError(f"{where} is empty")
    return values


@dataclass(frozen=True)
class SweepSection:
    name: str = "sweep"
    kind: str = "isoflop"
    budgets: Any = None
    points_per_budget: int = 5
    tokens_per_param: float = 20.0
    tokens_per_param_range: tuple[float, float] = (5.0, 80.0)
    flop_convention: str = "exact"
    param_count: str = "nonembedding"
    seeds: tuple[int, ...] = (0,)

    def __post_init__(self) -> None:
        from scaling.model.accounting import FLOP_CONVENTIONS

        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"sweep.name={self.name!r} must be a non-empty string")
        _choice("sweep.kind", self.kind, PLAN_KINDS)
        _choice("sweep.flop_convention", self.flop_convention, FLOP_CONVENTIONS)
        _choice("sweep.param_count", self.param_count, PARAM_COUNTS)
        if self.budgets is None:
            raise ValueError("sweep.budgets is required: a list of FLOPs or {start, stop, num}")
        budgets = _range("sweep.budgets", self.budgets, log=True)
        for i, c in enumerate(budgets):
            _positive(f"sweep.budgets[{i}]", c)
        if len(set(budgets)) != len(budgets):
            dup = next(c for c in budgets if budgets.count(c) > 1)
            raise ValueError(f"sweep.budgets lists {dup:g} more than once")
        object.__setattr__(self, "budgets", tuple(sorted(float(c) for c in budgets)))
        _positive("sweep.points_per_budget", self.points_per_budget, integer=True)
        _positive("sweep.tokens_per_param", self.tokens_per_param)
        rng = self.tokens_per_param_range
        if not isinstance(rng, (list, tuple)) or len(rng) != 2:
            raise ValueError(f"sweep.tokens_per_param_range={rng!r} must be [low, high]")
        for i, v in enumerate(rng):
            _positive(f"sweep.tokens_per_param_range[{i}]", v)
        lo, hi = rng
        if lo >= hi:
            raise ValueError(f"sweep.tokens_per_param_range=[{lo}, {hi}] is inverted or empty: low must be below high")
        if not lo <= self.tokens_per_param <= hi:
            raise ValueError(
                f"sweep.tokens_per_param={self.tokens_per_param} lies outside tokens_per_param_range=[{lo}, {hi}]"
            )
        object.__setattr__(self, "tokens_per_param_range", (float(lo), float(hi)))
        seeds = self.seeds
        if isinstance(seeds, int) and not isinstance(seeds, bool):
            seeds = (seeds,)
        if not isinstance(seeds, (list, tuple)) or not seeds:
            raise ValueError(f"sweep.seeds={self.seeds!r} must be a non-empty list of integers")
        for s in seeds:
            if isinstance(s, bool) or not isinstance(s, int) or s < 0:
                raise ValueError(f"sweep.seeds: {s!r} is not a non-negative integer")
        if len(set(seeds)) != len(seeds):
            raise ValueError(f"sweep.seeds={list(seeds)} repeats a seed: the runs would be duplicates")
        object.__setattr__(self, "seeds", tuple(seeds))


@dataclass(frozen=True)
class FamilySection:
    """Which (width, depth) pairs the sweep may use.

    widths + aspect_ratio: depth = max(1, round(width / aspect_ratio)).
    widths + depth:        one depth for every width.
    widths + depths:       paired lists.
    grid:                  explicit [[width, depth], ...].
    """

    widths: Any = None
    aspect_ratio: float | None = None
    depth: int | None = None
    depths: tuple[int, ...] | None = None
    grid: tuple[tuple[int, int], ...] | None = None

    def __post_init__(self) -> None:
        if self.grid is not None:
            others = [k for k in ("widths", "aspect_ratio", "depth", "depths") if getattr(self, k) is not None]
            if others:
                raise ValueError(f"family.grid lists (width, depth) pairs itself; remove family.{others[0]}")
            pairs = []
            for i, pair in enumerate(self.grid):
                if not isinstance(pair, (list, tuple)) or len(pair) != 2:
                    raise ValueError(f"family.grid[{i}]={pair!r} must be [width, depth]")
                _positive(f"family.grid[{i}] width", pair[0], integer=True)
                _positive(f"family.grid[{i}] depth", pair[1], integer=True)
                pairs.append((int(pair[0]), int(pair[1])))
            object.__setattr__(self, "grid", tuple(pairs))
            return
        if self.widths is None:
            raise ValueError("family needs widths (a list or {start, stop, step}) or grid")
        widths = _range("family.widths", self.widths, log=False)
        for i, w in enumerate(widths):
            _positive(f"family.widths[{i}]", w, integer=True)
        object.__setattr__(self, "widths", tuple(widths))
        rules = [k for k in ("aspect_ratio", "depth", "depths") if getattr(self, k) is not None]
        if len(rules) != 1:
            raise ValueError(
                "family needs exactly one depth rule: aspect_ratio (depth = width / aspect_ratio), "
                f"depth (fixed), or depths (paired with widths); got {rules or 'none'}"
            )
        if self.aspect_ratio is not None:
            _positive("family.aspect_ratio", self.aspect_ratio)
        if self.depth is not None:
            _positive("family.depth", self.depth, integer=True)
        if self.depths is not None:
            if not isinstance(self.depths, (list, tuple)) or len(self.depths) != len(widths):
                raise ValueError(f"family.depths must list one depth per width ({len(widths)}), got {self.depths!r}")
            for i, d in enumerate(self.depths):
                _positive(f"family.depths[{i}]", d, integer=True)
            object.__setattr__(self, "depths", tuple(self.depths))

    def pairs(self) -> list[tuple[int, int]]:
        """The family's (width, depth) pairs, sorted by width then depth, deduplicated."""
        if self.grid is not None:
            pairs = list(self.grid)
        elif self.aspect_ratio is not None:
            pairs = [(w, max(1, round(w / self.aspect_ratio))) for w in self.widths]
        elif self.depth is not None:
            pairs = [(w, self.depth) for w in self.widths]
        else:
            pairs = list(zip(self.widths, self.depths, strict=True))
        seen = set()
        out = []
        for p in sorted(pairs):
            if p in seen:
                raise ValueError(f"family lists (width={p[0]}, depth={p[1]}) more than once")
            seen.add(p)
            out.append(p)
        return out


@dataclass(frozen=True)
class HparamsSection:
    """Per-run hyperparameter rules, relative to [optimizer].lr and [train].batch_size.

    lr = "mup":          the base learning rate at every width; the model's muP
                         per-tensor multipliers (relative to model.base_width) do the
                         transfer. Requires model.parameterization = "mup".
    lr = "width_power":  lr = base_lr * (lr_base_width / width) ** lr_exponent (e.g. 1: LR ∝ 1/width).
    lr = "constant":     the base learning rate everywhere.
    lr = "tuned":        an LR grid (base_lr x lr_grid) per width at the smallest budget,
                         then lr_rule's LR per width for every budget (scaling.sweep.lr_tuning).
    lr = "per_width":    lr_by_width[width] (what "tuned" resolves to; a table of width -> LR).
    batch_size = "fixed": [train].batch_size for every run.
    batch_size = "budget_power": batch = base * (budget / batch_reference_flops) ** batch_exponent,
                         rounded to a multiple of batch_multiple (at least one multiple).
    Warmup is the trainer's schedule.warmup: steps if >= 1, else a fraction of each run.
    """

    lr: str = "constant"
    lr_base_width: int | None = None
    lr_exponent: float = 1.0
    lr_grid: tuple[float, ...] = (0.25, 0.5, 1.0, 2.0)
    lr_rule: str = "fit"
    lr_by_width: Mapping[str, float] | None = None
    batch_size: str = "fixed"
    batch_reference_flops: float | None = None
    batch_exponent: float = 0.3
    batch_multiple: int = 8

    def __post_init__(self) -> None:
        _choice("hparams.lr", self.lr, LR_RULES)
        _choice("hparams.batch_size", self.batch_size, BATCH_RULES)
        _choice("hparams.lr_rule", self.lr_rule, ("fit", "nearest"))
        grid = self.lr_grid
        if not isinstance(grid, (list, tuple)) or len(grid) < 3:
            raise ValueError(f"hparams.lr_grid={grid!r} must list at least 3 multipliers of [optimizer].lr")
        for i, m in enumerate(grid):
            _positive(f"hparams.lr_grid[{i}]", m)
        object.__setattr__(self, "lr_grid", tuple(sorted(float(m) for m in grid)))
        if self.lr == "per_width":
            table = self.lr_by_width
            if not isinstance(table, Mapping) or not table:
                raise ValueError(
                    f'hparams.lr="per_width" needs hparams.lr_by_width = {{width = lr, ...}}, got {table!r}'
                )
            for w, v in table.items():
                _positive(f"hparams.lr_by_width[{w}]", v)
            object.__setattr__(self, "lr_by_width", {str(int(w)): float(v) for w, v in table.items()})
        if self.lr_base_width is not None:
            _positive("hparams.lr_base_width", self.lr_base_width, integer=True)
        if isinstance(self.lr_exponent, bool) or not isinstance(self.lr_exponent, (int, float)):
            raise ValueError(f"hparams.lr_exponent={self.lr_exponent!r} must be a number")
        if self.batch_size == "budget_power" and self.batch_reference_flops is None:
            raise ValueError("hparams.batch_size='budget_power' needs hparams.batch_reference_flops")
        if self.batch_reference_flops is not None:
            _positive("hparams.batch_reference_flops", self.batch_reference_flops)
        _positive("hparams.batch_multiple", self.batch_multiple, integer=True)


@dataclass(frozen=True)
class WsdSection:
    """cooldown_fraction: each branch decays over this last share of its steps.
    decay_shape: the trainer's cooldown shape, "linear" or "sqrt" (1 - sqrt(progress))."""

    cooldown_fraction: float = 0.2
    decay_shape: str = "sqrt"

    def __post_init__(self) -> None:
        from scaling.train.config import DECAY_SHAPES

        if not isinstance(self.cooldown_fraction, (int, float)) or not 0 < self.cooldown_fraction < 1:
            raise ValueError(f"wsd.cooldown_fraction={self.cooldown_fraction!r} must be in (0, 1)")
        _choice("wsd.decay_shape", self.decay_shape, DECAY_SHAPES)


@dataclass(frozen=True)
class SweepConfig:
    sweep: SweepSection
    family: FamilySection
    hparams: HparamsSection = field(default_factory=HparamsSection)
    wsd: WsdSection = field(default_factory=WsdSection)
    base: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # trainer sections
    source: str | None = None  # the file it came from

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str | None = None) -> SweepConfig:
        known = ["sweep", "family", "hparams", "wsd", *TRAINER_SECTIONS]
        check_keys("the sweep config (top-level tables)", data, known)
        for name in ("sweep", "family"):
            if name not in data:
                raise ValueError(f"the sweep config needs a [{name}] table")
        base = {}
        for name in TRAINER_SECTIONS:
            section = data.get(name, {})
            if not isinstance(section, Mapping):
                raise ValueError(f"[{name}] must be a table")
            base[name] = dict(section)
        cfg = cls(
            sweep=_from_table(SweepSection, "[sweep]", data["sweep"]),
            family=_from_table(FamilySection, "[family]", data["family"]),
            hparams=_from_table(HparamsSection, "[hparams]", data.get("hparams", {})),
            wsd=_from_table(WsdSection, "[wsd]", data.get("wsd", {})),
            base=base,
            source=source,
        )
        if "wsd" in data and cfg.sweep.kind != "wsd":
            raise ValueError(f'[wsd] is given but sweep.kind={cfg.sweep.kind!r}; set kind = "wsd" or drop [wsd]')
        if cfg.hparams.lr == "mup" and base["model"].get("parameterization", "sp") != "mup":
            raise ValueError('hparams.lr="mup" needs model.parameterization = "mup" (muP transfer)')
        from scaling.sweep.trainer_config import check_base

        check_base(base, cfg.sweep.flop_convention)
        return cfg

    def to_dict(self) -> dict[str, Any]:
        """The resolved config (defaults filled, budgets expanded): what DIR/sweep.toml holds."""
        out: dict[str, Any] = {}
        for name in ("sweep", "family", "hparams"):
            section = dataclasses.asdict(getattr(self, name))
            out[name] = {k: _plain(v) for k, v in section.items() if v is not None}
        if self.sweep.kind == "wsd":
            out["wsd"] = dataclasses.asdict(self.wsd)
        for name, section in self.base.items():
            if section:
                out[name] = dict(section)
        return out


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value


def _choice(where: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        close = difflib.get_close_matches(str(value), list(choices), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(f"{where}={value!r} must be one of {', '.join(map(repr, choices))}{hint}")


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply "section.key=value" overrides (value parsed as TOML, else taken as a string)."""
    out = {k: dict(v) if isinstance(v, Mapping) else v for k, v in data.items()}
    for item in overrides:
        if "=" not in item or "." not in item.split("=", 1)[0]:
            raise ValueError(f"override {item!r} must look like section.key=value")
        dotted, raw = item.split("=", 1)
        section, key = dotted.strip().split(".", 1)
        try:
            value = tomllib.loads(f"v = {raw}")["v"]
        except tomllib.TOMLDecodeError:
            value = raw
        out.setdefault(section, {})[key] = value
    return out


def load_sweep_config(path: str | Path, overrides: list[str] | None = None) -> SweepConfig:
    """Read and validate a sweep TOML file (plus optional dotted overrides)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"sweep config {str(path)!r} does not exist")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as err:
        raise ValueError(f"{path}: not valid TOML: {err}") from None
    data = apply_overrides(data, overrides or [])
    return SweepConfig.from_dict(data, source=str(path))
