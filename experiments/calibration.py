"""Calibration study: do the predictive intervals cover held-out larger runs at their level?

    uv run --frozen python experiments/calibration.py [--out results/calibration]
        [--reference-data ../shared/reference_data] [--n-boot 200] [--only porian,gadre] [--force]

Protocol (issue #11), on every family of ``../shared/reference_data`` with enough sizes
or budgets; a family whose files are absent is skipped with a message:

- IsoFLOP tables (Porian et al. 2024, 15 configs; Epoch's digitized Chinchilla points):
  fit the lowest ~2/3 of the budgets, predict every run of the top ~1/3;
- tables of sizes x token counts (Gadre et al. 2024 eval split ``openlm``, per training
  set; (Mis)Fitting final checkpoints, best LR per model and step budget; Step Law dense
  runs, best LR and batch per (N, D); Gemstones cooldown ends): fit N < 1e9, predict
  N >= 1e9.

Each split: ``fit_law(train, "chinchilla")``, ``bootstrap(n=--n-boot)``, the predictive
interval (``scaling.analysis.predictive.calibrate`` on the fit rows only) at 50/80/90/95%,
the law-only band at the same levels for comparison, and a plain scipy Huber grid fit
(L-BFGS-B from a 3^5 grid, the baseline of the point accuracy). Nothing is tuned per
family: every split runs the same code with the same settings.

Writes (small, committed): ``splits/FAMILY__SPLIT.csv`` (one row per held-out run and
level: observed, predicted, both intervals, distance, the calibration's numbers; what
``paper_figures/fig9_calibration.py`` draws), ``summary.csv`` / ``summary.md`` (per family and overall: coverage at each level, median
relative half-width of the 90% interval, mean ARE, baseline ARE, mean signed error) and
``manifest.json`` (commit, versions, data hashes, settings), and
``isoflop_minimum.csv`` (parabola vs akima IsoFLOP minima: the evidence for Approach
2's default). Splits already in ``splits/`` are not recomputed (``--force`` recomputes,
reusing the method-independent scipy baseline); a rerun resumes.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import time
from pathlib import Path

# scipy's L-BFGS-B calls BLAS on tiny vectors: threaded BLAS only spins (30x slower on a
# busy machine). Set before numpy loads its BLAS.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
LEVELS = (0.5, 0.8, 0.9, 0.95)
SIZE_CUT = 1e9


# ---------------------------------------------------------------------------------------
# Families: each loader yields (family, split, table, test mask) or raises FileNotFoundError


def _canon(N, D, L, **extra) -> pd.DataFrame:
    N, D = np.asarray(N, float), np.asarray(D, float)
    return pd.DataFrame(dict(params=N, tokens=D, flops=6 * N * D, loss=np.asarray(L, float), **extra))


def _top_budgets(flops) -> np.ndarray:
    """Test mask: the top ~1/3 of the distinct budgets (grouped in log space)."""
    from scaling.analysis.levels import group_log

    lab = group_log(flops, 0.1)
    nb = lab.max() + 1
    n_test = max(1, int(round(nb / 3)))
    return lab >= nb - n_test


def porian(root: Path):
    df = pd.read_csv(root / "porian2024_isoflop" / "porian_isoflop_points.csv")
    keys = ["dataset", "hparams", "warmup", "decay", "param_count", "loss_split"]
    for key, g in df.groupby(keys, sort=True):
        t = _canon(g["params"], g["tokens"], g["loss"])
        t["flops"] = g["flops"].to_numpy(float)
        t["budget"] = g["flops"].to_numpy(float)
        yield "porian", "/".join(key), t, _top_budgets(t["budget"].to_numpy())


def epoch(root: Path):
    raw = pd.read_csv(root / "epoch_chinchilla_fig4" / "svg_extracted_data.csv")
    raw = raw[raw["loss"] < np.sort(raw["loss"].to_numpy())[-5]]  # as Epoch: drop the 5 highest losses
    N, C = raw["Model Size"].to_numpy(float), raw["Training FLOP"].to_numpy(float)
    t = _canon(N, C / (6 * N), raw["loss"])
    t["flops"] = C
    # the digitized budgets jitter: name each by the nearest of Hoffmann's nominal budgets
    nominal = np.array([6e18, 1e19, 3e19, 6e19, 1e20, 3e20, 6e20, 1e21, 3e21])
    t["budget"] = nominal[np.argmin(np.abs(np.log(C)[:, None] - np.log(nominal)[None, :]), axis=1)]
    yield "epoch", "chinchilla_fig4", t, _top_budgets(t["budget"].to_numpy())


def gadre(root: Path):
    df = pd.read_csv(root / "gadre2024_overtrain" / "gadre2024_overtrain_final_losses_tidy.csv")
    df = df[df["eval_split"] == "openlm"]
    for ds, g in df.groupby("train_dataset", sort=True):
        t = _canon(g["params"], g["train_tokens"], g["eval_loss"])
        yield "gadre", ds, t, t["params"].to_numpy() >= SIZE_CUT


def misfitting(root: Path):
    df = pd.read_csv(root / "misfitting2025_li" / "scaling_results_last_ckpt_only.csv")
    df = df[df["portion_steps_elapsed"] >= 1.0]
    best = df.loc[df.groupby(["model", "total_steps"])["loss"].idxmin()]
    t = _canon(best["N"], best["D"], best["loss"])
    yield "misfitting", "final_best_lr", t, t["params"].to_numpy() >= SIZE_CUT


def steplaw(root: Path):
    df = pd.read_csv(root / "steplaw2025" / "dense_lr_bs_loss.csv")
    best = df.loc[df.groupby(["N", "D"])["smooth loss"].idxmin()]
    t = _canon(best["N"], best["D"], best["smooth loss"])
    yield "steplaw", "dense_best_lr_bs", t, t["params"].to_numpy() >= SIZE_CUT


def gemstones(root: Path):
    df = pd.read_json(root / "gemstones2025" / "wandb_dfs" / "wandb_df_for_fitting_cool_end.jsonl", lines=True)
    t = _canon(df["params_active_precise"], df["tokens"], df["final_loss"])
    yield "gemstones", "cooldown_end", t, t["params"].to_numpy() >= SIZE_CUT


FAMILIES = {
    "porian": porian,
    "epoch": epoch,
    "gadre": gadre,
    "misfitting": misfitting,
    "steplaw": steplaw,
    "gemstones": gemstones,
}
SOURCES = {
    "porian": "porian2024_isoflop/porian_isoflop_points.csv",
    "epoch": "epoch_chinchilla_fig4/svg_extracted_data.csv",
    "gadre": "gadre2024_overtrain/gadre2024_overtrain_final_losses_tidy.csv",
    "misfitting": "misfitting2025_li/scaling_results_last_ckpt_only.csv",
    "steplaw": "steplaw2025/dense_lr_bs_loss.csv",
    "gemstones": "gemstones2025/wandb_dfs/wandb_df_for_fitting_cool_end.jsonl",
}
NOT_SPLIT = {
    "hitchhiker2024_colpret_subset": "training curves of a few sizes each (no annealed final losses on a grid of "
    "sizes and budgets): no honest fit/holdout split for a law of final losses",
}


# ---------------------------------------------------------------------------------------
# The plain scipy baseline


def scipy_huber_fit(table: pd.DataFrame, delta: float = 1e-3) -> np.ndarray:
    """Chinchilla law by scipy L-BFGS-B on the summed Huber of log residuals from a 3^5
    grid of starts (the plain fit a user would write); natural (E, A, B, alpha, beta)."""
    import itertools

    from scipy.optimize import minimize
    from scipy.special import huber, logsumexp

    lN, lD = np.log(table["params"].to_numpy(float)), np.log(table["tokens"].to_numpy(float))
    ly = np.log(table["loss"].to_numpy(float))

    def f(t):
        e, a, b, al, be = t
        terms = np.stack([np.full_like(lN, e), a - al * lN, b - be * lD])
        pred = logsumexp(terms, axis=0)
        r = pred - ly
        s = np.exp(terms - pred)  # d pred / d (e, a, b)
        psi = np.clip(r, -delta, delta)
        grad = np.array([psi @ s[0], psi @ s[1], psi @ s[2], -psi @ (s[1] * lN), -psi @ (s[2] * lD)])
        return float(np.sum(huber(delta, r))), grad

    grid = itertools.product([-1, 0, 1], [0, 10, 20], [0, 10, 20], [0, 0.5, 1], [0, 0.5, 1])
    best = None
    for x0 in grid:
        r = minimize(f, np.array(x0, float), jac=True, method="L-BFGS-B")
        if best is None or r.fun < best.fun:
            best = r
    e, a, b, al, be = best.x
    return np.array([np.exp(e), np.exp(a), np.exp(b), al, be])


# ---------------------------------------------------------------------------------------
# One split


def run_split(table: pd.DataFrame, test: np.ndarray, *, n_boot: int, seed: int, baseline=None) -> pd.DataFrame:
    import warnings

    from scaling.analysis import bootstrap, fit_law, get_law
    from scaling.analysis.predictive import calibrate

    train, held = table[~test].reset_index(drop=True), table[test].reset_index(drop=True)
    t0 = time.process_time()
    fit = fit_law(train, "chinchilla")
    boot = bootstrap(train, fit=fit, n_boot=n_boot, seed=seed, calibrate=False)
    t1 = time.process_time()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cal = calibrate(train, fit)
    t2 = time.process_time()
    N, D = held["params"].to_numpy(float), held["tokens"].to_numpy(float)
    obs = held["loss"].to_numpy(float)
    pred = fit.predict(params=N, tokens=D)
    draws = np.log(boot.predict(params=N, tokens=D))
    ok = np.all(np.isfinite(draws), axis=1)
    dist = cal.distance(params=N, tokens=D)
    if baseline is None or len(baseline) != len(held):
        baseline = get_law("chinchilla").predict(scipy_huber_fit(train), params=N, tokens=D)
    base = np.asarray(baseline, dtype=float)
    rows = []
    for lv in LEVELS:
        qlo, qhi = np.percentile(draws[ok], [50 * (1 - lv), 50 * (1 + lv)], axis=0)
        plo, phi = np.log(pred) - qlo, qhi - np.log(pred)
        lo, hi = cal.bounds(np.log(pred), dist, lv, param_lo=plo, param_hi=phi)
        rows.append(
            pd.DataFrame(
                dict(
                    level=lv,
                    params=N,
                    tokens=D,
                    loss=obs,
                    pred=pred,
                    lo=lo,
                    hi=hi,
                    covered=(lo <= obs) & (obs <= hi),
                    law_lo=np.exp(qlo),
                    law_hi=np.exp(qhi),
                    law_covered=(np.exp(qlo) <= obs) & (obs <= np.exp(qhi)),
                    distance=dist,
                    baseline_pred=base,
                    sigma0=cal.sigma0,
                    kappa=cal.kappa,
                    n_origins=cal.n_origins,
                    calibrated=cal.calibrated,
                    n_fit=len(train),
                    fit_cpu_s=t1 - t0,
                    calibration_cpu_s=t2 - t1,
                    warnings=len(caught),
                )
            )
        )
    return pd.concat(rows, ignore_index=True)


# ---------------------------------------------------------------------------------------
# Approach 2: which IsoFLOP minimum, parabola or akima? (the evidence for the default)


def isoflop_minimum_study(root: Path, n_boot: int, seed: int) -> pd.DataFrame:
    """Per table and minimum method: the exponent a (N_opt ∝ C^a) with its interval, its
    distance to the published exponent (Porian's 15 configs, their ``basic`` fit), the
    percentile of the point estimate within its own bootstrap draws (50 = centred), and
    the bootstrap draws left out by the vertex rule."""
    import warnings

    from scaling.analysis.isoflop import isoflop_analysis

    rows = []
    tables = []
    src = root / "porian2024_isoflop" / "porian_isoflop_points.csv"
    if src.exists():
        pts = pd.read_csv(src)
        pub = pd.read_csv(root / "porian2024_isoflop" / "porian_published_fits.csv")
        pub = pub[pub["fit"] == "basic"]
        keys = ["dataset", "hparams", "warmup", "decay", "param_count", "loss_split"]
        for key, g in pts.groupby(keys, sort=True):
            ref = pub.merge(pd.DataFrame([dict(zip(keys, key))]), on=keys)["n_exponent"]
            tables.append(("porian/" + "/".join(key), g.rename(columns={"flops": "budget"}).assign(
                flops=g["flops"]), "budget", float(ref.iloc[0]) if len(ref) else np.nan))  # fmt: skip
    for family, split, t, _ in epoch(root) if (root / SOURCES["epoch"]).exists() else ():
        tables.append((f"{family}/{split}", t, "budget", np.nan))
    for name, t, budget, published in tables:
        for minimum in ("parabola", "akima"):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                r = isoflop_analysis(t, budget=budget, minimum=minimum, n_boot=n_boot, seed=seed)
            s = r.n_opt.draws[:, 0]
            s = s[np.isfinite(s)]
            rows.append(dict(table=name, minimum=minimum, a=r.a, a_lo=r.n_opt.exponent_interval[0],
                             a_hi=r.n_opt.exponent_interval[1], published_a=published,
                             abs_diff_published=abs(r.a - published),
                             point_percentile=float(100 * np.mean(s < r.a)) if len(s) else np.nan,
                             budgets_used=len(r.used),
                             draws_excluded=int(sum(p.n_excluded for p in r.profiles)),
                             draws_total=int(n_boot * len(r.profiles))))  # fmt: skip
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------------------
# Summaries


def summarize(points: pd.DataFrame) -> pd.DataFrame:
    """Per family and overall: coverage at each level, sharpness, accuracy."""

    def one(g: pd.DataFrame) -> dict:
        p90 = g[g["level"] == 0.9]
        rel_hw = (p90["hi"] - p90["lo"]) / (2 * p90["pred"])
        are = (p90["pred"] / p90["loss"] - 1).abs()
        row = {
            "splits": p90["split"].nunique(),
            "n_test": len(p90),
        }
        for lv in LEVELS:
            row[f"cover_{int(100 * lv)}"] = float(g[g["level"] == lv]["covered"].mean())
        for lv in (0.9, 0.95):
            row[f"law_cover_{int(100 * lv)}"] = float(g[g["level"] == lv]["law_covered"].mean())
        row["median_rel_halfwidth_90"] = float(rel_hw.median())
        row["mean_are"] = float(are.mean())
        row["baseline_mean_are"] = float((p90["baseline_pred"] / p90["loss"] - 1).abs().mean())
        row["mean_signed_error"] = float((p90["pred"] / p90["loss"] - 1).mean())
        row["sharpness_ratio"] = row["median_rel_halfwidth_90"] / max(row["mean_are"], 1e-12)
        return row

    rows = [{"family": fam, **one(g)} for fam, g in points.groupby("family", sort=True)]
    rows.append({"family": "all", **one(points)})
    return pd.DataFrame(rows)


def to_markdown(summary: pd.DataFrame) -> str:
    cols = ["family", "splits", "n_test", "cover_50", "cover_80", "cover_90", "cover_95", "law_cover_90",
            "median_rel_halfwidth_90", "mean_are", "baseline_mean_are", "mean_signed_error"]  # fmt: skip
    head = "| " + " | ".join(cols) + " |\n|" + "---|" * len(cols) + "\n"
    lines = []
    for _, r in summary.iterrows():
        cells = []
        for c in cols:
            v = r[c]
            if c.startswith(("cover", "law_cover")):
                cells.append(f"{100 * v:.0f}%")
            elif c in ("median_rel_halfwidth_90", "mean_are", "baseline_mean_are", "mean_signed_error"):
                cells.append(f"{100 * v:.2f}%")
            else:
                cells.append(str(v))
        lines.append("| " + " | ".join(cells) + " |")
    return head + "\n".join(lines) + "\n"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    p.add_argument("--out", default=str(REPO / "results" / "calibration"))
    p.add_argument("--reference-data", default=str(REPO.parent / "shared" / "reference_data"))
    p.add_argument("--n-boot", type=int, default=200)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--only", default=None, help="comma-separated families")
    p.add_argument("--force", action="store_true", help="recompute splits already written")
    p.add_argument("--skip-isoflop", action="store_true", help="skip the IsoFLOP minimum study")
    args = p.parse_args(argv)

    from scaling.atomic import write_json, write_text
    from scaling.runtime import enable_compilation_cache

    enable_compilation_cache()
    root, out = Path(args.reference_data), Path(args.out)
    (out / "splits").mkdir(parents=True, exist_ok=True)
    wanted = set(args.only.split(",")) if args.only else set(FAMILIES)
    unknown = wanted - set(FAMILIES)
    if unknown:
        raise SystemExit(f"unknown families {sorted(unknown)}; known: {sorted(FAMILIES)}")
    hashes, parts = {}, []
    for name, loader in FAMILIES.items():
        if name not in wanted:
            continue
        src = root / SOURCES[name]
        if not src.exists():
            print(f"skip {name}: {src} not found", flush=True)
            continue
        hashes[name] = _sha256(src)
        for family, split, table, test in loader(root):
            f = out / "splits" / f"{family}__{split.replace('/', '_')}.csv"
            baseline = None
            if f.exists():
                old = pd.read_csv(f)
                if not args.force:
                    parts.append(old)
                    continue
                # the scipy baseline does not depend on the method: reuse it
                baseline = old[old["level"] == LEVELS[0]]["baseline_pred"].to_numpy()
            t0 = time.perf_counter()
            res = run_split(table, np.asarray(test), n_boot=args.n_boot, seed=args.seed, baseline=baseline)
            res.insert(0, "split", split)
            res.insert(0, "family", family)
            write_text(f, res.to_csv(index=False, float_format="%.6g"))
            r90 = res[res["level"] == 0.9]
            print(
                f"{family}/{split}: {len(r90)} held out, 90% coverage {r90['covered'].mean():.2f} "
                f"(law-only {r90['law_covered'].mean():.2f}), ARE {(r90['pred'] / r90['loss'] - 1).abs().mean():.4f} "
                f"(scipy {(r90['baseline_pred'] / r90['loss'] - 1).abs().mean():.4f}), kappa {r90['kappa'].iloc[0]:.4f}, "
                f"origins {r90['n_origins'].iloc[0]} ({time.perf_counter() - t0:.1f} s)",
                flush=True,
            )
            parts.append(res)
    for name, why in NOT_SPLIT.items():
        if (root / name).exists():
            print(f"not split: {name}: {why}")
    if not parts:
        print("no reference data found: nothing to do")
        return 0
    points = pd.concat(parts, ignore_index=True)
    summary = summarize(points)
    write_text(out / "summary.csv", summary.to_csv(index=False, float_format="%.6g"))
    write_text(out / "summary.md", to_markdown(summary))
    if not args.skip_isoflop:
        iso = isoflop_minimum_study(root, n_boot=1000, seed=args.seed)
        if len(iso):
            write_text(out / "isoflop_minimum.csv", iso.to_csv(index=False, float_format="%.6g"))
            print(iso.groupby("minimum")[["abs_diff_published", "point_percentile"]].describe().T.to_string())
    write_json(out / "manifest.json", _manifest(args, hashes))
    print(to_markdown(summary))
    return 0


def _manifest(args, hashes) -> dict:
    import subprocess

    import jax
    import scipy

    import scaling

    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
        dirty = bool(subprocess.run(["git", "status", "--porcelain"], cwd=REPO, capture_output=True, text=True).stdout)
    except OSError:
        commit, dirty = "", True
    return {
        "script": "experiments/calibration.py",
        "commit": commit,
        "dirty": dirty,
        "versions": {
            "scaling": scaling.__version__,
            "jax": jax.__version__,
            "numpy": np.__version__,
            "scipy": scipy.__version__,
            "pandas": pd.__version__,
        },  # fmt: skip
        "data_sha256": hashes,
        "settings": {
            "n_boot": args.n_boot,
            "seed": args.seed,
            "levels": list(LEVELS),
            "law": "chinchilla",
            "size_cut": SIZE_CUT,
            "budget_rule": "top round(n_budgets/3) budgets held out",
        },  # fmt: skip
    }


if __name__ == "__main__":
    sys.exit(main())
