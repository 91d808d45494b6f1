"""The embedded default corpus: pinned hashes, its manifest, and a damaged archive refused."""

from __future__ import annotations

import hashlib
import shutil

import pytest

from scaling.data import DataConfig, corpus_manifest
from scaling.data import sources as S

# The default corpus's identity. A change here changes every default-data run's losses:
# rebuild it only on purpose (scaling/data/corpus/build_snapshot.py) and say so.
CORPUS_HASH = "cb7ab91e42d94a7154124da6cd58b47ac6853622080f68edb8c728f9f6c8c344"
MANIFEST_HASH = "6f09caf51d17e9964ce3b865ec417de4ba7dce2aa687c17191b084f9ddfa5808"


def test_default_corpus_is_the_pinned_snapshot(data_cache):
    cfg = DataConfig(cache_dir=str(data_cache))
    assert cfg.source == "embedded"
    m = corpus_manifest(cfg)
    assert (m["corpus_hash"], m["manifest_hash"]) == (CORPUS_HASH, MANIFEST_HASH)
    assert m["bytes"] == {"train": 6_603_156, "validation": 173_220}


def test_archive_matches_its_manifest_file_by_file():
    manifest = S.snapshot_manifest()
    docs = S.read_snapshot()
    assert [d[0] for d in docs] == [f["name"] for f in manifest["files"]] == sorted(d[0] for d in docs)
    for (name, data), f in zip(docs, manifest["files"]):
        assert (len(data), hashlib.sha256(data).hexdigest()) == (f["bytes"], f["sha256"]), name
    assert S.snapshot_content_hash(docs) == manifest["content_sha256"]
    assert manifest["python"] == "3.11.7" and manifest["file_count"] == len(docs) == 303
    assert (S.SNAPSHOT_DIR / "LICENSE").read_text().count("PYTHON SOFTWARE FOUNDATION LICENSE VERSION 2") == 1


def test_damaged_archive_is_an_error_naming_both_hashes(tmp_path, monkeypatch):
    for name in ("cpython-lib.json", "cpython-lib.tar.xz"):
        shutil.copy(S.SNAPSHOT_DIR / name, tmp_path / name)
    archive = tmp_path / "cpython-lib.tar.xz"
    archive.write_bytes(archive.read_bytes()[:-1] + b"\0")
    monkeypatch.setattr(S, "SNAPSHOT_DIR", tmp_path)
    monkeypatch.setattr(S, "SNAPSHOT_MANIFEST", tmp_path / "cpython-lib.json")
    with pytest.raises(ValueError, match="damaged or was replaced") as err:
        S.read_snapshot()
    assert S.snapshot_manifest()["archive_sha256"] in str(err.value)


def test_embedded_takes_no_paths():
    with pytest.raises(ValueError, match=r"x\.txt.*source='embedded'"):
        DataConfig(source="embedded", paths=("x.txt",))
