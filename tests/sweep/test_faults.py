"""Hardening (#13): bad input never touches existing results, the two tables never disagree,
untrusted ids stay in their directory, orphaned temp files are cleaned, every fault is named.

Fast: fake train functions (tests/sweep/sweep_helpers.py), no JAX. The real trainer's
faults (damaged checkpoints, a full disk) are in tests/train/test_checkpoint_faults.py; the
kill -9 campaign is benchmarks/faults.py.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from sweep_helpers import CountingTrain, fake_train, write_config

from scaling import atomic
from scaling.analysis.table import load_table
from scaling.cli.main import main
from scaling.sweep import ResultsStore, load_sweep_config, plan_sweep, run_sweep
from scaling.sweep.store import TABLES_FILE, check_run_id


def _plan(tmp_path, extra=""):
    return plan_sweep(load_sweep_config(write_config(tmp_path, extra=extra)))


def _sweep(plan, out, train_fn=None, **kw):
    kw.setdefault("record_environment", False)
    return run_sweep(plan, out, train_fn=train_fn or CountingTrain(), progress=False, log=lambda m: None, **kw)


def _snapshot(root: Path) -> dict[str, bytes]:
    """Every file under root (names and bytes; the lock files' existence included)."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _finished(tmp_path) -> tuple[object, Path]:
    plan = _plan(tmp_path)
    out = tmp_path / "out"
    _sweep(plan, out)
    return plan, out


# ---- 1. a rejected invocation writes nothing ---------------------------------------------
MISSING_DATA = '\n[data]\nsource = "text"\npaths = ["/nonexistent/corpus/*.txt"]\n'


def test_bad_data_path_leaves_an_existing_results_directory_byte_identical(tmp_path, capsys):
    _, out = _finished(tmp_path)
    before = _snapshot(out)
    bad = write_config(tmp_path, extra=MISSING_DATA)
    assert main(["sweep", str(bad), "--out", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "error:" in err and "nonexistent" in err
    assert _snapshot(out) == before


def test_bad_data_path_creates_no_new_results_directory(tmp_path, capsys):
    bad = write_config(tmp_path, extra=MISSING_DATA)
    out = tmp_path / "new" / "out"
    assert main(["sweep", str(bad), "--out", str(out), "--no-progress"]) == 2
    assert "nonexistent" in capsys.readouterr().err
    assert not (tmp_path / "new").exists()


def test_results_path_that_is_a_file_is_rejected_untouched(tmp_path):
    plan = _plan(tmp_path)
    target = tmp_path / "runs.csv"
    target.write_text("not a directory\n")
    with pytest.raises(PermissionError, match="is a file"):
        _sweep(plan, target)
    assert target.read_text() == "not a directory\n"


# ---- 2. runs.csv and curves.csv are one generation --------------------------------------
def _curves_by_run(df) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for rid, step in zip(df["run_id"], df["step"]):
        out.setdefault(rid, []).append(int(step))
    return out


def test_a_torn_pair_is_detected_and_rebuilt_from_the_per_run_files(tmp_path):
    plan = _plan(tmp_path)
    out = tmp_path / "out"
    half = CountingTrain(fail={r.run_id for r in plan.runs[len(plan.runs) // 2 :]})
    _sweep(plan, out, half)
    old_curves = (out / "curves.csv").read_bytes()  # an earlier generation
    _sweep(plan, out)  # finishes the rest
    full = load_table(out, curves=True)
    (out / "curves.csv").write_bytes(old_curves)  # a writer killed between the two renames
    assert ResultsStore(out).check_tables() is not None
    with pytest.warns(UserWarning, match="different writes"):
        torn = load_table(out, curves=True)
    assert _curves_by_run(torn) == _curves_by_run(full)  # every done run keeps its curve
    assert len(torn) == len(full)


def test_a_torn_pair_without_per_run_files_is_an_error_not_a_silent_subset(tmp_path):
    plan, out = _finished(tmp_path)
    (out / "curves.csv").write_text((out / "curves.csv").read_text().splitlines()[0] + "\n")
    import shutil

    shutil.rmtree(out / "runs")
    with pytest.raises(ValueError, match="curves.csv.*different writes"):
        load_table(out, curves=True)
    with pytest.raises(ValueError, match="cannot adopt"):  # nor is the torn pair adopted by a rerun
        _sweep(plan, out)


def test_consolidate_killed_between_the_tables_leaves_a_detectable_pair(tmp_path, monkeypatch):
    plan, out = _finished(tmp_path)
    store = ResultsStore(out)
    assert store.check_tables() is None
    generation = json.loads((out / TABLES_FILE).read_text())["generation"]
    rid = plan.runs[0].run_id
    with open(store.run_dir(rid) / "metrics.jsonl", "a") as f:  # the next generation has one more curve row
        f.write(json.dumps({"step": 10**6, "tokens": 1, "flops": 1.0, "train_loss": 2.0, "eval_loss": 2.0}) + "\n")
    from scaling.sweep import store as store_mod

    real, calls = store_mod.write_atomic, []

    def dies_after_curves(path, text):
        calls.append(Path(path).name)
        if Path(path).name == "runs.csv":
            raise KeyboardInterrupt  # killed after curves.csv was replaced, before runs.csv
        real(path, text)

    monkeypatch.setattr(store_mod, "write_atomic", dies_after_curves)
    with pytest.raises(KeyboardInterrupt):
        store.consolidate()
    monkeypatch.undo()
    assert calls == ["curves.csv", "runs.csv"]
    assert "curves.csv" in store.check_tables()
    runs, curves, problem = store.read_tables()
    assert problem and curves.count(rid) == (out / "curves.csv").read_text().count(rid)
    store.consolidate()
    assert store.check_tables() is None
    assert json.loads((out / TABLES_FILE).read_text())["generation"] == generation + 1


# ---- 3. run ids from files never escape the results directory ----------------------------
@pytest.mark.parametrize("bad_id", ["../../escaped", "ABSOLUTE", "0123456789ab/../../x", ""])
def test_run_ids_from_an_untrusted_runs_csv_are_rejected_before_any_write(tmp_path, bad_id):
    absolute = tmp_path / "absolute-escape"
    bad_id = str(absolute) if bad_id == "ABSOLUTE" else bad_id
    plan = _plan(tmp_path)
    out = tmp_path / "results" / "out"
    out.mkdir(parents=True)
    header = "run_id,status,eval_loss\n"
    (out / "runs.csv").write_text(header + f"0123456789ab,done,3.0\n{bad_id},done,2.5\n")
    before = _snapshot(tmp_path)
    with pytest.raises(ValueError, match=r"runs.csv:3: run_id: .* is not a run id"):
        _sweep(plan, out)
    assert _snapshot(tmp_path) == before
    assert not (tmp_path / "escaped").exists() and not absolute.exists()


def test_run_ids_in_plan_json_and_paths_are_checked(tmp_path):
    plan, out = _finished(tmp_path)
    (out / "runs" / "plan.json").write_text(json.dumps({"run_ids": ["../../../etc"]}))
    with pytest.raises(ValueError, match=r"plan.json: run_ids\[0\]"):
        ResultsStore(out).rows()
    with pytest.raises(ValueError, match="not a run id"):
        ResultsStore(out).run_dir("..")
    assert all(check_run_id(r.run_id) == r.run_id for r in plan.runs)  # the planner's format


# ---- 6 and 8. malformed tables are errors naming file and line ----------------------------
def test_a_runs_csv_cut_mid_line_is_an_error_naming_file_and_line(tmp_path):
    _, out = _finished(tmp_path)
    (out / TABLES_FILE).unlink()  # as a table committed by hand, without the record
    text = (out / "runs.csv").read_text()
    n_lines = len(text.splitlines())
    (out / "runs.csv").write_text(text[: len(text) - 40])  # cut inside the last row
    with pytest.raises(ValueError, match=rf"runs.csv:{n_lines}: .*malformed or truncated"):
        load_table(out)
    with pytest.warns(UserWarning, match="dropped 1 malformed row"):
        df = load_table(out, bad_lines="warn")
    assert len(df) == n_lines - 2  # header and the cut row


def test_a_results_pair_damaged_after_it_was_recorded_is_rebuilt(tmp_path):
    _, out = _finished(tmp_path)
    full = load_table(out)
    text = (out / "runs.csv").read_text()
    (out / "runs.csv").write_text(text[: len(text) - 40])
    with pytest.warns(UserWarning, match="rebuilt"):
        again = load_table(out)
    assert list(again["run_id"]) == list(full["run_id"])


@pytest.mark.parametrize(
    "content, message",
    [
        (b"params,tokens,loss\n1e8,2e9,3.0\n2e8,4e9\n", r"bad.csv:3: .*malformed or truncated"),
        (b"", r"bad.csv: empty file"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe", r"bad.csv: not a UTF-8 text CSV"),
        (b'params,tokens,loss\n1e8,2e9,"3.0\n', r"bad.csv"),
    ],
    ids=["malformed", "empty", "binary", "open-quote"],
)
def test_scaling_fit_names_the_file_of_a_bad_csv(tmp_path, capsys, content, message):
    bad = tmp_path / "bad.csv"
    bad.write_bytes(content)
    assert main(["fit", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    import re

    assert re.search(message, err), err


# ---- 7. orphaned temp files --------------------------------------------------------------
def test_stale_temp_files_are_removed_only_when_their_writer_is_gone(tmp_path):
    _, out = _finished(tmp_path)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        run_dir = next(p for p in (out / "runs").iterdir() if p.is_dir())
        names = {}
        for where, target in ((out, "runs.csv"), (out, "curves.csv"), (run_dir, "status.json")):
            for who, pid in (("dead", dead_pid), ("alive", alive.pid)):
                prefix = atomic.temp_prefix(Path(target)).rsplit(".", 2)[0]  # ".name.host"
                p = where / f"{prefix}.{pid}.abc123.tmp"
                p.write_text("partial")
                names[p] = who
        other_host = out / ".runs.csv.some-other-host.1.abc123.tmp"
        other_host.write_text("partial")
        removed = ResultsStore(out).clean_temps()
        assert removed == 3
        for p, who in names.items():
            assert p.exists() == (who == "alive"), p
        assert other_host.exists()  # another machine's writer may be alive: never touched
    finally:
        alive.kill()
        alive.wait()


def test_a_rerun_cleans_the_orphans_of_a_killed_writer(tmp_path):
    plan, out = _finished(tmp_path)
    code = (
        "import os, sys\n"
        "from scaling import atomic\n"
        "with atomic.atomic_path(sys.argv[1]) as tmp:\n"
        "    open(tmp, 'w').write('half')\n"
        "    os._exit(9)\n"  # killed mid-write: the temp file stays
    )
    subprocess.run([sys.executable, "-c", code, str(out / "runs.csv")], check=False)
    assert len(list(out.glob(".runs.csv.*.tmp"))) == 1
    _sweep(plan, out)
    assert list(out.glob(".*.tmp")) == []


# ---- 9. smaller ----------------------------------------------------------------------------
def test_a_diverged_run_says_at_which_step_and_what_value(tmp_path):
    plan = _plan(tmp_path)
    out = tmp_path / "out"

    def diverges(config, run_dir):  # what the trainer returns: no error text of its own
        return {"status": "diverged", "steps": 7, "eval_loss": float("nan")}

    _sweep(plan, out, diverges)
    with open(out / "runs.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert {r["status"] for r in rows} == {"diverged"}
    assert all(r["error"] == "diverged at step 7: loss nan" for r in rows), rows[0]["error"]


def test_no_progress_reaches_the_trainer(tmp_path, monkeypatch):
    """--no-progress turns the trainer's bar off; with progress on, it is on at a terminal
    (off one, the sweep prints a line per run instead: see the runner)."""
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    plan = _plan(tmp_path)
    seen = []

    def train(config, run_dir):
        seen.append(config["train"].get("progress", True))
        return fake_train(config, run_dir)

    _sweep(plan, tmp_path / "quiet", train)
    assert seen and not any(seen)
    seen.clear()
    run_sweep(plan, tmp_path / "loud", train_fn=train, progress=True, record_environment=False, log=lambda m: None)
    assert seen and all(seen)


def test_files_respect_the_umask(tmp_path):
    old = os.umask(0o027)
    try:
        path = atomic.write_text(tmp_path / "x.txt", "x")
        assert path.stat().st_mode & 0o777 == 0o640
        os.umask(0o002)
        assert atomic.write_text(tmp_path / "y.txt", "y").stat().st_mode & 0o777 == 0o664
    finally:
        os.umask(old)


def test_check_run_id_messages():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ValueError, match=r"runs.csv:2: run_id: '\.\./x' is not a run id"):
            check_run_id("../x", "runs.csv:2: run_id")
