"""The low-rank family (scaling.model.lowrank): exact accounting, XLA's FLOP count, the
init, config errors, sharding rules of the factors, and sweep-plan support."""

import json

import jax
import numpy as np
import pytest
from flax import nnx
from test_accounting import _real_counts, _xla_flops_per_token

from scaling.model import ModelConfig, Transformer, flops_per_token, params_nonembedding, params_total
from scaling.sharding import DEFAULT_RULES, logical_to_mesh


@pytest.mark.parametrize(
    "kw",
    [
        dict(width=64, depth=2, head_dim=16, lowrank_ratio=0.25),
        dict(width=128, depth=1, head_dim=32, lowrank_ratio=0.5, mlp="swiglu", num_kv_heads=2),
        dict(width=96, depth=3, head_dim=32, lowrank_ratio=0.1, tied_embeddings=True, vocab_size=300),
        dict(width=64, depth=3, head_dim=16, lowrank_ratio=1.0, scan_layers=True),
    ],
)
def test_param_counts_match_the_real_pytree(kw):
    cfg = ModelConfig(**kw)
    assert _real_counts(cfg) == (params_nonembedding(cfg), params_total(cfg))


def test_counts_by_hand_and_against_dense():
    dense = ModelConfig(width=64, depth=2, head_dim=16)
    low = dense.replace(lowrank_ratio=0.25)
    assert low.rank == 16 and dense.rank is None
    # per block: q, k, v, o are 64x64 -> 16·128 each; MLP 64x256 twice -> 16·320 each
    per_block = 4 * 16 * 128 + 2 * 16 * 320 + 2 * 64
    assert params_nonembedding(low) == 2 * per_block + 64
    assert params_total(low) - params_nonembedding(low) == params_total(dense) - params_nonembedding(dense)
    # matmul FLOPs: 6 per weight per token, as for the dense family; attention and logits unchanged
    extra = flops_per_token(dense, "exact") - 6 * 2 * (12 * 64 * 64)
    assert flops_per_token(low, "exact") == 6 * 2 * (4 * 16 * 128 + 2 * 16 * 320) + extra


@pytest.mark.parametrize(
    "kw",
    [
        dict(width=128, depth=2, head_dim=32, seq_len=64, vocab_size=256, attention="full", lowrank_ratio=0.25),
        dict(
            width=128,
            depth=2,
            head_dim=32,
            seq_len=64,
            vocab_size=256,
            attention="full",
            lowrank_ratio=0.5,
            mlp="swiglu",
            num_kv_heads=2,
        ),
    ],
)
def test_exact_flops_within_5_percent_of_xla(kw):
    """Measured (jax 0.10, CPU, lowered HLO): XLA/exact = 1.039 (rank 32) and 1.018 (rank
    64, SwiGLU, GQA). The excess is elementwise work (norms, softmax, GELU, AdamW), a
    larger share than in the dense model because the factorized matmuls are smaller."""
    cfg = ModelConfig(**kw)
    ratio = _xla_flops_per_token(cfg, compile=False) / flops_per_token(cfg, "exact")
    assert 1.0 <= ratio <= 1.05, ratio


def test_init_matches_the_dense_variance():
    """U·V has the dense init's std (init_std) for every factorized matrix."""
    cfg = ModelConfig(width=128, depth=1, head_dim=32, lowrank_ratio=0.25, init_std=0.05)
    model = Transformer(cfg, rngs=nnx.Rngs(0))
    attn, mlp = model.blocks[0].attn, model.blocks[0].mlp
    for u, v in ((attn.q_u, attn.q_v), (attn.o_u, attn.o_v), (mlp.up_u, mlp.up_v), (mlp.down_u, mlp.down_v)):
        r = v.shape[0]
        w = np.asarray(u[...]).reshape(-1, r) @ np.asarray(v[...]).reshape(r, -1)
        assert abs(w.std() / 0.05 - 1) < 0.1, w.std()
    logits = model(np.zeros((2, 16), np.int32))
    assert logits.shape == (2, 16, cfg.vocab_size) and bool(np.isfinite(np.asarray(logits)).all())


@pytest.mark.parametrize(
    "kw, message",
    [
        (dict(lowrank_ratio=1.5), r"model.lowrank_ratio=1.5: must be <= 1"),
        (dict(lowrank_ratio=-0.1), r"model.lowrank_ratio=-0.1: must be >= 0"),
        (dict(lowrank_ratio=0.001), r"gives rank round\(0.001 \* width=64\) = 0"),
        (dict(lowrank_ratio=0.5, parameterization="mup"), "low-rank factors are defined under SP only"),
        (dict(lowrank_ratio="half"), "model.lowrank_ratio='half': must be a number"),
    ],
)
def test_bad_ratios_are_rejected(kw, message):
    with pytest.raises(ValueError, match=message):
        ModelConfig(width=64, depth=1, head_dim=16, **kw)


def test_factor_sharding_rules():
    """U shards like the dense matrix's input axis, V like its output axis; rank is replicated."""
    from scaling.train.params import param_layout

    assert dict(DEFAULT_RULES)["rank"] is None
    cfg = ModelConfig(width=64, depth=1, head_dim=16, lowrank_ratio=0.25)
    logical = param_layout(cfg).logical
    assert logical["blocks.0.attn.q_u"] == ("embed", "rank")
    assert logical["blocks.0.attn.q_v"] == ("rank", "heads", "head_dim")
    assert logical["blocks.0.mlp.down_u"] == ("mlp", "rank")
    assert logical["blocks.0.mlp.up_v"] == ("rank", "mlp")
    mesh = jax.make_mesh((2, 2, 2), ("data", "fsdp", "model"))
    assert logical_to_mesh(logical["blocks.0.attn.q_u"], DEFAULT_RULES, mesh) == jax.P("fsdp", None)
    assert logical_to_mesh(logical["blocks.0.mlp.up_v"], DEFAULT_RULES, mesh) == jax.P(None, "model")


def test_sweep_plan_carries_the_ratio(tmp_path):
    """[model] lowrank_ratio reaches every planned run, with the low-rank model's N and FLOPs."""
    from scaling.sweep.config import load_sweep_config
    from scaling.sweep.plan import family_sizes, plan_sweep

    text = """
[sweep]
name = "lr"
kind = "isoflop"
budgets = [3e10]
points_per_budget = 3
tokens_per_param = 100
tokens_per_param_range = [5, 5000]
[family]
widths = [16, 32, 48, 64]
depth = 2
[model]
head_dim = 16
seq_len = 64
lowrank_ratio = 0.25
[train]
global_batch_size = 4
"""
    path = tmp_path / "sweep.toml"
    path.write_text(text)
    cfg = load_sweep_config(path)
    sizes = family_sizes(cfg)
    for s in sizes:
        assert s.model.lowrank_ratio == 0.25
        assert s.params_nonembedding == params_nonembedding(
            ModelConfig(width=s.width, depth=2, head_dim=16, seq_len=64, lowrank_ratio=0.25)
        )
    plan = plan_sweep(cfg)
    assert plan.runs and all(r.train_config["model"]["lowrank_ratio"] == 0.25 for r in plan.runs)


def test_trains_sharded_on_a_2x2x2_mesh(tmp_path):
    """The factors' sharding rules work end to end: data, FSDP and tensor parallelism at once,
    the loss falls, and the checkpoint evaluates to the logged loss."""
    from scaling.train import evaluate, load_params, train

    raw = {
        "model": {"width": 64, "depth": 1, "head_dim": 16, "seq_len": 32, "lowrank_ratio": 0.25, "mlp": "swiglu"},
        "data": {"source": "stdlib", "num_eval_batches": 1},
        "optimizer": {"lr": 1e-2},
        "schedule": {"kind": "constant"},
        "train": {
            "steps": 6,
            "global_batch_size": 8,
            "eval_every": 6,
            "eval_at_start": True,
            "checkpoint_every": 6,
            "progress": False,
        },  # fmt: skip
        "mesh": {"data": 2, "fsdp": 2, "model": 2},
    }
    res = train(raw, tmp_path / "run")
    assert res.status == "done", res.error
    rows = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["eval_loss"] < rows[0]["eval_loss"]
    params = load_params(tmp_path / "run", 6, mesh=(2, 2, 2))
    assert params["blocks.0.mlp.gate_u"].sharding.spec == jax.P("fsdp", None)
    assert params["blocks.0.mlp.gate_v"].sharding.spec == jax.P(None, "model")
    assert evaluate(tmp_path / "run", params, mesh=(2, 2, 2))["eval_loss"] == rows[-1]["eval_loss"]
