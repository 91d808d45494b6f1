"""Helpers shared by the data-pipeline tests (a uniquely named module: `conftest` is ambiguous)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from scaling.data.sources import hash_fraction

TRAIN_ALPHABET = b"abcdefghijklm"
VALIDATION_ALPHABET = b"NOPQRSTUVWXYZ"


def write_split_corpus(root: Path, n_files: int = 60, size: int = 400, fraction: float = 0.2) -> Path:
    """Text files whose content alphabet says which split the stable hash puts them in.

    A file that the hash sends to validation holds only VALIDATION_ALPHABET bytes,
    every other file only TRAIN_ALPHABET bytes; so any window mixing the two
    alphabets crossed the split.
    """
    rng = np.random.default_rng(0)
    corpus = root / "corpus"
    for i in range(n_files):
        rel = f"d{i % 3}/file{i:03d}.txt"
        alphabet = VALIDATION_ALPHABET if hash_fraction(rel) < fraction else TRAIN_ALPHABET
        data = rng.choice(np.frombuffer(alphabet, np.uint8), size=size + 7 * i).tobytes()
        path = corpus / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return corpus
