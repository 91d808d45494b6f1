"""Sources, cache and manifest: stdlib selection and hash, text, token files, HF datasets, BPE, bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest

from scaling.data import (
    DataConfig,
    build_dataset,
    corpus_manifest,
    read_token_file,
    write_token_file,
)
from scaling.data.sources import (
    hash_fraction,
    list_python_files,
    split_documents,
    stdlib_root,
)


def _cfg(data_cache, **kw) -> DataConfig:
    return DataConfig(cache_dir=str(data_cache), **kw)


# ---------------------------------------------------------------- stdlib


def test_stdlib_selection_skips_site_and_dist_packages(tmp_path):
    for rel in [
        "os.py",
        "json/__init__.py",
        "json/data.txt",
        "site-packages/numpy/x.py",
        "dist-packages/y.py",
        "a/site-packages/z.py",
        "__pycache__/os.cpython-311.pyc",
        "Z.py",
    ]:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("pass\n")
    assert list_python_files(tmp_path) == ["Z.py", "json/__init__.py", "os.py"]


def test_split_by_name_hash_is_stable():
    # Pinned values: a changed hash would silently move files between splits on another machine.
    assert hash_fraction("os.py") == pytest.approx(0.96801178, abs=1e-8)
    assert hash_fraction("json/__init__.py") == pytest.approx(0.92907748, abs=1e-8)
    docs = [(f"f{i}.py", b"x") for i in range(1000)]
    s1, s2 = split_documents(docs, 0.1), split_documents(list(reversed(docs)), 0.1)
    assert {n for n, _ in s1.validation} == {n for n, _ in s2.validation}
    assert 60 < len(s1.validation) < 140


def test_stdlib_dataset_and_manifest_hash_stable_across_builds(stdlib_ds, tmp_path):
    m = stdlib_ds.manifest
    names = list_python_files(stdlib_root())
    assert m["source"] == "stdlib" and m["file_count"] == len(names) > 100
    assert m["documents"]["train"] + m["documents"]["validation"] == len(names)
    assert 0.005 < m["documents"]["validation"] / len(names) < 0.04
    assert m["bytes"]["train"] + m["bytes"]["validation"] == sum((stdlib_root() / n).stat().st_size for n in names)
    assert m["tokens"]["train"] == m["bytes"]["train"] + m["documents"]["train"] - 1  # + separators
    assert stdlib_ds.vocab_size == 257 and stdlib_ds.bytes_per_token == 1.0
    assert stdlib_ds.num_eval_windows >= 16 * 20  # room for the trainer's usual eval batches
    json.dumps(m)
    # A second build from scratch (fresh cache: re-read, re-hash, re-tokenize) agrees.
    fresh = build_dataset(DataConfig(source="stdlib", seq_len=64, cache_dir=str(tmp_path)))
    assert fresh.manifest["manifest_hash"] == m["manifest_hash"]
    assert fresh.manifest["corpus_hash"] == m["corpus_hash"]
    np.testing.assert_array_equal(fresh.validation_tokens, stdlib_ds.validation_tokens)
    # A different split is a different corpus.
    other = corpus_manifest(DataConfig(source="stdlib", validation_fraction=0.05, cache_dir=str(tmp_path)))
    assert other["manifest_hash"] != m["manifest_hash"]


def test_cache_is_reused_and_memory_mapped(split_corpus, data_cache):
    cfg = _cfg(data_cache, source="text", paths=(str(split_corpus),), seq_len=16)
    a = build_dataset(cfg)
    cached = a.manifest["cache_path"]
    assert sorted(p.name for p in __import__("pathlib").Path(cached).iterdir()) == [
        "manifest.json",
        "train.bin",
        "train.json",
        "validation.bin",
        "validation.json",
    ]
    b = build_dataset(cfg)
    assert b.manifest == a.manifest
    assert isinstance(b.train_tokens.base, np.memmap) or isinstance(b.train_tokens, np.memmap)
    # Editing a file changes the corpus: a new cache entry and hash.
    victim = sorted(split_corpus.rglob("*.txt"))[0]
    victim.write_bytes(victim.read_bytes() + b"abc")
    assert build_dataset(cfg).manifest["manifest_hash"] != a.manifest["manifest_hash"]


def test_concurrent_builders_share_one_cache_entry(split_corpus, tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    cfg = DataConfig(source="text", paths=(str(split_corpus),), seq_len=16, cache_dir=str(tmp_path / "cache"))
    with ThreadPoolExecutor(4) as pool:
        built = list(pool.map(lambda _: build_dataset(cfg), range(4)))
    assert len({d.manifest["manifest_hash"] for d in built}) == 1
    entries = [p.name for p in (tmp_path / "cache").iterdir()]
    assert sorted(entries) == sorted(["index", built[0].manifest["manifest_hash"]])  # no temp dirs left
    np.testing.assert_array_equal(built[0].train_batch(3, 4), built[3].train_batch(3, 4))


# ---------------------------------------------------------------- text


def test_text_globs_and_single_file_tail_split(tmp_path, data_cache):
    (tmp_path / "a.md").write_bytes(b"x" * 1000)
    (tmp_path / "b.md").write_bytes(b"y" * 1000)
    (tmp_path / "c.txt").write_bytes(b"z" * 5000)
    ds = build_dataset(_cfg(data_cache, source="text", paths=(str(tmp_path / "*.md"),), seq_len=8))
    assert ds.manifest["file_count"] == 2
    one = build_dataset(
        _cfg(data_cache, source="text", paths=(str(tmp_path / "c.txt"),), seq_len=8, validation_fraction=0.1)
    )
    assert one.manifest["split_method"] == "tail"
    assert one.manifest["tokens"] == {"train": 4500, "validation": 500}


@pytest.mark.parametrize("pattern", ["missing_dir/novel.txt", "nothing_*.txt"])
def test_missing_corpus_names_the_path(tmp_path, data_cache, pattern):
    path = str(tmp_path / pattern)
    with pytest.raises(FileNotFoundError, match=pattern.replace("*", r"\*")):
        build_dataset(_cfg(data_cache, source="text", paths=(path,)))


def test_empty_corpus_names_the_path(tmp_path, data_cache):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match=r"empty.*empty"):
        build_dataset(_cfg(data_cache, source="text", paths=(str(tmp_path / "empty"),)))
    (tmp_path / "blank.txt").write_bytes(b"")
    with pytest.raises(ValueError, match=r"blank\.txt.*empty|empty.*blank\.txt"):
        build_dataset(_cfg(data_cache, source="text", paths=(str(tmp_path / "blank.txt"),)))


def test_corpus_shorter_than_one_window_names_sizes(tmp_path, data_cache):
    (tmp_path / "short.txt").write_bytes(b"q" * 100)
    with pytest.raises(ValueError, match=r"train split has 90 tokens.*seq_len \+ 1 = 129"):
        build_dataset(
            _cfg(data_cache, source="text", paths=(str(tmp_path / "short.txt"),), seq_len=128, validation_fraction=0.1)
        )


# ---------------------------------------------------------------- token files


@pytest.mark.parametrize("vocab, dtype", [(257, "uint16"), (70_000, "uint32")])
def test_token_file_round_trip(tmp_path, vocab, dtype):
    tokens = np.random.default_rng(0).integers(0, vocab, size=5000)
    path = write_token_file(tmp_path / "t.bin", tokens, vocab, tokenizer="bytes")
    back, meta = read_token_file(path)
    assert meta["dtype"] == dtype and meta["vocab_size"] == vocab and meta["num_tokens"] == 5000
    assert meta["tokenizer"] == "bytes"
    np.testing.assert_array_equal(back, tokens)
    assert not list(tmp_path.glob(".*tmp"))  # no temp files left behind


def test_token_source_tail_and_explicit_split(tmp_path, data_cache):
    train = write_token_file(tmp_path / "train.bin", np.arange(2000) % 300, 300, bytes_per_token=3.5)
    ds = build_dataset(_cfg(data_cache, source="tokens", paths=(str(train),), seq_len=32, validation_fraction=0.25))
    assert ds.vocab_size == 300 and ds.manifest["tokens"] == {"train": 1500, "validation": 500}
    assert ds.bytes_per_token == 3.5
    np.testing.assert_array_equal(ds.validation_tokens, np.arange(1500, 2000) % 300)
    assert ds.train_batch(4, 8).max() < 300
    val = write_token_file(tmp_path / "val.bin", np.arange(400) % 300, 300)
    ds2 = build_dataset(
        _cfg(data_cache, source="tokens", paths=(str(train),), validation_paths=(str(val),), seq_len=32)
    )
    assert ds2.manifest["split_method"] == "explicit" and len(ds2.train_tokens) == 2000
    assert np.isnan(ds2.bytes_per_token)  # unknown when the meta does not say


def test_token_id_outside_vocab_names_path_id_and_vocab(tmp_path, data_cache):
    path = write_token_file(tmp_path / "bad.bin", np.array([1, 2, 3, 999, 4] * 100), 1000)
    meta_file = tmp_path / "bad.json"
    meta_file.write_text(json.dumps(json.loads(meta_file.read_text()) | {"vocab_size": 500}))
    with pytest.raises(ValueError, match=r"bad\.bin holds id 999 at index 3.*vocab_size is 500"):
        build_dataset(_cfg(data_cache, source="tokens", paths=(str(path),)))
    with pytest.raises(ValueError, match=r"token id 999.*vocab_size=500"):
        write_token_file(tmp_path / "w.bin", [999], 500)


def test_token_file_missing_or_truncated_is_named(tmp_path, data_cache):
    with pytest.raises(FileNotFoundError, match="nope.bin"):
        build_dataset(_cfg(data_cache, source="tokens", paths=(str(tmp_path / "nope.bin"),)))
    empty = write_token_file(tmp_path / "empty.bin", np.zeros(0, np.int64), 257)
    with pytest.raises(ValueError, match=r"empty.*empty\.bin"):
        build_dataset(_cfg(data_cache, source="tokens", paths=(str(empty),)))
    path = write_token_file(tmp_path / "cut.bin", np.arange(100), 257)
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(ValueError, match=r"cut\.bin holds 50 tokens but its meta says 100"):
        read_token_file(path)


# ---------------------------------------------------------------- Hugging Face datasets

TEXTS = [f"document {i}: " + "the quick brown fox jumps over the lazy dog. " * (3 + i % 5) for i in range(80)]


def test_hf_saved_dataset(tmp_path, data_cache):
    datasets = pytest.importorskip("datasets")
    datasets.Dataset.from_dict({"text": TEXTS, "id": list(range(80))}).save_to_disk(str(tmp_path / "saved"))
    ds = build_dataset(
        _cfg(data_cache, source="hf", hf_dataset=str(tmp_path / "saved"), seq_len=32, validation_fraction=0.2)
    )
    m = ds.manifest
    assert m["documents"]["train"] + m["documents"]["validation"] == 80 and m["documents"]["validation"] > 0
    assert m["bytes"]["train"] + m["bytes"]["validation"] == sum(len(t.encode()) for t in TEXTS)
    val_text = ds.tokenizer.decode(ds.validation_tokens)
    assert all(chunk.decode() in TEXTS for chunk in val_text.split(b"\n\n"))


def test_hf_local_json_and_missing_field(tmp_path, data_cache):
    pytest.importorskip("datasets")
    path = tmp_path / "docs.jsonl"
    path.write_text("".join(json.dumps({"body": t}) + "\n" for t in TEXTS))
    cfg = _cfg(
        data_cache,
        source="hf",
        hf_dataset="json",
        paths=(str(path),),
        text_field="body",
        seq_len=32,
        validation_fraction=0.2,
    )
    ds = build_dataset(cfg)
    assert ds.manifest["bytes"]["train"] + ds.manifest["bytes"]["validation"] == sum(len(t) for t in TEXTS)
    with pytest.raises(ValueError, match=r"text_field='text'.*columns: body"):
        build_dataset(cfg.replace(text_field="text"))


# ---------------------------------------------------------------- BPE


def test_bpe_trains_on_train_split_round_trips_and_is_cached(tmp_path, data_cache):
    pytest.importorskip("tokenizers")
    corpus = tmp_path / "bpe"
    corpus.mkdir()
    (corpus / "train.txt").write_text("def add(a, b):\n    return a + b\n" * 200 + "héllo wörld\n" * 50)
    (corpus / "val.txt").write_text("QQQQ ZZZZ QQQQ ZZZZ\n" * 100)
    cfg = _cfg(
        data_cache,
        source="text",
        tokenizer="bpe",
        bpe_vocab_size=300,
        seq_len=16,
        paths=(str(corpus / "train.txt"),),
        validation_paths=(str(corpus / "val.txt"),),
    )
    ds = build_dataset(cfg)
    tok = ds.tokenizer
    assert ds.vocab_size == 300 and ds.manifest["tokenizer"]["name"] == "bpe"
    assert 257 < tok.vocab_size <= 300  # a tiny corpus may run out of merges; ids stay below 300
    assert len(ds.manifest["tokenizer"]["hash"]) == 64
    for text in ["def add(a, b):\n    return a + b\n", "héllo wörld <|sep|>", "QQQQ ZZZZ"]:
        assert tok.decode(tok.encode(text)).decode() == text
    train_text = (corpus / "train.txt").read_bytes()
    assert len(train_text) / len(tok.encode(train_text)) > 2  # merges compress the training text
    # bytes per token is measured on validation, whose letters were never merged
    assert ds.bytes_per_token == len((corpus / "val.txt").read_bytes()) / len(ds.validation_tokens) == 1.0
    assert ds.separator_id not in tok.encode("<|sep|>")  # a literal separator string is just text
    # Trained on the training split only: no merged token contains a validation-only letter.
    vocab = tok._tok.get_vocab()
    assert not [t for t in vocab if len(t) > 1 and ("Q" in t or "Z" in t) and t != "<|sep|>"]
    # Saved next to the token cache and reused: a second build loads the same tokenizer.
    again = build_dataset(cfg)
    assert again.manifest["tokenizer"]["hash"] == ds.manifest["tokenizer"]["hash"]
    assert (__import__("pathlib").Path(ds.manifest["cache_path"]) / "tokenizer.json").is_file()
    # Training is deterministic: a fresh cache gives the same tokenizer.
    fresh = build_dataset(cfg.replace(cache_dir=str(tmp_path / "fresh")))
    assert fresh.manifest["tokenizer"]["hash"] == ds.manifest["tokenizer"]["hash"]
    assert fresh.manifest["manifest_hash"] == ds.manifest["manifest_hash"]
    # The cached validation file can itself be a `tokens` source, bits-per-byte intact.
    cached = __import__("pathlib").Path(ds.manifest["cache_path"])
    reuse = build_dataset(
        cfg.replace(
            source="tokens", paths=(str(cached / "train.bin"),), validation_paths=(str(cached / "validation.bin"),)
        )
    )
    assert reuse.bytes_per_token == ds.bytes_per_token
    np.testing.assert_array_equal(reuse.validation_tokens, ds.validation_tokens)


@pytest.mark.parametrize(
    "module, kw",
    [("datasets", {"source": "hf", "hf_dataset": "json"}), ("tokenizers", {"source": "text", "tokenizer": "bpe"})],
)
def test_missing_optional_package_is_named(monkeypatch, tmp_path, data_cache, module, kw):
    (tmp_path / "t.txt").write_bytes(b"x" * 1000)
    kw = {"paths": (str(tmp_path / "t.txt"),)} | kw
    monkeypatch.setitem(__import__("sys").modules, module, None)  # import now fails
    with pytest.raises(ImportError, match=rf"needs the .*`{module}` package"):
        build_dataset(_cfg(data_cache, **kw))
