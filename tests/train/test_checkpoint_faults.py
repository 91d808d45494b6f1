"""Checkpoint faults (#13): a damaged step is named (step and file) and a resume falls back
to the newest intact step, recording it; a full disk stops training at the first failed
save with one line saying so and where, the last good checkpoint kept and restorable."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from train_helpers import REPO, RUN, child_env, read_metrics

from scaling.cli.main import main
from scaling.train import load_params, train
from scaling.train.checkpoint import FAULTS_FILE, CheckpointCorrupt, Checkpoints, checkpoint_dir


def _copy_unfinished(reference, tmp_path) -> Path:
    """The reference run (steps 8 and 12 kept) as if killed after its last save."""
    _, src = reference
    out = tmp_path / "run"
    shutil.copytree(src, out)
    (out / "result.json").unlink()
    return out


def _data_file(run: Path, step: int) -> Path:
    return next((run / "checkpoints" / str(step) / "params" / "d").iterdir())


def test_a_truncated_array_file_is_named_with_its_step(reference, tmp_path):
    run = _copy_unfinished(reference, tmp_path)
    damaged = _data_file(run, 12)
    with open(damaged, "r+b") as f:
        f.truncate(damaged.stat().st_size // 2)
    with pytest.raises(CheckpointCorrupt, match=r"checkpoint step 12 is damaged: .*params/d/") as info:
        load_params(run, step=12)
    assert info.value.step == 12 and info.value.path == damaged
    assert (run / "checkpoints" / "12").is_dir()  # a reader never moves anything


def test_resume_falls_back_to_the_newest_intact_checkpoint_and_records_it(reference, tmp_path, capsys):
    result, _ = reference
    run = _copy_unfinished(reference, tmp_path)
    damaged = _data_file(run, 12)
    damaged.write_bytes(damaged.read_bytes()[:100])
    again = train(RUN, run)
    assert again.status == "done", again.error
    assert again.steps == 12
    assert again.final_eval_loss == pytest.approx(result.final_eval_loss, rel=1e-5)  # 8 -> 12 retrained exactly
    err = capsys.readouterr().err
    assert "checkpoint step 12 is damaged" in err and "Traceback" not in err
    events = [json.loads(line) for line in (run / FAULTS_FILE).read_text().splitlines()]
    assert events[0]["event"] == "damaged" and events[0]["step"] == 12 and events[0]["file"] == str(damaged)
    assert Path(events[0]["moved_to"]).is_dir()  # set aside, not deleted
    assert events[1] == {**events[1], "event": "restored", "step": 8, "after_damaged_step": 12}
    assert [r["step"] for r in read_metrics(run)] == [4, 8, 12]  # one row per evaluation, no duplicates
    with Checkpoints(checkpoint_dir(run), read_only=True) as ckpts:
        assert ckpts.steps() == [8, 12]  # step 12 saved again, intact


def test_scaling_interpolate_names_a_corrupt_meta_json(reference, tmp_path, capsys):
    run = _copy_unfinished(reference, tmp_path)
    (run / "checkpoints" / "12" / "meta" / "metadata").write_text('{"step": 12, "elapsed": 1.')
    code = main(["interpolate", f"{run}@8", f"{run}@12", "--points", "3", "--range", "0", "1"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "checkpoint step 12 is damaged" in err and "meta/metadata" in err and "not valid JSON" in err


def test_no_intact_checkpoint_is_one_clear_failure(reference, tmp_path):
    run = _copy_unfinished(reference, tmp_path)
    for step in (8, 12):
        (run / "checkpoints" / str(step) / "meta" / "metadata").write_text("{")
    res = train(RUN, run)
    assert res.status == "failed" and res.error.startswith("checkpoint step 8 is damaged")


FULL_DISK = textwrap.dedent(
    """
    set -e
    mount -t tmpfs -o size=2300k tmpfs "$1"
    "$2" - "$1/run" <<'EOF'
    import json, sys
    sys.path.insert(0, "tests/train")
    from train_helpers import run_config
    from scaling.train import load_params, train
    cfg = run_config(train={"steps": 40, "keep": 10, "checkpoint_every": 4, "async_checkpointing": True})
    res = train(cfg, sys.argv[1])
    params = load_params(sys.argv[1], step=res.steps)  # the last good checkpoint restores
    print(json.dumps({"status": res.status, "steps": res.steps, "error": res.error,
                      "result_json": json.load(open(sys.argv[1] + "/result.json"))["status"],
                      "params": len(params)}))
    EOF
    """
)


@pytest.mark.slow
@pytest.mark.multiprocess
def test_a_full_disk_stops_at_the_first_failed_save_in_one_line(tmp_path):
    """A real ENOSPC: a 2.3 MB tmpfs in a private mount namespace (skipped where the test
    may not mount one) holds two checkpoints of the tiny model; the third save fails."""
    if shutil.which("unshare") is None or subprocess.run(["unshare", "-m", "true"], capture_output=True).returncode:
        pytest.skip("needs `unshare -m` (a private mount namespace) to make a small full disk")
    mnt = tmp_path / "small"
    mnt.mkdir()
    script = tmp_path / "full.sh"
    script.write_text(FULL_DISK)
    proc = subprocess.run(["unshare", "-m", "sh", str(script), str(mnt), sys.executable], cwd=REPO,
                          env=child_env(8), capture_output=True, text=True, timeout=300)  # fmt: skip
    if "mount:" in proc.stderr and proc.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.strip()}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["status"] == "failed" and got["result_json"] == "failed"
    assert got["error"].startswith("disk full: no space left on device saving checkpoint step ")
    failed_step = int(got["error"].split("checkpoint step ")[1].split()[0])
    assert got["steps"] == failed_step - 4  # stopped at the first failed save; the one before is kept
    assert got["params"] > 0
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip() and not ln.startswith("step ")]
    assert len(lines) <= 3, proc.stderr[-3000:]  # one line, not a thousand
    assert any("disk full" in ln for ln in lines)
    assert "Traceback" not in proc.stderr and "Event loop is closed" not in proc.stderr
    assert np.isfinite(failed_step)


def test_another_managers_late_task_error_is_not_this_managers_save_error(tmp_path):
    """CI saw failed restore tasks (a truncated checkpoint, their exceptions never
    retrieved) logged while a manager saved, naming an earlier test's directory or this
    manager's own damaged step: neither is a save error; a failed write naming ours is."""
    import logging

    from scaling.train.checkpoint import Checkpoints, CheckpointSaveFailed

    def late_task_error(directory: Path, what: str, step: str = "12.orbax-checkpoint-tmp-1") -> None:
        err = ValueError(f'OUT_OF_RANGE: {what} "x/.zarray" in OCDBT database at local file "{directory}/{step}/'
                         'params/": orbax')  # fmt: skip
        logging.getLogger("asyncio").error("Task exception was never retrieved", exc_info=(ValueError, err, None))

    with Checkpoints(tmp_path / "mine" / "checkpoints") as ckpts:
        late_task_error(tmp_path / "other" / "checkpoints", "Error writing")
        ckpts.check_saves()  # not ours: no error
        late_task_error(tmp_path / "mine" / "checkpoints", "Error reading", step="12")
        ckpts.check_saves()  # ours, but of a finished step: a restore's (a damaged step set aside)
        late_task_error(tmp_path / "mine" / "checkpoints", "Error writing")
        with pytest.raises(CheckpointSaveFailed):
            ckpts.check_saves()
