"""The compiled step: sharded meshes agree with one device; accumulation gives the
no-accumulation gradient; mixed precision keeps float32 parameters, state and loss."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from train_helpers import MODEL

from scaling.model import ModelConfig
from scaling.train import params as P
from scaling.train.config import MeshConfig, OptimizerConfig
from scaling.train.mesh import check_batch, make_mesh, mesh_shape
from scaling.train.step import EVAL_CHUNK_TOKENS, compiler_options_for_init, cross_entropy, eval_chunks, program

CFG = ModelConfig(**MODEL)
ADAMW = OptimizerConfig(lr=1e-2)
SGD = OptimizerConfig(name="sgd", clip_norm=0.0)
RULES = MeshConfig().sharding_rules()


def mesh_of(data, fsdp, model):
    return make_mesh(MeshConfig(data=data, fsdp=fsdp, model=model), jax.devices()[: data * fsdp * model])


@pytest.fixture(scope="module")
def batches():
    rng = np.random.default_rng(0)
    return [rng.integers(0, CFG.vocab_size, (8, CFG.seq_len + 1)).astype(np.int32) for _ in range(4)]


@pytest.fixture(scope="module")
def initial():
    """Parameters and AdamW state initialised once (one device); each mesh gets a resharded
    copy (the trainer's own sharded init is exercised by the trainer tests)."""
    params, opt_state = program(CFG, ADAMW, 1, mesh_of(1, 1, 1), RULES).init(np.int32(0))
    return jax.device_get((params, opt_state))


def run_steps(shape, opt, batches, initial, microbatches=1, lr=1e-2):
    prog = program(CFG, opt, microbatches, mesh_of(*shape), RULES)
    params = jax.device_put(initial[0], prog.param_shardings)
    opt_state = jax.device_put(initial[1] if opt.name == "adamw" else prog.tx.init(initial[0]), prog.opt_shardings)
    losses = []
    for b in batches:
        params, opt_state, m = prog.train_step(
            params, opt_state, jax.device_put(b, prog.batch_sharding()), np.float32(lr)
        )
        losses.append(m["loss"])
    return np.array(jax.device_get(losses)), jax.device_get(params), prog


@pytest.fixture(scope="module")
def one_device(batches, initial):
    return run_steps((1, 1, 1), ADAMW, batches, initial)


@pytest.mark.parametrize("shape", [(8, 1, 1), (1, 8, 1), (2, 2, 2)])
def test_sharded_meshes_match_one_device(shape, batches, initial, one_device):
    losses, params, prog = run_steps(shape, ADAMW, batches, initial)
    ref_losses, ref_params, _ = one_device
    np.testing.assert_allclose(losses, ref_losses, rtol=1e-5)
    for name in ref_params:
        np.testing.assert_allclose(params[name], ref_params[name], atol=1e-3, err_msg=name)
    # and the parameters really are sharded as the rules say
    spec = prog.param_shardings["blocks.0.mlp.up"].spec
    assert (
        spec == {(8, 1, 1): jax.P(None, None), (1, 8, 1): jax.P("fsdp", None), (2, 2, 2): jax.P("fsdp", "model")}[shape]
    )


def test_accumulation_equals_the_full_batch_gradient(batches, initial):
    """SGD at lr 1: the update is minus the gradient. Four microbatches on a 2-way data
    mesh give the full-batch gradient of one device."""
    full_loss, full, _ = run_steps((1, 1, 1), SGD, batches[:1], initial, microbatches=1, lr=1.0)
    acc_loss, acc, prog = run_steps((2, 1, 1), SGD, batches[:1], initial, microbatches=4, lr=1.0)
    init = initial[0]
    np.testing.assert_allclose(acc_loss, full_loss, rtol=1e-6)
    for name in full:
        g_full, g_acc = init[name] - full[name], init[name] - acc[name]
        np.testing.assert_allclose(g_acc, g_full, atol=2e-7, rtol=1e-4, err_msg=name)
        assert np.abs(g_full).max() > 0


def test_bfloat16_compute_keeps_float32_params_state_and_loss():
    cfg = ModelConfig(**MODEL, compute_dtype="bfloat16")
    prog = program(cfg, ADAMW, 1, mesh_of(1, 1, 1), RULES)
    batch = jax.ShapeDtypeStruct((8, cfg.seq_len + 1), jnp.int32)
    params, opt_state, metrics = jax.eval_shape(
        prog.train_step, prog.abstract_params(), prog.abstract_opt_state(), batch, np.float32(1e-3)
    )
    assert {a.dtype for a in jax.tree.leaves(params)} == {jnp.dtype("float32")}
    assert {a.dtype for a in jax.tree.leaves(opt_state) if a.ndim} == {jnp.dtype("float32")}
    assert metrics["loss"].dtype == jnp.float32
    # the matmuls do run in bfloat16
    jaxpr = jax.make_jaxpr(prog.eval_step)(prog.abstract_params(), batch)
    dots = [e for e in jaxpr.eqns[0].params["jaxpr"].eqns if e.primitive.name == "dot_general"]
    assert any(v.aval.dtype == jnp.bfloat16 for e in dots for v in e.invars)


def test_mup_multipliers_and_decay_mask():
    cfg = ModelConfig(**{**MODEL, "width": 128}, parameterization="mup", base_width=64)
    layout = P.param_layout(cfg)
    mult = P.multipliers(cfg, layout)
    assert mult["blocks.0.attn.q"] == 0.5 and mult["blocks.0.mlp.down"] == 0.5
    assert mult["embedding"] == 1.0 and mult["readout"] == 1.0 and mult["final_norm.scale"] == 1.0
    mask = P.decay_mask(layout, decay_embeddings=False)
    assert mask["blocks.0.attn.q"] and mask["readout"]
    assert not mask["embedding"] and not mask["blocks.0.attn_norm.scale"]
    assert P.decay_mask(layout, decay_embeddings=True)["embedding"]


def test_indivisible_dimensions_stay_replicated():
    prog = program(CFG, ADAMW, 1, mesh_of(2, 2, 2), RULES)
    assert CFG.vocab_size == 257
    assert prog.param_shardings["embedding"].spec == jax.P(None, "fsdp")  # 257 rows: not split over model


@pytest.mark.parametrize(
    "mesh, batch, micro, message",
    [
        (MeshConfig(data=3), 8, 1, r"mesh data=3 × fsdp=1 × model=1 = 3 devices, but 8"),
        (MeshConfig(data=-1, model=3), 8, 1, r"fixed axes \(3 devices\) do not divide the 8"),
        (MeshConfig(data=4, fsdp=2), 12, 1, r"train.global_batch_size=12 is not divisible .* data=4 × fsdp=2"),
        (MeshConfig(data=8), 16, 4, r"train.global_batch_size=16 .* × train.microbatches=4"),
    ],
)
def test_bad_mesh_or_batch_is_named(mesh, batch, micro, message):
    with pytest.raises(ValueError, match=message):
        check_batch(make_mesh(mesh), batch, micro)
    assert mesh_shape(MeshConfig(data=-1, model=2), 8) == (4, 1, 2)


@pytest.mark.parametrize("shape", [(1, 1, 1), (2, 2, 2)])
def test_train_steps_equals_one_step_at_a_time_bit_for_bit(shape, batches, initial):
    """The trainer's path: the first n of K stacked batches in one call, for n < K and n = K."""
    losses, params, _ = run_steps(shape, ADAMW, batches + batches[:2], initial, lr=3e-2)
    prog = program(CFG, ADAMW, 1, mesh_of(*shape), RULES, steps_per_call=4)
    p = jax.device_put(initial[0], prog.param_shardings)
    o = jax.device_put(initial[1], prog.opt_shardings)
    got = []
    for chunk in (batches, batches[:2]):  # n = K = 4, then n = 2 of 4
        stacked = np.zeros((4, *chunk[0].shape), np.int32)
        stacked[: len(chunk)] = chunk
        lrs = np.full(4, 3e-2, np.float32)
        p, o, m = prog.train_steps(p, o, jax.device_put(stacked, prog.batches_sharding()), lrs, np.int32(len(chunk)))
        got += list(jax.device_get(m["loss"])[: len(chunk)])
    np.testing.assert_array_equal(np.array(got), losses)
    p = jax.device_get(p)
    for name in params:
        np.testing.assert_array_equal(p[name], params[name], err_msg=name)


def test_eval_chunks_are_cache_sized_pieces_of_each_devices_rows():
    assert eval_chunks(mesh_of(1, 1, 1), 32, 128) == 4  # 8 rows x 128 = 1024 tokens per chunk
    assert eval_chunks(mesh_of(1, 1, 1), 8, 32) == 1  # 256 tokens: nothing to split
    assert eval_chunks(mesh_of(2, 1, 1), 64, 128) == 4  # 32 rows on each device
    assert eval_chunks(mesh_of(2, 2, 2), 64, 128) == 2  # batch over data x fsdp: 16 rows each
    assert eval_chunks(mesh_of(8, 1, 1), 64, 128) == 1


@pytest.mark.parametrize("shape", [(1, 1, 1), (2, 2, 2)])
def test_chunked_eval_step_is_the_mean_loss_of_the_whole_batch(shape, initial):
    prog = program(CFG, ADAMW, 1, mesh_of(*shape), RULES)
    rows = 4 * 2 * EVAL_CHUNK_TOKENS // CFG.seq_len  # 2 chunks on each of the 4 batch shards of (2, 2, 2)
    assert eval_chunks(prog.mesh, rows, CFG.seq_len) == (8 if shape == (1, 1, 1) else 2)
    tokens = np.random.default_rng(1).integers(0, CFG.vocab_size, (rows, CFG.seq_len + 1)).astype(np.int32)
    params = jax.device_put(initial[0], prog.param_shardings)
    got = float(prog.eval_step(params, jax.device_put(tokens, prog.batch_sharding())))
    logits = prog.layout.model(jax.device_get(params))(jnp.asarray(tokens[:, :-1]))
    want = float(cross_entropy(logits, jnp.asarray(tokens[:, 1:]))[0])
    assert got == pytest.approx(want, rel=2e-6)


def test_init_compiled_at_llvm_level_1_is_the_default_init_bit_for_bit():
    prog = program(CFG, ADAMW, 1, mesh_of(1, 1, 1), RULES)
    assert compiler_options_for_init(prog.mesh) == {"xla_backend_optimization_level": 1}  # CPU
    default = jax.jit(lambda seed: P.init_params(CFG, prog.layout, seed))(np.int32(5))
    fast = prog.init(np.int32(5))[0]
    for name in default:
        np.testing.assert_array_equal(np.asarray(fast[name]), np.asarray(default[name]), err_msg=name)
