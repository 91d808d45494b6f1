"""The width x depth Transformer family: config, model, parameter/FLOP accounting, muP."""

from scaling.model.accounting import (
    FLOP_CONVENTIONS,
    accounting,
    flops_per_token,
    params_nonembedding,
    params_total,
)
from scaling.model.config import ModelConfig
from scaling.model.parameterization import lr_multipliers
from scaling.model.transformer import Transformer

__all__ = [
    "FLOP_CONVENTIONS",
    "ModelConfig",
    "Transformer",
    "accounting",
    "flops_per_token",
    "lr_multipliers",
    "params_nonembedding",
    "params_total",
]
