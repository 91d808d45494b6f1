"""Fixtures for the figure and notebook tests: a synthetic results store (runs, curves,
a weight-path interpolation JSON and muP tables) and a small table in the format of
Epoch AI's Chinchilla data, so nothing here depends on training or on ../shared.

SCALING_FIGURES_QUICK=1 makes the parametric fits start from one point and bootstrap
100 resamples (set before scaling.plotting.analyses is imported)."""

from __future__ import annotations

import os

os.environ.setdefault("SCALING_FIGURES_QUICK", "1")

from pathlib import Path

import pytest
from figure_helpers import write_epoch_like, write_mup_tables


@pytest.fixture(scope="session")
def synthetic_store(tmp_path_factory) -> Path:
    from scaling.plotting.synthetic_store import write_synthetic_store

    root = write_synthetic_store(tmp_path_factory.mktemp("store") / "synthetic")
    write_mup_tables(root / "mup")
    return root


@pytest.fixture(scope="session")
def epoch_like(tmp_path_factory) -> Path:
    return write_epoch_like(tmp_path_factory.mktemp("reference"))
