"""Learning-rate schedules, the optimizer chain and the parameter masks (no model compile)."""

from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np
import pytest

from scaling.train.config import OptimizerConfig, ScheduleConfig
from scaling.train.optimizer import apply_updates, make_optimizer
from scaling.train.schedules import learning_rate, warmup_steps


def lrs(total=100, peak=1.0, **kw):
    cfg = ScheduleConfig(**kw)
    return np.array([learning_rate(cfg, peak, t, total) for t in range(total)])


def test_warmup_is_linear_and_never_zero():
    lr = lrs(kind="constant", warmup=10)
    np.testing.assert_allclose(lr[:10], np.arange(1, 11) / 10)
    assert np.all(lr[10:] == 1.0)
    assert warmup_steps(ScheduleConfig(warmup=0.05), 200) == 10  # a fraction of the run


def test_cosine_reaches_the_floor_at_the_last_update():
    lr = lrs(kind="cosine", warmup=10, min_lr_ratio=0.1)
    assert lr[9] == pytest.approx(1.0)
    assert lr[-1] == pytest.approx(0.1)
    assert np.all(np.diff(lr[10:]) <= 1e-12)
    mid = 10 + (100 - 10 - 1) / 2
    assert learning_rate(ScheduleConfig(kind="cosine", warmup=10), 1.0, mid, 100) == pytest.approx(0.55)


@pytest.mark.parametrize("shape", ["linear", "1-sqrt"])
def test_wsd_is_stable_then_cools_down_over_the_last_fraction(shape):
    lr = lrs(kind="wsd", warmup=5, cooldown_fraction=0.2, min_lr_ratio=0.0, cooldown_shape=shape)
    assert np.all(lr[5:80] == 1.0)
    assert lr[-1] == pytest.approx(0.0, abs=1e-12)
    assert np.all(np.diff(lr[80:]) < 0)
    q = (90 - 80 + 1) / 20
    expected = 1 - q if shape == "linear" else 1 - math.sqrt(q)
    assert lr[90] == pytest.approx(expected)


def test_wsd_branches_share_the_trunk():
    """A WSD run's stable phase does not depend on its length: cooldown branches of
    different lengths agree with the trunk up to their own cooldown start."""
    short = lrs(total=100, kind="wsd", warmup=5, cooldown_fraction=0.1)
    long = lrs(total=200, kind="wsd", warmup=5, cooldown_fraction=0.05)
    np.testing.assert_array_equal(short[:90], long[:90])


def test_adamw_decays_matrices_only_and_scales_updates_per_tensor():
    params = {"w": jnp.ones((2, 2)), "scale": jnp.ones((2,)), "embedding": jnp.ones((3, 2))}
    grads = {k: jnp.zeros_like(v) for k, v in params.items()}
    mask = {"w": True, "scale": False, "embedding": False}
    mult = {"w": 0.5, "scale": 1.0, "embedding": 1.0}
    tx = make_optimizer(OptimizerConfig(weight_decay=0.1, clip_norm=0.0), mask, mult)
    updates, _ = tx.update(grads, tx.init(params), params)
    new = apply_updates(params, updates, 2.0)
    # zero gradient: only decay moves a parameter, by lr * multiplier * wd * p
    np.testing.assert_allclose(new["w"], 1 - 2.0 * 0.5 * 0.1)
    np.testing.assert_allclose(new["scale"], 1.0)
    np.testing.assert_allclose(new["embedding"], 1.0)


def test_sgd_and_clipping():
    params = {"w": jnp.zeros((2,))}
    grads = {"w": jnp.array([3.0, 4.0])}
    tx = make_optimizer(OptimizerConfig(name="sgd", clip_norm=1.0), {"w": True}, {"w": 1.0})
    updates, _ = tx.update(grads, tx.init(params), params)
    np.testing.assert_allclose(apply_updates(params, updates, 1.0)["w"], [-0.6, -0.8], rtol=1e-6)


def test_cross_entropy_and_z_loss_terms_in_float32():
    from scaling.train.step import cross_entropy

    logits = jnp.array([[[2.0, 0.0, -1.0], [0.5, 0.5, 0.5]]], dtype=jnp.bfloat16)
    targets = jnp.array([[0, 2]])
    ce, log_z2 = cross_entropy(logits, targets)
    x = np.asarray(logits, dtype=np.float64)
    lse = np.log(np.exp(x).sum(-1))
    assert ce.dtype == jnp.float32
    assert float(ce) == pytest.approx(np.mean(lse - x[0, [0, 1], [0, 2]]), rel=1e-6)
    assert float(log_z2) == pytest.approx(np.mean(lse**2), rel=1e-6)


@pytest.mark.parametrize(
    "kw",
    [
        dict(kind="cosine", warmup=10, min_lr_ratio=0.1),
        dict(kind="wsd", warmup=5, cooldown_fraction=0.2, min_lr_ratio=0.0, cooldown_shape="1-sqrt"),
        dict(kind="wsd", warmup=5, cooldown_fraction=0.3, min_lr_ratio=0.1, cooldown_shape="linear"),
        dict(kind="constant", warmup=7),
    ],
)
def test_the_analysis_reads_the_trainers_schedule_at_logged_steps(kw):
    """One schedule math, one origin: the analysis's rate at logged step s is exactly the
    trainer's rate of update t = s - 1."""
    from scaling.analysis.schedules import constant_lr, cosine_lr, wsd_lr
    from scaling.train.schedules import cooldown_steps

    total, peak = 100, 3e-3
    cfg = ScheduleConfig(**kw)
    trainer = np.array([learning_rate(cfg, peak, t, total) for t in range(total)])
    steps, warm, floor = np.arange(1, total + 1), warmup_steps(cfg, total), cfg.min_lr_ratio * peak
    if cfg.kind == "cosine":
        analysis = cosine_lr(steps, peak=peak, total_steps=total, floor=floor, warmup_steps=warm)
    elif cfg.kind == "wsd":
        analysis = wsd_lr(steps, peak=peak, total_steps=total, cooldown_steps=cooldown_steps(cfg, total),
                          shape=cfg.cooldown_shape, floor=floor, warmup_steps=warm)  # fmt: skip
    else:
        analysis = constant_lr(steps, peak=peak, warmup_steps=warm)
    np.testing.assert_array_equal(analysis, trainer)
