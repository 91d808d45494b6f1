"""Pre-tokenized token files: a raw little-endian uint16/uint32 `.bin` plus a JSON meta beside it.

`tokens.bin` has its meta in `tokens.json`: {"format": "scaling-tokens", "dtype":
"uint16", "vocab_size": V, "num_tokens": n, ...extra}. Both are written
atomically (temp name, then rename; the meta last), and the reader checks the
size against the meta, so a half-written pair is never read as valid.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np

FORMAT = "scaling-tokens"
_DTYPES = {"uint16": np.dtype("<u2"), "uint32": np.dtype("<u4")}


def meta_path(path: str | os.PathLike) -> Path:
    """The JSON meta beside a token file: data/train.bin -> data/train.json."""
    return Path(path).with_suffix(".json")


def dtype_for_vocab(vocab_size: int) -> np.dtype:
    return _DTYPES["uint16"] if vocab_size <= 2**16 else _DTYPES["uint32"]


def atomic_write_bytes(path: Path, write) -> None:
    """Call write(file) on a temp file beside `path`, fsync, then rename onto `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: Path, obj) -> None:
    atomic_write_bytes(path, lambda f: f.write((json.dumps(obj, indent=1, sort_keys=True) + "\n").encode()))


def write_token_file(path: str | os.PathLike, tokens, vocab_size: int, **meta) -> Path:
    """Write `tokens` (ids in [0, vocab_size)) as a memory-mappable token file; return its path.

    The dtype is uint16 when vocab_size <= 65536, else uint32. Extra keyword
    arguments go into the meta (e.g. tokenizer="bytes", bytes_per_token=1.0).
    """
    path = Path(path)
    if isinstance(vocab_size, bool) or not isinstance(vocab_size, (int, np.integer)) or not 1 <= vocab_size <= 2**32:
        raise ValueError(f"vocab_size must be an integer in [1, 2**32], got {vocab_size!r}")
    arr = np.asarray(tokens)
    if arr.ndim != 1 or not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"tokens must be a 1-D integer array, got shape {arr.shape} dtype {arr.dtype}")
    if arr.size:
        lo, hi = int(arr.min()), int(arr.max())
        if lo < 0 or hi >= vocab_size:
            bad = lo if lo < 0 else hi
            raise ValueError(f"token id {bad} is outside [0, vocab_size={vocab_size}) in the array written to {path}")
    dtype = dtype_for_vocab(int(vocab_size))
    data = arr.astype(dtype, copy=False)
    atomic_write_bytes(path, lambda f: f.write(memoryview(np.ascontiguousarray(data)).cast("B")))
    info = {**meta, "format": FORMAT, "dtype": dtype.name, "vocab_size": int(vocab_size), "num_tokens": int(arr.size)}
    write_json(meta_path(path), info)
    return path


def read_token_meta(path: str | os.PathLike) -> dict:
    path = Path(path)
    mpath = meta_path(path)
    if not path.is_file():
        raise FileNotFoundError(f"token file {path} does not exist")
    if not mpath.is_file():
        raise FileNotFoundError(f"token file {path} has no meta {mpath} (write token files with write_token_file)")
    try:
        meta = json.loads(mpath.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"token meta {mpath} is not valid JSON: {err}") from None
    for key in ("dtype", "vocab_size"):
        if key not in meta:
            raise ValueError(f"token meta {mpath} lacks {key!r}")
    if meta["dtype"] not in _DTYPES:
        raise ValueError(f"token meta {mpath} has dtype {meta['dtype']!r}; valid: {', '.join(_DTYPES)}")
    return meta


def read_token_file(path: str | os.PathLike, *, check_ids: bool = True) -> tuple[np.ndarray, dict]:
    """Memory-map a token file; return (read-only array, meta).

    Raises a clear error when the size disagrees with the meta, or (check_ids)
    when an id is >= vocab_size, naming the file, the id and the vocab.
    """
    path = Path(path)
    meta = read_token_meta(path)
    dtype = _DTYPES[meta["dtype"]]
    size = path.stat().st_size
    if size % dtype.itemsize:
        raise ValueError(f"token file {path} has {size} bytes, not a multiple of {dtype.name}'s {dtype.itemsize}")
    n = size // dtype.itemsize
    if "num_tokens" in meta and int(meta["num_tokens"]) != n:
        raise ValueError(f"token file {path} holds {n} tokens but its meta says {meta['num_tokens']} (partial write?)")
    tokens = np.memmap(path, dtype=dtype, mode="r", shape=(n,)) if n else np.zeros(0, dtype)
    tokens = np.asarray(tokens)  # plain ndarray view of the mapping: cheaper fancy indexing
    vocab = int(meta["vocab_size"])
    if check_ids and n:
        hi = int(tokens.max())
        if hi >= vocab:
            at = int(np.argmax(tokens >= vocab))
            raise ValueError(
                f"token file {path} holds id {int(tokens[at])} at index {at} (largest id {hi}), "
                f"but its vocab_size is {vocab}: ids must be < {vocab}"
            )
    return tokens, meta


__all__ = ["dtype_for_vocab", "meta_path", "read_token_file", "read_token_meta", "write_token_file"]
