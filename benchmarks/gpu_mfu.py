"""Model FLOP utilisation of the trainer's compiled bf16 step on one accelerator (a benchmark).

    python benchmarks/gpu_mfu.py                  # widths 512-2048 on the default accelerator
    python benchmarks/gpu_mfu.py --widths 1024 --steps 20
    python benchmarks/gpu_mfu.py --smoke          # tiny shapes on CPU: checks the script only

On a GPU machine from a fresh clone: `uv run --frozen --extra gpu python benchmarks/gpu_mfu.py`.

What is timed is what `scaling train` runs: `scaling.train.step.program`'s train step
(AdamW with clipping, float32 parameters and optimizer state, bfloat16 matmuls, float32
loss), donated state, a new batch per step, the loss pulled to the host every 10 steps.
Setting: seq_len 2048, vocab 32768 (a BPE-sized vocabulary: bytes would understate the
readout), head_dim 128, untied embeddings, attention "xla" (`jax.nn.dot_product_attention`,
which picks cuDNN's fused kernel where it applies). The batch starts at --batch sequences
and halves on out-of-memory.

MFU = tokens/s × FLOPs/token / peak, with FLOPs/token under the "exact" convention
(`scaling.model.accounting`: every matmul, the T×T attention counted in full as in PaLM's
definition, readout included) and the device's dense bf16 peak from
`scaling.train.metrics.PEAK_FLOPS` (989 TFLOP/s for H100 SXM and H200). The "6N" column
divides 6·N_nonembedding instead, for comparison with Kaplan-style counts.

Writes benchmarks/results/gpu_mfu_<device>.json and .md (or _smoke_cpu with --smoke).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"

# width -> depth: GPT-2/3-like aspect ratios; 1024×24 is the 350M-class model (with the
# 32k vocabulary), 2048×24 about 1.3B.
SHAPES = {512: 8, 768: 12, 1024: 24, 1536: 24, 2048: 24}
SMOKE = dict(widths=[64, 128], depth=2, seq_len=128, vocab=512, head_dim=32, batch=4, steps=3)


def model_config(
    width: int,
    depth: int,
    *,
    seq_len: int,
    vocab: int,
    head_dim: int,
    dtype: str,
    remat: str = "none",
    scan: bool = False,
):
    from scaling.model import ModelConfig

    return ModelConfig(
        width=width,
        depth=depth,
        vocab_size=vocab,
        seq_len=seq_len,
        head_dim=head_dim,
        compute_dtype=dtype,
        attention="xla",
        remat=remat,
        scan_layers=scan,
    )


def _is_oom(err: Exception) -> bool:
    text = f"{type(err).__name__}: {err}"
    return "RESOURCE_EXHAUSTED" in text or "out of memory" in text.lower()


def measure(cfg, batch: int, steps: int) -> dict:
    """Compile and time the trainer's step for `cfg` at `batch` sequences (raises on OOM)."""
    import jax
    import numpy as np

    from scaling.model.accounting import (
        flops_per_token,
        params_nonembedding,
        params_total,
    )
    from scaling.train.config import MeshConfig, OptimizerConfig
    from scaling.train.mesh import make_mesh
    from scaling.train.metrics import peak_flops
    from scaling.train.step import program

    device = jax.devices()[0]
    mesh = make_mesh(MeshConfig(data=1), [device])
    prog = program(
        cfg, OptimizerConfig(lr=3e-4, weight_decay=0.1, clip_norm=1.0), 1, mesh, MeshConfig().sharding_rules()
    )
    rng = np.random.default_rng(0)
    batches = [
        jax.device_put(
            rng.integers(0, cfg.vocab_size, (batch, cfg.seq_len + 1)).astype(np.int32), prog.batch_sharding()
        )
        for _ in range(4)
    ]
    params, opt_state = prog.init(np.int32(0))
    lr = np.float32(3e-4)
    t0 = time.perf_counter()
    for i in range(3):  # compile + warm up
        params, opt_state, m = prog.train_step(params, opt_state, batches[i % 4], lr)
    jax.block_until_ready(m)
    compile_s = time.perf_counter() - t0
    pending = []
    t0 = time.perf_counter()
    for i in range(steps):
        params, opt_state, m = prog.train_step(params, opt_state, batches[i % 4], lr)
        pending.append(m["loss"])
        if (i + 1) % 10 == 0:
            jax.device_get(pending)
            pending.clear()
    jax.block_until_ready((params, m))
    wall = time.perf_counter() - t0
    tokens_per_s = steps * batch * cfg.seq_len / wall
    peak = peak_flops(device.device_kind)
    exact, six_n = flops_per_token(cfg, "exact"), flops_per_token(cfg, "6N")
    row = {
        "width": cfg.width,
        "depth": cfg.depth,
        "params_total": params_total(cfg),
        "params_nonembedding": params_nonembedding(cfg),
        "batch": batch,
        "seq_len": cfg.seq_len,
        "steps": steps,
        "step_ms": 1e3 * wall / steps,
        "tokens_per_s": tokens_per_s,
        "flops_per_token_exact": exact,
        "model_tflops_per_s": tokens_per_s * exact / 1e12,
        "mfu": tokens_per_s * exact / peak if peak else None,
        "mfu_6N": tokens_per_s * six_n / peak if peak else None,
        "compile_s": compile_s,
        "loss": float(m["loss"]),
    }
    stats = getattr(device, "memory_stats", lambda: None)() or {}
    if "peak_bytes_in_use" in stats:
        row["peak_memory_gib"] = stats["peak_bytes_in_use"] / 2**30
    return row


def run_shape(width: int, depth: int, args) -> dict:
    import gc

    import jax

    cfg = model_config(
        width,
        depth,
        seq_len=args.seq_len,
        vocab=args.vocab,
        head_dim=args.head_dim,
        dtype=args.dtype,
        remat=args.remat,
        scan=args.scan_layers,
    )
    batch = args.batch
    while batch >= 1:
        try:
            return measure(cfg, batch, args.steps)
        except Exception as err:  # noqa: BLE001 - only out-of-memory is retried
            if not _is_oom(err):
                raise
            print(f"  width {width}: batch {batch} does not fit; halving", file=sys.stderr, flush=True)
            batch //= 2
            jax.clear_caches()
            gc.collect()
    return {"width": width, "depth": depth, "error": "out of memory at batch 1"}


def markdown(result: dict) -> str:
    env = result["environment"]
    lines = [
        f"# MFU of the bf16 train step on {env['device_kind']}",
        "",
        f"`{result['command']}` — JAX {env['jax']}, {env['backend']}, {result['time']}.",
        f"seq_len {result['setting']['seq_len']}, vocab {result['setting']['vocab']}, head_dim "
        f"{result['setting']['head_dim']}, {result['setting']['dtype']} compute, attention 'xla'. "
        f"Peak {env['peak_tflops']} TFLOP/s (dense bf16).",
        "",
        "| width | depth | params | batch × seq | step ms | tokens/s | model TFLOP/s | MFU (exact) | MFU (6N) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    pct = lambda v: "n/a" if v is None else f"{100 * v:.1f}%"  # noqa: E731
    for r in result["rows"]:
        if "error" in r:
            lines.append(f"| {r['width']} | {r['depth']} | | | | | | {r['error']} | |")
            continue
        lines.append(
            f"| {r['width']} | {r['depth']} | {r['params_total'] / 1e6:.0f}M | {r['batch']} × {r['seq_len']} "
            f"| {r['step_ms']:.1f} | {r['tokens_per_s']:,.0f} | {r['model_tflops_per_s']:.1f} "
            f"| {pct(r['mfu'])} | {pct(r['mfu_6N'])} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--widths", type=int, nargs="*", default=sorted(SHAPES), help="widths (depths from SHAPES)")
    ap.add_argument("--seq-len", type=int, default=2048)
    ap.add_argument("--vocab", type=int, default=32768)
    ap.add_argument("--head-dim", type=int, default=128)
    ap.add_argument("--batch", type=int, default=16, help="starting batch in sequences (halved on OOM)")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--dtype", default="bfloat16", choices=("bfloat16", "float32"))
    ap.add_argument(
        "--remat",
        default="none",
        choices=("none", "full", "save_dots"),
        help="model.remat: recompute activations to fit larger batches (MFU counts model FLOPs only)",
    )
    ap.add_argument("--scan-layers", action="store_true", help="model.scan_layers (faster compiles at depth)")
    ap.add_argument("--smoke", action="store_true", help="tiny shapes, any backend: checks the script")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()

    from scaling.runtime import enable_compilation_cache

    enable_compilation_cache()
    import jax

    from scaling.train.metrics import peak_flops

    device = jax.devices()[0]
    if args.smoke:
        args.seq_len, args.vocab, args.head_dim = SMOKE["seq_len"], SMOKE["vocab"], SMOKE["head_dim"]
        args.batch, args.steps = SMOKE["batch"], SMOKE["steps"]
        shapes = [(w, SMOKE["depth"]) for w in SMOKE["widths"]]
    else:
        if device.platform == "cpu":
            sys.exit(
                "gpu_mfu: no accelerator (jax.devices() is CPU). MFU is measured against an "
                "accelerator's bf16 peak; run on a GPU/TPU, or pass --smoke to check the script."
            )
        unknown = [w for w in args.widths if w not in SHAPES]
        if unknown:
            sys.exit(f"gpu_mfu: --widths {unknown} have no depth in SHAPES {SHAPES}")
        shapes = [(w, SHAPES[w]) for w in args.widths]

    peak = peak_flops(device.device_kind)
    rows = []
    for width, depth in shapes:
        row = run_shape(width, depth, args)
        rows.append(row)
        print(json.dumps(row), flush=True)
    result = {
        "command": "python benchmarks/gpu_mfu.py " + " ".join(sys.argv[1:]),
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "setting": {
            "seq_len": args.seq_len,
            "vocab": args.vocab,
            "head_dim": args.head_dim,
            "dtype": args.dtype,
            "remat": args.remat,
            "scan_layers": args.scan_layers,
        },
        "environment": {
            "device_kind": device.device_kind,
            "backend": jax.default_backend(),
            "jax": jax.__version__,
            "python": platform.python_version(),
            "peak_tflops": peak / 1e12 if peak else None,
        },
        "rows": rows,
    }
    md = markdown(result)
    print(md)
    if not args.no_write:
        RESULTS.mkdir(exist_ok=True)
        tag = "smoke_" + device.platform if args.smoke else device.device_kind.replace(" ", "_").replace("/", "_")
        (RESULTS / f"gpu_mfu_{tag}.json").write_text(json.dumps(result, indent=2) + "\n")
        (RESULTS / f"gpu_mfu_{tag}.md").write_text(md)


if __name__ == "__main__":
    main()
