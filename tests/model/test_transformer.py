import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from scaling.model import ModelConfig, Transformer
from scaling.sharding import logical_to_mesh, use_rules

TINY = dict(width=64, depth=2, head_dim=32, vocab_size=61, seq_len=128)


def _tokens(cfg, batch=2, t=None, seed=0):
    t = t or cfg.seq_len
    return jax.random.randint(jax.random.key(seed), (batch, t), 0, cfg.vocab_size, jnp.int32)


def _params(model):
    return nnx.to_pure_dict(nnx.state(model, nnx.Param))


@nnx.jit(static_argnames="acts")
def run(model, tokens, acts=False):
    return model(tokens, return_activations=acts)


def _unrolled_to_stacked(pure):
    blocks = pure["blocks"]
    stacked = jax.tree.map(lambda *xs: jnp.stack(xs), *[blocks[i] for i in sorted(blocks)])
    return {**pure, "blocks": stacked}


def test_shapes_dtypes_and_activations():
    cfg = ModelConfig(**TINY)
    model = Transformer(cfg, rngs=nnx.Rngs(0))
    tokens = _tokens(cfg, t=100)
    logits, acts = run(model, tokens, acts=True)
    assert logits.shape == (2, 100, 61) and logits.dtype == jnp.float32
    assert sorted(acts) == ["block_0", "block_1", "embedding", "logits"]
    assert acts["block_1"].shape == (2, 100, 64)
    np.testing.assert_allclose(run(model, tokens), logits, rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError, match="exceeds seq_len=128"):
        model(_tokens(cfg, t=129))


def test_causal():
    cfg = ModelConfig(**TINY)
    model = Transformer(cfg, rngs=nnx.Rngs(0))
    a = _tokens(cfg)
    b = a.at[:, 70:].set((a[:, 70:] + 1) % cfg.vocab_size)
    la, lb = run(model, a), run(model, b)
    np.testing.assert_allclose(la[:, :70], lb[:, :70], atol=1e-5)
    assert not np.allclose(la[:, 70:], lb[:, 70:])


def test_attention_implementations_and_scan_agree():
    """blocked (default), full T×T and jax.nn.dot_product_attention; scanned vs unrolled
    layers with the same parameters: the same function."""
    cfg = ModelConfig(**TINY, num_kv_heads=1, mlp="swiglu")
    ref = Transformer(cfg, rngs=nnx.Rngs(0))
    tokens = _tokens(cfg)
    want = run(ref, tokens)
    for kw in (dict(attention="full"), dict(attention="xla"), dict(scan_layers=True)):
        other_cfg = cfg.replace(**kw)
        # abstract init (nothing to compile), then the reference's parameters
        graphdef, state = nnx.split(nnx.eval_shape(lambda: Transformer(other_cfg, rngs=nnx.Rngs(1))))  # noqa: B023 (called at once)
        pure = _params(ref)
        nnx.replace_by_pure_dict(state, _unrolled_to_stacked(pure) if other_cfg.scan_layers else pure)
        other = nnx.merge(graphdef, state)
        np.testing.assert_allclose(run(other, tokens), want, rtol=2e-5, atol=2e-5, err_msg=str(kw))
    _, acts = run(other, tokens, acts=True)  # scanned model's activations too
    assert sorted(acts) == ["block_0", "block_1", "embedding", "logits"]


def test_bfloat16_compute_keeps_float32_params_and_logits():
    cfg = ModelConfig(**TINY)
    m32 = Transformer(cfg, rngs=nnx.Rngs(0))
    m16 = Transformer(cfg.replace(compute_dtype="bfloat16"), rngs=nnx.Rngs(0))
    assert {p.dtype for p in jax.tree.leaves(nnx.state(m16, nnx.Param))} == {jnp.dtype("float32")}
    tokens = _tokens(cfg)
    l32, l16 = run(m32, tokens), run(m16, tokens)
    assert l16.dtype == jnp.float32
    assert float(jnp.max(jnp.abs(l16 - l32))) < 0.05 * float(jnp.max(jnp.abs(l32))) + 1e-3


@pytest.mark.parametrize("scan", [False, True])
def test_every_parameter_has_logical_axes(scan):
    cfg = ModelConfig(**TINY, scan_layers=scan, num_kv_heads=1)
    specs = nnx.get_partition_spec(nnx.state(Transformer(cfg, rngs=nnx.Rngs(0)), nnx.Param))
    flat = jax.tree_util.tree_flatten_with_path(specs, is_leaf=lambda x: isinstance(x, jax.sharding.PartitionSpec))[0]
    known = {"embed", "mlp", "heads", "kv", "head_dim", "vocab", "layers", "norm"}
    for path, spec in flat:
        assert isinstance(spec, jax.sharding.PartitionSpec) and len(spec) > 0, path
        assert set(spec) <= known, (path, spec)
        in_block = "blocks" in jax.tree_util.keystr(path)
        assert (spec[0] == "layers") == (scan and in_block), (path, spec)


def test_sharded_forward_matches_single_device():
    """Parameters placed by their logical axes on a 2x2x2 mesh; activations constrained."""
    devices = jax.devices()
    if len(devices) < 8:
        pytest.skip("needs 8 (fake CPU) devices")
    cfg = ModelConfig(width=128, depth=1, head_dim=32, vocab_size=64, seq_len=32)
    model = Transformer(cfg, rngs=nnx.Rngs(0))
    tokens = _tokens(cfg, batch=4)
    want = run(model, tokens)
    mesh = jax.make_mesh((2, 2, 2), ("data", "fsdp", "model"), axis_types=(jax.sharding.AxisType.Auto,) * 3)
    graphdef, state = nnx.split(model)
    specs = nnx.get_partition_spec(state)
    shardings = jax.tree.map(
        lambda s: jax.sharding.NamedSharding(mesh, logical_to_mesh(tuple(s), mesh=mesh)),
        specs,
        is_leaf=lambda x: isinstance(x, jax.sharding.PartitionSpec),
    )
    state = jax.device_put(state, shardings)

    @jax.jit
    def forward(state, tokens):
        with use_rules(mesh):
            return nnx.merge(graphdef, state)(tokens)

    got = forward(
        state, jax.device_put(tokens, jax.sharding.NamedSharding(mesh, logical_to_mesh(("batch", None), mesh=mesh)))
    )
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
