"""Shared fixtures for the data-pipeline tests: a private cache, small corpora, one real stdlib build."""

from __future__ import annotations

from pathlib import Path

import pytest
from data_helpers import write_split_corpus

from scaling.data import DataConfig, build_dataset


@pytest.fixture(scope="session")
def data_cache(tmp_path_factory) -> Path:
    """A cache directory private to this test session (never ~/.cache)."""
    return tmp_path_factory.mktemp("data-cache")


@pytest.fixture(scope="session")
def stdlib_ds(data_cache):
    """The real default corpus (CPython's stdlib, ~31.5 MB), built once per session."""
    return build_dataset(DataConfig(source="stdlib", seq_len=64, seed=3, cache_dir=str(data_cache)))


@pytest.fixture
def split_corpus(tmp_path) -> Path:
    return write_split_corpus(tmp_path)
