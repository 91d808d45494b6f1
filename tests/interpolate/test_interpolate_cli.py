"""`scaling interpolate`: the printed table, the JSON schema, and one-line errors (run in
process through the CLI's `main`, so no second JAX start-up)."""

from __future__ import annotations

import json

import numpy as np
from interp_helpers import EVAL_TOKENS

from scaling.cli.main import main


def test_path_table_and_json(run_dir, metrics, tmp_path, capsys):
    out = tmp_path / "path.json"
    assert (
        main(
            [
                "interpolate",
                f"{run_dir}@16",
                f"{run_dir}@20",
                "--points",
                "5",
                "--range",
                "-0.5",
                "1.5",
                "--mesh",
                "1,1,1",
                "--json",
                str(out),
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "barrier" in printed and "(a)" in printed and "(b)" in printed
    d = json.loads(out.read_text())
    assert d["t"] == [-0.5, 0.0, 0.5, 1.0, 1.5]
    assert len(d["loss"]) == 5 and all(isinstance(x, float) for x in d["loss"])
    assert isinstance(d["barrier"], float) and d["barrier"] >= 0
    assert d["checkpoint_a"] == {"spec": f"{run_dir.absolute()}@16", "run_dir": str(run_dir.absolute()), "step": 16}
    assert (d["step_a"], d["step_b"]) == (16, 20)
    assert d["eval_tokens"] == EVAL_TOKENS and d["loss_units"] == "nats per token"
    np.testing.assert_allclose(
        [d["loss_a"], d["loss_b"]], [metrics[16]["eval_loss"], metrics[20]["eval_loss"]], rtol=1e-6
    )
    assert d["loss"][1] == d["loss_a"] and d["loss"][3] == d["loss_b"]
    for line in printed.splitlines():  # the table's rows are the JSON's numbers
        if line.strip().startswith("0.500"):
            assert float(line.split()[1]) == round(d["loss"][2], 5)


def test_average_json(run_dir, tmp_path, capsys):
    out = tmp_path / "avg.json"
    assert main(["interpolate", "average", str(run_dir), "--last", "2", "--mesh", "1,1,1", "--json", str(out)]) == 0
    assert "uniform mean of 2 checkpoints" in capsys.readouterr().out
    d = json.loads(out.read_text())
    assert d["steps"] == [20, 24] and d["method"] == "uniform" and d["last_step"] == 24
    assert d["improvement"] == d["last_loss"] - d["loss"]


def test_errors_are_one_line(run_dir, capsys):
    cases = [
        ([f"{run_dir}@7", str(run_dir)], "available steps: 4, 8, 12, 16, 20, 24"),
        ([f"{run_dir}@x", str(run_dir)], "step 'x' is not a whole number"),
        ([str(run_dir), str(run_dir), "--last", "2"], "--last does not apply to a path"),
        (["average", str(run_dir), "--points", "3"], "--points does not apply to `scaling interpolate average`"),
        (["average", str(run_dir), "--steps", "4,x"], "--steps '4,x': expected comma-separated step numbers"),
        ([str(run_dir)], "expected CKPT_A CKPT_B or `average RUN_DIR`"),
        ([str(run_dir), str(run_dir), "--points", "1"], "points=1 must be an integer >= 2"),
        ([str(run_dir), str(run_dir), "--mesh", "2,2"], "--mesh '2,2': expected three positive sizes"),
    ]
    for argv, needle in cases:
        assert main(["interpolate", *argv]) == 2, argv
        err = capsys.readouterr().err.strip()
        assert err.startswith("scaling interpolate: error:") and needle in err, (argv, err)
        assert len(err.splitlines()) == 1, err
