"""Test-session set-up: 8 fake CPU devices (sharded paths run on CPU), the
persistent compilation cache, and the path to the shared reference data."""

from __future__ import annotations

import os
from pathlib import Path

# Must happen before JAX is imported anywhere.
_flags = os.environ.get("XLA_FLAGS", "")
if "xla_force_host_platform_device_count" not in _flags:
    os.environ["XLA_FLAGS"] = (_flags + " --xla_force_host_platform_device_count=8").strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import pytest  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("SCALING_JAX_CACHE", str(REPO / ".cache" / "jax"))

from scaling.runtime import enable_compilation_cache  # noqa: E402

enable_compilation_cache()

REFERENCE_DATA = REPO.parent / "shared" / "reference_data"


@pytest.fixture(scope="session")
def reference_data() -> Path:
    """../shared/reference_data, or skip: the data is not shipped with the repository."""
    if not REFERENCE_DATA.is_dir():
        pytest.skip(f"reference data not found at {REFERENCE_DATA} (it lives in ../shared, beside the checkout)")
    return REFERENCE_DATA
