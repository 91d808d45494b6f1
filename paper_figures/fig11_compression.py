"""Figure 11: compression curves along the family, and the fitted degradation laws.

(a) Loss increase against bits per weight under round-to-nearest symmetric per-channel
quantization, one curve per size, with the fitted law (Kumar et al. 2024's post-training
form δ = C·N^(−γ_N)·exp(−P/γ_P), or the plain power law in P, whichever fits better).
(b) Loss increase against the kept fraction f of each matrix's rank under SVD truncation,
with the fitted law. (c) Loss increase against the compression ratio of the compressed
matrices, both methods, every size. Increases below 1e-4 nats (evaluation noise: 8 and
16 bits) are not drawn.

Data: ``results/compression/{curves.csv,fit.json}``, written by
``experiments/compression.py`` (RESULTS_DIR/compression/ is used instead when it exists).

    python paper_figures/fig11_compression.py [RESULTS_DIR] [--out DIR]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from scaling.plotting import MissingInput, paper_style, save
from scaling.plotting.figure import REPO, figure, run_script

NAME = "fig11_compression"
FLOOR = 1e-4  # increases below this are evaluation noise (and not fitted)


def compression_dir(results_dir: Path) -> Path:
    for d in (Path(results_dir) / "compression", REPO / "results" / "compression"):
        if (d / "curves.csv").is_file() and (d / "fit.json").is_file():
            return d
    raise MissingInput("results/compression/{curves.csv,fit.json} not found (run experiments/compression.py)")


def law(fit: dict, kind: str, n: float, x: np.ndarray) -> np.ndarray:
    """The chosen fitted law for quantization (x = bits) or SVD (x = rank fraction)."""
    f = fit[kind][fit[kind]["chosen"]]
    base = f["intercept"] + f["log_N"] * np.log(n)
    if kind == "quant":
        term = f["P"] * x if "P" in f else f["log_P"] * np.log(x)
    else:
        term = f["log_1mf"] * np.log(1 - x) if "log_1mf" in f else f["log_f"] * np.log(x)
    return np.exp(base + term)


@figure(NAME)
def make(results_dir, out_dir):
    d = compression_dir(results_dir)
    curves = pd.read_csv(d / "curves.csv", dtype={"setting": str})
    fit = json.loads((d / "fit.json").read_text())
    sizes = sorted(curves["params_nonembedding"].unique())
    cmap = plt.get_cmap("viridis")
    color = {n: cmap(0.9 * i / max(1, len(sizes) - 1)) for i, n in enumerate(sizes)}
    with paper_style():
        fig, axes = plt.subplots(1, 3, figsize=(11.0, 3.4))
        for n in sizes:
            c = curves[curves["params_nonembedding"] == n]
            width = int(c["width"].iloc[0])
            q = c[(c["method"] == "quant")].assign(bits=lambda t: t["setting"].astype(float)).sort_values("bits")
            q = q[q["bits"] <= 8]
            q = q[q["loss_increase"] > FLOOR]
            axes[0].plot(q["bits"], q["loss_increase"], marker="o", color=color[n],
                         linestyle="none", label=f"width {width}, N={n:,}")  # fmt: skip
            if "quant" in fit:
                bits = np.linspace(2, 8, 50)
                axes[0].plot(bits, law(fit, "quant", n, bits), color=color[n], linewidth=1)
            s = c[c["method"] == "svd"].assign(f=lambda t: t["setting"].astype(float)).sort_values("f")
            s = s[s["f"] < 1]
            axes[1].plot(s["f"], s["loss_increase"], marker="s", color=color[n], linestyle="none")
            if "svd" in fit:
                f = np.linspace(s["f"].min(), s["f"].max(), 50)
                axes[1].plot(f, law(fit, "svd", n, f), color=color[n], linewidth=1)
            for method, marker in (("quant", "o"), ("svd", "s"), ("energy", "D")):
                m = c[(c["method"] == method) & (c["compression_ratio"] > 1) & (c["loss_increase"] > FLOOR)]
                axes[2].plot(m["compression_ratio"], m["loss_increase"], marker=marker,
                             color=color[n], linestyle="none", markersize=4)  # fmt: skip
        for ax in axes:
            ax.set_yscale("log")
            ax.set_ylabel("loss increase δ (nats/token)")
        for ax, kind, title in ((axes[0], "quant", "(a) RTN quantization"), (axes[1], "svd", "(b) SVD truncation")):
            ax.set_title(title)
            if kind in fit:
                f = fit[kind][fit[kind]["chosen"]]
                ax.text(0.03, 0.03, f"{f['form'].replace('delta', 'δ')}\n$\\gamma_N$ = {f['gamma_N']:.2f}, "
                        f"$R^2$ = {f['r2']:.3f} (log δ)", transform=ax.transAxes, fontsize=6.5, va="bottom")  # fmt: skip
        axes[0].set_xlabel("bits per weight P (RTN, per channel)")
        axes[0].legend(loc="upper right")
        axes[1].set_xlabel("kept fraction f of each matrix's rank")
        axes[2].set_xscale("log")
        axes[2].set_xlabel("compression ratio of the compressed matrices")
        axes[2].set_title("(c) ● quantization, ■ SVD rank, ◆ SVD energy", fontsize=9)
        fig.tight_layout()
        return save(fig, out_dir, NAME)


if __name__ == "__main__":
    sys.exit(run_script(make, __doc__))
