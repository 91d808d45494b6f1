"""The device mesh (data, fsdp, model) and the checks that need the device count.

Every check here runs before anything is compiled, and its message names the value.
Axis types are Auto (classic GSPMD propagation): the model only constrains activations
by logical names (`scaling.sharding.constrain`), never with explicit-mode out_shardings.
"""

from __future__ import annotations

import math

import jax
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec

from scaling.sharding import MESH_AXES
from scaling.train.config import MeshConfig


def mesh_shape(cfg: MeshConfig, num_devices: int) -> tuple[int, int, int]:
    """Resolve -1 and check that the shape uses exactly `num_devices` devices."""
    sizes = [cfg.data, cfg.fsdp, cfg.model]
    given = " × ".join(f"{name}={size}" for name, size in zip(MESH_AXES, sizes))
    if -1 in sizes:
        known = math.prod(s for s in sizes if s != -1)
        if num_devices % known:
            raise ValueError(
                f"mesh {given}: the fixed axes ({known} devices) do not divide the {num_devices} available devices"
            )
        sizes[sizes.index(-1)] = num_devices // known
    if math.prod(sizes) != num_devices:
        raise ValueError(
            f"mesh {given} = {math.prod(sizes)} devices, but {num_devices} are available (set one axis to -1 to fill)"
        )
    return tuple(sizes)  # type: ignore[return-value]


def make_mesh(cfg: MeshConfig, devices=None) -> Mesh:
    devices = list(devices if devices is not None else jax.devices())
    shape = mesh_shape(cfg, len(devices))
    return jax.make_mesh(shape, MESH_AXES, axis_types=(AxisType.Auto,) * len(MESH_AXES), devices=devices)


def batch_shards(mesh: Mesh) -> int:
    """How many ways the batch dimension is split (data × fsdp)."""
    return mesh.shape["data"] * mesh.shape["fsdp"]


def check_batch(
    mesh: Mesh, global_batch_size: int, microbatches: int = 1, *, what: str = "train.global_batch_size"
) -> None:
    """The batch must split evenly over hosts and batch shards, per microbatch."""
    shards = batch_shards(mesh)
    procs = jax.process_count()
    if global_batch_size % procs:
        raise ValueError(f"{what}={global_batch_size} is not divisible by the {procs} processes")
    if global_batch_size % (shards * microbatches):
        per = "" if microbatches == 1 else f" × train.microbatches={microbatches}"
        raise ValueError(
            f"{what}={global_batch_size} is not divisible by the batch-sharding axes "
            f"(mesh data={mesh.shape['data']} × fsdp={mesh.shape['fsdp']}{per})"
        )


def batch_sharding(mesh: Mesh) -> NamedSharding:
    """Token batches [B, T+1]: rows split over data × fsdp, replicated over model."""
    axes = tuple(a for a in ("data", "fsdp") if mesh.shape[a] > 1)
    return NamedSharding(mesh, PartitionSpec(axes or None, None))


def stacked_sharding(mesh: Mesh) -> NamedSharding:
    """Stacked token batches [K, B, T+1]: each batch split as `batch_sharding` splits one."""
    return NamedSharding(mesh, PartitionSpec(None, *batch_sharding(mesh).spec))


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, PartitionSpec())
