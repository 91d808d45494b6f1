"""Orbax checkpoints of a run: `DIR/checkpoints/<step>/{params, opt_state, meta}`.

One `ocp.CheckpointManager` with three items: `params` and `opt_state` (StandardSave,
sharded arrays), and `meta` (JSON: step, the resolved config). Saves are asynchronous
(the train loop goes on while the arrays are written). Orbax writes each step into a
temporary directory and renames it once complete (with a commit marker), so a checkpoint
interrupted by `kill -9` is never listed by `all_steps()` and never restored; stale
temporary directories are removed when the manager opens.

Which steps are kept: the latest `keep`, plus any steps passed as `keep_steps` (e.g.
every evaluation step, for weight-space interpolation, or WSD branch points).

Restoring targets abstract arrays that carry the *current* mesh's shardings, so a run
saved on one mesh shape restores onto another (8×1 → 2×4, ...).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orbax.checkpoint as ocp
from orbax.checkpoint import checkpoint_managers as policies


def checkpoint_dir(run_dir: str | Path) -> Path:
    return Path(run_dir).absolute() / "checkpoints"


class Checkpoints:
    def __init__(
        self, directory: str | Path, *, keep: int = 2, keep_steps=(), async_save: bool = True, read_only: bool = False
    ):
        self.directory = Path(directory).absolute()
        policy = policies.LatestN(keep)
        if keep_steps:
            policy = policies.AnyPreservationPolicy([policy, policies.CustomSteps(list(keep_steps))])
        options = ocp.CheckpointManagerOptions(
            preservation_policy=policy,
            enable_async_checkpointing=async_save,
            cleanup_tmp_directories=not read_only,
            read_only=read_only,
            create=not read_only,
        )
        self.manager = ocp.CheckpointManager(self.directory, options=options)

    def steps(self) -> list[int]:
        return sorted(self.manager.all_steps())

    def latest_step(self) -> int | None:
        return self.manager.latest_step()

    def save(self, step: int, params: dict, opt_state: Any, meta: dict) -> None:
        """Start an (asynchronous) save of `step`; a step already on disk is left alone."""
        if step in self.manager.all_steps():
            return
        self.manager.save(
            step,
            args=ocp.args.Composite(
                params=ocp.args.StandardSave(params),
                opt_state=ocp.args.StandardSave(opt_state),
                meta=ocp.args.JsonSave(meta),
            ),
            force=True,
        )

    def restore(self, step: int, abstract_params: dict, abstract_opt_state: Any = None) -> dict:
        """{"params", "opt_state" (when a target is given), "meta"} of `step`, placed as the
        abstract targets' shardings say."""
        items = {"params": ocp.args.StandardRestore(abstract_params), "meta": ocp.args.JsonRestore()}
        if abstract_opt_state is not None:
            items["opt_state"] = ocp.args.StandardRestore(abstract_opt_state)
        if step not in self.manager.all_steps():
            raise FileNotFoundError(
                f"no complete checkpoint at step {step} in {self.directory} (steps: {self.steps() or 'none'})"
            )
        return dict(self.manager.restore(step, args=ocp.args.Composite(**items)))

    def wait(self) -> None:
        self.manager.wait_until_finished()

    def close(self) -> None:
        self.manager.close()

    def __enter__(self) -> Checkpoints:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
