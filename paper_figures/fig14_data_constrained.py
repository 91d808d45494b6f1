"""Figure 14: the value of a repeated token against a fresh one, on CPU (the question of
Muennighoff et al. 2023, arXiv:2305.16264, at laptop scale).

(a) The loss of a run trained on a fixed subset of U unique tokens repeated for D/U
epochs, above the same (N, D) run on fresh data, against the epochs. (b) What one
repeated token was worth in fresh tokens, (D'_obs - U)/(D - U), with D'_obs the fresh
tokens at which the fresh-data Chinchilla law reaches the observed loss, against the
repetitions R_D = D/U - 1; the curves are the law's R*_D·(1 - exp(-R_D/R*_D))/R_D at the
fitted R*_D and at the published 15.4.

Data: ``results/data_constrained/cpu/fit.json``, written by ``experiments/datablations_cpu.py``
from the sweep experiments/datablations_cpu.toml (RESULTS_DIR/data_constrained/cpu/ is
used instead when it exists).

    python paper_figures/fig14_data_constrained.py [RESULTS_DIR] [--out DIR]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import matplotlib.pyplot as plt
import matplotlib.ticker as mticker
import numpy as np
import pandas as pd

from scaling.plotting import MissingInput, paper_style, save
from scaling.plotting.figure import REPO, figure, run_script

NAME = "fig14_data_constrained"
FIT = Path("data_constrained") / "cpu" / "fit.json"


def read_fit(results_dir: Path) -> dict:
    for path in (Path(results_dir) / FIT, REPO / "results" / FIT):
        if path.is_file():
            return json.loads(path.read_text())
    raise MissingInput(f"results/{FIT} not found (run experiments/datablations_cpu.py)")


@figure(NAME)
def make(results_dir, out_dir):
    fit = read_fit(results_dir)
    gaps = pd.DataFrame(fit["repeated_vs_fresh"])
    value = pd.DataFrame(fit["value_of_a_repeated_token"])
    value["repetitions"] = value["tokens"] / value["unique_tokens"] - 1
    rd, published = fit["RD_star"], fit["published_RD_star"]
    lo, hi = fit["RD_star_interval95"]
    with paper_style():
        fig, axes = plt.subplots(1, 2, figsize=(9.0, 3.8), constrained_layout=True)
        ax = axes[0]
        for N, g in gaps.groupby("params"):
            for U, gu in g.groupby("unique_tokens"):
                gu = gu.sort_values("epochs")
                ax.plot(gu["epochs"], gu["gap"], "o-", label=f"N = {N:,.0f}, U = {U:,.0f}")
        ax.axhline(0, color="k", linewidth=0.8)
        ax.set(xscale="log", xlabel="epochs over the unique tokens", ylabel="loss above the fresh-data run",
               title="(a) repeated vs fresh, same N and D")  # fmt: skip
        ax.xaxis.set_major_locator(mticker.FixedLocator([1, 2, 4, 8, 16, 32]))
        ax.xaxis.set_major_formatter(mticker.ScalarFormatter())
        ax.xaxis.set_minor_formatter(mticker.NullFormatter())
        ax.legend(fontsize="x-small")
        ax = axes[1]
        R = np.geomspace(0.5, max(60.0, value["repetitions"].max() * 1.2), 100)
        ax.scatter(value["repetitions"], value["value_obs"], c="k", s=18, label="observed (via the fresh-data law)")
        ax.plot(R, rd * -np.expm1(-R / rd) / R, "-", color="tab:blue",
                label=f"fitted R*_D = {rd:.3g} [{lo:.3g}, {hi:.3g}]")  # fmt: skip
        ax.plot(R, published * -np.expm1(-R / published) / R, "--", color="tab:red",
                label=f"published R*_D = {published:.3g}")  # fmt: skip
        ax.set(xscale="log", xlabel="repetitions R_D = D/U - 1", ylabel="value of a repeated token (fresh = 1)",
               title="(b) what a repeated token is worth")  # fmt: skip
        ax.legend(fontsize="small")
        return save(fig, out_dir, NAME)


if __name__ == "__main__":
    sys.exit(run_script(make, __doc__))
