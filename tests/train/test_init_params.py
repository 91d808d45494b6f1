"""`train.init_params_from = "RUN_DIR@STEP"`: a run started from another run's parameters with
a fresh optimizer and its own schedule (fine-tuning); the parent recorded; bad parents
rejected before anything compiles."""

from __future__ import annotations

import json

import pytest
from train_helpers import read_metrics, run_config

from scaling.train import train
from scaling.train.config import RunConfig


def child(parent_spec: str, **train_kw) -> dict:
    return run_config(
        train={"init_params_from": parent_spec, "steps": 6, "eval_every": 3, "eval_at_start": True, **train_kw},
        schedule={"kind": "cosine", "warmup": 3},
    )


def test_child_starts_from_the_parents_params_with_its_own_schedule(reference, tmp_path):
    _, parent = reference
    out = tmp_path / "ft"
    res = train(child(f"{parent}@12"), out)
    assert res.status == "done" and res.steps == 6
    rows = read_metrics(out)
    parent_rows = {r["step"]: r for r in read_metrics(parent)}
    # step 0 of the child is the parent's step-12 model, evaluated on the same batches
    assert rows[0]["step"] == 0 and rows[0]["eval_loss"] == parent_rows[12]["eval_loss"]
    assert [r["step"] for r in rows] == [0, 3, 6]
    # its own schedule: warmup from zero over 3 steps (the parent ended its cosine at 10%)
    assert rows[1]["lr"] == pytest.approx(1e-2)
    stored = json.loads((out / "config.json").read_text())
    assert stored["parent"]["run_dir"] == str(parent) and stored["parent"]["step"] == 12
    assert (
        stored["parent"]["data_manifest_hash"] == json.loads((parent / "config.json").read_text())["data_manifest_hash"]
    )
    assert stored["config"]["train"]["init_params_from"] == f"{parent}@12"
    # a rerun finds it finished
    assert train(child(f"{parent}@12"), out).status == "done"


def test_fresh_optimizer_state(reference, tmp_path):
    """init_params_from starts Adam's step count and moments afresh (init_from would continue
    the parent's: count 8 at step 8)."""
    import jax
    import numpy as np

    from scaling.train.checkpoint import Checkpoints, checkpoint_dir
    from scaling.train.evaluate import resolve_mesh
    from scaling.train.step import program

    _, parent = reference
    out = tmp_path / "fresh"
    raw = child(f"{parent}@8", steps=2, eval_every=2, eval_at_start=False)
    raw["schedule"] = {"kind": "constant"}
    assert train(raw, out).status == "done"
    cfg = RunConfig.from_dict(raw)
    prog = program(cfg.model, cfg.optimizer, 1, resolve_mesh(None), cfg.mesh.sharding_rules())
    with Checkpoints(checkpoint_dir(out), read_only=True) as ck:
        mine = ck.restore(2, prog.abstract_params(), prog.abstract_opt_state())["opt_state"]
    with Checkpoints(checkpoint_dir(parent), read_only=True) as ck:
        theirs = ck.restore(8, prog.abstract_params(), prog.abstract_opt_state())["opt_state"]
    counts = [np.asarray(x) for x in jax.tree.leaves(mine) if np.ndim(x) == 0 and np.issubdtype(x.dtype, np.integer)]
    parent_counts = [
        np.asarray(x) for x in jax.tree.leaves(theirs) if np.ndim(x) == 0 and np.issubdtype(x.dtype, np.integer)
    ]
    assert counts and all(int(c) == 2 for c in counts)
    assert parent_counts and all(int(c) == 8 for c in parent_counts)


@pytest.mark.parametrize(
    "make_spec, model, error, message",
    [
        (
            lambda p: f"{p}@12",
            {"width": 32, "head_dim": 32},
            ValueError,
            "a checkpoint of another architecture: parameter",
        ),
        (lambda p: f"{p}@12", {"mlp": "swiglu"}, ValueError, "a checkpoint of another architecture"),
        (lambda p: f"{p}@5", {}, FileNotFoundError, "step 5 is not saved in .*available steps: 8, 12"),
        (lambda p: f"{p}/nowhere@5", {}, FileNotFoundError, "is not a run directory"),
    ],
)
def test_bad_parents_are_rejected_before_compute(reference, tmp_path, make_spec, model, error, message):
    _, parent = reference
    raw = child(make_spec(parent))
    raw["model"] = {**raw["model"], **model}
    out = tmp_path / "bad"
    with pytest.raises(error, match=message):
        train(raw, out)
    assert not out.exists()  # nothing left behind


def test_config_errors():
    with pytest.raises(ValueError, match=r"train.init_params_from='runs/pre': must be \"RUN_DIR@STEP\""):
        RunConfig.from_dict(child("runs/pre"))
    raw = child("runs/pre@10")
    raw["train"]["init_from"] = ["runs/pre", 10]
    with pytest.raises(ValueError, match="give train.init_from or train.init_params_from, not both"):
        RunConfig.from_dict(raw)
