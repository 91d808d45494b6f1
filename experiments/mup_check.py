"""muP check: the coordinate check and learning-rate transfer, SP against muP.

    uv run --frozen python experiments/mup_check.py [--out results/mup] [--quick]

Writes two small tables that ``paper_figures/fig6_mup.py`` draws:

- ``coord_check.csv``: parameterization, width, seed, step, activation, rms. The RMS of
  each activation (token embedding, each block's residual stream, logits) on one fixed
  batch, at initialisation (step 0) and after each of the first few Adam steps at a
  fixed, deliberately large learning rate. Under muP the curves are flat in width;
  under SP the logits and the residual stream grow with width once training starts
  (Yang et al. 2022, "Tensor Programs V", Fig. 5).
- ``lr_transfer.csv``: parameterization, width, lr, eval_loss, train_loss. The final
  validation loss of short runs over a grid of peak learning rates. Under muP the best
  learning rate stays put as width grows; under SP it shifts down.

Models: the project's Transformer (``scaling.model``) at widths 32-256, depth 2, on the
default data (CPython's stdlib, byte tokens). muP is relative to base width 32, so the
width-32 models are the same under both. The optimizer is Adam with global-norm
clipping and muP's per-tensor learning-rate multipliers (``scaling.model.lr_multipliers``),
in a small optax loop: a coordinate check needs activations after each step, which the
trainer does not expose, and dozens of runs of a hundred steps each would spend more time
in the trainer's checkpointing and start-up than in training. Runs for several minutes
on 2 CPU cores (``--quick``: a smaller grid, for a smoke test).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

WIDTHS = (32, 64, 128, 256)
BASE_WIDTH = 32
DEPTH = 2
HEAD_DIM = 16
SEQ_LEN = 64
BATCH = 8

COORD_LR = 1e-2
COORD_STEPS = 4
COORD_SEEDS = (0, 1, 2)

LRS = tuple(2.0**k for k in range(-11, -4))  # 4.9e-4 ... 3.1e-2, factors of 2
TRANSFER_STEPS = 120
WARMUP = 12
EVAL_BATCHES = 4


def model_config(width: int, parameterization: str):
    from scaling.model import ModelConfig

    return ModelConfig(
        width=width,
        depth=DEPTH,
        head_dim=HEAD_DIM,
        seq_len=SEQ_LEN,
        parameterization=parameterization,
        base_width=BASE_WIDTH,
    )


class Model:
    """One (width, parameterization): jitted Adam step, activation RMS and loss, compiled
    once and reused for every seed and learning rate."""

    def __init__(self, width: int, parameterization: str):
        import jax
        import jax.numpy as jnp
        import optax
        from flax import nnx

        from scaling.model import Transformer, lr_multipliers

        self.cfg = cfg = model_config(width, parameterization)
        graphdef, params = nnx.split(Transformer(cfg, rngs=nnx.Rngs(0)), nnx.Param)
        mult = lr_multipliers(cfg, params)
        scale_per_tensor = optax.GradientTransformation(
            lambda p: optax.EmptyState(),
            lambda u, s, p=None: (jax.tree.map(lambda a, m: a * m, u, mult), s),
        )
        self.tx = tx = optax.chain(
            optax.clip_by_global_norm(1.0), optax.scale_by_adam(b1=0.9, b2=0.95), scale_per_tensor
        )

        def loss_fn(p, tokens):
            logits = nnx.merge(graphdef, p)(tokens[:, :-1])
            return optax.softmax_cross_entropy_with_integer_labels(logits, tokens[:, 1:]).mean()

        def step(p, opt_state, tokens, lr):
            loss, g = jax.value_and_grad(loss_fn)(p, tokens)
            updates, opt_state = tx.update(g, opt_state, p)
            return jax.tree.map(lambda a, u: a - lr * u, p, updates), opt_state, loss

        def activation_rms(p, tokens):
            _, acts = nnx.merge(graphdef, p)(tokens[:, :-1], return_activations=True)
            return {k: jnp.sqrt(jnp.mean(jnp.square(v.astype(jnp.float32)))) for k, v in acts.items()}

        self.step = jax.jit(step, donate_argnums=(0, 1))
        self.activation_rms = jax.jit(activation_rms)
        self.loss = jax.jit(loss_fn)

    def init(self, seed: int):
        """(params, optimizer state) of a fresh model."""
        from flax import nnx

        from scaling.model import Transformer

        params = nnx.state(Transformer(self.cfg, rngs=nnx.Rngs(seed)), nnx.Param)
        return params, self.tx.init(params)


def coord_check(ds, widths) -> pd.DataFrame:
    rows = []
    batch = ds.train_batch(0, BATCH)
    for parameterization in ("sp", "mup"):
        for width in widths:
            m = Model(width, parameterization)
            for seed in COORD_SEEDS:
                params, opt_state = m.init(seed)
                for t in range(COORD_STEPS + 1):
                    for name, v in m.activation_rms(params, batch).items():
                        rows.append(
                            dict(
                                parameterization=parameterization,
                                width=width,
                                seed=seed,
                                step=t,
                                activation=name,
                                rms=float(v),
                            )
                        )
                    if t < COORD_STEPS:
                        # train on fresh batches; measure on the fixed one
                        params, opt_state, _ = m.step(
                            params, opt_state, ds.train_batch(t + 1, BATCH), np.float32(COORD_LR)
                        )
            print(f"coord check: {parameterization} width {width} done", flush=True)
    return pd.DataFrame(rows)


def schedule(peak: float, steps: int) -> np.ndarray:
    """Linear warmup, then cosine to 10% of the peak."""
    t = np.arange(steps)
    warm = np.minimum(1.0, (t + 1) / WARMUP)
    frac = np.clip((t - WARMUP) / max(1, steps - WARMUP), 0, 1)
    return peak * warm * (0.1 + 0.9 * 0.5 * (1 + np.cos(np.pi * frac)))


def lr_transfer(ds, widths, lrs, steps) -> pd.DataFrame:
    rows = []
    evals = ds.eval_batches(BATCH, EVAL_BATCHES)
    for parameterization in ("sp", "mup"):
        for width in widths:
            t0 = time.time()
            m = Model(width, parameterization)
            for peak in lrs:
                params, opt_state = m.init(0)
                train = []
                for t, lr in enumerate(schedule(peak, steps)):
                    params, opt_state, loss = m.step(params, opt_state, ds.train_batch(t, BATCH), np.float32(lr))
                    train.append(loss)
                eval_loss = float(np.mean([m.loss(params, b) for b in evals]))
                train_loss = float(np.mean(np.asarray(train[-10:])))
                rows.append(
                    dict(
                        parameterization=parameterization,
                        width=width,
                        lr=peak,
                        eval_loss=eval_loss if math.isfinite(eval_loss) else float("nan"),
                        train_loss=train_loss,
                    )
                )
            print(
                f"lr transfer: {parameterization} width {width}: {len(lrs)} runs in {time.time() - t0:.0f} s",
                flush=True,
            )
    return pd.DataFrame(rows)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    p.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "results" / "mup"))
    p.add_argument("--quick", action="store_true", help="a small grid (smoke test, ~30 s)")
    p.add_argument(
        "--transfer-only",
        type=int,
        metavar="STEPS",
        default=None,
        help="only the LR sweep, STEPS long, at lr 2^-9..2^-5, into lr_transfer_STEPS.csv",
    )
    args = p.parse_args(argv)

    from scaling.data import DataConfig, build_dataset
    from scaling.runtime import enable_compilation_cache

    enable_compilation_cache()
    widths = WIDTHS[:2] if args.quick else WIDTHS
    lrs = LRS[::2] if args.quick else LRS
    steps = 20 if args.quick else TRANSFER_STEPS
    ds = build_dataset(DataConfig(source="stdlib", tokenizer="bytes", seq_len=SEQ_LEN, seed=0))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    from scaling.atomic import write_text

    if args.transfer_only:
        name = f"lr_transfer_{args.transfer_only}.csv"
        table = lr_transfer(ds, widths, tuple(2.0**k for k in range(-9, -4)), args.transfer_only)
        write_text(out / name, table.to_csv(index=False, float_format="%.6g"))
        print(f"wrote {out}/{name} in {time.time() - t0:.0f} s")
        return 0
    write_text(out / "coord_check.csv", coord_check(ds, widths).to_csv(index=False, float_format="%.6g"))
    write_text(out / "lr_transfer.csv", lr_transfer(ds, widths, lrs, steps).to_csv(index=False, float_format="%.6g"))
    print(f"wrote {out}/coord_check.csv and lr_transfer.csv in {time.time() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
