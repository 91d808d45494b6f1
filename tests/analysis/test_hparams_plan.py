"""Closing the loop: the hparam_grid plan kind and [hparams] lr / batch_size = "law"."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from scaling.analysis.hparams import cell_optima, fit_hparam_laws
from scaling.sweep import load_sweep_config, plan_sweep

SWEEP = """
[sweep]
name = "hp"
kind = "{kind}"
budgets = [1e11, 1e12]
points_per_budget = 2
tokens_per_param = 20
tokens_per_param_range = [5, 80]
flop_convention = "6N"

[family]
widths = {{ start = 16, stop = 160, step = 8 }}
depth = 2

[model]
head_dim = 8
seq_len = 32

[optimizer]
lr = 0.01

[schedule]
kind = "cosine"
warmup = 0.1

[train]
global_batch_size = 4

[hparams]
{hparams}
"""


def write(tmp_path, kind="hparam_grid", hparams="lr_grid = [0.003, 0.01, 0.03]\nbatch_grid = [4, 8]"):
    path = tmp_path / "sweep.toml"
    path.write_text(SWEEP.format(kind=kind, hparams=hparams))
    return path


def test_hparam_grid_trains_the_whole_grid_per_cell(tmp_path):
    plan = plan_sweep(load_sweep_config(write(tmp_path)))
    cells = {(r.width, r.depth, r.budget) for r in plan.runs}
    assert len(cells) == 4  # 2 sizes x 2 budgets
    assert len(plan.runs) == len(cells) * 3 * 2
    assert {r.plan_kind for r in plan.runs} == {"hparam_grid"}
    for cell in cells:
        runs = [r for r in plan.runs if (r.width, r.depth, r.budget) == cell]
        assert sorted({(r.lr, r.batch_size) for r in runs}) == [(lr, b) for lr in (0.003, 0.01, 0.03) for b in (4, 8)]
        for r in runs:  # every grid point trains the cell's tokens
            assert r.steps == round(r.tokens / (r.batch_size * r.seq_len))
    assert len({r.run_id for r in plan.runs}) == len(plan.runs)


def test_hparam_grid_with_one_value_on_an_axis_is_an_error(tmp_path):
    with pytest.raises(ValueError, match=r"needs 2\+ batch sizes in hparams.batch_grid \(got \[8\]\)"):
        load_sweep_config(write(tmp_path, hparams="lr_grid = [0.01, 0.03]\nbatch_grid = [8]"))
    with pytest.raises(ValueError, match=r"hparams.lr_grid\[1\]=-0.1: must be a positive number"):
        load_sweep_config(write(tmp_path, hparams="lr_grid = [0.01, -0.1]\nbatch_grid = [4, 8]"))


def law_file(tmp_path):
    rows = []
    for N, D in [(1e5, 2e6), (3e5, 6e6), (1e6, 2e7), (3e5, 2e7), (1e6, 6e6)]:
        lo, bo = 50 * N**-0.5 * D**0.1, 2e-3 * D**0.6  # batch in sequences
        for lr in lo * 2.0 ** np.arange(-3, 4):
            for b in bo * 2.0 ** np.arange(-2, 3):
                rows.append({"params": N, "tokens": D, "lr": lr, "batch_size": b,
                             "loss": 3 + 0.02 * np.log(lr / lo) ** 2 + 0.01 * np.log(b / bo) ** 2})  # fmt: skip
    laws = fit_hparam_laws(cell_optima(pd.DataFrame(rows)), n_boot=0, seq_len=32)
    path = tmp_path / "laws.json"
    laws.to_json(path)
    return path, laws


def test_lr_and_batch_from_a_fitted_law(tmp_path):
    path, laws = law_file(tmp_path)
    cfg = load_sweep_config(
        write(tmp_path, kind="isoflop", hparams=f'lr = "law"\nbatch_size = "law"\nlaw_file = "{path}"')
    )
    plan = plan_sweep(cfg)
    assert plan.runs
    for r in plan.runs:
        lr, b = laws.predict(r.params_nonembedding, r.tokens)
        assert r.lr == pytest.approx(float(lr), rel=1e-9)
        assert r.batch_size == max(8, 8 * round(float(b) / 8))  # batch_multiple 8
    assert len({r.lr for r in plan.runs}) > 1


def test_law_rule_needs_a_law_file(tmp_path):
    with pytest.raises(ValueError, match="needs hparams.law_file"):
        load_sweep_config(write(tmp_path, kind="isoflop", hparams='lr = "law"'))
    cfg = load_sweep_config(write(tmp_path, kind="isoflop", hparams=f'lr = "law"\nlaw_file = "{tmp_path / "no.json"}"'))
    with pytest.raises(ValueError, match=r"hparams.law_file=.*no.json.*no such file"):
        plan_sweep(cfg)
