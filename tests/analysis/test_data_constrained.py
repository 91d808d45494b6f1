"""The data-constrained law (Muennighoff et al. 2023): published numbers, recovery, bad tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from scaling.analysis.data_constrained import (
    PUBLISHED_C4,
    data_constrained_law,
    effective_tokens,
    fit_data_constrained,
    with_unique_tokens,
)
from scaling.analysis.laws import get_law
from scaling.analysis.results import FitResult

HELD = {k: PUBLISHED_C4[k] for k in ("A", "B", "alpha", "beta", "RN_star")}


def test_published_law_reproduces_the_datablations_readme():
    law = get_law("data_constrained")
    # the two models of their Figure 1 (right), values printed in their README
    assert law.predict(PUBLISHED_C4, params=6.34e9, tokens=242e9, unique_tokens=25e9) == pytest.approx(
        2.2256440889984477, rel=1e-12
    )
    assert law.predict(PUBLISHED_C4, params=8.67e9, tokens=178e9, unique_tokens=25e9) == pytest.approx(
        2.2269634075087867, rel=1e-12
    )


def test_effective_tokens():
    U = 1e9
    assert effective_tokens(U, U) == pytest.approx(U)
    assert effective_tokens(2 * U, U) == pytest.approx(U * (1 + 15.387756 * (1 - np.exp(-1 / 15.387756))))
    assert effective_tokens(1e6 * U, U) == pytest.approx(U * (1 + 15.387756), rel=1e-9)  # saturates
    # fresh data: unique = total, D' = D
    assert effective_tokens(3e9, 3e9) == pytest.approx(3e9)


def synthetic(rd_star=15.4, seed=0):
    rng = np.random.default_rng(seed)
    law = get_law("data_constrained")
    rows = []
    for N in (1e8, 3e8, 1e9):
        for epochs in (1, 2, 4, 8, 16, 40):
            D = 20 * N
            rows.append({"params": N, "tokens": D, "epochs": epochs})
    t = pd.DataFrame(rows)
    p = {**PUBLISHED_C4, "RD_star": rd_star}
    loss = law.predict(p, params=t["params"], tokens=t["tokens"], unique_tokens=t["tokens"] / t["epochs"])
    t["loss"] = loss * np.exp(1e-4 * rng.normal(size=len(t)))
    return t


def test_recovers_rd_star_with_the_chinchilla_part_held():
    fit = fit_data_constrained(synthetic(15.4), fixed=HELD, n_boot=32)
    assert fit.params["RD_star"] == pytest.approx(15.4, rel=0.05)
    assert fit.params["E"] == pytest.approx(PUBLISHED_C4["E"], rel=1e-3)
    lo, hi = fit.intervals["RD_star"]
    assert lo < 15.4 < hi
    fit5 = fit_data_constrained(synthetic(5.0), fixed=HELD)
    assert fit5.params["RD_star"] == pytest.approx(5.0, rel=0.05)


def test_fixed_law_round_trips_through_json():
    fit = fit_data_constrained(synthetic(), fixed=HELD)
    back = FitResult.from_json(fit.to_json())
    assert back.law == fit.law and back.law.startswith("data_constrained[")
    assert back.params == pytest.approx(fit.params)
    with pytest.raises(ValueError, match="not among"):
        data_constrained_law({"R_star": 1.0})


def test_unique_tokens_are_required_and_checked():
    t = synthetic().drop(columns="epochs")
    with pytest.raises(ValueError, match="needs unique-token counts.*'unique_tokens'.*'epochs'"):
        with_unique_tokens(t)
    with pytest.raises(ValueError, match="needs unique-token counts"):
        fit_data_constrained(t, fixed=HELD)
    bad = synthetic().assign(unique_tokens=lambda d: d["tokens"] * 2)
    with pytest.raises(ValueError, match="exceeds tokens"):
        with_unique_tokens(bad.drop(columns="epochs"))
    derived = with_unique_tokens(synthetic())
    np.testing.assert_allclose(derived["unique_tokens"] * derived["epochs"], derived["tokens"])


def test_datablations_subset_gives_a_small_rd_star(reference_data):
    """The committed result (experiments/datablations.py): C4 final losses, E and R*_D free."""
    df = pd.read_csv(reference_data / "hitchhiker2024_colpret_subset" / "datablations_losses.csv")
    last = df.loc[df.groupby(["data", "num_params", "epochs"])["token_num"].idxmax()]
    t = pd.DataFrame(
        {"data": last["data"], "params": last["num_params"].str.rstrip("B").astype(float) * 1e9,
         "tokens": last["token_num"], "unique_tokens": np.minimum(last["tokens_per_epoch"], last["token_num"]),
         "loss": last["loss"]}
    )  # fmt: skip
    fit = fit_data_constrained(t[t["data"] == "c4"].drop(columns="data"), fixed=HELD)
    assert fit.params["RD_star"] == pytest.approx(2.52, abs=0.05)
    assert fit.params["RD_star"] < PUBLISHED_C4["RD_star"]


def _fresh(*args, cwd):
    """`scaling ...` in a fresh interpreter: only what the CLI itself imports is loaded."""
    import subprocess
    import sys

    code = "import sys; from scaling.cli.main import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=cwd, timeout=300)


def test_cli_fits_the_law_in_a_fresh_process(tmp_path):
    """Every built-in law is registered on lookup (not only once data_constrained.py is
    imported), and a held-parameter law is rebuilt from its name in a fresh process."""
    csv = tmp_path / "runs.csv"
    synthetic(15.4).to_csv(csv, index=False)  # epochs, not unique_tokens: the CLI derives them
    out = tmp_path / "fit.json"
    held = data_constrained_law(HELD).name  # the 7-parameter fit's 2,916 starts are too slow for a test
    r = _fresh("fit", str(csv), "--law", held, "--json", str(out), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "RD_star" in r.stdout
    back = FitResult.from_json(out.read_text())
    assert back.law == held and back.n_points == 18
    assert back.params["RD_star"] == pytest.approx(15.4, rel=0.05)


def test_cli_without_unique_tokens_names_the_column(tmp_path):
    csv = tmp_path / "runs.csv"
    synthetic().drop(columns="epochs").to_csv(csv, index=False)
    r = _fresh("fit", str(csv), "--law", "data_constrained", cwd=tmp_path)
    assert r.returncode == 2  # the bare name is known in a fresh process: the error is about the table
    assert "unknown law" not in r.stderr
    assert "needs unique-token counts: give a 'unique_tokens' column" in r.stderr and "Traceback" not in r.stderr


def test_fit_law_without_unique_tokens_names_the_column():
    from scaling.analysis.fit import fit_law

    with pytest.raises(ValueError, match=r"law 'data_constrained' needs the column\(s\) \['unique_tokens'\]"):
        fit_law(synthetic().drop(columns="epochs"), "data_constrained")


def test_held_law_names_are_parsed_with_clear_errors():
    law = get_law("data_constrained[rd_star=15,rn_star=inf]")
    assert law.params == ("E", "A", "B", "alpha", "beta") and law.inputs[-1] == "unique_tokens"
    with pytest.raises(ValueError, match="'r_star=3' is not 'parameter=value'"):
        get_law("data_constrained[r_star=3]")
    with pytest.raises(ValueError, match="the value of 'rd_star' is not a number"):
        get_law("data_constrained[rd_star=x]")
    with pytest.raises(ValueError, match="unknown law 'nope\\[a=1\\]'"):
        get_law("nope[a=1]")
