"""Tokenizers: raw bytes (the default) and an optional byte-level BPE.

Both turn a list of documents (bytes) into one token stream with a separator id
between documents, and both are identified by a small JSON-able `identity()`
that goes into the corpus manifest.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from scaling.data.token_file import dtype_for_vocab

SEPARATOR = "<|sep|>"  # the BPE separator's token string (id 0 in a trained BPE)


def _join(pieces: Sequence[np.ndarray], separator_id: int, dtype: np.dtype) -> np.ndarray:
    """Concatenate per-document id arrays with `separator_id` between consecutive documents."""
    if not pieces:
        return np.zeros(0, dtype)
    sep = np.array([separator_id], dtype)
    parts: list[np.ndarray] = []
    for i, p in enumerate(pieces):
        if i:
            parts.append(sep)
        parts.append(p.astype(dtype, copy=False))
    return np.concatenate(parts)


class ByteTokenizer:
    """Token = byte value (0..255); 256 separates documents. vocab_size 257."""

    name = "bytes"
    vocab_size = 257
    separator_id = 256

    def encode(self, text: str | bytes) -> np.ndarray:
        data = text.encode("utf-8") if isinstance(text, str) else bytes(text)
        return np.frombuffer(data, dtype=np.uint8).astype(np.uint16)

    def encode_documents(self, docs: Sequence[bytes]) -> np.ndarray:
        return _join([np.frombuffer(d, dtype=np.uint8) for d in docs], self.separator_id, np.dtype(np.uint16))

    def decode(self, ids) -> bytes:
        """Bytes of `ids`, each separator rendered as a blank line."""
        ids = np.asarray(ids)
        parts = np.split(ids, np.flatnonzero(ids == self.separator_id))
        return b"\n\n".join(p[p != self.separator_id].astype(np.uint8).tobytes() for p in parts)

    def identity(self) -> dict:
        return {"name": self.name, "vocab_size": self.vocab_size, "separator_id": self.separator_id}


def require_tokenizers():
    try:
        import tokenizers
    except ImportError:
        raise ImportError(
            "tokenizer='bpe' needs the `tokenizers` package: pip install 'scaling[bpe]' (or tokenizers>=0.20)"
        ) from None
    return tokenizers


def _texts(docs: Iterable[bytes]) -> Iterable[str]:
    # Undecodable bytes (a handful of deliberately mis-encoded stdlib test files) become U+FFFD.
    return (d.decode("utf-8", errors="replace") for d in docs)


class BPETokenizer:
    """A byte-level BPE (Hugging Face `tokenizers`) with `<|sep|>` as the document separator."""

    name = "bpe"

    def __init__(self, tok) -> None:
        tok.encode_special_tokens = True  # a literal "<|sep|>" in a document is text, not a separator
        self._tok = tok
        self.vocab_size = int(tok.get_vocab_size())
        sep = tok.token_to_id(SEPARATOR)
        if sep is None:
            raise ValueError(f"BPE tokenizer has no {SEPARATOR!r} token; train it with BPETokenizer.train")
        self.separator_id = int(sep)
        self.hash = hashlib.sha256(tok.to_str().encode()).hexdigest()

    @classmethod
    def train(cls, docs: Sequence[bytes], vocab_size: int) -> BPETokenizer:
        """Train on `docs` (the training split only) up to `vocab_size` ids, separator included."""
        tk = require_tokenizers()
        from tokenizers import decoders, models, pre_tokenizers, trainers

        tok = tk.Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=int(vocab_size),
            special_tokens=[SEPARATOR],
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        )
        tok.train_from_iterator(_texts(docs), trainer, length=len(docs))
        return cls(tok)

    @classmethod
    def load(cls, path: str | os.PathLike) -> BPETokenizer:
        tk = require_tokenizers()
        return cls(tk.Tokenizer.from_file(str(path)))

    def save(self, path: str | os.PathLike) -> None:
        from scaling.data.token_file import atomic_write_bytes

        atomic_write_bytes(Path(path), lambda f: f.write(self._tok.to_str().encode()))

    def encode(self, text: str | bytes) -> np.ndarray:
        if isinstance(text, bytes):
            text = text.decode("utf-8", errors="replace")
        return np.asarray(self._tok.encode(text, add_special_tokens=False).ids, dtype=dtype_for_vocab(self.vocab_size))

    def encode_documents(self, docs: Sequence[bytes], chunk: int = 256) -> np.ndarray:
        dtype = dtype_for_vocab(self.vocab_size)
        pieces: list[np.ndarray] = []
        for i in range(0, len(docs), chunk):
            batch = list(_texts(docs[i : i + chunk]))
            for enc in self._tok.encode_batch_fast(batch, add_special_tokens=False):
                pieces.append(np.asarray(enc.ids, dtype=dtype))
        return _join(pieces, self.separator_id, dtype)

    def decode(self, ids) -> bytes:
        """UTF-8 bytes of `ids`; separators are dropped."""
        return self._tok.decode([int(i) for i in np.asarray(ids)], skip_special_tokens=True).encode("utf-8")

    def identity(self) -> dict:
        return {"name": self.name, "vocab_size": self.vocab_size, "separator_id": self.separator_id, "hash": self.hash}


__all__ = ["SEPARATOR", "BPETokenizer", "ByteTokenizer"]
