"""Logical axis names → mesh axes: the one table of rules.

Model code annotates parameters and activations with *logical* axis names
("batch", "length", "embed", "mlp", "heads", "kv", "vocab", "layers", "rank") and never names a
mesh axis. The trainer activates a mesh and a rule table with `use_rules`; outside that
context `constrain` is a no-op, so the model runs unchanged on one device.

A mesh axis may appear only once in a PartitionSpec; when two logical axes of one array
map to the same mesh axis (parameters shard "embed" over "fsdp" while activations shard
"batch" over it), the first dimension keeps it and later ones are replicated.
"""

from __future__ import annotations

import contextlib
import math
import threading
from collections.abc import Iterator, Sequence

import jax
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from scaling.core.mesh import DEFAULT_RULES, MESH_AXES

__all__ = [
    "DEFAULT_RULES",
    "MESH_AXES",
    "active",
    "constrain",
    "fit_to_shape",
    "logical_to_mesh",
    "split_of",
    "use_rules",
]

LogicalSpec = Sequence[str | None]

_state = threading.local()


def logical_to_mesh(logical: LogicalSpec | None, rules=DEFAULT_RULES, mesh: Mesh | None = None) -> PartitionSpec:
    """Map a tuple of logical axis names to a PartitionSpec under `rules`.

    Mesh axes of size 1 (when `mesh` is given) and mesh axes already used by an earlier
    dimension are dropped, so every result is a valid spec for that mesh.
    """
    if logical is None:
        return PartitionSpec()
    table = dict(rules)
    used: set[str] = set()
    out = []
    for name in logical:
        if name is None:
            out.append(None)
            continue
        if name not in table:
            raise ValueError(f"logical axis {name!r} has no sharding rule; known: {sorted(table)}")
        target = table[name]
        axes = (target,) if isinstance(target, str) else tuple(target or ())
        keep = tuple(a for a in axes if a not in used and (mesh is None or mesh.shape.get(a, 1) > 1))
        used.update(keep)
        out.append(None if not keep else keep[0] if len(keep) == 1 else keep)
    return PartitionSpec(*out)


@contextlib.contextmanager
def use_rules(mesh: Mesh, rules=DEFAULT_RULES) -> Iterator[None]:
    """Activate `mesh` and `rules` for `constrain` calls traced inside this context."""
    prev = getattr(_state, "active", None)
    _state.active = (mesh, tuple(rules))
    try:
        yield
    finally:
        _state.active = prev


def active() -> tuple[Mesh, tuple] | None:
    return getattr(_state, "active", None)


def constrain(x: jax.Array, logical: LogicalSpec) -> jax.Array:
    """Sharding constraint on an activation by logical axis names (no-op without rules)."""
    current = active()
    if current is None:
        return x
    mesh, rules = current
    if mesh.size == 1:  # nothing to place: keep one-device programs free of sharding ops
        return x
    spec = fit_to_shape(logical_to_mesh(logical, rules, mesh), x.shape, mesh)
    return jax.lax.with_sharding_constraint(x, NamedSharding(mesh, spec))


def fit_to_shape(spec: PartitionSpec, shape: Sequence[int], mesh: Mesh) -> PartitionSpec:
    """`spec` with every dimension that its mesh axes do not divide left unsplit, as the
    trainer stores such parameters (e.g. vocab 257 over model=2): an uneven split would
    be padded, and every use of it resharded."""
    padded = tuple(spec) + (None,) * (len(shape) - len(spec))
    return PartitionSpec(*(axes if size % _ways(mesh, axes) == 0 else None for size, axes in zip(shape, padded)))


def split_of(logical: str) -> tuple[tuple[str, ...], int]:
    """The mesh axes the active rules split one logical axis over, and into how many parts
    (`((), 1)` outside `use_rules`). Lets a layer lay out a computation so that each
    device's part lines up with its shards, e.g. a fused matmul over several weights."""
    current = active()
    if current is None:
        return (), 1
    mesh, rules = current
    (axes,) = logical_to_mesh((logical,), rules, mesh)
    return _as_tuple(axes), _ways(mesh, axes)


def _as_tuple(axes: str | tuple[str, ...] | None) -> tuple[str, ...]:
    """One PartitionSpec entry (None, a mesh axis, or several) as a tuple of mesh axes."""
    return () if axes is None else (axes,) if isinstance(axes, str) else tuple(axes)


def _ways(mesh: Mesh, axes: str | tuple[str, ...] | None) -> int:
    """Into how many parts one PartitionSpec entry splits a dimension on `mesh`."""
    return math.prod(mesh.shape[a] for a in _as_tuple(axes))
