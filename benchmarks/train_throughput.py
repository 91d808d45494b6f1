"""Training throughput of the trainer's compiled step on CPU (a benchmark, not a test).

    python benchmarks/train_throughput.py                 # the recorded table
    python benchmarks/train_throughput.py --ideas         # also every idea tried (slow)
    python benchmarks/train_throughput.py --only scan_layers --repeats 1   # one idea
    python benchmarks/train_throughput.py --markdown      # rewrite the .md from the .json

Setting (the peers' references were measured the same way): vocab 256, seq 256, batch 16,
float32, AdamW (clip 1.0, weight decay 0.1), at (width 128, depth 4, 4 heads of 32) and
(width 256, depth 6, 4 heads of 64). Each measurement runs in its own process:

- "per CPU-second": the process is pinned to one core (`os.sched_setaffinity`, as
  `taskset -c 0`) with one XLA thread, and tokens are divided by the process's CPU time,
  so the figure survives a busy machine (waiting for a core costs no CPU time);
- "2 threads": unpinned, wall-clock tokens/s (comparable only on an idle machine).

The timed loop is the trainer's own: `Program.train_step` with donated params/optimizer
state, the learning rate passed per step, the batch prefetched to the device, and the
loss pulled to the host every 10 steps (as at the trainer's log points).
Writes benchmarks/results/train_throughput.json and .md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"

SHAPES = {"w128_d4": dict(width=128, depth=4, head_dim=32), "w256_d6": dict(width=256, depth=6, head_dim=64)}
# tokens per CPU-second (pinned, one thread) and tokens/s (2 threads) of the peers, measured
# the same way on this kind of 2-core machine before this trainer existed (the reference
# table of benchmarks/results/train_throughput.md)
PEERS = {
    "nanoGPT (PyTorch eager)": {"w128_d4": (12_000, 25_000), "w256_d6": (3_300, 6_300)},
    "nanodo (JAX/Flax)": {"w128_d4": (5_800, 8_500), "w256_d6": (1_650, 2_700)},
}

# What the trainer ships with: XLA's CPU defaults and the model's defaults (unrolled
# layers, blocked causal attention). Each idea changes one thing (model keys, XLA flags,
# or the loop) and is measured alternately with the baseline, so that both see the same
# machine load.
VARIANTS = {
    "baseline": {},
    "scan_layers": {"model": {"scan_layers": True}},
    "full_attention": {"model": {"attention": "full"}},
    "xla_attention": {"model": {"attention": "xla"}},
    "no_donation": {"donate": False},
    "sync_every_step": {"sync_every": 1},
    "onednn": {"flags": "--xla_cpu_use_onednn=true"},
    "no_xnnpack": {"flags": "--xla_cpu_use_xnnpack=false"},
    "vector_width_512": {"flags": "--xla_cpu_prefer_vector_width=512"},
    "fast_math": {"flags": "--xla_cpu_enable_fast_math=true"},
}


def child(spec: dict) -> dict:
    """Runs in a fresh process: pin, configure XLA, time the train step."""
    flags = [spec.get("flags", "")]
    if spec["pinned"]:
        os.sched_setaffinity(0, {spec.get("core", 0)})
        flags.append("--xla_cpu_multi_thread_eigen=false")
    os.environ["XLA_FLAGS"] = " ".join(f for f in flags if f)
    os.environ["JAX_PLATFORMS"] = "cpu"
    import jax
    import numpy as np

    from scaling.model import ModelConfig
    from scaling.train.config import MeshConfig, OptimizerConfig
    from scaling.train.mesh import make_mesh
    from scaling.train.step import program

    cfg = ModelConfig(**SHAPES[spec["shape"]], vocab_size=256, seq_len=256, **spec.get("model", {}))
    mesh = make_mesh(MeshConfig(data=1), jax.devices()[:1])
    prog = program(
        cfg, OptimizerConfig(lr=1e-3, weight_decay=0.1, clip_norm=1.0), 1, mesh, MeshConfig().sharding_rules()
    )
    step = prog.train_step
    if not spec.get("donate", True):
        step = jax.jit(step.__wrapped__ if hasattr(step, "__wrapped__") else step)
    rng = np.random.default_rng(0)
    batches = [
        jax.device_put(rng.integers(0, 256, (16, 257)).astype(np.int32), prog.batch_sharding()) for _ in range(4)
    ]
    params, opt_state = prog.init(np.int32(0))
    t = time.perf_counter()
    for i in range(2):  # compile + warm up
        params, opt_state, m = step(params, opt_state, batches[i % 4], np.float32(1e-3))
    jax.block_until_ready(m)
    compile_s = time.perf_counter() - t
    sync_every = spec.get("sync_every", 10)
    wall0, cpu0 = time.perf_counter(), time.process_time()
    pending, dispatch = [], 0.0
    for i in range(spec["steps"]):
        t = time.perf_counter()
        params, opt_state, m = step(params, opt_state, batches[i % 4], np.float32(1e-3))
        dispatch += time.perf_counter() - t
        pending.append(m["loss"])
        if (i + 1) % sync_every == 0:
            jax.device_get(pending)
            pending.clear()
    jax.block_until_ready((params, m))
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    tokens = spec["steps"] * 16 * 256
    return {
        "tokens_per_s": tokens / wall,
        "tokens_per_cpu_s": tokens / cpu,
        "wall_s": wall,
        "cpu_s": cpu,
        "compile_s": compile_s,
        "steps": spec["steps"],
        "loss": float(m["loss"]),
        "dispatch_ms_per_step": 1e3 * dispatch / spec["steps"],
        "step_ms": 1e3 * wall / spec["steps"],
    }


def measure(spec: dict) -> dict:
    env = dict(os.environ, PYTHONPATH=str(HERE.parent) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.pop("XLA_FLAGS", None)
    out = subprocess.run(
        [sys.executable, __file__, "--child", json.dumps(spec)], env=env, capture_output=True, text=True, check=False
    )
    if out.returncode:
        return {"error": (out.stderr or out.stdout).strip().splitlines()[-1:]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def best(runs: list[dict], key: str) -> dict:
    ok = [r for r in runs if "error" not in r]
    return max(ok, key=lambda r: r[key]) if ok else runs[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--ideas", action="store_true", help="also measure every idea in VARIANTS against the baseline")
    ap.add_argument("--only", nargs="*", help="ideas to measure (implies --ideas)")
    ap.add_argument("--steps", type=int, default=0, help="timed steps (default: 30 / 10 by shape)")
    ap.add_argument("--repeats", type=int, default=3, help="pinned runs per cell (the best is kept)")
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--markdown", action="store_true", help="only rewrite the .md from the recorded .json")
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(json.loads(args.child))))
        return
    if args.markdown:
        record = json.loads((RESULTS / "train_throughput.json").read_text())
        (RESULTS / "train_throughput.md").write_text(markdown(record))
        return
    ideas = args.only if args.only is not None else (list(VARIANTS)[1:] if args.ideas else [])
    steps = {shape: args.steps or (30 if shape == "w128_d4" else 10) for shape in SHAPES}
    baseline, idea_rows = {}, {}
    for shape in SHAPES:
        spec = {"shape": shape, "steps": steps[shape]}
        runs = [measure({**spec, "pinned": True}) for _ in range(args.repeats)]
        pinned = best(runs, "tokens_per_cpu_s")
        threads = best([measure({**spec, "pinned": False}) for _ in range(2)], "tokens_per_s")
        baseline[shape] = {
            "pinned_1_core": pinned,
            "threads_2": threads,
            "pinned_runs": [r.get("tokens_per_cpu_s") for r in runs],
        }
        print(
            f"baseline {shape}: {pinned.get('tokens_per_cpu_s', float('nan')):7.0f} tokens/CPU-s pinned, "
            f"{threads.get('tokens_per_s', float('nan')):7.0f} tokens/s on 2 threads",
            flush=True,
        )
        for name in ideas:
            base_runs, idea_runs = [], []
            for _ in range(args.repeats):  # alternate: both see the same load
                base_runs.append(measure({**spec, "pinned": True}))
                idea_runs.append(measure({**spec, **VARIANTS[name], "pinned": True}))
            b, i = best(base_runs, "tokens_per_cpu_s"), best(idea_runs, "tokens_per_cpu_s")
            ratio = i["tokens_per_cpu_s"] / b["tokens_per_cpu_s"] if "error" not in i and "error" not in b else None
            idea_rows.setdefault(name, {})[shape] = {
                "baseline": b.get("tokens_per_cpu_s"),
                "idea": i.get("tokens_per_cpu_s"),
                "ratio": ratio,
                "compile_s": i.get("compile_s"),
                "error": i.get("error"),
            }
            print(
                f"  {name:18s} {shape}: {i.get('tokens_per_cpu_s', float('nan')):7.0f} vs baseline "
                f"{b.get('tokens_per_cpu_s', float('nan')):7.0f} tokens/CPU-s"
                + (f" ({ratio:.3f}x)" if ratio else f" {i.get('error')}"),
                flush=True,
            )
    if args.no_write:
        return
    import jax

    meta = {
        "cpu": _cpu_name(),
        "cpus": os.cpu_count(),
        "loadavg_at_end": os.getloadavg(),
        "jax": jax.__version__,
        "python": platform.python_version(),
        "time": time.strftime("%Y-%m-%d %H:%M"),
        "steps": steps,
        "repeats": args.repeats,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / "train_throughput.json"
    previous = json.loads(path.read_text()) if path.exists() else {}
    record = {"meta": meta, "peers": PEERS, "baseline": baseline, "ideas": {**previous.get("ideas", {}), **idea_rows}}
    path.write_text(json.dumps(record, indent=1) + "\n")
    (RESULTS / "train_throughput.md").write_text(markdown(record))
    print(f"wrote {path} and train_throughput.md")


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.machine()


FINDINGS = """\
## What was tried (ratios from the table above; noise between paired runs is about ±3%)

- **Layer scan** (`model.scan_layers = true`): 0.84–0.85x. XLA:CPU loses cross-layer
  fusion and adds dynamic-slice copies of the stacked weights; unrolled stays the default
  (scan only pays off in compile time at large depth).
- **Attention**: the model's "blocked" causal attention (query chunks of 64 that skip fully
  masked key blocks, 2-D matmuls) is the fastest; the full masked T×T matrix is 0.93–0.97x
  and `jax.nn.dot_product_attention` ("xla") 0.79–0.92x on CPU.
- **Buffer donation** off: 0.99–1.03x, i.e. no measurable speed effect on CPU at these
  sizes; kept, since it halves the peak memory of parameters + optimizer state.
- **Host sync every step** (pulling the loss each step instead of every 10): 0.99x; a step
  takes 0.4–1.4 s here, so a sync costs nothing measurable. The host time of calling the
  jitted step (argument handling and dispatch; `dispatch ms/step` above) is 0.2–0.3 ms
  against a step of 380 ms (w128_d4) or 1,350 ms (w256_d6): Python overhead is not a lever.
- **XLA CPU flags**: oneDNN (`--xla_cpu_use_onednn=true`) 1.00–1.03x, XNNPACK off 0.98–1.03x,
  512-bit vectors 0.98–1.01x, fast-math 0.99–1.01x: all within noise, so the trainer sets
  no XLA flags (fast-math would also change numerics).
- So the speed is the model's XLA program (its blocked attention and matmul layout,
  `scaling/model`); the trainer's part (loss, AdamW, donation, the loop) costs nothing
  measurable on top of it.

The ideas were measured on a busy machine (load average 5–10), the headline table later
at load 1–2: compare ratios within a row, not absolute numbers across the two tables.
"""


def markdown(record: dict) -> str:
    m = record["meta"]
    load = ", ".join(f"{x:.1f}" for x in m["loadavg_at_end"])
    lines = [
        "# Training throughput (CPU)",
        "",
        f"`python benchmarks/train_throughput.py --ideas` on {m['cpu']} ({m['cpus']} cores), JAX {m['jax']}, "
        f"{m['time']}; load average at the end {load} (a shared machine).",
        "vocab 256, seq 256, batch 16, float32, AdamW; the trainer's compiled step and loop. Per CPU-second: "
        "pinned to one core, one XLA thread, tokens / process CPU time (best of the repeats). 2 threads: "
        "unpinned wall clock (load-sensitive).",
        "",
        "| model | ours, tokens/CPU-s | ours, tokens/s (2 threads) | nanodo tokens/CPU-s | ours / nanodo "
        "| nanoGPT tokens/CPU-s | dispatch ms/step |",
        "|---|---|---|---|---|---|---|",
    ]
    for shape, row in record["baseline"].items():
        pinned = row["pinned_1_core"]
        ours = pinned.get("tokens_per_cpu_s")
        thr = (row.get("threads_2") or {}).get("tokens_per_s")
        nanodo = record["peers"]["nanodo (JAX/Flax)"][shape][0]
        nanogpt = record["peers"]["nanoGPT (PyTorch eager)"][shape][0]
        dispatch = pinned.get("dispatch_ms_per_step")
        lines.append(
            f"| {shape} | {ours:,.0f} | {thr:,.0f} | {nanodo:,} | **{ours / nanodo:.2f}x** | {nanogpt:,} "
            f"| {'-' if dispatch is None else f'{dispatch:.2f}'} |"
        )
    lines += [
        "",
        "## Ideas, each measured alternately with the baseline (ratio > 1: faster)",
        "",
        "| idea | w128_d4 | w256_d6 |",
        "|---|---|---|",
    ]
    for name, shapes in record["ideas"].items():
        cells = []
        for shape in SHAPES:
            c = shapes.get(shape, {})
            cells.append(
                f"{c['ratio']:.3f}x ({c['idea']:,.0f} vs {c['baseline']:,.0f})"
                if c.get("ratio")
                else f"error: {c.get('error')}"
                if c
                else "-"
            )
        lines.append(f"| {name} | {' | '.join(cells)} |")
    return "\n".join(lines) + "\n\n" + FINDINGS


if __name__ == "__main__":
    main()
