"""Naming checkpoints and refusing to mix what cannot be mixed: errors raised before any
compute, naming the bad text, the available steps, or the first parameter that differs."""

from __future__ import annotations

import json
import math
import shutil

import pytest

from scaling.interpolate import barrier, check_same_architecture, grid, interpolate, resolve, split_spec
from scaling.model import ModelConfig

TINY = dict(width=64, depth=1, head_dim=32, seq_len=32)


def test_split_spec():
    assert split_spec("runs/a@200") == ("runs/a", 200)
    assert split_spec("runs/a") == ("runs/a", None)
    assert split_spec("runs/a@latest") == ("runs/a", None)
    for bad, needle in (
        ("runs/a@x", "step 'x' is not a whole number"),
        ("runs/a@-3", "'-3'"),
        ("@5", "no run directory before '@'"),
        ("", "expected RUN_DIR"),
    ):
        with pytest.raises(ValueError, match=needle):
            split_spec(bad)


def test_resolve_checks_run_and_step(run_dir, tmp_path):
    assert resolve(f"{run_dir}@8").step == 8
    assert resolve(str(run_dir)).step == 24  # latest
    assert resolve((str(run_dir), 12)).run_dir == run_dir.absolute()
    with pytest.raises(FileNotFoundError, match=r"step 7 is not saved in .*; available steps: 4, 8, 12, 16, 20, 24"):
        resolve(f"{run_dir}@7")
    with pytest.raises(FileNotFoundError, match="no run directory"):
        resolve(f"{tmp_path}/missing@4")
    (tmp_path / "not_a_run").mkdir()
    with pytest.raises(FileNotFoundError, match=r"not a run directory written by `scaling train` \(no config.json\)"):
        resolve(str(tmp_path / "not_a_run"))
    with pytest.raises(ValueError, match="non-negative integer"):
        resolve((str(run_dir), -1))


def test_architecture_mismatch_names_the_parameter_and_shapes():
    a = ModelConfig(**TINY)
    check_same_architecture(a, a.replace(init_std=0.01, attention="full"))  # same function: fine
    with pytest.raises(
        ValueError,
        match=r"parameter 'blocks.0.attn.k' has shape \(64, 2, 32\) in a but "
        r"\(128, 4, 32\) in b",
    ):
        check_same_architecture(a, a.replace(width=128))
    with pytest.raises(ValueError, match=r"parameter 'blocks.1.attn.k' of b does not exist in a"):
        check_same_architecture(a, a.replace(depth=2))
    with pytest.raises(ValueError, match=r"model.parameterization: 'sp' in a, 'mup' in b"):
        check_same_architecture(a, a.replace(parameterization="mup"))


def test_interpolating_runs_of_different_width_fails_before_loading(run_dir, tmp_path):
    wide = tmp_path / "wide"
    shutil.copytree(run_dir, wide)
    stored = json.loads((wide / "config.json").read_text())
    stored["config"]["model"]["width"] = 128
    (wide / "config.json").write_text(json.dumps(stored))
    with pytest.raises(
        ValueError,
        match=r"different architectures: parameter 'blocks.0.attn.k' has shape "
        r"\(64, 2, 32\) in .*@8 but \(128, 4, 32\) in .*wide@8",
    ):
        interpolate(f"{run_dir}@8", f"{wide}@8")


def test_grid_and_its_errors():
    assert grid(5, (0, 1)) == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert grid(11)[0] == -0.5 and grid(11)[-1] == 1.5
    with pytest.raises(ValueError, match="points=1 must be an integer >= 2"):
        grid(1)
    with pytest.raises(ValueError, match=r"range=\(1.0, 0.0\) must be finite with LO < HI"):
        grid(3, (1, 0))


def test_barrier_definition():
    line = lambda t: 3.0 - 0.5 * t  # noqa: E731 - endpoints 3.0 and 2.5
    ts = [-0.5, 0.0, 0.25, 0.5, 0.75, 1.0, 1.5]
    bump = [line(t) + (0.2 if t == 0.5 else 0.0) + (5.0 if t in (-0.5, 1.5) else 0.0) for t in ts]
    value, at = barrier(ts, bump, 3.0, 2.5)
    assert math.isclose(value, 0.2) and at == 0.5  # points outside [0, 1] do not count
    assert barrier(ts, [line(t) - 0.1 for t in ts], 3.0, 2.5) == (0.0, 0.0)  # below the line: 0
    assert barrier([0.0, 0.5, 1.0], [3.0, math.nan, 2.5], 3.0, 2.5) == (math.inf, 0.5)


def test_a_mesh_that_cannot_split_the_validation_batch_is_named(run_dir):
    with pytest.raises(ValueError, match=r"data.eval_batch_size=8 is not divisible .*data=3.*choose another mesh"):
        interpolate(f"{run_dir}@4", f"{run_dir}@8", mesh=(3, 1, 1))
    with pytest.raises(ValueError, match=r"mesh \(4, 4, 1\) needs 16 devices but 8 are available"):
        interpolate(f"{run_dir}@4", f"{run_dir}@8", mesh=(4, 4, 1))
