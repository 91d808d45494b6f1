"""Can two runs' parameters be mixed? Same parameter names and shapes, same forward function.

Interpolating θ_b into θ_a's model only means something when every parameter lines up and
the model computes the same function of them. Shapes are compared first, so the usual
mistake (different width or depth) is reported as the first parameter whose shape differs;
then the model configs, ignoring keys that change only initialisation or the numerics of
the same function (`FUNCTION_FREE_KEYS`).
"""

from __future__ import annotations

import dataclasses

# Model-config keys that do not change the function the parameters define.
FUNCTION_FREE_KEYS = frozenset({"init_std", "compute_dtype", "attention"})


def check_same_architecture(model_a, model_b, *, names=("a", "b")) -> None:
    """Raise ValueError naming the first parameter (path, both shapes) or config key that differs."""
    from scaling.train import param_shapes

    la, lb = param_shapes(model_a), param_shapes(model_b)
    na, nb = names
    for name, sa in la.items():
        if name not in lb:
            raise ValueError(f"different architectures: parameter {name!r} of {na} does not exist in {nb}")
        if sa != lb[name]:
            raise ValueError(
                f"different architectures: parameter {name!r} has shape {sa} in {na} but {lb[name]} in {nb}"
            )
    extra = [n for n in lb if n not in la]
    if extra:
        raise ValueError(f"different architectures: parameter {extra[0]!r} of {nb} does not exist in {na}")
    da, db = dataclasses.asdict(model_a), dataclasses.asdict(model_b)
    diffs = [
        f"model.{k}: {da[k]!r} in {na}, {db.get(k)!r} in {nb}"
        for k in da
        if k not in FUNCTION_FREE_KEYS and da[k] != db.get(k)
    ]
    if diffs:
        raise ValueError("different architectures (same parameter shapes, different function): " + "; ".join(diffs))
