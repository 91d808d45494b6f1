"""Figure 12: the low-rank family against the dense family at CPU scale.

(a) Final held-out loss against non-embedding N: dense models and low-rank models
(every attention and MLP matrix U·V, rank = ratio × width) of about the same N trained on
the same tokens. (b) The same against training compute C (exact FLOPs): dense models and
low-rank models given the dense run's FLOPs (fewer tokens, as a wider low-rank model
costs more per token in attention and the readout).

Data: ``results/lowrank/runs.csv``, written by ``experiments/lowrank.py``
(RESULTS_DIR/lowrank/ is used instead when it exists).

    python paper_figures/fig12_lowrank.py [RESULTS_DIR] [--out DIR]
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from scaling.plotting import LABELS, MissingInput, paper_style, save
from scaling.plotting.figure import REPO, figure, run_script

NAME = "fig12_lowrank"
STYLE = {
    "dense": dict(color="black", marker="o", label="dense"),
    "lowrank_equal_params": dict(color="#d95f02", marker="s", label="low-rank, equal N and tokens"),
    "lowrank_equal_flops": dict(color="#1b9e77", marker="^", label="low-rank, equal FLOPs"),
}


def lowrank_dir(results_dir: Path) -> Path:
    for d in (Path(results_dir) / "lowrank", REPO / "results" / "lowrank"):
        if (d / "runs.csv").is_file():
            return d
    raise MissingInput("results/lowrank/runs.csv not found (run experiments/lowrank.py)")


@figure(NAME)
def make(results_dir, out_dir):
    runs = pd.read_csv(lowrank_dir(results_dir) / "runs.csv")
    with paper_style():
        fig, axes = plt.subplots(1, 2, figsize=(8.0, 3.4), sharey=True)
        for kind, ax, x in (
            ("lowrank_equal_params", axes[0], "params_nonembedding"),
            ("lowrank_equal_flops", axes[1], "flops"),
        ):
            for k in ("dense", kind):
                r = runs[runs["kind"] == k].sort_values(x)
                ax.plot(r[x], r["eval_loss"], **STYLE[k])
                if k != "dense":
                    for _, row in r.iterrows():
                        ax.annotate(f"w{int(row['width'])} r{int(row['rank'])}", (row[x], row["eval_loss"]), fontsize=6,
                                    xytext=(3, 3), textcoords="offset points")  # fmt: skip
            ax.set_xscale("log")
            ax.legend(loc="upper right")
        axes[0].set_xlabel(LABELS["params"])
        axes[0].set_ylabel(LABELS["loss"])
        axes[0].set_title("(a) at equal parameters (same tokens)")
        axes[1].set_xlabel(LABELS["flops"] + ", exact")
        axes[1].set_title("(b) at equal training FLOPs")
        fig.tight_layout()
        return save(fig, out_dir, NAME)


if __name__ == "__main__":
    sys.exit(run_script(make, __doc__))
