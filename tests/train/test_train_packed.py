"""Packed runs equal their unpacked selves: losses at every evaluation and final parameters."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from train_helpers import RUN, run_config

from scaling.train import load_params, train
from scaling.train.packed import pack_key, train_packed

OTHER = run_config(optimizer={"lr": 5e-3}, train={"seed": 1})


def _rows(run_dir):
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def packed(tmp_path_factory):
    root = tmp_path_factory.mktemp("packed")
    results = train_packed([RUN, OTHER], [root / "a", root / "b"])
    return results, root


def test_packed_runs_equal_unpacked_runs(reference, packed, tmp_path):
    (ref, ref_dir), (results, _) = reference, packed
    other = train(OTHER, tmp_path / "other")
    assert [r.status for r in results] == ["done", "done"]
    for unpacked, res, d in ((ref, results[0], ref_dir), (other, results[1], tmp_path / "other")):
        got, want = _rows(Path(res.out_dir)), _rows(d)
        assert [r["step"] for r in got] == [r["step"] for r in want] == [4, 8, 12]
        for key in ("eval_loss", "train_loss", "lr"):
            np.testing.assert_allclose([r[key] for r in got], [r[key] for r in want], rtol=2e-6, err_msg=key)
        assert res.final_eval_loss == pytest.approx(unpacked.final_eval_loss, rel=2e-6)
        assert (res.steps, res.tokens, res.flops) == (unpacked.steps, unpacked.tokens, unpacked.flops)
        p_packed, p_ref = load_params(res.out_dir, 12), load_params(d, 12)
        diff = np.concatenate([np.abs(np.asarray(p_packed[n]) - np.asarray(p_ref[n])).ravel() for n in p_ref])
        # float32 rounding of a batched matmul, amplified by Adam where a gradient is near 0:
        # a few elements move by up to ~1e-4 after 12 steps at lr 1e-2; 99% agree to ~1e-6.
        assert diff.max() < 1e-3 and np.quantile(diff, 0.99) < 1e-5, (diff.max(), np.quantile(diff, 0.99))
    # the two runs really differ (a pack that broadcast one run would pass the above only by luck)
    assert abs(results[0].final_eval_loss - results[1].final_eval_loss) > 1e-3


def test_finished_pack_is_not_retrained_and_train_reports_it_done(packed):
    results, root = packed
    again = train_packed([RUN, OTHER], [root / "a", root / "b"])
    assert [r.final_eval_loss for r in again] == [r.final_eval_loss for r in results]
    assert train(RUN, root / "a").final_eval_loss == results[0].final_eval_loss
    assert json.loads((root / "b" / "config.json").read_text())["packed"] == {"slot": 1, "runs": ["a", "b"]}


def test_pack_key_and_unpackable_runs(tmp_path):
    assert pack_key(RUN) == pack_key(OTHER) != pack_key(run_config(model={"width": 32}))
    assert pack_key(run_config(train={"save_steps": [4]})) is None
    with pytest.raises(ValueError, match=r"more than the learning rate and seed.*global_batch_size"):
        train_packed([RUN, run_config(train={"global_batch_size": 16})], [tmp_path / "a", tmp_path / "b"])
    with pytest.raises(ValueError, match="cannot be packed: train.init_from"):
        train_packed([run_config(train={"save_steps": [4]})], [tmp_path / "c"])
    assert not (tmp_path / "a").exists()  # rejected before anything was written
