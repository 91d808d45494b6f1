"""Files of results and run directories on a local disk or an object store, with the few
primitives a sweep needs to stay correct where rename and `flock` do not exist (object
stores) or may silently do nothing (`flock` on some NFS mounts).

`Storage.at(root)`: a local path (or file://) uses the standard library, exactly as a
local results directory always worked (no extra needed); any other URL (s3://, gs://,
...) goes through fsspec (`pip install 'scaling[s3]'` or `'scaling[gcs]'`; a missing one
is a one-line error naming the extra). Paths given to the methods are relative to root.

Primitives:
  put(path, data)     whole-object write: readers see the old object or the new one,
                      never a part (an object store's PUT is atomic; locally a temp file,
                      fsync and rename).
  create(path, data)  conditional create, True only for the one call that created the
                      object: S3 If-None-Match: * and GCS ifGenerationMatch=0 (fsspec's
                      mode="create"), locally O_CREAT|O_EXCL (atomic on local file
                      systems and on NFSv3 and later). `check_conditional_create` probes
                      a backend once; one that silently overwrites fails there with an
                      error, and the documented fallback is one worker per results
                      directory (claims are then not needed).
  append(path, text)  for objects with one writer (a run's metrics): a real append
                      locally, a rewrite of the object on an object store.
  read_bytes / read_text / exists / listdir / versions / delete.

`Lease` claims work with create() alone: see its docstring.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from scaling import atomic

_EXTRAS = {"s3": ("s3", "s3fs"), "s3a": ("s3", "s3fs"), "gs": ("gcs", "gcsfs"), "gcs": ("gcs", "gcsfs")}


def is_url(path: str | os.PathLike) -> bool:
    """True for a URL with a scheme other than file:// (an object store or remote FS)."""
    text = str(path)
    return "://" in text and not text.startswith("file://")


def require_local(path: str | os.PathLike, what: str) -> None:
    """Refuse a URL where only local paths work yet (rather than writing to a local
    directory literally named "s3:")."""
    if is_url(path):
        raise ValueError(
            f"{what}={str(path)!r}: object-store URLs are not supported here yet (results and run "
            "directories are written to local or NFS paths; `scaling fit` and `scaling.analysis` read URLs)"
        )


class Storage:
    """A directory tree; `Storage.at(root)` picks the local or the fsspec implementation."""

    root: str

    @staticmethod
    def at(root: str | os.PathLike) -> Storage:
        text = str(root)
        if text.startswith("file://"):
            text = text[len("file://") :]
        return FsspecStorage(text) if is_url(text) else LocalStorage(text)

    def url(self, path: str = "") -> str:
        """The full path or URL of `path` (relative to root)."""
        return self.root.rstrip("/") + ("/" + path.lstrip("/") if path else "")

    def read_text(self, path: str) -> str:
        return self.read_bytes(path).decode("utf-8")

    def read_json(self, path: str) -> Any:
        return json.loads(self.read_bytes(path))

    def put_json(self, path: str, data: Any) -> None:
        self.put(path, (json.dumps(data, indent=2, sort_keys=True) + "\n").encode("utf-8"))

    def check_conditional_create(self) -> None:
        """Raise RuntimeError when this backend's create() overwrites instead of failing
        (then two workers could both claim one run)."""
        probe = f".probe/{uuid.uuid4().hex}"
        try:
            first, second = self.create(probe, b"1"), self.create(probe, b"2")
        finally:
            with contextlib.suppress(FileNotFoundError, OSError):
                self.delete(probe)
        if not first or second:
            raise RuntimeError(
                f"{self.root}: this storage does not support conditional create (a second create of one "
                "object succeeded), so run claims are unsafe; run one worker per results directory"
            )

    # implemented by both subclasses
    def read_bytes(self, path: str) -> bytes: ...
    def exists(self, path: str) -> bool: ...
    def put(self, path: str, data: bytes) -> None: ...
    def create(self, path: str, data: bytes) -> bool: ...
    def append(self, path: str, text: str) -> None: ...
    def listdir(self, path: str = "") -> list[str]: ...
    def versions(self, pattern: str) -> dict[str, tuple]: ...
    def delete(self, path: str) -> None: ...


class LocalStorage(Storage):
    """The standard library on a local (or NFS-mounted) directory."""

    def __init__(self, root: str) -> None:
        self.root = str(Path(root))

    def _p(self, path: str) -> Path:
        return Path(self.root) / path

    def read_bytes(self, path: str) -> bytes:
        return self._p(path).read_bytes()

    def exists(self, path: str) -> bool:
        return self._p(path).exists()

    def put(self, path: str, data: bytes) -> None:
        with atomic.atomic_path(self._p(path), fsync=True) as tmp:
            tmp.write_bytes(data)

    def create(self, path: str, data: bytes) -> bool:
        p = self._p(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        return True

    def append(self, path: str, text: str) -> None:
        p = self._p(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        with p.open("a", encoding="utf-8") as f:
            f.write(text)

    def listdir(self, path: str = "") -> list[str]:
        p = self._p(path)
        return sorted(x.name for x in p.iterdir()) if p.is_dir() else []

    def versions(self, pattern: str) -> dict[str, tuple]:
        """{relative path: (size, mtime_ns)} of the files matching a glob pattern."""
        root = Path(self.root)
        out = {}
        for p in root.glob(pattern):
            with contextlib.suppress(FileNotFoundError):
                st = p.stat()
                out[p.relative_to(root).as_posix()] = (st.st_size, st.st_mtime_ns)
        return out

    def delete(self, path: str) -> None:
        self._p(path).unlink()


class FsspecStorage(Storage):
    """Any fsspec filesystem (s3fs, gcsfs, ...), addressed by URL."""

    def __init__(self, root: str) -> None:
        from scaling.extras import MissingExtraError

        scheme = root.split("://", 1)[0]
        extra, package = _EXTRAS.get(scheme, (scheme, f"fsspec's {scheme} filesystem"))
        try:
            import fsspec

            self.fs, path = fsspec.core.url_to_fs(root)
        except ImportError:
            raise MissingExtraError(
                f"{root}: {scheme}:// paths need {package}, which is not installed: pip install 'scaling[{extra}]'"
            ) from None
        self.root = root.rstrip("/")
        self._base = path.rstrip("/")

    def _p(self, path: str) -> str:
        return self._base + ("/" + path.lstrip("/") if path else "")

    def read_bytes(self, path: str) -> bytes:
        return self.fs.cat_file(self._p(path))

    def exists(self, path: str) -> bool:
        return self.fs.exists(self._p(path))

    def put(self, path: str, data: bytes) -> None:
        self.fs.pipe_file(self._p(path), data)

    def create(self, path: str, data: bytes) -> bool:
        try:
            self.fs.pipe_file(self._p(path), data, mode="create")
        except FileExistsError:
            return False
        return True

    def append(self, path: str, text: str) -> None:
        old = self.read_bytes(path) if self.exists(path) else b""
        self.put(path, old + text.encode("utf-8"))

    def listdir(self, path: str = "") -> list[str]:
        p = self._p(path)
        try:
            entries = self.fs.ls(p, detail=False, refresh=True)
        except FileNotFoundError:
            return []
        return sorted(e.rstrip("/").rsplit("/", 1)[-1] for e in entries if e.rstrip("/") != p)

    def versions(self, pattern: str) -> dict[str, tuple]:
        """{relative path: (size, ETag or mtime)} of the objects matching a glob pattern
        (one listing request per directory level, no request per object)."""
        self.fs.invalidate_cache()
        found = self.fs.glob(self._p(pattern), detail=True)
        n = len(self._base) + 1
        return {
            p[n:]: (info.get("size"), info.get("ETag") or info.get("etag") or info.get("mtime") or info.get("updated"))
            for p, info in found.items()
        }

    def delete(self, path: str) -> None:
        self.fs.rm_file(self._p(path))


class Lease:
    """A claim on a run that any worker can take over once its holder stops renewing it
    (a killed worker), built on conditional create alone.

    Claims are objects `PREFIX/claims/<n>.json` (n = 1, 2, ...) holding the holder's
    name and its last heartbeat time. The newest claim decides: free when it was
    released or its heartbeat is older than `lease_s`; then a worker claims by creating
    claim n+1, and of several trying, exactly one create succeeds. The holder renews its
    heartbeat (rewriting its own claim object) every lease_s / 4 from a thread, and
    releases by marking it released. Heartbeats are wall-clock times, so the workers'
    clocks must agree to well within lease_s (NTP does; the default lease is 10 minutes).
    """

    def __init__(self, storage: Storage, prefix: str, *, lease_s: float = 600.0, holder: str | None = None) -> None:
        self.storage, self.prefix, self.lease_s = storage, prefix.rstrip("/"), float(lease_s)
        self.holder = holder or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.claim_path: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _claims(self) -> list[int]:
        names = self.storage.listdir(f"{self.prefix}/claims")
        return sorted(int(n[:-5]) for n in names if n.endswith(".json") and n[:-5].isdigit())

    def current(self) -> dict | None:
        """The newest claim's record (with its number as "n"), or None if never claimed."""
        claims = self._claims()
        if not claims:
            return None
        n = claims[-1]
        return {**self.storage.read_json(f"{self.prefix}/claims/{n:08d}.json"), "n": n}

    def is_held(self, now: float | None = None) -> bool:
        """True while someone holds a live claim."""
        rec = self.current()
        now = time.time() if now is None else now
        return rec is not None and not rec.get("released") and now - rec["heartbeat"] < self.lease_s

    def acquire(self) -> bool:
        """Claim it; False when another worker holds a live claim or won the race."""
        rec = self.current()
        if rec is not None and not rec.get("released") and time.time() - rec["heartbeat"] < self.lease_s:
            return False
        n = (rec["n"] if rec else 0) + 1
        path = f"{self.prefix}/claims/{n:08d}.json"
        if not self.storage.create(path, self._record()):
            return False
        self.claim_path = path
        self._stop.clear()
        self._thread = threading.Thread(target=self._renew, name=f"lease {self.prefix}", daemon=True)
        self._thread.start()
        return True

    def _record(self, **extra) -> bytes:
        return json.dumps({"holder": self.holder, "heartbeat": time.time(), **extra}).encode("utf-8")

    def _renew(self) -> None:
        while not self._stop.wait(self.lease_s / 4):
            with contextlib.suppress(Exception):  # a missed heartbeat only shortens the lease
                self.storage.put(self.claim_path, self._record())

    def release(self) -> None:
        if self.claim_path is None:
            return
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.storage.put(self.claim_path, self._record(released=True))
        self.claim_path = None

    @contextlib.contextmanager
    def held(self) -> Iterator[bool]:
        """`with lease.held() as ok:` acquire (ok False if not), release on exit."""
        ok = self.acquire()
        try:
            yield ok
        finally:
            if ok:
                self.release()
