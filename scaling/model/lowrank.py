"""The low-rank family: every attention and MLP matrix trained as a product of two factors.

A dense weight W (a × b) becomes U (a × r) · V (r × b) with r = `cfg.rank` =
round(lowrank_ratio × width), the same r for every matrix of the model: a third knob
beside width and depth. Each projection x·W is computed as (x·U)·V, two matmuls costing
2·r·(a + b) FLOPs per token instead of 2·a·b (`scaling.model.accounting` counts exactly
this), and the factors hold r·(a + b) parameters.

Initialisation keeps the product's output variance equal to the dense model's: U has std
1/√a (so x·U has the scale of x) and V has std init_std·√(a/r), giving Var((x·U)·V) =
a·init_std²·Var(x), the dense value. Only SP is defined (ModelConfig rejects muP).

Sharding: U is (embed or mlp or heads·head_dim, "rank") and V ("rank", out axes); "rank"
is replicated by default (r is small), so the factors shard like the dense matrix they
replace along their outer dimension (`scaling.sharding.DEFAULT_RULES`).

Parameter names: `attn.{q,k,v,o}_u`, `attn.{q,k,v,o}_v`, `mlp.{up,gate,down}_u`,
`mlp.{up,gate,down}_v`.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from flax import nnx

from scaling.model import parameterization as pz
from scaling.model.config import ModelConfig
from scaling.model.layers import MLP, Attention, Block, param
from scaling.sharding import constrain


def factor_stds(cfg: ModelConfig, fan_in: int) -> tuple[float, float]:
    """(std of U, std of V) for a factorized matrix of fan-in `fan_in` (see the module doc)."""
    return 1.0 / math.sqrt(fan_in), pz.init_std(cfg, "hidden") * math.sqrt(fan_in / cfg.rank)


def _factors(rngs: nnx.Rngs, cfg: ModelConfig, in_shape, in_axes, out_shape, out_axes):
    """(U, V) for a matrix from in_shape (flattened: its fan-in) to out_shape."""
    fan_in = math.prod(in_shape)
    su, sv = factor_stds(cfg, fan_in)
    u = param(rngs, (*in_shape, cfg.rank), (*in_axes, "rank"), su)
    v = param(rngs, (cfg.rank, *out_shape), ("rank", *out_axes), sv)
    return u, v


def _project(x2: jax.Array, u: nnx.Param, v: nnx.Param, dt) -> jax.Array:
    """(x2 · U) · V for tokens x2[N, a] with U, V of any leading/trailing shapes."""
    r = v.shape[0]
    z = x2 @ u[...].reshape(-1, r).astype(dt)
    return z @ v[...].reshape(r, -1).astype(dt)


class LowRankAttention(Attention):
    """Attention whose q, k, v and o projections are U·V products (rotary, causal, GQA as dense)."""

    def __init__(self, cfg: ModelConfig, *, rngs: nnx.Rngs):
        w, h, kv, hd = cfg.width, cfg.heads, cfg.kv_heads, cfg.head_dim
        kv_axis = "heads" if kv == h else "kv"
        self.q_u, self.q_v = _factors(rngs, cfg, (w,), ("embed",), (h, hd), ("heads", "head_dim"))
        self.k_u, self.k_v = _factors(rngs, cfg, (w,), ("embed",), (kv, hd), (kv_axis, "head_dim"))
        self.v_u, self.v_v = _factors(rngs, cfg, (w,), ("embed",), (kv, hd), (kv_axis, "head_dim"))
        self.o_u, self.o_v = _factors(rngs, cfg, (h, hd), ("heads", "head_dim"), (w,), ("embed",))
        self.dtype = jnp.dtype(cfg.compute_dtype)
        self.scale = pz.attention_scale(cfg)
        self.impl = cfg.attention
        self.n_heads, self.head_dim = h, hd

    def _qkv(self, x2: jax.Array, b: int, t: int) -> tuple[jax.Array, jax.Array, jax.Array]:
        dt, hd = self.dtype, self.head_dim
        heads = lambda y: y.reshape(b, t, -1, hd).transpose(0, 2, 1, 3)  # noqa: E731
        return tuple(
            heads(_project(x2, u, v, dt)) for u, v in ((self.q_u, self.q_v), (self.k_u, self.k_v), (self.v_u, self.v_v))
        )

    def _out(self, y2: jax.Array) -> jax.Array:
        return _project(y2, self.o_u, self.o_v, self.dtype)


class LowRankMLP(MLP):
    """The MLP with its up (and SwiGLU gate) and down matrices as U·V products."""

    def __init__(self, cfg: ModelConfig, *, rngs: nnx.Rngs):
        w, f = cfg.width, cfg.mlp_hidden
        self.kind = cfg.mlp
        if cfg.mlp == "swiglu":
            self.gate_u, self.gate_v = _factors(rngs, cfg, (w,), ("embed",), (f,), ("mlp",))
        self.up_u, self.up_v = _factors(rngs, cfg, (w,), ("embed",), (f,), ("mlp",))
        self.down_u, self.down_v = _factors(rngs, cfg, (f,), ("mlp",), (w,), ("embed",))
        self.dtype = jnp.dtype(cfg.compute_dtype)

    def __call__(self, x: jax.Array) -> jax.Array:
        dt = self.dtype
        x2 = x.reshape(-1, x.shape[-1])
        u = _project(x2, self.up_u, self.up_v, dt)
        if self.kind == "swiglu":
            u = jax.nn.silu(_project(x2, self.gate_u, self.gate_v, dt)) * u
        else:
            u = jax.nn.gelu(u, approximate=True)
        u = constrain(u.reshape(*x.shape[:-1], -1), ("batch", "length", "mlp"))
        return _project(u.reshape(x2.shape[0], -1), self.down_u, self.down_v, dt).reshape(x.shape)


class LowRankBlock(Block):
    """The pre-norm block with factorized attention and MLP."""

    attention_class = LowRankAttention
    mlp_class = LowRankMLP


def block_class(cfg: ModelConfig) -> type[Block]:
    """The block of `cfg`'s family: `LowRankBlock` when lowrank_ratio > 0, else `Block`."""
    return LowRankBlock if cfg.lowrank_ratio else Block
