"""Shared by the figure and notebook tests: synthetic inputs in the shapes the figures read."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[2]
FIGURES = (
    "fig1_isoflop",
    "fig2_loss_vs_compute",
    "fig3_optimal_allocation",
    "fig4_loss_contours",
    "fig5_epoch_chinchilla",
    "fig6_mup",
    "fig7_interpolation",
    "fig8_backtest",
    "fig9_calibration",  # draws the committed results/calibration
    "fig10_finetune",  # these three draw the committed results/{finetune,compression,lowrank}
    "fig11_compression",
    "fig12_lowrank",
    "fig13_steplaw",  # these two draw the committed results/{steplaw,data_constrained/cpu}
    "fig14_data_constrained",
    "fig15_active_design",  # draws the committed results/active_design
)


def write_mup_tables(folder: Path) -> None:
    """coord_check.csv and lr_transfer.csv shaped like experiments/mup_check.py's."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for p in ("sp", "mup"):
        for w in (32, 64, 128):
            for seed in (0, 1):
                for step in range(3):
                    for a in ("embedding", "block_0", "block_1", "logits"):
                        grow = (w / 32) ** (0.5 * step) if p == "sp" and a != "embedding" else 1.0
                        rows.append(
                            dict(
                                parameterization=p,
                                width=w,
                                seed=seed,
                                step=step,
                                activation=a,
                                rms=0.5 * grow * (1 + 0.01 * seed),
                            )
                        )
    pd.DataFrame(rows).to_csv(folder / "coord_check.csv", index=False)
    rows = []
    for p in ("sp", "mup"):
        for w in (32, 64, 128):
            best = -7 - (np.log2(w / 32) if p == "sp" else 0)
            for k in range(-10, -4):
                rows.append(
                    dict(
                        parameterization=p,
                        width=w,
                        lr=2.0**k,
                        eval_loss=2.5 + 0.05 * (k - best) ** 2 - 0.1 * np.log2(w / 32),
                        train_loss=2.5,
                    )
                )
    pd.DataFrame(rows).to_csv(folder / "lr_transfer.csv", index=False)


def write_epoch_like(folder: Path, n: int = 25, seed: int = 0) -> Path:
    """A small table with Epoch AI's columns, drawn from their published fit."""
    rng = np.random.default_rng(seed)
    N = np.exp(rng.uniform(np.log(5e7), np.log(1e10), n))
    C = np.exp(rng.uniform(np.log(6e18), np.log(3e21), n))
    D = C / (6 * N)
    loss = (1.82 + 482 / N**0.3478 + 2085 / D**0.3658) * np.exp(0.01 * rng.standard_normal(n))
    path = folder / "epoch_chinchilla_fig4" / "svg_extracted_data.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(
        {
            "x": 0.0,
            "y": 0.0,
            "color": "#000000",
            "Model Size": N,
            "Training FLOP": C,
            "hex_color": "#000000",
            "loss": loss,
        }
    ).to_csv(path, index=False)
    return folder
