import itertools

import jax
import jax.numpy as jnp
import optax
import pytest
from flax import nnx

from scaling.model import (
    FLOP_CONVENTIONS,
    ModelConfig,
    Transformer,
    accounting,
    flops_per_token,
    params_nonembedding,
    params_total,
)


def _real_counts(cfg):
    state = nnx.state(nnx.eval_shape(lambda: Transformer(cfg, rngs=nnx.Rngs(0))), nnx.Param)
    flat = jax.tree_util.tree_flatten_with_path(state)[0]
    total = sum(leaf.size for _, leaf in flat)
    emb = sum(leaf.size for path, leaf in flat if jax.tree_util.keystr(path).split("'")[1] in ("embedding", "readout"))
    return total - emb, total


@pytest.mark.parametrize(
    "width, depth, vocab, tied, kv, mlp, scan",
    [
        (w, d, v, t, kv, m, s)
        for (w, d), v, t, kv, m, s in itertools.product(
            [(64, 1), (128, 3), (256, 2)], [257, 1000], [False, True], [None, 1], ["gelu", "swiglu"], [False]
        )
    ]
    + [(192, 4, 300, False, 3, "swiglu", True), (128, 2, 257, True, None, "gelu", True)],
)
def test_param_counts_match_the_real_pytree(width, depth, vocab, tied, kv, mlp, scan):
    cfg = ModelConfig(
        width=width,
        depth=depth,
        vocab_size=vocab,
        tied_embeddings=tied,
        num_kv_heads=kv,
        mlp=mlp,
        head_dim=64,
        scan_layers=scan,
    )
    assert _real_counts(cfg) == (params_nonembedding(cfg), params_total(cfg))


def test_conventions_and_accounting_dict():
    cfg = ModelConfig(width=256, depth=6, seq_len=256, vocab_size=256)
    n = params_nonembedding(cfg)
    assert n == 6 * 12 * 256**2 + 6 * 2 * 256 + 256  # 12·w² matrices + norms per layer, final norm
    assert flops_per_token(cfg, "6N") == 6 * n
    assert flops_per_token(cfg, "6N+attention") == 6 * n + 6 * 6 * 256 * 256
    # XLA's count ≈ 6N + 12·depth·seq·width + 6·width·vocab (norm params excluded from the matmuls),
    # as the "exact" convention's docstring (scaling/model/accounting.py) derives
    assert flops_per_token(cfg, "exact") == 6 * 6 * 12 * 256**2 + 12 * 6 * 256 * 256 + 6 * 256 * 256
    acc = accounting(cfg)
    assert set(acc) == {"params_nonembedding", "params_total", "flops_per_token"}
    assert tuple(acc["flops_per_token"]) == FLOP_CONVENTIONS
    with pytest.raises(
        ValueError, match="unknown FLOP convention 'chinchilla'; choose one of 6N, 6N\\+attention, exact"
    ):
        flops_per_token(cfg, "chinchilla")


def _xla_flops_per_token(cfg, batch=8, compile=True):
    """XLA's own count for one jitted forward + backward + AdamW step, per token.

    compile=False reads the count off the lowered (unoptimised) HLO: within 0.2% of
    the compiled count here (1.0212 vs 1.0232 of "exact" for the first case below)
    and 0.05 s instead of several seconds of compiling."""
    model = Transformer(cfg, rngs=nnx.Rngs(0))
    graphdef, params = nnx.split(model, nnx.Param)
    tx = optax.adamw(1e-3)
    opt_state = tx.init(params)

    def train_step(p, o, tokens):
        def loss_fn(p):
            logits = nnx.merge(graphdef, p)(tokens[:, :-1])
            return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(logits), tokens[:, 1:, None], -1))

        loss, grads = jax.value_and_grad(loss_fn)(p)
        updates, o = tx.update(grads, o, p)
        return optax.apply_updates(p, updates), o, loss

    tokens = jax.ShapeDtypeStruct((batch, cfg.seq_len + 1), jnp.int32)
    lowered = jax.jit(train_step).lower(params, opt_state, tokens)
    # LLVM -O0 (XLA's HLO passes still run): the same count, half the compile time.
    cost = (lowered.compile({"xla_backend_optimization_level": 0}) if compile else lowered).cost_analysis()
    cost = cost[0] if isinstance(cost, list) else cost
    return cost["flops"] / (batch * cfg.seq_len)


@pytest.mark.parametrize(
    "kw, compile",
    [
        (dict(width=128, depth=2, head_dim=32, seq_len=64, vocab_size=256, attention="full"), True),
        (
            dict(
                width=128,
                depth=2,
                head_dim=32,
                seq_len=128,
                vocab_size=256,
                attention="full",
                mlp="swiglu",
                num_kv_heads=2,
                tied_embeddings=True,
            ),
            False,
        ),
    ],
)
def test_exact_flops_within_3_percent_of_xla(kw, compile):
    """Measured (jax 0.10.2, CPU): XLA/exact = 1.023 and 1.015 here. XLA counts more
    because it also counts elementwise work (norms, softmax, GELU/SiLU, rotary, loss,
    AdamW): one FLOP per add or multiply. That excess shrinks with width: at width 64
    (seq 64) it is 3.8%. Note for scan_layers=True XLA counts the scanned body once,
    not depth times, so its number is not comparable there."""
    cfg = ModelConfig(**kw)
    ratio = _xla_flops_per_token(cfg, compile=compile) / flops_per_token(cfg, "exact")
    assert 1.0 <= ratio <= 1.03, ratio


def test_blocked_attention_skips_masked_blocks():
    """The default "blocked" attention never computes key blocks above the diagonal, so
    XLA counts fewer FLOPs than the "exact" convention's full T×T matrix: with n = T/64
    query chunks it does (1 + 1/n)/2 of the attention matmuls (0.625 at T=256).
    Measured: XLA/exact = 0.895 at width 64, seq 256, depth 2."""
    cfg = ModelConfig(width=64, depth=2, head_dim=32, seq_len=256, vocab_size=256)
    attn = 12 * cfg.depth * cfg.seq_len * cfg.width
    expected = flops_per_token(cfg, "exact") - (1 - 0.625) * attn
    ratio = _xla_flops_per_token(cfg, compile=False) / expected
    assert 1.0 <= ratio <= 1.05, ratio
