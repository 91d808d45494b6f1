"""Figure 10: fine-tuning along the family, the pre-trained ↔ fine-tuned weight path.

(a) For each width, the held-out loss on the pre-training data (code) against the loss on
the fine-tuning data (email) along θ(t) = (1 − t)·θ_pre + t·θ_ft, t = 0 ... 1; the star is
the best t by the constrained rule (lowest email loss with the code loss at most ε above
its t = 0 value). (b) Forgetting at t = 1 (code loss rise) and the email gain at the best
t, against N. (c) The best t against N.

Data: ``results/finetune/{summary.csv,tradeoff_w*.json}``, written by
``experiments/finetune.py`` (RESULTS_DIR/finetune/ is used instead when it exists).

    python paper_figures/fig10_finetune.py [RESULTS_DIR] [--out DIR]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from scaling.plotting import LABELS, MissingInput, paper_style, save
from scaling.plotting.figure import REPO, figure, run_script

NAME = "fig10_finetune"


def finetune_dir(results_dir: Path) -> Path:
    for d in (Path(results_dir) / "finetune", REPO / "results" / "finetune"):
        if (d / "summary.csv").is_file() and list(d.glob("tradeoff_w*.json")):
            return d
    raise MissingInput("results/finetune/{summary.csv,tradeoff_w*.json} not found (run experiments/finetune.py)")


@figure(NAME)
def make(results_dir, out_dir):
    d = finetune_dir(results_dir)
    summary = pd.read_csv(d / "summary.csv").sort_values("params_nonembedding")
    paths = {int(p.stem.split("_w")[1]): json.loads(p.read_text()) for p in d.glob("tradeoff_w*.json")}
    cmap = plt.get_cmap("viridis")
    widths = sorted(paths)
    color = {w: cmap(0.9 * i / max(1, len(widths) - 1)) for i, w in enumerate(widths)}
    with paper_style():
        fig, axes = plt.subplots(1, 3, figsize=(11.0, 3.4))
        ax = axes[0]
        for w in widths:
            r = paths[w]
            code, email, t = r["losses"]["code"], r["losses"]["email"], r["t"]
            ax.plot(
                code,
                email,
                marker="o",
                markersize=3,
                color=color[w],
                label=f"width {w}, N={r['params_nonembedding']:,}",
            )
            i = t.index(r["best"]["t"])
            ax.plot([code[i]], [email[i]], marker="*", markersize=12, color=color[w], markeredgecolor="black",
                    markeredgewidth=0.6, linestyle="none", zorder=5)  # fmt: skip
            ax.annotate("t=0", (code[0], email[0]), fontsize=6, xytext=(3, 3), textcoords="offset points")
            ax.annotate("t=1", (code[-1], email[-1]), fontsize=6, xytext=(3, -8), textcoords="offset points")
        eps = paths[widths[0]]["rule"]["epsilon"]
        ax.set_xlabel("loss on pre-training data (code), nats/token")
        ax.set_ylabel("loss on fine-tuning data (email), nats/token")
        ax.set_title(f"(a) the path θ(t); ★ best t (code rise ≤ {eps:g} nats)")
        ax.legend(loc="upper right")

        ax = axes[1]
        n = summary["params_nonembedding"]
        ax.plot(
            n, summary["forgetting_at_1"], marker="o", color="#d95f02", label="forgetting at t = 1 (code loss rise)"
        )
        ax.plot(n, summary["gain_at_best"], marker="s", color="#1b9e77", label="email gain at best t")
        ax.plot(n, summary["gain_at_1"], marker="^", color="#7570b3", linestyle=":", label="email gain at t = 1")
        ax.set_xscale("log")
        ax.set_xlabel(LABELS["params"])
        ax.set_ylabel("nats/token")
        ax.set_title("(b) forgetting and gain against N")
        ax.legend(loc="best")

        ax = axes[2]
        ax.plot(n, summary["best_t"], marker="o", color="black")
        ax.set_xscale("log")
        ax.set_ylim(-0.05, 1.05)
        ax.set_xlabel(LABELS["params"])
        ax.set_ylabel("best t")
        ax.set_title("(c) best mixing weight against N")
        fig.tight_layout()
        return save(fig, out_dir, NAME)


if __name__ == "__main__":
    sys.exit(run_script(make, __doc__))
