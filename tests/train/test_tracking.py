"""Live tracking: TensorBoard event files and W&B offline runs hold the curves of
metrics.jsonl, one value per step, also after kill -9 and a resume; a sweep logs one
summary row per finished run; a missing extra is a one-line error."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from train_helpers import child_env, read_metrics, run_config, scaling_cmd, write_toml

pytest.importorskip("tensorboardX", reason="needs the tensorboard extra (in the test extra)")
pytest.importorskip("tensorboard", reason="reads event files with TensorBoard's reader (in the test extra)")
pytest.importorskip("wandb", reason="needs the wandb extra (in the test extra)")

from tracking_helpers import tensorboard_raw_steps, tensorboard_scalars, wandb_offline_runs  # noqa: E402

from scaling.cli.main import main  # noqa: E402
from scaling.extras import MissingExtraError  # noqa: E402
from scaling.train import train  # noqa: E402
from scaling.train.tracking import TrackConfig  # noqa: E402

CURVE_KEYS = ("train_loss", "eval_loss", "lr")


@pytest.fixture(autouse=True)
def wandb_offline(monkeypatch, tmp_path):
    """W&B without a network or an account: offline runs, quiet, settings kept in tmp."""
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(tmp_path / "wandb-config"))
    monkeypatch.setenv("WANDB_CACHE_DIR", str(tmp_path / "wandb-cache"))


def assert_mirrors(curves: dict, rows: list[dict], keys=CURVE_KEYS):
    """Every key's curve is metrics.jsonl's: the same steps, each once, the same values."""
    for key in keys:
        want = [(r["step"], r[key]) for r in rows if r.get(key) is not None]
        got = curves[key]
        assert [s for s, _ in got] == [s for s, _ in want], key
        for (_, v), (_, w) in zip(got, want):
            assert v == pytest.approx(w, rel=1e-6), key


def wandb_curves(run: dict) -> dict[str, list[tuple[int, float]]]:
    out: dict[str, list] = {}
    for step, items in run["history"]:
        for key, value in items.items():
            if not key.startswith("_"):
                out.setdefault(key, []).append((step, value))
    return out


def test_track_config_checks_its_values():
    assert TrackConfig(backends="wandb").backends == ("wandb",)
    assert TrackConfig(backends=["wandb", "tensorboard", "wandb"]).backends == ("wandb", "tensorboard")
    with pytest.raises(
        ValueError, match="unknown backend 'tensorbord'; choose from tensorboard, wandb .did you mean 'tensorboard'"
    ):
        TrackConfig(backends=["tensorbord"])
    with pytest.raises(ValueError, match="track.project=3: must be a string"):
        TrackConfig(project=3)


def test_missing_extra_is_one_line_error_before_any_compute(tmp_path, monkeypatch, capsys):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "wandb" else real(name, *a))
    config, out = write_toml(tmp_path / "run.toml", run_config()), tmp_path / "run"
    assert main(["train", "--config", str(config), "--out", str(out), "--track", "wandb"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.splitlines() == [
        "scaling train: error: track.backends = ['wandb'] needs wandb, which is not installed: pip install 'scaling[wandb]'"
    ]
    assert not out.exists()  # rejected before the run directory was made
    with pytest.raises(MissingExtraError):
        TrackConfig(backends=["wandb"]).check_available()


def test_tensorboard_and_wandb_mirror_metrics_jsonl(tmp_path):
    out = tmp_path / "run"
    cfg = run_config(train={"steps": 8, "eval_every": 2}, track={"backends": ["tensorboard", "wandb"], "group": "g"})
    assert train(cfg, out).status == "done"
    rows = read_metrics(out)
    assert [r["step"] for r in rows] == [2, 4, 6, 8]
    assert all(r["mfu_convention"] == "exact" for r in rows)
    assert_mirrors(tensorboard_scalars(out / "tensorboard"), rows, (*CURVE_KEYS, "grad_norm", "eval_bpb"))
    (run,) = wandb_offline_runs(out)
    assert (run["run_id"], run["project"], run["group"]) == ("run", "scaling", "g")
    assert_mirrors(wandb_curves(run), rows, (*CURVE_KEYS, "grad_norm", "eval_bpb"))
    # rerunning the finished run does nothing, so no tracker run is opened again
    assert train(cfg, out).status == "done"
    assert len(wandb_offline_runs(out)) == 1


LONG = run_config(
    train={"steps": 300, "eval_every": 10, "checkpoint_every": 50, "log_every": 10},
    track={"project": "kill-test"},
)


def _checkpoints(out: Path) -> list[int]:
    d = out / "checkpoints"
    return sorted(int(p.name) for p in d.iterdir() if p.name.isdigit()) if d.is_dir() else []


def _logged_steps(out: Path) -> list[int]:
    path = out / "metrics.jsonl"
    steps = []
    for line in path.read_text().splitlines() if path.exists() else []:
        try:
            steps.append(json.loads(line)["step"])
        except json.JSONDecodeError:
            pass
    return steps


@pytest.mark.slow
@pytest.mark.multiprocess
def test_kill_9_and_resume_logs_every_step_once(tmp_path):
    """kill -9 after rows beyond the last checkpoint reached both trackers; the resumed
    run's TensorBoard curve (as TensorBoard reads it) and the W&B run's history hold
    each step once, equal to metrics.jsonl; one W&B run id across both starts."""
    config, out, log = write_toml(tmp_path / "run.toml", LONG), tmp_path / "run", tmp_path / "log.txt"
    cmd = scaling_cmd("train", "--config", str(config), "--out", str(out), "--track", "tensorboard", "--track", "wandb")
    env = child_env()
    # each process its own W&B service (an in-process test before this one exported its
    # own service's address, and a killed client's run would stay registered there)
    env.pop("WANDB_SERVICE", None)
    first = subprocess.Popen(cmd, env=env, stdout=log.open("a"), stderr=subprocess.STDOUT)
    deadline = time.time() + 300
    try:
        while True:  # freeze it when a row past the newest checkpoint is in metrics.jsonl
            assert time.time() < deadline, log.read_text()
            assert first.poll() is None, f"training ended before the kill:\n{log.read_text()}"
            ckpts, steps = _checkpoints(out), _logged_steps(out)
            if ckpts and steps and steps[-1] > ckpts[-1]:
                first.send_signal(signal.SIGSTOP)
                ckpts, steps = _checkpoints(out), _logged_steps(out)
                if steps[-1] > ckpts[-1] and steps[-1] in tensorboard_raw_steps(out / "tensorboard", "eval_loss"):
                    break
                first.send_signal(signal.SIGCONT)
            time.sleep(0.02)
    finally:
        first.kill()
    assert first.wait() == -signal.SIGKILL
    restored, killed_rows = ckpts[-1], steps
    assert 0 < restored < killed_rows[-1] < 300

    second = subprocess.run(cmd, env=env, stdout=log.open("a"), stderr=subprocess.STDOUT, timeout=300)
    assert second.returncode == 0, log.read_text()
    rows = read_metrics(out)
    assert [r["step"] for r in rows] == list(range(10, 301, 10))

    # TensorBoard: the killed process's rows after the checkpoint are in the files, purged on reading
    raw = tensorboard_raw_steps(out / "tensorboard", "eval_loss")
    assert sorted(set(raw)) == list(range(10, 301, 10)) and len(raw) > len(set(raw))  # duplicates were written
    assert_mirrors(tensorboard_scalars(out / "tensorboard"), rows)

    # W&B: both starts are one W&B run (one id, continued: wandb sync uploads them as one);
    # the killed process's W&B service lost what it had not written, so the resumed start
    # replays the rows metrics.jsonl kept, and its segment is the whole curve, once
    runs = wandb_offline_runs(out)
    assert len(runs) == 2 and {r.get("run_id", "run") for r in runs} == {"run"}
    assert runs[-1]["project"] == "kill-test"
    assert_mirrors(wandb_curves(runs[-1]), rows)


def test_sweep_logs_one_summary_row_per_finished_run(tmp_path):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "sweep"))
    from sweep_helpers import fake_train, write_config

    from scaling.sweep import load_sweep_config, plan_sweep, run_sweep

    path = write_config(tmp_path, budgets="[1e11, 3e11]", extra='\n[track]\nbackends = ["tensorboard", "wandb"]\n')
    plan = plan_sweep(load_sweep_config(path))
    configs = []

    def train_fn(config, run_dir):
        configs.append(config["track"])
        return fake_train(config, run_dir)

    out = tmp_path / "results"
    report = run_sweep(plan, out, train_fn=train_fn, progress=False, record_environment=False)
    done = [r for r in report.rows if r["status"] == "done"]
    n = len(plan.runs)
    assert len(done) == n == len(configs) > 4
    # each run's tracker is named after the sweep, its run id the run id
    assert [c["run_id"] for c in configs] == [r.run_id for r in plan.runs]
    assert {(c["project"], c["group"]) for c in configs} == {("test", "test")}

    import pandas as pd

    table = pd.read_csv(out / "runs.csv").set_index("run_id")
    tb = tensorboard_scalars(out / "tensorboard" / "sweep")
    assert [s for s, _ in tb["sweep/final_loss"]] == list(range(1, n + 1))
    (summary,) = wandb_offline_runs(out)
    assert summary["run_id"] == "test-summary" and summary["group"] == "test"
    history = [items for _, items in summary["history"]]
    assert [h["run_id"] for h in history] == [r.run_id for r in plan.runs]
    for h, (_, loss), (_, params) in zip(history, tb["sweep/final_loss"], tb["sweep/N"]):
        row = table.loc[h["run_id"]]
        assert (h["N"], h["D"], h["C"]) == (row["params_nonembedding"], row["tokens"], row["flops"])
        assert h["final_loss"] == pytest.approx(row["eval_loss"]) == pytest.approx(loss, rel=1e-6)
        assert params == pytest.approx(row["params_nonembedding"], rel=1e-6)

    # a rerun trains nothing and logs no row twice
    run_sweep(plan, out, train_fn=train_fn, progress=False, record_environment=False)
    assert len(configs) == n
    assert sum(len(r["history"]) for r in wandb_offline_runs(out)) == n
