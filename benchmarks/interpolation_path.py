"""Benchmark: the on-device interpolation path against the obvious host-side loop.

    uv run --frozen python benchmarks/interpolation_path.py --width 256 --depth 4 --points 11

Trains a throwaway run (a few steps, two checkpoints) unless --run is given, then times,
after a warm-up call each:
  device:    `path_losses`: θ(t) mixed on the devices by one compiled function, every loss
             dispatched before one host sync;
  host:      for each t, mix host copies in numpy and call `scaling.train.evaluate` (a
             host→device copy of the parameters and a sync per point);
  eval only: the same number of evaluations of one fixed parameter set (the floor).
Parameters are loaded beforehand for all three; the same validation batches; the losses
are compared. On a shared machine pin it: `taskset -c 0`. The timings are printed and
appended as one JSON line to --out (default benchmarks/results/interpolation_path.jsonl).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def _make_run(out, width: int, depth: int, seq: int) -> str:
    from scaling.train import train

    raw = {
        "model": {"width": width, "depth": depth, "head_dim": 64 if width >= 128 else 32, "seq_len": seq},
        "data": {"source": "stdlib", "num_eval_batches": 4},
        "optimizer": {"lr": 3e-3},
        "train": {
            "steps": 4,
            "global_batch_size": 8,
            "eval_every": 2,
            "checkpoint_every": 2,
            "keep": 10,
            "progress": False,
        },
    }
    result = train(raw, out)
    assert result.status == "done", result
    return str(out)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", help="an existing run directory with at least two checkpoints")
    p.add_argument("--width", type=int, default=256)
    p.add_argument("--depth", type=int, default=4)
    p.add_argument("--seq", type=int, default=128)
    p.add_argument("--points", type=int, default=11)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", type=Path, default=RESULTS / "interpolation_path.jsonl", help="append the result here")
    args = p.parse_args(argv)

    import jax
    import numpy as np

    from scaling.interpolate import grid, path_losses
    from scaling.runtime import enable_compilation_cache
    from scaling.train import checkpoint_steps, evaluate, evaluator, load_params

    enable_compilation_cache()
    with tempfile.TemporaryDirectory() as tmp:
        run = args.run or _make_run(f"{tmp}/run", args.width, args.depth, args.seq)
        a, b = checkpoint_steps(run)[-2:]
        ts = grid(args.points, (-0.5, 1.5))
        ev = evaluator(run)  # on one device: the mesh `evaluate` uses by default
        theta_a, theta_b = (ev.place(load_params(run, s, ev.mesh)) for s in (a, b))
        ha, hb = jax.device_get(theta_a), jax.device_get(theta_b)

        def device():
            return path_losses(ev, theta_a, theta_b, ts)

        def host():
            return [evaluate(run, {k: (1 - t) * ha[k] + t * hb[k] for k in ha})["eval_loss"] for t in ts]

        def eval_only():  # the floor: the same number of evaluations, no mixing at all
            return ev.losses([ev.loss_sum(theta_a) for _ in ts])

        fns = {"device": device, "host": host, "eval only": eval_only}
        losses = {name: fn() for name, fn in fns.items()}  # warm-up: compiles
        best = dict.fromkeys(fns, float("inf"))
        for _ in range(args.repeats):  # interleaved, so a busy machine hurts all alike
            for name, fn in fns.items():
                t0 = time.perf_counter()
                fn()
                best[name] = min(best[name], time.perf_counter() - t0)
        params = sum(int(np.size(v)) for v in ha.values())
        diff = max(abs(x - y) for x, y in zip(losses["device"], losses["host"]))
        print(f"{params:,} parameters, {len(ts)} points, {ev.tokens} eval tokens, {jax.devices()[0].device_kind}")
        print(
            "  ".join(f"{name}: {sec:.3f} s" for name, sec in best.items())
            + f"   host/device {best['host'] / best['device']:.2f}x   max |Δloss| {diff:.2e}"
        )
        record = {"params": params, "points": len(ts), "eval_tokens": ev.tokens,
                  "device_kind": jax.devices()[0].device_kind, "seconds": best,
                  "host_over_device": best["host"] / best["device"], "max_abs_loss_diff": diff}  # fmt: skip
        args.out.parent.mkdir(parents=True, exist_ok=True)
        with open(args.out, "a") as f:
            f.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    main()
