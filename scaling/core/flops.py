"""The FLOP conventions: how a run's `flops` are counted (see
`scaling.model.accounting.flops_per_token` for what each counts).

"exact" is the default everywhere (the trainer's `train.flop_convention`, the sweep's
`sweep.flop_convention`, `flops_per_token`): it counts every matmul the model runs,
attention included, so FLOPs stay comparable across widths, depths and context lengths,
where 6N undercounts small, long-context models most. "6N" and "6N+attention" are there
to compare with Kaplan et al. (2020).
"""

from __future__ import annotations

FLOP_CONVENTIONS = ("6N", "6N+attention", "exact")
DEFAULT_FLOP_CONVENTION = "exact"
