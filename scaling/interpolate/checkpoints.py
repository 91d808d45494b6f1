"""Naming checkpoints: `RUN_DIR@STEP` strings, resolved and checked before any compute.

A checkpoint is a run directory written by `scaling train` plus one of its saved steps:
`runs/tiny@200`, or `runs/tiny` (or `runs/tiny@latest`) for the latest complete one. Every
failure names the offending text and, where a step is wrong, lists the steps that exist,
because the usual mistake is asking for a step that `train.keep` has already deleted.
Restoring a checkpoint is `scaling.train.load_params(run_dir, step, mesh)`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Checkpoint:
    """One saved step of one run (run_dir is absolute)."""

    run_dir: Path
    step: int

    def __str__(self) -> str:
        return f"{self.run_dir}@{self.step}"

    def to_dict(self) -> dict:
        return {"run_dir": str(self.run_dir), "step": self.step}


def split_spec(spec: str) -> tuple[str, int | None]:
    """`"runs/a@200"` -> ("runs/a", 200); `"runs/a"` or `"runs/a@latest"` -> ("runs/a", None).

    A directory whose own name contains "@" is accepted as is when it exists.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"checkpoint {spec!r}: expected RUN_DIR or RUN_DIR@STEP (e.g. runs/tiny@200)")
    if "@" not in spec or Path(spec).is_dir():
        return spec, None
    run_dir, step = spec.rsplit("@", 1)
    if not run_dir:
        raise ValueError(f"checkpoint {spec!r}: no run directory before '@' (expected RUN_DIR@STEP)")
    if step == "latest":
        return run_dir, None
    if not step.isdigit():
        raise ValueError(
            f"checkpoint {spec!r}: step {step!r} is not a whole number "
            "(expected RUN_DIR@STEP, e.g. runs/tiny@200, or RUN_DIR for the latest)"
        )
    return run_dir, int(step)


def resolve(spec: str | Path | Checkpoint | tuple) -> Checkpoint:
    """A `Checkpoint` from a spec string, a run directory Path (its latest checkpoint), a
    (run_dir, step) pair (step None = latest) or a Checkpoint,
    after checking that the step is saved."""
    from scaling.train import checkpoint_steps

    if isinstance(spec, Path):  # a run directory: its latest checkpoint
        spec = (str(spec), None)
    if isinstance(spec, Checkpoint):
        run_dir, step, text = spec.run_dir, spec.step, str(spec)
    elif isinstance(spec, tuple):
        if len(spec) != 2:
            raise ValueError(f"checkpoint {spec!r}: expected (run_dir, step)")
        run_dir, step = spec
        text = f"{run_dir}@{step if step is not None else 'latest'}"
        if step is not None and (isinstance(step, bool) or not isinstance(step, int) or step < 0):
            raise ValueError(f"checkpoint {text!r}: step {step!r} must be a non-negative integer")
    else:
        run_dir, step = split_spec(spec)
        text = spec
    steps = checkpoint_steps(run_dir)
    if not steps:
        raise FileNotFoundError(f"checkpoint {text!r}: run {str(run_dir)!r} has no complete checkpoint")
    if step is None:
        step = steps[-1]
    elif step not in steps:
        raise FileNotFoundError(
            f"checkpoint {text!r}: step {step} is not saved in {str(run_dir)!r}; "
            f"available steps: {', '.join(map(str, steps))}"
        )
    return Checkpoint(Path(run_dir).absolute(), int(step))
