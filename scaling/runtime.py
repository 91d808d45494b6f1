"""Process-level JAX set-up shared by every entry point (CLI, tests, benchmarks).

Why: compilation dominates short CPU runs and test suites; JAX's persistent
compilation cache turns a second run's compiles into disk reads.
"""

from __future__ import annotations

import os
from pathlib import Path

# Exit status of a run or sweep stopped by SIGTERM after saving its state (EX_TEMPFAIL,
# "try again"): schedulers that requeue on it rerun the command, which resumes.
PREEMPTED_EXIT_CODE = 75

_DEFAULT_CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "scaling" / "jax"


def enable_compilation_cache(path: str | os.PathLike | None = None) -> Path:
    """Turn on JAX's persistent compilation cache (idempotent).

    The directory is `path`, else `$SCALING_JAX_CACHE`, else ~/.cache/scaling/jax.
    Every compile is cached (no minimum compile time), since CPU test and sweep
    programs are small but numerous.
    """
    import jax

    cache = Path(path or os.environ.get("SCALING_JAX_CACHE") or _DEFAULT_CACHE)
    cache.mkdir(parents=True, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", str(cache))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return cache


def describe_devices() -> dict:
    """JAX version, backend, and device count/kinds: what `scaling info` and manifests record."""
    import jax

    devices = jax.devices()
    kinds: dict[str, int] = {}
    for d in devices:
        kinds[d.device_kind] = kinds.get(d.device_kind, 0) + 1
    return {
        "jax_version": jax.__version__,
        "backend": jax.default_backend(),
        "process_index": jax.process_index(),
        "process_count": jax.process_count(),
        "device_count": jax.device_count(),
        "local_device_count": jax.local_device_count(),
        "device_kinds": kinds,
    }


PACKAGES = ("scaling", "jax", "jaxlib", "flax", "optax", "orbax-checkpoint", "numpy", "scipy", "pandas")


def package_versions() -> dict[str, str | None]:
    """Installed versions of the stack (None where absent) and Python: provenance for results."""
    import platform
    from importlib import metadata

    versions: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    versions["python"] = platform.python_version()
    return versions


def git_state() -> dict:
    """The commit (and whether tracked files differ from it) of the checkout `scaling` was
    imported from; None values outside a git checkout (an installed wheel)."""
    import subprocess

    root = Path(__file__).resolve().parents[1]
    if not (root / "pyproject.toml").exists():  # installed, not a checkout: a parent repo is not ours
        return {"commit": None, "dirty": None}
    try:
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                                timeout=10, check=True).stdout.strip()  # fmt: skip
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10, check=True).stdout.strip() != ""  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}
    return {"commit": commit, "dirty": dirty}
