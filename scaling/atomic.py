"""Atomic file writes: readers (and a rerun after a crash) see the old file or the new one,
never a part. Every writer of results, figures and fits goes through here."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, fsync: bool = False) -> Iterator[Path]:
    """A temporary path beside `path` to write to (by any library: savefig, to_csv, ...);
    it replaces `path` when the block succeeds and is removed when it fails. fsync: flush
    the data to disk before the rename (results on shared file systems that outlive a
    node crash)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        yield Path(tmp)
        if fsync:
            with open(tmp, "rb") as f:
                os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp's 0600 would hide results from the other users of a shared directory
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_text(path: str | os.PathLike, text: str, *, fsync: bool = False) -> Path:
    with atomic_path(path, fsync=fsync) as tmp, open(tmp, "w", encoding="utf-8", newline="") as f:
        f.write(text)
    return Path(path)


def write_json(path: str | os.PathLike, data: Any, **kw) -> Path:
    return write_text(path, json.dumps(data, indent=2, **kw) + "\n")
