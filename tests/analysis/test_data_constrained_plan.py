"""The data-constrained plan kind and the data pipeline's fixed training subset."""

from __future__ import annotations

import numpy as np
import pytest

from scaling.data.config import DataConfig
from scaling.data.loader import TokenDataset
from scaling.sweep import load_sweep_config, plan_sweep

SWEEP = """
[sweep]
name = "dc"
kind = "data_constrained"
budgets = [1e11, 1e12]
{unique}
points_per_budget = 2
tokens_per_param = 20
tokens_per_param_range = [5, 80]
flop_convention = "6N"

[family]
widths = {{ start = 16, stop = 160, step = 8 }}
depth = 2

[model]
head_dim = 8
seq_len = 32

[optimizer]
lr = 0.01

[schedule]
kind = "cosine"
warmup = 0.1

[train]
global_batch_size = 4
"""


def write(tmp_path, unique="unique_tokens = [20000, 100000]"):
    path = tmp_path / "dc.toml"
    path.write_text(SWEEP.format(unique=unique))
    return path


def test_plan_holds_unique_tokens_fixed_while_tokens_grow(tmp_path):
    plan = plan_sweep(load_sweep_config(write(tmp_path)))
    fresh = [r for r in plan.runs if r.epochs == 1.0]
    limited = [r for r in plan.runs if r.epochs != 1.0]
    assert fresh and limited
    for r in fresh:
        assert "max_train_tokens" not in r.train_config["data"] or r.train_config["data"]["max_train_tokens"] == 0
        assert r.unique_tokens == r.steps * r.batch_size * r.seq_len
    for r in limited:
        u = r.train_config["data"]["max_train_tokens"]
        assert u in (20000, 100000) and r.unique_tokens == u
        assert r.epochs == pytest.approx(r.steps * r.batch_size * r.seq_len / u)
        assert r.epochs > 1
    # the same 20,000 unique tokens at both budgets: repeated more at the larger one
    by_budget = {c: max(r.epochs for r in limited if r.unique_tokens == 20000 and r.budget == c) for c in (1e11, 1e12)}
    assert by_budget[1e12] > by_budget[1e11]
    assert len({r.run_id for r in plan.runs}) == len(plan.runs)
    rec = limited[0].record()
    assert rec["unique_tokens"] == limited[0].unique_tokens and rec["epochs"] == limited[0].epochs


def test_data_constrained_plan_needs_unique_tokens(tmp_path):
    with pytest.raises(ValueError, match="needs sweep.unique_tokens"):
        load_sweep_config(write(tmp_path, unique=""))
    with pytest.raises(ValueError, match=r"sweep.unique_tokens\[0\]=-5: must be a positive integer"):
        load_sweep_config(write(tmp_path, unique="unique_tokens = [-5]"))


def test_training_subset_limit():
    with pytest.raises(ValueError, match=r"data.max_train_tokens=-1: must be >= 0"):
        DataConfig(max_train_tokens=-1)
    ds = TokenDataset(np.arange(1000, dtype=np.uint16) % 200, np.arange(300, dtype=np.uint16) % 200, vocab_size=257,
                      seq_len=8, seed=0, manifest={"source": "test"}, bytes_per_token=1.0)  # fmt: skip
    small = ds.limit_train(100)
    assert len(small.train_tokens) == 100 and len(small.validation_tokens) == 300
    assert small.manifest["max_train_tokens"] == 100
    starts = np.concatenate([small.train_starts(s, 4) for s in range(20)])
    assert starts.max() + 8 < 100  # every window lies inside the subset
    with pytest.raises(ValueError, match="max_train_tokens=2,000 exceeds the training split's 1,000 tokens"):
        ds.limit_train(2000)
    # a larger limit takes blocks spread over the whole split, not its first tokens (a few files)
    big = TokenDataset(np.arange(10_000, dtype=np.int32), np.arange(300, dtype=np.int32), vocab_size=10_000,
                       seq_len=8, seed=0, manifest={"source": "test"}, bytes_per_token=1.0)  # fmt: skip
    sub = np.asarray(big.limit_train(5000).train_tokens)
    assert len(sub) == 5000 and len(np.unique(sub)) == 5000
    assert sub.min() == 0 and sub.max() > 9990
