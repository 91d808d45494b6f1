import json

import numpy as np
import pandas as pd
import pytest

from scaling.analysis.synthetic import TEST_LAW, chinchilla_loss
from scaling.cli.main import main


@pytest.fixture(scope="module")
def data_csv(tmp_path_factory):
    rng = np.random.default_rng(0)
    N = np.exp(rng.uniform(np.log(1e7), np.log(1e10), 240))
    D = N * np.exp(rng.uniform(np.log(2), np.log(200), 240))
    L = chinchilla_loss(N, D, **TEST_LAW) * np.exp(0.005 * rng.standard_normal(240))
    path = tmp_path_factory.mktemp("cli") / "runs.csv"
    pd.DataFrame({"n": N, "c": 6 * N * D, "final": L}).to_csv(path, index=False)
    return path


def test_fit_predict_optimal_round_trip(data_csv, tmp_path, capsys):
    fit_json = tmp_path / "fit.json"
    rc = main(["fit", str(data_csv), "--law", "chinchilla", "--params-col", "n", "--flops-col", "c",
               "--loss-col", "final", "--n-boot", "128", "--seed", "1", "--json", str(fit_json)])  # fmt: skip
    assert rc == 0
    out = capsys.readouterr().out
    assert "alpha" in out and "95% CI" in out
    d = json.loads(fit_json.read_text())
    assert {"law", "params", "objective", "n_points", "converged", "intervals", "warnings"} <= set(d)
    assert set(d["params"]) == {"E", "A", "B", "alpha", "beta"} and d["n_points"] == 240 and d["converged"]
    for p, (lo, hi) in d["intervals"].items():
        assert lo <= d["params"][p] <= hi
    assert d["params"]["alpha"] == pytest.approx(TEST_LAW["alpha"], abs=0.03)

    pred_json = tmp_path / "pred.json"
    assert (
        main(["predict", str(fit_json), "--params", "1e9", "1e10", "--tokens", "2e10", "--json", str(pred_json)]) == 0
    )
    rows = json.loads(pred_json.read_text())["predictions"]
    assert len(rows) == 2 and rows[0]["loss_lo"] <= rows[0]["loss"] <= rows[0]["loss_hi"]
    assert rows[0]["loss"] == pytest.approx(chinchilla_loss(1e9, 2e10, **TEST_LAW), rel=0.01)

    opt_json = tmp_path / "opt.json"
    assert main(["optimal", str(fit_json), "--flops", "1e21", "--json", str(opt_json)]) == 0
    o = json.loads(opt_json.read_text())
    row = o["optimal"][0]
    assert row["params"] * row["tokens"] * 6 == pytest.approx(1e21)
    assert o["a"] + o["b"] == pytest.approx(1.0) and o["a_lo"] <= o["a"] <= o["a_hi"]
    assert "N_opt" in capsys.readouterr().out


def test_the_convention_reaches_the_fit_and_the_allocation(data_csv, tmp_path):
    """--convention 8N: tokens are C/(8N), and `scaling optimal` allocates C = 8·N·D."""
    fit_json, opt_json = tmp_path / "fit8.json", tmp_path / "opt8.json"
    assert main(["fit", str(data_csv), "--params-col", "n", "--flops-col", "c", "--loss-col", "final",
                 "--convention", "8N", "--json", str(fit_json)]) == 0  # fmt: skip
    assert json.loads(fit_json.read_text())["k"] == 8.0
    assert main(["optimal", str(fit_json), "--flops", "1e21", "--json", str(opt_json)]) == 0
    row = json.loads(opt_json.read_text())["optimal"][0]
    assert row["params"] * row["tokens"] * 8 == pytest.approx(1e21)


def test_fit_without_bootstrap_has_no_intervals(data_csv, tmp_path):
    out = tmp_path / "fit.json"
    assert main(["fit", str(data_csv), "--params-col", "n", "--flops-col", "c", "--loss-col", "final",
                 "--json", str(out)]) == 0  # fmt: skip
    d = json.loads(out.read_text())
    assert "intervals" not in d and d["law"] == "chinchilla"
    assert main(["predict", str(out), "--params", "1e9", "--tokens", "2e10"]) == 0


def test_errors_are_one_clear_line(data_csv, tmp_path, capsys):
    assert main(["fit", str(data_csv)]) == 2  # default column names are absent
    err = capsys.readouterr().err
    assert "missing params column 'params'" in err and "['n', 'c', 'final']" in err and "Traceback" not in err

    bad = tmp_path / "bad.csv"
    pd.DataFrame({"params": [1e8, -1.0, 1e9], "tokens": [1e9, 1e9, 1e10], "loss": [3.0, 2.9, 2.5]}).to_csv(
        bad, index=False
    )
    assert main(["fit", str(bad)]) == 2
    assert "column 'params'" in capsys.readouterr().err

    assert main(["fit", str(data_csv), "--law", "nope"]) == 2
    assert "known laws" in capsys.readouterr().err

    notfit = tmp_path / "x.json"
    notfit.write_text("{}")
    assert main(["optimal", str(notfit), "--flops", "1e20"]) == 2
    assert "not a fit file" in capsys.readouterr().err
    assert main(["predict", str(tmp_path / "missing.json"), "--params", "1"]) == 2
