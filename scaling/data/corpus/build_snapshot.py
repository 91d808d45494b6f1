"""Rebuild the embedded corpus snapshot from a CPython installation's standard library.

    python scaling/data/corpus/build_snapshot.py /path/to/lib/python3.11

Writes cpython-lib.tar.xz (a deterministic tar: sorted members, mtime 0, owner 0, mode
0644; xz preset 9e) and cpython-lib.json (the provenance: Python version, the file
list with each file's sha256, the archive's sha256 and the content hash the data
pipeline reports). The committed snapshot was built from CPython 3.11.7's Lib/; this
script is how it was made, not something a user runs.
"""

from __future__ import annotations

import hashlib
import io
import json
import lzma
import sys
import tarfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
# Top-level modules plus a few packages: about 7 MB of Python source, none of it tests.
PACKAGES = ("asyncio", "collections", "concurrent", "email", "http", "importlib", "json", "logging",
            "multiprocessing", "urllib")  # fmt: skip


def select(root: Path) -> list[str]:
    names = [p.name for p in root.glob("*.py")]
    for pkg in PACKAGES:
        names += [p.relative_to(root).as_posix() for p in (root / pkg).rglob("*.py") if "test" not in p.parts]
    return sorted(names)


def main(root: str) -> None:
    root = Path(root)
    names = select(root)
    buf = io.BytesIO()
    files = []
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name in names:
            data = (root / name).read_bytes()
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode, info.uid, info.gid = len(data), 0, 0o644, 0, 0
            tar.addfile(info, io.BytesIO(data))
            files.append({"name": name, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()})
    packed = lzma.compress(buf.getvalue(), preset=9 | lzma.PRESET_EXTREME)
    (HERE / "cpython-lib.tar.xz").write_bytes(packed)
    from scaling.data.sources import snapshot_content_hash

    manifest = {
        "description": "A subset of the CPython standard library's Python source (Lib/), "
        "the default corpus of scaling (source = 'embedded').",
        "license": "PSF-2.0 (Python Software Foundation License Version 2; see LICENSE in this directory)",
        "upstream": "https://github.com/python/cpython/tree/v" + ".".join(map(str, sys.version_info[:3])) + "/Lib",
        "python": ".".join(map(str, sys.version_info[:3])),
        "selection": f"Lib/*.py and the packages {', '.join(PACKAGES)} without their test directories",
        "archive": "cpython-lib.tar.xz",
        "archive_sha256": hashlib.sha256(packed).hexdigest(),
        "content_sha256": snapshot_content_hash([(f["name"], (root / f["name"]).read_bytes()) for f in files]),
        "file_count": len(files),
        "bytes": sum(f["bytes"] for f in files),
        "files": files,
    }
    (HERE / "cpython-lib.json").write_text(json.dumps(manifest, indent=1) + "\n")
    print(f"{len(files)} files, {manifest['bytes'] / 1e6:.2f} MB -> {len(packed) / 1e6:.2f} MB xz")


if __name__ == "__main__":
    main(sys.argv[1])
