"""`scaling compress` / `scaling.interpolate.compress`: exactness at full rank and 32 bits,
retained-parameter counts equal to the factors' sizes, the transforms themselves, and bad
input rejected before compute."""

from __future__ import annotations

import json

import numpy as np
import pytest
from interp_helpers import STEPS

from scaling.cli.main import main
from scaling.interpolate import compress, matrix_view, quantize
from scaling.interpolate.compress import energy_rank, parse_rank

W, F = 64, 256  # the shared run's width and MLP hidden (depth 1)


@pytest.fixture(scope="module")
def result(run_dir):
    return compress(f"{run_dir}@{STEPS}", svd=["1", "0.5", "r8"], energy=[0.9], bits=[32, 8, 4, 2])


def rows(res, method):
    return {r["setting"]: r for r in res.rows if r["method"] == method}


def test_full_rank_and_32_bits_reproduce_the_checkpoint_loss_exactly(result, metrics):
    logged = metrics[STEPS]["eval_loss"]
    assert result.loss == logged
    assert rows(result, "svd")["1"]["loss"] == logged
    assert rows(result, "quant")["32"]["loss"] == logged
    assert rows(result, "none")["-"]["loss_increase"] == 0.0


def test_retained_parameters_are_the_factor_sizes(result):
    attn, mlp = 4 * W * W, 2 * W * F
    assert result.compressible == attn + mlp
    half = rows(result, "svd")["0.5"]
    r = 32  # half of min(a, b) = 64 for every matrix
    kept = 4 * r * (W + W) + 2 * r * (W + F)
    assert half["retained_compressible"] == kept
    assert half["retained_params"] == result.params_total - result.compressible + kept
    assert half["compression_ratio"] == pytest.approx((attn + mlp) / kept)
    assert rows(result, "svd")["r8"]["retained_compressible"] == 4 * 8 * 2 * W + 2 * 8 * (W + F)
    full = rows(result, "svd")["1"]  # factors of a full-rank matrix hold more than the matrix
    assert full["retained_compressible"] == 4 * W * 2 * W + 2 * W * (W + F)
    assert full["compression_ratio"] < 1


def test_losses_order_as_expected(result):
    """Coarser compression moves the loss further (in either direction: the shared run is
    24 steps old, and at that point 2-bit weights happen to lower its loss a little)."""
    q, s = rows(result, "quant"), rows(result, "svd")
    d = {k: abs(v["loss_increase"]) for k, v in q.items()}
    assert d["2"] > d["4"] > d["8"] and d["8"] < 1e-3
    assert abs(s["r8"]["loss_increase"]) > abs(s["0.5"]["loss_increase"]) > 0
    assert q["4"]["bits_per_weight"] == pytest.approx(
        4 + 32 * (4 * W + F + W) / (4 * W * W + 2 * W * F)
    )  # one scale per output channel
    e = rows(result, "energy")["E0.9"]
    assert 0 < e["mean_rank_fraction"] < 1


def test_quantize_is_symmetric_per_output_channel():
    rng = np.random.default_rng(0)
    w = rng.normal(size=(16, 5)).astype(np.float32) * np.arange(1, 6, dtype=np.float32)
    for bits in (2, 3, 8):
        q = quantize(w, bits)
        qmax = 2 ** (bits - 1) - 1
        scale = np.abs(w).max(axis=0) / qmax
        levels = q / scale
        np.testing.assert_allclose(levels, np.round(levels), atol=1e-4)
        assert np.abs(levels).max() <= qmax + 1e-4
        np.testing.assert_allclose(np.abs(q).max(axis=0), np.abs(w).max(axis=0), rtol=1e-6)  # the max is a level
    assert set(np.unique(np.round(quantize(w, 2) / (np.abs(w).max(axis=0) / 1)))) <= {-1.0, 0.0, 1.0}
    assert quantize(w, 32) is w
    assert np.abs(quantize(w, 16) - w).max() < 1e-3


def test_truncation_has_the_asked_rank_and_is_optimal():
    from scaling.interpolate.compress import truncate

    rng = np.random.default_rng(1)
    w = rng.normal(size=(20, 12))
    f = np.linalg.svd(w, full_matrices=False)
    t = truncate(w, f, 4)
    assert np.linalg.matrix_rank(t) == 4
    assert np.linalg.norm(w - t) == pytest.approx(np.sqrt(np.sum(f[1][4:] ** 2)))  # Eckart-Young
    assert truncate(w, f, 12) is w


def test_energy_rank():
    s = np.array([2.0, 1.0, 1.0])  # energies 4, 1, 1 of 6
    assert [energy_rank(s, e) for e in (0.5, 0.6, 0.8, 0.9, 1.0)] == [1, 1, 2, 3, 3]


def test_matrix_views():
    assert matrix_view("blocks.0.attn.q", (64, 2, 32)) == (1, 64, 64)
    assert matrix_view("blocks.0.attn.o", (2, 32, 64)) == (1, 64, 64)
    assert matrix_view("blocks.attn.o", (3, 2, 32, 64), scan_layers=True) == (3, 64, 64)
    assert matrix_view("blocks.0.mlp.down_u", (256, 16)) == (1, 256, 16)
    assert matrix_view("blocks.0.attn.q_v", (16, 2, 32)) == (1, 16, 64)
    assert matrix_view("blocks.0.attn_norm.scale", (64,)) is None


@pytest.mark.parametrize(
    "spec, message",
    [
        ("1.5", r"rank '1.5': a fraction of full rank must be in \(0, 1\] \(a rank above full rank\)"),
        ("0", r"rank '0': a fraction of full rank must be in \(0, 1\] \(a rank <= 0\)"),
        ("-0.5", r"a rank <= 0"),
        ("r0", "rN needs a whole rank N >= 1"),
        ("half", "expected a fraction of full rank"),
    ],
)
def test_bad_rank_specs(spec, message):
    with pytest.raises(ValueError, match=message):
        parse_rank(spec)


def test_bad_input_is_rejected_before_compute(run_dir, capsys, monkeypatch):
    import scaling.train

    def no_compute(*a, **k):
        raise AssertionError("evaluator built before the input was checked")

    monkeypatch.setattr(scaling.train, "evaluator", no_compute)
    with pytest.raises(ValueError, match=r"rank r100 is above the full rank 64 of blocks.0.attn.[kqv] \(64 x 64\)"):
        compress(run_dir, svd=["r100"])
    for bits in (1, 17, 0):
        with pytest.raises(ValueError, match=f"bits={bits}: must be an integer from 2 to 16"):
            compress(run_dir, bits=[bits])
    assert main(["compress", str(run_dir), "--bits", "1"]) == 2
    assert "bits=1: must be an integer from 2 to 16" in capsys.readouterr().err
    assert main(["compress", str(run_dir), "--svd", "2"]) == 2
    assert "a rank above full rank" in capsys.readouterr().err
    assert main(["compress", str(run_dir)]) == 2
    assert "nothing to do" in capsys.readouterr().err
    assert main(["compress", f"{run_dir}@3", "--bits", "8"]) == 2
    assert "step 3 is not saved" in capsys.readouterr().err


def test_cli_writes_json(run_dir, tmp_path, metrics, capsys):
    out = tmp_path / "c.json"
    assert main(["compress", f"{run_dir}@{STEPS}", "--svd", "1", "--bits", "4", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "quant" in printed and "svd" in printed
    data = json.loads(out.read_text())
    assert data["loss"] == metrics[STEPS]["eval_loss"]
    assert [r["method"] for r in data["rows"]] == ["none", "svd", "quant"]
    assert data["step"] == STEPS and data["data_manifest_hash"] and data["seed"] == 0
