"""Compression of a trained checkpoint: SVD truncation and round-to-nearest weight quantization.

    from scaling.interpolate import compress
    res = compress("runs/tiny@1000", svd=[1.0, 0.5, 0.25], energy=[0.99], bits=[8, 4, 2])
    print(res.table()); res.rows        # loss, loss increase, retained parameters, bits/weight

Every variant is evaluated with the trainer's `Evaluator` (its compiled eval step, its
validation batches), so a variant's loss is directly comparable with the run's `eval_loss`.

Which matrices: every attention projection (q, k, v, o) and MLP matrix (up, gate, down) of
every block, and with `embeddings=True` the token embedding and the untied readout too.
Norm scales are never touched. Each weight is viewed as a matrix (fan-in × fan-out): q of
shape (width, heads, head_dim) as width × heads·head_dim, o as heads·head_dim × width; under
`scan_layers` the leading layers axis is a batch of matrices. A low-rank model's factors
(`scaling.model.lowrank`) quantize the same way; SVD truncation of them is refused (they are
already factorized).

SVD truncation. W = U·diag(s)·Vᵀ; its best rank-r approximation (Eckart–Young) keeps the r
largest singular values. r per matrix is either a fraction f of the matrix's full rank
min(a, b), r = max(1, round(f·min(a, b))), or, with an energy threshold e, the smallest r
with Σ_{i≤r} s_i² ≥ e·Σ s_i². A truncated matrix is stored as its factors U_r·diag(s_r)
(a × r) and V_rᵀ (r × b): it retains r·(a + b) parameters, which is what is counted (more
than a·b when r > a·b/(a + b): factorizing then costs parameters, and the ratio says so). At
r = min(a, b) the approximation is W itself, and W is used unchanged (a float32 SVD
reconstructs it only to ~1e-7), so full rank reproduces the checkpoint's loss exactly.

Quantization. Round-to-nearest, symmetric, per output channel: for each column j of the
fan-in × fan-out view, scale_j = max_i |W_ij| / q_max with q_max = 2^(bits−1) − 1, and
W'_ij = scale_j · clip(round(W_ij / scale_j), −q_max, q_max) (so 2 bits is the ternary
{−1, 0, 1}·scale). The weights are fake-quantized: stored back in float32 and evaluated as
is. bits_per_weight counts one float32 scale per output channel: bits + 32/fan_in. For the
token embedding (a lookup table, one row per token) the channel is the row. bits = 32 is
the float32 original, unchanged (the reference); other values must be 2-16.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from scaling.interpolate.checkpoints import Checkpoint, resolve

MIN_BITS, MAX_BITS, FLOAT_BITS = 2, 16, 32
BLOCK_MATRICES = ("q", "k", "v", "o", "up", "gate", "down")
EMBEDDING_MATRICES = ("embedding", "readout")
FAN_IN_DIMS = {"o": 2}  # o is (heads, head_dim, width); every other dense matrix has fan-in first


# ---- which parameters, viewed as which matrices ---------------------------------------------


def _leaf(name: str) -> str:
    return name.rsplit(".", 1)[-1]


def matrix_view(name: str, shape: tuple[int, ...], scan_layers: bool = False) -> tuple[int, int, int] | None:
    """(batch, fan_in, fan_out) of parameter `name` as a batch of matrices, or None when it is
    not a matrix that compression touches (norm scales). The batch is the layers axis under
    scan_layers (else 1)."""
    leaf = _leaf(name)
    lead = 1 if scan_layers and name.startswith("blocks.") else 0
    batch = shape[0] if lead else 1
    dims = shape[lead:]
    if leaf in BLOCK_MATRICES:
        k = FAN_IN_DIMS.get(leaf, 1)
    elif leaf.endswith("_u") and leaf[:-2] in BLOCK_MATRICES:
        k = len(dims) - 1  # U: (fan-in dims..., rank)
    elif leaf.endswith("_v") and leaf[:-2] in BLOCK_MATRICES:
        k = 1  # V: (rank, fan-out dims...)
    elif leaf in EMBEDDING_MATRICES and not lead:
        k = 1
    else:
        return None
    return batch, math.prod(dims[:k]), math.prod(dims[k:])


def _selected(shapes: dict, scan_layers: bool, embeddings: bool) -> dict[str, tuple[int, int, int]]:
    out = {}
    for name, shape in shapes.items():
        view = matrix_view(name, shape, scan_layers)
        if view is None or (_leaf(name) in EMBEDDING_MATRICES and not embeddings):
            continue
        out[name] = view
    return out


# ---- the transforms (numpy, host) --------------------------------------------------------------


def quantize(w: np.ndarray, bits: int, axis: int = -2) -> np.ndarray:
    """Round-to-nearest symmetric fake quantization of `w` with one scale per slice along
    `axis` reduced (default: per output channel of a (..., fan_in, fan_out) matrix)."""
    check_bits(bits)
    if bits == FLOAT_BITS:
        return w
    qmax = 2 ** (bits - 1) - 1
    w64 = np.asarray(w, np.float64)
    scale = np.max(np.abs(w64), axis=axis, keepdims=True) / qmax
    safe = np.where(scale > 0, scale, 1.0)
    return (np.clip(np.round(w64 / safe), -qmax, qmax) * scale).astype(w.dtype)


def energy_rank(s: np.ndarray, threshold: float) -> int:
    """Smallest r with Σ_{i≤r} s_i² ≥ threshold · Σ s_i² (s descending)."""
    e = np.cumsum(np.square(np.asarray(s, np.float64)))
    if e[-1] == 0:
        return 1
    return int(min(len(s), np.searchsorted(e / e[-1], threshold - 1e-12) + 1))


def truncate(w: np.ndarray, svd: tuple, rank: int) -> np.ndarray:
    """Best rank-`rank` approximation of the matrix w from its SVD (u, s, vt); w itself at full rank."""
    u, s, vt = svd
    if rank >= len(s):
        return w
    return ((u[:, :rank] * s[:rank]) @ vt[:rank]).astype(w.dtype)


# ---- input checks ---------------------------------------------------------------------------------


def check_bits(bits) -> int:
    if (
        isinstance(bits, bool)
        or not isinstance(bits, (int, np.integer))
        or not (MIN_BITS <= bits <= MAX_BITS or bits == FLOAT_BITS)
    ):
        raise ValueError(
            f"bits={bits!r}: must be an integer from {MIN_BITS} to {MAX_BITS} (or {FLOAT_BITS}: the float32 weights)"
        )
    return int(bits)


def parse_rank(spec) -> tuple[str, float]:
    """A rank spec: a fraction of full rank in (0, 1] (0.5), or "r16" (rank 16 for every
    matrix) -> ("fraction", 0.5) / ("rank", 16)."""
    if isinstance(spec, str) and spec[:1] in ("r", "R"):
        text = spec[1:]
        if not text.isdigit() or int(text) < 1:
            raise ValueError(f"rank {spec!r}: rN needs a whole rank N >= 1 (e.g. r16)")
        return "rank", int(text)
    try:
        f = float(spec)
    except (TypeError, ValueError):
        raise ValueError(
            f"rank {spec!r}: expected a fraction of full rank in (0, 1] (e.g. 0.5) or rN (e.g. r16)"
        ) from None
    if not math.isfinite(f) or not 0 < f <= 1:
        raise ValueError(
            f"rank {spec!r}: a fraction of full rank must be in (0, 1]"
            + (" (a rank above full rank)" if f > 1 else " (a rank <= 0)")
            + "; for an absolute rank write rN (e.g. r16)"
        )
    return "fraction", f


def check_energy(e) -> float:
    if isinstance(e, bool) or not isinstance(e, (int, float)) or not 0 < e <= 1:
        raise ValueError(f"energy threshold {e!r} must be in (0, 1] (the share of Σ s² kept)")
    return float(e)


def _ranks(kind: str, value: float, views: dict, svals: dict) -> dict[str, list[int]]:
    """Per matrix (and per layer under scan), the rank a spec gives; errors name the matrix."""
    out = {}
    for name, (batch, a, b) in views.items():
        full = min(a, b)
        if kind == "fraction":
            out[name] = [max(1, round(value * full))] * batch
        elif kind == "rank":
            if value > full:
                raise ValueError(
                    f"rank r{int(value)} is above the full rank {full} of {name} ({a} x {b}); "
                    "use a rank <= the smallest matrix's full rank, or a fraction"
                )
            out[name] = [int(value)] * batch
        else:
            out[name] = [energy_rank(s, value) for s in svals[name]]
    return out


# ---- the result -------------------------------------------------------------------------------------


def _finite(x):
    return x if isinstance(x, (int, float)) and math.isfinite(x) else None


@dataclass
class CompressResult:
    """One checkpoint's loss under every requested compression, with provenance."""

    checkpoint: Checkpoint
    loss: float  # the checkpoint itself, nats/token
    rows: list[dict]
    params_total: int
    params_nonembedding: int
    compressible: int  # parameters in the matrices that compression touches
    embeddings: bool
    eval_tokens: int
    mesh: dict
    model: dict
    provenance: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        rows = [{k: (_finite(v) if isinstance(v, float) else v) for k, v in r.items()} for r in self.rows]
        return {
            "checkpoint": {"spec": str(self.checkpoint), **self.checkpoint.to_dict()},
            "step": self.checkpoint.step,
            "loss": _finite(self.loss),
            "loss_units": "nats per token",
            "rows": rows,
            "params_total": self.params_total,
            "params_nonembedding": self.params_nonembedding,
            "compressible_params": self.compressible,
            "embeddings": self.embeddings,
            "eval_tokens": self.eval_tokens,
            "mesh": self.mesh,
            "model": self.model,
            **self.provenance,
        }

    def table(self) -> str:
        lines = [
            f"compression of {self.checkpoint}: loss {self.loss:.5f} nats/token on {self.eval_tokens} validation tokens",
            f"{self.compressible:,} of {self.params_total:,} parameters in the compressed matrices"
            + ("" if self.embeddings else " (embeddings untouched)"),
            f"{'method':>6} {'setting':>10} {'loss':>10} {'Δloss':>10} {'retained':>12} {'ratio':>7} {'bits/w':>7}",
        ]
        for r in self.rows:
            lines.append(
                f"{r['method']:>6} {r['setting']:>10} {r['loss']:10.5f} {r['loss_increase']:10.5f} "
                f"{r['retained_params']:12,} {r['compression_ratio']:7.3f} {r['bits_per_weight']:7.2f}"
            )
        return "\n".join(lines)


# ---- the entry point ------------------------------------------------------------------------------------


def compress(
    ckpt, *, svd=(), energy=(), bits=(), embeddings: bool = False, mesh=None, include_reference: bool = True
) -> CompressResult:
    """The held-out loss of checkpoint `ckpt` under SVD truncation and quantization.

    svd: rank specs (fractions of full rank in (0, 1], or "rN"); energy: thresholds in (0, 1];
    bits: 2-16 (32 = unquantized). Each spec is one variant; rows come back in the order
    reference (unless include_reference=False), svd, energy, bits. Every row has: method
    ("none", "svd", "energy", "quant"), setting, loss, loss_increase (vs the checkpoint),
    retained_params (all parameters after compression: factors r·(a + b) for truncated
    matrices), retained_compressible (the compressed matrices only), compression_ratio
    (compressible parameters / retained_compressible; for quantization 32 / bits_per_weight),
    bits_per_weight (of the compressed matrices, scales included), mean_rank_fraction.
    Errors (bad specs, missing checkpoint, a rank above a matrix's full rank) come before
    anything is evaluated.
    """
    from scaling.train import evaluator, load_params, param_shapes, run_config

    ranks = [parse_rank(s) for s in svd]
    energies = [check_energy(e) for e in energy]
    bit_list = [check_bits(b) for b in bits]
    ckpt = resolve(ckpt)
    cfg = run_config(ckpt.run_dir)
    model = cfg.model
    if (ranks or energies) and getattr(model, "lowrank_ratio", 0):
        raise ValueError(
            f"{ckpt}: model.lowrank_ratio={model.lowrank_ratio}: the model's matrices are already "
            "factorized; SVD truncation applies to dense models (quantization works on the factors)"
        )
    shapes = param_shapes(model)
    views = _selected(shapes, model.scan_layers, embeddings)
    if ranks and any(k == "rank" for k, _ in ranks):  # absolute ranks: check every matrix first
        for kind, value in ranks:
            _ranks(kind, value, views, {})
    ev = evaluator(cfg, cfg.mesh if mesh is None else mesh)
    host = {k: np.asarray(v) for k, v in load_params(ckpt.run_dir, ckpt.step, ev.mesh).items()}

    def mats(name):
        batch, a, b = views[name]
        return host[name].reshape(batch, a, b)

    factors = {}
    if ranks or energies:
        factors = {name: [np.linalg.svd(m, full_matrices=False) for m in mats(name)] for name in views}
    svals = {name: [f[1] for f in fs] for name, fs in factors.items()}
    total = sum(math.prod(s) for s in shapes.values())
    compressible = sum(bt * a * b for bt, a, b in views.values())

    variants = []  # (row, params)
    if include_reference:
        variants.append(({"method": "none", "setting": "-"}, host, compressible, 32.0, 1.0))
    for (kind, value), label in [(r, "svd") for r in ranks] + [(("energy", e), "energy") for e in energies]:
        rk = _ranks(kind, value, views, svals)
        params, kept, fracs = dict(host), 0, []
        for name, (_, a, b) in views.items():
            out = [truncate(m, f, r) for m, f, r in zip(mats(name), factors[name], rk[name])]
            params[name] = np.stack(out).reshape(host[name].shape)
            kept += sum(r * (a + b) for r in rk[name])
            fracs += [r / min(a, b) for r in rk[name]]
        setting = f"{value:g}" if kind == "fraction" else (f"r{int(value)}" if kind == "rank" else f"E{value:g}")
        variants.append(({"method": label, "setting": setting}, params, kept, 32.0, float(np.mean(fracs))))
    for nb in bit_list:
        params, bits_total = dict(host), 0.0
        for name, (batch, a, b) in views.items():
            embedding = _leaf(name) == "embedding"  # a lookup table: one scale per row (token)
            params[name] = quantize(mats(name), nb, axis=-1 if embedding else -2).reshape(host[name].shape)
            channels = a if embedding else b
            bits_total += batch * (nb * a * b + (FLOAT_BITS * channels if nb != FLOAT_BITS else 0))
        row = {"method": "quant", "setting": f"{nb}"}
        variants.append((row, params, compressible, bits_total / compressible, 1.0))

    sums = []
    for _, params, *_rest in variants:
        sums.append(ev.loss_sum(ev.place(params)))
        if len(sums) >= 2:
            sums[-2].block_until_ready()
    losses = ev.losses(sums)
    reference = losses[0] if include_reference else ev.loss(host)
    from scaling.model import params_nonembedding

    rows = []
    for (row, _, kept, bpw, frac), loss in zip(variants, losses):
        quant = row["method"] == "quant"
        rows.append(
            {
                **row,
                "loss": loss,
                "loss_increase": loss - reference,
                "retained_params": total - compressible + (compressible if quant else kept),
                "retained_compressible": compressible if quant else kept,
                "compression_ratio": (FLOAT_BITS / bpw) if quant else compressible / kept,
                "bits_per_weight": bpw,
                "mean_rank_fraction": frac,
            }
        )
    stored = _run_provenance(ckpt.run_dir)
    return CompressResult(
        checkpoint=ckpt,
        loss=reference,
        rows=rows,
        params_total=total,
        params_nonembedding=params_nonembedding(model),
        compressible=compressible,
        embeddings=embeddings,
        eval_tokens=ev.tokens,
        mesh=dict(ev.mesh.shape),
        model=model.to_dict(),
        provenance=stored,
    )


def _run_provenance(run_dir) -> dict:
    """Seed, data manifest hash and package versions of the run (from its config.json), and
    this process's package versions."""
    import json
    from pathlib import Path

    from scaling.runtime import package_versions

    try:
        stored = json.loads((Path(run_dir) / "config.json").read_text())
    except (OSError, ValueError):
        stored = {}
    return {
        "seed": stored.get("seed"),
        "data_manifest_hash": stored.get("data_manifest_hash"),
        "versions": package_versions(),
    }
