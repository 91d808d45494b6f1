"""Profiling and MFU: a jax.profiler trace of a step window on CPU (training goes on),
train.peak_flops behind the mfu column, the exact-causal FLOP convention, the peak table."""

from __future__ import annotations

import gzip
import json

import pytest
from train_helpers import read_metrics, run_config, write_toml

from scaling.cli.main import main
from scaling.model import ModelConfig, flops_per_token
from scaling.train import train
from scaling.train.metrics import peak_flops
from scaling.train.profile import parse_window


def test_profile_window_writes_a_trace_and_training_continues(tmp_path):
    out = tmp_path / "run"
    config = write_toml(tmp_path / "run.toml", run_config(train={"steps": 8}))
    assert main(["train", "--config", str(config), "--out", str(out), "--profile", "3:4"]) == 0
    assert json.loads((out / "result.json").read_text())["steps"] == 8
    assert [r["step"] for r in read_metrics(out)] == [4, 8]
    (session,) = (out / "profile" / "plugins" / "profile").iterdir()  # TensorBoard's profile-plugin layout
    assert list(session.glob("*.xplane.pb")) and all(p.stat().st_size > 0 for p in session.glob("*.xplane.pb"))
    (perfetto,) = session.glob("perfetto_trace.json.gz")
    trace = json.loads(gzip.decompress(perfetto.read_bytes()))
    assert trace["traceEvents"]  # a Perfetto/Chrome trace with events in it
    assert json.loads((out / "config.json").read_text())["config"]["train"]["profile_steps"] == [3, 4]


def test_profile_window_errors_name_the_value(tmp_path, capsys):
    assert parse_window("10:15") == (10, 15)
    for bad, why in (("10", "must look like START:STOP"), ("5:5", "needs 0 <= start < stop"), ("a:b", "START:STOP")):
        with pytest.raises(ValueError, match=why):
            parse_window(bad)
    with pytest.raises(ValueError, match=r"train.profile_steps=\[1\]: must be \[start, stop\]"):
        train(run_config(train={"profile_steps": [1]}), tmp_path / "x")
    out = tmp_path / "late"
    with pytest.raises(ValueError, match=r"train.profile_steps=\[20, 30\]: starts after the run's last step 12"):
        train(run_config(train={"profile_steps": [20, 30]}), out)
    assert not out.exists()


def test_exact_causal_counts_half_the_attention_matrix():
    cfg = ModelConfig(width=128, depth=3, head_dim=32, seq_len=256, vocab_size=257)
    exact, causal = flops_per_token(cfg, "exact"), flops_per_token(cfg, "exact-causal")
    # forward q·kᵀ and p·v: 4·T·heads·head_dim per layer in full, ×3 for forward+backward
    assert exact - causal == 3 * cfg.depth * 2 * cfg.seq_len * cfg.heads * cfg.head_dim
    assert causal > flops_per_token(cfg, "6N")


def test_peak_flops_override_feeds_mfu_with_its_convention(reference, tmp_path):
    _, ref = reference
    peak = 1e11
    out = tmp_path / "run"
    assert train(run_config(train={"peak_flops": peak, "mfu_convention": "exact-causal"}), out).status == "done"
    model = ModelConfig(**run_config()["model"])
    rows = read_metrics(out)
    assert [r["step"] for r in rows] == [r["step"] for r in read_metrics(ref)]
    for r in rows[1:]:  # the first row's window includes compilation
        assert r["mfu_convention"] == "exact-causal"
        assert r["mfu"] == pytest.approx(r["tokens_per_s"] * flops_per_token(model, "exact-causal") / (peak * 8))
    assert all(r["mfu"] is None and r["mfu_convention"] == "exact" for r in read_metrics(ref))  # CPU: no table entry


@pytest.mark.parametrize(
    "kind, peak",
    [
        ("NVIDIA H200", 989e12),
        ("NVIDIA H200 NVL", 835e12),
        ("NVIDIA B200", 2.25e15),
        ("NVIDIA GB200", 2.5e15),
        ("AMD Instinct MI300X", 1307.4e12),
        ("TPU v5 lite", 197e12),
        ("TPU v5p", 459e12),
        ("TPU v6 lite", 918e12),
        ("cpu", None),
    ],
)
def test_peak_table_has_current_parts(kind, peak):
    assert peak_flops(kind) == peak
    assert peak_flops(kind, 123e12) == 123e12  # train.peak_flops wins
