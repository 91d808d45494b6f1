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

Faults are named, not tracebacks: a damaged step (a truncated or deleted array file, a
corrupt JSON item) raises `CheckpointCorrupt` naming the step and the file;
`restore_latest` then moves that step aside (`checkpoints/damaged.<step>.<time>`), records
it in `checkpoint_faults.jsonl` beside the checkpoints, and falls back to the newest intact
step. A failed asynchronous save (disk full, ...) is caught by `check_saves` at the next
host sync point, so training stops at the first failed save with the last complete
checkpoint intact, rather than running on and failing later inside Orbax.
"""

from __future__ import annotations

import errno
import json
import logging
import re
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import orbax.checkpoint as ocp
from orbax.checkpoint import checkpoint_managers as policies

FAULTS_FILE = "checkpoint_faults.jsonl"
DAMAGED_PREFIX = "damaged."


def checkpoint_dir(run_dir: str | Path) -> Path:
    return Path(run_dir).absolute() / "checkpoints"


class CheckpointCorrupt(ValueError):
    """A saved step that cannot be read back: `step`, the damaged `path` and the `reason`."""

    def __init__(self, step: int, path: Path, reason: str) -> None:
        super().__init__(f"checkpoint step {step} is damaged: {path}: {reason}")
        self.step, self.path, self.reason = step, Path(path), reason


class CheckpointSaveFailed(OSError):
    """An asynchronous save did not complete (`disk_full` when the device ran out of space)."""

    def __init__(self, step: int | None, directory: Path, cause: str) -> None:
        self.disk_full = bool(_DISK_FULL.search(cause))
        file = _error_path(cause)
        if self.disk_full:
            msg = f"disk full: no space left on device saving checkpoint step {step} in {directory}"
            msg += f" (writing {file})" if file else ""
        else:
            msg = f"checkpoint step {step} could not be saved in {directory}: {_first_line(cause)}"
        super().__init__(errno.ENOSPC if self.disk_full else errno.EIO, msg)
        self.step = step

    def __str__(self) -> str:
        return self.strerror


_DISK_FULL = re.compile(r"No space left on device|os_error_code='?28\b|ENOSPC|RESOURCE_EXHAUSTED: Error writing")
# tensorstore names the files it failed on as: local file "PATH"
_LOCAL_FILE = re.compile(r'(?:local file|Failed writing:) "([^"]+)"')
# errors of a damaged step (tensorstore status codes on reads, and the JSON items)
_READ_FAULT = re.compile(
    r"^(DATA_LOSS|OUT_OF_RANGE|NOT_FOUND|FAILED_PRECONDITION|INVALID_ARGUMENT)?:?.*Error (reading|decoding)"
)


def _first_line(text: str, limit: int = 300) -> str:
    line = text.strip().splitlines()[0] if text.strip() else text
    return line if len(line) <= limit else line[:limit] + "..."


def _error_path(text: str) -> str | None:
    """The innermost file a tensorstore error names (not a directory), if any."""
    files = [f for f in _LOCAL_FILE.findall(text) if not f.endswith("/")]
    return files[-1] if files else None


def _damaged_file(step_dir: Path, err: BaseException) -> tuple[Path, str]:
    """(the damaged file, why) for a restore of `step_dir` that raised `err`."""
    text = str(err)
    named = _error_path(text)
    if named:
        reason = re.sub(r"\s*\[tensorstore_spec.*", "", text.split(": ")[-1] if ": " in text else text, flags=re.S)
        return Path(named), _first_line(reason) or type(err).__name__
    for f in sorted(
        p for p in step_dir.rglob("*") if p.is_file() and p.parent.name != "d" and p.stat().st_size < 1 << 24
    ):
        try:
            raw = f.read_bytes()
            if raw[:1] in (b"{", b"[") or f.name in ("metadata", "_METADATA", "_CHECKPOINT_METADATA"):
                json.loads(raw.decode("utf-8"))
        except (ValueError, UnicodeDecodeError) as bad:
            return f, f"not valid JSON ({bad})"
    return step_dir, _first_line(f"{type(err).__name__}: {text}")


def _is_read_fault(err: BaseException) -> bool:
    if isinstance(err, (json.JSONDecodeError, UnicodeDecodeError, EOFError)):
        return True
    if isinstance(err, OSError) and not isinstance(err, PermissionError):
        return True
    return bool(_READ_FAULT.search(str(err)[:2000]))


def _quiet_closed_loop(unraisable) -> None:
    """sys.unraisablehook that drops the "Event loop is closed" errors tensorstore's
    callbacks raise once a failed async save has shut Orbax's event loop down (dozens of
    identical tracebacks after one disk-full error); anything else goes to the old hook."""
    err = unraisable.exc_value
    if isinstance(err, RuntimeError) and str(err) == "Event loop is closed":
        return
    _quiet_closed_loop.previous(unraisable)


class _QuietDiskFullTasks(logging.Filter):
    """Drops asyncio's "Task exception was never retrieved" records of Orbax write tasks that
    failed for lack of space: they are logged when the tasks are garbage-collected, after
    the failure has been reported once, possibly after the manager is closed."""

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        return not ("orbax" in text and _DISK_FULL.search(text))


_QUIET_TASKS = _QuietDiskFullTasks()


def _install_quiet_hook() -> None:
    if sys.unraisablehook is not _quiet_closed_loop:
        _quiet_closed_loop.previous = sys.unraisablehook
        sys.unraisablehook = _quiet_closed_loop
    if _QUIET_TASKS not in logging.getLogger("asyncio").filters:
        logging.getLogger("asyncio").addFilter(_QUIET_TASKS)


class _SaveErrors(logging.Filter):
    """Catches the errors Orbax's background save threads log (the exception itself is
    consumed by Orbax's own finalizer, so this is the one reliable signal), and drops the
    repeated disk-full records: the trainer reports that once, in one line."""

    def __init__(self, directory: Path) -> None:
        super().__init__()
        self.first: str | None = None
        self.directory = str(directory)

    LOGGERS = ("absl", "asyncio")  # Orbax's own, and the never-retrieved write tasks of its event loop

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.ERROR:
            return True
        if record.name == "absl" and "orbax" not in (record.pathname or ""):
            return True
        text = record.getMessage()
        if record.exc_info and record.exc_info[1] is not None:
            text += "\n" + str(record.exc_info[1])
        if record.name == "asyncio" and "orbax" not in text:
            return True
        # another manager's save or restore (an earlier one in this process, its failed task
        # collected late: "Task exception was never retrieved"): not ours
        # and a record naming only finished steps (no save's temporary directory) is a restore's,
        # e.g. of a damaged step that `restore_latest` set aside
        paths = [p for p in re.findall(r"(/[^\s\"'\\]+)", text) if "checkpoint" in p]
        if paths and not any(p.startswith(self.directory) and ".orbax-checkpoint-tmp" in p for p in paths):
            return True
        if self.first is None or (_DISK_FULL.search(text) and not _DISK_FULL.search(self.first)):
            self.first = text  # the first error, or the disk-full that caused the ones before it
        # A save's follow-on write errors (tensorstore reading back a block an earlier failed
        # write left unfinished: NOT_FOUND ... Error writing) are that failure again, and may be
        # logged before it by another thread: dropped, the trainer reports self.first once.
        follow_on = "Error writing" in text and "NOT_FOUND" in text
        return not (_DISK_FULL.search(text) or follow_on)


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
        self.read_only = read_only
        self.last_save: int | None = None
        self._errors = _SaveErrors(self.directory)
        _install_quiet_hook()
        for name in _SaveErrors.LOGGERS:
            logging.getLogger(name).addFilter(self._errors)

    def steps(self) -> list[int]:
        return sorted(self.manager.all_steps())

    def latest_step(self) -> int | None:
        return self.manager.latest_step()

    def save(self, step: int, params: dict, opt_state: Any, meta: dict) -> None:
        """Start an (asynchronous) save of `step`; a step already on disk is left alone."""
        if step in self.manager.all_steps():
            return
        self.check_saves()
        previous, self.last_save = self.last_save, step
        try:
            self._save(step, params, opt_state, meta)
        except Exception as err:  # noqa: BLE001 - Orbax raises an earlier async save's error here
            self._failed(f"{type(err).__name__}: {err}", previous if previous is not None else step)

    def _failed(self, cause: str, step: int | None) -> None:
        """Raise CheckpointSaveFailed for `step`, after removing what the failed save left
        (its temporary directories: the space a result file needs when the disk is full)."""
        self._errors.first = None
        for tmp in self.directory.glob(f"{step}.orbax-checkpoint-tmp*") if step is not None else ():
            shutil.rmtree(tmp, ignore_errors=True)
        self.manager.reload()
        raise CheckpointSaveFailed(step, self.directory, cause) from None

    def _save(self, step: int, params: dict, opt_state: Any, meta: dict) -> None:
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
        try:
            return dict(self.manager.restore(step, args=ocp.args.Composite(**items)))
        except Exception as err:  # noqa: BLE001 - a damaged step is named; anything else is re-raised
            if not _is_read_fault(err):
                raise
            path, reason = _damaged_file(self.directory / str(step), err)
            raise CheckpointCorrupt(step, path, reason) from None

    def restore_latest(
        self, abstract_params: dict, abstract_opt_state: Any = None, say=None
    ) -> tuple[int, dict] | None:
        """(step, restored items) of the newest step that restores; None when no step is
        saved. A damaged step is moved aside (so it is never listed or saved over) and
        recorded in FAULTS_FILE; `say` gets one line per fallback. Raises the last
        CheckpointCorrupt when no step is intact."""
        damaged: CheckpointCorrupt | None = None
        for step in reversed(self.steps()):
            try:
                got = self.restore(step, abstract_params, abstract_opt_state)
            except CheckpointCorrupt as err:
                damaged = err
                self._set_aside(err, say)
                continue
            if damaged is not None:
                self._record({"event": "restored", "step": step, "after_damaged_step": damaged.step})
            return step, got
        if damaged is not None:
            raise damaged
        return None

    def _set_aside(self, err: CheckpointCorrupt, say) -> None:
        moved = None
        if not self.read_only:
            target = self.directory / f"{DAMAGED_PREFIX}{err.step}.{time.strftime('%Y%m%dT%H%M%S')}"
            try:
                (self.directory / str(err.step)).rename(target)
                moved = str(target)
            except OSError:
                pass
            self.manager.reload()
            self._record({"event": "damaged", "step": err.step, "file": str(err.path), "reason": err.reason,
                          "moved_to": moved})  # fmt: skip
        if say is not None:
            where = f"; moved to {moved}" if moved else ""
            say(f"{err}{where}; falling back to the previous checkpoint")

    def _record(self, event: dict) -> None:
        with open(self.directory.parent / FAULTS_FILE, "a", encoding="utf-8") as f:
            f.write(json.dumps({"time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **event}) + "\n")

    def check_saves(self) -> None:
        """Raise `CheckpointSaveFailed` when an asynchronous save has failed since the last
        check (cheap: no waiting)."""
        cause = self._errors.first
        if cause is None:
            try:
                self.manager.check_for_errors()
            except Exception as err:  # noqa: BLE001 - Orbax re-raises the thread's error as is
                cause = f"{type(err).__name__}: {err}"
        if cause is not None:
            self._failed(cause, self.last_save)

    def wait(self) -> None:
        try:
            self.manager.wait_until_finished()
        except Exception as err:  # noqa: BLE001
            self._errors.first = self._errors.first or f"{type(err).__name__}: {err}"
        self.check_saves()

    def close(self) -> None:
        try:
            self.manager.close()
        finally:
            for name in _SaveErrors.LOGGERS:
                logging.getLogger(name).removeFilter(self._errors)

    def __enter__(self) -> Checkpoints:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
