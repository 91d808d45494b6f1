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
from scaling.model.precision import einsum_f32
from scaling.sharding import constrain, split_of

F32 = jnp.float32
ACT = ("batch", "length", "embed")
HEADS_ACT = ("batch", "heads", "length", "head_dim")
ATTENTION_BLOCK = 64  # query chunk of the "blocked" attention (measured best on CPU, PERF.md)


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
    """Rotate-half rotary embedding of x[B, H, T, D] with cos/sin[T, D/2]."""
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half], x[..., half:]
    c, s = cos.astype(x.dtype), sin.astype(x.dtype)
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
        self.n_heads, self.head_dim = h, hd

    def _qkv(self, x2: jax.Array, b: int, t: int) -> tuple[jax.Array, jax.Array, jax.Array]:
        """q[B, H, T, D], k and v[B, KV, T, D] from tokens x2[B*T, width].

        One 2-D [B*T, width] @ [width, (h + 2kv)*hd] matmul: XLA:CPU inserts transposing
        copies around 3-D einsums' weight gradients (PERF.md). When the heads are split n
        ways over the mesh (tensor parallelism), the fused kernel's columns are ordered
        shard-major: part i holds the q, k and v heads of shard i, so the concatenation,
        the matmul, its gradients and the split into q, k, v need no communication, and
        the backward pass all-reduces one input gradient where three matmuls would
        all-reduce three. (A plain [q | k | v] concatenation split n ways puts q's and
        k's heads on the wrong shards: GSPMD reshuffled it with all-to-alls and
        collective-permutes every step.) With n = 1 it is that plain concatenation.
        """
        dt = self.dtype
        w = x2.shape[1]
        h, kv, hd = self.q.shape[1], self.k.shape[1], self.k.shape[2]
        q_axes, n = _split(h, "heads")
        kv_axes, _ = _split(kv, "heads" if kv == h else "kv")
        weights = (self.q[...], self.k[...], self.v[...])

        if kv_axes != q_axes:
            # k, v split differently from q (grouped-query attention with "kv" unsplit):
            # one matmul per projection, each weight all-gathered over "embed" only (the
            # FSDP gather) and keeping its own head split.
            def alone(wt: jax.Array, axis: str | None) -> jax.Array:
                wt = constrain(wt.reshape(w, -1), (None, axis)).astype(dt)
                return (x2 @ wt).reshape(b, t, -1, hd).transpose(0, 2, 1, 3)

            q_axis, kv_axis = ("heads" if q_axes else None), ("kv" if kv_axes else None)
            return alone(weights[0], q_axis), alone(weights[1], kv_axis), alone(weights[2], kv_axis)
        if n == 1:
            wqkv = jnp.concatenate([wt.reshape(w, -1) for wt in weights], axis=1).astype(dt)
            qkv = (x2 @ wqkv).reshape(b, t, h + 2 * kv, hd).transpose(0, 2, 1, 3)
            return qkv[:, :h], qkv[:, h : h + kv], qkv[:, h + kv :]
        wqkv = jnp.concatenate([wt.reshape(w, n, -1) for wt in weights], axis=2).reshape(w, -1).astype(dt)
        heads = (h // n, kv // n, kv // n)
        # [B, n, h/n + 2kv/n, T, D]: shard i's q, k and v heads along the third axis
        qkv = (x2 @ wqkv).reshape(b, t, n, sum(heads), hd).transpose(0, 2, 3, 1, 4)
        out, start = [], 0
        for count in heads:
            out.append(qkv[:, :, start : start + count].reshape(b, n * count, t, hd))
            start += count
        return tuple(out)

    def __call__(self, x: jax.Array, cos: jax.Array, sin: jax.Array) -> jax.Array:
        dt = self.dtype
        b, t, w = x.shape
        h, hd = self.n_heads, self.head_dim
        q, k, v = self._qkv(x.reshape(b * t, w), b, t)
        # Heads-major [B, H, T, D]: the attention matmuls batch over (B, H).
        q = constrain(apply_rope(q * jnp.asarray(self.scale, dt), cos, sin), HEADS_ACT)
        k = apply_rope(k, cos, sin)
        if self.impl == "xla":
            tr = lambda a: a.transpose(0, 2, 1, 3)  # noqa: E731
            out = jax.nn.dot_product_attention(tr(q), tr(k), tr(v), scale=1.0, is_causal=True)
        else:
            block = ATTENTION_BLOCK if self.impl == "blocked" else None
            out = constrain(causal_attention(q, k, v, block=block), HEADS_ACT).transpose(0, 2, 1, 3)
        return self._out(out.reshape(b * t, h * hd)).reshape(b, t, w)

    def _out(self, y2: jax.Array) -> jax.Array:
        """The output projection of the heads' outputs y2[B*T, heads*head_dim] -> [B*T, width]."""
        return y2 @ self.o[...].reshape(y2.shape[1], -1).astype(self.dtype)


def _split(count: int, logical: str) -> tuple[tuple[str, ...], int]:
    """Mesh axes and parts that `count` heads on `logical` are split into: none when the
    parts do not divide `count`, as the trainer then keeps the parameter replicated."""
    axes, ways = split_of(logical)
    return ((), 1) if count % ways else (axes, ways)


def causal_attention(q: jax.Array, k: jax.Array, v: jax.Array, block: int | None = None) -> jax.Array:
    """Causal softmax attention of pre-scaled q[B, H, T, D] over k, v[B, KV, T, D].

    Grouped-query when KV < H. The softmax runs in float32. With `block`, queries go
    in chunks of `block` that see only keys up to their own end, so fully masked
    key blocks are never computed (about (1 + 1/n)/2 of the T×T work for n chunks);
    without it the whole T×T matrix is computed and masked.
    """
    b, h, t, d = q.shape
    kv = k.shape[1]
    # Batch and kv-head axes merged into one, behind a unit axis: the same products bit
    # for bit, in fewer and larger batched matmuls, 10-30% of a small model's CPU step
    # (PERF.md "Small models"; without the unit axis XLA:CPU gains nothing).
    q = q.reshape(1, b * kv, h // kv, t, d)
    k, v = k.reshape(1, b * kv, t, d), v.reshape(1, b * kv, t, d)
    step = t if block is None or block >= t else block
    outs = []
    for start in range(0, t, step):
        stop = min(start + step, t)
        s = einsum_f32("bngqd,bnkd->bngqk", q[:, :, :, start:stop], k[:, :, :stop])
        visible = np.tril(np.ones((stop - start, stop), dtype=bool), k=start)
        s = jnp.where(visible, s, np.float32(-1e30))
        e = jnp.exp(s - jax.lax.stop_gradient(jnp.max(s, axis=-1, keepdims=True)))
        # Normalise after the p·v matmul: dividing [.., q, d] instead of [.., q, k]
        # (measured ~10% faster per block on CPU).
        o = einsum_f32("bngqk,bnkd->bngqd", e.astype(v.dtype), v[:, :, :stop])
        outs.append((o / jnp.sum(e, axis=-1, keepdims=True)).astype(v.dtype))
    out = outs[0] if len(outs) == 1 else jnp.concatenate(outs, axis=3)
    return out.reshape(b, h, t, d)


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
        # 2-D matmuls over flattened tokens: with [B, T, ·] operands XLA:CPU inserts
        # transposing copies in the backward pass (measured 2.7x slower, PERF.md).
        x2 = x.reshape(-1, x.shape[-1])
        u = x2 @ self.up[...].astype(dt)
        if self.kind == "swiglu":
            u = jax.nn.silu(x2 @ self.gate[...].astype(dt)) * u
        else:
            u = jax.nn.gelu(u, approximate=True)
        u = constrain(u.reshape(*x.shape[:-1], -1), ("batch", "length", "mlp"))
        return (u.reshape(x2.shape[0], -1) @ self.down[...].astype(dt)).reshape(x.shape)


class Block(nnx.Module):
    """Pre-norm residual block: x + attn(norm(x)), then + mlp(norm(x)).

    `attention_class` and `mlp_class` are the layers it builds (the low-rank family's
    block, `scaling.model.lowrank.LowRankBlock`, swaps in factorized ones)."""

    attention_class = Attention
    mlp_class = MLP

    def __init__(self, cfg: ModelConfig, *, rngs: nnx.Rngs):
        self.attn_norm = RMSNorm(cfg, rngs=rngs)
        self.attn = self.attention_class(cfg, rngs=rngs)
        self.mlp_norm = RMSNorm(cfg, rngs=rngs)
        self.mlp = self.mlp_class(cfg, rngs=rngs)

    def __call__(self, x: jax.Array, cos: jax.Array, sin: jax.Array) -> jax.Array:
        x = constrain(x + self.attn(self.attn_norm(x), cos, sin), ACT)
        return constrain(x + self.mlp(self.mlp_norm(x)), ACT)
