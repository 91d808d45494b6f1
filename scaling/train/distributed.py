"""Multi-host start-up: `jax.distributed.initialize` when there is more than one process.

Ways to be multi-host, checked in this order:
1. explicit: `coordinator` "HOST:PORT", `num_processes`, `process_id` (CLI flags
   --coordinator/--num-processes/--process-id, or the environment variables
   SCALING_COORDINATOR, SCALING_NUM_PROCESSES, SCALING_PROCESS_ID);
2. SLURM with more than one task (SLURM_NTASKS > 1): JAX reads the SLURM variables;
3. a Cloud TPU VM (libtpu installed and TPU chips present, or the TPU_WORKER_HOSTNAMES /
   MEGASCALE_COORDINATOR_ADDRESS variables of a slice): JAX finds its peers through the
   TPU metadata (on a single-host TPU VM this is harmless);
4. `auto=True` (--distributed / SCALING_DISTRIBUTED=1): JAX's own cluster auto-detection
   (Open MPI, mpi4py, Kubernetes, ...).
Otherwise nothing happens (one process). Must run before anything touches a JAX backend.
`local_devices` sets the number of CPU devices of this process (`jax_num_cpu_devices`),
which is how multi-process runs are tested on one CPU machine (collectives over gloo).
"""

from __future__ import annotations

import os
import sys


def _env_int(name: str) -> int | None:
    value = os.environ.get(name)
    if value in (None, ""):
        return None
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"environment variable {name}={value!r} must be an integer") from None


def _on_tpu_vm() -> bool:
    import importlib.util
    from pathlib import Path

    if os.environ.get("TPU_WORKER_HOSTNAMES") or os.environ.get("MEGASCALE_COORDINATOR_ADDRESS"):
        return True
    has_chips = Path("/dev/accel0").exists() or Path("/dev/vfio/0").exists()
    return has_chips and importlib.util.find_spec("libtpu") is not None


def detect() -> str | None:
    """Which multi-host launcher this process runs under (None: a single process)."""
    if os.environ.get("SCALING_COORDINATOR"):
        return "explicit"
    if (_env_int("SLURM_NTASKS") or 1) > 1:
        return "slurm"
    if _on_tpu_vm():
        return "tpu"
    if os.environ.get("SCALING_DISTRIBUTED", "").lower() in ("1", "true", "auto"):
        return "auto"
    return None


def initialize(
    coordinator: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
    local_devices: int | None = None,
    auto: bool = False,
) -> bool:
    """Initialise JAX's distributed runtime when launched multi-host; True if it did."""
    import jax

    if local_devices:
        jax.config.update("jax_num_cpu_devices", int(local_devices))
    if jax.distributed.is_initialized():
        return True
    coordinator = coordinator or os.environ.get("SCALING_COORDINATOR") or None
    num_processes = num_processes if num_processes is not None else _env_int("SCALING_NUM_PROCESSES")
    process_id = process_id if process_id is not None else _env_int("SCALING_PROCESS_ID")
    if coordinator:
        if num_processes is None or process_id is None:
            raise ValueError(
                f"coordinator={coordinator!r} needs --num-processes and --process-id "
                "(or SCALING_NUM_PROCESSES and SCALING_PROCESS_ID)"
            )
        if not 0 <= process_id < num_processes:
            raise ValueError(f"process_id={process_id} must be in [0, num_processes={num_processes})")
        if num_processes == 1:
            return False
        jax.distributed.initialize(coordinator_address=coordinator, num_processes=num_processes, process_id=process_id)
        return True
    kind = "auto" if auto else detect()
    if kind == "tpu" and not os.environ.get("TPU_WORKER_HOSTNAMES"):
        try:  # a single-host TPU VM has no peers to find; that is fine
            jax.distributed.initialize()
        except Exception as err:  # noqa: BLE001
            print(
                f"jax.distributed.initialize() on this TPU VM failed ({err}); running as one process", file=sys.stderr
            )
            return False
        return True
    if kind in ("slurm", "tpu", "auto"):
        jax.distributed.initialize()
        return True
    return False
