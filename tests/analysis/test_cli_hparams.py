"""`scaling fit-hparams`: optima and power laws from a grid CSV, the law file a sweep reads,
and the errors/warnings the issue asks for (single-valued axis, optimum on the grid's edge)."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pandas as pd
import pytest

from scaling.analysis.hparams import HparamLaws
from scaling.cli.main import main

TRUE = {"a": 30.0, "alpha": -0.75, "beta": 0.25, "c": 0.5, "gamma": 0.6}
CELLS = [(N, N * r) for N in (1e7, 3e7, 1e8) for r in (10.0, 40.0, 160.0)]


def grid(cells=CELLS, lr_steps=range(-3, 4), b_steps=range(-2, 3), seed=0):
    """Step-Law-like columns (N, D, lr, bs, loss): a quadratic bowl around the true optimum."""
    rng = np.random.default_rng(seed)
    rows = []
    for N, D in cells:
        lo, bo = TRUE["a"] * N ** TRUE["alpha"] * D ** TRUE["beta"], TRUE["c"] * D ** TRUE["gamma"]
        for i, j in itertools.product(lr_steps, b_steps):
            lr, b = lo * 2.0 ** (i + 0.3), bo * 2.0 ** (j - 0.2)
            u, v = np.log(lr / lo), np.log(b / bo)
            loss = 2.5 + 0.02 * u * u + 0.01 * v * v + 1e-5 * rng.normal()
            rows.append({"N": N, "D": D, "lr": lr, "bs": b, "loss": loss})
    return pd.DataFrame(rows)


def test_fit_hparams_csv_writes_a_law_file(tmp_path, capsys):
    csv, out = tmp_path / "grid.csv", tmp_path / "laws.json"
    grid().to_csv(csv, index=False)
    rc = main(["fit-hparams", str(csv), "--batch-unit", "tokens", "--n-boot", "64", "--out", str(out)])
    assert rc == 0
    text = capsys.readouterr().out
    assert "per-cell optima (9 cells; batch in tokens)" in text and "95% CI" in text
    assert "not positive" not in text  # a hyperparameter law's exponents may be negative
    laws = HparamLaws.from_json(out)
    assert laws.batch_unit == "tokens" and len(laws.optima) == 9
    assert laws.lr["alpha"] == pytest.approx(TRUE["alpha"], abs=0.02)
    assert laws.lr["beta"] == pytest.approx(TRUE["beta"], abs=0.02)
    assert laws.batch["gamma"] == pytest.approx(TRUE["gamma"], abs=0.02)
    lo, hi = laws.lr.intervals["alpha"]
    assert lo < TRUE["alpha"] < hi
    lr, b = laws.predict(3e8, 3e10)
    assert lr == pytest.approx(TRUE["a"] * 3e8 ** TRUE["alpha"] * 3e10 ** TRUE["beta"], rel=0.1)
    d = json.loads(out.read_text())
    assert d["kind"] == "hparam_laws"
    prov = laws.provenance
    assert prov["n_runs"] == 9 * 35 and prov["n_boot"] == 64 and prov["columns"]["batch"] == "bs"
    assert len(prov["runs_sha256"]) == 64 and "jax" in prov["versions"]
    # the same runs in another order hash the same
    grid().sample(frac=1.0, random_state=1).to_csv(csv, index=False)
    assert main(["fit-hparams", str(csv), "--batch-unit", "tokens", "--n-boot", "0", "--out", str(out)]) == 0
    assert HparamLaws.from_json(out).provenance["runs_sha256"] == prov["runs_sha256"]


def test_single_valued_axis_is_an_error_naming_the_column(tmp_path, capsys):
    csv = tmp_path / "grid.csv"
    grid(b_steps=[0]).to_csv(csv, index=False)
    assert main(["fit-hparams", str(csv), "--n-boot", "0"]) == 2
    err = capsys.readouterr().err
    assert "column 'bs' has a single value" in err and "2 batch values per cell" in err


def test_optimum_on_the_edge_warns_naming_the_cell(tmp_path, capsys):
    csv = tmp_path / "grid.csv"
    # lr steps only at and above the optimum: every cell's best lr is the smallest one
    grid(lr_steps=range(0, 5)).to_csv(csv, index=False)
    assert main(["fit-hparams", str(csv), "--n-boot", "0"]) == 0
    out = capsys.readouterr().out
    assert "warning: cell (params=1e+07, tokens=1e+08): the best point" in out
    assert "smallest lr of the grid" in out


def test_missing_and_unknown_columns_are_clear(tmp_path, capsys):
    csv = tmp_path / "grid.csv"
    grid().drop(columns="bs").to_csv(csv, index=False)
    assert main(["fit-hparams", str(csv)]) == 2
    assert "no batch column (looked for ['batch_size', 'batch', 'bs']" in capsys.readouterr().err
    grid().to_csv(csv, index=False)
    assert main(["fit-hparams", str(csv), "--lr-col", "eta"]) == 2
    assert "--lr-col 'eta': no such column" in capsys.readouterr().err


def test_a_stores_cells_merge_despite_step_rounding():
    """A sweep's runs at different batch sizes train slightly different D (steps are rounded):
    within 2% they are one cell, reported at the geometric mean; distinct cells stay apart."""
    from scaling.analysis.hparams import cell_optima

    t = grid().rename(columns={"N": "params", "D": "tokens", "bs": "batch_size"})
    jitter = 1 + 0.004 * (np.log2(t["batch_size"] / t["batch_size"].min()) % 3)  # up to 0.8%
    t["tokens"] = t["tokens"] * jitter
    opt = cell_optima(t)
    assert len(opt) == len(CELLS)
    exact = cell_optima(grid().rename(columns={"N": "params", "D": "tokens", "bs": "batch_size"}))
    np.testing.assert_allclose(opt["tokens"], exact["tokens"], rtol=0.01)
    assert set(exact["tokens"]) == {D for _, D in CELLS}  # single values are kept exactly


def test_the_committed_law_plans_the_committed_sweep(monkeypatch):
    """The loop closed on the committed files: experiments/hparam_law_cpu.toml takes each run's
    lr and batch from results/hparam_grid/laws.json (written by `scaling fit-hparams`)."""
    from pathlib import Path

    from scaling.sweep import load_sweep_config, plan_sweep

    repo = Path(__file__).resolve().parents[2]
    monkeypatch.chdir(repo)  # the sweep names its law file relative to the repository root
    laws = HparamLaws.from_json(repo / "results" / "hparam_grid" / "laws.json")
    assert laws.provenance is None or laws.provenance["source"] == "results/hparam_grid"
    plan = plan_sweep(load_sweep_config(repo / "experiments" / "hparam_law_cpu.toml"))
    assert len(plan.runs) == 15
    for r in plan.runs:
        lr, b = laws.predict(r.params_nonembedding, r.tokens)
        assert r.lr == pytest.approx(float(lr), rel=1e-9)
        assert r.batch_size == max(1, round(float(b)))
    assert len({round(r.lr, 6) for r in plan.runs}) == 15


def test_a_results_directory_uses_its_hparam_grid_runs(tmp_path, capsys):
    """A store: params_nonembedding / eval_loss / status columns, batches in sequences of seq_len;
    finished hparam_grid runs only; --batch-unit tokens fits the batch law in tokens."""
    t = grid()
    t = t.assign(batch_size=t["bs"] / 128, seq_len=128, plan_kind="hparam_grid", status="done")
    extra = t.iloc[:3].assign(plan_kind="isoflop")  # not part of the grid
    failed = t.iloc[3:4].assign(status="failed", loss=float("nan"))
    runs = pd.concat([t, extra, failed], ignore_index=True)
    runs = runs.rename(columns={"N": "params_nonembedding", "D": "tokens", "loss": "eval_loss"}).drop(columns="bs")
    runs["flops"] = 6 * runs["params_nonembedding"] * runs["tokens"]
    store = tmp_path / "store"
    store.mkdir()
    runs.to_csv(store / "runs.csv", index=False)
    out = tmp_path / "laws.json"
    assert main(["fit-hparams", str(store), "--batch-unit", "tokens", "--n-boot", "0", "--out", str(out)]) == 0
    assert f"using the {len(t)} hparam_grid runs of {len(t) + 3} finished runs" in capsys.readouterr().out
    laws = HparamLaws.from_json(out)
    assert laws.batch_unit == "tokens" and laws.seq_len == 128
    assert laws.batch["gamma"] == pytest.approx(TRUE["gamma"], abs=0.02)
    assert float(laws.batch_sequences(1e8, 1e10, 128)) == pytest.approx(
        TRUE["c"] * 1e10 ** TRUE["gamma"] / 128, rel=0.1
    )
