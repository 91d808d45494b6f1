import numpy as np
import pandas as pd
import pytest

from scaling.analysis import fit_law
from scaling.analysis.table import flop_factor, flops_per_param_token, load_table


def test_csv_with_flops_derives_tokens(tmp_path):
    p = tmp_path / "runs.csv"
    pd.DataFrame({"N": [1e8, 2e8], "C": [6e17, 2.4e18], "L": [3.0, 2.8], "run_id": ["a", "b"]}).to_csv(p, index=False)
    df = load_table(p, params_col="N", flops_col="C", loss_col="L")
    assert list(df.columns[:4]) == ["params", "tokens", "flops", "loss"] and "run_id" in df.columns
    np.testing.assert_allclose(df["tokens"], [1e9, 2e9])
    assert flops_per_param_token(df) == 6.0


def test_tokens_derive_flops_with_a_convention():
    df = load_table(pd.DataFrame({"params": [1e8], "tokens": [1e9], "loss": [3.0]}), convention="8N")
    assert df["flops"].iloc[0] == pytest.approx(8e17)
    assert flop_factor(6) == 6.0 and flop_factor("6N") == 6.0
    with pytest.raises(ValueError, match="convention"):
        flop_factor("six")


def test_missing_column_names_it_and_lists_the_table():
    with pytest.raises(ValueError, match=r"missing loss column 'loss'.*\['params', 'tokens', 'eval'\]"):
        load_table(pd.DataFrame({"params": [1.0], "tokens": [1.0], "eval": [1.0]}))
    with pytest.raises(ValueError, match="tokens column 'tokens' or a flops column 'flops'"):
        load_table(pd.DataFrame({"params": [1.0], "loss": [1.0]}))


@pytest.mark.parametrize("bad, what", [(np.nan, "NaN"), (-1.0, "not positive"), (0.0, "not positive")])
def test_bad_values_name_column_and_row(bad, what):
    df = pd.DataFrame({"params": [1e8, 1e9, 1e10], "tokens": [1e9, bad, 1e11], "loss": [3.0, 2.5, 2.0]})
    with pytest.raises(ValueError, match=rf"column 'tokens'.*row 1 .*{what}"):
        load_table(df)


def test_results_directory(tmp_path):
    runs = pd.DataFrame({
        "run_id": ["r0", "r1", "r2"], "width": [64, 96, 128], "depth": [2, 2, 2],
        "params_nonembedding": [1e5, 2e5, 4e5], "params_total": [2e5, 3e5, 5e5],
        "tokens": [1e7, 2e7, 4e7], "flops": [6e12, 2.4e13, 9.6e13], "flop_convention": ["6N"] * 3,
        "eval_loss": [3.0, 2.8, np.nan], "status": ["done", "done", "failed"],
    })  # fmt: skip
    runs.to_csv(tmp_path / "runs.csv", index=False)
    df = load_table(tmp_path)
    assert len(df) == 2  # the failed run (with its NaN loss) is left out
    np.testing.assert_allclose(df["params"], [1e5, 2e5])
    np.testing.assert_allclose(df["loss"], [3.0, 2.8])
    curves = pd.DataFrame({
        "run_id": ["r0", "r0", "r1", "r1", "r2"], "step": [1, 2, 1, 2, 1],
        "tokens": [5e6, 1e7, 1e7, 2e7, 1e7], "flops": [3e12, 6e12, 1.2e13, 2.4e13, 2.4e13],
        "train_loss": [3.5, 3.1, 3.3, 2.9, 3.0], "eval_loss": [np.nan, 3.0, 3.2, 2.8, 2.9], "lr": [1e-3] * 5,
    })  # fmt: skip
    curves.to_csv(tmp_path / "curves.csv", index=False)
    c = load_table(tmp_path, curves=True)
    assert list(c["run_id"]) == ["r0", "r1", "r1"]  # r2 failed; r0's first step has no eval
    np.testing.assert_allclose(c["params"], [1e5, 2e5, 2e5])
    np.testing.assert_allclose(c["loss"], [3.0, 3.2, 2.8])
    assert {"step", "width", "lr"} <= set(c.columns)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match="without runs.csv"):
        load_table(empty)
    with pytest.raises(FileNotFoundError, match="no such file"):
        load_table(tmp_path / "missing.csv")


def test_fewer_points_than_parameters():
    with pytest.raises(ValueError, match="5 parameters.*only 3 points"):
        fit_law({"params": [1e8, 1e9, 1e10], "tokens": [1e9, 1e10, 1e11], "loss": [3.0, 2.5, 2.0]})


def test_model_dependent_convention_uses_the_tables_own_ratio(tmp_path):
    """'exact' FLOPs have no fixed k: with both columns, k is the median C/(N·D)."""
    import pandas as pd

    from scaling.analysis import load_table

    runs = pd.DataFrame(
        {
            "run_id": ["a", "b", "c", "t"],
            "params_nonembedding": [1e3, 2e3, 4e3, 4e3],
            "tokens": [1e6, 1e6, 1e6, 9e6],
            "flops": [13e9, 14e9, 60e9, 1e12],
            "flop_convention": "exact",
            "eval_loss": [2.0, 1.9, 1.8, 1.7],
            "status": "done",
            "plan_kind": ["isoflop", "isoflop", "isoflop", "trunk"],
        }
    )
    runs.to_csv(tmp_path / "runs.csv", index=False)
    df = load_table(tmp_path)
    assert list(df["run_id"]) == ["a", "b", "c"]  # the WSD trunk (unannealed) is left out
    assert flops_per_param_token(df) == pytest.approx(13.0)  # median of 13, 7, 15
    with pytest.raises(ValueError, match="'exact' has no fixed FLOPs per parameter-token"):
        load_table(
            runs.drop(columns=["tokens"]).rename(columns={"params_nonembedding": "params", "eval_loss": "loss"}),
            convention="exact",
        )


def test_a_loaded_tables_k_survives_fitting_and_optimal_allocation(tmp_path):
    """fit_law re-reads its input through load_table: a table's own k (here 'exact' FLOPs,
    k = 13) must survive that, and filtering or concatenating the table, else Approach 3
    would allocate with k = 6. It is read off the rows (no DataFrame.attrs)."""
    from scaling.analysis import compute_optimal
    from scaling.analysis.synthetic import isoflop_runs

    truth = isoflop_runs([1e18, 1e19, 1e20], sizes=7)
    runs = pd.DataFrame(
        {
            "run_id": [f"r{i}" for i in range(len(truth))],
            "params_nonembedding": truth["params"],
            "tokens": truth["tokens"],
            "flops": 13.0 * truth["params"] * truth["tokens"],
            "flop_convention": "exact",
            "eval_loss": truth["loss"],
            "status": "done",
        }
    )
    runs.to_csv(tmp_path / "runs.csv", index=False)
    table = load_table(tmp_path)
    assert flops_per_param_token(table) == pytest.approx(13.0)
    assert flops_per_param_token(pd.concat([table.iloc[:5], table.iloc[5:]])) == pytest.approx(13.0)
    for source in (table, table[table["params"] > table["params"].min()], tmp_path):
        assert fit_law(source, "chinchilla").k == pytest.approx(13.0)
    opt = compute_optimal(fit_law(table, "chinchilla"), 1e21)
    assert 13.0 * opt["params"] * opt["tokens"] == pytest.approx(1e21, rel=1e-6)
    # an explicit k still wins over the table's own
    one_start = {"log_E": [0.5], "log_A": [5.0], "log_B": [5.0], "alpha": [0.3], "beta": [0.3]}
    assert fit_law(table, "chinchilla", grid=one_start, k=6.0).k == 6.0


def test_the_readers_store_names_are_the_stores_own():
    """load_table and load_results read runs.csv/curves.csv through scaling.core.columns:
    every store column named there is one the store writes."""
    from scaling.core import columns as C
    from scaling.sweep import CURVE_COLUMNS, RUN_COLUMNS

    for name in (C.RUN_ID, C.STATUS, C.PLAN_KIND, C.FLOP_CONVENTION, C.BUDGET, C.STORE_PARAMS, C.STORE_LOSS,
                 C.TOKENS, C.FLOPS):  # fmt: skip
        assert name in RUN_COLUMNS, name
    assert set(C.PER_EVALUATION) <= set(CURVE_COLUMNS) and C.STEP in CURVE_COLUMNS
    assert set(C.STORE_TO_CANONICAL.values()) <= set(C.CANONICAL)
