"""The sweep config: a TOML file describing a family, budgets and a plan kind.

    [sweep]      name, kind ("isoflop" | "horizons" | "wsd"), budgets, points_per_budget,
                 tokens_per_param (the expected optimum), tokens_per_param_range,
                 flop_convention, param_count, seeds
    [family]     widths (a list or {start, stop, step}) with a depth rule (aspect_ratio,
                 depth, or depths paired with widths), or an explicit grid of [width, depth]
    [hparams]    per-run hyperparameter rules: learning rate (muP transfer, or a power of
                 width), batch size (fixed, or a power of the budget), warmup
    [wsd]        cooldown_fraction, cooldown_shape ("linear" | "1-sqrt")   (kind = "wsd")
    [model] [data] [optimizer] [schedule] [train] [mesh]
                 the trainer's own sections: a `RunTemplate` (typed; width, depth, length,
                 learning rate, schedule and batch size are filled in per run).

Every table is read by `scaling.core.config`, as the trainer's are: errors read
`section.key=value: why` and an unknown key names the closest valid one.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scaling.core import config as cc
from scaling.core.flops import DEFAULT_FLOP_CONVENTION, FLOP_CONVENTIONS
from scaling.core.schedules import COOLDOWN_SHAPES
from scaling.sweep.trainer_config import TRAINER_SECTIONS, RunTemplate

PLAN_KINDS = ("isoflop", "horizons", "wsd", "hparam_grid", "data_constrained")
LR_RULES = ("mup", "width_power", "constant", "law", "tuned", "per_width")
BATCH_RULES = ("fixed", "budget_power", "law")
PARAM_COUNTS = ("nonembedding", "total")
SWEEP_SECTIONS = ("sweep", "family", "hparams", "wsd")


def _positive(where: str, value: Any, *, integer: bool = False) -> None:
    ok_type = int if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, ok_type) or not value > 0 or not math.isfinite(value):
        cc.fail(where, value, "must be a positive integer" if integer else "must be a positive number")


def _range(where: str, spec: Any, *, log: bool) -> list[float]:
    """A list of numbers, or {start, stop, num} (log-spaced when `log`) or {start, stop, step}."""
    if isinstance(spec, (list, tuple)):
        values = list(spec)
    elif isinstance(spec, Mapping):
        keys = ("start", "stop", "num") if log else ("start", "stop", "step")
        cc.check_keys(where, spec, keys)
        missing = [k for k in keys if k not in spec]
        if missing:
            cc.fail(where, dict(spec), f"needs {', '.join(keys)} (missing {', '.join(missing)})")
        start, stop, last = (spec[k] for k in keys)
        for k in keys:
            _positive(f"{where}.{k}", spec[k], integer=not log or k == "num")
        if stop < start:
            cc.fail(where, dict(spec), f"stop={stop!r} is below start={start!r}")
        if not log:
            values = list(range(start, stop + 1, last))
        elif last == 1:
            values = [float(start)]
        else:
            r = math.log(stop / start)
            values = [float(start * math.exp(r * i / (last - 1))) for i in range(last)]
            values[-1] = float(stop)
    else:
        cc.fail(where, spec, "must be a list or a table")
    if not values:
        cc.fail(where, spec, "is empty")
    return values


@dataclass(frozen=True)
class SweepSection:
    name: str = "sweep"
    kind: str = "isoflop"
    budgets: Any = None
    points_per_budget: int = 5
    tokens_per_param: float = 20.0
    tokens_per_param_range: tuple[float, float] = (5.0, 80.0)
    flop_convention: str = DEFAULT_FLOP_CONVENTION
    param_count: str = "nonembedding"
    seeds: tuple[int, ...] = (0,)
    unique_tokens: tuple[int, ...] = ()  # kind = "data_constrained": the fixed unique-token counts

    def __post_init__(self) -> None:
        check = cc.Checks("sweep", self)
        check.string("name")
        check.choice("kind", PLAN_KINDS)
        check.choice("flop_convention", FLOP_CONVENTIONS)
        check.choice("param_count", PARAM_COUNTS)
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
        if not isinstance(self.unique_tokens, (list, tuple)):
            raise ValueError(f"sweep.unique_tokens={self.unique_tokens!r} must be a list of token counts")
        for i, u in enumerate(self.unique_tokens):
            _positive(f"sweep.unique_tokens[{i}]", u, integer=True)
        object.__setattr__(self, "unique_tokens", tuple(sorted(set(self.unique_tokens))))
        if self.kind == "data_constrained" and not self.unique_tokens:
            raise ValueError(
                'sweep.kind = "data_constrained" needs sweep.unique_tokens (the unique-token counts to hold fixed)'
            )
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
            pairs = list(zip(self.widths, self.depths or (), strict=True))
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
    """Per-run hyperparameter rules, relative to optimizer.lr and train.global_batch_size.

    lr = "mup":          the base learning rate at every width; the model's muP
                         per-tensor multipliers (relative to model.base_width) do the
                         transfer. Requires model.parameterization = "mup".
    lr = "width_power":  lr = base_lr * (lr_base_width / width) ** lr_exponent (e.g. 1: LR ∝ 1/width).
    lr = "constant":     the base learning rate everywhere.
    lr = "tuned":        an LR grid (base_lr x lr_tune_grid) per width at the smallest budget,
                         then lr_rule's LR per width for every budget (scaling.sweep.lr_tuning).
                         lr_tune_seeds: the seeds the grid trains (default: sweep.seeds); the
                         grid is averaged over them (one seed can be too noisy for the rule).
    lr = "per_width":    lr_by_width[width] (what "tuned" resolves to; a table of width -> LR).
    batch_size = "fixed": train.global_batch_size for every run.
    batch_size = "budget_power": batch = base * (budget / batch_reference_flops) ** batch_exponent,
                         rounded to a multiple of batch_multiple (at least one multiple).
    lr = "law", batch_size = "law": the optimum of a fitted hyperparameter law at each run's
                         (N, D), from law_file (an HparamLaws JSON, scaling.analysis.hparams).
    lr_grid, batch_grid: the learning rates and batch sizes (sequences) every cell of a
                         sweep.kind = "hparam_grid" plan trains (2+ values each).
    Warmup is the trainer's schedule.warmup: steps if >= 1, else a fraction of each run.
    """

    lr: str = "constant"
    lr_base_width: int | None = None
    lr_exponent: float = 1.0
    lr_tune_grid: tuple[float, ...] = (0.25, 0.5, 1.0, 2.0)
    lr_rule: str = "fit"
    lr_tune_seeds: tuple[int, ...] = ()
    lr_by_width: Mapping[str, float] | None = None
    batch_size: str = "fixed"
    batch_reference_flops: float | None = None
    batch_exponent: float = 0.3
    batch_multiple: int = 8
    law_file: str | None = None
    lr_grid: tuple[float, ...] = ()
    batch_grid: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        check = cc.Checks("hparams", self)
        check.choice("lr", LR_RULES)
        check.choice("batch_size", BATCH_RULES)
        check.choice("lr_rule", ("fit", "nearest"))
        grid = self.lr_tune_grid
        if not isinstance(grid, (list, tuple)) or len(grid) < 3:
            raise ValueError(f"hparams.lr_tune_grid={grid!r} must list at least 3 multipliers of [optimizer].lr")
        for i, m in enumerate(grid):
            _positive(f"hparams.lr_tune_grid[{i}]", m)
        object.__setattr__(self, "lr_tune_grid", tuple(sorted(float(m) for m in grid)))
        seeds = self.lr_tune_seeds
        if not isinstance(seeds, (list, tuple)):
            raise ValueError(f"hparams.lr_tune_seeds={seeds!r} must be a list of seeds (empty: sweep.seeds)")
        for i, sd in enumerate(seeds):
            if isinstance(sd, bool) or not isinstance(sd, int) or sd < 0:
                raise ValueError(f"hparams.lr_tune_seeds[{i}]={sd!r} is not a non-negative integer")
        if len(set(seeds)) != len(seeds):
            raise ValueError(f"hparams.lr_tune_seeds={list(seeds)} repeats a seed: the runs would be duplicates")
        object.__setattr__(self, "lr_tune_seeds", tuple(seeds))
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
        check.number("lr_exponent", "batch_exponent")
        if self.batch_size == "budget_power" and self.batch_reference_flops is None:
            raise ValueError("hparams.batch_size='budget_power' needs hparams.batch_reference_flops")
        if self.batch_reference_flops is not None:
            _positive("hparams.batch_reference_flops", self.batch_reference_flops)
        _positive("hparams.batch_multiple", self.batch_multiple, integer=True)
        if "law" in (self.lr, self.batch_size) and not self.law_file:
            raise ValueError('hparams.lr/batch_size = "law" needs hparams.law_file (a fitted hyperparameter-law JSON)')
        for name, integer in (("lr_grid", False), ("batch_grid", True)):
            values = getattr(self, name)
            if not isinstance(values, (list, tuple)):
                raise ValueError(f"hparams.{name}={values!r} must be a list")
            for i, v in enumerate(values):
                _positive(f"hparams.{name}[{i}]", v, integer=integer)
            if len(set(values)) != len(values):
                raise ValueError(f"hparams.{name}={list(values)} lists a value more than once")
            object.__setattr__(self, name, tuple(sorted(values)))


@dataclass(frozen=True)
class WsdSection:
    """cooldown_fraction: each branch decays over this last share of its steps.
    cooldown_shape: the trainer's schedule.cooldown_shape, "linear" or "1-sqrt"."""

    cooldown_fraction: float = 0.2
    cooldown_shape: str = "1-sqrt"

    def __post_init__(self) -> None:
        check = cc.Checks("wsd", self)
        check.number("cooldown_fraction", positive=True, below=1)
        check.choice("cooldown_shape", COOLDOWN_SHAPES)


@dataclass(frozen=True)
class SweepConfig:
    sweep: SweepSection
    family: FamilySection
    hparams: HparamsSection = field(default_factory=HparamsSection)
    wsd: WsdSection = field(default_factory=WsdSection)
    base: RunTemplate = field(default_factory=RunTemplate)  # the trainer's sections
    source: str | None = None  # the file it came from

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str | None = None) -> SweepConfig:
        cc.check_sections(data, [*SWEEP_SECTIONS, *TRAINER_SECTIONS], where="sweep config")
        for name in ("sweep", "family"):
            if name not in data:
                raise ValueError(f"the sweep config needs a [{name}] table")
        sweep = cc.build_section(SweepSection, "sweep", data["sweep"])
        trainer = {k: v for k, v in data.items() if k in TRAINER_SECTIONS}
        cfg = cls(
            sweep=sweep,
            family=cc.build_section(FamilySection, "family", data["family"]),
            hparams=cc.build_section(HparamsSection, "hparams", data.get("hparams", {})),
            wsd=cc.build_section(WsdSection, "wsd", data.get("wsd", {})),
            base=RunTemplate.from_dict(trainer, flop_convention=sweep.flop_convention),
            source=source,
        )
        if "wsd" in data and cfg.sweep.kind != "wsd":
            raise ValueError(f'[wsd] is given but sweep.kind={cfg.sweep.kind!r}; set kind = "wsd" or drop [wsd]')
        if cfg.sweep.kind == "hparam_grid":
            for name, what in (("lr_grid", "learning rates"), ("batch_grid", "batch sizes")):
                values = getattr(cfg.hparams, name)
                if len(values) < 2:
                    raise ValueError(
                        f'sweep.kind = "hparam_grid" needs 2+ {what} in hparams.{name} (got {list(values)}): '
                        "an optimum cannot be located along an axis with a single value"
                    )
        if cfg.hparams.lr == "mup" and cfg.base.model.get("parameterization", "sp") != "mup":
            raise ValueError('hparams.lr="mup" needs model.parameterization = "mup" (muP transfer)')
        return cfg

    def to_dict(self) -> dict[str, Any]:
        """The resolved config (defaults filled, budgets expanded): what DIR/sweep.toml holds."""
        out: dict[str, Any] = {}
        for name in ("sweep", "family", "hparams"):
            section = dataclasses.asdict(getattr(self, name))
            out[name] = {k: _plain(v) for k, v in section.items() if v is not None and v != ()}
        if self.sweep.kind == "wsd":
            out["wsd"] = dataclasses.asdict(self.wsd)
        out.update(self.base.given_dict())
        return out


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value


def load_sweep_config(path: str | Path, overrides: list[str] | None = None) -> SweepConfig:
    """Read and validate a sweep TOML file (plus optional dotted overrides)."""
    data = cc.read_toml(path, what="sweep config")
    data = cc.apply_overrides(data, overrides or [], [*SWEEP_SECTIONS, *TRAINER_SECTIONS])
    return SweepConfig.from_dict(data, source=str(path))
