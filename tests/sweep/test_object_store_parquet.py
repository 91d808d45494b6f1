"""curves.parquet beside curves.csv: the same rows, typed, when pyarrow is installed."""

from __future__ import annotations

import pandas as pd
import pytest
from sweep_helpers import fake_train, write_config

from scaling.sweep import load_sweep_config, plan_sweep, run_sweep
from scaling.sweep import store as store_module

pytest.importorskip("pyarrow", reason="needs the parquet extra (in the test extra)")


def test_curves_parquet_matches_curves_csv(tmp_path):
    plan = plan_sweep(load_sweep_config(write_config(tmp_path, budgets="[1e11]")))
    out = tmp_path / "results"
    run_sweep(plan, out, train_fn=fake_train, progress=False, record_environment=False)
    csv = pd.read_csv(out / "curves.csv")
    parquet = pd.read_parquet(out / "curves.parquet")
    assert len(csv) > 0 and list(parquet.columns) == list(store_module.CURVE_COLUMNS)
    assert str(parquet["step"].dtype) == "int64" and str(parquet["eval_loss"].dtype) == "float64"
    pd.testing.assert_frame_equal(parquet, csv, check_dtype=False)
    assert "curves.parquet" in (out / ".gitignore").read_text().split()


def test_without_pyarrow_only_csv_is_written(tmp_path, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_pyarrow(name, *args, **kwargs):
        if name.startswith("pyarrow"):
            raise ImportError("No module named 'pyarrow'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_pyarrow)
    plan = plan_sweep(load_sweep_config(write_config(tmp_path, budgets="[1e11]")))
    out = tmp_path / "results"
    run_sweep(plan, out, train_fn=fake_train, progress=False, record_environment=False)
    assert (out / "curves.csv").exists() and not (out / "curves.parquet").exists()
