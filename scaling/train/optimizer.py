"""The optimizer: an optax chain whose output is the update *direction*; the trainer
multiplies it by −lr(t) itself (so the learning rate is an argument of the compiled step
and one compilation serves every schedule and peak learning rate).

AdamW, as in optax/PyTorch ("decoupled" weight decay, Loshchilov & Hutter):

    p ← p − lr · m_i · (adam(g) + wd · mask_i · p)

with g the gradient after global-norm clipping, m_i muP's per-tensor learning-rate
multiplier (1 under SP) and mask_i the weight-decay mask (`scaling.train.params.decay_mask`).
"""

from __future__ import annotations

import jax
import optax

from scaling.train.config import OptimizerConfig


def scale_per_tensor(factors: dict[str, float]) -> optax.GradientTransformation:
    """Multiply each tensor's update by its own constant (muP's LR multipliers)."""

    def update(updates, state, params=None):
        del params
        return {k: u * factors[k] if factors[k] != 1.0 else u for k, u in updates.items()}, state

    return optax.GradientTransformation(lambda params: optax.EmptyState(), update)


def make_optimizer(
    cfg: OptimizerConfig, decay_mask: dict[str, bool], lr_multipliers: dict[str, float]
) -> optax.GradientTransformation:
    parts = []
    if cfg.clip_norm > 0:
        parts.append(optax.clip_by_global_norm(cfg.clip_norm))
    if cfg.name == "adamw":
        parts.append(optax.scale_by_adam(b1=cfg.b1, b2=cfg.b2, eps=cfg.eps))
        if cfg.weight_decay > 0:
            parts.append(optax.add_decayed_weights(cfg.weight_decay, mask=decay_mask))
    if any(m != 1.0 for m in lr_multipliers.values()):
        parts.append(scale_per_tensor(lr_multipliers))
    return optax.chain(*parts) if parts else optax.identity()


def apply_updates(params, updates, lr):
    """p − lr · u, in each parameter's own dtype."""
    return jax.tree.map(lambda p, u: (p - lr * u).astype(p.dtype), params, updates)
