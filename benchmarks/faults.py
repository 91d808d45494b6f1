"""Fault-injection campaign for `scaling sweep`: kill a small real sweep at named moments,
resume it, and check its tables against an uninterrupted reference.

    python benchmarks/faults.py                      # the full campaign (~20-40 min on 2 cores)
    python benchmarks/faults.py --only k03 s02 c01   # some scenarios
    python benchmarks/faults.py --list

Each moment is a file event of the store or the trainer, seen through inotify (Linux; the
campaign refuses to run without it, rather than guess with a slow poll): the sweep process
is sent SIGKILL (or SIGTERM) the instant the event arrives, e.g. while a table's temp file
exists, between the curves.csv and runs.csv renames, inside Orbax's temporary checkpoint
directory, right after result.json. Then the same command is rerun until it exits 0 (at most
3 times), and the outcome is checked:

* runs: every row of runs.csv equal to the reference's (status, steps, tokens, FLOPs and
  eval loss; wall time excluded);
* curves: curves.csv byte-identical to the reference's (resumed training is exact);
* pair: tables.json matches both tables (`ResultsStore.check_tables`);
* temps: no temporary file left anywhere in the results directory;
* retrained: no run that was finished at the kill was trained again.

Also: two concurrent workers (partitioned and not), and bad inputs, each against a copy of
a finished results directory that must stay byte-identical (exit 2, one line on stderr).
Writes benchmarks/results/faults.md (and faults.json) with every kill, its moment and its
outcome.
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import json
import os
import select
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from scaling.sweep.store import ResultsStore  # noqa: E402

SWEEP_TOML = """\
[sweep]
name = "faults"
kind = "isoflop"
budgets = [6e8]
points_per_budget = 3
tokens_per_param = 10
tokens_per_param_range = [0.1, 2000]
flop_convention = "6N"

[family]
grid = [[16, 1], [24, 1], [32, 1]]

[model]
head_dim = 8
seq_len = 32

[optimizer]
lr = 0.01

[schedule]
warmup = 2

[data]
num_eval_batches = 1

[train]
global_batch_size = 8
eval_every = 10
checkpoint_every = 10
log_every = 5
"""

# ---- inotify (ctypes; Linux) ------------------------------------------------------------
IN_MODIFY, IN_CLOSE_WRITE, IN_MOVED_TO, IN_CREATE = 0x2, 0x8, 0x80, 0x100
IN_ISDIR = 0x40000000
_EVENT = struct.Struct("iIII")


class Watcher:
    """Events (directory, name, mask) under a directory tree, watches added as directories
    appear (the results directory itself may not exist yet: its parent is watched)."""

    def __init__(self, root: Path):
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        self._add = libc.inotify_add_watch
        self._add.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
        self.fd = libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if self.fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1 failed")
        self.dirs: dict[int, Path] = {}
        self.root = root
        self.watch(root.parent)

    def watch(self, d: Path) -> None:
        wd = self._add(self.fd, str(d).encode(), IN_MODIFY | IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE)
        if wd >= 0:
            self.dirs[wd] = d
            if d == self.root or self.root in d.parents:
                try:
                    subs = [sub for sub in d.iterdir() if sub.is_dir()]
                except OSError:  # gone already (an Orbax temporary directory renamed away)
                    subs = []
                for sub in subs:
                    self.watch(sub)

    def events(self, timeout: float):
        r, _, _ = select.select([self.fd], [], [], timeout)
        if not r:
            return []
        try:
            buf = os.read(self.fd, 1 << 16)
        except BlockingIOError:
            return []
        out, i = [], 0
        while i < len(buf):
            wd, mask, _cookie, n = _EVENT.unpack_from(buf, i)
            name = buf[i + _EVENT.size : i + _EVENT.size + n].rstrip(b"\0").decode()
            i += _EVENT.size + n
            d = self.dirs.get(wd)
            if d is None:
                continue
            path = d / name
            if (
                mask & IN_ISDIR
                and mask & (IN_CREATE | IN_MOVED_TO)
                and (path == self.root or self.root in path.parents)
            ):
                self.watch(path)
            out.append((d, name, mask))
        return out

    def close(self) -> None:
        os.close(self.fd)


# ---- moments --------------------------------------------------------------------------------
@dataclass
class Moment:
    key: str
    name: str
    match: str  # see `matches`
    nth: int = 1
    sig: str = "KILL"
    then: str = ""  # "damage-newest-checkpoint": truncate the newest checkpoint before resuming


def matches(kind: str, root: Path, d: Path, name: str, mask: int) -> bool:
    """Does the event (d, name, mask) under results directory root mark the moment `kind`?"""
    rel = d.relative_to(root) if (d == root or root in d.parents) else None
    if rel is None:
        return False
    moved = mask & IN_MOVED_TO
    created = mask & IN_CREATE
    tmp = name.endswith(".tmp") and created
    in_run = len(rel.parts) == 2 and rel.parts[0] == "runs"
    kinds = {
        "config.json": in_run and name == "config.json" and moved,  # the trainer starts; compile next
        "metrics-row": in_run and name == "metrics.jsonl" and mask & IN_MODIFY,  # mid-training
        "orbax-tmp": rel.name == "checkpoints" and "orbax-checkpoint-tmp" in name and created,
        "checkpoint-rename": rel.name == "checkpoints" and name.isdigit() and moved,
        "result.json": in_run and name == "result.json" and moved,
        "status-tmp": in_run and name.startswith(".status.json.") and tmp,
        "status-done": in_run and name == "status.json" and moved,
        "runs-tmp": rel == Path(".") and name.startswith(".runs.csv.") and tmp,
        "curves-tmp": rel == Path(".") and name.startswith(".curves.csv.") and tmp,
        "tables-tmp": rel == Path(".") and name.startswith(".tables.json.") and tmp,
        "between-tables": rel == Path(".") and name == "curves.csv" and moved,
        "manifest-tmp": rel == Path(".") and name.startswith(".manifest.json.") and tmp,
        "sweep.toml-tmp": rel == Path(".") and name.startswith(".sweep.toml.") and tmp,
        "plan-tmp": rel == Path("runs") and name.startswith(".plan.json.") and tmp,
        # (a new run directory's own first file comes before its watch can: the directory is the moment)
        "run-dir": rel == Path("runs") and bool(mask & IN_ISDIR) and created and len(name) == 12,
    }
    return bool(kinds[kind])


MOMENTS = [
    Moment("k01", "run 1 starts (config.json written; compiling)", "config.json"),
    Moment("k02", "run 1 mid-training (first metrics row)", "metrics-row"),
    Moment("k03", "run 1 inside Orbax's temporary checkpoint directory", "orbax-tmp"),
    Moment("k04", "run 1, third checkpoint, inside the temporary directory", "orbax-tmp", nth=3),
    Moment("k05", "run 1 just after a checkpoint rename", "checkpoint-rename"),
    Moment("k06", "run 1 just after result.json", "result.json"),
    Moment("k07", "run 1's status.json temp file (running)", "status-tmp"),
    Moment("k08", "run 1's status.json temp file (done)", "status-tmp", nth=2),
    Moment("k09", "runs.csv temp file (first consolidation)", "runs-tmp"),
    Moment("k10", "curves.csv temp file (first consolidation)", "curves-tmp"),
    Moment("k11", "between the curves.csv and runs.csv renames", "between-tables"),
    Moment("k12", "tables.json temp file", "tables-tmp"),
    Moment("k13", "between the tables, second consolidation", "between-tables", nth=2),
    Moment("k14", "manifest.json temp file", "manifest-tmp"),
    Moment("k15", "sweep.toml temp file", "sweep.toml-tmp"),
    Moment("k16", "runs/plan.json temp file", "plan-tmp"),
    Moment("k17", "the plan's run directories being created (run.json files)", "run-dir", nth=2),
    Moment("k18", "run 2 starts (compiling)", "config.json", nth=2),
    Moment("k19", "run 2 inside Orbax's temporary checkpoint directory", "orbax-tmp", nth=5),
    Moment("k20", "run 3 just after a checkpoint rename", "checkpoint-rename", nth=8),
    Moment("k21", "last consolidation's curves.csv temp file", "curves-tmp", nth=4),
    Moment(
        "k22",
        "run 1 after its second checkpoint, then the newest checkpoint damaged",
        "checkpoint-rename",
        nth=2,
        then="damage-newest-checkpoint",
    ),  # fmt: skip
    Moment("s01", "SIGTERM: run 1 compiling", "config.json", sig="TERM"),
    Moment("s02", "SIGTERM: run 1 mid-training", "metrics-row", sig="TERM"),
    Moment("s03", "SIGTERM: between runs 1 and 2", "status-done", nth=2, sig="TERM"),
]


# ---- running the sweep ---------------------------------------------------------------------
def env() -> dict:
    e = dict(os.environ)
    e.setdefault("JAX_PLATFORMS", "cpu")
    e.setdefault("SCALING_JAX_CACHE", str(REPO / ".cache" / "jax"))
    e["PYTHONPATH"] = str(REPO) + os.pathsep + e.get("PYTHONPATH", "")
    return e


def cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "scaling.cli.main", *args]


def sweep_cmd(config: Path, out: Path, *extra: str) -> list[str]:
    return cmd("sweep", str(config), "--out", str(out), "--no-progress", *extra)


def run_to_moment(argv: list[str], out: Path, moment: Moment, log: Path) -> dict:
    """Start the sweep, send the signal at the moment's nth event; returns what happened."""
    watcher = Watcher(out)
    t0 = time.perf_counter()
    with open(log, "w") as f:
        proc = subprocess.Popen(argv, stdout=f, stderr=subprocess.STDOUT, env=env(), cwd=REPO, start_new_session=True)
    seen, fired_at, done_at_kill = 0, None, []
    try:
        while proc.poll() is None:
            for d, name, mask in watcher.events(0.05):
                if fired_at is None and matches(moment.match, out, d, name, mask):
                    seen += 1
                    if seen == moment.nth:
                        os.killpg(proc.pid, signal.SIGKILL if moment.sig == "KILL" else signal.SIGTERM)
                        fired_at = time.perf_counter() - t0
                        done_at_kill = finished_runs(out)
        proc.wait()
    finally:
        watcher.close()
    return {"rc": proc.returncode, "fired_at_s": fired_at, "events_seen": seen, "done_at_kill": done_at_kill}


def finished_runs(out: Path) -> list[str]:
    done = []
    for status in (out / "runs").glob("*/status.json"):
        try:
            if json.loads(status.read_text()).get("status") in ("done", "diverged"):
                done.append(status.parent.name)
        except (OSError, ValueError):
            pass
    return sorted(done)


def resume(argv: list[str], log: Path, tries: int = 3) -> list[int]:
    codes = []
    for _ in range(tries):
        with open(log, "a") as f:
            rc = subprocess.run(argv, stdout=f, stderr=subprocess.STDOUT, env=env(), cwd=REPO).returncode
        codes.append(rc)
        if rc == 0:
            break
    return codes


def damage_newest_checkpoint(out: Path) -> str:
    ckpts = [c for c in (out / "runs").glob("*/checkpoints/*") if c.name.isdigit()]
    newest = max(ckpts, key=lambda c: c.stat().st_mtime)
    data = next((newest / "params" / "d").iterdir())
    data.write_bytes(data.read_bytes()[: max(1, data.stat().st_size // 3)])
    return str(data.relative_to(out))


# ---- outcomes ------------------------------------------------------------------------------
RUN_KEYS = ("run_id", "status", "steps", "tokens", "flops", "eval_loss")


def table_rows(out: Path) -> list[tuple]:
    import csv

    with open(out / "runs.csv", newline="") as f:
        return [tuple(r[k] for k in RUN_KEYS) for r in csv.DictReader(f)]


def temps_left(out: Path) -> list[str]:
    return sorted(str(p.relative_to(out)) for p in out.rglob(".*.tmp"))


def trained_runs(log: Path) -> list[str]:
    return [
        line.split()[2] for line in log.read_text(errors="replace").splitlines() if line.startswith("[sweep] training ")
    ]


def check(out: Path, ref: Path) -> dict:
    store = ResultsStore(out)
    got = {
        "runs_equal": (out / "runs.csv").exists() and table_rows(out) == table_rows(ref),
        "curves_identical": (out / "curves.csv").exists()
        and (out / "curves.csv").read_bytes() == (ref / "curves.csv").read_bytes(),
        "pair_consistent": store.check_tables() is None,
        "temps_left": temps_left(out),
    }
    return got


@dataclass
class Outcome:
    key: str
    moment: str
    signal: str
    fired_at_s: float | None = None
    first_rc: int | None = None
    resume_rcs: list[int] = field(default_factory=list)
    runs_equal: bool = False
    curves_identical: bool = False
    pair_consistent: bool = False
    temps_left: list[str] = field(default_factory=list)
    retrained_finished: list[str] = field(default_factory=list)
    note: str = ""

    @property
    def ok(self) -> bool:
        expect_first = {"KILL": (-9,), "TERM": (75,), "none": (0,)}[self.signal]
        return (
            self.fired_at_s is not None
            and self.first_rc in expect_first
            and bool(self.resume_rcs)
            and self.resume_rcs[-1] == 0
            and self.runs_equal
            and self.curves_identical
            and self.pair_consistent
            and not self.temps_left
            and not self.retrained_finished
        )


def kill_scenario(m: Moment, config: Path, ref: Path, work: Path) -> Outcome:
    out = work / m.key
    log = work / f"{m.key}.log"
    argv = sweep_cmd(config, out)
    first = run_to_moment(argv, out, m, log)
    o = Outcome(m.key, m.name, m.sig, first["fired_at_s"], first["rc"])
    if first["fired_at_s"] is None:
        o.note = f"moment not reached ({first['events_seen']} of {m.nth} events)"
    if m.then == "damage-newest-checkpoint" and first["fired_at_s"] is not None:
        o.note = f"damaged {damage_newest_checkpoint(out)}"
    mark = log.stat().st_size
    o.resume_rcs = resume(argv, log)
    resumed_log = log.read_text(errors="replace")[mark:]
    tmp = work / f"{m.key}.resume.log"
    tmp.write_text(resumed_log)
    o.retrained_finished = sorted(set(trained_runs(tmp)) & set(first["done_at_kill"]))
    c = check(out, ref)
    o.runs_equal, o.curves_identical, o.pair_consistent, o.temps_left = (
        c["runs_equal"], c["curves_identical"], c["pair_consistent"], c["temps_left"])  # fmt: skip
    if m.then and "falling back" in resumed_log:
        o.note += "; resume fell back to the previous checkpoint"
    return o


def concurrency_scenario(key: str, partitioned: bool, config: Path, ref: Path, work: Path) -> Outcome:
    out = work / key
    logs = [work / f"{key}.w{i}.log" for i in range(2)]
    procs = []
    for i, log in enumerate(logs):
        extra = ("--num-workers", "2", "--worker-index", str(i)) if partitioned else ()
        with open(log, "w") as f:
            procs.append(subprocess.Popen(sweep_cmd(config, out, *extra), stdout=f, stderr=subprocess.STDOUT,
                                          env=env(), cwd=REPO))  # fmt: skip
    rcs = [p.wait() for p in procs]
    name = "two workers, " + ("partitioned (--num-workers 2)" if partitioned else "unpartitioned (same command twice)")
    o = Outcome(key, name, "none", 0.0, rcs[0], [rcs[1]])
    trained = [rid for log in logs for rid in trained_runs(log)]
    dupes = sorted({r for r in trained if trained.count(r) > 1})
    o.retrained_finished = dupes
    c = check(out, ref)
    o.runs_equal, o.curves_identical, o.pair_consistent, o.temps_left = (
        c["runs_equal"], c["curves_identical"], c["pair_consistent"], c["temps_left"])  # fmt: skip
    o.note = f"{len(trained)} trainings of {len(set(trained))} runs"
    if not o.runs_equal:  # the first finisher's tables may predate the other's last run: one more consolidation
        o.note += "; tables after both finished differ"
    return o


# ---- bad inputs -----------------------------------------------------------------------------
@dataclass
class BadInput:
    key: str
    what: str
    rc: int
    expect_rc: tuple
    unchanged: bool
    stderr: str
    expect: str

    @property
    def ok(self) -> bool:
        one_line = len([ln for ln in self.stderr.splitlines() if ln.strip()]) <= 2
        return self.rc in self.expect_rc and self.unchanged and self.expect in self.stderr and one_line


def snapshot(root: Path) -> dict:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def bad_inputs(config: Path, ref: Path, work: Path) -> list[BadInput]:
    out: list[BadInput] = []

    def case(key, what, argv, target: Path | None, expect, expect_rc=(2,), prepare=None):
        if target is not None and target.exists():
            shutil.rmtree(target) if target.is_dir() else target.unlink()
        if target is not None and prepare != "none":
            shutil.copytree(ref, target)
        if prepare and prepare != "none":
            prepare(target)
        before = snapshot(target) if target is not None and target.is_dir() else None
        argv = argv(target) if callable(argv) else argv
        p = subprocess.run(argv, capture_output=True, text=True, env=env(), cwd=REPO)
        unchanged = before == (snapshot(target) if target is not None and target.is_dir() else None)
        if target is not None and prepare == "none":
            unchanged = not target.exists()
        err = "\n".join(ln for ln in p.stderr.splitlines() if "Warning" not in ln and "warn(" not in ln)
        out.append(BadInput(key, what, p.returncode, expect_rc, unchanged, err.strip(), expect))

    d = work / "bad"
    d.mkdir(exist_ok=True)
    missing = ["--set", 'data.source="text"', "--set", 'data.paths=["/nonexistent/corpus/*.txt"]']
    case("b01", "nonexistent data path, existing results", sweep_cmd(config, d / "b01", *missing), d / "b01",
         "nonexistent")  # fmt: skip
    case("b02", "nonexistent data path, new results directory", sweep_cmd(config, d / "b02" / "new", *missing),
         d / "b02", "nonexistent", prepare="none")  # fmt: skip
    case("b03", "optimizer.lr = -1", sweep_cmd(config, d / "b03", "--set", "optimizer.lr=-1"), d / "b03", "lr")
    case("b04", "unknown key sweep.bogus", sweep_cmd(config, d / "b04", "--set", "sweep.bogus=1"), d / "b04", "bogus")
    case("b05", "--worker-index 5 of 2", sweep_cmd(config, d / "b05", "--num-workers", "2", "--worker-index", "5"),
         d / "b05", "worker-index")  # fmt: skip

    def traversal(t: Path):
        shutil.rmtree(t / "runs")
        (t / "tables.json").unlink()
        text = (t / "runs.csv").read_text().splitlines()
        row = text[1].split(",")
        row[0] = "../../escaped"
        (t / "runs.csv").write_text("\n".join([text[0], ",".join(row), *text[2:]]) + "\n")

    case("b06", "runs.csv with run_id ../../escaped", sweep_cmd(config, d / "b06"), d / "b06", "is not a run id",
         prepare=traversal)  # fmt: skip

    def cut(t: Path):
        shutil.rmtree(t / "runs")
        (t / "tables.json").unlink()
        text = (t / "runs.csv").read_text()
        (t / "runs.csv").write_text(text[: len(text) - 30])

    case("b07", "runs.csv cut mid-line (no run directories)", sweep_cmd(config, d / "b07"), d / "b07",
         "runs.csv:4", prepare=cut)  # fmt: skip
    case("b08", "scaling fit on that cut runs.csv", cmd("fit", str(d / "b07")), None, "runs.csv:4")
    for key, what, content, expect in (
        ("b09", "scaling fit on a malformed CSV", b"params,tokens,loss\n1e8,2e9,3.0\n2e8,4e9\n", "bad.csv:3"),
        ("b10", "scaling fit on an empty CSV", b"", "empty file"),
        ("b11", "scaling fit on a binary file", b"\x89PNG\r\n\x1a\n\x00\xff\xfe", "not a UTF-8"),
    ):
        f = d / key / "bad.csv"
        f.parent.mkdir(exist_ok=True)
        f.write_bytes(content)
        case(key, what, cmd("fit", str(f)), d / key / "none", expect, prepare="none")
        out[-1].unchanged = f.read_bytes() == content

    def corrupt_meta(t: Path):
        run = next(p for p in (t / "runs").iterdir() if p.is_dir())
        steps = sorted(int(c.name) for c in (run / "checkpoints").iterdir() if c.name.isdigit())
        (run / "checkpoints" / str(steps[-1]) / "meta" / "metadata").write_text('{"step": 1, "ela')
        (t / "which").write_text(f"{run}@{steps[0]} {run}@{steps[-1]}")

    def interpolate(t: Path) -> list[str]:
        return cmd("interpolate", *(t / "which").read_text().split(), "--points", "2", "--range", "0", "1")

    case("b12", "scaling interpolate with a corrupt checkpoint meta JSON", interpolate, d / "b12", "meta/metadata",
         prepare=corrupt_meta)  # fmt: skip
    return out


# ---- report ----------------------------------------------------------------------------------
def write_report(path: Path, outcomes: list[Outcome], bads: list[BadInput], ref_s: float, total_s: float) -> None:
    yes = lambda b: "yes" if b else "**NO**"  # noqa: E731
    lines = [
        "# Fault-injection campaign (`benchmarks/faults.py`)",
        "",
        f"Reproduce: `python benchmarks/faults.py` (this run: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
        f"{len(outcomes)} interruptions, {len(bads)} bad inputs, {total_s / 60:.1f} min; the uninterrupted reference "
        f"sweep took {ref_s:.0f} s). A small real sweep (3 IsoFLOP runs of the tiny CPU model, "
        "async Orbax checkpoints every 10 steps) is interrupted the instant an inotify event marks the moment, then "
        "the same `scaling sweep` command is rerun until it exits 0 (at most 3 times).",
        "",
        "Columns: **at** seconds after start the signal was sent; **exit** the interrupted process's status (-9: "
        "killed; 75: preempted) then each rerun's; **runs** runs.csv equal to the reference (status, steps, tokens, "
        "FLOPs, eval loss); **curves** curves.csv byte-identical; **pair** tables.json matches both tables; "
        "**temps** temporary files left; **retrained** finished runs trained again (for the concurrency cases: runs "
        "trained twice).",
        "",
        "| # | moment | signal | at (s) | exit | runs | curves | pair | temps | retrained | outcome | note |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for o in outcomes:
        at = f"{o.fired_at_s:.2f}" if o.fired_at_s is not None else "-"
        codes = " → ".join(str(c) for c in [o.first_rc, *o.resume_rcs])
        lines.append(
            f"| {o.key} | {o.moment} | {o.signal} | {at} | {codes} | {yes(o.runs_equal)} | {yes(o.curves_identical)} "
            f"| {yes(o.pair_consistent)} | {len(o.temps_left) or 0} | {', '.join(o.retrained_finished) or 'none'} "
            f"| {'ok' if o.ok else '**FAILED**'} | {o.note} |"
        )
    ok = sum(o.ok for o in outcomes)
    lines += ["", f"**{ok} of {len(outcomes)} interruptions recovered exactly.**", "", "## Bad inputs", "",
              "Each against a copy of the finished reference directory (or none), which must stay byte-identical "
              "(a new directory must not appear); one line on stderr naming the problem.", "",
              "| # | input | exit | unchanged | stderr | outcome |", "|---|---|---|---|---|---|"]  # fmt: skip
    for b in bads:
        msg = b.stderr.replace("|", "\\|").replace("\n", " / ")[:220]
        lines.append(
            f"| {b.key} | {b.what} | {b.rc} | {yes(b.unchanged)} | `{msg}` | {'ok' if b.ok else '**FAILED**'} |"
        )
    lines += ["", f"**{sum(b.ok for b in bads)} of {len(bads)} bad inputs rejected cleanly.**", ""]
    path.write_text("\n".join(lines))
    path.with_suffix(".json").write_text(
        json.dumps(
            {
                "outcomes": [asdict(o) | {"ok": o.ok} for o in outcomes],
                "bad_inputs": [asdict(b) | {"ok": b.ok} for b in bads],
                "reference_s": ref_s,
                "total_s": total_s,
            },
            indent=2,
        )
        + "\n"  # fmt: skip
    )


def merge(parts: list[str], report: Path) -> int:
    """One report from several faults.json (a campaign split over processes); the first
    part's result of a scenario wins, and the report lists scenarios in MOMENTS order."""
    outcomes: dict[str, Outcome] = {}
    bads: dict[str, BadInput] = {}
    total, ref_s = 0.0, 0.0
    for part in parts:
        data = json.loads(Path(part).read_text())
        total += data.get("total_s", 0.0)
        ref_s = ref_s or data.get("reference_s", 0.0)
        for o in data["outcomes"]:
            o.pop("ok", None)
            outcomes.setdefault(o["key"], Outcome(**o))
        for b in data["bad_inputs"]:
            b.pop("ok", None)
            bads.setdefault(b["key"], BadInput(**{**b, "expect_rc": tuple(b["expect_rc"])}))
    order = [m.key for m in MOMENTS] + ["c01", "c02"]
    ordered = [outcomes[k] for k in order if k in outcomes]
    write_report(report, ordered, [bads[k] for k in sorted(bads)], ref_s, total)
    print(f"wrote {report}")
    return 0 if all(o.ok for o in ordered) and all(b.ok for b in bads.values()) else 1


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", nargs="*", help="scenario keys (k01 ... s03, c01, c02, bad)")
    ap.add_argument("--list", action="store_true")
    ap.add_argument("--work", help="scratch directory (default: a temporary one, removed)")
    ap.add_argument("--report", default=str(REPO / "benchmarks" / "results" / "faults.md"))
    ap.add_argument("--merge", nargs="+", metavar="FAULTS.json", help="write one report from campaigns run in parts")
    args = ap.parse_args(argv)
    if args.merge:
        return merge(args.merge, Path(args.report))
    if args.list:
        for m in MOMENTS:
            print(f"{m.key}  {m.sig:4}  {m.name}")
        print("c01  two unpartitioned workers\nc02  two partitioned workers\nbad  bad inputs")
        return 0
    try:
        Watcher(Path(tempfile.gettempdir()) / "probe").close()
    except OSError as err:
        print(f"faults.py needs Linux inotify: {err}", file=sys.stderr)
        return 2
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="scaling-faults."))
    work.mkdir(parents=True, exist_ok=True)
    config = work / "faults.toml"
    config.write_text(SWEEP_TOML)
    want = set(args.only or [])
    sel = lambda k: not want or k in want  # noqa: E731
    t0 = time.perf_counter()
    ref = work / "reference"
    if not (ref / "runs.csv").exists():
        rc = subprocess.run(sweep_cmd(config, ref), stdout=open(work / "reference.log", "w"), stderr=subprocess.STDOUT,
                            env=env(), cwd=REPO).returncode  # fmt: skip
        if rc != 0:
            print(f"the reference sweep failed (exit {rc}); see {work / 'reference.log'}", file=sys.stderr)
            return 1
    ref_s = time.perf_counter() - t0
    outcomes: list[Outcome] = []

    def record(o: Outcome) -> None:  # the report is rewritten after each scenario: a long campaign shows progress
        print(f"{o.key} {'ok' if o.ok else 'FAILED'}  {o.moment}  {o.note}", flush=True)
        outcomes.append(o)
        write_report(Path(args.report), outcomes, [], ref_s, time.perf_counter() - t0)

    for m in MOMENTS:
        if sel(m.key):
            record(kill_scenario(m, config, ref, work))
    for key, part in (("c01", False), ("c02", True)):
        if sel(key):
            record(concurrency_scenario(key, part, config, ref, work))
    bads = bad_inputs(config, ref, work) if sel("bad") else []
    for b in bads:
        print(f"{b.key} {'ok' if b.ok else 'FAILED'}  {b.what}: {b.stderr[:160]!r}", flush=True)
    write_report(Path(args.report), outcomes, bads, ref_s, time.perf_counter() - t0)
    print(f"wrote {args.report}")
    if not args.work:
        shutil.rmtree(work, ignore_errors=True)
    return 0 if all(o.ok for o in outcomes) and all(b.ok for b in bads) else 1


if __name__ == "__main__":
    sys.exit(main())
