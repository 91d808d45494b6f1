"""bf16 compute: every matmul of the training step, backward included, runs on bf16 operands."""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.extend import core as jcore

from scaling.model.precision import einsum_f32


def dot_flops_by_dtype(jaxpr) -> dict[tuple[str, str], int]:
    """FLOPs of every dot_general in a jaxpr (sub-jaxprs included), by operand dtypes."""
    acc: dict[tuple[str, str], int] = {}

    def walk(j):
        for e in j.eqns:
            if e.primitive.name == "dot_general":
                (lc, _), _ = e.params["dimension_numbers"]
                a, b = e.invars
                k = math.prod(a.aval.shape[i] for i in lc)
                key = (str(a.aval.dtype), str(b.aval.dtype))
                acc[key] = acc.get(key, 0) + 2 * math.prod(e.outvars[0].aval.shape) * k
            for p in e.params.values():
                for s in p if isinstance(p, (list, tuple)) else [p]:
                    if isinstance(s, jcore.ClosedJaxpr):
                        walk(s.jaxpr)
                    elif isinstance(s, jcore.Jaxpr):
                        walk(s)

    walk(jaxpr.jaxpr if isinstance(jaxpr, jcore.ClosedJaxpr) else jaxpr)
    return acc


def test_einsum_f32_has_a_float32_forward_and_bf16_backward_matmuls():
    rng = np.random.default_rng(0)
    a = jnp.asarray(rng.standard_normal((4, 8, 16)), jnp.bfloat16)
    b = jnp.asarray(rng.standard_normal((32, 16)), jnp.bfloat16)
    out = einsum_f32("btd,vd->btv", a, b)
    assert out.dtype == jnp.float32
    np.testing.assert_array_equal(out, jnp.einsum("btd,vd->btv", a, b, preferred_element_type=jnp.float32))

    def loss_of(f):
        return lambda a, b: jnp.sum(jax.nn.log_softmax(f("btd,vd->btv", a, b)) ** 2)

    grads = lambda f, *x: jax.grad(loss_of(f), argnums=(0, 1))(*x)  # noqa: E731
    plain = functools.partial(jnp.einsum, preferred_element_type=jnp.float32)
    mine, auto = grads(einsum_f32, a, b), grads(plain, a, b)
    exact = grads(einsum_f32, a.astype(jnp.float32), b.astype(jnp.float32))
    for g, h, ref in zip(mine, auto, exact):
        assert g.dtype == jnp.bfloat16 and ref.dtype == jnp.float32
        err = lambda x: float(jnp.linalg.norm(x.astype(jnp.float32) - ref) / jnp.linalg.norm(ref))  # noqa: E731, B023 (called at once)
        assert err(g) < 1e-2 and err(h) < 1e-2  # both within bf16 rounding of the float32 gradient
    trace = lambda f: jax.make_jaxpr(jax.grad(loss_of(f), argnums=(0, 1)))(a, b)  # noqa: E731
    assert set(dot_flops_by_dtype(trace(einsum_f32))) == {("bfloat16", "bfloat16")}
    assert ("float32", "bfloat16") in dot_flops_by_dtype(trace(plain))  # what autodiff alone does


@pytest.mark.parametrize("tied", [False, True])
def test_bf16_train_step_runs_every_matmul_on_bf16_operands(tied):
    from scaling.model import ModelConfig
    from scaling.train.config import MeshConfig, OptimizerConfig
    from scaling.train.mesh import make_mesh
    from scaling.train.step import program

    cfg = ModelConfig(width=64, depth=1, head_dim=32, seq_len=32, compute_dtype="bfloat16", tied_embeddings=tied)
    prog = program(
        cfg,
        OptimizerConfig(lr=1e-2),
        1,
        make_mesh(MeshConfig(data=1), jax.devices()[:1]),
        MeshConfig().sharding_rules(),
    )
    batch = jax.ShapeDtypeStruct((8, cfg.seq_len + 1), jnp.int32)
    jaxpr = jax.make_jaxpr(prog.train_step)(prog.abstract_params(), prog.abstract_opt_state(), batch, np.float32(1e-3))
    flops = dot_flops_by_dtype(jaxpr)
    total = sum(flops.values())
    assert flops.get(("bfloat16", "bfloat16"), 0) == total, {k: v / total for k, v in flops.items()}
