"""Plain-text tables: the plan (before training) and the summary (after)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

from scaling.sweep.plan import Plan


def table(header: Sequence[str], rows: Iterable[Sequence[Any]], align: str | None = None) -> str:
    """A fixed-width text table; `align` is one 'l'/'r' per column (default: right)."""
    rows = [[_fmt(c) for c in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(header)]
    align = align or "r" * len(header)

    def line(cells):
        return "  ".join(c.ljust(w) if a == "l" else c.rjust(w) for c, w, a in zip(cells, widths, align)).rstrip()

    return "\n".join([line(header), line(["-" * w for w in widths]), *map(line, rows)])


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if value == int(value) and abs(value) < 1e6:
            return str(int(value))
        return f"{value:.3g}" if abs(value) >= 1e4 or abs(value) < 1e-2 else f"{value:.4g}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 90:
        return f"{seconds:.0f}s"
    if seconds < 5400:
        return f"{seconds / 60:.1f}m"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f}h"
    return f"{seconds / 86400:.1f}d"


def format_plan(plan: Plan, flops_per_second: float | None = None, throughput_source: str = "") -> str:
    """The plan table, its totals, and the WSD saving when there is one."""
    cfg = plan.config
    header = ["run_id", "kind", "width", "depth", "N", "D", "C", "D/N", "batch", "steps", "lr", "est. time"]
    rows = []
    for r in plan.runs:
        n = r.params_nonembedding if cfg.sweep.param_count == "nonembedding" else r.params_total
        est = r.own_flops / flops_per_second if flops_per_second else None
        what = r.plan_kind if not r.parent_run_id else f"branch@{r.init_step}"
        rows.append(
            [
                r.run_id,
                what,
                r.width,
                r.depth,
                n,
                r.tokens,
                r.budget,
                r.tokens_per_param,
                r.batch_size,
                r.steps,
                r.lr,
                duration(est),
            ]
        )
    # the budgets the runs train at (an LR-tuning phase trains the smallest one only)
    used = sorted({r.budget for r in plan.runs if r.budget is not None}) or list(cfg.sweep.budgets)
    budgets = ", ".join(f"{c:.3g}" for c in used)
    out = [
        (
            f"sweep {cfg.sweep.name!r}: {cfg.sweep.kind} plan, {len(plan.runs)} runs over {len(used)} "
            f"budget{'s' if len(used) != 1 else ''} ({budgets} FLOPs, {cfg.sweep.flop_convention} convention; N = {cfg.sweep.param_count} parameters)"
        ),
        "",
        table(header, rows, align="llrrrrrrrrrr"),
        "",
        f"total: {plan.total_flops:.3g} FLOPs",
    ]
    if cfg.sweep.kind == "wsd":
        saving = 1 - plan.total_flops / plan.independent_flops
        out.append(
            f"WSD branches: {plan.total_flops:.3g} FLOPs for trunks + cooldowns vs "
            f"{plan.independent_flops:.3g} FLOPs for the same runs trained independently "
            f"({saving:.0%} saved, {plan.independent_flops / plan.total_flops:.2f}x fewer FLOPs)"
        )
    if cfg.sweep.kind == "horizons":
        seeds = " and seed" if len(cfg.sweep.seeds) > 1 else ""
        out.append(
            f"horizons: {len(plan.runs)} runs, one per (size, horizon){seeds}, each from scratch with a "
            f"{plan.runs[0].schedule} schedule ending at its horizon (annealed final losses for Approach 1)"
        )
        if plan.wsd_flops:
            out.append(
                f"cheaper: the same (size, horizon) runs as WSD cooldowns (a fraction {cfg.wsd.cooldown_fraction:g} "
                f"of each horizon) branched from one constant-LR trunk per size would cost {plan.wsd_flops:.3g} "
                f'FLOPs ({plan.wsd_flops / plan.total_flops:.0%} of this plan); sweep.kind = "wsd" plans such '
                f"branches for the sizes an IsoFLOP plan picks at each budget"
            )
        elif plan.wsd_unavailable:
            out.append(f"cheaper WSD cooldown branches are not available here: {plan.wsd_unavailable}")
    if flops_per_second:
        out.append(
            f"estimated time: {duration(plan.total_flops / flops_per_second)} at {flops_per_second:.3g} FLOP/s "
            f"({throughput_source})"
        )
    else:
        out.append("estimated time: unknown (pass --throughput FLOP/s, or --calibrate to time a few steps here)")
    out += [f"note: {n}" for n in plan.notes]
    return "\n".join(out)


def run_line(done: int, total: int, row: dict[str, Any], elapsed: float, flops_done: float,
             flops_left: float) -> str:  # fmt: skip
    """One plain line per finished run (progress off a terminal): what, result, ETA."""
    loss = row.get("eval_loss")
    what = f"eval_loss {loss:.4f}" if isinstance(loss, float) else (row.get("error") or "")[:80]
    eta = duration(elapsed * flops_left / flops_done) if flops_done else "-"
    return (f"[sweep] {done}/{total} {row['run_id']} width={row.get('width')} {row['status']} {what} "
            f"({duration(row.get('wall_time_s'))}); elapsed {duration(elapsed)}, ETA {eta}")  # fmt: skip


def format_summary(rows: list[dict[str, Any]]) -> str:
    """The end-of-sweep table from runs.csv rows."""
    header = ["run_id", "width", "depth", "budget", "tokens", "eval_loss", "status", "wall time", "error"]
    body = [
        [
            r["run_id"],
            r["width"],
            r["depth"],
            r.get("budget"),
            r.get("tokens"),
            r.get("eval_loss"),
            r["status"],
            duration(r.get("wall_time_s")),
            (r.get("error") or "")[:60],
        ]
        for r in rows
    ]
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    tally = ", ".join(f"{v} {k}" for k, v in sorted(counts.items()))
    return table(header, body, align="lrrrrrlrl") + f"\n\n{len(rows)} runs: {tally}"
