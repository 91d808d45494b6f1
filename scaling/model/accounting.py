"""Parameter and FLOP accounting: pure functions of a `ModelConfig`.

Counts match the real parameter pytree of `scaling.model.Transformer` exactly (tested).
"""

from __future__ import annotations

from scaling.core.flops import DEFAULT_FLOP_CONVENTION, FLOP_CONVENTIONS
from scaling.model.config import ModelConfig

__all__ = ["FLOP_CONVENTIONS", "accounting", "flops_per_token", "params_nonembedding", "params_total"]


def _block_matrix_params(cfg: ModelConfig) -> int:
    """Weights of one block's matrices; a low-rank model's a × b matrix is r·(a + b)."""
    w, hd = cfg.width, cfg.head_dim
    size = (lambda a, b: a * b) if cfg.rank is None else (lambda a, b: cfg.rank * (a + b))
    attn = 2 * size(w, cfg.heads * hd) + 2 * size(w, cfg.kv_heads * hd)  # q, o; k, v
    mlp = (3 if cfg.mlp == "swiglu" else 2) * size(w, cfg.mlp_hidden)
    return attn + mlp


def params_nonembedding(cfg: ModelConfig) -> int:
    """Kaplan's N: every parameter except the token embedding and the readout matrix.

    Norms are included: each block's two RMSNorm scales and the final norm's
    (2·depth·width + width, no biases anywhere). With tied embeddings the one shared
    matrix is the embedding and is excluded, just as both matrices are when untied.
    """
    return cfg.depth * (_block_matrix_params(cfg) + 2 * cfg.width) + cfg.width


def params_total(cfg: ModelConfig) -> int:
    """Every parameter: N plus the embedding (vocab·width), plus the readout when untied."""
    emb = cfg.vocab_size * cfg.width
    return params_nonembedding(cfg) + emb * (1 if cfg.tied_embeddings else 2)


def flops_per_token(cfg: ModelConfig, convention: str = DEFAULT_FLOP_CONVENTION) -> float:
    """Training FLOPs (forward + backward) per token under `convention`.

    "6N": Kaplan et al. (2020), 6·N with N = `params_nonembedding`.
    "6N+attention": Kaplan's context term added, 6N + 6·depth·seq_len·width.
    "exact": every matmul of the forward pass, times 3 (the backward pass computes two
        matmuls of the same size per forward matmul: gradients w.r.t. both operands), at
        2 FLOPs per multiply-add:
          q, k, v, o projections   2·width·(2·heads + 2·kv_heads)·head_dim per layer
          attention q·kᵀ and p·v   4·seq_len·width per layer; the causal T×T matrix is
                                   counted in full, as computed (no saving for the mask)
          MLP                      2·(2 or 3)·width·mlp_hidden per layer
          (low-rank models: each a × b matrix as two matmuls, 2·rank·(a + b))
          logits (readout)         2·width·vocab_size (tied or not)
        The token embedding is a table lookup (a gather, and a scatter-add in the
        backward), not a matmul, so it counts 0 — unlike Chinchilla's appendix F, which
        prices it as a one-hot matmul. Excluded: norms, softmax, rotary, activations,
        residual adds, the loss and the optimizer update (elementwise work, a few
        percent at most; see tests/model/test_accounting.py for XLA's own count).
    """
    if convention not in FLOP_CONVENTIONS:
        raise ValueError(f"unknown FLOP convention {convention!r}; choose one of {', '.join(FLOP_CONVENTIONS)}")
    n = params_nonembedding(cfg)
    if convention == "6N":
        return float(6 * n)
    if convention == "6N+attention":
        return float(6 * n + 6 * cfg.depth * cfg.seq_len * cfg.width)
    per_layer = 2 * _block_matrix_params(cfg) + 4 * cfg.seq_len * cfg.heads * cfg.head_dim
    forward = cfg.depth * per_layer + 2 * cfg.width * cfg.vocab_size
    return float(3 * forward)


def accounting(cfg: ModelConfig) -> dict:
    """{"params_nonembedding", "params_total", "flops_per_token": {convention: FLOPs}}."""
    return {
        "params_nonembedding": params_nonembedding(cfg),
        "params_total": params_total(cfg),
        "flops_per_token": {c: flops_per_token(cfg, c) for c in FLOP_CONVENTIONS},
    }
