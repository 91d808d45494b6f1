"""The results store: the contract between a sweep and `scaling.analysis`.

Layout of a results directory DIR:

    DIR/runs.csv        one row per planned run (RUN_COLUMNS)
    DIR/curves.csv      one row per (run, evaluation) (CURVE_COLUMNS)
    DIR/sweep.toml      the resolved sweep config
    DIR/manifest.json   package versions, data manifest hash, devices, git commit, seed
    DIR/runs/plan.json  the current plan's run ids, in order (the rows of runs.csv)
    DIR/runs/<run_id>/  run.json (the planned run), status.json (its latest status),
                        the trainer's output (metrics.jsonl, checkpoints/)

Workers never edit the two tables in place. Each run's files are written atomically
(temp file + rename) by the one process that trains it; `consolidate` rebuilds both
tables from those files under a lock and renames them into place. Every planned run
has exactly one run.json, so every run appears exactly once, however many workers
consolidate and however often. `runs/` is git-ignored by a `.gitignore` the store
writes, so checkpoints never reach a commit.
"""

from __future__ import annotations

import contextlib
import csv
import fcntl
import io
import json
import math
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from scaling import atomic
from scaling.core.status import FINISHED as TERMINAL_STATUSES
from scaling.core.status import STATUSES

RUN_COLUMNS = (
    "run_id", "sweep", "plan_kind", "parent_run_id",
    "width", "depth", "heads", "params_nonembedding", "params_total",
    "tokens", "flops", "flop_convention", "budget", "tokens_per_param",
    "eval_loss", "lr", "batch_size", "seq_len", "steps", "warmup_steps", "seed",
    "parameterization", "schedule", "status", "error", "wall_time_s",
)  # fmt: skip
# Written only when a run has them (data-constrained plans): distinct tokens seen, epochs over them.
OPTIONAL_RUN_COLUMNS = ("unique_tokens", "epochs")
CURVE_COLUMNS = ("run_id", "step", "tokens", "flops", "train_loss", "eval_loss", "lr")

RUNS_DIR = "runs"
RUN_FILE = "run.json"
PLAN_FILE = "plan.json"
STATUS_FILE = "status.json"
METRICS_FILE = "metrics.jsonl"
LOCK_FILE = ".store.lock"
RUN_LOCK_FILE = ".lock"


# ---- atomic files --------------------------------------------------------------------
def write_atomic(path: Path, text: str) -> None:
    """Write `text` to `path` so readers see the old file or the new one, never a part
    (fsynced: stores live on shared file systems)."""
    atomic.write_text(path, text, fsync=True)


def write_json(path: Path, data: Any) -> None:
    write_atomic(path, json.dumps(data, indent=2, sort_keys=True, default=_jsonable) + "\n")


def read_json(path: Path) -> Any:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _jsonable(value: Any) -> Any:
    if hasattr(value, "item"):  # numpy / jax scalars
        return value.item()
    if isinstance(value, (set, tuple)):
        return list(value)
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot store {type(value).__name__} value {value!r} as JSON")


@contextlib.contextmanager
def file_lock(path: Path, *, blocking: bool = True) -> Iterator[bool]:
    """An exclusive advisory lock on `path` (created if missing), released on exit.

    Yields True when held; with blocking=False yields False at once when another
    process (or another open of the file) holds it. A crashed holder's lock is freed by
    the OS, which is what lets an interrupted run be resumed.
    """
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


# ---- the store ----------------------------------------------------------------------
class ResultsStore:
    """One results directory: per-run files plus the consolidated tables."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

    # paths
    @property
    def runs_dir(self) -> Path:
        return self.root / RUNS_DIR

    def run_dir(self, run_id: str) -> Path:
        return self.runs_dir / run_id

    @property
    def runs_csv(self) -> Path:
        return self.root / "runs.csv"

    @property
    def curves_csv(self) -> Path:
        return self.root / "curves.csv"

    def create(self) -> None:
        """Make the directory tree, failing early with the path when it is not writable."""
        try:
            self.runs_dir.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=self.root, prefix=".write_probe."):
                pass  # a name of its own: workers starting together must not delete each other's probe
        except OSError as err:
            raise PermissionError(
                f"results directory {str(self.root)!r} is not writable ({err.strerror or err})"
            ) from None
        ignore = self.root / ".gitignore"
        if not ignore.exists():
            write_atomic(ignore, "# per-run trainer output and checkpoints: never committed\nruns/\n")

    def adopt_tables(self) -> list[str]:
        """Recreate the per-run records of finished runs that exist only in runs.csv and
        curves.csv (a results directory committed without its runs/ folder, or copied
        from elsewhere), so a rerun skips them and consolidation rewrites the same rows:
        finished work is never redone or overwritten. Returns the adopted run ids."""
        if not self.runs_csv.exists():
            return []
        with open(self.runs_csv, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        curves: dict[str, list[dict[str, Any]]] = {}
        if self.curves_csv.exists():
            with open(self.curves_csv, newline="", encoding="utf-8") as f:
                for rec in csv.DictReader(f):
                    curves.setdefault(rec["run_id"], []).append(rec)
        adopted = []
        for row in rows:
            rid = row.get("run_id")
            if not rid or row.get("status") not in TERMINAL_STATUSES or (self.run_dir(rid) / STATUS_FILE).exists():
                continue
            fields = {k: _from_csv(row.get(k)) for k in ("tokens", "flops", "steps", "eval_loss", "wall_time_s")}
            metrics = "".join(
                json.dumps({k: _from_csv(rec.get(k)) for k in CURVE_COLUMNS[1:]}) + "\n" for rec in curves.get(rid, [])
            )
            self.run_dir(rid).mkdir(parents=True, exist_ok=True)
            write_atomic(self.run_dir(rid) / METRICS_FILE, metrics)
            self.write_status(rid, row["status"], adopted_from="runs.csv",
                              **{k: v for k, v in fields.items() if v is not None})  # fmt: skip
            adopted.append(rid)
        return adopted

    # per-run files
    def write_run(self, run: dict[str, Any]) -> None:
        """Record a planned run (idempotent: the same plan writes the same content)."""
        d = self.run_dir(run["run_id"])
        d.mkdir(parents=True, exist_ok=True)
        path = d / RUN_FILE
        if path.exists() and read_json(path) == json.loads(json.dumps(run, default=_jsonable)):
            return
        write_json(path, run)

    def read_status(self, run_id: str) -> dict[str, Any]:
        path = self.run_dir(run_id) / STATUS_FILE
        if not path.exists():
            return {"status": "pending"}
        return read_json(path)

    def write_status(self, run_id: str, status: str, **fields: Any) -> None:
        if status not in STATUSES:
            raise ValueError(f"status={status!r} must be one of {', '.join(STATUSES)}")
        write_json(self.run_dir(run_id) / STATUS_FILE, {"status": status, **fields})

    @contextlib.contextmanager
    def claim(self, run_id: str) -> Iterator[bool]:
        """Hold a run's lock while training it; False when another process holds it."""
        d = self.run_dir(run_id)
        d.mkdir(parents=True, exist_ok=True)
        with file_lock(d / RUN_LOCK_FILE, blocking=False) as held:
            yield held

    def is_claimed(self, run_id: str) -> bool:
        lock = self.run_dir(run_id) / RUN_LOCK_FILE
        if not lock.exists():
            return False
        with file_lock(lock, blocking=False) as held:
            return not held

    def effective_status(self, run_id: str) -> dict[str, Any]:
        """The stored status, except that a 'running' run nobody holds is 'pending'
        again (its process was interrupted; rerunning resumes it)."""
        record = self.read_status(run_id)
        if record["status"] == "running" and not self.is_claimed(run_id):
            record = {**record, "status": "pending"}
        return record

    # tables
    def consolidate(self) -> tuple[int, int]:
        """Rebuild runs.csv and curves.csv from the per-run files (re-runnable, locked).

        Returns (number of run rows, number of curve rows).
        """
        with file_lock(self.runs_dir / LOCK_FILE):
            runs = self._planned_runs()
            run_rows = [self._run_row(run) for run in runs]
            curve_rows = [row for run in runs for row in self._curve_rows(run["run_id"])]
            extra = tuple(c for c in OPTIONAL_RUN_COLUMNS if any(r.get(c) is not None for r in run_rows))
            write_atomic(self.runs_csv, _to_csv(RUN_COLUMNS + extra, run_rows))
            write_atomic(self.curves_csv, _to_csv(CURVE_COLUMNS, curve_rows))
        return len(run_rows), len(curve_rows)

    def rows(self) -> list[dict[str, Any]]:
        """The runs table as dicts (what runs.csv holds), read from the per-run files."""
        return [self._run_row(run) for run in self._planned_runs()]

    def _planned_runs(self) -> list[dict[str, Any]]:
        """The current plan's runs, in plan order (runs/plan.json; else every run dir)."""
        plan = self.runs_dir / PLAN_FILE
        if plan.exists():
            return [read_json(self.run_dir(rid) / RUN_FILE) for rid in read_json(plan)["run_ids"]]
        if not self.runs_dir.is_dir():
            return []
        runs = [read_json(p) for p in self.runs_dir.glob(f"*/{RUN_FILE}")]
        return sorted(runs, key=lambda r: (r.get("order", math.inf), r["run_id"]))

    def _run_row(self, run: dict[str, Any]) -> dict[str, Any]:
        row = {k: run.get(k) for k in RUN_COLUMNS + OPTIONAL_RUN_COLUMNS}
        record = self.effective_status(run["run_id"])
        row["status"] = record["status"]
        row["error"] = record.get("error")
        for key in ("tokens", "flops", "steps", "eval_loss", "wall_time_s"):
            if record.get(key) is not None:
                row[key] = record[key]
        return row

    def _curve_rows(self, run_id: str) -> list[dict[str, Any]]:
        path = self.run_dir(run_id) / METRICS_FILE
        if not path.exists():
            return []
        rows = []
        with open(path, encoding="utf-8") as f:
            for line in f:
                line = line.strip()
                if not line:
                    continue
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError:
                    continue  # a line cut short by an interruption
                if rec.get("eval_loss") is None:
                    continue
                rows.append({"run_id": run_id, **{k: rec.get(k) for k in CURVE_COLUMNS[1:]}})
        # A resumed run may repeat steps it had logged before the interruption: keep the last.
        by_step = {r["step"]: r for r in rows}
        return [by_step[s] for s in sorted(by_step)]


def _from_csv(text: str | None) -> Any:
    """A CSV cell back to a number (int where integral), or None when empty."""
    if text is None or text == "":
        return None
    try:
        value = float(text)
    except ValueError:
        return text
    return int(value) if value.is_integer() and "." not in text and "e" not in text.lower() else value


def _to_csv(columns: tuple[str, ...], rows: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _cell(row.get(k)) for k in columns})
    return buf.getvalue()


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return repr(value)  # shortest round-trip form
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value)
    return value
