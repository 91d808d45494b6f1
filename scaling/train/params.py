"""The model's parameters as a flat dict {"blocks.0.attn.q": array, ...}, and their shardings.

The trainer, its optimizer state and its checkpoints hold parameters in this flat,
framework-free form (dotted names, string keys); `ParamLayout` converts to and from the
`nnx.State` that `nnx.merge` needs inside the compiled step. Flat dicts are what
weight-space interpolation and `load_params` hand to other code.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import jax
from flax import nnx
from jax.sharding import Mesh, NamedSharding

from scaling.sharding import fit_to_shape, logical_to_mesh


def _key_name(k: Any) -> str:
    for attr in ("key", "name", "idx"):
        if hasattr(k, attr):
            return str(getattr(k, attr))
    return str(k)


@dataclass(frozen=True, eq=False)
class ParamLayout:
    """How the flat dict maps onto the model's `nnx.State` of parameters."""

    graphdef: Any
    treedef: Any  # of the nnx.State of Params (leaves: arrays)
    names: tuple[str, ...]  # flat names, in treedef leaf order
    logical: dict[str, tuple | None]  # name -> logical axis names
    abstract: dict[str, jax.ShapeDtypeStruct]

    def to_state(self, flat: dict[str, jax.Array]) -> nnx.State:
        return jax.tree.unflatten(self.treedef, [flat[n] for n in self.names])

    def from_state(self, state: nnx.State) -> dict[str, jax.Array]:
        return dict(zip(self.names, jax.tree.leaves(state)))

    def model(self, flat: dict[str, jax.Array]) -> nnx.Module:
        return nnx.merge(self.graphdef, self.to_state(flat))

    def shardings(self, mesh: Mesh, rules) -> dict[str, NamedSharding]:
        """Each parameter's sharding under `rules`; a dimension that its mesh axes do not
        divide (e.g. vocab 257 over model=2) stays replicated."""
        return {
            n: NamedSharding(
                mesh, fit_to_shape(logical_to_mesh(self.logical[n], rules, mesh), self.abstract[n].shape, mesh)
            )
            for n in self.names
        }

    def kind(self, name: str) -> str:
        from scaling.model.parameterization import param_kind

        return param_kind(name.rsplit(".", 1)[-1])


def _split(model: nnx.Module):
    graphdef, params, *rest = nnx.split(model, nnx.Param, ...)
    if any(jax.tree.leaves(r) for r in rest):
        raise NotImplementedError("the trainer supports models whose only state is nnx.Param")
    return graphdef, params


def make_model(model_cfg, seed) -> nnx.Module:
    from scaling.model import Transformer

    # a key, not the int, so that `seed` may be traced (nnx.Rngs(int) builds the same key)
    return Transformer(model_cfg, rngs=nnx.Rngs(jax.random.key(seed)))


@functools.lru_cache(maxsize=16)
def param_layout(model_cfg) -> ParamLayout:
    """The layout of `Transformer(model_cfg)`, found without allocating any parameter."""
    abstract_model = nnx.eval_shape(lambda: make_model(model_cfg, 0))
    graphdef, state = _split(abstract_model)
    variables = jax.tree_util.tree_flatten_with_path(state, is_leaf=lambda x: isinstance(x, nnx.Variable))[0]
    names, logical = [], {}
    for path, var in variables:
        name = ".".join(_key_name(k) for k in path)
        names.append(name)
        axes = var.get_metadata().get("out_sharding")
        logical[name] = tuple(axes) if axes else None
    leaves, treedef = jax.tree.flatten(state)
    if len(leaves) != len(names):
        raise RuntimeError("parameter state has Variables with several leaves; cannot flatten")
    abstract = {n: jax.ShapeDtypeStruct(x.shape, x.dtype) for n, x in zip(names, leaves)}
    return ParamLayout(graphdef, treedef, tuple(names), logical, abstract)


def init_params(model_cfg, layout: ParamLayout, seed) -> dict[str, jax.Array]:
    """Traceable: the flat parameters of a freshly initialised model (jit it with out_shardings)."""
    _, state = _split(make_model(model_cfg, seed))
    return layout.from_state(state)


def multipliers(model_cfg, layout: ParamLayout) -> dict[str, float]:
    """muP per-tensor learning-rate multipliers by flat name (all 1.0 under SP)."""
    from scaling.model import lr_multipliers

    state = layout.to_state(layout.abstract)
    return dict(zip(layout.names, jax.tree.leaves(lr_multipliers(model_cfg, state))))


def decay_mask(layout: ParamLayout, decay_embeddings: bool) -> dict[str, bool]:
    """Weight decay on weight matrices only: never on norms or 1-D parameters; on the token
    embedding only when `decay_embeddings`."""
    out = {}
    for name in layout.names:
        kind = layout.kind(name)
        out[name] = (
            kind != "norm" and len(layout.abstract[name].shape) >= 2 and (decay_embeddings or kind != "embedding")
        )
    return out


def count(flat: dict[str, Any]) -> int:
    return sum(int(x.size) for x in flat.values())
