"""The results store: the contract between a sweep and `scaling.analysis`.

Layout of a results directory DIR (a local or NFS path, or an object-store URL such as
s3://bucket/prefix or gs://bucket/prefix: every file goes through `scaling.storage`):

    DIR/runs.csv        one row per planned run (RUN_COLUMNS)
    DIR/curves.csv      one row per (run, evaluation) (CURVE_COLUMNS)
    DIR/tables.json     the generation record of the pair: each table's SHA-256 and rows
    DIR/curves.parquet  the same rows as Parquet, when pyarrow is installed (the parquet
                        extra): typed columns for sweeps with millions of rows; curves.csv
                        stays the canonical, byte-stable table
    DIR/sweep.toml      the resolved sweep config
    DIR/manifest.json   package versions, data manifest hash, devices, git commit, seed
    DIR/runs/plan.json  the current plan's run ids, in order (the rows of runs.csv)
    DIR/runs/<run_id>/  run.json (the planned run), status.json (its latest status),
                        claims/<n>.json (who trains it: `scaling.storage.Lease`),
                        the trainer's output (metrics.jsonl, checkpoints/)

Concurrency, without rename or `flock` (neither exists on an object store, and `flock`
can silently do nothing on NFS); every primitive is a whole-object write or a
conditional create (`scaling.storage`):

* Per-run objects have one writer. A worker trains a run only while it holds the run's
  claim, made by conditional create of the next `claims/<n>.json` (S3 If-None-Match,
  GCS ifGenerationMatch=0, O_EXCL locally: of workers racing for one run exactly one
  wins) and renewed by a heartbeat; the claim of a killed worker expires after the lease
  (10 minutes by default; at once on the same host, where its dead process is seen), and
  the run is claimed again and resumed from its last checkpoint. run.json is written once
  per plan (the same content from every worker); status.json and metrics.jsonl only by
  the claim holder.
* The tables are derived data, rebuilt from the per-run objects by whichever worker
  finishes a run (`consolidate`), never edited in place. Concurrent rebuilds are safe by a
  check after the write: a rebuild records the versions (ETag or size and mtime) of its
  inputs before reading them and, once its tables are written, lists them again; if an
  input changed meanwhile (another worker finished a run) or the pair it wrote was
  overwritten by a rebuild from other inputs, it rebuilds (a run's metrics change only
  before its status does, so the statuses are the inputs watched). The last writer therefore
  always wrote the tables of the inputs as they stand; rebuilds from the same inputs
  write identical bytes, so their order does not matter.
* The two tables are one generation: curves.csv, then runs.csv, then tables.json naming
  both files' hashes. A writer killed in between leaves a pair that does not match its
  record; `check_tables` detects that, and readers (`read_tables`,
  `scaling.analysis.load_table`) then rebuild the pair from the per-run files.
* Fallback: a backend without an atomic create (an S3-compatible server that ignores
  If-None-Match) is detected when the store is created (`Storage.check_conditional_create`);
  claims are then not exclusive, and a sweep there refuses more than one worker (one
  worker per results directory is always correct: nothing else writes).

A run directory on an object store is a `scaling.storage.Mirror`: the trainer works in a
local scratch directory, pushed to DIR/runs/<run_id>/ at each checkpoint and at the end,
and pulled back on resume (see `scaling.train.trainer`).

Run ids come from files a user may have copied from anywhere (runs.csv, plan.json), so
every id is checked against the planner's format (`check_run_id`) before it becomes a
path: no id can name a directory outside DIR/runs.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import math
import os
import random
import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from scaling import atomic
from scaling.core.status import FINISHED as TERMINAL_STATUSES
from scaling.core.status import STATUSES
from scaling.storage import Lease, Storage, is_url, split_location

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
TABLES_FILE = "tables.json"
CLAIM_LEASE_S = 600.0  # a killed worker's run is claimed again this long after its last heartbeat (other hosts)
CONSOLIDATE_ATTEMPTS = 20

# The planner's run ids: the first 12 hex digits of a SHA-1 (scaling.sweep.plan.run_id).
RUN_ID = re.compile(r"[0-9a-f]{12}")


def check_run_id(value: Any, where: str = "run_id") -> str:
    """`value` if it is a run id of the planner's format, else ValueError naming `where`:
    ids become directory names, and one from an untrusted table ("../x", "/abs") must
    never name a path outside the results directory."""
    if not isinstance(value, str) or not RUN_ID.fullmatch(value):
        raise ValueError(f"{where}: {value!r} is not a run id (12 lowercase hex digits, as the planner writes them)")
    return value


# ---- whole files, local or remote ---------------------------------------------------------
def write_atomic(path: str | os.PathLike, text: str) -> None:
    """Write `text` to `path` (a local path or a URL) so readers see the old file or the
    new one, never a part (locally fsynced and renamed: stores live on shared file systems;
    on an object store one PUT)."""
    storage, name = split_location(path)
    storage.put_text(name, text)


def write_json(path: str | os.PathLike, data: Any) -> None:
    write_atomic(path, json.dumps(data, indent=2, sort_keys=True, default=_jsonable) + "\n")


def read_json(path: str | os.PathLike) -> Any:
    storage, name = split_location(path)
    return storage.read_json(name)


def _jsonable(value: Any) -> Any:
    if hasattr(value, "item"):  # numpy / jax scalars
        return value.item()
    if isinstance(value, (set, tuple)):
        return list(value)
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot store {type(value).__name__} value {value!r} as JSON")


# ---- the store ----------------------------------------------------------------------
class ResultsStore:
    """One results directory (a local path or an object-store URL): per-run files plus
    the consolidated tables. `lease_s`: how long a claim outlives its holder's last
    heartbeat (see the module docstring)."""

    def __init__(self, root: str | os.PathLike, *, lease_s: float = CLAIM_LEASE_S):
        self.remote = is_url(root)
        self.root: Path | str = str(root).rstrip("/") if self.remote else Path(root)
        self.storage = Storage.at(self.root)
        self.lease_s = float(lease_s)
        self.exclusive_claims = True  # False on a backend without conditional create (see `create`)

    # paths
    def location(self, path: str = "") -> Path | str:
        """The local path, or URL, of `path` (relative to the results directory)."""
        if not path:
            return self.root
        return self.root / path if isinstance(self.root, Path) else f"{self.root}/{path}"

    @property
    def runs_dir(self) -> Path | str:
        return self.location(RUNS_DIR)

    def run_dir(self, run_id: str) -> Path | str:
        """Where a run's files are: a Path, or a URL on an object store (what a train
        function is given; the real trainer works in a local mirror of it)."""
        return self.location(self.run_key(run_id))

    @staticmethod
    def run_key(run_id: str, name: str = "") -> str:
        """A run's directory (or a file in it) relative to the results directory."""
        key = f"{RUNS_DIR}/{check_run_id(run_id)}"
        return f"{key}/{name}" if name else key

    @property
    def runs_csv(self) -> Path | str:
        return self.location("runs.csv")

    @property
    def curves_csv(self) -> Path | str:
        return self.location("curves.csv")

    def create(self) -> None:
        """Make the directory tree, failing early with the path when it is not writable;
        on an object store, probe conditional create once (`exclusive_claims`)."""
        probe = f".write_probe.{uuid.uuid4().hex}"  # a name of its own: workers starting together
        try:
            if not self.remote:
                Path(self.runs_dir).mkdir(parents=True, exist_ok=True)
            self.storage.put(probe, b"")
            self.storage.delete(probe)
        except OSError as err:
            raise PermissionError(
                f"results directory {str(self.root)!r} is not writable ({getattr(err, 'strerror', None) or err})"
            ) from None
        if self.remote:
            try:
                self.storage.check_conditional_create()
            except RuntimeError:
                self.exclusive_claims = False
        if not self.storage.exists(".gitignore"):
            self.storage.put_text(
                ".gitignore",
                "# per-run trainer output and checkpoints, and the Parquet copy of curves.csv: never committed\n"
                f"{PARQUET_FILE}\nruns/\n",
            )
        self.clean_temps()

    def clean_temps(self) -> int:
        """Remove temporary files orphaned by killed writers (only those whose writer
        process is gone: see `scaling.atomic.is_stale_temp`) from the directory, runs/ and
        every run directory. Returns how many were removed. (An object store has none.)"""
        if self.remote:
            return 0
        root, runs = Path(self.root), Path(self.runs_dir)
        dirs = [root, runs]
        if runs.is_dir():
            dirs += [d for d in runs.iterdir() if d.is_dir() and RUN_ID.fullmatch(d.name)]
        return sum(len(atomic.clean_stale_temps(d)) for d in dirs)

    def check_new_output(self) -> None:
        """Reject, without writing anything, an output that cannot become a results
        directory: a file, an unwritable directory, or tables that cannot be adopted."""
        if not self.remote:
            root = Path(self.root)
            probe = root
            while not probe.exists() and probe != probe.parent:
                probe = probe.parent
            if not probe.is_dir():
                raise PermissionError(f"results directory {str(root)!r} is not writable ({str(probe)!r} is a file)")
            if not os.access(probe, os.W_OK | os.X_OK):
                raise PermissionError(f"results directory {str(root)!r} is not writable ({str(probe)!r} is read-only)")
        self.adoptable_rows()
        if self.storage.exists(f"{RUNS_DIR}/{PLAN_FILE}"):
            self._plan_ids()

    def adopt_tables(self) -> list[str]:
        """Recreate the per-run records of finished runs that exist only in runs.csv and
        curves.csv (a results directory committed without its runs/ folder, or copied
        from elsewhere), so a rerun skips them and consolidation rewrites the same rows:
        finished work is never redone or overwritten. Returns the adopted run ids."""
        rows, curves = self.adoptable_rows()
        adopted = []
        for row in rows:
            rid = row["run_id"]
            if self.storage.exists(self.run_key(rid, STATUS_FILE)):
                continue
            fields = {k: _from_csv(row.get(k)) for k in ("tokens", "flops", "steps", "eval_loss", "wall_time_s")}
            metrics = "".join(
                json.dumps({k: _from_csv(rec.get(k)) for k in CURVE_COLUMNS[1:]}) + "\n" for rec in curves.get(rid, [])
            )
            self.storage.put_text(self.run_key(rid, METRICS_FILE), metrics)
            self.write_status(rid, row["status"], adopted_from="runs.csv",
                              **{k: v for k, v in fields.items() if v is not None})  # fmt: skip
            adopted.append(rid)
        return adopted

    def adoptable_rows(self) -> tuple[list[dict[str, str]], dict[str, list[dict[str, str]]]]:
        """The finished rows of runs.csv and the curve rows by run id, checked (every row
        well-formed, every id of the planner's format: ValueError naming file and line)
        and not yet written anywhere. ([], {}) without a runs.csv."""
        if not self.storage.exists("runs.csv"):
            return [], {}
        problem = self.check_tables()
        if problem is not None and not self.can_rebuild():
            raise ValueError(
                f"{problem}; cannot adopt its finished runs (restore a matching pair, or delete tables.json)"
            )
        rows = []
        runs_csv = self.runs_csv
        for line, row in read_csv_rows(runs_csv, required=("run_id", "status"), text=self._text("runs.csv")):
            if row["status"] not in STATUSES and row["status"] != "":
                raise ValueError(f"{runs_csv}:{line}: status {row['status']!r} is not one of {', '.join(STATUSES)}")
            if row["status"] in TERMINAL_STATUSES:
                check_run_id(row["run_id"], f"{runs_csv}:{line}: run_id")
                rows.append(row)
        wanted = {r["run_id"] for r in rows}
        curves: dict[str, list[dict[str, str]]] = {}
        if wanted and self.storage.exists("curves.csv"):
            for _line, rec in read_csv_rows(self.curves_csv, required=("run_id",), text=self._text("curves.csv")):
                if rec["run_id"] in wanted:
                    curves.setdefault(rec["run_id"], []).append(rec)
        return rows, curves

    def _text(self, path: str) -> str:
        """A file's text, strictly UTF-8 (ValueError naming the file otherwise)."""
        data = self.storage.read_bytes(path)
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as err:
            raise ValueError(
                f"{self.location(path)}: not a UTF-8 text table ({err.reason} at byte {err.start})"
            ) from None

    # per-run files
    def write_run(self, run: dict[str, Any]) -> None:
        """Record a planned run (idempotent: the same plan writes the same content)."""
        key = self.run_key(run["run_id"], RUN_FILE)
        text = json.dumps(run, indent=2, sort_keys=True, default=_jsonable) + "\n"
        if self.storage.exists(key) and self.storage.read_json(key) == json.loads(text):
            return
        self.storage.put_text(key, text)

    def read_status(self, run_id: str) -> dict[str, Any]:
        key = self.run_key(run_id, STATUS_FILE)
        try:
            return self.storage.read_json(key)
        except FileNotFoundError:
            return {"status": "pending"}

    def write_status(self, run_id: str, status: str, **fields: Any) -> None:
        if status not in STATUSES:
            raise ValueError(f"status={status!r} must be one of {', '.join(STATUSES)}")
        text = json.dumps({"status": status, **fields}, indent=2, sort_keys=True, default=_jsonable) + "\n"
        self.storage.put_text(self.run_key(run_id, STATUS_FILE), text)

    def write_file(self, run_id: str, name: str, text: str) -> None:
        """A file of the runner's own in a run's directory (error.txt)."""
        self.storage.put_text(self.run_key(run_id, name), text)

    def lease(self, run_id: str) -> Lease:
        return Lease(self.storage, self.run_key(run_id), lease_s=self.lease_s)

    @contextlib.contextmanager
    def claim(self, run_id: str) -> Iterator[Lease | None]:
        """Hold a run's claim while training it: the Lease (its `lost` says whether another
        worker took the run over meanwhile), or None when another worker holds it."""
        with self.lease(run_id).held() as held:
            yield held

    def is_claimed(self, run_id: str) -> bool:
        return self.lease(run_id).is_held()

    def last_checkpoint(self, run_id: str) -> int:
        """The newest complete checkpoint step a run directory holds (Orbax names a step by
        its bare number once complete), 0 if none."""
        names = self.storage.listdir(self.run_key(run_id, "checkpoints"))
        return max((int(n) for n in names if n.isdigit()), default=0)

    def effective_status(self, run_id: str) -> dict[str, Any]:
        """The stored status, except that a 'running' run nobody holds is 'pending'
        again (its process was interrupted; rerunning resumes it)."""
        record = self.read_status(run_id)
        if record["status"] == "running" and not self.is_claimed(run_id):
            record = {**record, "status": "pending"}
        return record

    # tables
    def consolidate(self) -> tuple[int, int]:
        """Rebuild runs.csv and curves.csv from the per-run files; safe to run from any
        number of workers at once (the check after the write: see the module docstring).

        Returns (number of run rows, number of curve rows).
        """
        for _attempt in range(CONSOLIDATE_ATTEMPTS):
            before = self._input_versions()
            run_rows, curve_rows = self._table_rows()
            runs_text, curves_text = _tables_text(run_rows, curve_rows)
            old = _read_record(self.storage)
            # curves first, the record last: a kill in between leaves a pair that does not
            # match its record, which readers detect (check_tables) and rebuild.
            write_atomic(self.curves_csv, curves_text)
            write_atomic(self.runs_csv, runs_text)
            write_parquet(self.storage, PARQUET_FILE, curve_rows)  # a typed copy, when pyarrow is here
            record = {
                "generation": int((old or {}).get("generation") or 0) + 1,
                "runs.csv": {"sha256": _sha256(runs_text.encode()), "rows": len(run_rows)},
                "curves.csv": {"sha256": _sha256(curves_text.encode()), "rows": len(curve_rows)},
            }
            write_json(self.location(TABLES_FILE), record)
            if self._input_versions() == before and self._is_pair(runs_text, curves_text):
                break
            time.sleep(random.uniform(0.01, 0.2))  # another worker wrote meanwhile: rebuild from what is there now
        self.clean_temps()
        return len(run_rows), len(curve_rows)

    def _input_versions(self) -> dict[str, tuple]:
        """The versions of the per-run files whose change must rebuild the tables (one
        listing per run directory on an object store): run.json, status.json and the plan.
        A run's metrics only change before its status does (the trainer finishes, then its
        status is written and its worker consolidates), so they need no watching: a
        training run's growing curve never makes another worker's rebuild start over."""
        names = {RUN_FILE, STATUS_FILE}
        found = self.storage.versions(f"{RUNS_DIR}/*/*")
        out = {k: v for k, v in found.items() if k.rsplit("/", 1)[-1] in names}
        out.update(self.storage.versions(f"{RUNS_DIR}/{PLAN_FILE}"))
        return out

    def _is_pair(self, runs_text: str, curves_text: str) -> bool:
        """Whether the stored tables (and their record) are still the ones just written."""
        record = _read_record(self.storage) or {}
        return (
            (record.get("runs.csv") or {}).get("sha256") == _sha256(runs_text.encode())
            and (record.get("curves.csv") or {}).get("sha256") == _sha256(curves_text.encode())
            and self.check_tables() is None
        )

    def check_tables(self) -> str | None:
        """None when runs.csv and curves.csv are the pair tables.json records (or there
        is no record: tables written by hand or by an older version), else what is wrong."""
        record = _read_record(self.storage)
        if record is None:
            return None
        where = self.location(TABLES_FILE)
        for name in ("runs.csv", "curves.csv"):
            want = (record.get(name) or {}).get("sha256")
            try:
                got = _sha256(self.storage.read_bytes(name))
            except FileNotFoundError:
                return f"{self.location(name)} is missing but {where} records it"
            if got != want:
                return (
                    f"{self.location(name)} is not the file {where} records (generation "
                    f"{record.get('generation')}): runs.csv and curves.csv are from different writes "
                    "(a writer was interrupted between them, or a table was edited by hand)"
                )
        return None

    def can_rebuild(self) -> bool:
        """Whether the per-run files the tables are made from are here."""
        return self.storage.exists(f"{RUNS_DIR}/{PLAN_FILE}") or bool(self.storage.versions(f"{RUNS_DIR}/*/{RUN_FILE}"))

    def read_tables(self) -> tuple[str, str, str | None]:
        """(runs.csv text, curves.csv text, problem): the tables as stored when they are a
        consistent pair; else rebuilt in memory from the per-run files (nothing is
        written, so a read-only copy works), with the problem that made it necessary.
        ValueError when the pair is torn and cannot be rebuilt."""
        problem = self.check_tables()
        if problem is None:
            return self.storage.read_text("runs.csv"), self.storage.read_text("curves.csv"), None
        if not self.can_rebuild():
            raise ValueError(f"{problem}; the per-run files in {self.runs_dir} are not here to rebuild them from")
        return (*_tables_text(*self._table_rows(locks=False)), problem)

    def rows(self) -> list[dict[str, Any]]:
        """The runs table as dicts (what runs.csv holds), read from the per-run files."""
        return self._table_rows(curves=False)[0]

    def _table_rows(self, *, locks: bool = True, curves: bool = True) -> tuple[list[dict], list[dict]]:
        """(run rows, curve rows) from the per-run files, read in two batches (on an object
        store, concurrent requests rather than a few round trips per run). locks: a
        'running' run that nobody holds reads 'pending' (`effective_status`)."""
        runs = self._planned_runs()
        ids = [run["run_id"] for run in runs]
        keys = [self.run_key(rid, STATUS_FILE) for rid in ids]
        keys += [self.run_key(rid, METRICS_FILE) for rid in ids] if curves else []
        blobs = self.storage.read_many(keys)
        run_rows = []
        for run in runs:
            raw = blobs.get(self.run_key(run["run_id"], STATUS_FILE))
            record = json.loads(raw) if raw is not None else {"status": "pending"}
            if locks and record["status"] == "running" and not self.is_claimed(run["run_id"]):
                record = {**record, "status": "pending"}
            run_rows.append(self._run_row(run, record))
        curve_rows = [row for rid in ids for row in _curve_rows(rid, blobs.get(self.run_key(rid, METRICS_FILE)))]
        return run_rows, curve_rows

    def _planned_runs(self) -> list[dict[str, Any]]:
        """The current plan's runs, in plan order (runs/plan.json; else every run dir)."""
        if self.storage.exists(f"{RUNS_DIR}/{PLAN_FILE}"):
            keys = [self.run_key(rid, RUN_FILE) for rid in self._plan_ids()]
            blobs = self.storage.read_many(keys)
            missing = [k for k in keys if k not in blobs]
            if missing:
                raise FileNotFoundError(f"{self.location(missing[0])}: a run of {PLAN_FILE} has no {RUN_FILE}")
            return [json.loads(blobs[k]) for k in keys]
        keys = sorted(k for k in self.storage.versions(f"{RUNS_DIR}/*/{RUN_FILE}") if RUN_ID.fullmatch(k.split("/")[1]))
        runs = [json.loads(v) for v in self.storage.read_many(keys).values()]
        return sorted(runs, key=lambda r: (r.get("order", math.inf), r["run_id"]))

    def _plan_ids(self) -> list[str]:
        plan = self.location(f"{RUNS_DIR}/{PLAN_FILE}")
        try:
            ids = self.storage.read_json(f"{RUNS_DIR}/{PLAN_FILE}")["run_ids"]
        except (ValueError, KeyError, TypeError) as err:
            raise ValueError(f"{plan}: not a plan file ({err}); remove it and rerun the sweep") from None
        if not isinstance(ids, list):
            raise ValueError(f"{plan}: run_ids must be a list")
        return [check_run_id(rid, f"{plan}: run_ids[{i}]") for i, rid in enumerate(ids)]

    @staticmethod
    def _run_row(run: dict[str, Any], record: dict[str, Any]) -> dict[str, Any]:
        """A runs.csv row: the planned run, with what its status record says."""
        row = {k: run.get(k) for k in RUN_COLUMNS + OPTIONAL_RUN_COLUMNS}
        row["status"] = record["status"]
        row["error"] = record.get("error")
        for key in ("tokens", "flops", "steps", "eval_loss", "wall_time_s"):
            if record.get(key) is not None:
                row[key] = record[key]
        return row


def _curve_rows(run_id: str, metrics: bytes | None) -> list[dict[str, Any]]:
    """A run's curves.csv rows from its metrics.jsonl (None: no file yet)."""
    rows = []
    for line in (metrics or b"").decode("utf-8", errors="replace").splitlines():
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


def read_csv_rows(
    path: str | os.PathLike, *, required: tuple[str, ...] = (), text: str | None = None
) -> Iterator[tuple[int, dict[str, str]]]:
    """(line number, row) for each data row of a CSV (the file at `path`, or `text` read
    from it already), strictly: a row with more or fewer fields than the header (a file
    cut mid-line, a stray comma) is a ValueError naming the file and line, never a row
    silently padded or dropped."""
    try:
        if text is None:
            storage, name = split_location(path)
            text = storage.read_bytes(name).decode("utf-8")
        reader = csv.reader(io.StringIO(text, newline=""))
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


def _read_record(storage: Storage) -> dict | None:
    try:
        record = storage.read_json(TABLES_FILE)
    except FileNotFoundError:
        return None
    except ValueError:
        return {"generation": None}  # a damaged record matches no pair: the tables are rebuilt
    return record if isinstance(record, dict) else {"generation": None}


PARQUET_FILE = "curves.parquet"
_CURVE_TYPES = {"run_id": "string", "step": "int64", "tokens": "int64"}  # the rest: float64


def write_parquet(storage: Storage, path: str, curve_rows: list[dict[str, Any]]) -> bool:
    """curve_rows as a typed Parquet table at `path` of `storage` (one whole-object write);
    False, writing nothing, when pyarrow is not installed."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        return False
    schema = pa.schema([(c, getattr(pa, _CURVE_TYPES.get(c, "float64"))()) for c in CURVE_COLUMNS])
    table = pa.Table.from_pylist([{c: row.get(c) for c in CURVE_COLUMNS} for row in curve_rows], schema=schema)
    buf = io.BytesIO()
    pq.write_table(table, buf)
    storage.put(path, buf.getvalue())
    return True


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
