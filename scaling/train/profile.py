"""A jax.profiler trace of a window of training steps, for when MFU looks wrong.

`train.profile_steps = [start, stop]` (or `scaling train --profile START:STOP`) traces the
updates start .. stop-1 (0-based, as the loop numbers them; the first step includes
compilation, so start >= 1 shows the steady state) into RUN_DIR/profile/, in the layout
TensorBoard's profile plugin reads (`tensorboard --logdir RUN_DIR/profile`, or XProf), plus
a Perfetto trace (`*.trace.json.gz`, open at ui.perfetto.dev). Training goes on as usual;
the trace is closed after the device finished the window's last step, so it holds the
whole window. A resumed run traces the part of the window it still has to train.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

PROFILE_DIR = "profile"


def parse_window(text: str) -> tuple[int, int]:
    """'START:STOP' (the --profile flag) -> (start, stop)."""
    parts = text.split(":")
    try:
        if len(parts) != 2:
            raise ValueError
        window = (int(parts[0]), int(parts[1]))
    except ValueError:
        raise ValueError(f"--profile={text!r}: must look like START:STOP, e.g. 10:15") from None
    return check_window(window, "--profile")


def check_window(window: Any, name: str) -> tuple[int, ...]:
    """() for no trace, else (start, stop) with 0 <= start < stop."""
    if window in ("", None, [], ()):
        return ()
    if (
        not isinstance(window, (list, tuple))
        or len(window) != 2
        or any(isinstance(v, bool) or not isinstance(v, int) for v in window)
    ):
        raise ValueError(f"{name}={window!r}: must be [start, stop] (step numbers) or []")
    start, stop = window
    if start < 0 or stop <= start:
        raise ValueError(f"{name}={list(window)!r}: needs 0 <= start < stop")
    return (int(start), int(stop))


class StepProfiler:
    """Starts the trace before update `start`, stops it once update stop-1 has run."""

    def __init__(self, window: tuple[int, ...], run_dir: str | Path, *, enabled: bool = True) -> None:
        self.window = tuple(window) if enabled else ()
        self.log_dir = Path(run_dir) / PROFILE_DIR
        self.active = False

    def __enter__(self) -> StepProfiler:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()  # a run that ends inside the window (diverged, preempted) closes the trace

    def before(self, i: int) -> None:
        """Call before running update i (0-based)."""
        if self.window and not self.active and self.window[0] <= i < self.window[1]:
            import jax

            self.log_dir.mkdir(parents=True, exist_ok=True)
            jax.profiler.start_trace(str(self.log_dir), create_perfetto_trace=True)
            self.active = True

    def after(self, i: int, outputs: Any) -> None:
        """Call after dispatching update i with its outputs (waited for at the window's end)."""
        if self.active and i + 1 >= self.window[1]:
            self.stop(outputs)

    def stop(self, outputs: Any = None) -> None:
        if not self.active:
            return
        import jax

        if outputs is not None:
            jax.block_until_ready(outputs)
        jax.profiler.stop_trace()
        self.active = False
