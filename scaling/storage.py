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
  read_bytes / read_text / exists / listdir / versions / delete, and upload /
  download of whole local files.

`Lease` claims work with create() alone: see its docstring. `Mirror` keeps a local
scratch directory (where Orbax, the metrics log and the trackers write as on any disk)
and its copy under a storage prefix in step: see its docstring.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
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


class Storage:
    """A directory tree; `Storage.at(root)` picks the local or the fsspec implementation."""

    root: str
    atomic_create = True  # False on a backend where create() had to fall back to check-then-write

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
        if not first or second or not self.atomic_create:
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
    def upload(self, local: str | os.PathLike, path: str) -> None: ...
    def download(self, path: str, local: str | os.PathLike) -> None: ...

    def read_many(self, paths: list[str]) -> dict[str, bytes]:
        """{path: bytes} of those of `paths` that exist; concurrently where the backend can
        (a results table is made from a few small objects per run)."""
        out = {}
        for path in paths:
            with contextlib.suppress(FileNotFoundError):
                out[path] = self.read_bytes(path)
        return out

    def upload_many(self, pairs: list[tuple[Path, str]]) -> None:
        """upload() of each (local file, path); concurrently where the backend can."""
        for local, path in pairs:
            self.upload(local, path)

    def download_many(self, pairs: list[tuple[str, Path]]) -> None:
        """download() of each (path, local file); concurrently where the backend can."""
        for path, local in pairs:
            self.download(path, local)

    def put_text(self, path: str, text: str) -> None:
        self.put(path, text.encode("utf-8"))


def split_location(location: str | os.PathLike) -> tuple[Storage, str]:
    """(the Storage of a file's directory, the file's name) for a local path or a URL."""
    text = str(location).rstrip("/")
    if is_url(text):
        parent, name = text.rsplit("/", 1)
        return Storage.at(parent), name
    p = Path(text)
    return Storage.at(p.parent), p.name


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

    def upload(self, local: str | os.PathLike, path: str) -> None:
        with atomic.atomic_path(self._p(path), fsync=True) as tmp:
            shutil.copyfile(local, tmp)

    def download(self, path: str, local: str | os.PathLike) -> None:
        Path(local).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(self._p(path), local)


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
        except TypeError:  # a filesystem whose pipe_file has no mode: check, then write (not atomic)
            self.atomic_create = False
            if self.exists(path):
                return False
            self.put(path, data)
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

    def upload(self, local: str | os.PathLike, path: str) -> None:
        self.fs.put_file(str(local), self._p(path))  # one PUT (multipart for large files): atomic

    def download(self, path: str, local: str | os.PathLike) -> None:
        Path(local).parent.mkdir(parents=True, exist_ok=True)
        self.fs.get_file(self._p(path), str(local))

    def read_many(self, paths: list[str]) -> dict[str, bytes]:
        if not paths:
            return {}
        full = {self.fs._strip_protocol(self._p(p)): p for p in paths}
        got = self.fs.cat(list(full), on_error="omit")  # one call: concurrent requests on s3fs / gcsfs
        return {full[self.fs._strip_protocol(k)]: v for k, v in got.items() if self.fs._strip_protocol(k) in full}

    def upload_many(self, pairs: list[tuple[Path, str]]) -> None:
        if pairs:  # one call: an async filesystem (s3fs, gcsfs) sends the requests concurrently
            self.fs.put([str(local) for local, _ in pairs], [self._p(path) for _, path in pairs])

    def download_many(self, pairs: list[tuple[str, Path]]) -> None:
        for _, local in pairs:
            Path(local).parent.mkdir(parents=True, exist_ok=True)
        if pairs:
            self.fs.get([self._p(path) for path, _ in pairs], [str(local) for _, local in pairs])


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

    A claim also names its host and process (pid and start time): on the same host, a
    claim whose process is gone (or whose pid now belongs to a newer process) is free at once (a worker killed with SIGKILL and rerun on its machine resumes
    immediately, as with the `flock` this replaces); another host's claim is trusted
    until its lease runs out.
    """

    def __init__(self, storage: Storage, prefix: str, *, lease_s: float = 600.0, holder: str | None = None) -> None:
        self.storage, self.prefix, self.lease_s = storage, prefix.rstrip("/"), float(lease_s)
        self.holder = holder or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.claim_path: str | None = None
        self.lost = False  # set when another worker claimed it after our lease ran out (we were paused)
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

    def live(self, rec: dict | None, now: float | None = None) -> bool:
        """Whether a claim record is held: not released, renewed within lease_s, and (on
        this host) its process still running."""
        if rec is None or rec.get("released"):
            return False
        now = time.time() if now is None else now
        if now - rec["heartbeat"] >= self.lease_s:
            return False
        if rec.get("host") == socket.gethostname() and isinstance(rec.get("pid"), int):
            pid = rec["pid"]
            if not atomic.process_alive(pid):
                return False
            # the pid may have been reused (a restarted container numbers its processes the same way)
            return rec.get("pid_start") is None or process_start(pid) in (None, rec["pid_start"])
        return True

    def is_held(self, now: float | None = None) -> bool:
        """True while someone holds a live claim."""
        return self.live(self.current(), now)

    def acquire(self) -> bool:
        """Claim it; False when another worker holds a live claim or won the race."""
        rec = self.current()
        if self.live(rec):
            return False
        n = (rec["n"] if rec else 0) + 1
        path = f"{self.prefix}/claims/{n:08d}.json"
        if not self.storage.create(path, self._record()):
            return False
        self.claim_path, self.lost = path, False
        self._stop.clear()
        self._thread = threading.Thread(target=self._renew, name=f"lease {self.prefix}", daemon=True)
        self._thread.start()
        return True

    def _record(self, **extra) -> bytes:
        record = {"holder": self.holder, "host": socket.gethostname(), "pid": os.getpid(),
                  "pid_start": process_start(os.getpid()), "heartbeat": time.time()}  # fmt: skip
        return json.dumps({**record, **extra}).encode("utf-8")

    def _renew(self) -> None:
        mine = int(self.claim_path.rsplit("/", 1)[-1][:-5])
        while not self._stop.wait(self.lease_s / 4):
            with contextlib.suppress(Exception):  # a missed heartbeat only shortens the lease
                newest = self.current()
                if newest is not None and newest["n"] != mine:  # our lease ran out and was taken over
                    self.lost = True
                    return
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
    def held(self) -> Iterator[Lease | None]:
        """`with lease.held() as held:` acquire (held: this Lease, or None when another
        worker holds it), release on exit."""
        ok = self.acquire()
        try:
            yield self if ok else None
        finally:
            if ok:
                self.release()


def process_start(pid: int) -> str | None:
    """When a process started (clock ticks since boot, from /proc on Linux), so that a
    claim of a dead process is not mistaken for one of a new process given the same pid;
    None where it cannot be read."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            return f.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


class Mirror:
    """A local scratch directory kept in step with its copy under `prefix` of a Storage:
    how a run directory lives on an object store. Libraries that need a file system
    (Orbax, the metrics log, TensorBoard's writer) write to the scratch directory; `push`
    copies what changed to the store, `pull` makes the scratch directory the store's copy
    (a preempted run resumes on another host).

    Consistency without renames: the store's copy is described by one manifest object,
    PREFIX/mirror.json, naming every file pushed, written last by each push. `pull` reads
    only what the manifest names, so a push killed half-way leaves the previous, complete
    state readable. Checkpoint step directories (`checkpoints/<step>/`, Orbax's name for a
    complete step) are pushed once, whole, and listed only after all their files are up;
    Orbax's temporary directories (a step still being written) are never pushed; a step
    the scratch directory no longer holds (Orbax's `keep`) is unlisted, then deleted. Other
    files are re-pushed when their size or mtime changed, before any new checkpoint, so
    the store's metrics always reach at least its newest checkpoint (rows after it are
    dropped on resume, as on a local disk). Files named in `last` (the trainer's
    result.json, which says a run is finished) are pushed after the checkpoints, with their
    SHA-256 in the manifest; `pull` drops one whose content is not the manifest's (it came
    from a push that did not finish), so a run is never reported finished before its final
    checkpoint is in the store.
    """

    MANIFEST = "mirror.json"
    CHECKPOINTS = "checkpoints"

    def __init__(self, storage: Storage, prefix: str, local: str | os.PathLike, *, last: tuple[str, ...] = ()) -> None:
        self.storage, self.prefix, self.local, self.last = storage, prefix.strip("/"), Path(local), set(last)
        self.pushed: dict[str, list] = {}  # relative path -> [size, mtime_ns(, sha256)] of the copy pushed or pulled

    def _key(self, rel: str) -> str:
        return f"{self.prefix}/{rel}" if self.prefix else rel

    def remote_files(self) -> dict[str, list]:
        """The manifest's files ({} when nothing was pushed yet)."""
        if not self.storage.exists(self._key(self.MANIFEST)):
            return {}
        return dict(self.storage.read_json(self._key(self.MANIFEST)).get("files", {}))

    def pull(self, only: str = "") -> int:
        """Replace the scratch directory with the store's copy (only the files under
        `only`, e.g. one checkpoint step, when given); returns the files fetched."""
        files = {rel: v for rel, v in self.remote_files().items() if rel.startswith(only)}
        if self.local.exists():
            shutil.rmtree(self.local)
        self.local.mkdir(parents=True)
        self.storage.download_many([(self._key(rel), self.local / rel) for rel in sorted(files)])
        for rel in self.last & set(files):
            if _sha256_file(self.local / rel) != files[rel][-1]:  # overwritten by a push that did not finish
                (self.local / rel).unlink()
                del files[rel]
        self.pushed = {rel: self._stat(self.local / rel) for rel in files}
        return len(files)

    def _stat(self, path: Path) -> list:
        st = path.stat()
        rel = path.relative_to(self.local).as_posix()
        return [st.st_size, st.st_mtime_ns] + ([_sha256_file(path)] if rel in self.last else [])

    def _local_files(self) -> tuple[dict[str, list], dict[str, list[str]]]:
        """(plain files {rel: stat}, complete checkpoint steps {"checkpoints/<step>/": [rel, ...]})."""
        plain: dict[str, list] = {}
        steps: dict[str, list[str]] = {}
        if not self.local.is_dir():
            return plain, steps
        for p in sorted(self.local.rglob("*")):
            if not p.is_file() or p.name.endswith(atomic.TEMP_SUFFIX):
                continue
            rel = p.relative_to(self.local).as_posix()
            parts = rel.split("/")
            if parts[0] == self.CHECKPOINTS and len(parts) > 2:
                if parts[1].isdigit():  # a complete step (Orbax renames it to the bare number when done)
                    steps.setdefault(f"{parts[0]}/{parts[1]}/", []).append(rel)
                continue  # temporary and set-aside step directories stay local
            with contextlib.suppress(FileNotFoundError):
                plain[rel] = self._stat(p)
        return plain, steps

    def new_checkpoint(self) -> bool:
        """Whether the scratch directory holds a complete checkpoint step not yet pushed
        (one directory listing: the trainer asks at every host sync)."""
        try:
            names = os.listdir(self.local / self.CHECKPOINTS)
        except FileNotFoundError:
            return False
        pushed = self._pushed_steps()
        return any(n.isdigit() and f"{self.CHECKPOINTS}/{n}/" not in pushed for n in names)

    def _pushed_steps(self) -> set[str]:
        return {"/".join(rel.split("/")[:2]) + "/" for rel in self.pushed if rel.startswith(self.CHECKPOINTS + "/")}

    def push(self) -> int:
        """Copy what changed to the store (see the class docstring); returns files uploaded."""
        plain, steps = self._local_files()
        changed = [rel for rel, stat in plain.items() if self.pushed.get(rel) != stat]
        first = [rel for rel in changed if rel not in self.last]
        self.storage.upload_many([(self.local / rel, self._key(rel)) for rel in first])  # metrics before checkpoints
        self.pushed.update({rel: plain[rel] for rel in first})
        done = self._pushed_steps()
        order = sorted(steps, key=lambda d: int(d.split("/")[1]))
        new = [rel for step in order if step not in done for rel in steps[step]]
        self.storage.upload_many([(self.local / rel, self._key(rel)) for rel in new])
        self.pushed.update({rel: self._stat(self.local / rel) for rel in new})
        final = [rel for rel in changed if rel in self.last]
        self.storage.upload_many([(self.local / rel, self._key(rel)) for rel in final])  # "finished" comes last
        self.pushed.update({rel: plain[rel] for rel in final})
        uploaded = len(changed) + len(new)
        gone = [rel for rel in self.pushed if rel not in plain and not any(rel.startswith(s) for s in steps)]
        for rel in gone:
            del self.pushed[rel]
        if uploaded or gone or not self.storage.exists(self._key(self.MANIFEST)):
            self.storage.put_json(self._key(self.MANIFEST), {"files": self.pushed})
        for rel in gone:  # unlisted first: a reader never looks for a deleted object
            with contextlib.suppress(FileNotFoundError):
                self.storage.delete(self._key(rel))
        return uploaded

    def sync(self) -> int:
        """`push` when a new checkpoint step is complete (the trainer calls this at its host
        sync points, so the store follows each checkpoint); else nothing."""
        return self.push() if self.new_checkpoint() else 0


def _sha256_file(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def scratch_dir(url: str) -> Path:
    """The local scratch directory of a run directory at `url`: under $SCALING_SCRATCH
    (default: the system's temporary directory), named by a hash of the URL."""
    import hashlib
    import tempfile

    base = Path(os.environ.get("SCALING_SCRATCH") or Path(tempfile.gettempdir()) / "scaling-scratch")
    tail = "".join(c if c.isalnum() or c in "-_." else "-" for c in url.rstrip("/").rsplit("/", 1)[-1])[:40]
    return base / f"{hashlib.sha256(url.encode()).hexdigest()[:16]}-{tail}"
