"""The pre-trained ↔ fine-tuned path on several validation sets (`scaling interpolate PRE FT
--eval-data ...`): exact endpoints, the best-t rules, the Pareto front, bad input."""

from __future__ import annotations

import copy
import json
import math

import pytest
from interp_helpers import RUN, STEPS

from scaling.cli.main import main
from scaling.interpolate import best_t, pareto_front, tradeoff
from scaling.interpolate.tradeoff import check_rule, parse_eval_data

FT_STEPS = 8


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """A small prose corpus, nothing like the stdlib's code."""
    d = tmp_path_factory.mktemp("prose")
    words = "the quick brown fox jumps over a lazy dog while seven wizards quietly hum".split()
    for i in range(12):
        lines = [" ".join(words[(i + j + k) % len(words)] for k in range(9)) + "." for j in range(60)]
        (d / f"doc{i:02d}.txt").write_text("\n".join(lines) + "\n")
    return d


@pytest.fixture(scope="module")
def ft_dir(run_dir, corpus, tmp_path_factory):
    from scaling.train import train

    raw = copy.deepcopy(RUN)
    raw["data"] = {"source": "text", "paths": [str(corpus)], "validation_fraction": 0.3}
    raw["train"].update(steps=FT_STEPS, eval_every=FT_STEPS, checkpoint_every=FT_STEPS)
    raw["train"]["init_params_from"] = f"{run_dir}@{STEPS}"
    out = tmp_path_factory.mktemp("ft") / "ft"
    res = train(raw, out)
    assert res.status == "done", res
    return out


@pytest.fixture(scope="module")
def result(run_dir, ft_dir):
    return tradeoff(f"{run_dir}@{STEPS}", f"{ft_dir}@{FT_STEPS}", ["pre=" + str(run_dir), f"ft={ft_dir}"], points=5)


def test_endpoints_are_the_runs_logged_losses(result, metrics, ft_dir):
    ft_rows = [json.loads(x) for x in (ft_dir / "metrics.jsonl").read_text().splitlines()]
    assert result.t == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert result.loss_at("pre", 0.0) == metrics[STEPS]["eval_loss"]
    assert result.loss_at("ft", 1.0) == ft_rows[-1]["eval_loss"]
    assert result.sources["ft"]["kind"] == "run" and result.sources["pre"]["eval_tokens"] == 8 * 2 * 32


def test_constrained_rule(result):
    pre, ft = result.losses["pre"], result.losses["ft"]
    eps = result.rule["epsilon"]
    assert result.rule == {"rule": "constrained", "target": "ft", "keep": "pre", "epsilon": 0.02}
    ok = [i for i in range(len(result.t)) if pre[i] <= pre[0] + eps]
    i = min(ok, key=lambda j: ft[j])
    assert result.best["t"] == result.t[i]
    assert result.summary["forgetting_at_1"] == pre[-1] - pre[0]
    assert result.summary["gain_at_1"] == ft[0] - ft[-1] and ft[0] - ft[-1] > 0  # fine-tuning helped its own data
    assert result.summary["gain_at_best"] == ft[0] - ft[i]
    assert set(result.pareto_t) <= set(result.t) and result.best["t"] in result.pareto_t


def test_weighted_rule(run_dir, ft_dir, result):
    res = tradeoff(
        f"{run_dir}@{STEPS}",
        f"{ft_dir}@{FT_STEPS}",
        {"pre": str(run_dir), "ft": str(ft_dir)},
        points=5,
        rule="weighted",
        weights={"pre": 1, "ft": 3},
    )
    score = [(a + 3 * b) / 4 for a, b in zip(result.losses["pre"], result.losses["ft"])]
    assert res.best["t"] == result.t[score.index(min(score))]
    assert res.best["weighted_loss"] == pytest.approx(min(score))
    assert res.rule == {"rule": "weighted", "weights": {"pre": 1.0, "ft": 3.0}}


def test_pareto_front_and_best_t_by_hand():
    ts = [0.0, 0.5, 1.0, 1.5]
    losses = {"a": [1.0, 1.1, 1.5, 1.2], "b": [2.0, 1.5, 1.0, 1.6]}
    assert pareto_front(ts, losses) == [0.0, 0.5, 1.0]  # 1.5 is dominated by 0.5
    rule = {"rule": "constrained", "target": "b", "keep": "a", "epsilon": 0.15}
    assert best_t(ts, losses, rule)["t"] == 0.5
    rule["epsilon"] = 0.6
    assert best_t(ts, losses, rule)["t"] == 1.0
    assert best_t(ts, {**losses, "b": [2.0, math.nan, 1.0, 1.6]}, {**rule, "epsilon": 0.15})["t"] == 0.0


@pytest.mark.parametrize(
    "kw, message",
    [
        (dict(target="fine"), r"target 'fine' is not an eval-data name; the names are pre, ft"),
        (dict(keep="x"), r"keep 'x' is not an eval-data name"),
        (dict(rule="weighted", weights={"nope": 1}), r"weight for 'nope' is not an eval-data name"),
        (dict(target="pre"), "target and keep are both 'pre'"),
        (dict(epsilon=-1), "epsilon=-1 must be a finite number >= 0"),
        (dict(rule="best"), "rule='best' must be one of constrained, weighted"),
        (dict(rule="weighted", epsilon=0.1), "apply to rule 'constrained'"),
    ],
)
def test_rule_errors(kw, message):
    args = dict(rule="constrained", target=None, keep=None, epsilon=None, weights=None) | kw
    with pytest.raises(ValueError, match=message):
        check_rule(["pre", "ft"], args["rule"], args["target"], args["keep"], args["epsilon"], args["weights"])


def test_eval_data_parsing():
    assert parse_eval_data(["pre=runs/a", "ft = runs/b"]) == {"pre": "runs/a", "ft": "runs/b"}
    for bad, message in ((["pre"], "expected NAME=SOURCE"), (["a=x", "a=y"], "'a' is given twice"), ([], "at least")):
        with pytest.raises(ValueError, match=message):
            parse_eval_data(bad)


def test_cli_errors_before_compute(run_dir, capsys, monkeypatch):
    import scaling.train

    monkeypatch.setattr(scaling.train, "evaluator", lambda *a, **k: pytest.fail("evaluated before checking"))
    base = ["interpolate", f"{run_dir}@4", f"{run_dir}@8"]
    assert main([*base, "--eval-data", f"pre={run_dir}", f"ft={run_dir}", "--target", "fine"]) == 2
    assert "target 'fine' is not an eval-data name; the names are pre, ft" in capsys.readouterr().err
    assert main([*base, "--eval-data", f"pre={run_dir}", "ft=/no/such/corpus"]) == 2
    assert "eval-data source '/no/such/corpus'" in capsys.readouterr().err
    assert main([*base, "--epsilon", "0.1"]) == 2
    assert "--epsilon does not apply to a path without --eval-data" in capsys.readouterr().err
    assert main([*base, "--eval-data", f"pre={run_dir}", "ft=stdlib", "--weights", "pre=x", "--rule", "weighted"]) == 2
    assert "--weights 'pre=x': expected NAME=W" in capsys.readouterr().err


def test_cli_json(run_dir, corpus, tmp_path, metrics, capsys):
    """Two sets named by source (the stdlib and a text directory), the weighted rule."""
    out = tmp_path / "t.json"
    code = main(
        [
            "interpolate",
            f"{run_dir}@12",
            f"{run_dir}@{STEPS}",
            "--eval-data",
            "code=stdlib",
            f"prose={corpus}",
            "--points",
            "3",
            "--rule",
            "weighted",
            "--json",
            str(out),
        ]
    )
    assert code == 0
    assert "best t" in capsys.readouterr().out
    data = json.loads(out.read_text())
    assert data["t"] == [0.0, 0.5, 1.0]
    assert data["losses"]["code"][0] == metrics[12]["eval_loss"]  # the run's own validation set
    assert data["sources"]["prose"]["kind"] == "text" and data["rule"]["rule"] == "weighted"
    assert data["best"]["t"] in data["t"] and data["pareto_t"]
