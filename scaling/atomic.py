"""Atomic file writes: readers (and a rerun after a crash) see the old file or the new one,
never a part. Every writer of results, figures and fits goes through here.

A temporary file is named `.<name>.<host>.<pid>.<random>.tmp` beside its target, so that
`clean_stale_temps` can tell an orphan (its writer was killed: same host, process gone)
from a file another live process is still writing. Files get the permissions the user's
umask gives a new file (0666 & ~umask), not mkstemp's private 0600.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

TEMP_SUFFIX = ".tmp"
_HOST = re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname())[:40] or "host"
# .<target name>.<host>.<pid>.<mkstemp's random part>.tmp
_TEMP = re.compile(r"^\.(?P<name>.+)\.(?P<host>[A-Za-z0-9-]+)\.(?P<pid>\d+)\.[^.]+\.tmp$")
LEGACY_TEMP_AGE_S = 24 * 3600  # temp names without a pid (older versions): removed once this old


def umask() -> int:
    """The process umask, read without changing it where the OS allows (Linux)."""
    with contextlib.suppress(OSError, ValueError):
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    old = os.umask(0o022)  # elsewhere: set and restore (not thread-safe, but brief)
    os.umask(old)
    return old


def file_mode() -> int:
    """The mode a new file gets under the current umask."""
    return 0o666 & ~umask()


def temp_prefix(path: Path) -> str:
    """The temporary-name prefix for a file written in place of `path` by this process."""
    return f".{path.name}.{_HOST}.{os.getpid()}."


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, fsync: bool = False) -> Iterator[Path]:
    """A temporary path beside `path` to write to (by any library: savefig, to_csv, ...);
    it replaces `path` when the block succeeds and is removed when it fails. fsync: flush
    the data to disk before the rename (results on shared file systems that outlive a
    node crash)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=temp_prefix(path), suffix=TEMP_SUFFIX)
    os.close(fd)
    try:
        yield Path(tmp)
        if fsync:
            with open(tmp, "rb") as f:
                os.fsync(f.fileno())
        os.chmod(tmp, file_mode())  # mkstemp's 0600 would hide results from the other users of a shared directory
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


def process_alive(pid: int) -> bool:
    """Whether a process of this id runs on this machine."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def is_stale_temp(path: Path, *, now: float | None = None) -> bool:
    """True for a temporary file of `atomic_path` whose writer is gone: written on this host
    by a process that no longer exists (another host's temp files are left alone: its
    process table cannot be seen from here), or an old-style name without a pid older than
    LEGACY_TEMP_AGE_S."""
    name = path.name
    if not (name.startswith(".") and name.endswith(TEMP_SUFFIX)):
        return False
    m = _TEMP.match(name)
    if m:
        return m["host"] == _HOST and int(m["pid"]) != os.getpid() and not process_alive(int(m["pid"]))
    try:
        age = (now or time.time()) - path.stat().st_mtime
    except OSError:
        return False
    return bool(re.match(r"^\.[^/]+\.[A-Za-z0-9_]{6,}\.tmp$", name)) and age > LEGACY_TEMP_AGE_S


def clean_stale_temps(directory: str | os.PathLike) -> list[Path]:
    """Remove the orphaned temporary files directly in `directory` (see `is_stale_temp`);
    returns what was removed. Safe while other processes write there: a live writer's
    file is never touched."""
    removed = []
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return removed
    for entry in entries:
        if entry.name.endswith(TEMP_SUFFIX) and entry.is_file(follow_symlinks=False):
            path = Path(entry.path)
            if is_stale_temp(path):
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
                    removed.append(path)
    return removed
