"""The public evaluation API (`scaling.train.evaluate`): an `Evaluator`'s loss is the
trainer's `eval_loss`, bit for bit; one cache; meshes and bad input named."""

from __future__ import annotations

import math

import jax
import numpy as np
import pytest
from train_helpers import read_metrics

from scaling.train import (
    MeshConfig,
    checkpoint_steps,
    evaluate,
    evaluator,
    load_params,
    param_shapes,
    resolve_mesh,
    run_config,
)
from scaling.train.trainer import eval_loss


def test_loss_on_the_training_mesh_is_the_logged_eval_loss_bit_for_bit(reference):
    """The run's own mesh (data=-1: 8 devices) gives the very compiled eval step and batches
    the trainer used, so every metrics.jsonl column is reproduced exactly."""
    _, out = reference
    ev = evaluator(out, run_config(out).mesh)
    assert dict(ev.mesh.shape) == {"data": 8, "fsdp": 1, "model": 1}
    logged = {r["step"]: r for r in read_metrics(out)}
    for step in checkpoint_steps(out):
        got = ev.metrics(load_params(out, step, ev.mesh))
        assert got == {k: logged[step][k] for k in ("eval_loss", "eval_ppl", "eval_bpb")}, step


def test_one_device_matches_the_trainer_eval_loss_and_evaluate(reference):
    _, out = reference
    ev = evaluator(out)
    assert dict(ev.mesh.shape) == {"data": 1, "fsdp": 1, "model": 1}
    a, b = (ev.place(load_params(out, s)) for s in (8, 12))
    sums = [ev.loss_sum(a), ev.loss_sum(b)]
    assert isinstance(sums[0], jax.Array) and sums[0].shape == ()  # stays on the device
    la, lb = ev.losses(sums)
    assert la == eval_loss(ev.prog, a, list(ev.batches)) and lb == eval_loss(ev.prog, b, list(ev.batches))
    assert (la, lb) == (ev.loss(a), ev.loss(b)) and la > lb
    assert evaluate(out, b) == ev.metrics(b) == {"eval_loss": lb, "eval_ppl": math.exp(lb), "eval_bpb": ev.bpb(lb)}
    np.testing.assert_allclose(lb, {r["step"]: r["eval_loss"] for r in read_metrics(out)}[12], rtol=1e-6)
    host = {k: np.asarray(v) for k, v in jax.device_get(b).items()}
    assert evaluate(out, host)["eval_loss"] == lb  # numpy in, same number
    assert ev.tokens == 8 * 2 * 32 and ev.bpb(math.nan) is None


def test_one_cache_per_config_and_mesh(reference):
    _, out = reference
    cfg = run_config(out)
    ev = evaluator(out)
    assert evaluator(cfg) is ev and evaluator(str(out), (1, 1, 1)) is ev  # default = one device
    sharded = evaluator(out, (2, 2, 2))
    assert sharded is not ev and evaluator(cfg, resolve_mesh((2, 2, 2))) is sharded
    theta = load_params(out, 12, sharded.mesh)
    assert all(theta[k].sharding == s for k, s in sharded.param_shardings.items())
    np.testing.assert_allclose(sharded.loss(theta), ev.loss(theta), rtol=1e-5)


def test_place_names_the_mismatch(reference):
    _, out = reference
    ev = evaluator(out)
    theta = jax.device_get(load_params(out, 12))
    name = "blocks.0.mlp.up"
    with pytest.raises(ValueError, match=rf"params\['{name}'\] has shape \(64, 3\), but the run's model has"):
        ev.place({**theta, name: np.zeros((64, 3), np.float32)})
    with pytest.raises(ValueError, match=r"differing names: \['extra'\]"):
        ev.place({**theta, "extra": np.zeros(1)})


def test_param_shapes_without_allocating(reference):
    _, out = reference
    cfg = run_config(out)
    shapes = param_shapes(cfg.model)
    theta = load_params(out)  # latest
    assert list(shapes) == list(evaluator(out).param_shardings)
    assert shapes == {k: tuple(v.shape) for k, v in theta.items()}
    total = sum(math.prod(s) for s in shapes.values())
    assert evaluator(out).param_count == total == sum(v.size for v in theta.values())


def test_resolve_mesh_forms_and_errors():
    assert dict(resolve_mesh().shape) == {"data": 1, "fsdp": 1, "model": 1}
    assert dict(resolve_mesh((2, 1, 4)).shape) == {"data": 2, "fsdp": 1, "model": 4}
    assert dict(resolve_mesh(MeshConfig(data=2, fsdp=-1)).shape) == {"data": 2, "fsdp": 4, "model": 1}
    mesh = resolve_mesh([1, 2, 2])
    assert resolve_mesh(mesh) is mesh
    with pytest.raises(ValueError, match=r"mesh \(4, 4, 1\) needs 16 devices but 8 are available"):
        resolve_mesh((4, 4, 1))
    with pytest.raises(ValueError, match=r"mesh sizes \(0, 1, 1\) must be positive integers"):
        resolve_mesh((0, 1, 1))
    with pytest.raises(ValueError, match=r"mesh axes \('x',\) must be \(data, fsdp, model\)"):
        resolve_mesh(jax.make_mesh((1,), ("x",), devices=jax.devices()[:1]))
    with pytest.raises(ValueError, match=r"mesh='2x2': expected None, a jax Mesh"):
        resolve_mesh("2x2")


def test_a_mesh_that_cannot_split_the_validation_batch_fails_before_compiling(reference):
    _, out = reference
    with pytest.raises(ValueError, match=r"data.eval_batch_size=8 is not divisible .*data=3.*choose another mesh"):
        evaluator(out, (3, 1, 1))


def test_run_directory_errors(reference, tmp_path):
    _, out = reference
    with pytest.raises(FileNotFoundError, match="no run directory"):
        checkpoint_steps(tmp_path / "missing")
    (tmp_path / "plain").mkdir()
    with pytest.raises(FileNotFoundError, match=r"not a run directory written by `scaling train` \(no config.json\)"):
        run_config(tmp_path / "plain")
    with pytest.raises(FileNotFoundError, match=r"not a run directory"):
        evaluate(tmp_path / "plain", {})
    (tmp_path / "plain" / "config.json").write_text((out / "config.json").read_text())
    with pytest.raises(FileNotFoundError, match=r"has no checkpoints/ directory"):
        checkpoint_steps(tmp_path / "plain")
    with pytest.raises(FileNotFoundError, match=r"no complete checkpoint at step 4 .*\(steps: \[8, 12\]\)"):
        load_params(out, 4)
