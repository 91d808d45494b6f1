"""A learning rate tuned per size: `[hparams] lr = "tuned"`, planned in two phases.

Porian et al. (2024) show that untuned hyperparameters bend the IsoFLOP exponent. So:

1. `tuning_plan(cfg)`: at the smallest budget, each width the IsoFLOP plan picks there is
   trained at every learning rate of `[optimizer].lr x hparams.lr_tune_grid` and every seed
   of `hparams.lr_tune_seeds` (default: the sweep's; losses are averaged over seeds) (plan_kind
   "lr_tune"; the runs of one width form one plan group, so they train packed).
2. `choose_lrs(cfg, rows)`: each tuned width's best LR (a parabola in ln LR through the
   grid minimum and its neighbours, the grid point when the minimum is at an edge), then
   for every width of the family either `lr_rule = "fit"`, a power law ln LR* = a + b ln
   width fitted to those optima (clipped to the grid's range), or `"nearest"`, the
   optimum of the nearest tuned width.
3. `final_plan(cfg, choice)`: the sweep's own plan with `lr = "per_width"` and those
   learning rates, plus the tuning runs. A tuning run whose config equals a law run (the
   grid point that won, at the smallest budget) is that law run and is trained once.

Tuning runs stay in the store (runs.csv, plan_kind "lr_tune") and `scaling.analysis.load_table`
leaves them out of law fits. `tune_and_sweep` runs both phases with any sweep function.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scaling.core.columns import LR_TUNE
from scaling.sweep.config import SweepConfig
from scaling.sweep.plan import Plan, plan_sweep

TUNE_KIND = LR_TUNE
CHOICE_FILE = "lr_tuning.json"


def _with(cfg: SweepConfig, *, budgets=None, lr: float | None = None, hparams: dict | None = None,
          seeds=None) -> SweepConfig:  # fmt: skip
    sweep = cfg.sweep if budgets is None else dataclasses.replace(cfg.sweep, budgets=tuple(budgets))
    if seeds:
        sweep = dataclasses.replace(sweep, seeds=tuple(seeds))
    h = dataclasses.replace(cfg.hparams, **(hparams or {}))
    base = cfg.base
    if lr is not None:
        given = {k: dict(v) for k, v in base.given.items()}
        given.setdefault("optimizer", {})["lr"] = lr
        base = dataclasses.replace(base, optimizer=dataclasses.replace(base.optimizer, lr=lr), given=given)
    return dataclasses.replace(cfg, sweep=sweep, hparams=h, base=base)


def _base_lr(cfg: SweepConfig) -> float:
    return float(cfg.base.optimizer.lr)


def _check(cfg: SweepConfig) -> None:
    if cfg.hparams.lr != "tuned":
        raise ValueError(f'lr tuning needs hparams.lr = "tuned", got {cfg.hparams.lr!r}')
    if cfg.sweep.kind != "isoflop":
        raise ValueError(f'hparams.lr = "tuned" plans IsoFLOP sweeps only, got sweep.kind={cfg.sweep.kind!r}')


def tuning_plan(cfg: SweepConfig) -> Plan:
    """Phase 1: the smallest budget's sizes, each at every grid learning rate."""
    _check(cfg)
    base = _base_lr(cfg)
    smallest = cfg.sweep.budgets[0]
    runs = []
    for m in cfg.hparams.lr_tune_grid:
        one = _with(cfg, budgets=[smallest], lr=base * m, hparams={"lr": "constant"}, seeds=cfg.hparams.lr_tune_seeds)
        runs += plan_sweep(one).runs
    runs.sort(key=lambda r: (r.width, r.depth, r.seed, r.lr))
    runs = [dataclasses.replace(r, plan_kind=TUNE_KIND, group=f"{TUNE_KIND}:{r.width}x{r.depth}", order=i + 1)
            for i, r in enumerate(runs)]  # fmt: skip
    return Plan(cfg, tuple(runs), (f"learning-rate tuning at C = {smallest:.3g}: {len(runs)} runs",))


def shapes_plan(cfg: SweepConfig) -> Plan:
    """Phase 2's runs before the tuning has chosen their learning rates: every budget's
    sizes at the base LR. What `scaling plan` shows and plans next runs from (the shapes,
    tokens and FLOPs are final; only each width's LR is decided by the tuning runs)."""
    _check(cfg)
    plan = plan_sweep(_with(cfg, lr=_base_lr(cfg), hparams={"lr": "constant"}))
    note = "then every budget at the LR chosen per width by the tuning runs (shown at the base LR)"
    return Plan(cfg, plan.runs, (*plan.notes, note))


@dataclass(frozen=True)
class LrChoice:
    rule: str
    tuned: dict[int, float]  # width -> its optimum from the grid
    losses: dict[int, dict[float, float]]  # width -> {lr: final eval loss, the mean over seeds}
    by_width: dict[int, float]  # every family width -> the LR its law runs use
    fit: tuple[float, float] | None  # (a, b): ln LR* = a + b ln width

    def to_json(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "fit": None if self.fit is None else {"a": self.fit[0], "b": self.fit[1]},
            "tuned_optimum": {str(w): v for w, v in self.tuned.items()},
            "losses": {str(w): {f"{lr:.6g}": loss for lr, loss in d.items()} for w, d in self.losses.items()},
            "lr_by_width": {str(w): v for w, v in self.by_width.items()},
        }

    def summary(self) -> str:
        lines = [f"learning rate per width ({self.rule} rule):"]
        for w, d in self.losses.items():
            cells = "  ".join(f"{lr:.3g}: {loss:.4f}" for lr, loss in sorted(d.items()))
            lines.append(f"  width {w}: {cells}  -> optimum {self.tuned[w]:.3g}")
        if self.fit is not None:
            lines.append(f"  fitted LR* = {math.exp(self.fit[0]):.3g} x width^{self.fit[1]:.2f}")
        lines.append("  used: " + ", ".join(f"{w}: {v:.3g}" for w, v in sorted(self.by_width.items())))
        return "\n".join(lines)


def _grid_optimum(points: dict[float, float]) -> float:
    lrs = sorted(points)
    losses = [points[x] for x in lrs]
    i = min(range(len(lrs)), key=losses.__getitem__)
    if i in (0, len(lrs) - 1):
        return lrs[i]
    x = [math.log(lrs[j]) for j in (i - 1, i, i + 1)]
    y = [losses[j] for j in (i - 1, i, i + 1)]
    # vertex of the parabola through three points
    d = (x[0] - x[1]) * (x[0] - x[2]) * (x[1] - x[2])
    a = (x[2] * (y[1] - y[0]) + x[1] * (y[0] - y[2]) + x[0] * (y[2] - y[1])) / d
    b = (x[2] ** 2 * (y[0] - y[1]) + x[1] ** 2 * (y[2] - y[0]) + x[0] ** 2 * (y[1] - y[2])) / d
    if a <= 0:
        return lrs[i]
    return math.exp(min(max(-b / (2 * a), x[0]), x[2]))


def choose_lrs(cfg: SweepConfig, rows: list[dict[str, Any]]) -> LrChoice:
    """The learning rate of every family width from the finished tuning runs' rows."""
    from scaling.sweep.plan import family_sizes

    _check(cfg)
    seen: dict[int, dict[float, list[float]]] = {}
    for r in rows:
        if r.get("plan_kind") == TUNE_KIND and r.get("status") == "done" and r.get("eval_loss") is not None:
            seen.setdefault(int(r["width"]), {}).setdefault(float(r["lr"]), []).append(float(r["eval_loss"]))
    # the mean over seeds: each seed's loss is one noisy look at the same (width, LR)
    losses = {w: {lr: sum(v) / len(v) for lr, v in sorted(d.items())} for w, d in seen.items()}
    if not losses:
        raise ValueError("no finished learning-rate tuning runs: train the tuning plan first")
    tuned = {w: _grid_optimum(d) for w, d in sorted(losses.items())}
    base = _base_lr(cfg)
    lo, hi = base * cfg.hparams.lr_tune_grid[0], base * cfg.hparams.lr_tune_grid[-1]
    widths = sorted({s.width for s in family_sizes(cfg)})
    fit = None
    if cfg.hparams.lr_rule == "fit" and len(tuned) >= 2:
        xs = [math.log(w) for w in tuned]
        ys = [math.log(v) for v in tuned.values()]
        mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
        sxx = sum((x - mx) ** 2 for x in xs)
        b = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx
        fit = (my - b * mx, b)
        by_width = {w: min(max(math.exp(fit[0] + fit[1] * math.log(w)), lo), hi) for w in widths}
    else:
        by_width = {w: tuned[min(tuned, key=lambda t: (abs(math.log(t / w)), t))] for w in widths}
    # round to 4 significant digits: readable, stable ids across platforms' last-bit float noise
    by_width = {w: float(f"{v:.4g}") for w, v in by_width.items()}
    return LrChoice(cfg.hparams.lr_rule, tuned, losses, by_width, fit)


def resolved_config(cfg: SweepConfig, choice: LrChoice) -> SweepConfig:
    return _with(cfg, hparams={"lr": "per_width", "lr_by_width": {str(w): v for w, v in choice.by_width.items()}})


def final_plan(cfg: SweepConfig, choice: LrChoice) -> Plan:
    """Phase 2: the tuning runs, then the law's runs at their chosen learning rates."""
    tuning = tuning_plan(cfg)
    main = plan_sweep(resolved_config(cfg, choice))
    ids = {r.run_id for r in main.runs}
    runs = [r for r in tuning.runs if r.run_id not in ids] + list(main.runs)
    runs = [dataclasses.replace(r, order=i + 1) for i, r in enumerate(runs)]
    return Plan(main.config, tuple(runs), main.notes)


def tune_and_sweep(cfg: SweepConfig, out: Path, sweep_fn: Callable[[Plan], Any], *, say=print):
    """Both phases into one results directory: sweep_fn(plan) trains a plan (e.g. the CLI's
    `sweep`); returns (the last report, the final plan, the choice). A preempted tuning
    phase returns (report, None, None)."""
    from scaling.sweep.store import ResultsStore

    report = sweep_fn(tuning_plan(cfg))
    if report is not None and report.preempted:
        return report, None, None
    choice = choose_lrs(cfg, ResultsStore(out).rows())
    say("\n" + choice.summary() + "\n")
    from scaling.sweep.store import write_atomic

    write_atomic(ResultsStore(out).location(CHOICE_FILE), json.dumps(choice.to_json(), indent=1) + "\n")
    plan = final_plan(cfg, choice)
    return sweep_fn(plan), plan, choice
