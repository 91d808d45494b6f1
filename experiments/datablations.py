"""R*_D of the data-constrained law (Muennighoff et al. 2023) refitted on the datablations subset.

    python experiments/datablations.py [--data ../shared/reference_data/hitchhiker2024_colpret_subset]
                                       [--out results/data_constrained]

The subset (ColPret's copy of datablations_losses.csv) holds 48 runs: 2.8B / 4.2B / 8.7B models
on C4 and OSCAR, each trained for its Chinchilla-optimal token count (55B / 84B / 178B) drawn
from 1 to 44 epochs of unique data. One point per run: its final checkpoint.

Muennighoff et al. fit the Chinchilla part (E, A, B, alpha, beta) on single-epoch IsoFLOP runs
and then R*_D, R*_N on repeated runs; the subset has no single-epoch IsoFLOP runs, so the
published Chinchilla part is held (A, B, alpha, beta) except E, which absorbs the offset between
their loss values and these (their README: "the actual loss value is unlikely to be useful").
Writes fits.json (variants, bootstrap interval, profile of the objective over R*_D),
points.csv and datablations.png.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd

N_BOOT = 200
SEED = 0
HELD = ("A", "B", "alpha", "beta")


def load(data_dir: Path) -> pd.DataFrame:
    df = pd.read_csv(data_dir / "datablations_losses.csv")
    last = df.loc[df.groupby(["data", "num_params", "epochs"])["token_num"].idxmax()]
    return pd.DataFrame(
        {
            "data": last["data"].to_numpy(),
            "params": last["num_params"].str.rstrip("B").astype(float).to_numpy() * 1e9,
            "tokens": last["token_num"].to_numpy(float),
            "unique_tokens": np.minimum(last["tokens_per_epoch"], last["token_num"]).to_numpy(float),
            "epochs": last["epochs"].to_numpy(float),
            "loss": last["loss"].to_numpy(float),
        }
    )


def variants():
    from scaling.analysis.data_constrained import PUBLISHED_C4 as P

    base = {k: P[k] for k in HELD}
    return {
        "E, R*_D free (R*_N = 5.31 held)": ({**base, "RN_star": P["RN_star"]}, None),
        "same, runs of <= 14 epochs": ({**base, "RN_star": P["RN_star"]}, 14),
        "E, R*_D, R*_N free": (base, None),
        "E, R*_D free, no excess-parameter term (R*_N = inf)": ({**base, "RN_star": np.inf}, None),
        "E, B, R*_D free (R*_N held)": ({k: P[k] for k in ("A", "alpha", "beta", "RN_star")}, None),
        "E, A, R*_D free (R*_N held)": ({k: P[k] for k in ("B", "alpha", "beta", "RN_star")}, None),
        "E, A, B, R*_D free (R*_N held)": ({k: P[k] for k in ("alpha", "beta", "RN_star")}, None),
    }


def profile(t: pd.DataFrame, grid) -> list[float]:
    """The objective with R*_D held at each value (E refitted, the rest published)."""
    from scaling.analysis.data_constrained import PUBLISHED_C4 as P
    from scaling.analysis.data_constrained import fit_data_constrained

    out = []
    for rd in grid:
        fixed = {**{k: P[k] for k in HELD}, "RN_star": P["RN_star"], "RD_star": float(rd)}
        out.append(float(fit_data_constrained(t, fixed=fixed).objective))
    return out


def plot(t, fits_by_data, path: Path, prof):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from scaling.analysis.data_constrained import PUBLISHED_C4 as P
    from scaling.analysis.laws import get_law
    from scaling.plotting.style import save

    law = get_law("data_constrained")
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.4), constrained_layout=True)
    colors = {2.8e9: "tab:blue", 4.2e9: "tab:orange", 8.7e9: "tab:green"}
    for ax, data in zip(axes[:2], ("c4", "oscar")):
        d = t[t["data"] == data]
        fit, pub = fits_by_data[data]
        for N, g in d.groupby("params"):
            g = g.sort_values("epochs")
            ax.scatter(g["epochs"], g["loss"], color=colors[N], label=f"{N / 1e9:.1f}B observed")
            D = g["tokens"].iloc[0]
            ep = np.geomspace(1, 44, 60)
            for p, ls, lab in ((fit, "-", f"fit R*_D={fit['RD_star']:.2g}"), (pub, "--", "R*_D=15.4 (E refit)")):
                q = {**P, **p}
                ax.plot(ep, law.predict(q, params=N, tokens=D, unique_tokens=D / ep), ls, color=colors[N],
                        label=lab if N == 2.8e9 else None)  # fmt: skip
        ax.set(xscale="log", xlabel="epochs over the unique data", ylabel="final validation loss",
               title=f"{data.upper()}: fixed compute per size, fewer unique tokens")  # fmt: skip
        ax.legend(fontsize=7)
    grid, c4, c4_14 = prof
    ax = axes[2]
    ax.plot(grid, np.array(c4) / min(c4), "o-", label="C4, all runs")
    ax.plot(grid, np.array(c4_14) / min(c4_14), "s-", label="C4, <= 14 epochs")
    ax.axvline(P["RD_star"], color="k", ls="--", label="published 15.4")
    ax.set(xscale="log", xlabel="R*_D held", ylabel="objective / its minimum",
           title="profile: how well the subset pins R*_D")  # fmt: skip
    ax.legend(fontsize=8)
    save(fig, path.parent, path.stem, formats=("png",))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="../shared/reference_data/hitchhiker2024_colpret_subset")
    ap.add_argument("--out", default="results/data_constrained")
    ap.add_argument("--n-boot", type=int, default=N_BOOT)
    args = ap.parse_args(argv)
    from scaling.analysis.data_constrained import PUBLISHED_C4 as P
    from scaling.analysis.data_constrained import fit_data_constrained
    from scaling.atomic import write_text

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t = load(Path(args.data))
    result = {"published": P, "n_runs": int(len(t)), "variants": {}, "seed": SEED, "n_boot": args.n_boot}
    fits_by_data = {}
    for data in ("c4", "oscar"):
        d = t[t["data"] == data].drop(columns="data")
        res = {}
        for name, (fixed, max_ep) in variants().items():
            sub = d if max_ep is None else d[d["epochs"] <= max_ep]
            f = fit_data_constrained(sub, fixed=fixed)
            res[name] = {"params": f.params, "objective": f.objective, "n_points": f.n_points,
                         "warnings": list(f.warnings)}  # fmt: skip
        main_fixed = variants()["E, R*_D free (R*_N = 5.31 held)"][0]
        boot = fit_data_constrained(d, fixed=main_fixed, n_boot=args.n_boot, seed=SEED)
        res["bootstrap_ci95"] = {k: list(v) for k, v in boot.intervals.items()}
        pub = fit_data_constrained(d, fixed={**main_fixed, "RD_star": P["RD_star"]})
        res["published_RD_star_E_refit"] = {"params": pub.params, "objective": pub.objective}
        fits_by_data[data] = (boot.params, {**pub.params, "RD_star": P["RD_star"]})
        result["variants"][data] = res
    grid = [1.0, 1.5, 2.0, 3.0, 4.5, 7.0, 10.0, 15.4, 25.0, 50.0, 100.0]
    c4 = t[t["data"] == "c4"].drop(columns="data")
    prof = (grid, profile(c4, grid), profile(c4[c4["epochs"] <= 14], grid))
    result["profile_c4"] = {"RD_star": grid, "objective_all": prof[1], "objective_le14": prof[2]}
    write_text(out / "fits.json", json.dumps(result, indent=2, default=float) + "\n")
    write_text(out / "points.csv", t.to_csv(index=False))
    plot(t, fits_by_data, out / "datablations.png", prof)
    for data, res in result["variants"].items():
        for name, r in res.items():
            if "params" in r:
                print(data, name, {k: round(v, 4) for k, v in r["params"].items()})
        print(data, "95% CI", res["bootstrap_ci95"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
