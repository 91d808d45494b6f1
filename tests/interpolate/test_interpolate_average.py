"""Checkpoint averaging: exact for identical checkpoints, equal to the host-side mean and
EMA of the restored parameters, evaluated against the last checkpoint."""

from __future__ import annotations

import jax
import numpy as np
import pytest
from interp_helpers import EVAL_TOKENS

from scaling.interpolate import average, average_params, weights
from scaling.interpolate.average import select_steps
from scaling.train import evaluate, evaluator, load_params


@pytest.fixture(scope="module")
def ev(run_dir):
    return evaluator(run_dir)  # one device


@pytest.mark.parametrize("ema", [None, 0.7])
def test_average_of_identical_checkpoints_is_that_checkpoint(run_dir, ev, ema):
    theta = ev.place(load_params(run_dir, 20, ev.mesh))
    avg = average_params([theta, theta, theta, theta], ema=ema)
    for name in theta:
        np.testing.assert_array_equal(np.asarray(avg[name]), np.asarray(theta[name]), err_msg=name)
    assert all(not x.is_deleted() for x in theta.values())  # only our own accumulator is donated


def test_uniform_mean_of_the_last_k(run_dir, ev, metrics):
    res, avg = average(run_dir, last=3, mesh=(1, 1, 1), return_params=True)
    assert res.steps == [16, 20, 24] and res.method == "uniform" and res.weights == [1 / 3] * 3
    host = [jax.device_get(load_params(run_dir, s)) for s in res.steps]
    for name in avg:
        np.testing.assert_allclose(
            np.asarray(avg[name]), np.mean([h[name] for h in host], axis=0), rtol=1e-5, atol=1e-7, err_msg=name
        )
    assert res.loss == evaluate(run_dir, avg)["eval_loss"]
    assert res.last_step == 24 and res.last_loss == evaluate(run_dir, load_params(run_dir, 24))["eval_loss"]
    np.testing.assert_allclose(res.last_loss, metrics[24]["eval_loss"], rtol=1e-6)
    assert res.improvement == pytest.approx(res.last_loss - res.loss)
    assert res.eval_tokens == EVAL_TOKENS
    d = res.to_dict()
    assert {"loss", "last_loss", "last_step", "improvement", "steps", "weights", "method"} <= set(d)


def test_ema_over_every_checkpoint(run_dir):
    decay = 0.6
    res, avg = average(run_dir, ema=decay, mesh=(1, 1, 1), return_params=True)
    assert res.steps == [4, 8, 12, 16, 20, 24] and res.method == "ema" and res.decay == decay
    w = weights(6, decay)
    assert sum(w) == pytest.approx(1.0) and w[-1] == pytest.approx(1 - decay)
    host = [jax.device_get(load_params(run_dir, s)) for s in res.steps]
    for name in avg:
        want = sum(wi * h[name] for wi, h in zip(w, host))
        np.testing.assert_allclose(np.asarray(avg[name]), want, rtol=1e-5, atol=1e-6, err_msg=name)


def test_one_checkpoint_average_is_the_last_checkpoint(run_dir):
    res = average(run_dir, steps=[20], mesh=(1, 1, 1))
    assert res.steps == [20] and res.loss == res.last_loss and res.improvement == 0.0


def test_step_selection_errors():
    steps = [4, 8, 12]
    assert select_steps(steps) == steps and select_steps(steps, last=2) == [8, 12]
    assert select_steps(steps, steps=[12, 4]) == [4, 12]
    with pytest.raises(ValueError, match=r"last=5, but 'r' has only 3 checkpoints \(steps: 4, 8, 12\)"):
        select_steps(steps, last=5, run_dir="r")
    with pytest.raises(FileNotFoundError, match="step 6 is not saved in 'r'; available steps: 4, 8, 12"):
        select_steps(steps, steps=[4, 6], run_dir="r")
    with pytest.raises(ValueError, match="listed twice"):
        select_steps(steps, steps=[4, 4])
    with pytest.raises(ValueError, match="either last=K or steps"):
        select_steps(steps, last=1, steps=[4])
    with pytest.raises(ValueError, match="last=0 must be a positive integer"):
        select_steps(steps, last=0)
    with pytest.raises(ValueError, match=r"ema=1.0: the decay must be a number in \[0, 1\)"):
        average("unused", ema=1.0)
