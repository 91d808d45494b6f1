"""Mixed-precision matmuls whose backward pass stays in the compute dtype.

Logits and attention scores are computed from bf16 operands with float32 outputs
(`preferred_element_type`), so that the softmax and the loss see float32. Left to
autodiff, the cotangent of such a product is float32, and the two backward matmuls then
multiply a float32 by a bf16 operand: XLA upcasts and runs them in float32, off the
accelerators' bf16 tensor-core rate (about a fifth of the matmul FLOPs of a small model's
step; `tests/model/test_precision.py` counts them). `einsum_f32` keeps the float32 forward
output and casts the cotangent back to the operands' dtype, as a bf16 output followed by
an upcast would, so the backward matmuls run in bf16 with float32 accumulation.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

F32 = jnp.float32


def einsum_f32(spec: str, a: jax.Array, b: jax.Array) -> jax.Array:
    """`jnp.einsum(spec, a, b)` with a float32 result; for low-precision operands the
    gradients are computed in their dtype (see the module docstring)."""
    if a.dtype == F32 and b.dtype == F32:
        return jnp.einsum(spec, a, b, preferred_element_type=F32)
    return _einsum_f32(spec, a, b)


@functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
def _einsum_f32(spec: str, a: jax.Array, b: jax.Array) -> jax.Array:
    return jnp.einsum(spec, a, b, preferred_element_type=F32)


def _fwd(spec, a, b):
    return _einsum_f32(spec, a, b), (a, b)


def _bwd(spec, residuals, g):
    a, b = residuals
    # the transposes of the same product with a low-precision output: two bf16 x bf16
    # matmuls (accumulated in float32 by the hardware) giving bf16 gradients, as autodiff
    # gives anyway; linear_transpose computes no forward product
    g = g.astype(jnp.result_type(a, b))
    (ga,) = jax.linear_transpose(lambda x: jnp.einsum(spec, x, b), a)(g)
    (gb,) = jax.linear_transpose(lambda y: jnp.einsum(spec, a, y), b)(g)
    return ga, gb


_einsum_f32.defvjp(_fwd, _bwd)
