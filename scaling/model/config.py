"""The width x depth family rule: one frozen, validated `ModelConfig`.

Every shape follows from `width` and `depth` (plus the data's `vocab_size` and
`seq_len`): heads = width / head_dim, MLP hidden = 4 * width (GELU) or about
8/3 * width rounded up to a multiple of 64 (SwiGLU), so a sweep over (width, depth)
is a sweep over one family.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from scaling.core import config as cc

MLP_KINDS = ("gelu", "swiglu")
DTYPES = ("float32", "bfloat16")
PARAMETERIZATIONS = ("sp", "mup")
ATTENTION_IMPLS = ("blocked", "full", "xla")
REMAT_POLICIES = ("none", "full", "save_dots")


@dataclass(frozen=True)
class ModelConfig:
    """A decoder-only Transformer of the family.

    width, depth: model dimension and number of blocks (the family's two axes).
    vocab_size, seq_len: from the data (bytes + document separator = 257 by default).
    head_dim: per-head dimension; heads = width // head_dim.
    num_kv_heads: grouped-query attention (None: as many as query heads); must divide heads.
    mlp: "gelu" (hidden 4*width) or "swiglu" (hidden ~8/3*width, multiple of 64).
    tied_embeddings: readout shares the token-embedding matrix.
    compute_dtype: "float32" or "bfloat16" for matmuls; parameters stay `param_dtype`.
    parameterization: "sp" (standard) or "mup" (maximal update, relative to base_width).
    base_width: muP's reference width (muP equals SP there, up to the attention scale).
    init_std: std of embeddings (and of every weight under SP at any width; see
        `scaling.model.parameterization`).
    rope_theta: rotary base frequency.
    norm_eps: RMSNorm epsilon.
    scan_layers: stack blocks along a leading "layers" axis and run them with
        `jax.lax.scan` (faster compile at depth) instead of an unrolled loop (see PERF.md).
    attention: "blocked" (causal attention in query chunks of 64 that skip fully
        masked key blocks; fastest on CPU), "full" (the whole T×T matrix, masked), or
        "xla" (`jax.nn.dot_product_attention`, for accelerators' fused kernels).
    remat: activation rematerialization per block, trading FLOPs for memory on
        accelerators: "none"; "full" (keep only each block's input, recompute the rest
        in the backward pass: about a third more FLOPs); "save_dots" (keep matmul
        outputs, recompute the elementwise work). Gradients are unchanged; FLOP
        accounting and MFU count model FLOPs, not the recomputation. On CPU the memory
        saving shows only with scan_layers (XLA:CPU hoists an unrolled model's
        recomputation back into the forward pass; tests/model/test_remat.py).
    lowrank_ratio: 0 = dense; else every attention and MLP matrix W (a × b) is trained
        as U·V with U (a × r), V (r × b) and rank r = round(lowrank_ratio × width), a third
        knob beside width and depth (`scaling.model.lowrank`). In (0, 1]; SP only.
    """

    width: int
    depth: int
    vocab_size: int = 257
    seq_len: int = 256
    head_dim: int = 64
    num_kv_heads: int | None = None
    mlp: str = "gelu"
    tied_embeddings: bool = False
    compute_dtype: str = "float32"
    param_dtype: str = "float32"
    parameterization: str = "sp"
    base_width: int = 128
    init_std: float = 0.02
    rope_theta: float = 10_000.0
    norm_eps: float = 1e-6
    scan_layers: bool = False
    attention: str = "blocked"
    remat: str = "none"
    lowrank_ratio: float = 0.0

    def __post_init__(self) -> None:
        check = cc.Checks("model", self)
        check.integer("width", "depth", "vocab_size", "seq_len", "head_dim", "base_width", minimum=1)
        if self.width % self.head_dim:
            check.fail("width", f"must be a multiple of head_dim={self.head_dim}")
        if self.num_kv_heads is not None:
            check.integer("num_kv_heads", minimum=1)
            if self.heads % self.num_kv_heads:
                check.fail("num_kv_heads", f"must divide heads={self.heads} (width/head_dim)")
        check.choice("mlp", MLP_KINDS)
        check.choice("compute_dtype", DTYPES)
        check.choice("param_dtype", ("float32",))
        check.choice("parameterization", PARAMETERIZATIONS)
        check.choice("attention", ATTENTION_IMPLS)
        check.choice("remat", REMAT_POLICIES)
        check.boolean("tied_embeddings", "scan_layers")
        check.number("init_std", "rope_theta", "norm_eps", positive=True)
        ratio = self.lowrank_ratio
        check.number("lowrank_ratio", minimum=0, maximum=1)
        if ratio and round(ratio * self.width) < 1:
            check.fail("lowrank_ratio", f"gives rank round({ratio} * width={self.width}) = 0; the rank must be >= 1")
        if ratio and self.parameterization != "sp":
            check.fail(
                "lowrank_ratio",
                f"with parameterization={self.parameterization!r}: low-rank factors are defined under SP only",
            )

    # ---- derived shapes -------------------------------------------------------------
    @property
    def heads(self) -> int:
        return self.width // self.head_dim

    @property
    def kv_heads(self) -> int:
        return self.heads if self.num_kv_heads is None else self.num_kv_heads

    @property
    def mlp_hidden(self) -> int:
        if self.mlp == "gelu":
            return 4 * self.width
        return -(-(8 * self.width) // (3 * 64)) * 64  # ceil(8/3 * width) to a multiple of 64

    @property
    def rank(self) -> int | None:
        """The factors' rank round(lowrank_ratio × width), or None for a dense model."""
        return round(self.lowrank_ratio * self.width) if self.lowrank_ratio else None

    # ---- plain-data round trip ------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        """Build from a plain mapping (e.g. a TOML `[model]` table); unknown keys are errors."""
        return cc.build_section(cls, "model", data, required=("width", "depth"))

    def replace(self, **changes: Any) -> ModelConfig:
        return dataclasses.replace(self, **changes)
