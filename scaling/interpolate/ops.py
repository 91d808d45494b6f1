"""Weight-space arithmetic on flat parameter dicts, compiled once per evaluator and sharded.

`lerp`, `toward` and `distances` are the plain functions; `compiled(ev)` jits each with an
`Evaluator`'s parameter shardings (the trainer's) as inputs
and outputs, and the mixing coefficient is a traced scalar: one compile serves every t
(every weight), the parameters never leave the devices, and a large model stays sharded
as in training.

    lerp(a, b, t)      = (1 − t)·a + t·b     exact at t = 0 and t = 1 (unlike a + t·(b − a))
    toward(acc, x, w)  = acc + w·(x − acc)   the running-mean / EMA update; acc is donated,
                                             and an update toward x == acc returns acc exactly
    distances(a, b)    = (‖b − a‖₂, ‖a‖₂, ‖b‖₂) over all parameters
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec


def lerp(a: dict, b: dict, t) -> dict:
    return {k: ((1 - t) * a[k] + t * b[k]).astype(a[k].dtype) for k in a}


def toward(acc: dict, x: dict, w) -> dict:
    return {k: (acc[k] + w * (x[k] - acc[k])).astype(acc[k].dtype) for k in acc}


def distances(a: dict, b: dict):
    sq = lambda tree: sum(jnp.sum(jnp.square(v.astype(jnp.float32))) for v in tree.values())  # noqa: E731
    diff = {k: b[k] - a[k] for k in a}
    return jnp.sqrt(sq(diff)), jnp.sqrt(sq(a)), jnp.sqrt(sq(b))


@functools.lru_cache(maxsize=8)
def compiled(ev) -> tuple:
    """(lerp, toward, distances) jitted for the parameter shardings of `ev`, a
    `scaling.train.Evaluator` (cached per evaluator, which is itself cached)."""
    p_sh, rep = ev.param_shardings, NamedSharding(ev.mesh, PartitionSpec())
    return (
        jax.jit(lerp, in_shardings=(p_sh, p_sh, rep), out_shardings=p_sh),
        jax.jit(toward, in_shardings=(p_sh, p_sh, rep), out_shardings=p_sh, donate_argnums=0),
        jax.jit(distances, in_shardings=(p_sh, p_sh), out_shardings=(rep, rep, rep)),
    )


def scalar(x: float) -> np.ndarray:
    return np.float32(x)
