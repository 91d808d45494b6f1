"""Quickstart sweep throughput: today's path (one process, one run at a time) against many
small runs at once (--jobs: one worker process per core, 1 XLA thread each; --pack: an LR
grid's same-shape runs as one program), on the same plan, alternately A B A B.

    python benchmarks/quickstart_throughput.py            # writes benchmarks/results/quickstart_throughput.json

The plan is the quickstart's own first phase and first budget (experiments/quickstart.toml:
the LR-tuning grid at the smallest budget, 20 runs of 5 widths x 4 LRs, and that budget's
5 law runs at the base LR): the mix of packable and unpackable runs the quickstart trains,
small enough to repeat. Every repetition trains from scratch into a fresh directory; the
compilation cache is shared (as on a user's machine after the first run), so the first
round also shows compile costs. FLOPs are the plan's (exact convention); wall time is the
sweep call's, CPU time is user+system of the process tree (os.wait4/getrusage of children).
The machine may be shared: compare rounds, and CPU time, not one number.
"""

from __future__ import annotations

import dataclasses
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MODES = {"A": {"jobs": 1, "pack": 1}, "B": {"jobs": None, "pack": 8}}  # B: jobs auto


def bench_plan():
    from scaling.sweep import load_sweep_config, plan_sweep
    from scaling.sweep.lr_tuning import tuning_plan
    from scaling.sweep.plan import Plan

    cfg = load_sweep_config(REPO / "experiments" / "quickstart.toml")
    tune = tuning_plan(cfg)
    first = dataclasses.replace(cfg, sweep=dataclasses.replace(cfg.sweep, budgets=cfg.sweep.budgets[:1]),
                                hparams=dataclasses.replace(cfg.hparams, lr="constant"))  # fmt: skip
    runs = list(tune.runs) + list(plan_sweep(first).runs)
    return Plan(tune.config, tuple(runs))


def one(mode: str, out: str) -> None:
    import contextlib
    import io

    from scaling.cli.sweep import sweep

    plan = bench_plan()
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        report = sweep(plan, Path(out), progress=False, **MODES[mode])
    wall = time.perf_counter() - t0
    assert all(r["status"] == "done" for r in report.rows), report.rows
    print(json.dumps({"wall_s": wall, "flops": plan.total_flops, "runs": len(plan.runs)}))


def main() -> None:
    rounds = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, mode in enumerate("ABAB"):
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            p = subprocess.run([sys.executable, __file__, "--one", mode, f"{tmp}/{i}{mode}"], capture_output=True,
                               text=True, check=True)  # fmt: skip
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            got = json.loads(p.stdout.strip().splitlines()[-1])
            cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
            got.update(mode=mode, round=i // 2 + 1, cpu_s=cpu, flops_per_wall_s=got["flops"] / got["wall_s"],
                       flops_per_cpu_s=got["flops"] / cpu)  # fmt: skip
            rounds.append(got)
            print(json.dumps(got), flush=True)
    ratios = [rounds[i + 1]["flops_per_wall_s"] / rounds[i]["flops_per_wall_s"] for i in (0, 2)]
    import os

    result = {
        "command": "python benchmarks/quickstart_throughput.py",
        "A": "today's path: scaling sweep, one process, runs one at a time (--jobs 1 --pack 1)",
        "B": "--jobs auto (one process per core, 1 XLA thread each) --pack 8",
        "cores": len(os.sched_getaffinity(0)),
        "load_average_at_end": os.getloadavg(),
        "rounds": rounds,
        "ratio_flops_per_wall_s_B_over_A": ratios,
    }
    (REPO / "benchmarks" / "results" / "quickstart_throughput.json").write_text(json.dumps(result, indent=1) + "\n")
    print(f"B/A FLOPs per wall-second: round 1 {ratios[0]:.2f}x, round 2 {ratios[1]:.2f}x")


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--one":
        one(sys.argv[2], sys.argv[3])
    else:
        main()
