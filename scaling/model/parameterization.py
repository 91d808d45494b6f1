"""Standard (SP) and maximal-update (muP) parameterizations.

muP follows Tensor Programs V (Yang et al. 2022) for Adam, in the "output multiplier"
form of its Table 8, all relative to `cfg.base_width` (so a muP model at
width == base_width is the SP model, except for the attention scale):

| tensor kind | examples                     | init std            | Adam LR multiplier | other                     |
|-------------|------------------------------|---------------------|--------------------|---------------------------|
| embedding   | token embedding              | init_std            | 1                  |                           |
| hidden      | q, k, v, o, MLP matrices     | init_std·√(b/w)     | b/w                |                           |
| readout     | unembedding (untied)         | init_std            | 1                  | logits multiplied by b/w  |
| norm        | RMSNorm scales               | 1 (ones)            | 1                  | no weight decay           |

with b = base_width, w = width. Hidden weights' fan-in is proportional to width (w, or
the MLP hidden 4w / ~8w/3, or heads·head_dim = w), so init_std·√(b/w) is "std ∝
1/√fan_in, equal to init_std at the base shape". Attention logits are scaled by
1/head_dim under muP instead of 1/√head_dim. Under SP every multiplier is 1 and every
weight matrix is initialised with std init_std (GPT-2 style), whatever the width.

Readout: we use the output multiplier b/w (with a width-independent init and LR)
rather than a zero-initialised readout. It is equivalent to TP5 Table 3's "init var
1/fan_in², LR 1/fan_in" readout, and it is what makes tied embeddings work: in this
form the input embedding and the readout both want a width-independent init and LR,
so the one shared matrix gets init_std and LR multiplier 1, and the b/w multiplier is
applied to the logits only (the embedding lookup is not scaled).
"""

from __future__ import annotations

import math
from typing import Any

import jax

from scaling.model.config import ModelConfig

PARAM_KINDS = ("embedding", "hidden", "readout", "norm")


def param_kind(name: str) -> str:
    """Kind of a parameter from its attribute name in `scaling.model.transformer`."""
    if name == "embedding":
        return "embedding"
    if name == "readout":
        return "readout"
    if name == "scale":
        return "norm"
    return "hidden"


def init_std(cfg: ModelConfig, kind: str) -> float:
    """Initialisation std of a weight of `kind` ("embedding", "hidden", "readout")."""
    if kind == "hidden" and cfg.parameterization == "mup":
        return cfg.init_std * math.sqrt(cfg.base_width / cfg.width)
    return cfg.init_std


def lr_multiplier(cfg: ModelConfig, kind: str) -> float:
    """Per-tensor Adam learning-rate multiplier (1 under SP)."""
    if kind == "hidden" and cfg.parameterization == "mup":
        return cfg.base_width / cfg.width
    return 1.0


def attention_scale(cfg: ModelConfig) -> float:
    """Factor on q·k: 1/head_dim under muP, 1/√head_dim under SP."""
    return 1.0 / cfg.head_dim if cfg.parameterization == "mup" else 1.0 / math.sqrt(cfg.head_dim)


def output_multiplier(cfg: ModelConfig) -> float:
    """Factor on the logits: base_width/width under muP, 1 under SP."""
    return cfg.base_width / cfg.width if cfg.parameterization == "mup" else 1.0


def _leaf_name(path) -> str:
    # Path into nnx.state(model, nnx.Param): (..., GetAttrKey('kernel_name'), GetAttrKey('value'))
    names = [str(getattr(k, "key", getattr(k, "name", getattr(k, "idx", k)))) for k in path]
    names = [n for n in names if n != "value"]
    return names[-1]


def lr_multipliers(cfg: ModelConfig, params_state: Any) -> Any:
    """Python-float LR multiplier per parameter, same tree structure as `params_state`
    (= `nnx.state(model, nnx.Param)`); 1.0 everywhere under SP."""
    return jax.tree_util.tree_map_with_path(
        lambda path, _: lr_multiplier(cfg, param_kind(_leaf_name(path))), params_state
    )
