"""The loader: pure (seed, step) batches, resume and re-shard equivalence, split isolation, fixed eval."""

from __future__ import annotations

import numpy as np
import pytest
from data_helpers import TRAIN_ALPHABET, VALIDATION_ALPHABET

from scaling.data import DataConfig, build_dataset
from scaling.data.loader import TokenDataset


def _text_ds(corpus, data_cache, **kw):
    kw = {"seq_len": 16, "seed": 7, "validation_fraction": 0.2} | kw
    return build_dataset(DataConfig(source="text", paths=(str(corpus),), cache_dir=str(data_cache), **kw))


def _toy(n_train=1000, n_val=300, seq_len=8, seed=0):
    """A TokenDataset over arange arrays: a window's content tells where it starts."""
    return TokenDataset(
        np.arange(n_train, dtype=np.uint32),
        np.arange(n_val, dtype=np.uint32) + 10**6,
        vocab_size=2 * 10**6,
        seq_len=seq_len,
        seed=seed,
        manifest={"validation_fraction": 0.2},
        bytes_per_token=1.0,
    )


def test_batch_shape_dtype_and_shifted_windows(stdlib_ds):
    b = stdlib_ds.train_batch(0, 8)
    assert b.shape == (8, 65) and b.dtype == np.int32
    assert b.min() >= 0 and b.max() < stdlib_ds.vocab_size == 257
    starts = stdlib_ds.train_starts(0, 8)
    for row, s in zip(b, starts):  # each row is seq_len + 1 consecutive train tokens
        np.testing.assert_array_equal(row, stdlib_ds.train_tokens[s : s + 65])


def test_deterministic_across_instances_and_seeded(split_corpus, data_cache):
    a = _text_ds(split_corpus, data_cache)
    b = _text_ds(split_corpus, data_cache)
    for step in (0, 1, 17, 1000):
        np.testing.assert_array_equal(a.train_batch(step, 4), b.train_batch(step, 4))
    other_seed = _text_ds(split_corpus, data_cache, seed=8)
    assert not np.array_equal(a.train_batch(0, 4), other_seed.train_batch(0, 4))
    assert not np.array_equal(a.train_batch(0, 4), a.train_batch(1, 4))


def test_resume_equivalence_across_epochs():
    ds = _toy()
    steps = range(3 * ds.windows_per_epoch // 6 + 5)  # batch 6: spans several epochs
    drawn = {s: ds.train_batch(s, 6) for s in steps}
    for k in (0, 5, len(steps) - 1, 40):
        fresh = _toy()  # no earlier steps drawn, empty epoch cache
        np.testing.assert_array_equal(fresh.train_batch(k, 6), drawn[k])


def test_each_epoch_visits_every_window_once():
    ds = _toy(n_train=1000, seq_len=8)
    W = ds.windows_per_epoch
    assert W == (1000 - 1) // 8 - 1
    starts = np.concatenate([ds.train_starts(s, W // 2 if W % 2 == 0 else W) for s in range(2 if W % 2 == 0 else 1)])
    assert len(np.unique(starts)) == W  # no window repeats within an epoch
    assert len(np.unique(starts % 8)) == 1  # non-overlapping: one offset per epoch
    assert starts.max() + 9 <= 1000
    # a batch bigger than an epoch wraps into the next epochs
    big = _toy(n_train=60, seq_len=8)
    assert big.train_batch(0, 32).shape == (32, 9)


@pytest.mark.parametrize("process_count", [2, 4, 8])
def test_process_rows_concatenate_to_the_single_process_batch(stdlib_ds, process_count):
    for step in (0, 3, 12345):
        full = stdlib_ds.train_batch(step, 16)
        parts = [stdlib_ds.train_batch(step, 16, p, process_count) for p in range(process_count)]
        assert all(p.shape == (16 // process_count, 65) for p in parts)
        np.testing.assert_array_equal(np.concatenate(parts), full)
    full_eval = stdlib_ds.eval_batches(16, 3)
    parts = [stdlib_ds.eval_batches(16, 3, p, process_count) for p in range(process_count)]
    for j in range(3):
        np.testing.assert_array_equal(np.concatenate([p[j] for p in parts]), full_eval[j])


def test_split_errors_name_both_values(stdlib_ds):
    with pytest.raises(ValueError, match=r"global_batch_size=10.*process_count=4"):
        stdlib_ds.train_batch(0, 10, 0, 4)
    with pytest.raises(ValueError, match=r"global_batch_size=10.*process_count=4"):
        stdlib_ds.eval_batches(10, 1, 0, 4)
    with pytest.raises(ValueError, match="process_index=4"):
        stdlib_ds.train_batch(0, 8, 4, 4)
    with pytest.raises(ValueError, match="step"):
        stdlib_ds.train_batch(-1, 8)


def test_windows_never_cross_splits(split_corpus, data_cache):
    ds = _text_ds(split_corpus, data_cache)
    assert ds.manifest["split_method"] == "hash"
    assert ds.manifest["documents"]["validation"] > 0
    sep = ds.separator_id
    train_ok = np.array(list(TRAIN_ALPHABET) + [sep])
    val_ok = np.array(list(VALIDATION_ALPHABET) + [sep])
    for step in range(200):
        assert np.isin(ds.train_batch(step, 8), train_ok).all()
    for batch in ds.eval_batches(4, ds.num_eval_windows // 4):
        assert np.isin(batch, val_ok).all()


def test_explicit_validation_files(split_corpus, data_cache, tmp_path):
    val = tmp_path / "heldout.txt"
    val.write_bytes(VALIDATION_ALPHABET * 20)
    cfg = DataConfig(
        source="text", paths=(str(split_corpus),), validation_paths=(str(val),), seq_len=16, cache_dir=str(data_cache)
    )
    ds = build_dataset(cfg)
    assert ds.manifest["split_method"] == "explicit"
    assert ds.manifest["documents"]["validation"] == 1
    assert bytes(ds.validation_tokens.astype(np.uint8)) == VALIDATION_ALPHABET * 20


def test_validation_batches_are_fixed_and_non_overlapping(stdlib_ds, data_cache):
    first = stdlib_ds.eval_batches(8, 4)
    for _ in range(2):
        stdlib_ds.train_batch(99, 8)
    again = stdlib_ds.eval_batches(8, 4)
    other = build_dataset(DataConfig(source="stdlib", seq_len=64, seed=11, cache_dir=str(data_cache)))
    for a, b, c in zip(first, again, other.eval_batches(8, 4)):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a, c)  # independent of the training seed
    ds = _toy(n_val=300, seq_len=8)
    starts = np.concatenate([b[:, 0] for b in ds.eval_batches(4, 3)]) - 10**6
    assert len(set(starts)) == 12 and np.all(np.diff(np.sort(starts)) >= 8)  # targets never overlap


def test_validation_too_small_for_eval_is_named(split_corpus, data_cache):
    ds = _text_ds(split_corpus, data_cache)
    too_many = ds.num_eval_windows + 1
    with pytest.raises(ValueError, match=rf"{too_many} windows.*{ds.num_eval_windows} non-overlapping"):
        ds.eval_batches(too_many, 1)
    with pytest.raises(ValueError, match=r"validation split is too small.*validation_fraction"):
        _text_ds(split_corpus, data_cache, eval_batch_size=too_many, num_eval_batches=1)  # at build time


def test_train_batch_is_fast(stdlib_ds):
    import time

    stdlib_ds.train_batch(0, 64)
    t = time.perf_counter()
    for step in range(200):
        stdlib_ds.train_batch(step, 64)
    per_step = (time.perf_counter() - t) / 200
    assert per_step < 0.005, f"{per_step * 1e3:.2f} ms per batch of 64x65"


def test_same_batches_in_a_fresh_interpreter(split_corpus, data_cache):
    """Nothing depends on Python's per-process hash seed or on what this process drew before."""
    import hashlib
    import os
    import subprocess
    import sys

    code = (
        "import hashlib, sys\n"
        "from scaling.data import DataConfig, build_dataset\n"
        "ds = build_dataset(DataConfig(source='text', paths=(sys.argv[1],), seq_len=16, seed=7,"
        " validation_fraction=0.2, cache_dir=sys.argv[2]))\n"
        "print(hashlib.sha256(ds.train_batch(123, 8).tobytes() + ds.eval_batches(4, 2)[1].tobytes()).hexdigest())\n"
    )
    env = os.environ | {"PYTHONHASHSEED": "12345"}
    out = subprocess.run(
        [sys.executable, "-c", code, str(split_corpus), str(data_cache / "fresh-interpreter")],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    ).stdout.strip()
    ds = _text_ds(split_corpus, data_cache)
    assert out == hashlib.sha256(ds.train_batch(123, 8).tobytes() + ds.eval_batches(4, 2)[1].tobytes()).hexdigest()
