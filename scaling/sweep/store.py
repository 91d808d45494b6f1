"""The results store: the contract between a sweep and `scaling.analysis`.

Layout of a results directory DIR:

    DIR/runs.csv        one row per planned run (RUN_COLUMNS)
    DIR/curves.csv      one row per (run, evaluation) (CURVE_COLUMNS)
    DIR/tables.json     the generation record of the pair: each table's SHA-256 and rows
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

The two tables are one generation: `consolidate` writes curves.csv, then runs.csv, then
tables.json naming both files' hashes. A writer killed in between leaves a pair that does
not match its record; `check_tables` detects that, and readers (`read_tables`,
`scaling.analysis.load_table`) then rebuild the pair from the per-run files, which are
written once per run and never torn. (Nothing here needs a rename to be atomic across
two files, so the design holds on object stores as well.)

Run ids come from files a user may have copied from anywhere (runs.csv, plan.json), so
every id is checked against the planner's format (`check_run_id`) before it becomes a
path: no id can name a directory outside DIR/runs.
"""

from __future__ import annotations

import contextlib
import csv
import fcntl
import hashlib
import io
import json
import math
import os
import re
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
TABLES_FILE = "tables.json"

# The planner's run ids: the first 12 hex digits of a SHA-1 (scaling.sweep.plan.run_id).
RUN_ID = re.compile(r"[0-9a-f]{12}")


def check_run_id(value: Any, where: str = "run_id") -> str:
    """`value` if it is a run id of the planner's format, else ValueError naming `where`:
    ids become directory names, and one from an untrusted table ("../x", "/abs") must
    never name a path outside the results directory."""
    if not isinstance(value, str) or not RUN_ID.fullmatch(value):
        raise ValueError(f"{where}: {value!r} is not a run id (12 lowercase hex digits, as the planner writes them)")
    return value


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
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)  # the umask decides, as for every file
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
        return self.runs_dir / check_run_id(run_id)

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
        self.clean_temps()

    def clean_temps(self) -> int:
        """Remove temporary files orphaned by killed writers (only those whose writer
        process is gone: see `scaling.atomic.is_stale_temp`) from the directory, runs/ and
        every run directory. Returns how many were removed."""
        dirs = [self.root, self.runs_dir]
        if self.runs_dir.is_dir():
            dirs += [d for d in self.runs_dir.iterdir() if d.is_dir() and RUN_ID.fullmatch(d.name)]
        return sum(len(atomic.clean_stale_temps(d)) for d in dirs)

    def check_new_output(self) -> None:
        """Reject, without writing anything, an output that cannot become a results
        directory: a file, an unwritable directory, or tables that cannot be adopted."""
        root = self.root
        probe = root
        while not probe.exists() and probe != probe.parent:
            probe = probe.parent
        if not probe.is_dir():
            raise PermissionError(f"results directory {str(root)!r} is not writable ({str(probe)!r} is a file)")
        if not os.access(probe, os.W_OK | os.X_OK):
            raise PermissionError(f"results directory {str(root)!r} is not writable ({str(probe)!r} is read-only)")
        self.adoptable_rows()
        plan = self.runs_dir / PLAN_FILE
        if plan.exists():
            self._plan_ids(plan)

    def adopt_tables(self) -> list[str]:
        """Recreate the per-run records of finished runs that exist only in runs.csv and
        curves.csv (a results directory committed without its runs/ folder, or copied
        from elsewhere), so a rerun skips them and consolidation rewrites the same rows:
        finished work is never redone or overwritten. Returns the adopted run ids."""
        rows, curves = self.adoptable_rows()
        adopted = []
        for row in rows:
            rid = row["run_id"]
            if (self.run_dir(rid) / STATUS_FILE).exists():
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

    def adoptable_rows(self) -> tuple[list[dict[str, str]], dict[str, list[dict[str, str]]]]:
        """The finished rows of runs.csv and the curve rows by run id, checked (every row
        well-formed, every id of the planner's format: ValueError naming file and line)
        and not yet written anywhere. ([], {}) without a runs.csv."""
        if not self.runs_csv.exists():
            return [], {}
        problem = self.check_tables()
        if problem is not None and not self.can_rebuild():
            raise ValueError(
                f"{problem}; cannot adopt its finished runs (restore a matching pair, or delete tables.json)"
            )
        rows = []
        for line, row in read_csv_rows(self.runs_csv, required=("run_id", "status")):
            if row["status"] not in STATUSES and row["status"] != "":
                raise ValueError(
                    f"{self.runs_csv}:{line}: status {row['status']!r} is not one of {', '.join(STATUSES)}"
                )
            if row["status"] in TERMINAL_STATUSES:
                check_run_id(row["run_id"], f"{self.runs_csv}:{line}: run_id")
                rows.append(row)
        wanted = {r["run_id"] for r in rows}
        curves: dict[str, list[dict[str, str]]] = {}
        if wanted and self.curves_csv.exists():
            for _line, rec in read_csv_rows(self.curves_csv, required=("run_id",)):
                if rec["run_id"] in wanted:
                    curves.setdefault(rec["run_id"], []).append(rec)
        return rows, curves

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
            runs_text, curves_text = _tables_text(run_rows, curve_rows)
            old = _read_record(self.root / TABLES_FILE)
            # curves first, the record last: a kill in between leaves a pair that does not
            # match its record, which readers detect (check_tables) and rebuild.
            write_atomic(self.curves_csv, curves_text)
            write_atomic(self.runs_csv, runs_text)
            record = {
                "generation": int((old or {}).get("generation", 0)) + 1,
                "runs.csv": {"sha256": _sha256(runs_text.encode()), "rows": len(run_rows)},
                "curves.csv": {"sha256": _sha256(curves_text.encode()), "rows": len(curve_rows)},
            }
            write_json(self.root / TABLES_FILE, record)
            self.clean_temps()
        return len(run_rows), len(curve_rows)

    def check_tables(self) -> str | None:
        """None when runs.csv and curves.csv are the pair tables.json records (or there
        is no record: tables written by hand or by an older version), else what is wrong."""
        record = _read_record(self.root / TABLES_FILE)
        if record is None:
            return None
        for path in (self.runs_csv, self.curves_csv):
            want = (record.get(path.name) or {}).get("sha256")
            try:
                got = _sha256(path.read_bytes())
            except FileNotFoundError:
                return f"{path} is missing but {self.root / TABLES_FILE} records it"
            if got != want:
                return (
                    f"{path} is not the file {self.root / TABLES_FILE} records (generation "
                    f"{record.get('generation')}): runs.csv and curves.csv are from different writes "
                    "(a writer was interrupted between them, or a table was edited by hand)"
                )
        return None

    def can_rebuild(self) -> bool:
        """Whether the per-run files the tables are made from are here."""
        return (self.runs_dir / PLAN_FILE).exists() or any(self.runs_dir.glob(f"*/{RUN_FILE}"))

    def read_tables(self) -> tuple[str, str, str | None]:
        """(runs.csv text, curves.csv text, problem): the tables as stored when they are a
        consistent pair; else rebuilt in memory from the per-run files (nothing is
        written, so a read-only copy works), with the problem that made it necessary.
        ValueError when the pair is torn and cannot be rebuilt."""
        problem = self.check_tables()
        if problem is None:
            return self.runs_csv.read_text(encoding="utf-8"), self.curves_csv.read_text(encoding="utf-8"), None
        if not self.can_rebuild():
            raise ValueError(f"{problem}; the per-run files in {self.runs_dir} are not here to rebuild them from")
        runs = self._planned_runs()
        run_rows = [self._run_row(run, locks=False) for run in runs]
        curve_rows = [row for run in runs for row in self._curve_rows(run["run_id"])]
        return (*_tables_text(run_rows, curve_rows), problem)

    def rows(self) -> list[dict[str, Any]]:
        """The runs table as dicts (what runs.csv holds), read from the per-run files."""
        return [self._run_row(run) for run in self._planned_runs()]

    def _planned_runs(self) -> list[dict[str, Any]]:
        """The current plan's runs, in plan order (runs/plan.json; else every run dir)."""
        plan = self.runs_dir / PLAN_FILE
        if plan.exists():
            return [read_json(self.run_dir(rid) / RUN_FILE) for rid in self._plan_ids(plan)]
        if not self.runs_dir.is_dir():
            return []
        runs = [read_json(p) for p in self.runs_dir.glob(f"*/{RUN_FILE}") if RUN_ID.fullmatch(p.parent.name)]
        return sorted(runs, key=lambda r: (r.get("order", math.inf), r["run_id"]))

    @staticmethod
    def _plan_ids(plan: Path) -> list[str]:
        try:
            ids = read_json(plan)["run_ids"]
        except (ValueError, KeyError, TypeError) as err:
            raise ValueError(f"{plan}: not a plan file ({err}); remove it and rerun the sweep") from None
        if not isinstance(ids, list):
            raise ValueError(f"{plan}: run_ids must be a list")
        return [check_run_id(rid, f"{plan}: run_ids[{i}]") for i, rid in enumerate(ids)]

    def _run_row(self, run: dict[str, Any], *, locks: bool = True) -> dict[str, Any]:
        row = {k: run.get(k) for k in RUN_COLUMNS + OPTIONAL_RUN_COLUMNS}
        record = self.effective_status(run["run_id"]) if locks else self.read_status(run["run_id"])
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


def read_csv_rows(path: Path, *, required: tuple[str, ...] = ()) -> Iterator[tuple[int, dict[str, str]]]:
    """(line number, row) for each data row of a CSV, strictly: a row with more or fewer
    fields than the header (a file cut mid-line, a stray comma) is a ValueError naming the
    file and line, never a row silently padded or dropped."""
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.reader(f)
            header = next(reader, None)
            if header is None:
                raise ValueError(f"{path}: empty file (no header row)")
            missing = [c for c in required if c not in header]
            if missing:
                raise ValueError(f"{path}: no column {missing[0]!r} in the header {header}")
            for fields in reader:
                if not fields:
                    continue
                if len(fields) != len(header):
                    raise ValueError(
                        f"{path}:{reader.line_num}: {len(fields)} fields where the header has {len(header)} "
                        "(a malformed or truncated row)"
                    )
                yield reader.line_num, dict(zip(header, fields))
    except UnicodeDecodeError as err:
        raise ValueError(f"{path}: not a UTF-8 text table ({err.reason} at byte {err.start})") from None
    except csv.Error as err:
        raise ValueError(f"{path}: malformed CSV ({err})") from None


def _tables_text(run_rows: list[dict[str, Any]], curve_rows: list[dict[str, Any]]) -> tuple[str, str]:
    """(runs.csv, curves.csv) as text; optional run columns only when some run has them."""
    extra = tuple(c for c in OPTIONAL_RUN_COLUMNS if any(r.get(c) is not None for r in run_rows))
    return _to_csv(RUN_COLUMNS + extra, run_rows), _to_csv(CURVE_COLUMNS, curve_rows)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _read_record(path: Path) -> dict | None:
    try:
        record = read_json(path)
    except FileNotFoundError:
        return None
    except ValueError:
        return {"generation": None}  # a damaged record matches no pair: the tables are rebuilt
    return record if isinstance(record, dict) else {"generation": None}


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
