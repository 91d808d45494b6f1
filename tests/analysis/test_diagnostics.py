"""Fit diagnostics (scaling.analysis.diagnostics): warnings a converged fit does not give."""

import numpy as np
import pandas as pd

from scaling.analysis.diagnostics import fit_diagnostics
from scaling.analysis.synthetic import TEST_LAW, chinchilla_loss

GOOD = dict(TEST_LAW)


def table(sizes=(1e7, 3e7, 1e8, 3e8, 1e9), mults=(5.0, 20.0, 80.0)):
    N, M = np.meshgrid(np.asarray(sizes), np.asarray(mults), indexing="ij")
    N, D = N.ravel(), (N * M).ravel()
    return pd.DataFrame(dict(params=N, tokens=D, flops=6 * N * D, loss=chinchilla_loss(N, D, **TEST_LAW)))


def test_a_clean_table_and_fit_give_no_warning():
    assert fit_diagnostics(table(), "chinchilla", GOOD) == []


def test_non_positive_exponent():
    w = fit_diagnostics(table(), "chinchilla", dict(GOOD, alpha=-6.99))
    assert len(w) == 1 and "exponent alpha = -6.99 is not positive" in w[0]


def test_duplicated_rows_are_counted():
    df = table()
    df = pd.concat([df] + [df.iloc[[3]]] * 9, ignore_index=True)
    w = fit_diagnostics(df, "chinchilla", GOOD)
    assert any(s.startswith("9 duplicated row(s)") for s in w)


def test_too_few_spare_points():
    w = fit_diagnostics(table().iloc[:5], "chinchilla", GOOD)
    assert any("only 5 points for 5 parameters (0 spare)" in s for s in w)
    # zero-weight rows do not count
    w = fit_diagnostics(table(), "chinchilla", GOOD, weights=np.r_[np.ones(7), np.zeros(8)])
    assert any("only 7 points" in s for s in w)


def test_flops_inconsistent_with_k_n_d():
    df = table()
    df.loc[2, "flops"] *= 3
    w = fit_diagnostics(df, "chinchilla", GOOD)
    assert any(s.startswith("1 row(s) have FLOPs inconsistent with k·N·D") for s in w)
    # a store's model-dependent convention (exact: attention and embeddings count) varies C/(N·D) by design
    df["flop_convention"] = "exact"
    assert not any("inconsistent with k·N·D" in s for s in fit_diagnostics(df, "chinchilla", GOOD))
    df["flop_convention"] = "6N"
    assert any("inconsistent with k·N·D" in s for s in fit_diagnostics(df, "chinchilla", GOOD))


def test_one_size_or_one_budget():
    one_size = table(sizes=(1e8,), mults=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024))
    assert any("single model size" in s for s in fit_diagnostics(one_size, "chinchilla", GOOD))
    N = np.geomspace(1e7, 1e9, 12)
    D = 1e19 / (6 * N)
    one_budget = pd.DataFrame(dict(params=N, tokens=D, flops=6 * N * D, loss=chinchilla_loss(N, D, **TEST_LAW)))
    assert any("single compute budget" in s for s in fit_diagnostics(one_budget, "chinchilla", GOOD))
