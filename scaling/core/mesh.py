"""The device mesh's axis names and the default logical-axis rules (pure data: the
trainer's [mesh] config validates against them without importing JAX; `scaling.sharding`
applies them)."""

from __future__ import annotations

MESH_AXES = ("data", "fsdp", "model")

# logical axis -> mesh axis (or tuple of mesh axes, or None = replicated)
DEFAULT_RULES: tuple[tuple[str, str | tuple[str, ...] | None], ...] = (
    ("batch", ("data", "fsdp")),
    ("length", None),
    ("embed", "fsdp"),
    ("mlp", "model"),
    ("heads", "model"),
    ("kv", None),
    ("head_dim", None),
    ("vocab", "model"),
    ("layers", None),
    ("norm", None),
    ("rank", None),  # low-rank factors' inner dimension: small, replicated (scaling.model.lowrank)
)
