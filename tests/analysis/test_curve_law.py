from functools import partial

import numpy as np
import pandas as pd
import pytest

from scaling.analysis.curve_law import (
    ScheduledCurve,
    backtest_cooldowns,
    curve_law,
    fit_curve_law,
    predict_cooldown,
    schedule_areas,
)
from scaling.analysis.schedules import branch_cooldown, constant_lr, cosine_lr, wsd_lr

T = 20_000
STEPS = np.arange(1, T + 1)
WARMUP = 200
TRUE = dict(L0=2.0, A=0.6, alpha=0.45, C=0.15)
EVALS = np.arange(250, T + 1, 250)


def _curve(lr, noise=0.0, seed=0):
    s1, s2 = schedule_areas(lr, warmup_steps=WARMUP)
    loss = curve_law(s1, s2, **TRUE)[EVALS - 1]
    if noise:
        loss = loss * np.exp(noise * np.random.default_rng(seed).standard_normal(len(EVALS)))
    return ScheduledCurve(lr, EVALS, loss)


def test_schedule_areas_match_the_definition():
    lr = np.array([1.0, 1.0, 0.8, 0.5, 0.5, 0.2])
    s1, s2 = schedule_areas(lr, decay=0.9)
    np.testing.assert_allclose(s1, np.cumsum(lr))
    m, ms = 0.0, []
    prev = lr[0]
    for eta in lr:
        m = 0.9 * m + (prev - eta)
        ms.append(m)
        prev = eta
    np.testing.assert_allclose(s2, np.cumsum(ms))
    # warmup's rise is not counted as negative annealing
    _, s2w = schedule_areas(constant_lr(STEPS[:500], peak=1.0, warmup_steps=WARMUP), warmup_steps=WARMUP)
    assert np.all(s2w == 0)


def test_schedules():
    c = wsd_lr(STEPS, peak=1.0, total_steps=T, cooldown_steps=4000, shape="1-sqrt", floor=0.1, warmup_steps=WARMUP)
    assert c[WARMUP - 1] == 1.0 and c[T - 4001] == 1.0 and c[-1] == pytest.approx(0.1)
    assert c[T - 2000] == pytest.approx(0.1 + 0.9 * (1 - np.sqrt(0.5)), abs=1e-3)
    assert c[0] == pytest.approx(1 / WARMUP)
    k = cosine_lr(STEPS, peak=1.0, total_steps=T, floor=0.1)
    assert k[-1] == pytest.approx(0.1) and k[T // 2 - 1] == pytest.approx(0.55, abs=1e-3)
    b = branch_cooldown(np.ones(100), 60, 10)
    assert len(b) == 70 and b[59] == 1.0 and b[-1] == 0.0 and b[64] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="unknown cooldown shape"):
        wsd_lr(STEPS, peak=1.0, total_steps=T, cooldown_steps=10, shape="step")


@pytest.mark.parametrize("noise", [0.0, 0.002])
def test_recovers_parameters_and_predicts_held_out_schedules(noise):
    cos = cosine_lr(STEPS, peak=1e-3, total_steps=T, floor=1e-5, warmup_steps=WARMUP)
    fit = fit_curve_law(_curve(cos, noise), warmup_steps=WARMUP)
    tol = 1e-6 if noise == 0 else 0.03
    for name, value in TRUE.items():
        assert fit.params[name] == pytest.approx(value, rel=tol), name
    assert fit.c_identified and not fit.warnings
    # a schedule may also be given as a function of the step
    spec = partial(cosine_lr, peak=1e-3, total_steps=T, floor=1e-5, warmup_steps=WARMUP)
    again = fit_curve_law(ScheduledCurve(spec, EVALS, _curve(cos, noise).loss), warmup_steps=WARMUP)
    assert again.params == fit.params
    np.testing.assert_allclose(fit.predict(spec, EVALS), fit.predict(cos, EVALS))
    for shape in ("linear", "1-sqrt"):
        wsd = wsd_lr(STEPS, peak=1e-3, total_steps=T, cooldown_steps=4000, shape=shape, warmup_steps=WARMUP)
        truth = curve_law(*schedule_areas(wsd, warmup_steps=WARMUP), **TRUE)
        pred = fit.predict(wsd)
        assert np.max(np.abs(pred[EVALS[0] :] / truth[EVALS[0] :] - 1)) < (1e-8 if noise == 0 else 2e-3)


def test_cooldown_from_a_constant_lr_checkpoint():
    const = constant_lr(STEPS, peak=1e-3, warmup_steps=WARMUP)
    # a constant curve alone cannot identify C, and says so
    alone = fit_curve_law(_curve(const), warmup_steps=WARMUP)
    assert not alone.c_identified and alone.C == 0 and "cannot be identified" in alone.warnings[0]
    with pytest.warns(UserWarning, match="annealing term C is unknown"):
        predict_cooldown(alone, const, 10_000, 2_000)
    # with one cooldown branch in the fit, every other cooldown is predicted
    branch = branch_cooldown(const, 5_000, 1_000, shape="1-sqrt")
    s1, s2 = schedule_areas(branch, warmup_steps=WARMUP)
    cal = ScheduledCurve(branch, [len(branch)], [curve_law(s1[-1], s2[-1], **TRUE)])
    fit = fit_curve_law([_curve(const), cal], warmup_steps=WARMUP)
    assert fit.C == pytest.approx(TRUE["C"], rel=1e-6)
    truth = curve_law(*schedule_areas(branch_cooldown(const, 12_000, 3_000), warmup_steps=WARMUP), **TRUE)
    assert predict_cooldown(fit, const, 12_000, 3_000) == pytest.approx(truth[-1], rel=1e-8)
    whole = predict_cooldown(fit, const, 12_000, 3_000, curve=True)
    np.testing.assert_allclose(whole, truth[12_000:], rtol=1e-8)


def test_decay_fit_and_backtest_recover_a_short_memory():
    true_decay = 0.9
    const = constant_lr(STEPS, peak=1.0)
    s1, s2 = schedule_areas(const, decay=true_decay)
    main = ScheduledCurve(const, EVALS, curve_law(s1, s2, **TRUE)[EVALS - 1])
    b = np.array([2_000, 4_000, 8_000, 12_000])
    e = b + b // 10
    ends = [
        curve_law(*(a[-1] for a in schedule_areas(branch_cooldown(const, x, y - x), decay=true_decay)), **TRUE)
        for x, y in zip(b, e)
    ]
    fit, table = backtest_cooldowns(main, b[::-1], e[::-1], ends[::-1], calibrate=2, decay="fit")
    assert fit.decay == true_decay and set(fit.decay_scan) and list(table.role) == ["calibration"] * 2 + ["test"] * 2
    np.testing.assert_allclose(table.predicted, table.end_loss, rtol=1e-6)


def test_input_errors():
    with pytest.raises(ValueError, match="evaluated at step 11"):
        ScheduledCurve(np.ones(10), [5, 11], [3.0, 2.9])
    with pytest.raises(ValueError, match="decay"):
        schedule_areas(np.ones(5), decay=1.0)
    with pytest.raises(ValueError, match="at least 4 evaluation points"):
        fit_curve_law(ScheduledCurve(np.ones(10), [5, 10], [3.0, 2.9]))


def test_gemstones_cooldowns_are_predicted(reference_data):
    """Two Gemstones models: constant-LR curve + the first two cooldowns -> the rest."""
    d = reference_data / "gemstones2025" / "wandb_dfs"
    main = pd.read_json(d / "wandb_df_for_fitting_hot_100b+_477.jsonl", lines=True)
    begin = pd.read_json(d / "wandb_df_for_fitting_cool_begin.jsonl", lines=True)
    end = pd.read_json(d / "wandb_df_for_fitting_cool_end.jsonl", lines=True)
    for model in ("PyGemma-512x16_pretrain", "PyGemma-1024x28_pretrain"):
        hot = main[main.run_name == model].sort_values("step")
        rows = (begin.run_name == model).to_numpy()
        lr = np.ones(int(end.step[rows].max()))
        curve = ScheduledCurve(lr, hot.step[hot.step <= len(lr)], hot.final_loss[hot.step <= len(lr)])
        fit, table = backtest_cooldowns(curve, begin.step[rows], end.step[rows], end.final_loss[rows], decay=0.0)
        test = table[table.role == "test"]
        are = np.abs(test.predicted / test.end_loss - 1)
        assert fit.c_identified and fit.rmse_log < 0.01
        assert are.mean() < 0.004 and are.max() < 0.01, (model, are.describe())
