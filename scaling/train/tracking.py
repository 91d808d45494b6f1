"""Live experiment tracking: TensorBoard (tensorboardX) and Weights & Biases, fed the rows
of `metrics.jsonl`, which stays the source of truth.

A `[track]` section chooses the backends (any subset of TRACK_BACKENDS, default none).
Each row written to metrics.jsonl goes, unchanged, to every backend at its `step`: the
dashboards show the same curves as the file.

Resuming without duplicates (after kill -9 and a rerun):
* TensorBoard: the new writer opens with `purge_step` = the restored checkpoint's step + 1,
  so TensorBoard drops every event logged after that checkpoint by the killed process,
  and the resumed run logs those steps again. Each row is flushed to the event file as
  it is logged, so every row up to a checkpoint is on disk before the checkpoint counts.
* W&B: the run id is the tracker's run id and `resume="allow"`, so every restart continues
  one W&B run. W&B cannot drop history, and its service process drops whatever it had not
  written when its parent is killed with -9 (measured: an offline run of a killed
  process holds no history at all). So a resumed run replays the rows metrics.jsonl
  kept (those up to the restored checkpoint) from W&B's own next step on (`run.step`:
  the server's count on a resumed online run, 0 offline), then logs on; a row at a step
  W&B already has is not sent again. Training is deterministic, so a row W&B kept from
  the killed process equals the one metrics.jsonl holds again after the resume.
W&B's mode comes from the environment (WANDB_MODE=offline writes local runs that
`wandb sync` uploads later; the tests run it so).

Both libraries are optional extras (`scaling[tensorboard]`, `scaling[wandb]`, both:
`scaling[track]`); asking for a backend whose library is missing is a one-line error
naming the extra, raised before anything is compiled.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scaling.extras import require

TRACK_BACKENDS = ("tensorboard", "wandb")
_MODULES = {"tensorboard": ("tensorboardX", "tensorboard"), "wandb": ("wandb", "wandb")}
TENSORBOARD_DIR = "tensorboard"  # inside the run directory, by default


@dataclass(frozen=True)
class TrackConfig:
    """Where a run's metrics are mirrored live.

    backends: any of "tensorboard", "wandb" (default none).
    project: the W&B project ("" = "scaling"; a sweep sets its name).
    group: the W&B group ("" = none; a sweep sets its name, grouping its runs).
    run_id: the tracker's run id ("" = the run directory's name; a sweep sets the run id).
        Restarts of one run reuse it, so a resumed run continues the same tracker run.
    entity: the W&B entity (team or user; "" = W&B's default).
    tensorboard_dir: the TensorBoard log directory ("" = RUN_DIR/tensorboard).
    wandb_dir: where W&B keeps its local files ("" = the run directory).
    """

    backends: tuple[str, ...] = ()
    project: str = ""
    group: str = ""
    run_id: str = ""
    entity: str = ""
    tensorboard_dir: str = ""
    wandb_dir: str = ""

    def __post_init__(self) -> None:
        from scaling.core import config as cc

        check = cc.Checks("track", self)
        backends = self.backends
        if isinstance(backends, str):
            backends = [backends] if backends else []
        if not isinstance(backends, (list, tuple)):
            check.fail("backends", f"must be a list of {', '.join(TRACK_BACKENDS)}")
        for b in backends:
            if b not in TRACK_BACKENDS:
                close = cc.closest(str(b), TRACK_BACKENDS)
                hint = f" (did you mean {close!r}?)" if close else ""
                check.fail("backends", f"unknown backend {b!r}; choose from {', '.join(TRACK_BACKENDS)}{hint}")
        check.set("backends", tuple(dict.fromkeys(backends)))
        for name in ("project", "group", "run_id", "entity", "tensorboard_dir", "wandb_dir"):
            if not isinstance(getattr(self, name), str):
                check.fail(name, "must be a string")

    def check_available(self) -> None:
        """Fail fast (before compiling) when a chosen backend's library is missing."""
        for b in self.backends:
            module, extra = _MODULES[b]
            require(module, extra, f"track.backends = [{b!r}]")


def _scalars(row: dict) -> dict[str, float]:
    """The row's finite numbers, except the step (the x axis)."""
    out = {}
    for key, value in row.items():
        if key == "step" or isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        if math.isfinite(value):
            out[key] = float(value)
    return out


@dataclass
class _TensorBoard:
    """tensorboardX's event-file writer, used synchronously: SummaryWriter queues events
    for a background thread that its flush() does not drain, so a row could still be in
    memory when a kill -9 comes after the checkpoint that covers it."""

    writer: Any

    @classmethod
    def open(cls, logdir: str, purge_step: int | None) -> _TensorBoard:
        from tensorboardX.event_file_writer import EventsWriter
        from tensorboardX.proto.event_pb2 import Event, SessionLog

        os.makedirs(logdir, exist_ok=True)
        has_events = any(n.startswith("events.out.tfevents") for n in os.listdir(logdir))
        # A file name of its own per (re)start: two starts in one second on one host must
        # not share an event file.
        writer = EventsWriter(os.path.join(logdir, "events"), f".{os.getpid()}")
        if has_events and purge_step is not None:
            # what SummaryWriter(purge_step=...) writes: TensorBoard hides every earlier
            # event at a step >= purge_step
            writer.write_event(
                Event(step=purge_step, wall_time=time.time(), session_log=SessionLog(status=SessionLog.START))
            )
        writer.flush()
        return cls(writer)

    def log(self, step: int, values: dict[str, float]) -> None:
        from tensorboardX.proto.event_pb2 import Event
        from tensorboardX.summary import scalar

        now = time.time()
        for key, value in values.items():
            self.writer.write_event(Event(step=step, wall_time=now, summary=scalar(key, value)))
        self.writer.flush()  # rows are per evaluation (rare): on disk at once, live in the dashboard

    def close(self, status: str) -> None:
        self.writer.close()


@dataclass
class _Wandb:
    run: Any
    next_step: int  # W&B has every step below this one (see the module docstring)

    @classmethod
    def open(cls, cfg: TrackConfig, run_id: str, wandb_dir: str, config: dict) -> _Wandb:
        os.makedirs(wandb_dir, exist_ok=True)
        run = _wandb_init(
            project=cfg.project or "scaling",
            entity=cfg.entity or None,
            group=cfg.group or None,
            id=run_id,
            name=run_id,
            resume="allow",
            dir=wandb_dir,
            config=config,
        )
        return cls(run, int(run.step))

    def log(self, step: int, values: dict[str, float]) -> None:
        if step >= self.next_step:
            self.run.log(values, step=step)
            self.next_step = step + 1

    def close(self, status: str) -> None:
        if status == "preempted":
            self.run.mark_preempting()
        self.run.finish(exit_code=0 if status in ("done", "preempted") else 1)


def _wandb_init(**kwargs):
    import wandb

    return wandb.init(**kwargs)


@dataclass
class Tracker:
    """The run's open backends; no backends = every call does nothing."""

    backends: list = field(default_factory=list)

    @classmethod
    def open(
        cls,
        cfg: TrackConfig,
        run_dir: str | os.PathLike,
        *,
        config: dict,
        resume_step: int | None,
        kept_rows: list[dict] = (),
    ) -> Tracker:
        """resume_step: the restored checkpoint's step (None on a fresh start);
        kept_rows: the rows metrics.jsonl kept from earlier starts (replayed to W&B)."""
        run_dir = Path(run_dir)
        run_id = cfg.run_id or run_dir.name
        out = cls()
        try:
            if "tensorboard" in cfg.backends:
                logdir = cfg.tensorboard_dir or str(run_dir / TENSORBOARD_DIR)
                purge = resume_step + 1 if resume_step is not None else 0
                out.backends.append(_TensorBoard.open(logdir, purge))
            if "wandb" in cfg.backends:
                wandb_run = _Wandb.open(cfg, run_id, cfg.wandb_dir or str(run_dir), config)
                out.backends.append(wandb_run)
                for row in kept_rows:
                    wandb_run.log(int(row["step"]), _scalars(row))
        except BaseException:
            out.close("failed")
            raise
        return out

    def log(self, row: dict) -> None:
        if not self.backends:
            return
        values = _scalars(row)
        for b in self.backends:
            b.log(int(row["step"]), values)

    def close(self, status: str) -> None:
        backends, self.backends = self.backends, []
        for b in backends:
            b.close(status)


# ---- a sweep's own summary ------------------------------------------------------------------

SUMMARY_KEYS = ("params_nonembedding", "tokens", "flops", "eval_loss")


@dataclass
class SweepTracker:
    """One row per finished run of a sweep (N, D, C, final loss, and the run's size), so
    a dashboard shows the IsoFLOP picture while the sweep runs.

    TensorBoard: DIR/tensorboard/sweep, scalars `sweep/N`, `sweep/D`, `sweep/C`,
    `sweep/final_loss` at x = the number of runs this worker has finished (TensorBoard
    needs an increasing step), plus one HParams entry per run (its HParams dashboard plots
    final loss against N, D and C). W&B: a run `<sweep>-summary` (per worker when several)
    whose history rows are N, D, C, final_loss, budget, width, depth, run_id.
    """

    backends: list = field(default_factory=list)
    count: int = 0

    @classmethod
    def open(cls, cfg: TrackConfig, results_dir: str, *, name: str, worker: str = "") -> SweepTracker:
        cfg.check_available()
        out = cls()
        suffix = f"-{worker}" if worker else ""
        if "tensorboard" in cfg.backends:
            from tensorboardX import SummaryWriter

            logdir = os.path.join(cfg.tensorboard_dir or os.path.join(results_dir, TENSORBOARD_DIR), "sweep" + suffix)
            out.backends.append(SummaryWriter(logdir, filename_suffix=f".{os.getpid()}"))
        if "wandb" in cfg.backends:
            wdir = cfg.wandb_dir or results_dir
            os.makedirs(wdir, exist_ok=True)
            run_id = f"{name}-summary{suffix}"
            out.backends.append(
                _wandb_init(
                    project=cfg.project or name,
                    entity=cfg.entity or None,
                    group=cfg.group or name,
                    id=run_id,
                    name=run_id,
                    resume="allow",
                    dir=wdir,
                    job_type="sweep-summary",
                )
            )
        return out

    def log_run(self, row: dict) -> None:
        """A finished run's runs.csv row."""
        if not self.backends or row.get("eval_loss") is None:
            return
        self.count += 1
        values = {
            "N": float(row["params_nonembedding"]),
            "D": float(row["tokens"]),
            "C": float(row["flops"]),
            "final_loss": float(row["eval_loss"]),
        }
        for b in self.backends:
            if hasattr(b, "add_scalar"):
                for key, value in values.items():
                    b.add_scalar(f"sweep/{key}", value, self.count)
                hparams = {k: row.get(k) for k in ("width", "depth", "budget") if row.get(k) is not None}
                b.add_hparams({**hparams, **{k: values[k] for k in "NDC"}}, {"final_loss": values["final_loss"]},
                              name=str(row["run_id"]))  # fmt: skip
                b.flush()
            else:
                extra = {k: row.get(k) for k in ("width", "depth", "budget", "run_id") if row.get(k) is not None}
                b.log({**values, **extra})

    def close(self) -> None:
        backends, self.backends = self.backends, []
        for b in backends:
            if hasattr(b, "add_scalar"):
                b.close()
            else:
                b.finish()
