"""A synthetic results store (runs.csv, curves.csv, sweep.toml, manifest.json and a
weight-path interpolation JSON) drawn from a known Chinchilla law with noise.

The figures, the notebook and their tests run on it without training anything:

    write_synthetic_store(tmp_path / "store")

It has the store's columns (``scaling.sweep.store.RUN_COLUMNS`` / ``CURVE_COLUMNS``),
IsoFLOP budgets with sizes spread around the law's optimum, and curves with a dozen
evaluations per run.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from scaling.analysis.synthetic import chinchilla_loss, chinchilla_optimum

__all__ = ["SYNTHETIC_LAW", "write_synthetic_store"]

# Losses in the range of a small byte-level model (nats/token).
SYNTHETIC_LAW = dict(E=1.1, A=30.0, B=60.0, alpha=0.33, beta=0.30)

_RUN_COLUMNS = (
    "run_id", "sweep", "plan_kind", "parent_run_id", "width", "depth", "heads",
    "params_nonembedding", "params_total", "tokens", "flops", "flop_convention", "budget",
    "tokens_per_param", "eval_loss", "lr", "batch_size", "seq_len", "steps", "warmup_steps",
    "seed", "parameterization", "schedule", "status", "error", "wall_time_s",
)  # fmt: skip
_CURVE_COLUMNS = ("run_id", "step", "tokens", "flops", "train_loss", "eval_loss", "lr")


def write_synthetic_store(
    root: str | Path,
    *,
    budgets=(1e11, 3.16e11, 1e12),
    sizes: int = 5,
    span: float = 0.6,
    evals: int = 12,
    noise: float = 0.004,
    seed: int = 0,
    law: dict = SYNTHETIC_LAW,
    interpolation: bool = True,
) -> Path:
    """Write a results directory at ``root`` and return its path.

    budgets: IsoFLOP budgets C (FLOPs, 6ND; the quickstart's by default); sizes: runs per budget, log-spaced over
    ±``span`` decades around the law's N_opt(C); evals: evaluations per run; noise:
    relative (log-normal) noise on every loss.
    """
    rng = np.random.default_rng(seed)
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    seq_len, batch = 128, 16
    runs, curves = [], []
    for C in budgets:
        n_opt, _ = chinchilla_optimum(C, **law)
        for j, N in enumerate(n_opt * np.logspace(-span, span, sizes)):
            D = C / (6 * N)
            steps = max(evals, int(round(D / (batch * seq_len))))
            width = int(16 * max(1, round(np.sqrt(N / 24) / 16)))
            run_id = f"c{C:.0e}-n{j}".replace("+", "")
            eval_steps = np.unique(np.linspace(steps / evals, steps, evals).round().astype(int))
            tok = eval_steps / steps * D
            lr = 3e-3 * (0.1 + 0.9 * 0.5 * (1 + np.cos(np.pi * eval_steps / steps)))
            loss = chinchilla_loss(N, tok, **law) * np.exp(noise * rng.standard_normal(len(tok)))
            train = loss * np.exp(0.01 + noise * rng.standard_normal(len(tok)))
            curves.append(
                pd.DataFrame(
                    dict(
                        run_id=run_id,
                        step=eval_steps,
                        tokens=tok,
                        flops=6 * N * tok,
                        train_loss=train,
                        eval_loss=loss,
                        lr=lr,
                    )
                )
            )
            runs.append(
                dict(
                    run_id=run_id,
                    sweep="synthetic",
                    plan_kind="isoflop",
                    parent_run_id="",
                    width=width,
                    depth=2,
                    heads=max(1, width // 16),
                    params_nonembedding=N,
                    params_total=N + 2 * 257 * width,
                    tokens=D,
                    flops=C,
                    flop_convention="6N",
                    budget=C,
                    tokens_per_param=D / N,
                    eval_loss=loss[-1],
                    lr=3e-3,
                    batch_size=batch,
                    seq_len=seq_len,
                    steps=steps,
                    warmup_steps=0,
                    seed=0,
                    parameterization="sp",
                    schedule="cosine",
                    status="done",
                    error="",
                    wall_time_s=round(N * D * 1e-9, 3),
                )
            )
    pd.DataFrame(runs, columns=_RUN_COLUMNS).to_csv(root / "runs.csv", index=False)
    pd.concat(curves, ignore_index=True)[list(_CURVE_COLUMNS)].to_csv(root / "curves.csv", index=False)
    (root / "sweep.toml").write_text(
        '[sweep]\nname = "synthetic"\nkind = "isoflop"\n'
        f"budgets = {json.dumps([float(b) for b in budgets])}\npoints_per_budget = {sizes}\n"
    )
    (root / "manifest.json").write_text(json.dumps({"synthetic": True, "law": law, "seed": seed}, indent=2) + "\n")
    if interpolation:  # the shape of `scaling interpolate A B --json`
        last = curves[-1]
        t = np.linspace(-0.5, 1.5, 21)
        la, lb = float(last["eval_loss"].iloc[-4]), float(last["eval_loss"].iloc[-1])
        bump = 0.3 * t * (1 - t)
        path_loss = (1 - t) * la + t * lb + bump + 0.002 * rng.standard_normal(len(t))
        path_loss[[5, 15]] = la, lb  # t = 0 and t = 1 are the checkpoints
        inside = (t >= 0) & (t <= 1)
        excess = path_loss - ((1 - t) * la + t * lb)
        i = int(np.argmax(np.where(inside, excess, -np.inf)))
        run_dir = f"runs/{runs[-1]['run_id']}"
        (root / "interpolation").mkdir(exist_ok=True)
        (root / "interpolation" / f"{runs[-1]['run_id']}.json").write_text(
            json.dumps(
                dict(
                    t=t.tolist(),
                    loss=path_loss.tolist(),
                    barrier=float(excess[i]),
                    barrier_t=float(t[i]),
                    loss_a=la,
                    loss_b=lb,
                    step_a=int(last["step"].iloc[-4]),
                    step_b=int(last["step"].iloc[-1]),
                    eval_run=run_dir,
                    loss_units="nats per token",
                ),
                indent=2,
            )
            + "\n"
        )
    return root
