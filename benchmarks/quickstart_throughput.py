"""Quickstart sweep throughput: today's path (one process, one run at a time) against many
small runs at once (--jobs: one worker process per core, 1 XLA thread each; --pack: the
same-shape runs of one cell, its seeds or its LR grid, as one program), on the same plan.

    python benchmarks/quickstart_throughput.py [--rounds 2]   # writes benchmarks/results/quickstart_throughput.json

Modes: A = one process, one run at a time (today's path); B = --jobs auto --pack 8 (the
quickstart's default); C = --jobs auto --pack 1 (processes without packing).

The plan is a slice of experiments/quickstart.toml that keeps its mix and is small enough
to repeat: the LR-tuning grid of its middle tuned width (5 LRs x 3 seeds, packable) and,
at every budget, the middle size's 3 seeds (packable), at the base LR. Round 1 gives each
mode an empty compilation cache (what a fresh clone pays); round 2 reuses that mode's own
cache (a rerun). Every repetition trains from scratch into a fresh directory. FLOPs are
the plan's (exact convention); wall time is the sweep call's, CPU time is user+system of
the process tree. The machine may be shared: compare modes within a round.
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
MODES = {"A": {"jobs": 1, "pack": 1}, "B": {"jobs": None, "pack": 8}, "C": {"jobs": None, "pack": 1}}  # jobs auto


def bench_plan():
    from scaling.sweep import load_sweep_config, plan_sweep
    from scaling.sweep.lr_tuning import tuning_plan
    from scaling.sweep.plan import Plan

    cfg = load_sweep_config(REPO / "experiments" / "quickstart.toml")
    tune = tuning_plan(cfg)
    widths = sorted({r.width for r in tune.runs})
    runs = [r for r in tune.runs if r.width == widths[len(widths) // 2]]
    law = plan_sweep(dataclasses.replace(cfg, hparams=dataclasses.replace(cfg.hparams, lr="constant")))
    for budget in sorted({r.budget for r in law.runs}):
        sizes = sorted({r.width for r in law.runs if r.budget == budget})
        runs += [r for r in law.runs if r.budget == budget and r.width == sizes[len(sizes) // 2]]
    unique = list({r.run_id: r for r in runs}.values())  # the tuning grid's base-LR point is a law run
    return Plan(tune.config, tuple(dataclasses.replace(r, order=i + 1) for i, r in enumerate(unique)))


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


def main(rounds: int) -> None:
    import os

    out = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(rounds):
            for mode in MODES:
                env = {**os.environ, "SCALING_JAX_CACHE": f"{tmp}/cache-{mode}"}  # round 1: empty
                before = resource.getrusage(resource.RUSAGE_CHILDREN)
                p = subprocess.run([sys.executable, __file__, "--one", mode, f"{tmp}/{i}{mode}"], capture_output=True,
                                   text=True, check=True, env=env)  # fmt: skip
                after = resource.getrusage(resource.RUSAGE_CHILDREN)
                got = json.loads(p.stdout.strip().splitlines()[-1])
                cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
                got.update(mode=mode, round=i + 1, cpu_s=cpu, flops_per_wall_s=got["flops"] / got["wall_s"],
                           flops_per_cpu_s=got["flops"] / cpu, load_average=os.getloadavg())  # fmt: skip
                out.append(got)
                print(json.dumps(got), flush=True)

    def ratios(mode: str) -> list[float]:
        a = [r["flops_per_wall_s"] for r in out if r["mode"] == "A"]
        return [x["flops_per_wall_s"] / y for x, y in zip([r for r in out if r["mode"] == mode], a)]

    result = {
        "command": "python benchmarks/quickstart_throughput.py" + (f" --rounds {rounds}" if rounds != 2 else ""),
        "A": "today's path: scaling sweep, one process, runs one at a time (--jobs 1 --pack 1)",
        "B": "--jobs auto (one process per core, 1 XLA thread each) --pack 8",
        "C": "--jobs auto --pack 1 (worker processes, no packing)",
        "cores": len(os.sched_getaffinity(0)),
        "rounds": out,
        "ratio_flops_per_wall_s_B_over_A": ratios("B"),
        "ratio_flops_per_wall_s_C_over_A": ratios("C"),
    }
    (REPO / "benchmarks" / "results" / "quickstart_throughput.json").write_text(json.dumps(result, indent=1) + "\n")
    for m in "BC":
        print(f"{m}/A FLOPs per wall-second: " + ", ".join(f"round {i + 1} {r:.2f}x" for i, r in enumerate(ratios(m))))


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--one":
        one(sys.argv[2], sys.argv[3])
    else:
        import argparse

        ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
        ap.add_argument("--rounds", type=int, default=2, help="rounds of A, B, C (default 2: cold, then warm)")
        main(ap.parse_args().rounds)
