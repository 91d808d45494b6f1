"""The train-function protocol between the sweep runner and a trainer.

    train_fn(config, run_dir) -> outcome

`config` is the run's resolved trainer config as plain data (`RunConfig.to_dict()`: the
JSON shape of the run's config.json); `outcome` has the `TrainOutcome` fields, as
attributes (`scaling.train.TrainResult`) or as keys of a mapping (a test's fake
trainer). Only `status` is required; the other fields are read under exactly these
names, the sweep store's own. A train function signals preemption by returning status
"preempted" or by raising `scaling.train.trainer.Preempted`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

OUTCOME_FIELDS = ("status", "eval_loss", "steps", "tokens", "flops", "wall_time_s", "error")


@runtime_checkable
class TrainOutcome(Protocol):
    """What a train function reports (status one of `scaling.core.status.RESULT_STATUSES`)."""

    @property
    def status(self) -> str: ...
    @property
    def eval_loss(self) -> float | None: ...
    @property
    def steps(self) -> int: ...
    @property
    def tokens(self) -> int: ...
    @property
    def flops(self) -> float: ...
    @property
    def wall_time_s(self) -> float: ...
    @property
    def error(self) -> str | None: ...


class TrainFn(Protocol):
    def __call__(self, config: dict[str, Any], run_dir: Path) -> TrainOutcome | Mapping[str, Any]: ...


def outcome_field(outcome: TrainOutcome | Mapping[str, Any], name: str) -> Any:
    """One field of an outcome, attribute or key (None when absent)."""
    if name not in OUTCOME_FIELDS:
        raise KeyError(f"{name!r} is not a train outcome field ({', '.join(OUTCOME_FIELDS)})")
    if isinstance(outcome, Mapping):
        return outcome.get(name)
    return getattr(outcome, name, None)
