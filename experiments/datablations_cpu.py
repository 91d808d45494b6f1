"""The value of a repeated token against a fresh one, from the CPU sweep experiments/datablations_cpu.toml.

    uv run --frozen scaling sweep experiments/datablations_cpu.toml --out results/data_constrained/cpu
    uv run --frozen python experiments/datablations_cpu.py [--results results/data_constrained/cpu]

The Chinchilla part (E, A, B, alpha, beta) is the fit of the quickstart's 12 fresh-data runs
(same family, data and hyperparameters); with it held, R*_D of the data-constrained law is
fitted to the repeated runs (R*_N off: these models are far smaller than what their unique
data could feed). Per repeated run, the fresh tokens it was worth, D'_obs, solve
L(N, D'_obs) = observed loss; the value of one repeated token is (D'_obs - U) / (D - U),
against the law's R*_D·(1 - exp(-R_D/R*_D)) / R_D. Writes cpu/fit.json, which
paper_figures/fig14_data_constrained.py draws.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

QUICKSTART = Path("results/quickstart")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--results", default="results/data_constrained/cpu")
    args = ap.parse_args(argv)
    from scaling.analysis import fit_law, load_table
    from scaling.analysis.data_constrained import PUBLISHED_C4, effective_tokens, fit_data_constrained
    from scaling.atomic import write_text

    res = Path(args.results)
    runs = load_table(res)
    base_fit = fit_law(load_table(QUICKSTART), "chinchilla")
    base = {k: base_fit.params[k] for k in ("E", "A", "B", "alpha", "beta")}
    fixed = {**base, "RN_star": np.inf}
    fit = fit_data_constrained(runs, fixed=fixed, n_boot=200, seed=0)
    fit_e = fit_data_constrained(runs, fixed={k: v for k, v in fixed.items() if k != "E"})
    E, A, B, alpha, beta = (base[k] for k in ("E", "A", "B", "alpha", "beta"))
    rep = runs[runs["epochs"] > 1.0001].copy()
    # the fresh tokens each repeated run was worth under the (fresh-data) Chinchilla part
    resid = rep["loss"] - E - A / rep["params"] ** alpha
    rep["d_eff_obs"] = np.where(resid > 0, (B / resid.clip(lower=1e-12)) ** (1 / beta), np.inf)
    U, D = rep["unique_tokens"], rep["tokens"]
    rep["value_obs"] = (rep["d_eff_obs"] - U) / (D - U)
    rep["repetitions"] = D / U - 1
    rd = fit.params["RD_star"]
    rep["value_law"] = (effective_tokens(D, U, rd) - U) / (D - U)
    fresh = runs[runs["epochs"] <= 1.0001]
    gaps = []
    for _, r in rep.iterrows():
        twin = fresh[(fresh["params"] == r["params"]) & np.isclose(fresh["tokens"], r["tokens"])]
        if len(twin):
            gaps.append({"params": r["params"], "tokens": r["tokens"], "unique_tokens": r["unique_tokens"],
                         "epochs": r["epochs"], "loss": r["loss"], "fresh_loss": float(twin["loss"].iloc[0]),
                         "gap": float(r["loss"] - twin["loss"].iloc[0])})  # fmt: skip
    out = {
        "n_runs": int(len(runs)),
        "n_repeated": int(len(rep)),
        "chinchilla_part_from": str(QUICKSTART),
        "chinchilla_part": base,
        "RD_star": rd,
        "RD_star_interval95": list(fit.intervals["RD_star"]),
        "RD_star_with_E_free": fit_e.params["RD_star"],
        "E_free": fit_e.params["E"],
        "published_RD_star": PUBLISHED_C4["RD_star"],
        "warnings": list(fit.warnings),
        "repeated_vs_fresh": gaps,
        "value_of_a_repeated_token": rep[
            ["params", "tokens", "unique_tokens", "epochs", "value_obs", "value_law"]
        ].to_dict(orient="records"),
    }
    write_text(res / "fit.json", json.dumps(out, indent=2, default=float) + "\n")
    print(json.dumps({k: out[k] for k in ("RD_star", "RD_star_interval95", "RD_star_with_E_free", "n_repeated")}))
    for g in gaps:
        print(f"N={g['params']:.0f} D={g['tokens']:.3g} U={g['unique_tokens']:.0f} epochs={g['epochs']:.1f} "
              f"loss {g['loss']:.4f} vs fresh {g['fresh_loss']:.4f} (+{g['gap']:.4f})")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
