"""The loss along θ(t) = (1 − t)·θ_a + t·θ_b: exact endpoints, the requested grid, the
barrier (near zero between consecutive checkpoints, clearly positive towards a
permutation-symmetric copy of the same network), and sharded meshes agreeing with one device."""

from __future__ import annotations

import math

import jax
import numpy as np
import pytest
from interp_helpers import EVAL_TOKENS

from scaling.interpolate import interpolate, path_losses
from scaling.interpolate.ops import compiled, scalar
from scaling.train import evaluate, evaluator, load_params


@pytest.fixture(scope="module")
def one_device_path(run_dir):
    # grid of 9 over [-0.5, 1.5]: spacing 0.25, so 0 and 1 are on it
    return interpolate(f"{run_dir}@16", f"{run_dir}@20", points=9, t_range=(-0.5, 1.5), mesh=(1, 1, 1))


def test_endpoints_reproduce_each_checkpoints_loss(run_dir, metrics):
    path = interpolate(f"{run_dir}@8", f"{run_dir}@16", ts=[0.0, 0.5, 1.0], mesh=(1, 1, 1))
    for t, step in ((0.0, 8), (1.0, 16)):
        got = path.loss[path.t.index(t)]
        # the trainer's own evaluation of the restored checkpoint, on the same device: bit for bit
        assert got == evaluate(run_dir, load_params(run_dir, step))["eval_loss"]
        # the eval_loss the trainer logged while training (on its 8-device data mesh)
        np.testing.assert_allclose(got, metrics[step]["eval_loss"], rtol=1e-6)
    assert (path.loss_a, path.loss_b) == (path.loss[0], path.loss[2])
    assert path.eval_tokens == EVAL_TOKENS and (path.a.step, path.b.step) == (8, 16)


def test_endpoints_on_the_training_mesh_match_the_logged_losses(run_dir, metrics):
    """Default mesh = the run's own (data=-1: all 8 devices), the trainer's very eval program."""
    path = interpolate(f"{run_dir}@12", f"{run_dir}@24", ts=[0.0, 1.0])
    assert path.mesh == {"data": 8, "fsdp": 1, "model": 1}
    np.testing.assert_allclose(path.loss, [metrics[12]["eval_loss"], metrics[24]["eval_loss"]], rtol=1e-7)


def test_consecutive_checkpoints_have_no_barrier(one_device_path):
    """Two consecutive checkpoints of a converging run lie in one basin: along the ~4%-long
    segment between them the loss is convex (a quadratic bowl gives a barrier of exactly 0),
    so the barrier is 0 up to float32 evaluation noise (~1e-6 nats on 512 tokens). We allow
    1e-3 nats for mild non-convexity: 100x below the ~0.1-nat barrier towards a
    permutation-symmetric copy of the same network (test below), i.e. another basin."""
    path = one_device_path
    np.testing.assert_allclose(path.t, np.linspace(-0.5, 1.5, 9))
    assert len(path.loss) == 9 and all(math.isfinite(x) for x in path.loss)  # t outside [0, 1] too
    assert 0.0 <= path.barrier <= 1e-3
    assert 0.0 <= path.barrier_t <= 1.0
    assert path.loss[0] > path.loss_a  # stepping back past θ_a climbs: θ_b − θ_a is a descent direction
    assert 0 < path.distance < 0.2 * path.norm_a


def test_one_compile_serves_every_t(run_dir, one_device_path):
    """The path above evaluated 9 values of t with a single compilation of the lerp."""
    ev = evaluator(run_dir, (1, 1, 1))
    assert compiled(ev)[0]._cache_size() == 1


def _permute_residual_basis(flat: dict, perm: np.ndarray) -> dict:
    """The same network with the residual-stream dimensions relabelled (an exact symmetry:
    RMSNorm and every projection are equivariant under a permutation of the model width)."""
    axis = {"embedding": 1, "readout": 0, "scale": 0, "q": 0, "k": 0, "v": 0, "o": 2, "up": 0, "down": 1}
    return {k: np.take(v, perm, axis=axis[k.rsplit(".", 1)[-1]]) for k, v in flat.items()}


def test_a_permuted_copy_has_the_same_loss_but_a_barrier(run_dir):
    ev = evaluator(run_dir, (1, 1, 1))
    theta = ev.place(load_params(run_dir, 24, ev.mesh))
    twin = ev.place(_permute_residual_basis(jax.device_get(theta), np.random.default_rng(0).permutation(64)))
    ts = [0.0, 0.25, 0.5, 0.75, 1.0]
    losses = path_losses(ev, theta, twin, ts)
    np.testing.assert_allclose(losses[-1], losses[0], rtol=1e-6)  # same function
    from scaling.interpolate import barrier

    value, at = barrier(ts, losses, losses[0], losses[-1])
    assert value > 0.03 and 0 < at < 1  # measured 0.10 nats at t = 0.5


@pytest.mark.parametrize("shape", [(2, 2, 2), (8, 1, 1)])
def test_sharded_meshes_give_the_one_device_losses(run_dir, one_device_path, shape):
    path = interpolate(f"{run_dir}@16", f"{run_dir}@20", points=9, t_range=(-0.5, 1.5), mesh=shape)
    np.testing.assert_allclose(path.loss, one_device_path.loss, rtol=1e-5)
    np.testing.assert_allclose(path.barrier, one_device_path.barrier, atol=1e-5)
    np.testing.assert_allclose(path.distance, one_device_path.distance, rtol=1e-5)
    assert path.mesh == dict(zip(("data", "fsdp", "model"), shape))


def test_mixed_params_stay_sharded_as_in_training(run_dir):
    """θ(t) comes out of the compiled lerp on the trainer's shardings (no host round trip),
    and is exact at t = 0 and t = 1."""
    ev = evaluator(run_dir, (2, 2, 2))
    a, b = (ev.place(load_params(run_dir, s, ev.mesh)) for s in (16, 20))
    lerp = compiled(ev)[0]
    mixed = lerp(a, b, scalar(0.3))
    for name, x in mixed.items():
        assert x.sharding == ev.param_shardings[name], name
    assert ev.param_shardings["blocks.0.mlp.up"].spec == jax.P("fsdp", "model")
    for t, want in ((0.0, a), (1.0, b)):
        got = jax.device_get(lerp(a, b, scalar(t)))
        for name in got:
            np.testing.assert_array_equal(got[name], np.asarray(want[name]), err_msg=name)
