"""The compiled functions of a run: sharded init, train step, eval step.

`program(...)` builds them once per (model config, optimizer settings, microbatches, mesh,
rules) and caches them, so several runs in one process (a sweep) share compilations
wherever shapes agree: the learning rate is an argument, not a constant.

Train step: `(params, opt_state, tokens[B, T+1], lr) -> (params, opt_state, metrics)`,
jitted with explicit in/out shardings, params and optimizer state donated. `train_steps`
runs the first n ≤ K of K stacked batches in one call (a `fori_loop` over the same step, n a
runtime argument, so one compilation serves every n): the same numbers bit for bit, without
a dispatch per step, which for small models is a tenth to a fifth of a step on a CPU
(PERF.md "Small models"). Inputs are
tokens[:, :-1], targets tokens[:, 1:]. With microbatches M the batch is viewed as
[M, B/M, T+1] — microbatch m holds rows m, M+m, 2M+m, …, so every device keeps its own rows
— and gradients are summed over a `lax.scan` and divided by M: the mean over all tokens of
the global batch, the same gradient as without accumulation. The loss and softmax are
float32 whatever the compute dtype (the model returns float32 logits). The eval step
`(params, tokens) -> mean loss` runs its batch in cache-sized chunks on CPU (`eval_chunks`).
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import optax
from jax.sharding import Mesh, NamedSharding

from scaling.sharding import constrain, use_rules
from scaling.train import params as P
from scaling.train.config import OptimizerConfig
from scaling.train.mesh import batch_sharding, batch_shards, replicated, stacked_sharding
from scaling.train.optimizer import apply_updates, make_optimizer


def _log_z_and_target(logits: jax.Array, targets: jax.Array) -> tuple[jax.Array, jax.Array]:
    logits = logits.astype(jnp.float32)
    lse = jax.nn.logsumexp(logits, axis=-1)
    return lse, jnp.take_along_axis(logits, targets[..., None], axis=-1)[..., 0]


def cross_entropy(logits: jax.Array, targets: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Mean token cross-entropy (nats) and mean log²Z, both in float32."""
    lse, target_logit = _log_z_and_target(logits, targets)
    return jnp.mean(lse - target_logit), jnp.mean(jnp.square(lse))


def _on_cpu(mesh: Mesh) -> bool:
    return mesh.devices.flat[0].platform == "cpu"


EVAL_CHUNK_TOKENS = 1024  # CPU: the fewest tokens per device in one chunk of the eval step


def eval_chunks(mesh: Mesh, rows: int, length: int) -> int:
    """How many chunks the eval step splits a batch of `rows` sequences of `length` into.

    On CPU, the most that leave every device at least EVAL_CHUNK_TOKENS tokens per chunk:
    a chunk's activations (attention scores, logits) then stay in cache, which makes a
    32 x 128-token evaluation 1.2-3.2x faster at widths 4-38 (PERF.md "Small models"). On an
    accelerator a larger batch is only more parallel work, so 1 (no chunks).
    """
    if not _on_cpu(mesh):
        return 1
    per_device = rows // batch_shards(mesh)
    fits = [
        n for n in range(1, per_device + 1) if per_device % n == 0 and per_device // n * length >= EVAL_CHUNK_TOKENS
    ]
    return max(fits, default=1)


def compiler_options_for_init(mesh: Mesh) -> dict | None:
    """XLA options of the compiled init. On CPU, LLVM's optimisation level 1: the init runs
    once per run, yet its many random-number kernels took 3-5 s to compile at the default
    level and 1.5 s at level 1, with the same parameters bit for bit (PERF.md)."""
    return {"xla_backend_optimization_level": 1} if _on_cpu(mesh) else None


@dataclass(frozen=True, eq=False)
class Program:
    model_cfg: Any
    mesh: Mesh
    rules: tuple
    layout: P.ParamLayout
    tx: optax.GradientTransformation
    param_shardings: dict[str, NamedSharding]
    opt_shardings: Any
    init: Any  # (seed) -> (params, opt_state), compiled
    init_fn: Any  # the same without compiler options, which only a top-level jit takes: to call inside a jit
    train_step: Any  # (params, opt_state, batch, lr) -> (params, opt_state, metrics)
    train_steps: Any  # (params, opt_state, batches[K], lrs[K], n) -> (params, opt_state, metrics of [K])
    eval_step: Any  # (params, batch) -> mean loss
    steps_per_call: int  # K

    def abstract_params(self) -> dict[str, jax.ShapeDtypeStruct]:
        return {
            n: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=self.param_shardings[n])
            for n, a in self.layout.abstract.items()
        }

    def abstract_opt_state(self) -> Any:
        abstract = jax.eval_shape(self.tx.init, self.layout.abstract)
        return jax.tree.map(
            lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s), abstract, self.opt_shardings
        )

    def batch_sharding(self) -> NamedSharding:
        return batch_sharding(self.mesh)

    def batches_sharding(self) -> NamedSharding:
        """K stacked batches [K, B, T+1], each split like one batch."""
        return stacked_sharding(self.mesh)


def _forward(layout: P.ParamLayout, mesh, rules, params, tokens) -> tuple[jax.Array, jax.Array]:
    """(logits of tokens[:, :-1], targets tokens[:, 1:]), the batch constrained to the mesh."""
    with use_rules(mesh, rules):
        tokens = constrain(tokens, ("batch", "length"))
        logits = layout.model(params)(tokens[:, :-1])
    return logits, tokens[:, 1:]


def _loss_fn(layout: P.ParamLayout, mesh, rules, z_loss: float):
    def loss(params, tokens):
        ce, log_z2 = cross_entropy(*_forward(layout, mesh, rules, params, tokens))
        return ce + z_loss * log_z2 if z_loss else ce, ce

    return loss


def _optimizer_key(cfg: OptimizerConfig) -> OptimizerConfig:
    return dataclasses.replace(cfg, lr=1.0)  # the peak LR is a runtime argument


STEPS_PER_CALL = 16  # K of `train_steps`: the most steps between two host syncs it runs at once


def program(
    model_cfg, opt_cfg: OptimizerConfig, microbatches: int, mesh: Mesh, rules, steps_per_call: int = STEPS_PER_CALL
) -> Program:
    return _program(model_cfg, _optimizer_key(opt_cfg), microbatches, mesh, tuple(rules), steps_per_call)


@functools.lru_cache(maxsize=8)
def _program(
    model_cfg, opt_cfg: OptimizerConfig, microbatches: int, mesh: Mesh, rules: tuple, steps_per_call: int
) -> Program:
    layout = P.param_layout(model_cfg)
    tx = make_optimizer(opt_cfg, P.decay_mask(layout, opt_cfg.decay_embeddings), P.multipliers(model_cfg, layout))
    p_sh = layout.shardings(mesh, rules)
    rep = replicated(mesh)
    abstract_opt = jax.eval_shape(tx.init, layout.abstract)
    o_sh = optax.tree_map_params(tx, lambda _, s: s, abstract_opt, p_sh, transform_non_params=lambda _: rep)
    loss = _loss_fn(layout, mesh, rules, opt_cfg.z_loss)
    grad_fn = jax.value_and_grad(loss, has_aux=True)
    b_sh = batch_sharding(mesh)

    def init(seed):
        params = P.init_params(model_cfg, layout, seed)
        return params, tx.init(params)

    def gradients(params, tokens):
        if microbatches == 1:
            (_, ce), grads = grad_fn(params, tokens)
            return ce, grads
        b, length = tokens.shape
        micro = tokens.reshape(b // microbatches, microbatches, length).swapaxes(0, 1)
        with use_rules(mesh, rules):
            micro = constrain(micro, (None, "batch", "length"))

        def body(carry, mb):
            ce_sum, g_sum = carry
            (_, ce), g = grad_fn(params, mb)
            return (ce_sum + ce, jax.tree.map(jnp.add, g_sum, g)), None

        zeros = jax.tree.map(jnp.zeros_like, params)
        zeros = jax.lax.with_sharding_constraint(zeros, p_sh)
        (ce_sum, g_sum), _ = jax.lax.scan(body, (jnp.zeros((), jnp.float32), zeros), micro)
        return ce_sum / microbatches, jax.tree.map(lambda g: g / microbatches, g_sum)

    def train_step(params, opt_state, tokens, lr):
        ce, grads = gradients(params, tokens)
        grad_norm = optax.tree.norm(grads)
        updates, opt_state = tx.update(grads, opt_state, params)
        params = apply_updates(params, updates, lr)
        return params, opt_state, {"loss": ce, "grad_norm": grad_norm}

    def train_steps(params, opt_state, batches, lrs, n):
        def body(i, carry):
            params, opt_state, losses, norms = carry
            params, opt_state, m = train_step(params, opt_state, batches[i], lrs[i])
            return params, opt_state, losses.at[i].set(m["loss"]), norms.at[i].set(m["grad_norm"])

        zeros = jnp.zeros((steps_per_call,), jnp.float32)
        params, opt_state, losses, norms = jax.lax.fori_loop(0, n, body, (params, opt_state, zeros, zeros))
        return params, opt_state, {"loss": losses, "grad_norm": norms}

    def token_losses(params, tokens):
        lse, target_logit = _log_z_and_target(*_forward(layout, mesh, rules, params, tokens))
        return lse - target_logit

    def eval_step(params, tokens):
        b, length = tokens.shape
        n = eval_chunks(mesh, b, length - 1)
        if n == 1:
            return jnp.mean(token_losses(params, tokens))
        # chunk c holds rows c, n + c, 2n + c, ...: every device keeps its own rows
        chunks = tokens.reshape(b // n, n, length).swapaxes(0, 1)
        with use_rules(mesh, rules):
            chunks = constrain(chunks, (None, "batch", "length"))
        per_token = jax.lax.map(functools.partial(token_losses, params), chunks)
        return jnp.mean(per_token.swapaxes(0, 1).reshape(b, length - 1))

    metrics_sh = {"loss": rep, "grad_norm": rep}
    return Program(
        model_cfg=model_cfg,
        mesh=mesh,
        rules=rules,
        layout=layout,
        tx=tx,
        param_shardings=p_sh,
        opt_shardings=o_sh,
        init=jax.jit(init, out_shardings=(p_sh, o_sh), compiler_options=compiler_options_for_init(mesh)),
        init_fn=jax.jit(init, out_shardings=(p_sh, o_sh)),
        train_step=jax.jit(
            train_step,
            in_shardings=(p_sh, o_sh, b_sh, rep),
            out_shardings=(p_sh, o_sh, metrics_sh),
            donate_argnums=(0, 1),
        ),
        train_steps=jax.jit(
            train_steps,
            in_shardings=(p_sh, o_sh, stacked_sharding(mesh), rep, rep),
            out_shardings=(p_sh, o_sh, metrics_sh),
            donate_argnums=(0, 1),
        ),
        eval_step=jax.jit(eval_step, in_shardings=(p_sh, b_sh), out_shardings=rep),
        steps_per_call=steps_per_call,
    )
