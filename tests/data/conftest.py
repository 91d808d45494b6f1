"""Shared fixtures for the data-pipeline tests: a private cache, small corpora, one real stdlib build."""

from __future__ import annotations

from pathlib import Path

import pytest

from scaling.data import DataConfig, build_dataset
from scaling.data.sources import hash_fraction


@pytest.fixture(scope="session")
def data_cache(tmp_path_factory) -> Path:
    """A cache directory private to this test session (never ~/.cache)."""
    return tmp_path_factory.mktemp("data-cache")


@pytest.fixture(scope="session")
def stdlib_ds(data_cache):
    """The real default corpus (CPython's stdlib, ~31.5 MB), built once per session."""
    return build_dataset(DataConfig(source="stdlib", seq_len=64, seed=3, cache_dir=str(data_cache)))


TRAIN_ALPHABET = b"abcdefghijklm"
VALIDATION_ALPHABET = b"NOPQRSTUVWXYZ"


def write_split_corpus(root: Path, n_files: int = 60, size: int = 400, fraction: float = 0.2) -> Path:
    """Text files whose content alphabet says which split the stable hash puts them in.

    A file that the hash sends to validation holds only VALIDATION_ALPHABET bytes,
    every other file only TRAIN_ALPHABET bytes; so any window mixing the two
    alphabets crossed the split.
    """
    import numpy as np

    rng = np.random.default_rng(0)
    corpus = root / "corpus"
    for i in range(n_files):
        rel = f"d{i % 3}/file{i:03d}.txt"
        alphabet = VALIDATION_ALPHABET if hash_fraction(rel) < fraction else TRAIN_ALPHABET
        data = bytes(rng.choice(list(alphabet), size=size + 7 * i))
        path = corpus / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return corpus


@pytest.fixture
def split_corpus(tmp_path) -> Path:
    return write_split_corpus(tmp_path)
