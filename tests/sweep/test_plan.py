"""Planning: budgets → runs, with no training."""

from __future__ import annotations

import math

import pytest
from sweep_helpers import write_config

from scaling.model.accounting import flops_per_token, params_nonembedding
from scaling.model.config import ModelConfig
from scaling.sweep import load_sweep_config, plan_sweep
from scaling.sweep.config import SweepConfig
from scaling.sweep.manifest import to_toml
from scaling.sweep.plan import family_sizes, optimal_log_n


def _plan(tmp_path, kind="isoflop", **kw):
    return plan_sweep(load_sweep_config(write_config(tmp_path, kind, **kw)))


def test_isoflop_tokens_are_budget_over_flops_per_token(tmp_path):
    plan = _plan(tmp_path)
    assert {r.budget for r in plan.runs} == {1e11, 3e11, 1e12}
    for r in plan.runs:
        model = ModelConfig(width=r.width, depth=r.depth, head_dim=8, seq_len=32)
        assert r.tokens == r.budget / flops_per_token(model, "6N")  # exactly
        assert r.params_nonembedding == params_nonembedding(model)
        assert r.steps == round(r.tokens / (4 * 32))
        assert r.tokens_per_param == pytest.approx(r.tokens / r.params_nonembedding)
        assert abs(r.flops - r.budget) / r.budget < 1e-3  # whole steps: within one step of C
        assert 5 <= r.tokens_per_param <= 80


def test_isoflop_sizes_straddle_the_expected_optimum(tmp_path):
    plan = _plan(tmp_path)
    cfg = plan.config
    sizes = family_sizes(cfg)
    for budget in cfg.sweep.budgets:
        runs = [r for r in plan.runs if r.budget == budget]
        assert len(runs) >= 3
        n_star = math.exp(optimal_log_n(sizes, budget, 20.0))
        ns = sorted(r.params_nonembedding for r in runs)
        assert ns[0] < n_star < ns[-1]  # smaller and larger models on both sides
        # 6N law: the optimum at 20 tokens/param is sqrt(C / 120)
        assert n_star == pytest.approx(math.sqrt(budget / 120), rel=0.02)
        # spaced in log N: the geometric centre lies near the optimum (within one family step)
        centre = math.exp(sum(map(math.log, ns)) / len(ns))
        assert 0.6 < centre / n_star < 1.6


def test_ids_are_stable_and_follow_the_config(tmp_path):
    a = _plan(tmp_path)
    b = _plan(tmp_path)
    assert [r.run_id for r in a.runs] == [r.run_id for r in b.runs]
    assert len({r.run_id for r in a.runs}) == len(a.runs)
    ids = {r.run_id for r in a.runs}
    # a different learning rate is a different run; a different mesh is the same run
    lr = plan_sweep(load_sweep_config(write_config(tmp_path, extra=""), ["optimizer.lr=0.02"]))
    assert not ids & {r.run_id for r in lr.runs}
    mesh = plan_sweep(load_sweep_config(write_config(tmp_path), ["mesh.data=2"]))
    assert ids == {r.run_id for r in mesh.runs}


def test_horizons_train_each_size_and_horizon_with_its_own_schedule(tmp_path):
    """Approach 1 needs annealed losses at every horizon: one run per (size, horizon), each
    from scratch with a cosine whose length is that horizon (not mid-run points of one
    long cosine)."""
    plan = _plan(tmp_path, "horizons")
    sizes = family_sizes(plan.config)
    expected = {(z.width, z.depth, c) for z in sizes for c in (1e11, 3e11, 1e12)
                if 5 <= c / z.flops_per_token / z.params <= 80}  # fmt: skip
    assert sorted((r.width, r.depth, r.budget) for r in plan.runs) == sorted(expected)
    assert len({r.run_id for r in plan.runs}) == len(plan.runs)
    several = [z for z in sizes if sum((z.width, z.depth) == (r.width, r.depth) for r in plan.runs) >= 2]
    assert len(several) >= 3  # sizes with several horizons, each its own run
    for r in plan.runs:
        model = ModelConfig(width=r.width, depth=r.depth, head_dim=8, seq_len=32)
        assert r.plan_kind == "horizon" and r.group == r.run_id and r.parent_run_id is None
        assert r.tokens == r.budget / flops_per_token(model, "6N")  # D = C / flops per token, exactly
        train, schedule = r.train_config["train"], r.train_config["schedule"]
        assert train["steps"] == r.steps == round(r.tokens / 128)  # the cosine spans exactly this horizon
        assert schedule["kind"] == "cosine" and r.schedule == "cosine"
        assert not train.get("save_steps") and not train.get("init_from")
        assert r.warmup_steps == round(0.1 * r.steps)
        assert abs(r.flops - r.budget) / r.budget < 1e-3
    assert plan.total_flops == pytest.approx(sum(r.flops for r in plan.runs))
    # the cheap alternative, reported not substituted: the same grid as WSD cooldowns
    # (20% of each horizon) from one constant-LR trunk per size
    wsd = 0.0
    for z in sizes:
        steps = [r.steps for r in plan.runs if (r.width, r.depth) == (z.width, z.depth)]
        if steps:
            starts = [round(s * 0.8) for s in steps]
            wsd += (max(starts) + sum(s - t for s, t in zip(steps, starts))) * 128 * z.flops_per_token
    assert plan.wsd_flops == pytest.approx(wsd)
    assert 0.5 * plan.total_flops < plan.wsd_flops < plan.total_flops


def test_horizons_plan_says_what_wsd_branches_would_cost(tmp_path, capsys):
    from scaling.cli.main import main

    assert main(["plan", str(write_config(tmp_path, "horizons")), "--throughput", "1e10"]) == 0
    out = capsys.readouterr().out
    plan = _plan(tmp_path, "horizons")
    assert f"horizons plan, {len(plan.runs)} runs" in out
    assert "one per (size, horizon), each from scratch with a cosine schedule ending at its horizon" in out
    share = f"{plan.wsd_flops:.3g} FLOPs ({plan.wsd_flops / plan.total_flops:.0%} of this plan)"
    assert share in out and 'sweep.kind = "wsd"' in out
    # a batch that grows with the budget cannot share a trunk: said, not silently dropped
    grown = plan_sweep(
        load_sweep_config(
            write_config(tmp_path, "horizons"),
            ["hparams.batch_size='budget_power'", "hparams.batch_reference_flops=1e11"],
        )
    )
    assert grown.wsd_flops is None and "batch_size = 'fixed'" in grown.wsd_unavailable


def test_wsd_branches_save_flops(tmp_path):
    plan = _plan(tmp_path, "wsd")
    trunks = {r.run_id: r for r in plan.runs if r.plan_kind == "trunk"}
    branches = [r for r in plan.runs if r.plan_kind == "branch"]
    assert trunks and len(branches) > len(trunks)
    for br in branches:
        trunk = trunks[br.parent_run_id]
        assert br.group == trunk.group and (br.width, br.depth) == (trunk.width, trunk.depth)
        assert br.init_step == round(br.steps * 0.8)  # default cooldown_fraction 0.2
        assert br.init_step in (*trunk.train_config["train"]["save_steps"], trunk.steps)
        tr = br.train_config
        assert tr["train"]["init_from"] == [f"run:{trunk.run_id}", br.init_step]
        assert tr["schedule"]["kind"] == "wsd"
        assert round(tr["schedule"]["cooldown_fraction"] * br.steps) == br.steps - br.init_step
        assert trunk.train_config["schedule"]["kind"] == "constant"
        assert tr["schedule"]["warmup"] == trunk.train_config["schedule"]["warmup"]
    independent = sum(b.flops for b in branches)
    spent = sum(t.flops for t in trunks.values()) + sum(
        b.flops - b.init_step * 128 * b.flops_per_token for b in branches
    )
    assert plan.independent_flops == pytest.approx(independent)
    assert plan.total_flops == pytest.approx(spent)
    assert plan.total_flops < 0.95 * plan.independent_flops


def test_lr_and_batch_rules(tmp_path):
    extra = """
[hparams]
lr = "width_power"
lr_base_width = 64
batch_size = "budget_power"
batch_reference_flops = 1e11
batch_exponent = 0.5
batch_multiple = 4
"""
    plan = _plan(tmp_path, extra=extra)
    for r in plan.runs:
        assert r.lr == pytest.approx(0.01 * 64 / r.width)
        assert r.train_config["optimizer"]["lr"] == r.lr
        assert r.batch_size == max(4, 4 * round(4 * math.sqrt(r.budget / 1e11) / 4))
        assert r.train_config["train"]["global_batch_size"] == r.batch_size


def test_sweep_toml_round_trips(tmp_path):
    cfg = load_sweep_config(write_config(tmp_path, "wsd"))
    path = tmp_path / "resolved.toml"
    path.write_text(to_toml(cfg.to_dict()))
    again = load_sweep_config(path)
    assert again.to_dict() == cfg.to_dict()
    assert [r.run_id for r in plan_sweep(again).runs] == [r.run_id for r in plan_sweep(cfg).runs]


# ---- bad input: clear errors that name the value --------------------------------------
@pytest.mark.parametrize(
    "overrides, message",
    [
        (["sweep.budgets=[1e5]"], "budget 1e+05 FLOPs"),
        (["sweep.budgets=[1e18]"], "no family member trains 5-80 tokens per parameter"),
        (["sweep.tokens_per_param_range=[80, 5]"], "tokens_per_param_range=[80, 5] is inverted"),
        (["sweep.budgetz=[1e11]"], "did you mean sweep.budgets"),
        (["optimizer.lrr=0.1"], "did you mean optimizer.lr"),
        (["sweep.kind='isoflops'"], "did you mean 'isoflop'"),
        (["model.width=64"], "model.width is set per run by the sweep plan"),
        (["sweep.budgets=[1e11, 1e11]"], "lists 1e+11 more than once"),
        (["sweep.seeds=[0, 0]"], "repeats a seed"),
        (["sweep.flop_convention='7N'"], "sweep.flop_convention='7N'"),
        (["family.depth=0"], "family.depth=0"),
        (["train.flop_convention='exact'"], "differs from sweep.flop_convention"),
    ],
)
def test_bad_input_is_named(tmp_path, overrides, message):
    with pytest.raises(ValueError, match=_re(message)):
        plan_sweep(load_sweep_config(write_config(tmp_path), overrides))


def test_budget_below_one_batch(tmp_path):
    # every run's D is below one batch of 4 x 32 tokens: a tiny family, a tiny budget
    extra_family = [
        "family.widths=[8, 16, 24]",
        "model.head_dim=8",
        "sweep.budgets=[1e6]",
        "sweep.tokens_per_param_range=[1e-4, 1000]",
        "sweep.points_per_budget=3",
    ]
    with pytest.raises(ValueError, match=r"fewer than one batch \(4 x 32 = 128 tokens\)"):
        plan_sweep(load_sweep_config(write_config(tmp_path), extra_family))


def test_duplicate_runs_are_rejected(tmp_path):
    # two budgets 0.1% apart round to the same step counts: the same runs twice
    with pytest.raises(ValueError, match="duplicate run"):
        _plan(tmp_path, budgets="[1e11, 1.0001e11]")


def test_duplicate_family_member(tmp_path):
    data = {"sweep": {"budgets": [1e11]}, "family": {"grid": [[32, 2], [32, 2]]}, "model": {"head_dim": 8}}
    with pytest.raises(ValueError, match=r"\(width=32, depth=2\) more than once"):
        plan_sweep(SweepConfig.from_dict(data))


def test_missing_file_and_unknown_table(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.toml"):
        load_sweep_config(tmp_path / "nope.toml")
    with pytest.raises(ValueError, match=r"unknown section \[famly\].*did you mean \[family\]"):
        SweepConfig.from_dict({"sweep": {"budgets": [1e11]}, "famly": {}})


def _re(text: str) -> str:
    import re

    return re.escape(text)
