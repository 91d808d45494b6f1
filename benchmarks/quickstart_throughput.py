"""Quickstart sweep throughput: today's path (the code of BASELINE, one process, one run at
a time) against this checkout's ways of running many small runs at once, on the same plan.

    python benchmarks/quickstart_throughput.py [--rounds 2] [--modes A,B,C] [--out FILE]
    # default FILE: benchmarks/results/quickstart_throughput.json

Modes, each in its own subprocess:
  base = BASELINE's code (extracted with `git archive` into a temporary directory, so it
         is measured in the same run on the same machine), `--jobs 1 --pack 1`: the path
         the issue measured;
  A    = this checkout, one process, one run at a time (what the code changes alone give);
  B    = `--jobs auto --pack 8` (a size's seeds and an LR grid as one vmapped program);
  C    = `--jobs auto --pack 1`: worker processes pinned to their own cores, each shape
         on one worker; the CPU default of `scaling sweep` and `scaling quickstart`.

`--plan full` runs the whole quickstart sweep instead (every tuning and law run, 174 runs,
6.07e12 FLOPs; about 11 + 5 minutes a round on 2 cores). The default plan is a slice of
experiments/quickstart.toml that keeps its mix and is small enough to repeat: the LR-tuning grid of its middle tuned width (5 LRs x 3 seeds, packable) and,
at every budget, the middle size's 3 seeds (packable), at the base LR. Round 1 gives each
mode an empty compilation cache (what a fresh clone pays); round 2 reuses that mode's own
cache (a rerun). Every repetition trains from scratch into a fresh directory. FLOPs are
the plan's (exact convention); wall time is the sweep call's, CPU time is user+system of
the process tree. The final eval losses of every mode are compared with base's (as strings):
equal for A and C until the chunked CPU evaluation, which moves them by an ulp or two. The machine may be shared: compare modes within a round.
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
BASELINE = "feb93ab"  # main before the pinned workers and the merged attention axes (2026-12-01)
MODES = {"A": {"jobs": 1, "pack": 1}, "B": {"jobs": None, "pack": 8}, "C": {"jobs": None, "pack": 1}}  # jobs auto


def bench_plan(kind: str = "slice"):
    """The slice (27 runs), or the whole quickstart sweep ("full": every tuning and law run,
    the law runs at the base LR, which changes no shape, step count or FLOP)."""
    from scaling.sweep import load_sweep_config, plan_sweep
    from scaling.sweep.lr_tuning import tuning_plan
    from scaling.sweep.plan import Plan

    cfg = load_sweep_config(REPO / "experiments" / "quickstart.toml")
    tune = tuning_plan(cfg)
    law = plan_sweep(dataclasses.replace(cfg, hparams=dataclasses.replace(cfg.hparams, lr="constant")))
    if kind == "full":
        runs = [*tune.runs, *law.runs]
    else:
        widths = sorted({r.width for r in tune.runs})
        runs = [r for r in tune.runs if r.width == widths[len(widths) // 2]]
        for budget in sorted({r.budget for r in law.runs}):
            sizes = sorted({r.width for r in law.runs if r.budget == budget})
            runs += [r for r in law.runs if r.budget == budget and r.width == sizes[len(sizes) // 2]]
    unique = list({r.run_id: r for r in runs}.values())  # the tuning grid's base-LR point is a law run
    return Plan(tune.config, tuple(dataclasses.replace(r, order=i + 1) for i, r in enumerate(unique)))


def one(mode: str, out: str, kind: str) -> None:
    import contextlib
    import io

    from scaling.cli.sweep import sweep

    plan = bench_plan(kind)
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        report = sweep(plan, Path(out), progress=False, **MODES[mode])
    wall = time.perf_counter() - t0
    assert all(r["status"] == "done" for r in report.rows), report.rows
    import scaling

    print(json.dumps({"wall_s": wall, "flops": plan.total_flops, "runs": len(plan.runs), "package": scaling.__file__}))


def losses(out: str) -> dict[str, str]:
    import csv

    with open(Path(out) / "runs.csv") as f:
        return {r["run_id"]: r["eval_loss"] for r in csv.DictReader(f)}


def baseline_checkout(tmp: str) -> Path:
    """BASELINE's tree in `tmp`/base (its own copy of this script and of the package)."""
    where = Path(tmp) / "base"
    where.mkdir()
    archive = subprocess.run(["git", "-C", str(REPO), "archive", BASELINE], capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(where)], input=archive, check=True)
    return where


def main(rounds: int, modes: list[str], out_file: Path, kind: str) -> None:
    import os

    out = []
    with tempfile.TemporaryDirectory() as tmp:
        base = baseline_checkout(tmp)
        for i in range(rounds):
            for mode in ("base", *modes):
                env = {**os.environ, "SCALING_JAX_CACHE": f"{tmp}/cache-{mode}"}  # round 1: empty
                if mode == "base":  # this script and plan, BASELINE's `scaling` (first on the path)
                    env["PYTHONPATH"] = str(base)
                before = resource.getrusage(resource.RUSAGE_CHILDREN)
                p = subprocess.run([sys.executable, __file__, "--one", "A" if mode == "base" else mode, f"{tmp}/{i}{mode}", kind],
                                   capture_output=True, text=True, check=True, env=env, cwd=base if mode == "base" else REPO)  # fmt: skip
                after = resource.getrusage(resource.RUSAGE_CHILDREN)
                got = json.loads(p.stdout.strip().splitlines()[-1])
                if (Path(got.pop("package")).parents[1] == base) != (mode == "base"):
                    raise RuntimeError(f"mode {mode} ran the wrong checkout's scaling package")
                cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
                same = losses(f"{tmp}/{i}{mode}") == losses(f"{tmp}/{i}base")
                got.update(mode=mode, round=i + 1, cpu_s=cpu, flops_per_wall_s=got["flops"] / got["wall_s"],
                           flops_per_cpu_s=got["flops"] / cpu, load_average=os.getloadavg(),
                           losses_equal_to_base=same)  # fmt: skip
                out.append(got)
                print(json.dumps(got), flush=True)

    def ratios(mode: str) -> list[float]:
        a = [r["flops_per_wall_s"] for r in out if r["mode"] == "base"]
        return [x["flops_per_wall_s"] / y for x, y in zip([r for r in out if r["mode"] == mode], a)]

    result = {
        "command": " ".join(["python benchmarks/quickstart_throughput.py", *sys.argv[1:]]),
        "base": f"today's path: the code of {BASELINE}, scaling sweep, one process, runs one at a time",
        "A": "this checkout, one process, runs one at a time (--jobs 1 --pack 1)",
        "B": "--jobs auto (one pinned process per core, 1 XLA thread each) --pack 8",
        "C": "--jobs auto --pack 1 (pinned worker processes, no packing): the CPU default",
        "cores": len(os.sched_getaffinity(0)),
        "plan": kind,
        "rounds": out,
        **{f"ratio_flops_per_wall_s_{m}_over_base": ratios(m) for m in modes},
    }
    out_file.write_text(json.dumps(result, indent=1) + "\n")
    for m in modes:
        print(
            f"{m}/base FLOPs per wall-second: " + ", ".join(f"round {i + 1} {r:.2f}x" for i, r in enumerate(ratios(m)))
        )


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--one":
        one(*sys.argv[2:])
    else:
        import argparse

        ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
        ap.add_argument("--rounds", type=int, default=2, help="rounds of base, A, B, C (default 2: cold, then warm)")
        ap.add_argument("--modes", default=",".join(MODES), help="modes besides base, comma-separated (default A,B,C)")
        ap.add_argument("--plan", choices=("slice", "full"), default="slice",
                        help="the 27-run slice (default) or the whole quickstart sweep (about 15 minutes a round)")  # fmt: skip
        ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "quickstart_throughput.json")
        args = ap.parse_args()
        modes = args.modes.split(",")
        if unknown := set(modes) - set(MODES):
            ap.error(f"--modes: unknown mode(s) {sorted(unknown)}; choose from {sorted(MODES)}")
        main(args.rounds, modes, args.out, args.plan)
