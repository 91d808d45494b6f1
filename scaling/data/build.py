"""build_dataset: source -> split -> tokenizer -> cached token arrays -> TokenDataset.

Cache layout under $SCALING_DATA_CACHE (or cfg.cache_dir, or ~/.cache/scaling/data):

    <manifest_hash>/manifest.json            what was built (content-level; see below)
    <manifest_hash>/train.bin, train.json    token files (token_file.py format)
    <manifest_hash>/validation.bin, .json
    <manifest_hash>/tokenizer.json           the trained BPE (tokenizer="bpe" only)
    index/<key>.json                         cheap fingerprint (names, sizes, mtimes) -> manifest_hash

manifest_hash = sha256 over (format version, corpus_hash, tokenizer spec), and
corpus_hash = sha256 over every document's split, name (the relative path for
files), length and content, in reading order. Two machines with equal
manifest hashes trained on the same bytes with the same tokenizer recipe; a
BPE's own file hash is recorded too (`tokenizer.hash`). A cache directory is
written under a temporary name and renamed into place, so readers never see a
partial one and concurrent builders (several hosts on a shared disk) are safe.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import tempfile
from pathlib import Path

from scaling.data.config import DataConfig
from scaling.data.loader import TokenDataset
from scaling.data.sources import Split, open_source
from scaling.data.token_file import read_token_file, write_json, write_token_file
from scaling.data.tokenizer import BPETokenizer, ByteTokenizer, require_tokenizers

FORMAT_VERSION = 1


def cache_root(cfg: DataConfig) -> Path:
    if cfg.cache_dir:
        return Path(os.path.expanduser(cfg.cache_dir))
    if os.environ.get("SCALING_DATA_CACHE"):
        return Path(os.environ["SCALING_DATA_CACHE"])
    xdg = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(xdg) / "scaling" / "data"


def _sha256_json(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _tokenizer_spec(cfg: DataConfig) -> dict:
    if cfg.tokenizer == "bytes":
        return {"name": "bytes"}
    return {"name": "bpe", "vocab_size": cfg.bpe_vocab_size, "tokenizers": require_tokenizers().__version__}


def corpus_hash(split: Split) -> str:
    h = hashlib.sha256()
    for label, docs in (("train", split.train), ("validation", split.validation)):
        for name, data in docs:
            h.update(f"{label}\0{name}\0{len(data)}\0".encode())
            h.update(data)
    return h.hexdigest()


def _read_json(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def build_dataset(cfg: DataConfig) -> TokenDataset:
    """Read, split, tokenize (once per machine: cached) and check the corpus; return the dataset.

    Every bad input (missing or empty corpus, a corpus shorter than one window,
    ids outside the vocab, a validation split too small for cfg's eval batches)
    raises here, naming the value, before any training compute.
    """
    if not isinstance(cfg, DataConfig):
        raise TypeError(f"build_dataset takes a DataConfig, got {type(cfg).__name__}")
    ds = _build_token_files(cfg) if cfg.source == "tokens" else _build_documents(cfg)
    if cfg.max_train_tokens:
        ds = ds.limit_train(cfg.max_train_tokens)
    if cfg.eval_batch_size and cfg.num_eval_batches:
        ds.check_eval(cfg.eval_batch_size, cfg.num_eval_batches)
    return ds


def corpus_manifest(cfg: DataConfig) -> dict:
    """The manifest of cfg's corpus (builds or opens the cache)."""
    return build_dataset(cfg).manifest


# ---------------------------------------------------------------- documents (stdlib, text, hf)


def _build_documents(cfg: DataConfig) -> TokenDataset:
    source = open_source(cfg)
    spec = _tokenizer_spec(cfg)
    root = cache_root(cfg)
    key = _sha256_json(
        {"v": FORMAT_VERSION, "fingerprint": source.fingerprint, "fraction": cfg.validation_fraction, "tok": spec}
    )
    index = root / "index" / f"{key}.json"
    hit = _read_json(index)
    if hit and (root / hit.get("manifest_hash", "") / "manifest.json").is_file():
        return _open(root / hit["manifest_hash"], cfg, source.description)

    split = source.load()
    chash = corpus_hash(split)
    mhash = _sha256_json({"v": FORMAT_VERSION, "corpus": chash, "tokenizer": spec})
    final = root / mhash
    if not (final / "manifest.json").is_file():
        _write_cache(final, split, cfg, spec, chash, mhash)
    write_json(index, {"manifest_hash": mhash})
    return _open(final, cfg, source.description)


def _write_cache(final: Path, split: Split, cfg: DataConfig, spec: dict, chash: str, mhash: str) -> None:
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{mhash[:16]}.", dir=final.parent))
    try:
        if cfg.tokenizer == "bpe":
            tok = BPETokenizer.train([d for _, d in split.train], cfg.bpe_vocab_size)
            tok.save(tmp / "tokenizer.json")
        else:
            tok = ByteTokenizer()
        counts: dict[str, dict] = {"documents": {}, "bytes": {}, "tokens": {}}
        bytes_per_token = {}
        for label, docs in (("train", split.train), ("validation", split.validation)):
            tokens = tok.encode_documents([d for _, d in docs])
            counts["documents"][label] = len(docs)
            counts["bytes"][label] = sum(len(d) for _, d in docs)
            counts["tokens"][label] = int(tokens.size)
            # A separator counts as one byte, so bytes_per_token is exactly 1.0 for the byte tokenizer.
            units = counts["bytes"][label] + max(len(docs) - 1, 0)
            bytes_per_token[label] = units / max(tokens.size, 1)
            write_token_file(
                tmp / f"{label}.bin", tokens, tok.vocab_size, tokenizer=tok.identity(),
                bytes_per_token=bytes_per_token[label],
            )  # fmt: skip
        manifest = {
            "format_version": FORMAT_VERSION,
            "tokenizer": tok.identity(),
            "tokenizer_spec": spec,
            # The model's vocab: a BPE may stop short of the requested size on a small corpus.
            "vocab_size": cfg.bpe_vocab_size if cfg.tokenizer == "bpe" else tok.vocab_size,
            "validation_fraction": cfg.validation_fraction,
            "split_method": split.method,
            "file_count": split.file_count,
            **counts,
            "bytes_per_token": bytes_per_token["validation"],
            "corpus_hash": chash,
            "manifest_hash": mhash,
        }
        write_json(tmp / "manifest.json", manifest)
        try:
            os.rename(tmp, final)
        except OSError:
            if not (final / "manifest.json").is_file():  # not a concurrent builder's win: a real error
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _open(path: Path, cfg: DataConfig, description: dict) -> TokenDataset:
    manifest = json.loads((path / "manifest.json").read_text())
    train, _ = read_token_file(path / "train.bin", check_ids=False)  # written by us, ids checked at write
    validation, _ = read_token_file(path / "validation.bin", check_ids=False)
    tok = BPETokenizer.load(path / "tokenizer.json") if manifest["tokenizer"]["name"] == "bpe" else ByteTokenizer()
    manifest.update(source=cfg.source, source_detail=description, seq_len=cfg.seq_len, cache_path=str(path))
    return TokenDataset(
        train,
        validation,
        vocab_size=manifest["vocab_size"],
        seq_len=cfg.seq_len,
        seed=cfg.seed,
        manifest=json.loads(json.dumps(manifest)),
        bytes_per_token=manifest["bytes_per_token"],
        separator_id=tok.separator_id,
        tokenizer=tok,
    )


# ---------------------------------------------------------------- pre-tokenized token files


def _file_sha256(path: Path, root: Path) -> str:
    """sha256 of a (possibly large) file, remembered in the cache index by (path, size, mtime)."""
    st = path.stat()
    index = root / "index" / f"file-{_sha256_json([str(path.resolve()), st.st_size, st.st_mtime_ns])}.json"
    hit = _read_json(index)
    if hit and "sha256" in hit:
        return hit["sha256"]
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 24):
            h.update(chunk)
    try:
        write_json(index, {"path": str(path), "sha256": h.hexdigest()})
    except OSError:
        pass  # a read-only cache only costs a re-hash next time
    return h.hexdigest()


def _build_token_files(cfg: DataConfig) -> TokenDataset:
    root = cache_root(cfg)
    train_path = Path(os.path.expanduser(cfg.paths[0]))
    tokens, meta = read_token_file(train_path)
    if len(tokens) == 0:
        raise ValueError(f"the corpus is empty: token file {train_path} holds no tokens")
    vocab = int(meta["vocab_size"])
    corpus = {"train": _file_sha256(train_path, root)}
    if cfg.validation_paths:
        val_path = Path(os.path.expanduser(cfg.validation_paths[0]))
        validation, vmeta = read_token_file(val_path)
        if int(vmeta["vocab_size"]) != vocab:
            raise ValueError(
                f"token files disagree on vocab_size: {train_path} has {vocab}, {val_path} has {vmeta['vocab_size']}"
            )
        corpus["validation"] = _file_sha256(val_path, root)
        train, method, bpt_meta = tokens, "explicit", vmeta
    else:
        cut = len(tokens) - int(round(len(tokens) * cfg.validation_fraction))
        train, validation, method, bpt_meta = tokens[:cut], tokens[cut:], "tail", meta
        corpus["validation_fraction"] = cfg.validation_fraction
    tokenizer = meta.get("tokenizer")
    bpt = bpt_meta.get("bytes_per_token")
    if bpt is None:
        name = tokenizer.get("name") if isinstance(tokenizer, dict) else tokenizer
        bpt = 1.0 if name == "bytes" else math.nan  # unknown: bits per byte cannot be computed
    chash = _sha256_json(corpus)
    manifest = {
        "format_version": FORMAT_VERSION,
        "source": "tokens",
        "source_detail": {"paths": list(cfg.paths), "validation_paths": list(cfg.validation_paths)},
        "tokenizer": tokenizer if isinstance(tokenizer, dict) else {"name": tokenizer},
        "vocab_size": vocab,
        "validation_fraction": cfg.validation_fraction,
        "split_method": method,
        "file_count": 1 + len(cfg.validation_paths),
        "tokens": {"train": len(train), "validation": len(validation)},
        "bytes_per_token": None if math.isnan(bpt) else float(bpt),
        "corpus_hash": chash,
        "manifest_hash": _sha256_json({"v": FORMAT_VERSION, "corpus": chash, "tokenizer": tokenizer, "vocab": vocab}),
        "seq_len": cfg.seq_len,
    }
    sep = manifest["tokenizer"].get("separator_id")
    return TokenDataset(
        train,
        validation,
        vocab_size=vocab,
        seq_len=cfg.seq_len,
        seed=cfg.seed,
        manifest=manifest,
        bytes_per_token=bpt,
        separator_id=sep,
        tokenizer=None,
    )
