"""The pre-trained ↔ fine-tuned path on several validation sets: losses, Pareto front, best t.

    from scaling.interpolate import tradeoff
    res = tradeoff("runs/pre@600", "runs/ft@300", {"pre": "runs/pre", "ft": "runs/ft"},
                   points=11, t_range=(0, 1), rule="constrained", epsilon=0.02)
    res.losses["ft"], res.pareto_t, res.best["t"]

θ(t) = (1 − t)·θ_pre + t·θ_ft is evaluated on each named validation set, by the trainer's
compiled eval step (`scaling.train.Evaluator`). A SOURCE is
- a run directory: the validation batches that run's trainer evaluated with (its data
  config and its eval batch settings), so at t = 1 the loss on the fine-tuning run's own
  set equals the eval_loss it logged;
- "stdlib": the default corpus (CPython's standard library);
- any other text: a file, directory or glob of text files (the "text" source, hashed
  split at the pre-trained run's validation_fraction).
The last two use the pre-trained run's tokenizer settings and eval batch sizes; they need
byte tokens (a BPE vocabulary is trained per corpus, so it would not be the model's).

The best t, by a stated rule, over the evaluated t (the grid plus t = 0 and t = 1):
- "constrained": the lowest loss on the `target` set among the t whose loss on the `keep`
  set is at most `epsilon` nats above its value at t = 0 (t = 0 always qualifies);
- "weighted": the lowest weighted mean of the sets' losses (`weights`, default equal).
Defaults: target = the last-named set, keep = the first-named. The Pareto front is the set
of evaluated t not dominated on all sets at once (no other t at least as good on every
set and better on one). Reported at the best t: every set's loss, the gain on the target
over t = 0 and its share of the full gain at t = 1; and the forgetting at t = 1 (keep loss
at 1 minus at 0).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path

from scaling.interpolate.checkpoints import Checkpoint, resolve
from scaling.interpolate.path import grid

RULES = ("constrained", "weighted")


def parse_eval_data(items) -> dict[str, str]:
    """{"pre": "runs/pre", ...} from ["pre=runs/pre", ...] (or a mapping, checked)."""
    if isinstance(items, dict):
        pairs = list(items.items())
    else:
        pairs = []
        for item in items:
            name, sep, source = str(item).partition("=")
            if not sep or not name.strip() or not source.strip():
                raise ValueError(f"--eval-data {item!r}: expected NAME=SOURCE (e.g. ft=runs/finetune)")
            pairs.append((name.strip(), source.strip()))
    out = {}
    for name, source in pairs:
        if name in out:
            raise ValueError(f"eval-data name {name!r} is given twice")
        out[name] = str(source)
    if not out:
        raise ValueError("give at least one eval-data set NAME=SOURCE")
    return out


def check_rule(names, rule: str, target, keep, epsilon, weights) -> dict:
    """The rule, completed with defaults; errors name an unknown eval-data name."""
    names = list(names)
    known = ", ".join(names)

    def known_name(role: str, name: str) -> str:
        if name not in names:
            raise ValueError(f"{role} {name!r} is not an eval-data name; the names are {known}")
        return name

    if rule not in RULES:
        raise ValueError(f"rule={rule!r} must be one of {', '.join(RULES)}")
    if rule == "constrained":
        if weights:
            raise ValueError("weights apply to rule 'weighted', not 'constrained'")
        if len(names) < 2 and (target is None or keep is None):
            raise ValueError(
                "rule 'constrained' needs two eval-data sets (one to keep, one to improve); "
                f"got {known}: add another, or use rule 'weighted'"
            )
        target = known_name("target", names[-1] if target is None else target)
        keep = known_name("keep", names[0] if keep is None else keep)
        if target == keep:
            raise ValueError(f"target and keep are both {target!r}: they must be different eval-data sets")
        eps = 0.02 if epsilon is None else epsilon
        if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not math.isfinite(eps) or eps < 0:
            raise ValueError(f"epsilon={eps!r} must be a finite number >= 0 (nats)")
        return {"rule": rule, "target": target, "keep": keep, "epsilon": float(eps)}
    if target is not None or keep is not None or epsilon is not None:
        raise ValueError("target, keep and epsilon apply to rule 'constrained', not 'weighted'")
    w = dict(weights or {})
    for name, value in w.items():
        known_name("weight for", name)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
            raise ValueError(f"weight {name}={value!r} must be a number >= 0")
    w = {n: float(w.get(n, 1.0 if not weights else 0.0)) for n in names}
    if not sum(w.values()) > 0:
        raise ValueError(f"weights {w} must not all be 0")
    return {"rule": rule, "weights": w}


def pareto_front(ts, losses: dict[str, list[float]]) -> list[float]:
    """The t (ascending) whose loss vector is not dominated by another evaluated t."""
    names = list(losses)
    pts = [(t, [losses[n][i] for n in names]) for i, t in enumerate(ts)]
    front = []
    for t, p in pts:
        if not all(math.isfinite(x) for x in p):
            continue
        dominated = any(
            all(x <= y for x, y in zip(q, p)) and any(x < y for x, y in zip(q, p))
            for s, q in pts
            if s != t and all(math.isfinite(x) for x in q)
        )
        if not dominated:
            front.append(t)
    return sorted(front)


def best_t(ts, losses: dict[str, list[float]], rule: dict) -> dict:
    """The best t under `rule` (see the module doc), with every set's loss there."""
    at = {t: i for i, t in enumerate(ts)}
    if rule["rule"] == "constrained":
        keep, target = losses[rule["keep"]], losses[rule["target"]]
        limit = keep[at[0.0]] + rule["epsilon"]
        ok = [i for i in range(len(ts)) if math.isfinite(keep[i]) and keep[i] <= limit and math.isfinite(target[i])]
        i = min(ok, key=lambda j: (target[j], ts[j]))
        out = {"t": ts[i], "keep_limit": limit}
    else:
        w = rule["weights"]
        total = sum(w.values())
        score = [sum(w[n] * losses[n][i] for n in losses) / total for i in range(len(ts))]
        i = min((j for j in range(len(ts)) if math.isfinite(score[j])), key=lambda j: (score[j], ts[j]))
        out = {"t": ts[i], "weighted_loss": score[i]}
    out["losses"] = {n: v[i] for n, v in losses.items()}
    return out


def _finite(x):
    return x if isinstance(x, (int, float)) and math.isfinite(x) else None


@dataclass
class TradeoffResult:
    """Losses along θ(t) on several validation sets, the Pareto front and the best t."""

    a: Checkpoint
    b: Checkpoint
    t: list[float]  # every evaluated t, ascending (the grid plus 0 and 1)
    losses: dict[str, list[float]]  # name -> nats/token at each t
    sources: dict[str, dict]  # name -> {source, kind, eval_tokens}
    pareto_t: list[float]
    rule: dict
    best: dict
    summary: dict  # forgetting_at_1, gain_at_best, gain_share_at_best (constrained rule)
    mesh: dict
    distance: float
    notes: list[str] = field(default_factory=list)

    def loss_at(self, name: str, t: float) -> float:
        return self.losses[name][self.t.index(t)]

    def to_dict(self) -> dict:
        return {
            "t": self.t,
            "losses": {n: [_finite(x) for x in v] for n, v in self.losses.items()},
            "loss_units": "nats per token",
            "sources": self.sources,
            "pareto_t": self.pareto_t,
            "rule": self.rule,
            "best": {
                k: ({n: _finite(x) for n, x in v.items()} if isinstance(v, dict) else v) for k, v in self.best.items()
            },
            **{k: _finite(v) for k, v in self.summary.items()},
            "checkpoint_a": {"spec": str(self.a), **self.a.to_dict()},
            "checkpoint_b": {"spec": str(self.b), **self.b.to_dict()},
            "mesh": self.mesh,
            "distance": self.distance,
            "notes": self.notes,
        }

    def table(self) -> str:
        names = list(self.losses)
        lines = [
            f"θ(t) = (1 − t)·θ_a + t·θ_b    a = {self.a}    b = {self.b}",
            "loss: nats/token on "
            + "; ".join(f"{n} = {s['source']} ({s['eval_tokens']} tokens)" for n, s in self.sources.items()),
            f"{'t':>8}  " + "  ".join(f"{n:>10}" for n in names) + "  pareto",
        ]
        for i, t in enumerate(self.t):
            mark = "  *" if t in self.pareto_t else ""
            best = "  <- best" if t == self.best["t"] else ""
            lines.append(f"{t:8.3f}  " + "  ".join(f"{self.losses[n][i]:10.5f}" for n in names) + mark + best)
        r = self.rule
        if r["rule"] == "constrained":
            lines.append(
                f"best t = {self.best['t']:.3f}: lowest {r['target']} loss with {r['keep']} loss <= "
                f"{self.best['keep_limit']:.5f} (its t = 0 value + epsilon {r['epsilon']:g})"
            )
            s = self.summary
            lines.append(
                f"forgetting at t = 1: {s['forgetting_at_1']:+.5f} nats on {r['keep']}; gain at best t: "
                f"{s['gain_at_best']:+.5f} nats on {r['target']} ({s['gain_share_at_best']:.1%} of the gain at t = 1)"
            )
        else:
            lines.append(f"best t = {self.best['t']:.3f}: lowest weighted mean loss (weights {r['weights']})")
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)


def _eval_config(cfg_a, source: str):
    """(RunConfig to evaluate with, kind) for one SOURCE (see the module doc)."""
    from scaling.train import run_config

    path = Path(source)
    if path.is_dir() and (path / "config.json").is_file():
        return run_config(path), "run"
    if cfg_a.data.tokenizer != "bytes":
        raise ValueError(
            f"eval-data source {source!r}: a corpus can be named directly only for byte-token runs "
            f"(this run's tokenizer is {cfg_a.data.tokenizer!r}); name a run directory instead"
        )
    if source == "stdlib":
        return dataclasses.replace(
            cfg_a, data=cfg_a.data.replace(source="stdlib", paths=(), validation_paths=())
        ), "stdlib"
    if not (path.exists() or any(c in source for c in "*?[")):
        raise FileNotFoundError(
            f"eval-data source {source!r}: not a run directory, 'stdlib', or an existing file, directory or glob"
        )
    data = cfg_a.data.replace(source="text", paths=(source,), validation_paths=())
    return dataclasses.replace(cfg_a, data=data), "text"


def tradeoff(
    a,
    b,
    eval_data,
    ts=None,
    *,
    points: int = 11,
    t_range: tuple[float, float] = (0.0, 1.0),
    rule: str = "constrained",
    target: str | None = None,
    keep: str | None = None,
    epsilon: float | None = None,
    weights: dict | None = None,
    mesh=None,
) -> TradeoffResult:
    """Losses along θ(t) from checkpoint `a` (pre-trained) to `b` (fine-tuned) on each set of
    `eval_data` ({name: SOURCE} or ["name=SOURCE", ...]), the Pareto front and the best t.
    Every error (names, rule, sources, checkpoints, architectures) comes before compute."""
    from scaling.interpolate.compat import check_same_architecture
    from scaling.interpolate.ops import compiled, scalar
    from scaling.train import evaluator, load_params, run_config

    sets = parse_eval_data(eval_data)
    rule_d = check_rule(sets, rule, target, keep, epsilon, weights)
    ts = grid(points, t_range) if ts is None else [float(x) for x in ts]
    if not ts or not all(math.isfinite(x) for x in ts):
        raise ValueError(f"t values {ts!r} must be a non-empty list of finite numbers")
    a, b = resolve(a), resolve(b)
    cfg_a, cfg_b = run_config(a.run_dir), run_config(b.run_dir)
    check_same_architecture(cfg_a.model, cfg_b.model, names=(str(a), str(b)))
    configs = {}
    for name, source in sets.items():
        cfg, kind = _eval_config(cfg_a, source)
        if kind == "run":
            check_same_architecture(cfg_a.model, cfg.model, names=(str(a), f"eval-data {name}={source}"))
        configs[name] = (cfg, kind)
    chosen = cfg_a.mesh if mesh is None else mesh
    evs = {name: evaluator(cfg, chosen) for name, (cfg, _) in configs.items()}
    first = next(iter(evs.values()))
    theta_a = first.place(load_params(a.run_dir, a.step, first.mesh))
    theta_b = first.place(load_params(b.run_dir, b.step, first.mesh))
    lerp = compiled(first)[0]
    todo = sorted(set(ts) | {0.0, 1.0})
    sums = {name: [] for name in evs}
    for t in todo:
        theta = lerp(theta_a, theta_b, scalar(t))
        for name, ev in evs.items():
            sums[name].append(ev.loss_sum(ev.place(theta)))
        next(iter(sums.values()))[-1].block_until_ready()  # bound memory: one θ(t) at a time in flight
    losses = {name: ev.losses(sums[name]) for name, ev in evs.items()}
    distance = float(compiled(first)[2](theta_a, theta_b)[0])
    front = pareto_front(todo, losses)
    best = best_t(todo, losses, rule_d)
    summary = {}
    if rule_d["rule"] == "constrained":
        k, g = losses[rule_d["keep"]], losses[rule_d["target"]]
        i0, i1 = todo.index(0.0), todo.index(1.0)
        gain_full = g[i0] - g[i1]
        summary = {
            "forgetting_at_1": k[i1] - k[i0],
            "gain_at_1": gain_full,
            "gain_at_best": g[i0] - best["losses"][rule_d["target"]],
            "gain_share_at_best": (g[i0] - best["losses"][rule_d["target"]]) / gain_full if gain_full else math.nan,
            "forgetting_at_best": best["losses"][rule_d["keep"]] - k[i0],
        }
    notes = []
    if cfg_a.data != cfg_b.data:
        notes.append("the two checkpoints were trained on different data (a fine-tuning path)")
    return TradeoffResult(
        a=a,
        b=b,
        t=todo,
        losses=losses,
        sources={n: {"source": sets[n], "kind": configs[n][1], "eval_tokens": evs[n].tokens} for n in sets},
        pareto_t=front,
        rule=rule_d,
        best=best,
        summary=summary,
        mesh=dict(first.mesh.shape),
        distance=distance,
        notes=notes,
    )
