"""`scaling plan` and `scaling sweep` from the command line (no real training)."""

from __future__ import annotations

import pytest
from sweep_helpers import write_config

from scaling.cli.main import main


def test_plan_prints_the_table(tmp_path, capsys):
    config = write_config(tmp_path)
    assert main(["plan", str(config), "--throughput", "1e10"]) == 0
    out = capsys.readouterr().out
    for column in ("run_id", "width", "depth", "N", "D", "C", "D/N", "steps", "est. time"):
        assert column in out
    assert "total: " in out and "given by --throughput" in out


def test_plan_wsd_shows_the_saving(tmp_path, capsys):
    assert main(["plan", str(write_config(tmp_path, "wsd"))]) == 0
    out = capsys.readouterr().out
    assert "WSD branches:" in out and "saved" in out and "branch@" in out


@pytest.mark.parametrize(
    "args, message",
    [
        (["--set", "sweep.tokens_per_param_range=[80, 5]"], "inverted"),
        (["--set", "family.widht=3"], "did you mean family.widths"),
        (["--throughput", "-5"], "--throughput=-5.0 must be a positive"),
    ],
)
def test_plan_bad_input_is_one_clear_line(tmp_path, capsys, args, message):
    assert main(["plan", str(write_config(tmp_path)), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_sweep_rejects_a_bad_worker_index_before_training(tmp_path, capsys):
    code = main(["sweep", str(write_config(tmp_path)), "--out", str(tmp_path / "out"),
                 "--num-workers", "2", "--worker-index", "2"])  # fmt: skip
    assert code == 2
    assert "--worker-index=2" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_quickstart_stops_without_analysis_when_preempted(tmp_path, monkeypatch, capsys):
    """A preempted quickstart exits 75 (a scheduler requeues it) and fits nothing partial."""
    import scaling.cli.quickstart as quickstart
    import scaling.cli.sweep as sweep_cli
    from scaling.sweep.runner import SweepReport

    def preempted_sweep(plan, out, progress=True, **kwargs):
        report = SweepReport(out)
        report.rows.append({"run_id": plan.runs[0].run_id, "action": "trained", "status": "pending", "preempted": True})
        return report

    monkeypatch.setattr(sweep_cli, "sweep", preempted_sweep)
    monkeypatch.setattr(quickstart, "analyze", lambda *a, **k: pytest.fail("analysed a preempted sweep"))
    assert main(["quickstart", "--out", str(tmp_path / "q"), "--no-progress"]) == 75
