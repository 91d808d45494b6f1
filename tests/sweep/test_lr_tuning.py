"""LR tuning in two phases, packing units, the plain per-run progress line, config checks."""

from __future__ import annotations

import math

import pytest
from sweep_helpers import fake_train, write_config

from scaling.sweep import load_sweep_config, plan_sweep, run_sweep
from scaling.sweep.lr_tuning import choose_lrs, final_plan, tuning_plan
from scaling.sweep.packing import pack_units
from scaling.sweep.report import format_plan, run_line

TUNED = '\n[hparams]\nlr = "tuned"\nlr_tune_grid = [0.5, 1, 2]\n'


def _cfg(tmp_path, extra=TUNED):
    return load_sweep_config(write_config(tmp_path, extra=extra))


def _rows(plan, best: dict[int, float]):
    """Fake finished tuning rows: a parabola in ln LR per width, minimum at best[width]."""
    return [{"plan_kind": "lr_tune", "status": "done", "width": r.width, "lr": r.lr,
             "eval_loss": 2.0 + (math.log(r.lr) - math.log(best[r.width])) ** 2} for r in plan.runs]  # fmt: skip


def test_tuning_plan_is_a_grid_per_width_at_the_smallest_budget(tmp_path):
    cfg = _cfg(tmp_path)
    plan = tuning_plan(cfg)
    (tmp_path / "c").mkdir()
    smallest = plan_sweep(load_sweep_config(write_config(tmp_path / "c", budgets="[1e11]"))).runs
    assert len(plan.runs) == 3 * len(smallest)
    assert {r.plan_kind for r in plan.runs} == {"lr_tune"} and {r.budget for r in plan.runs} == {1e11}
    for w in {r.width for r in smallest}:
        mine = [r for r in plan.runs if r.width == w]
        assert sorted(r.lr for r in mine) == pytest.approx([0.005, 0.01, 0.02])
        assert len({r.group for r in mine}) == 1 and len({r.run_id for r in mine}) == 3
    with pytest.raises(ValueError, match="two phases"):
        plan_sweep(cfg)


def test_choice_fits_a_power_law_and_the_final_plan_uses_it(tmp_path):
    cfg = _cfg(tmp_path)
    tune = tuning_plan(cfg)
    widths = sorted({r.width for r in tune.runs})
    best = {w: 0.01 * (widths[0] / w) ** 0.5 for w in widths}  # inside the grid [0.005, 0.02]
    choice = choose_lrs(cfg, _rows(tune, best))
    for w in widths:  # three-point parabola vertex = the true optimum (the fake loss is a parabola)
        if 0.005 < best[w] < 0.02:
            assert choice.tuned[w] == pytest.approx(best[w], rel=1e-6)
    assert choice.fit[1] == pytest.approx(-0.5, abs=0.05)
    plan = final_plan(cfg, choice)
    law = [r for r in plan.runs if r.plan_kind == "isoflop"]
    assert {r.budget for r in law} == {1e11, 3e11, 1e12}
    for r in law:
        assert r.lr == choice.by_width[r.width]
        assert 0.005 <= r.lr <= 0.02  # clipped to the grid's range
    assert len({r.run_id for r in plan.runs}) == len(plan.runs)


def test_lr_tune_seeds_choose_the_seeds_of_the_grid(tmp_path):
    cfg = load_sweep_config(write_config(tmp_path, extra=TUNED), ["sweep.seeds=[0, 1, 2]"])
    assert {r.seed for r in tuning_plan(cfg).runs} == {0, 1, 2}
    one = load_sweep_config(write_config(tmp_path, extra=TUNED + "lr_tune_seeds = [1]\n"), ["sweep.seeds=[0, 1, 2]"])
    tune = tuning_plan(one)
    assert {r.seed for r in tune.runs} == {1} and len(tune.runs) == len(tuning_plan(cfg).runs) // 3
    for bad, why in (("[-1]", "lr_tune_seeds\\[0\\]=-1"), ("[2, 2]", "repeats a seed"), ("3", "must be a list")):
        with pytest.raises(ValueError, match=why):
            load_sweep_config(write_config(tmp_path, extra=TUNED + f"lr_tune_seeds = {bad}\n"))


def test_tuning_plan_header_names_the_one_budget_it_trains(tmp_path):
    head = format_plan(tuning_plan(_cfg(tmp_path))).splitlines()[0]
    assert "runs over 1 budget (1e+11 FLOPs" in head


def test_choice_averages_the_seeds_of_one_width_and_lr(tmp_path):
    cfg = _cfg(tmp_path)
    tune = tuning_plan(cfg)
    widths = sorted({r.width for r in tune.runs})
    rows = _rows(tune, {w: 0.01 for w in widths})
    one = choose_lrs(cfg, rows)
    # a second seed: much worse at the lowest LR, better at the highest; the mean decides
    noisy = [dict(r, eval_loss=r["eval_loss"] + (0.5 if r["lr"] == min(x["lr"] for x in rows) else -0.1))
             for r in rows]  # fmt: skip
    two = choose_lrs(cfg, rows + noisy)
    for w in widths:
        for lr, loss in one.losses[w].items():
            bump = 0.5 if lr == min(one.losses[w]) else -0.1
            assert two.losses[w][lr] == pytest.approx(loss + bump / 2)


def test_nearest_rule_and_a_winning_grid_point_is_trained_once(tmp_path):
    cfg = _cfg(tmp_path, TUNED + 'lr_rule = "nearest"\n')
    tune = tuning_plan(cfg)
    choice = choose_lrs(cfg, _rows(tune, {w: 0.02 for w in {r.width for r in tune.runs}}))
    assert set(choice.by_width.values()) == {0.02}
    plan = final_plan(cfg, choice)
    # the 2x grid point at the smallest budget is the law run itself: one run, kind isoflop
    n_small = len([r for r in plan.runs if r.plan_kind == "isoflop" and r.budget == 1e11])
    assert len([r for r in plan.runs if r.plan_kind == "lr_tune"]) == len(tune.runs) - n_small


def test_bad_hparams_name_the_field(tmp_path):
    with pytest.raises(ValueError, match="hparams.lr_tune_grid"):
        _cfg(tmp_path, '\n[hparams]\nlr = "tuned"\nlr_tune_grid = [1, 2]\n')
    with pytest.raises(ValueError, match="lr_by_width"):
        _cfg(tmp_path, '\n[hparams]\nlr = "per_width"\n')
    with pytest.raises(ValueError, match="hparams.lr_rule"):
        _cfg(tmp_path, '\n[hparams]\nlr = "tuned"\nlr_rule = "best"\n')
    with pytest.raises(ValueError, match="no finished learning-rate tuning runs"):
        choose_lrs(_cfg(tmp_path), [])


def test_pack_units_group_same_shape_runs_of_one_group(tmp_path):
    tune = tuning_plan(_cfg(tmp_path))
    units = pack_units(tune.runs, 8)
    assert [len(u) for u in units] == [3] * (len(tune.runs) // 3)
    assert all(len({r.width for r in u}) == 1 for u in units)
    assert [len(u) for u in pack_units(tune.runs, 2)][:2] == [2, 1]
    assert all(len(u) == 1 for u in pack_units(tune.runs, 1))
    (tmp_path / "l").mkdir()
    law = plan_sweep(load_sweep_config(write_config(tmp_path / "l")))
    assert all(len(u) == 1 for u in pack_units(law.runs, 8))  # every IsoFLOP run has its own shape
    (tmp_path / "s").mkdir()
    seeded = plan_sweep(load_sweep_config(write_config(tmp_path / "s"), ["sweep.seeds=[0, 1, 2]"]))
    units = pack_units(seeded.runs, 8)  # the seeds of one (size, budget) share a program
    assert [len(u) for u in units] == [3] * len(law.runs)
    assert all(len({(r.width, r.budget) for r in u}) == 1 and [r.seed for r in u] == [0, 1, 2] for u in units)
    assert {r.run_id for r in seeded.runs} >= {r.run_id for r in law.runs}  # ids unchanged by the grouping


def test_tuning_runs_are_recorded_with_their_role(tmp_path):
    cfg = _cfg(tmp_path)
    tune = tuning_plan(cfg)
    run_sweep(tune, tmp_path / "out", train_fn=fake_train, progress=False, record_environment=False, log=lambda m: None)
    from scaling.analysis.table import load_table
    from scaling.sweep import ResultsStore

    rows = ResultsStore(tmp_path / "out").rows()
    assert {r["plan_kind"] for r in rows} == {"lr_tune"} and all(r["status"] == "done" for r in rows)
    assert len(load_table(tmp_path / "out")) == 0  # tuning runs are not law points
    assert len(load_table(tmp_path / "out", curves=True)) == 0


def test_run_line_is_one_plain_line():
    row = {"run_id": "abc", "width": 8, "status": "done", "eval_loss": 2.5, "wall_time_s": 12.0}
    line = run_line(3, 10, row, 60.0, 3e9, 7e9)
    assert "\r" not in line and "\n" not in line and "\x1b" not in line
    assert line == "[sweep] 3/10 abc width=8 done eval_loss 2.5000 (12s); elapsed 60s, ETA 2.3m"
