"""Compression curves along the family: SVD truncation and RTN quantization of each size.

    uv run --frozen python experiments/compression.py [--runs runs/along_curve] [--out results/compression]

Uses the pre-trained family of experiments/finetune.py (widths 16-48, depth 2, ~1M tokens
each; trained here if missing, the trainer skips finished runs) and, for every size's final
checkpoint, `scaling.interpolate.compress`:
- SVD truncation of every attention and MLP matrix to a fraction f of its full rank,
  f = 1, 0.75, 0.5, 0.375, 0.25, 0.125, and to energy thresholds 0.99, 0.95, 0.9;
- round-to-nearest symmetric per-output-channel quantization at 16, 8, 6, 5, 4, 3, 2 bits.
Embeddings are left alone (at these sizes they hold most parameters, and the question is
how the family's N compresses).

Then fits the loss increase δ (nats/token) against compression and N, in log space by
least squares over the points with δ > 1e-4 (smaller increases are evaluation noise):
- quantization: the post-training-quantization form of Kumar et al. (2024), "Scaling
  Laws for Precision", δ = C · N^(−γ_N) · exp(−P / γ_P) (their D^γ_D factor is a constant
  here: every size saw the same tokens), against the plain power law δ = C · N^(−γ_N) · P^(−b);
- SVD: δ = C · N^(−γ_N) · (1 − f)^b, against δ = C · N^(−γ_N) · f^(−b).
The form with the smaller residual is the one the figure draws; both are in fit.json.

Writes RESULTS/{curves.csv, fit.json, compress_w<W>.json}; drawn by
paper_figures/fig10_compression.py. A few CPU-minutes once the family is trained.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from finetune import PRETRAIN_STEPS, REPO, ensure_pretrained  # noqa: E402

FRACTIONS = ("1", "0.75", "0.5", "0.375", "0.25", "0.125")
ENERGIES = (0.99, 0.95, 0.9)
BITS = (16, 8, 6, 5, 4, 3, 2)
MIN_DELTA = 1e-4
COLUMNS = (
    "width",
    "params_nonembedding",
    "method",
    "setting",
    "loss",
    "loss_increase",
    "compression_ratio",
    "bits_per_weight",
    "retained_compressible",
    "mean_rank_fraction",
)


def lstsq_fit(y: np.ndarray, columns: dict[str, np.ndarray]) -> dict:
    """log δ = c + Σ coef·column, least squares; coefficients, residual RMS (log δ), R²."""
    names = list(columns)
    x = np.column_stack([np.ones_like(y)] + [columns[n] for n in names])
    coef, *_ = np.linalg.lstsq(x, y, rcond=None)
    resid = y - x @ coef
    ss = float(np.sum((y - y.mean()) ** 2))
    return {
        "intercept": float(coef[0]),
        **{n: float(c) for n, c in zip(names, coef[1:])},
        "rms_log_residual": float(np.sqrt(np.mean(resid**2))),
        "r2": 1 - float(np.sum(resid**2)) / ss if ss else None,
        "points": int(len(y)),
    }


def fit_laws(rows: list[dict]) -> dict:
    q = [r for r in rows if r["method"] == "quant" and r["loss_increase"] > MIN_DELTA]
    s = [r for r in rows if r["method"] == "svd" and r["loss_increase"] > MIN_DELTA]
    out = {"min_delta": MIN_DELTA, "loss_units": "nats per token"}
    if len(q) >= 4:
        y = np.log([r["loss_increase"] for r in q])
        log_n = np.log([r["params_nonembedding"] for r in q])
        p = np.array([float(r["setting"]) for r in q])
        kumar = lstsq_fit(y, {"log_N": log_n, "P": p})
        kumar.update(form="delta = C * N^(-gamma_N) * exp(-P / gamma_P)", C=float(np.exp(kumar["intercept"])),
                     gamma_N=-kumar["log_N"], gamma_P=-1 / kumar["P"] if kumar["P"] else None)  # fmt: skip
        power = lstsq_fit(y, {"log_N": log_n, "log_P": np.log(p)})
        power.update(form="delta = C * N^(-gamma_N) * P^(-b)", C=float(np.exp(power["intercept"])),
                     gamma_N=-power["log_N"], b=-power["log_P"])  # fmt: skip
        best = "kumar" if kumar["rms_log_residual"] <= power["rms_log_residual"] else "power"
        out["quant"] = {"kumar": kumar, "power": power, "chosen": best}
    if len(s) >= 4:
        y = np.log([r["loss_increase"] for r in s])
        log_n = np.log([r["params_nonembedding"] for r in s])
        f = np.array([float(r["setting"]) for r in s])
        gap = lstsq_fit(y, {"log_N": log_n, "log_1mf": np.log(1 - f)})
        gap.update(form="delta = C * N^(-gamma_N) * (1 - f)^b", C=float(np.exp(gap["intercept"])),
                   gamma_N=-gap["log_N"], b=gap["log_1mf"])  # fmt: skip
        inv = lstsq_fit(y, {"log_N": log_n, "log_f": np.log(f)})
        inv.update(form="delta = C * N^(-gamma_N) * f^(-b)", C=float(np.exp(inv["intercept"])),
                   gamma_N=-inv["log_N"], b=-inv["log_f"])  # fmt: skip
        best = "one_minus_f" if gap["rms_log_residual"] <= inv["rms_log_residual"] else "inverse_f"
        out["svd"] = {"one_minus_f": gap, "inverse_f": inv, "chosen": best}
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", default=str(REPO / "runs" / "along_curve"), help="where the family trains")
    p.add_argument("--out", default=str(REPO / "results" / "compression"), help="results directory")
    args = p.parse_args(argv)
    from scaling.atomic import write_json, write_text
    from scaling.interpolate import compress
    from scaling.runtime import enable_compilation_cache

    enable_compilation_cache()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for w, d in ensure_pretrained(Path(args.runs)).items():
        res = compress(f"{d}@{PRETRAIN_STEPS}", svd=FRACTIONS, energy=ENERGIES, bits=BITS)
        print(res.table(), flush=True)
        record = res.to_dict()
        record["checkpoint"] = {"spec": f"{d.name}@{PRETRAIN_STEPS}", "step": PRETRAIN_STEPS}
        write_json(out / f"compress_w{w}.json", record)
        for r in res.rows:
            rows.append({"width": w, "params_nonembedding": res.params_nonembedding, **r})
    lines = [",".join(COLUMNS)]
    for r in rows:
        lines.append(",".join(f"{r[c]:.6g}" if isinstance(r[c], float) else str(r[c]) for c in COLUMNS))
    write_text(out / "curves.csv", "\n".join(lines) + "\n")
    fit = fit_laws(rows)
    write_json(out / "fit.json", fit)
    print(json.dumps(fit, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
