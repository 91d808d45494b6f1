"""`train()` end to end, in-process: outputs, resume, branching, divergence, bad input."""

from __future__ import annotations

import json
import math
import shutil

import pandas as pd
import pytest
from train_helpers import RUN, read_metrics, run_config

from scaling.model import ModelConfig, flops_per_token
from scaling.train import checkpoint_steps, evaluate, load_params, read_result, train
from scaling.train import step as step_module


def assert_same_curve(rows, ref_rows, rtol=1e-5):
    assert [r["step"] for r in rows] == [r["step"] for r in ref_rows]
    for r, ref in zip(rows, ref_rows):
        for key in ("train_loss", "eval_loss", "lr", "tokens", "flops"):
            assert r[key] == pytest.approx(ref[key], rel=rtol), (r["step"], key)


def test_run_writes_metrics_result_config_and_checkpoints(reference):
    result, out = reference
    tokens = 12 * 8 * 32
    assert (result.steps, result.tokens) == (12, tokens)
    assert result.flop_convention == "exact"  # the default
    assert result.flops == pytest.approx(tokens * flops_per_token(ModelConfig(**RUN["model"]), "exact"))
    df = pd.read_json(out / "metrics.jsonl", lines=True)
    assert list(df["step"]) == [4, 8, 12]
    for column in (
        "step",
        "tokens",
        "flops",
        "flops_convention",
        "train_loss",
        "eval_loss",
        "eval_ppl",
        "eval_bpb",
        "lr",
        "tokens_per_s",
        "mfu",
        "elapsed",
    ):
        assert column in df.columns
    last = df.iloc[-1]
    assert last["eval_loss"] == pytest.approx(result.final_eval_loss)
    assert last["eval_bpb"] == pytest.approx(last["eval_loss"] / math.log(2))  # bytes: 1 byte per token
    assert last["eval_ppl"] == pytest.approx(math.exp(last["eval_loss"]))
    assert df["eval_loss"].iloc[-1] < df["eval_loss"].iloc[0] < math.log(257) + 0.5
    assert df["mfu"].isna().all()  # CPU: no known peak
    assert checkpoint_steps(out) == [8, 12]  # keep = 2
    saved = json.loads((out / "config.json").read_text())
    assert saved["seed"] == 0 and saved["data_manifest_hash"] and saved["versions"]["jax"]
    assert saved["starts"][0]["devices"]["device_count"] == 8
    assert saved["versions"]["python"] and len(saved["starts"][0]["git"]["commit"] or "x" * 40) == 40
    assert read_result(out).status == "done"


def test_rerunning_a_finished_run_does_nothing(reference, capsys):
    result, out = reference
    before = (out / "metrics.jsonl").read_text()
    again = train(RUN, out)
    assert again == result
    assert "already finished" in capsys.readouterr().err
    assert (out / "metrics.jsonl").read_text() == before


def test_a_different_config_in_the_same_dir_is_an_error(reference):
    _, out = reference
    with pytest.raises(ValueError, match=r"different config:\n  optimizer.lr: 0.01 \(existing run\) != 0.5"):
        train(run_config(optimizer={"lr": 0.5}), out)


def test_resume_onto_another_mesh_continues_the_same_curve(reference, tmp_path):
    """Interrupted after step 8 (its last checkpoint), resumed on a 2 x 4 (data x fsdp) mesh:
    the row of step 12 is rewritten (no duplicate) and the curve matches."""
    _, ref = reference
    out = tmp_path / "run"
    shutil.copytree(ref, out)
    shutil.rmtree(out / "checkpoints" / "12")
    (out / "result.json").unlink()
    (out / "checkpoints" / "12.orbax-checkpoint-tmp-1234").mkdir()  # a save cut short by kill -9
    result = train(run_config(mesh={"data": 2, "fsdp": 4}), out)
    assert result.status == "done"
    assert_same_curve(read_metrics(out), read_metrics(ref))
    assert checkpoint_steps(out) == [8, 12]
    assert not list((out / "checkpoints").glob("*tmp*"))  # stale temporary dirs are removed


def test_load_params_and_evaluate(reference):
    result, out = reference
    params = load_params(out, 12)
    assert params["blocks.0.attn.q"].shape == (64, 2, 32)
    assert evaluate(out, params)["eval_loss"] == pytest.approx(result.final_eval_loss, rel=1e-5)
    earlier = load_params(out, 8)
    mid = {k: 0.5 * params[k] + 0.5 * earlier[k] for k in params}  # weight-space interpolation
    assert math.isfinite(evaluate(out, mid)["eval_loss"])


def test_init_from_continues_a_run_and_branches_a_schedule(reference, tmp_path):
    result, ref = reference
    # same schedule: continuing from step 8 reproduces the run's last steps
    same = train(run_config(train={"init_from": [str(ref), 8]}), tmp_path / "same")
    assert same.status == "done"
    assert_same_curve(read_metrics(tmp_path / "same"), read_metrics(ref)[2:])
    # a WSD cooldown branch of another length starts from there too
    branch = train(
        run_config(
            schedule={"kind": "wsd", "cooldown_fraction": 0.25, "min_lr_ratio": 0.0},
            train={"steps": 16, "init_from": [str(ref), 8]},
        ),
        tmp_path / "branch",
    )
    rows = read_metrics(tmp_path / "branch")
    assert branch.status == "done" and [r["step"] for r in rows] == [12, 16]
    assert rows[-1]["lr"] == 0.0


def test_divergence_stops_the_run(tmp_path):
    result = train(run_config(optimizer={"lr": 1e30}), tmp_path / "run")
    assert result.status == "diverged" and result.diverged_step is not None
    assert read_result(tmp_path / "run").status == "diverged"


def test_divergence_inside_a_call_of_several_steps_names_its_step(tmp_path):
    """Step 1 runs alone (the first sync), steps 2-10 in one call of `train_steps`; at an
    LR of 1e30 from the start the first non-finite training loss is step 3's (as when
    every step was its own call), and the run names step 3, not the call's last step."""
    cfg = run_config(optimizer={"lr": 1e30}, schedule={"kind": "constant", "warmup": 0.0},
                     train={"steps": 20, "log_every": 10})  # fmt: skip
    result = train(cfg, tmp_path / "run")
    assert result.status == "diverged" and result.diverged_step == 3, result
    assert result.error == "diverged at step 3: train loss nan"


@pytest.mark.parametrize(
    "sections, error, message",
    [
        ({"mesh": {"data": 3}}, ValueError, r"mesh data=3 .* but 8 are available"),
        ({"train": {"global_batch_size": 12}}, ValueError, r"train.global_batch_size=12 is not divisible"),
        ({"data": {"eval_batch_size": 4}}, ValueError, r"data.eval_batch_size=4 is not divisible"),
        ({"model": {"vocab_size": 100}}, ValueError, r"model.vocab_size=100 is smaller"),
        ({"train": {"init_from": ["/nonexistent/run", 4]}}, FileNotFoundError, r"/nonexistent/run"),
        (
            {"schedule": {"warmup": 12}},
            ValueError,
            r"schedule.warmup=12 \(12 steps\) is not shorter than the run \(12 steps\)",
        ),
        (
            {"schedule": {"kind": "wsd", "warmup": 0.5, "cooldown_fraction": 0.6}},
            ValueError,
            r"schedule.warmup=0.5 \(6 steps\) and schedule.cooldown_fraction=0.6 \(7 steps\) overlap",
        ),
    ],
)
def test_bad_input_fails_before_compiling(tmp_path, sections, error, message):
    compiled = step_module._program.cache_info().misses
    with pytest.raises(error, match=message):
        train(run_config(**sections), tmp_path / "run")
    assert step_module._program.cache_info().misses == compiled
    assert not (tmp_path / "run").exists()  # a rejected config leaves no directory behind


def test_unwritable_out_dir(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(PermissionError, match="not writable"):
        train(RUN, tmp_path / "file" / "run")
