"""`scaling info`: the JAX runtime, and the model family's parameter and FLOP accounting.

scaling info                                   # devices + a family table
scaling info --width 512 --depth 8 --json      # one model's accounting as JSON
"""

from __future__ import annotations

import argparse
import json

FAMILY = ((128, 2), (256, 4), (384, 6), (512, 8), (768, 12), (1024, 16))


def register(subparsers) -> None:
    p = subparsers.add_parser("info", help="JAX devices and the model family's parameter/FLOP accounting")
    p.add_argument("--width", type=int, help="model width (with --depth: account for this one model)")
    p.add_argument("--depth", type=int, help="number of blocks")
    p.add_argument("--vocab", type=int, default=257, help="vocabulary size (default 257: bytes + separator)")
    p.add_argument("--seq-len", type=int, default=256, help="sequence length (default 256)")
    p.add_argument("--head-dim", type=int, default=64, help="per-head dimension (default 64)")
    p.add_argument("--mlp", choices=("gelu", "swiglu"), default="gelu")
    p.add_argument("--tied", action="store_true", help="tied input/output embeddings")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from scaling.model.accounting import FLOP_CONVENTIONS, accounting
    from scaling.model.config import ModelConfig

    if (args.width is None) != (args.depth is None):
        raise ValueError("--width and --depth go together")

    def config(width: int, depth: int) -> ModelConfig:
        return ModelConfig(
            width=width,
            depth=depth,
            vocab_size=args.vocab,
            seq_len=args.seq_len,
            head_dim=args.head_dim,
            mlp=args.mlp,
            tied_embeddings=args.tied,
        )

    if args.width is not None:
        cfg = config(args.width, args.depth)
        acc = accounting(cfg)
        if args.json:
            print(json.dumps(acc))
        else:
            print(_table([cfg], FLOP_CONVENTIONS))
        return 0

    from scaling.runtime import describe_devices

    devices = describe_devices()
    family = [config(w, d) for w, d in FAMILY if w % args.head_dim == 0]
    if args.json:
        rows = [{"width": c.width, "depth": c.depth, "heads": c.heads, **accounting(c)} for c in family]
        print(json.dumps({"runtime": devices, "family": rows}))
        return 0
    kinds = ", ".join(f"{n} x {kind}" for kind, n in devices["device_kinds"].items())
    print(
        f"JAX {devices['jax_version']}  backend {devices['backend']}  devices {devices['device_count']} ({kinds})"
        f"  processes {devices['process_count']}"
    )
    print(
        f"\nModel family (vocab {args.vocab}, seq_len {args.seq_len}, head_dim {args.head_dim}, {args.mlp}"
        f"{', tied' if args.tied else ''}); FLOPs are per training token:\n"
    )
    print(_table(family, FLOP_CONVENTIONS))
    return 0


def _table(cfgs, conventions) -> str:
    from scaling.model.accounting import accounting

    head = ["width", "depth", "heads", "N (non-emb)", "params total"] + [f"FLOPs/tok {c}" for c in conventions]
    rows = []
    for c in cfgs:
        acc = accounting(c)
        rows.append(
            [str(c.width), str(c.depth), str(c.heads), f"{acc['params_nonembedding']:,}", f"{acc['params_total']:,}"]
            + [f"{acc['flops_per_token'][k]:.4g}" for k in conventions]
        )
    widths = [max(len(r[i]) for r in [head] + rows) for i in range(len(head))]
    return "\n".join("  ".join(cell.rjust(w) for cell, w in zip(r, widths)) for r in [head] + rows)
