"""Fitting speed: our batched JAX fitter against a plain scipy L-BFGS-B baseline.

    uv run --frozen python benchmarks/fit_speed.py [--quick] [--out benchmarks/results]

On Epoch AI's digitized Chinchilla data (../shared/reference_data/epoch_chinchilla_fig4,
240 points after dropping the 5 highest losses, D = C/(6N)):

1. Grid fit, Hoffmann's 4,500 starts: ours (default successive-halving pruning, and
   every start converged) vs scipy L-BFGS-B with exact numpy gradients and tight
   tolerances (ftol 1e-15, gtol 1e-10) on every 20th start, scaled by 20.
   (scipy runs with one BLAS thread; see the note at the imports.)
2. Bootstrap of 4,000 resamples started from the optimum: ours (one batched call) vs
   scipy's per-resample loop on the first 200 resamples, scaled by 20; the per-resample
   optima are compared on those 200.
3. Full-grid bootstrap of 1,000 resamples (every resample searches all 4,500 starts with
   pruning); a few resamples are also run with every start converged (no pruning) to
   check that pruning found the same optimum.

Times are after compilation (a warm-up call of the same shapes first). Both wall and
process CPU time are recorded, with the load average, because the machine is shared.
Writes fit_speed.json and fit_speed.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

# One BLAS thread: scipy's L-BFGS-B calls BLAS on 5-vectors, and OpenBLAS's second thread
# only spins (measured here: 84 ms of process CPU per start with two threads, 14.5 ms with
# one). Set before numpy loads; JAX does not use OpenBLAS.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "reference_data" / "epoch_chinchilla_fig4" / "svg_extracted_data.csv"
DELTA = 1e-3


def load_epoch() -> pd.DataFrame:
    if not DATA.exists():
        sys.exit(f"reference data not found at {DATA} (it lives in ../shared beside the checkout)")
    raw = pd.read_csv(DATA)
    keep = raw["loss"] < np.sort(raw["loss"].to_numpy())[-5]  # drop the 5 highest losses, as Epoch did
    raw = raw[keep]
    N, C = raw["Model Size"].to_numpy(float), raw["Training FLOP"].to_numpy(float)
    return pd.DataFrame(dict(params=N, tokens=C / (6 * N), flops=C, loss=raw["loss"].to_numpy(float)))


class Timer:
    def __enter__(self):
        self.w0, self.c0 = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        self.wall = time.perf_counter() - self.w0
        self.cpu = time.process_time() - self.c0


def best_of(fn, reps: int):
    """Run fn reps times; return (result, min wall, min cpu)."""
    walls, cpus, out = [], [], None
    for _ in range(reps):
        with Timer() as t:
            out = fn()
        walls.append(t.wall)
        cpus.append(t.cpu)
    return out, min(walls), min(cpus)


# ---- scipy baseline: the same objective in numpy, exact gradient ----------------------


def np_objective(theta, lnN, lnD, lnL, w):
    """Summed Huber of log residuals and its gradient; theta = (log E, log A, log B, alpha, beta)."""
    e, a, b, al, be = theta
    t1 = a - al * lnN
    t2 = b - be * lnD
    m = np.maximum(np.maximum(t1, t2), e)
    x1, x2, x3 = np.exp(t1 - m), np.exp(t2 - m), np.exp(e - m)
    s = x1 + x2 + x3
    r = m + np.log(s) - lnL
    ar = np.abs(r)
    h = np.where(ar <= DELTA, 0.5 * r * r, DELTA * (ar - 0.5 * DELTA))
    psi = np.clip(r, -DELTA, DELTA) * w / s
    g = np.array(
        [(psi * x3).sum(), (psi * x1).sum(), (psi * x2).sum(), -(psi * x1 * lnN).sum(), -(psi * x2 * lnD).sum()]
    )
    return float(h @ w), g


def scipy_fit(theta0, arrays, w):
    from scipy.optimize import minimize

    r = minimize(
        np_objective,
        theta0,
        args=(*arrays, w),
        jac=True,
        method="L-BFGS-B",
        options=dict(ftol=1e-15, gtol=1e-10, maxiter=10_000, maxfun=20_000),
    )
    return r.x, r.fun


def machine() -> dict:
    import jax
    import scipy

    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "jax": jax.__version__,
        "jax_backend": jax.default_backend(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "pandas": pd.__version__,
        "blas_threads": os.environ.get("OPENBLAS_NUM_THREADS"),
    }


def load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results"))
    ap.add_argument("--quick", action="store_true", help="smaller bootstrap sizes (a smoke run)")
    ap.add_argument("--skip-grid-bootstrap", action="store_true")
    args = ap.parse_args(argv)

    from scaling.runtime import enable_compilation_cache

    enable_compilation_cache()
    import jax

    from scaling.analysis.engine import as_points, lane_weights, minimize, objective, shared_arrays, value_and_grad
    from scaling.analysis.fit import fit_law
    from scaling.analysis.laws import get_law
    from scaling.analysis.uncertainty import bootstrap, resample_weights

    df = load_epoch()
    law = get_law("chinchilla")
    pts = as_points(df, law)
    lnN, lnD = pts.logx[:, 0], pts.logx[:, 1]
    arrays = (lnN, lnD, pts.logy)
    starts = law.start_grid()
    n_boot = 400 if args.quick else 4000
    n_grid_boot = 16 if args.quick else 1000
    report = {
        "command": " ".join([sys.executable.split("/")[-1]] + sys.argv),
        "machine": machine(),
        "load_average_start": load(),
        "data": {"points": pts.n, "source": str(DATA.relative_to(REPO.parent))},
    }
    print(json.dumps(report["machine"]), flush=True)

    # 1. grid fit ---------------------------------------------------------------------
    fit_law(df)  # compile
    fit, wall, cpu = best_of(lambda: fit_law(df), 5)
    print(f"grid fit (pruned): wall {wall:.3f} s, cpu {cpu:.3f} s, objective {fit.objective:.7e}", flush=True)
    fit_law(df, prune=None)
    fit_all, wall_all, cpu_all = best_of(lambda: fit_law(df, prune=None), 2)
    print(
        f"grid fit (every start converged): wall {wall_all:.3f} s, cpu {cpu_all:.3f} s, "
        f"{fit_all.n_at_best}/{fit_all.n_starts} starts at the best",
        flush=True,
    )
    sub = starts[::20]
    w1 = np.ones(pts.n)
    with Timer() as t:
        sp = [scipy_fit(s, arrays, w1) for s in sub]
    sp_f = np.array([f for _, f in sp])
    sp_best = sp[int(np.argmin(sp_f))][0]
    scale = len(starts) / len(sub)
    ours = fit.theta
    report["grid_fit"] = {
        "starts": len(starts),
        "ours_pruned": {
            "wall_s": wall,
            "cpu_s": cpu,
            "objective": fit.objective,
            "n_kept": fit.n_kept,
            "n_at_best": fit.n_at_best,
            "converged": fit.converged,
            "params": fit.params,
        },
        "ours_all_starts": {
            "wall_s": wall_all,
            "cpu_s": cpu_all,
            "objective": fit_all.objective,
            "n_at_best": fit_all.n_at_best,
            "params": fit_all.params,
        },
        "scipy": {
            "starts_timed": len(sub),
            "wall_s_timed": t.wall,
            "cpu_s_timed": t.cpu,
            "wall_s_scaled": t.wall * scale,
            "cpu_s_scaled": t.cpu * scale,
            "objective": float(sp_f.min()),
            "params": dict(zip(law.params, law.to_natural(sp_best).tolist())),
            "n_at_best": int(np.sum(sp_f <= sp_f.min() * (1 + 1e-6))),
        },
        "speedup_wall": t.wall * scale / wall,
        "speedup_cpu": t.cpu * scale / cpu,
        "optimum_agrees": bool(
            abs(fit.objective - sp_f.min()) <= 1e-6 * sp_f.min() and np.max(np.abs(ours[3:] - sp_best[3:])) < 1e-4
        ),
        "max_abs_diff_exponents": float(np.max(np.abs(ours[3:] - sp_best[3:]))),
        "objective_rel_diff": float(abs(fit.objective - sp_f.min()) / sp_f.min()),
    }
    print(
        f"scipy: {t.wall:.2f} s wall for {len(sub)} starts -> {t.wall * scale:.1f} s for {len(starts)}; "
        f"objective {sp_f.min():.7e}",
        flush=True,
    )

    # 2. bootstrap from the optimum ---------------------------------------------------
    bootstrap(df, fit=fit, n_boot=n_boot, seed=0)  # compile
    boot, bwall, bcpu = best_of(lambda: bootstrap(df, fit=fit, n_boot=n_boot, seed=0), 3)
    W = resample_weights(pts.n, n_boot, seed=0)
    n_sp = min(200, n_boot)
    with Timer() as t:
        sp_b = np.array([scipy_fit(fit.theta, arrays, W[i])[0] for i in range(n_sp)])
    scale_b = n_boot / n_sp
    ours_b = law.to_fit(boot.draws[:n_sp])
    diff = np.abs(ours_b[:, 3:] - sp_b[:, 3:])
    # where the two differ, whose optimum is lower? (the valley is flat; a looser stop lands higher)
    f_ours = np.array([objective(law, ours_b[i], pts, weights=W[i])[0] for i in range(n_sp)])
    f_sp = np.array([np_objective(sp_b[i], *arrays, W[i])[0] for i in range(n_sp)])
    se = boot.se()
    report["bootstrap_from_optimum"] = {
        "resamples": n_boot,
        "ours": {
            "wall_s": bwall,
            "cpu_s": bcpu,
            "converged_fraction": float(boot.converged.mean()),
            "se": se,
            "ci95": boot.intervals(),
        },
        "scipy": {
            "resamples_timed": n_sp,
            "wall_s_timed": t.wall,
            "cpu_s_timed": t.cpu,
            "wall_s_scaled": t.wall * scale_b,
            "cpu_s_scaled": t.cpu * scale_b,
        },
        "speedup_wall": t.wall * scale_b / bwall,
        "speedup_cpu": t.cpu * scale_b / bcpu,
        "epoch_se": {"alpha": 0.0154, "beta": 0.0206, "E": 0.0257},
        "max_abs_diff_exponents_vs_scipy": float(diff.max()),
        "ours_objective_lower_or_equal": int(np.sum(f_ours <= f_sp * (1 + 1e-12))),
        "max_relative_objective_excess_scipy": float(np.max((f_sp - f_ours) / f_ours)),
        "max_relative_objective_excess_ours": float(np.max((f_ours - f_sp) / f_sp)),
        "optima_agree": bool(diff.max() < 1e-3),
    }
    print(
        f"bootstrap {n_boot}: ours wall {bwall:.2f} s cpu {bcpu:.2f} s; scipy {t.wall:.2f} s for {n_sp} -> "
        f"{t.wall * scale_b:.1f} s; SE alpha {se['alpha']:.4f} beta {se['beta']:.4f} E {se['E']:.4f}; "
        f"max |diff| vs scipy {diff.max():.2e}",
        flush=True,
    )

    # 3. full-grid bootstrap ------------------------------------------------------------
    if not args.skip_grid_bootstrap:
        bootstrap(df, fit=fit, n_boot=8, seed=1, start="grid")  # compile (one chunk of resamples)
        report["load_average_before_grid_bootstrap"] = load()
        with Timer() as t:
            gb = bootstrap(df, fit=fit, n_boot=n_grid_boot, seed=1, start="grid")
        # the same resamples from the optimum, and a few with every start converged
        ob = bootstrap(df, fit=fit, n_boot=n_grid_boot, seed=1)
        better = ob.objectives - gb.objectives  # > 0: the grid found a lower optimum
        n_check = 3 if args.quick else 10
        Wg = resample_weights(pts.n, n_grid_boot, seed=1)
        vg = value_and_grad(law, DELTA)
        checks = []
        with Timer() as tc:
            for i in range(n_check):
                with jax.enable_x64(True):
                    r = minimize(
                        vg,
                        starts,
                        {"w": lane_weights(pts, Wg[i], len(starts))},
                        shared_arrays(pts),
                        gtol=fit.gtol,
                        max_iter=2000,
                    )
                checks.append(
                    {
                        "resample": i,
                        "all_starts_objective": float(np.min(r.f)),
                        "pruned_objective": float(gb.objectives[i]),
                        "agree": bool(gb.objectives[i] <= np.min(r.f) * (1 + 1e-9)),
                    }
                )
        report["full_grid_bootstrap"] = {
            "resamples": n_grid_boot,
            "starts_per_resample": len(starts),
            "prune": "successive halving per resample: 4,500 starts -> best 512 after 3 objective evaluations "
            "-> best 64 after 10 -> best 16 after 24 -> converged to gtol",
            "wall_s": t.wall,
            "cpu_s": t.cpu,
            "converged_fraction": float(gb.converged.mean()),
            "se": gb.se(),
            "ci95": gb.intervals(),
            "vs_from_optimum": {
                "resamples_where_grid_found_lower_objective": int(np.sum(better > 1e-9 * ob.objectives)),
                "max_relative_objective_gain": float(np.max(better / ob.objectives)),
                "se_from_optimum": ob.se(),
            },
            "pruning_check": {
                "resamples": n_check,
                "wall_s": tc.wall,
                "results": checks,
                "all_agree": all(c["agree"] for c in checks),
            },
            "scipy_estimate_cpu_hours": report["grid_fit"]["scipy"]["cpu_s_scaled"] * n_grid_boot / 3600,
        }
        print(
            f"full-grid bootstrap {n_grid_boot}: wall {t.wall:.1f} s cpu {t.cpu:.1f} s; pruning check "
            f"{[c['agree'] for c in checks]}",
            flush=True,
        )
    report["load_average_end"] = load()

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    suffix = "_quick" if args.quick else ""
    (out / f"fit_speed{suffix}.json").write_text(json.dumps(report, indent=2, default=float) + "\n")
    (out / f"fit_speed{suffix}.md").write_text(markdown(report))
    print(f"wrote {out / f'fit_speed{suffix}.json'} and .md")
    return 0


def markdown(r: dict) -> str:
    g, b = r["grid_fit"], r["bootstrap_from_optimum"]
    m = r["machine"]
    lines = [
        "# Fit speed: batched JAX L-BFGS vs scipy L-BFGS-B (Epoch AI's Chinchilla data, 240 points)",
        "",
        f"Command: `{r['command']}`  ",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['platform']}; JAX {m['jax']} ({m['jax_backend']}), "
        f"numpy {m['numpy']}, scipy {m['scipy']}.  ",
        f"Load average (1, 5, 15 min) at start {r['load_average_start']}, end {r['load_average_end']}: "
        "the machine was shared, so CPU (process) time is the steadier number.",
        "",
        "| task | ours wall | ours CPU | scipy wall | scipy CPU | speedup (wall / CPU) | same optimum |",
        "|---|---|---|---|---|---|---|",
        f"| grid fit, 4,500 starts (pruned) | {g['ours_pruned']['wall_s']:.3f} s | {g['ours_pruned']['cpu_s']:.3f} s "
        f"| {g['scipy']['wall_s_scaled']:.1f} s* | {g['scipy']['cpu_s_scaled']:.1f} s* "
        f"| {g['speedup_wall']:.0f}x / {g['speedup_cpu']:.0f}x | {g['optimum_agrees']} |",
        f"| grid fit, every start converged | {g['ours_all_starts']['wall_s']:.3f} s | "
        f"{g['ours_all_starts']['cpu_s']:.3f} s | | | | objective {g['ours_all_starts']['objective']:.7e} |",
        f"| bootstrap, {b['resamples']:,} resamples from the optimum | {b['ours']['wall_s']:.2f} s | "
        f"{b['ours']['cpu_s']:.2f} s | {b['scipy']['wall_s_scaled']:.1f} s** | {b['scipy']['cpu_s_scaled']:.1f} s** "
        f"| {b['speedup_wall']:.0f}x / {b['speedup_cpu']:.0f}x | {b['optima_agree']} |",
    ]
    fg = r.get("full_grid_bootstrap")
    if fg:
        lines.append(
            f"| full-grid bootstrap, {fg['resamples']:,} resamples x 4,500 starts | {fg['wall_s']:.0f} s | "
            f"{fg['cpu_s']:.0f} s | ~{fg['scipy_estimate_cpu_hours']:.0f} CPU-hours (estimate) | | | "
            f"pruning check {fg['pruning_check']['all_agree']} |"
        )
    lines += [
        "",
        f"\\* scipy timed on {g['scipy']['starts_timed']} starts (every 20th) and scaled. "
        f"\\*\\* scipy timed on {b['scipy']['resamples_timed']} resamples and scaled; "
        "both with exact numpy gradients, ftol 1e-15, gtol 1e-10.",
        "",
        f"Grid optimum: objective {g['ours_pruned']['objective']:.7e} (scipy {g['scipy']['objective']:.7e}, "
        f"relative difference {g['objective_rel_diff']:.1e}); E {g['ours_pruned']['params']['E']:.4f}, "
        f"alpha {g['ours_pruned']['params']['alpha']:.5f}, beta {g['ours_pruned']['params']['beta']:.5f}.",
        "",
        f"Bootstrap standard errors (ours): alpha {b['ours']['se']['alpha']:.4f}, beta {b['ours']['se']['beta']:.4f}, "
        f"E {b['ours']['se']['E']:.4f} (Epoch: 0.0154, 0.0206, 0.0257); all refits converged: "
        f"{b['ours']['converged_fraction'] == 1.0}; largest exponent difference from scipy's refits of the same "
        f"resamples {b['max_abs_diff_exponents_vs_scipy']:.1e}; our objective is lower or equal on "
        f"{b['ours_objective_lower_or_equal']} of {b['scipy']['resamples_timed']} (scipy's excess up to "
        f"{b['max_relative_objective_excess_scipy']:.1e} relative, ours up to {b['max_relative_objective_excess_ours']:.1e}): "
        "where they differ, scipy stopped early in the flat valley.",
    ]
    if fg:
        v = fg["vs_from_optimum"]
        lines += [
            "",
            f"Full-grid bootstrap: {fg['prune']}. Pruning check: {fg['pruning_check']['resamples']} resamples rerun "
            f"with every start converged gave the same optimum: {fg['pruning_check']['all_agree']}. "
            f"Resamples where the grid found a lower objective than the refit from the full-data optimum: "
            f"{v['resamples_where_grid_found_lower_objective']} of {fg['resamples']} (largest relative gain "
            f"{v['max_relative_objective_gain']:.1e}). SE alpha {fg['se']['alpha']:.4f}, beta {fg['se']['beta']:.4f}, "
            f"E {fg['se']['E']:.4f}.",
        ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
