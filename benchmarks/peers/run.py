"""The trainer's step against nanoGPT's model in PyTorch eager, side by side on one machine.

    python benchmarks/peers/run.py                       # 3 pairs per shape, writes results
    python benchmarks/peers/run.py --pairs 1 --steps 10  # a quick look, writes nothing
    python benchmarks/peers/run.py --torch-python /path/to/python   # a Python with torch

Each measurement is a fresh process pinned to one core with one thread; tokens are divided
by the process's CPU time, which survives a busy machine better than wall time. The two
sides alternate (peer, ours, peer, ours, ...) so that both see the same load, and each
pair gives one ratio; the table reports every ratio and their median. "ours" is the
trainer's own compiled step (benchmarks/train_throughput.py's child) under the allocator
the `scaling` command uses (mimalloc, scaling/allocator.py); "ours, system malloc" is the
same step without it, measured in the same pairs, so the allocator's gain is a ratio from
one run too.

Setting, as in the issue: vocab 256, seq 256, batch 16, float32, AdamW (clip 1.0, weight
decay 0.1), at (width 128, depth 4, 4 heads) and (width 256, depth 6, 4 heads). The peer
(benchmarks/peers/nanogpt_torch.py) needs torch: the `bench` extra, or `--torch-python`.
Writes benchmarks/results/peers.json and peers.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
RESULTS = ROOT / "benchmarks" / "results"
sys.path.insert(0, str(ROOT))

from scaling.allocator import preload_env  # noqa: E402

SHAPES = {
    "w128_d4": {"width": 128, "depth": 4, "heads": 4, "head_dim": 32, "steps": 30},
    "w256_d6": {"width": 256, "depth": 6, "heads": 4, "head_dim": 64, "steps": 10},
}


def _run(cmd: list[str], env: dict[str, str]) -> dict:
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if out.returncode:
        raise RuntimeError(f"{' '.join(cmd[:3])} failed: {(out.stderr or out.stdout).strip()[-600:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def peer(torch_python: str, shape: dict, steps: int) -> dict:
    spec = {k: shape[k] for k in ("width", "depth", "heads")} | {"steps": steps}
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    env.pop("LD_PRELOAD", None)
    return _run([torch_python, str(HERE / "nanogpt_torch.py"), json.dumps(spec)], env)


def ours(name: str, steps: int, allocator: bool) -> dict:
    spec = {"shape": name, "pinned": True, "steps": steps}
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("XLA_FLAGS", None)
    env.pop("LD_PRELOAD", None)
    if allocator:
        env = preload_env(env) or env
        if "LD_PRELOAD" not in env:
            raise RuntimeError("mimalloc is not installed (the cmeel-mimalloc dependency); cannot measure 'ours'")
    return _run([sys.executable, str(ROOT / "benchmarks" / "train_throughput.py"), "--child", json.dumps(spec)], env)


def machine() -> dict:
    cpu = next(
        (ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines() if "model name" in ln),
        platform.processor(),
    )
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "load_avg_start": os.getloadavg(),
        "python": platform.python_version(),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }


def versions(torch_python: str) -> dict:
    import jax

    torch_v = subprocess.run(
        [torch_python, "-c", "import torch; print(torch.__version__)"], capture_output=True, text=True, check=False
    ).stdout.strip()
    return {"jax": jax.__version__, "torch": torch_v}


def markdown(rec: dict) -> str:
    m, v = rec["machine"], rec["versions"]
    lines = [
        "# The trainer's step against nanoGPT in PyTorch eager (tokens per CPU-second)",
        "",
        f"`{rec['command']}` on {m['cpu']} ({m['cores']} cores), {m['date']}; jax {v['jax']}, torch {v['torch']},",
        f"Python {m['python']}. Load average {m['load_avg_start'][0]:.1f} at the start, "
        f"{rec['load_avg_end'][0]:.1f} at the end.",
        "Each process pinned to one core with one thread; the sides alternate; one ratio per pair.",
        "",
        "| shape | nanoGPT (torch eager) | ours (mimalloc) | ours (system malloc) "
        "| ours / nanoGPT per pair → median | mimalloc / system per pair → median |",
        "|---|---|---|---|---|---|",
    ]
    for name, cell in rec["shapes"].items():
        p, o, s = (statistics.median(cell[k]) for k in ("peer", "ours", "ours_system"))
        r = ", ".join(f"{x:.2f}" for x in cell["ratio"])
        a = ", ".join(f"{x:.2f}" for x in cell["allocator_ratio"])
        lines.append(
            f"| {name} | {p:,.0f} | {o:,.0f} | {s:,.0f} | {r} → **{statistics.median(cell['ratio']):.2f}** "
            f"| {a} → {statistics.median(cell['allocator_ratio']):.2f} |"
        )
    lines += [
        "",
        "Cells are medians of tokens per CPU-second over the pairs. FLOPs per token differ by the",
        "models' small differences (RoPE and RMSNorm in ours, learned positions and LayerNorm in",
        "nanoGPT, which also ties its embeddings: the same matmul FLOPs at equal width, depth, heads, vocab).",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=3)
    ap.add_argument("--steps", type=int, default=0, help="timed steps (default: 30 / 10 by shape)")
    ap.add_argument("--shapes", nargs="*", default=list(SHAPES))
    ap.add_argument("--torch-python", default=sys.executable, help="a Python that can import torch")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    rec = {
        "command": "python benchmarks/peers/run.py"
        + ("" if args.torch_python == sys.executable else " --torch-python PYTHON_WITH_TORCH"),
        "machine": machine(),
        "versions": versions(args.torch_python),
        "shapes": {},
    }
    for name in args.shapes:
        shape = SHAPES[name]
        steps = args.steps or shape["steps"]
        cell = {k: [] for k in ("peer", "ours", "ours_system", "ratio", "allocator_ratio")}
        for i in range(args.pairs):
            a = peer(args.torch_python, shape, steps)["tokens_per_cpu_s"]
            b = ours(name, steps, allocator=True)["tokens_per_cpu_s"]
            c = ours(name, steps, allocator=False)["tokens_per_cpu_s"]
            cell["peer"].append(a)
            cell["ours"].append(b)
            cell["ours_system"].append(c)
            cell["ratio"].append(b / a)
            cell["allocator_ratio"].append(b / c)
            print(f"{name} pair {i + 1}: nanoGPT {a:,.0f}  ours {b:,.0f}  system-malloc {c:,.0f}  ratio {b / a:.2f}")
        rec["shapes"][name] = cell
    rec["load_avg_end"] = os.getloadavg()
    text = markdown(rec)
    print(text)
    if not args.no_write and args.pairs >= 3:
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / "peers.json").write_text(json.dumps(rec, indent=1) + "\n")
        (RESULTS / "peers.md").write_text(text)


if __name__ == "__main__":
    main()
