"""`scaling --version`, and `scaling sweep --dry-run` printing exactly what `scaling plan` prints."""

from __future__ import annotations

from pathlib import Path

import pytest

import scaling
from scaling.cli.main import main

SWEEP = Path(__file__).resolve().parents[1] / "experiments" / "quickstart.toml"


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip() == f"scaling {scaling.__version__}"


def test_sweep_dry_run_is_plan(capsys, tmp_path):
    assert main(["plan", str(SWEEP), "--throughput", "1e9"]) == 0
    planned = capsys.readouterr().out
    out = tmp_path / "results"
    assert main(["sweep", str(SWEEP), "--dry-run", "--throughput", "1e9", "--out", str(out)]) == 0
    from scaling.sweep import load_sweep_config
    from scaling.sweep.lr_tuning import shapes_plan, tuning_plan

    cfg = load_sweep_config(SWEEP)
    assert capsys.readouterr().out == planned and "learning-rate tuning" in planned
    assert f"{len(tuning_plan(cfg).runs)} runs over 1 budget" in planned
    assert f"{len(shapes_plan(cfg).runs)} runs over {len(cfg.sweep.budgets)} budgets" in planned
    assert not out.exists()  # nothing trained, nothing written


def test_pack_auto_is_one_on_a_cpu_and_bad_values_name_the_flag():
    import jax

    from scaling.sweep.pool import default_pack, parse_pack

    assert parse_pack("auto") is None and parse_pack("3") == 3
    assert default_pack() == (1 if jax.default_backend() == "cpu" else 8)
    for bad in ("0", "-2", "many"):
        with pytest.raises(ValueError, match=f"--pack='{bad}' must be a positive integer or 'auto'"):
            parse_pack(bad)
