"""`scaling sweep --jobs J`: J worker processes, each pinned to its own cores."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from scaling.sweep import load_sweep_config, plan_sweep
from scaling.sweep.pool import core_sets, run_jobs, thread_flags
from scaling.sweep.store import ResultsStore

sys.path.insert(0, str(Path(__file__).parent))
from sweep_helpers import affinity_train, write_config  # noqa: E402


def test_core_sets_are_disjoint_blocks_that_wrap_round(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {4, 5, 6, 7}, raising=False)
    assert core_sets(2, 2) == [[4, 5], [6, 7]]
    assert core_sets(4, 1) == [[4], [5], [6], [7]]
    assert core_sets(3, 2) == [[4, 5], [6, 7], [4, 5]]  # more jobs than cores: shared, round-robin


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="core pinning is Linux-only")
def test_two_jobs_run_every_run_once_each_on_its_own_cores(tmp_path):
    plan = plan_sweep(load_sweep_config(write_config(tmp_path)))
    out = tmp_path / "results"
    report = run_jobs(plan, out, jobs=2, train_fn=affinity_train)
    assert sorted(r["run_id"] for r in report.rows) == sorted(r.run_id for r in plan.runs)
    assert all(r["status"] == "done" for r in report.rows)
    store = ResultsStore(out)
    seen = [json.loads((Path(store.run_dir(r.run_id)) / "affinity.json").read_text()) for r in plan.runs]
    by_pid: dict[int, list[int]] = {}
    for s in seen:
        assert by_pid.setdefault(s["pid"], s["cores"]) == s["cores"]  # a worker stays on its cores
        assert thread_flags(1) in s["xla_flags"]
    assert by_pid and os.getpid() not in by_pid  # worker processes, not this one
    usable = len(os.sched_getaffinity(0))
    expected = core_sets(2, max(1, usable // 2))
    for cores in by_pid.values():
        assert cores in expected  # pinned: without it each worker runs on every core
    if usable >= 2 and len(by_pid) == 2:  # (a worker that finishes first may take over all the rest)
        assert len({tuple(c) for c in by_pid.values()}) == 2  # disjoint: no two pools on one core
