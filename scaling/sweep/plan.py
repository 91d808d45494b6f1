"""Planning: compute budgets → a list of runs, with no training.

Four kinds of plan (``[sweep].kind``):

* ``isoflop`` (Chinchilla Approach 2): for each budget C, ``points_per_budget`` model
  sizes spaced evenly in log N around the expected optimum N*(C) (where tokens per
  parameter equals ``tokens_per_param``), as far out on both sides as the
  tokens-per-parameter range allows; each run trains D = C / flops_per_token(N) tokens.
* ``horizons`` (Approach 1): every size of the family trained at every budget C that
  gives it an in-range tokens per parameter, to D = C / flops_per_token(N): one run per
  (size, horizon), from scratch, each with its own schedule ending at its horizon.
  Hoffmann et al. (2022) match the cosine cycle to each horizon because the mid-run
  points of a longer cosine are not annealed (their loss is too high), so a size trained
  once with shorter horizons read off on the way would bias Approach 1. That costs the
  sum of all horizons; the plan reports what the same (size, horizon) grid would cost
  as WSD cooldown branches (the ``wsd`` kind's mechanism), the cheap alternative.
* ``wsd`` (cooldown branches): the sizes an IsoFLOP plan would pick, but each size
  trains one constant-LR trunk, and every budget that gives the size an in-range
  tokens per parameter gets a short cooldown branched from the trunk's checkpoint at
  the step where its decay starts. The plan's FLOPs
  (trunks + cooldowns) are reported next to those of the equivalent independent runs.
* ``hparam_grid``: the (size, budget) cells an IsoFLOP plan would pick, each trained at
  every (lr, batch) of ``hparams.lr_grid`` x ``hparams.batch_grid``: the runs a
  hyperparameter law (``scaling.analysis.hparams``) is fitted to. With ``hparams.lr`` /
  ``batch_size = "law"`` other plans then take each run's lr / batch from that law.

Every run gets a stable id: a hash of its resolved trainer config (a branch's config
names its trunk's id and the step it starts from).
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from scaling.sweep import trainer_config as tc
from scaling.sweep.config import SweepConfig
from scaling.train.config import RunConfig

# scaling.model (and with it JAX) is imported inside family_sizes only, so that
# processes that read a plan back (workers, `scaling fit`) stay light.

ID_LENGTH = 12


@dataclass(frozen=True)
class Size:
    """One (width, depth) member of the family, with its accounting."""

    width: int
    depth: int
    model: Any  # scaling.model.ModelConfig
    params: int  # the N tokens-per-parameter is measured against (sweep.param_count)
    flops_per_token: float
    params_nonembedding: int
    params_total: int

    @property
    def heads(self) -> int:
        return self.model.heads


@dataclass(frozen=True)
class PlannedRun:
    run_id: str
    sweep: str
    order: int
    plan_kind: str  # "isoflop" | "horizon" | "trunk" | "branch" | "hparam_grid"
    width: int
    depth: int
    heads: int
    params_nonembedding: int
    params_total: int
    flops_per_token: float
    budget: float | None  # the plan's C (None for a WSD trunk)
    tokens: float  # planned D; for isoflop runs exactly C / flops_per_token
    steps: int
    batch_size: int
    seq_len: int
    lr: float
    warmup_steps: int
    seed: int
    schedule: str
    parameterization: str
    flop_convention: str
    tokens_per_param: float
    group: str  # runs of one group go to one worker, in order (a trunk and its branches)
    config: RunConfig  # the run's resolved trainer config (a branch's init_from names "run:<trunk id>")
    parent_run_id: str | None = None
    init_step: int | None = None  # the trunk step a branch starts from
    unique_tokens: float | None = None  # data_constrained: distinct tokens the run sees
    epochs: float | None = None  # tokens / unique_tokens

    @property
    def train_config(self) -> dict[str, Any]:
        """The resolved trainer config as plain data (`RunConfig.to_dict()`)."""
        return self.config.to_dict()

    @property
    def flops(self) -> float:
        """FLOPs of the steps actually scheduled (a branch counts its trunk prefix too)."""
        return self.steps * self.batch_size * self.seq_len * self.flops_per_token

    @property
    def own_flops(self) -> float:
        """FLOPs this run itself spends (a branch only its cooldown)."""
        start = self.init_step or 0
        return (self.steps - start) * self.batch_size * self.seq_len * self.flops_per_token

    def record(self) -> dict[str, Any]:
        """The plain-data form stored as runs/<run_id>/run.json."""
        out = {k: getattr(self, k) for k in self.__dataclass_fields__ if k != "config"}
        out["train_config"] = self.train_config
        out["flops"] = self.flops
        return out


@dataclass(frozen=True)
class Plan:
    config: SweepConfig
    runs: tuple[PlannedRun, ...]
    notes: tuple[str, ...] = ()
    # A horizons plan: FLOPs of its (size, horizon) runs as WSD cooldown branches instead
    # (None when they cannot be, with the reason in wsd_unavailable).
    wsd_flops: float | None = None
    wsd_unavailable: str = ""

    @property
    def total_flops(self) -> float:
        return sum(r.own_flops for r in self.runs)

    @property
    def independent_flops(self) -> float:
        """FLOPs of the same evaluated runs trained independently from scratch."""
        return sum(r.flops for r in self.runs if r.plan_kind != "trunk")

    @property
    def budgets(self) -> tuple[float, ...]:
        return self.config.sweep.budgets


def run_id(train_config: Mapping[str, Any]) -> str:
    """A stable id: the first 12 hex digits of SHA-1 over the canonical JSON config."""
    text = json.dumps(_plain(train_config), sort_keys=True, separators=(",", ":"))
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:ID_LENGTH]


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


# ---- sizes --------------------------------------------------------------------------
def family_sizes(cfg: SweepConfig) -> list[Size]:
    """Every (width, depth) of the family as a validated model, sorted by N."""
    from scaling.model.accounting import flops_per_token, params_nonembedding, params_total

    sizes = []
    for width, depth in cfg.family.pairs():
        try:
            model = cfg.base.model_config(width, depth)
        except ValueError as err:
            raise ValueError(f"family member (width={width}, depth={depth}) is not a valid model: {err}") from None
        n_emb, n_tot = params_nonembedding(model), params_total(model)
        n = n_emb if cfg.sweep.param_count == "nonembedding" else n_tot
        sizes.append(Size(width, depth, model, n, flops_per_token(model, cfg.sweep.flop_convention), n_emb, n_tot))
    sizes.sort(key=lambda s: (s.params, s.width))
    for a, b in itertools.pairwise(sizes):
        if a.params == b.params:
            raise ValueError(
                f"family members (width={a.width}, depth={a.depth}) and (width={b.width}, depth={b.depth}) "
                f"have the same N={a.params}: the IsoFLOP axis would repeat a point"
            )
    return sizes


def _log_tpp(size: Size, budget: float) -> float:
    return math.log(budget / size.flops_per_token / size.params)


def optimal_log_n(sizes: list[Size], budget: float, tokens_per_param: float) -> float:
    """ln N* where D/N = tokens_per_param along budget C, interpolating the family's
    ln(D/N) against ln N piecewise-linearly (slope -2, the 6N law, beyond its ends)."""
    xs = [math.log(s.params) for s in sizes]
    ys = [_log_tpp(s, budget) for s in sizes]
    target = math.log(tokens_per_param)
    if target >= ys[0]:
        return xs[0] - (target - ys[0]) / 2
    if target <= ys[-1]:
        return xs[-1] + (ys[-1] - target) / 2
    # The first segment that crosses the target (one exists: ys[0] > target > ys[-1]),
    # even in a family whose D/N is not monotone in N (a grid mixing depths).
    for (x0, y0), (x1, y1) in zip(zip(xs, ys), zip(xs[1:], ys[1:])):
        if min(y0, y1) <= target <= max(y0, y1):
            return x0 + (x1 - x0) * (y0 - target) / (y0 - y1) if y0 != y1 else x0
    raise AssertionError("unreachable: the target lies between the family's ends")


def isoflop_sizes(cfg: SweepConfig, sizes: list[Size], budget: float) -> tuple[list[Size], list[str]]:
    """The sizes for one IsoFLOP budget, and notes about the choice.

    Targets are ``points_per_budget`` values of ln N spaced evenly over
    [ln N* - h, ln N* + h], where h is the largest half-width that keeps the
    tokens per parameter of both ends inside ``tokens_per_param_range`` (under the 6N
    law, D/N ∝ N^-2); each target snaps to the nearest in-range family member.
    """
    s = cfg.sweep
    lo, hi = s.tokens_per_param_range
    k = s.points_per_budget
    in_range = [z for z in sizes if lo <= math.exp(_log_tpp(z, budget)) <= hi]
    if not in_range:
        n_star = math.exp(optimal_log_n(sizes, budget, s.tokens_per_param))
        raise ValueError(
            f"budget {budget:.3g} FLOPs: no family member trains {lo:g}-{hi:g} tokens per parameter "
            f"(the family spans N = {sizes[0].params:,}-{sizes[-1].params:,}; this budget's optimum "
            f"is near N = {n_star:,.0f}); widen the family or change the budget"
        )
    x_star = optimal_log_n(sizes, budget, s.tokens_per_param)
    half = 0.5 * min(math.log(s.tokens_per_param / lo), math.log(hi / s.tokens_per_param))
    targets = [x_star] if k == 1 else [x_star - half + 2 * half * i / (k - 1) for i in range(k)]
    chosen: list[Size] = []
    for t in targets:
        best = min(in_range, key=lambda z: (abs(math.log(z.params) - t), z.params))
        if best not in chosen:
            chosen.append(best)
    # Targets that snapped to the same member: fill with the unused in-range members
    # nearest the optimum, so a budget still gets k points when the family has them.
    spare = sorted((z for z in in_range if z not in chosen), key=lambda z: abs(math.log(z.params) - x_star))
    while len(chosen) < k and spare:
        chosen.append(spare.pop(0))
    chosen.sort(key=lambda z: z.params)
    notes = []
    if len(chosen) < k:
        notes.append(
            f"budget {budget:.3g}: only {len(chosen)} family member(s) fall in the tokens-per-parameter "
            f"range [{lo:g}, {hi:g}] ({k} asked); add widths to the family"
        )
    if len(chosen) < min(3, k):
        raise ValueError(notes[-1] + "; an IsoFLOP parabola needs at least 3")
    return chosen, notes


# ---- plans --------------------------------------------------------------------------
def plan_sweep(cfg: SweepConfig) -> Plan:
    """Resolve a sweep config into its runs (pure: no files, no devices)."""
    sizes = family_sizes(cfg)
    builder = {"isoflop": _plan_isoflop, "horizons": _plan_horizons, "wsd": _plan_wsd,
               "hparam_grid": _plan_hparam_grid, "data_constrained": _plan_data_constrained}[cfg.sweep.kind]  # fmt: skip
    runs, notes = builder(cfg, sizes)
    seen: dict[str, PlannedRun] = {}
    for r in runs:
        if r.run_id in seen:
            o = seen[r.run_id]
            raise ValueError(
                f"duplicate run {r.run_id}: (width={r.width}, depth={r.depth}, budget={r.budget or 0:.3g}) "
                f"resolves to the same config as (width={o.width}, depth={o.depth}, budget={o.budget or 0:.3g}), "
                f"{r.steps} steps each; space the budgets further apart"
            )
        seen[r.run_id] = r
    if cfg.sweep.kind == "horizons":
        wsd, why = wsd_equivalent_flops(cfg, sizes, runs)
        return Plan(cfg, tuple(runs), tuple(notes), wsd, why)
    return Plan(cfg, tuple(runs), tuple(notes))


BRANCH_PARENT = "run:"  # a branch's train.init_from names its trunk as "run:<run_id>" until run time


class _Builder:
    """Shared per-run arithmetic: steps, batch size, learning rate, warmup, config, id."""

    def __init__(self, cfg: SweepConfig):
        self.cfg = cfg
        self.base_batch = cfg.base.train.global_batch_size
        self.base_lr = cfg.base.optimizer.lr
        self.order = 0
        self.laws = (
            _load_hparam_laws(cfg.hparams.law_file) if "law" in (cfg.hparams.lr, cfg.hparams.batch_size) else None
        )

    def batch_size(self, budget: float | None, size: Size | None = None) -> int:
        h = self.cfg.hparams
        if h.batch_size == "law" and budget is not None and size is not None:
            raw = float(self.laws.batch_sequences(size.params_nonembedding, budget / size.flops_per_token,
                                                  size.model.seq_len))  # fmt: skip
            return max(h.batch_multiple, h.batch_multiple * round(raw / h.batch_multiple))
        if h.batch_size in ("fixed", "law") or budget is None:
            return self.base_batch
        raw = self.base_batch * (budget / h.batch_reference_flops) ** h.batch_exponent
        return max(h.batch_multiple, h.batch_multiple * round(raw / h.batch_multiple))

    def lr(self, size: Size, tokens: float | None = None) -> float:
        h = self.cfg.hparams
        if h.lr == "law" and tokens is not None:
            return float(self.laws.predict(size.params_nonembedding, tokens)[0])
        if h.lr == "width_power":
            base_width = h.lr_base_width or size.model.base_width
            return self.base_lr * (base_width / size.width) ** h.lr_exponent
        if h.lr == "per_width":
            if str(size.width) not in h.lr_by_width:
                raise ValueError(f"hparams.lr_by_width has no learning rate for width {size.width}")
            return h.lr_by_width[str(size.width)]
        if h.lr == "tuned":
            raise ValueError('hparams.lr="tuned" is planned in two phases: use scaling.sweep.lr_tuning')
        return self.base_lr  # "constant", and "mup" (the model's multipliers transfer it)

    def steps(self, size: Size, tokens: float, batch: int, budget: float) -> int:
        per_step = batch * size.model.seq_len
        steps = round(tokens / per_step)
        if steps < 1:
            raise ValueError(
                f"budget {budget:.3g} FLOPs is too small for (width={size.width}, depth={size.depth}): it buys "
                f"{tokens:,.0f} tokens, fewer than one batch ({batch} x {size.model.seq_len} = {per_step:,} tokens)"
            )
        return steps

    def run(self, size: Size, *, plan_kind: str, budget: float | None, tokens: float, steps: int, batch: int,
            seed: int, group: str | None = None, schedule: Mapping[str, Any] | None = None,
            save_steps=(), parent: PlannedRun | None = None,
            init_step: int | None = None, lr: float | None = None,
            unique_tokens: int | None = None) -> PlannedRun:  # fmt: skip
        lr = self.lr(size, tokens) if lr is None else lr
        base = self.cfg.base
        if unique_tokens is not None:  # the data pipeline trains on a fixed subset of the corpus
            base = dataclasses.replace(base, data=dataclasses.replace(base.data, max_train_tokens=int(unique_tokens)))
        s = self.cfg.sweep
        config = base.run_config(
            width=size.width, depth=size.depth, steps=steps, batch_size=batch, lr=lr, seed=seed,
            schedule=schedule, save_steps=save_steps,
            init_from=(BRANCH_PARENT + parent.run_id, init_step) if parent else None,
        )  # fmt: skip
        rid = run_id(tc.identity(config.to_dict()))
        sched = config.schedule
        self.order += 1
        return PlannedRun(
            run_id=rid,
            sweep=s.name,
            order=self.order,
            plan_kind=plan_kind,
            width=size.width,
            depth=size.depth,
            heads=size.heads,
            params_nonembedding=size.params_nonembedding,
            params_total=size.params_total,
            flops_per_token=size.flops_per_token,
            budget=budget,
            tokens=tokens,
            steps=steps,
            batch_size=batch,
            seq_len=size.model.seq_len,
            lr=lr,
            warmup_steps=base.warmup_steps(steps, schedule),
            seed=seed,
            schedule=sched.kind if sched.kind != "wsd" else f"wsd-{sched.cooldown_shape}",
            parameterization=size.model.parameterization,
            flop_convention=s.flop_convention,
            tokens_per_param=tokens / size.params,
            group=group or rid,
            parent_run_id=parent.run_id if parent else None,
            init_step=init_step,
            config=config,
            unique_tokens=None if unique_tokens is None else float(unique_tokens),
            epochs=None if unique_tokens is None else steps * batch * size.model.seq_len / unique_tokens,
        )


def _plan_isoflop(cfg: SweepConfig, sizes: list[Size]) -> tuple[list[PlannedRun], list[str]]:
    b = _Builder(cfg)
    runs, notes = [], []
    for budget in cfg.sweep.budgets:
        chosen, n = isoflop_sizes(cfg, sizes, budget)
        notes += n
        for size in chosen:
            batch = b.batch_size(budget, size)
            tokens = budget / size.flops_per_token
            steps = b.steps(size, tokens, batch, budget)
            runs += one_group([b.run(size, plan_kind="isoflop", budget=budget, tokens=tokens, steps=steps,
                                     batch=batch, seed=seed) for seed in cfg.sweep.seeds])  # fmt: skip
    return runs, notes


def one_group(cell: list[PlannedRun]) -> list[PlannedRun]:
    """The runs of one cell (one size and budget: its seeds, its LR grid) as one plan
    group, named after the first: they go to one worker, and they differ only in seed and
    learning rate, so they train packed (`scaling.sweep.packing`). Run ids are unchanged."""
    return [dataclasses.replace(r, group=cell[0].run_id) for r in cell]


def _plan_horizons(cfg: SweepConfig, sizes: list[Size]) -> tuple[list[PlannedRun], list[str]]:
    """One run per (size, in-range budget), its schedule as long as that horizon: each
    has its own id (the config hashed includes the steps), and a (size, budget) that an
    IsoFLOP plan of the same config also trains is the same run, with the same id."""
    b = _Builder(cfg)
    lo, hi = cfg.sweep.tokens_per_param_range
    runs, notes, left_out = [], [], []
    for size in sizes:
        horizons = [c for c in cfg.sweep.budgets if lo <= c / size.flops_per_token / size.params <= hi]
        if not horizons:
            left_out.append(f"({size.width}, {size.depth})")
            continue
        for budget in horizons:  # each horizon its own run, its schedule ending there
            batch = b.batch_size(budget, size)
            tokens = budget / size.flops_per_token
            steps = b.steps(size, tokens, batch, budget)
            runs += one_group([b.run(size, plan_kind="horizon", budget=budget, tokens=tokens, steps=steps,
                                     batch=batch, seed=seed) for seed in cfg.sweep.seeds])  # fmt: skip
    if not runs:
        raise ValueError(f"no family member has a budget giving {lo:g}-{hi:g} tokens per parameter")
    if left_out:
        notes.append(f"left out, as no budget gives them {lo:g}-{hi:g} tokens per parameter: (width, depth) = "
                     + ", ".join(left_out))  # fmt: skip
    sched = cfg.base.schedule
    if sched.kind == "constant" or sched.min_lr_ratio == 1:
        notes.append(f"schedule.kind={sched.kind!r}, min_lr_ratio={sched.min_lr_ratio:g}: the learning rate never "
                     "decays, so final losses are not annealed, which Approach 1 assumes")  # fmt: skip
    return runs, notes


def wsd_equivalent_flops(cfg: SweepConfig, sizes: list[Size], runs: list[PlannedRun]) -> tuple[float | None, str]:
    """FLOPs of the same (size, budget) runs obtained as WSD cooldown branches from one
    constant-LR trunk per size (as the ``wsd`` kind plans them), or None and why not."""
    by_size = {(z.width, z.depth): z for z in sizes}
    per_size: dict[Size, list[tuple[float, int]]] = {}
    for r in runs:
        if r.seed == cfg.sweep.seeds[0]:
            per_size.setdefault(by_size[r.width, r.depth], []).append((r.budget, r.steps))
    try:
        branched = _wsd_runs(cfg, _Builder(cfg), per_size)
    except ValueError as err:
        return None, f"not as WSD branches: {err}"
    return sum(r.own_flops for r in branched), ""


def _load_hparam_laws(path):
    from pathlib import Path

    from scaling.analysis.hparams import HparamLaws

    p = Path(path)
    if not p.is_file():
        raise ValueError(f"hparams.law_file={str(path)!r}: no such file (fit one with scaling.analysis.hparams)")
    try:
        return HparamLaws.from_json(p)
    except (ValueError, KeyError) as err:
        raise ValueError(f"hparams.law_file={str(path)!r}: {err}") from None


def _plan_hparam_grid(cfg: SweepConfig, sizes: list[Size]) -> tuple[list[PlannedRun], list[str]]:
    """Every (size, budget) cell an IsoFLOP plan would pick trains the whole lr x batch grid
    (hparams.lr_grid x hparams.batch_grid): the data that fits a hyperparameter law."""
    b = _Builder(cfg)
    h = cfg.hparams
    runs, notes = [], []
    for budget in cfg.sweep.budgets:
        chosen, n = isoflop_sizes(cfg, sizes, budget)
        notes += n
        for size in chosen:
            tokens = budget / size.flops_per_token
            for batch in h.batch_grid:
                steps = b.steps(size, tokens, batch, budget)
                runs += one_group([b.run(size, plan_kind="hparam_grid", budget=budget, tokens=tokens, steps=steps,
                                         batch=batch, seed=seed, lr=float(lr))
                                   for lr in h.lr_grid for seed in cfg.sweep.seeds])  # fmt: skip
    notes.append(f"{len(h.lr_grid)} learning rates x {len(h.batch_grid)} batch sizes per cell; fit the law with "
                 "`scaling fit-hparams DIR --out laws.json` (hparams.law_file of a later sweep)")  # fmt: skip
    return runs, notes


def _plan_data_constrained(cfg: SweepConfig, sizes: list[Size]) -> tuple[list[PlannedRun], list[str]]:
    """The IsoFLOP plan's runs, each also trained on each fixed subset of sweep.unique_tokens
    smaller than its tokens (data.max_train_tokens: the subset repeated for tokens/U epochs),
    next to its fresh-data run: across budgets the unique data stays fixed while tokens grow."""
    b = _Builder(cfg)
    runs, notes = [], []
    for budget in cfg.sweep.budgets:
        chosen, n = isoflop_sizes(cfg, sizes, budget)
        notes += n
        for size in chosen:
            batch = b.batch_size(budget, size)
            tokens = budget / size.flops_per_token
            steps = b.steps(size, tokens, batch, budget)
            trained = steps * batch * size.model.seq_len
            for seed in cfg.sweep.seeds:
                fresh = b.run(size, plan_kind="data_constrained", budget=budget, tokens=tokens, steps=steps,
                              batch=batch, seed=seed)  # fmt: skip
                runs.append(dataclasses.replace(fresh, unique_tokens=float(trained), epochs=1.0))
                for u in cfg.sweep.unique_tokens:
                    if u < trained:
                        runs.append(b.run(size, plan_kind="data_constrained", budget=budget, tokens=tokens,
                                          steps=steps, batch=batch, seed=seed, unique_tokens=u))  # fmt: skip
    notes.append("runs without a unique-token limit see fresh data as long as the corpus's training split holds "
                 "their tokens (the trainer's loader repeats it beyond that)")  # fmt: skip
    return runs, notes


def _require_fixed_batch(cfg: SweepConfig) -> None:
    if cfg.hparams.batch_size != "fixed":
        raise ValueError(
            "WSD branches share one trunk across budgets, so they need hparams.batch_size = 'fixed' "
            f"(not {cfg.hparams.batch_size!r})"
        )


def _plan_wsd(cfg: SweepConfig, sizes: list[Size]) -> tuple[list[PlannedRun], list[str]]:
    _require_fixed_batch(cfg)
    b = _Builder(cfg)
    batch = b.batch_size(None)
    notes: list[str] = []
    lo, hi = cfg.sweep.tokens_per_param_range
    chosen: set[Size] = set()
    for budget in cfg.sweep.budgets:
        picked, n = isoflop_sizes(cfg, sizes, budget)
        notes += n
        chosen.update(picked)
    # A trunk serves every budget that gives its size an in-range tokens per parameter:
    # extra IsoFLOP points for the price of a cooldown each.
    per_size: dict[Size, list[tuple[float, int]]] = {}
    for size in chosen:
        for budget in cfg.sweep.budgets:
            if lo <= budget / size.flops_per_token / size.params <= hi:
                steps = b.steps(size, budget / size.flops_per_token, batch, budget)
                per_size.setdefault(size, []).append((budget, steps))
    return _wsd_runs(cfg, b, per_size), notes


def _wsd_runs(cfg: SweepConfig, b: _Builder, per_size: Mapping[Size, list[tuple[float, int]]]) -> list[PlannedRun]:
    """Per size, a constant-LR trunk and one cooldown branch per (budget, steps)."""
    _require_fixed_batch(cfg)
    frac = cfg.wsd.cooldown_fraction
    batch = b.batch_size(None)
    runs = []
    for size in sorted(per_size, key=lambda z: z.params):
        branches = per_size[size]
        starts = [max(1, round(steps * (1 - frac))) for _, steps in branches]
        # One warmup, in steps, for the trunk and all its branches (the shortest branch's).
        warmup = cfg.base.warmup_steps(min(s for _, s in branches))
        if warmup >= min(starts):
            raise ValueError(
                f"(width={size.width}, depth={size.depth}): the warmup of {warmup} steps does not end before "
                f"the first cooldown starts (step {min(starts)}); shorten schedule.warmup"
            )
        trunk_steps = max(starts)
        for seed in cfg.sweep.seeds:
            trunk = b.run(size, plan_kind="trunk", budget=None, tokens=trunk_steps * batch * size.model.seq_len,
                          steps=trunk_steps, batch=batch, seed=seed, schedule={"kind": "constant", "warmup": warmup},
                          save_steps=sorted(set(starts) - {trunk_steps}))  # fmt: skip
            runs.append(trunk)
            for (budget, steps), start in zip(branches, starts):
                schedule = {"kind": "wsd", "warmup": warmup, "cooldown_fraction": (steps - start) / steps,
                            "cooldown_shape": cfg.wsd.cooldown_shape}  # fmt: skip
                runs.append(b.run(size, plan_kind="branch", budget=budget, tokens=budget / size.flops_per_token,
                                  steps=steps, batch=batch, seed=seed, group=trunk.group, schedule=schedule,
                                  parent=trunk, init_step=start))  # fmt: skip
    return runs
