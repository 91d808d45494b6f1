"""Corpus sources: which documents exist, and which split each one belongs to.

The default source, "embedded", is a fixed snapshot of CPython's standard-library source
shipped in scaling/data/corpus/ (see its README): the same bytes under every Python, so a
run's data, and with it its losses, do not depend on the interpreter that trains it.
"stdlib" reads the running interpreter's own Lib/ instead, which changes between patch
releases.

A source gives a cheap `fingerprint` (file names, sizes and mtimes, or a
`datasets` fingerprint: used only to find a cached build without reading the
corpus) and `load()`, which reads the documents and splits them. Pre-tokenized
token files skip this module's documents entirely (see build.py).
"""

from __future__ import annotations

import glob
import hashlib
import io
import json
import lzma
import os
import sys
import sysconfig
import tarfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from scaling.data.config import DataConfig

Doc = tuple[str, bytes]  # (stable name, content)
_EXCLUDED_DIRS = ("site-packages", "dist-packages")


@dataclass
class Split:
    """Documents of each split, in reading order, and how they were split."""

    train: list[Doc]
    validation: list[Doc]
    method: str  # "hash", "tail" (the stream's end, for few documents) or "explicit"
    file_count: int  # source documents (files, rows); a tail split may cut one in two


@dataclass
class Source:
    description: dict  # JSON-able, for the manifest (machine-local details allowed)
    fingerprint: dict  # JSON-able, cheap; equal fingerprints mean an unchanged corpus
    load: Callable[[], Split] = field(repr=False)


# ---------------------------------------------------------------- splitting


def hash_fraction(name: str) -> float:
    """A stable number in [0, 1) from a name: the first 8 bytes of its sha1."""
    return int.from_bytes(hashlib.sha1(name.encode("utf-8")).digest()[:8], "big") / 2.0**64


def split_documents(docs: list[Doc], fraction: float, key: Callable[[Doc], str] = lambda d: d[0]) -> Split:
    """Validation = documents whose key hashes below `fraction` (stable across machines and orderings).

    When that leaves a split empty (a corpus of one or a few documents), the
    document stream is cut instead: its last `fraction` of bytes is validation.
    """
    in_validation = [hash_fraction(key(d)) < fraction for d in docs]
    train = [d for d, v in zip(docs, in_validation) if not v]
    validation = [d for d, v in zip(docs, in_validation) if v]
    if train and validation:
        return Split(train, validation, "hash", len(docs))
    return _split_tail(docs, fraction)


def _split_tail(docs: list[Doc], fraction: float) -> Split:
    total = sum(len(d) for _, d in docs)
    cut = int(round(total * (1.0 - fraction)))
    train: list[Doc] = []
    validation: list[Doc] = []
    seen = 0
    for name, data in docs:
        if seen + len(data) <= cut:
            train.append((name, data))
        elif seen >= cut:
            validation.append((name, data))
        else:  # the document that straddles the cut is split in two at the cut
            k = cut - seen
            train.append((f"{name}[:{k}]", data[:k]))
            validation.append((f"{name}[{k}:]", data[k:]))
        seen += len(data)
    return Split(train, validation, "tail", len(docs))


# ---------------------------------------------------------------- files


def stdlib_root() -> Path:
    return Path(sysconfig.get_paths()["stdlib"])


def list_python_files(root: Path) -> list[str]:
    """Relative posix paths of every *.py under root, skipping site-/dist-packages, sorted."""
    out: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in _EXCLUDED_DIRS]
        for f in filenames:
            if f.endswith(".py"):
                out.append(Path(dirpath, f).relative_to(root).as_posix())
    return sorted(out)


def expand_paths(patterns: tuple[str, ...], field_name: str = "paths") -> list[Path]:
    """Files named by `patterns` (files, directories (recursive), or globs), deduplicated, sorted."""
    files: set[Path] = set()
    for pat in patterns:
        p = Path(os.path.expanduser(pat))
        if any(c in pat for c in "*?["):
            matched = [Path(m) for m in glob.glob(os.path.expanduser(pat), recursive=True)]
            if not matched:
                raise FileNotFoundError(f"DataConfig.{field_name}: the glob {pat!r} matches no file")
            for m in matched:
                files.update(_files_under(m))
        elif p.is_dir():
            found = _files_under(p)
            if not found:
                raise ValueError(f"DataConfig.{field_name}: the directory {pat!r} holds no file: the corpus is empty")
            files.update(found)
        elif p.is_file():
            files.add(p)
        else:
            raise FileNotFoundError(f"DataConfig.{field_name}: {pat!r} does not exist")
    return sorted(f.resolve() for f in files)


def _files_under(p: Path) -> list[Path]:
    if p.is_file():
        return [p]
    out = []
    for dirpath, dirnames, filenames in os.walk(p):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        out.extend(Path(dirpath, f) for f in filenames if not f.startswith("."))
    return out


def _stat_fingerprint(root: Path, names: list[str]) -> list:
    rows = []
    for n in names:
        st = (root / n).stat()
        rows.append([n, st.st_size, st.st_mtime_ns])
    return rows


def _read(root: Path, names: list[str]) -> list[Doc]:
    return [(n, (root / n).read_bytes()) for n in names]


def _common_root(files: list[Path]) -> Path:
    return Path(os.path.commonpath([str(f.parent) for f in files]))


def stdlib_source(cfg: DataConfig, root: Path | None = None) -> Source:
    root = Path(root) if root is not None else stdlib_root()
    names = list_python_files(root)
    if not names:
        raise ValueError(f"source='stdlib': no *.py files under {root}: the corpus is empty")
    return Source(
        description={
            "root": str(root),
            "python": ".".join(map(str, sys.version_info[:3])),
            "implementation": sys.implementation.name,
        },
        fingerprint={"root": str(root), "files": _stat_fingerprint(root, names)},
        load=lambda: split_documents(_read(root, names), cfg.validation_fraction),
    )


# ---------------------------------------------------------------- the embedded snapshot

SNAPSHOT_DIR = Path(__file__).resolve().parent / "corpus"
SNAPSHOT_MANIFEST = SNAPSHOT_DIR / "cpython-lib.json"


def snapshot_content_hash(docs: list[Doc]) -> str:
    """sha256 over every (name, length, content) in order: the snapshot's identity."""
    h = hashlib.sha256()
    for name, data in docs:
        h.update(f"{name}\0{len(data)}\0".encode())
        h.update(data)
    return h.hexdigest()


def snapshot_manifest() -> dict:
    """The committed provenance of the embedded corpus (version, file list, hashes)."""
    return json.loads(SNAPSHOT_MANIFEST.read_text())


def read_snapshot() -> list[Doc]:
    """The embedded corpus's documents in archive order, checked against its manifest
    (a changed or damaged archive is an error, never silently different data)."""
    manifest = snapshot_manifest()
    archive = SNAPSHOT_DIR / manifest["archive"]
    packed = archive.read_bytes()
    digest = hashlib.sha256(packed).hexdigest()
    if digest != manifest["archive_sha256"]:
        raise ValueError(
            f"the embedded corpus {archive} has sha256 {digest}, not the {manifest['archive_sha256']} "
            f"its manifest {SNAPSHOT_MANIFEST.name} records: the file is damaged or was replaced"
        )
    docs: list[Doc] = []
    with tarfile.open(fileobj=io.BytesIO(lzma.decompress(packed)), mode="r:") as tar:
        for member in tar:
            if member.isfile():
                docs.append((member.name, tar.extractfile(member).read()))
    return docs


def embedded_source(cfg: DataConfig) -> Source:
    manifest = snapshot_manifest()
    return Source(
        description={
            "snapshot": manifest["archive"],
            "python": manifest["python"],
            "content_sha256": manifest["content_sha256"],
        },
        fingerprint={"archive_sha256": manifest["archive_sha256"]},
        load=lambda: split_documents(read_snapshot(), cfg.validation_fraction),
    )


def text_source(cfg: DataConfig) -> Source:
    train_files = expand_paths(cfg.paths, "paths")
    val_files = expand_paths(cfg.validation_paths, "validation_paths") if cfg.validation_paths else []
    overlap = set(train_files) & set(val_files)
    if overlap:
        raise ValueError(f"files in both paths and validation_paths: {sorted(map(str, overlap))[:5]}")
    root = _common_root(train_files + val_files)
    train_names = [f.relative_to(root).as_posix() for f in train_files]
    val_names = [f.relative_to(root).as_posix() for f in val_files]

    def load() -> Split:
        train = _read(root, train_names)
        if sum(len(d) for _, d in train) == 0:
            raise ValueError(f"the corpus is empty: every file named by DataConfig.paths={list(cfg.paths)} is empty")
        if val_names:
            return Split(train, _read(root, val_names), "explicit", len(train_names) + len(val_names))
        return split_documents(train, cfg.validation_fraction)

    return Source(
        description={"root": str(root), "paths": list(cfg.paths), "validation_paths": list(cfg.validation_paths)},
        fingerprint={
            "root": str(root),
            "train": _stat_fingerprint(root, train_names),
            "validation": _stat_fingerprint(root, val_names),
        },
        load=load,
    )


# ---------------------------------------------------------------- Hugging Face datasets


def _require_datasets():
    try:
        import datasets
    except ImportError:
        raise ImportError(
            "source='hf' needs the Hugging Face `datasets` package: pip install 'scaling[hf]' (or datasets>=3.0)"
        ) from None
    return datasets


def _load_hf(cfg: DataConfig, split: str):
    datasets = _require_datasets()
    path = Path(os.path.expanduser(cfg.hf_dataset))
    saved = path.is_dir() and any((path / f).exists() for f in ("state.json", "dataset_dict.json"))
    if saved:
        ds = datasets.load_from_disk(str(path))
        if isinstance(ds, datasets.DatasetDict):
            if split not in ds:
                raise ValueError(f"hf dataset {cfg.hf_dataset!r} has no split {split!r}; its splits: {', '.join(ds)}")
            ds = ds[split]
    else:
        ds = datasets.load_dataset(cfg.hf_dataset, cfg.hf_config, split=split, data_files=list(cfg.paths) or None)
    if cfg.text_field not in ds.column_names:
        raise ValueError(
            f"hf dataset {cfg.hf_dataset!r} (split {split!r}) has no column text_field={cfg.text_field!r}; "
            f"its columns: {', '.join(ds.column_names)}"
        )
    return ds


def _hf_docs(ds, cfg: DataConfig, split: str) -> list[Doc]:
    docs: list[Doc] = []
    for i, text in enumerate(ds[cfg.text_field]):
        if not isinstance(text, str):
            raise ValueError(
                f"hf dataset {cfg.hf_dataset!r} (split {split!r}) row {i}: text_field {cfg.text_field!r} "
                f"holds {type(text).__name__}, not str"
            )
        docs.append((f"{split}#{i}", text.encode("utf-8")))
    return docs


def hf_source(cfg: DataConfig) -> Source:
    train_ds = _load_hf(cfg, cfg.hf_split)
    val_ds = _load_hf(cfg, cfg.hf_validation_split) if cfg.hf_validation_split else None

    def load() -> Split:
        train = _hf_docs(train_ds, cfg, cfg.hf_split)
        if not any(d for _, d in train):
            raise ValueError(f"the corpus is empty: hf dataset {cfg.hf_dataset!r} split {cfg.hf_split!r} has no text")
        if val_ds is not None:
            validation = _hf_docs(val_ds, cfg, cfg.hf_validation_split)
            return Split(train, validation, "explicit", len(train) + len(validation))
        # Split by content, so duplicates land together and reordering the dataset changes nothing.
        return split_documents(train, cfg.validation_fraction, key=lambda d: hashlib.sha1(d[1]).hexdigest())

    keys = ("hf_dataset", "hf_config", "hf_split", "hf_validation_split", "text_field", "paths")
    return Source(
        description={k: getattr(cfg, k) for k in keys} | {"num_rows": train_ds.num_rows},
        fingerprint={
            "args": {k: getattr(cfg, k) for k in keys},
            "train": train_ds._fingerprint,
            "validation": None if val_ds is None else val_ds._fingerprint,
        },
        load=load,
    )


def open_source(cfg: DataConfig) -> Source:
    if cfg.source == "embedded":
        return embedded_source(cfg)
    if cfg.source == "stdlib":
        return stdlib_source(cfg)
    if cfg.source == "text":
        return text_source(cfg)
    if cfg.source == "hf":
        return hf_source(cfg)
    raise ValueError(f"source {cfg.source!r} has no documents (token files are read directly)")
