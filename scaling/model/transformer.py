"""The decoder-only causal language model of the family (Flax NNX)."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from flax import nnx

from scaling.model import parameterization as pz
from scaling.model.config import ModelConfig
from scaling.model.layers import ACT, Block, RMSNorm, param, rope_table
from scaling.model.lowrank import block_class
from scaling.model.precision import einsum_f32
from scaling.sharding import constrain, split_of


class Transformer(nnx.Module):
    """`Transformer(cfg, rngs=nnx.Rngs(seed))`; `model(tokens int32[B, T]) -> float32[B, T, vocab]`.

    Token embedding → `depth` pre-norm blocks (RMSNorm, rotary causal attention, MLP)
    → final RMSNorm → readout (the embedding matrix itself when `tied_embeddings`).
    With `cfg.scan_layers` the blocks' parameters carry a leading "layers" axis and run
    under `jax.lax.scan`; otherwise they are an `nnx.List` unrolled in Python.
    `model(tokens, return_activations=True)` returns `(logits, activations)` with
    activations "embedding", "block_0" … "block_{depth-1}" and "logits".
    """

    def __init__(self, cfg: ModelConfig, *, rngs: nnx.Rngs):
        self.cfg = cfg
        self.embedding = param(rngs, (cfg.vocab_size, cfg.width), ("vocab", "embed"), pz.init_std(cfg, "embedding"))
        if cfg.scan_layers:
            self.blocks = _stacked_blocks(cfg, rngs)
        else:
            self.blocks = nnx.List([block_class(cfg)(cfg, rngs=rngs) for _ in range(cfg.depth)])
        self.final_norm = RMSNorm(cfg, rngs=rngs)
        if not cfg.tied_embeddings:
            self.readout = param(rngs, (cfg.width, cfg.vocab_size), ("embed", "vocab"), pz.init_std(cfg, "readout"))

    def _lookup(self, tokens: jax.Array) -> jax.Array:
        """Token embeddings x[B, T, width], the table first brought to a layout that the
        gather can use without resharding its output.

        The table is stored (vocab, embed) over (model, fsdp), the tokens split over the
        batch axes (data, fsdp). Left alone, GSPMD gathers along the table's embed split
        and must then move the output onto the batch split: with all-to-alls at best, and
        on meshes such as (2, 2, 2) or (2, 4, 1) only by replicating everything
        ("involuntary full rematerialization"). So, whichever moves fewer bytes per step
        and device:
        - a table with at most as many rows as a batch shard has tokens (a byte-level
          vocab) is all-gathered whole, and each device looks up its own tokens;
        - a larger one is all-gathered over embed only (the FSDP gather every weight
          gets) and, when its vocab is split, looked up vocab-parallel: each vocab shard
          finds the tokens in its slice and one all-reduce of the activations sums them.
        Outside `use_rules` both are a plain `take`.
        """
        table = self.embedding[...]
        whole = table.shape[0] <= tokens.size // split_of("batch")[1]
        return jnp.take(constrain(table, (None, None) if whole else ("vocab", None)), tokens, axis=0)

    def __call__(self, tokens: jax.Array, *, return_activations: bool = False):
        cfg = self.cfg
        dt = jnp.dtype(cfg.compute_dtype)
        t = tokens.shape[1]
        if t > cfg.seq_len:
            raise ValueError(f"sequence length {t} exceeds seq_len={cfg.seq_len}")
        cos, sin = (jnp.asarray(a[:t]) for a in rope_table(cfg.seq_len, cfg.head_dim, float(cfg.rope_theta)))
        acts: dict[str, jax.Array] = {}

        x = constrain(self._lookup(tokens).astype(dt), ACT)
        if return_activations:
            acts["embedding"] = x

        def block_fn(graph):  # (block state, x) -> x, under the config's remat policy
            return _checkpointed(functools.partial(_apply_block, graph, cos=cos, sin=sin), cfg.remat)

        if cfg.scan_layers:
            graphdef, state = nnx.split(self.blocks)
            run_block = block_fn(graphdef)

            def body(h, layer_state):
                h = run_block(layer_state, h)
                return h, (h if return_activations else None)

            x, ys = jax.lax.scan(body, x, state)
            if return_activations:
                acts.update({f"block_{i}": ys[i] for i in range(cfg.depth)})
        else:
            for i, block in enumerate(self.blocks):
                if cfg.remat == "none":
                    x = block(x, cos, sin)
                else:
                    graph, block_state = nnx.split(block)
                    x = block_fn(graph)(block_state, x)
                if return_activations:
                    acts[f"block_{i}"] = x

        h = self.final_norm(x)
        if cfg.tied_embeddings:
            table = constrain(self.embedding[...], ("vocab", None))  # gathered over embed (FSDP)
            logits = einsum_f32("btd,vd->btv", h, table.astype(dt))
        else:
            readout = constrain(self.readout[...], (None, "vocab"))  # gathered over embed (FSDP)
            logits = einsum_f32("btd,dv->btv", h, readout.astype(dt))
        mult = pz.output_multiplier(cfg)
        if mult != 1.0:
            logits = logits * mult
        logits = constrain(logits, ("batch", "length", "vocab"))
        if return_activations:
            acts["logits"] = logits
            return logits, acts
        return logits


def _apply_block(graph, block_state, x, *, cos, sin):
    return nnx.merge(graph, block_state)(x, cos, sin)


def _checkpointed(fn, remat: str):
    """`fn(block_state, x)` under the config's rematerialization policy: "none" as is,
    "full" saves only the block's input, "save_dots" also the outputs of its weight
    matmuls (the 2-D projections; attention's batched matmuls are recomputed)."""
    if remat == "none":
        return fn
    policy = jax.checkpoint_policies.dots_with_no_batch_dims_saveable if remat == "save_dots" else None
    return jax.checkpoint(fn, policy=policy)


def _stacked_blocks(cfg: ModelConfig, rngs: nnx.Rngs) -> Block:
    """`depth` blocks whose parameters are stacked on a leading "layers" axis."""

    @nnx.split_rngs(splits=cfg.depth)
    @nnx.vmap(in_axes=(0,), out_axes=0, transform_metadata={nnx.PARTITION_NAME: "layers"})
    def make(r: nnx.Rngs) -> Block:
        return block_class(cfg)(cfg, rngs=r)

    return make(rngs)
