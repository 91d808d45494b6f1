"""Building blocks: RMSNorm, rotary positions, attention, MLP, one pre-norm block.

Parameters are float32 (`cfg.param_dtype`) and annotated with logical axis names
(`scaling.sharding`); matmuls run in `cfg.compute_dtype`, while norm statistics,
attention softmax and logits stay float32. No biases.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from scaling.model import parameterization as pz
from scaling.model.config import ModelConfig
from scaling.sharding import constrain

F32 = jnp.float32
ACT = ("batch", "length", "embed")
HEADS_ACT = ("batch", "length", "heads", "head_dim")


def param(rngs: nnx.Rngs, shape, axes, std: float | None) -> nnx.Param:
    """A float32 parameter N(0, std²) (ones when std is None) with logical axes `axes`."""
    init = nnx.initializers.ones_init() if std is None else nnx.initializers.normal(std)
    # eager_sharding=False: creation works without a mesh; the trainer shards the
    # state from the logical names (`nnx.get_partition_spec`) and its own rule table.
    return nnx.Param(nnx.with_partitioning(init, axes, eager_sharding=False)(rngs.params(), shape, F32))


class RMSNorm(nnx.Module):
    def __init__(self, cfg: ModelConfig, *, rngs: nnx.Rngs):
        self.scale = param(rngs, (cfg.width,), ("norm",), None)
        self.eps = cfg.norm_eps

    def __call__(self, x: jax.Array) -> jax.Array:
        x32 = x.astype(F32)
        ms = jnp.mean(jnp.square(x32), axis=-1, keepdims=True)
        return (x32 * jax.lax.rsqrt(ms + self.eps) * self.scale[...]).astype(x.dtype)


@functools.lru_cache(maxsize=32)
def rope_table(seq_len: int, head_dim: int, theta: float) -> tuple[np.ndarray, np.ndarray]:
    """(cos, sin), each float32[seq_len, head_dim // 2]; computed once per shape on the host."""
    inv = theta ** (-np.arange(0, head_dim, 2, dtype=np.float64) / head_dim)
    ang = np.arange(seq_len, dtype=np.float64)[:, None] * inv[None, :]
    return np.cos(ang).astype(np.float32), np.sin(ang).astype(np.float32)


def apply_rope(x: jax.Array, cos: jax.Array, sin: jax.Array) -> jax.Array:
    """Rotate-half rotary embedding of x[B, T, H, D] with cos/sin[T, D/2]."""
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half], x[..., half:]
    c, s = cos[:, None, :].astype(x.dtype), sin[:, None, :].astype(x.dtype)
    return jnp.concatenate([x1 * c - x2 * s, x2 * c + x1 * s], axis=-1)


class Attention(nnx.Module):
    def __init__(self, cfg: ModelConfig, *, rngs: nnx.Rngs):
        w, h, kv, hd = cfg.width, cfg.heads, cfg.kv_heads, cfg.head_dim
        std = pz.init_std(cfg, "hidden")
        # Under MHA k/v shard like q ("heads"); with fewer kv heads they use "kv".
        kv_axis = "heads" if kv == h else "kv"
        self.q = param(rngs, (w, h, hd), ("embed", "heads", "head_dim"), std)
        self.k = param(rngs, (w, kv, hd), ("embed", kv_axis, "head_dim"), std)
        self.v = param(rngs, (w, kv, hd), ("embed", kv_axis, "head_dim"), std)
        self.o = param(rngs, (h, hd, w), ("heads", "head_dim", "embed"), std)
        self.dtype = jnp.dtype(cfg.compute_dtype)
        self.scale = pz.attention_scale(cfg)
        self.impl = cfg.attention

    def __call__(self, x: jax.Array, cos: jax.Array, sin: jax.Array) -> jax.Array:
        dt = self.dtype
        q = jnp.einsum("btd,dhk->bthk", x, self.q[...].astype(dt))
        k = jnp.einsum("btd,dhk->bthk", x, self.k[...].astype(dt))
        v = jnp.einsum("btd,dhk->bthk", x, self.v[...].astype(dt))
        q = constrain(apply_rope(q, cos, sin), HEADS_ACT)
        k = apply_rope(k, cos, sin)
        if self.impl == "xla":
            out = jax.nn.dot_product_attention(q, k, v, scale=self.scale, is_causal=True)
        else:
            out = _einsum_attention(q, k, v, self.scale)
        out = constrain(out, HEADS_ACT)
        return jnp.einsum("bthk,hkd->btd", out, self.o[...].astype(dt))


def _einsum_attention(q, k, v, scale):
    """Causal softmax attention; softmax in float32; grouped-query when k has fewer heads."""
    b, t, h, d = q.shape
    g = h // k.shape[2]
    q = (q * jnp.asarray(scale, q.dtype)).reshape(b, t, k.shape[2], g, d)
    s = jnp.einsum("bqngd,bknd->bngqk", q, k, preferred_element_type=F32)
    mask = jnp.tril(jnp.ones((t, t), dtype=bool))
    s = jnp.where(mask, s, jnp.finfo(F32).min)
    p = jax.nn.softmax(s, axis=-1).astype(v.dtype)
    out = jnp.einsum("bngqk,bknd->bqngd", p, v)
    return out.reshape(b, t, h, d)


class MLP(nnx.Module):
    def __init__(self, cfg: ModelConfig, *, rngs: nnx.Rngs):
        w, f = cfg.width, cfg.mlp_hidden
        std = pz.init_std(cfg, "hidden")
        self.kind = cfg.mlp
        if cfg.mlp == "swiglu":
            self.gate = param(rngs, (w, f), ("embed", "mlp"), std)
        self.up = param(rngs, (w, f), ("embed", "mlp"), std)
        self.down = param(rngs, (f, w), ("mlp", "embed"), std)
        self.dtype = jnp.dtype(cfg.compute_dtype)

    def __call__(self, x: jax.Array) -> jax.Array:
        dt = self.dtype
        u = x @ self.up[...].astype(dt)
        if self.kind == "swiglu":
            u = jax.nn.silu(x @ self.gate[...].astype(dt)) * u
        else:
            u = jax.nn.gelu(u, approximate=True)
        u = constrain(u, ("batch", "length", "mlp"))
        return u @ self.down[...].astype(dt)


class Block(nnx.Module):
    """Pre-norm residual block: x + attn(norm(x)), then + mlp(norm(x))."""

    def __init__(self, cfg: ModelConfig, *, rngs: nnx.Rngs):
        self.attn_norm = RMSNorm(cfg, rngs=rngs)
        self.attn = Attention(cfg, rngs=rngs)
        self.mlp_norm = RMSNorm(cfg, rngs=rngs)
        self.mlp = MLP(cfg, rngs=rngs)

    def __call__(self, x: jax.Array, cos: jax.Array, sin: jax.Array) -> jax.Array:
        x = constrain(x + self.attn(self.attn_norm(x), cos, sin), ACT)
        return constrain(x + self.mlp(self.mlp_norm(x)), ACT)
