"""Which runs of a plan train packed: consecutive runs of one plan group whose trainer
configs differ only in the peak learning rate and the init seed (an LR grid, a seed sweep)
share one program (`scaling.train.packed`); each is still its own run in the store."""

from __future__ import annotations

from collections.abc import Iterable

from scaling.sweep.plan import PlannedRun


def pack_units(runs: Iterable[PlannedRun], max_pack: int) -> list[list[PlannedRun]]:
    """`runs` in order, cut into units: consecutive runs of one group that can share a
    program form one unit of at most `max_pack`; every other run is a unit of its own."""
    units: list[list[PlannedRun]] = []
    if max_pack <= 1:
        return [[r] for r in runs]
    from scaling.train.packed import pack_key

    last = None
    for r in runs:
        key = (r.group, pack_key(r.train_config)) if not r.parent_run_id else None
        if units and key is not None and key[1] is not None and key == last and len(units[-1]) < max_pack:
            units[-1].append(r)
        else:
            units.append([r])
        last = key
    return units
