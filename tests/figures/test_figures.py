"""Every figure builds from a synthetic store, reruns are byte-identical, absent inputs
give skip notes, and `scaling figures` / a figure script run from the command line."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest
from figure_helpers import FIGURES, REPO


def _make_all():
    spec = importlib.util.spec_from_file_location("paper_figures.make_all", REPO / "paper_figures" / "make_all.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def built(synthetic_store, epoch_like, tmp_path_factory):
    """Every figure, drawn twice from scratch (analysis caches cleared in between)."""
    from scaling.plotting import analyses

    mp = pytest.MonkeyPatch()
    mp.setenv("SCALING_REFERENCE_DATA", str(epoch_like))
    outs = []
    try:
        for i in range(2):
            analyses.clear()
            out = tmp_path_factory.mktemp(f"figures{i}")
            made = _make_all().make_all(synthetic_store, out, verbose=False)
            outs.append((out, made))
    finally:
        mp.undo()
    return outs


def test_every_figure_builds(built):
    _, made = built[0]
    assert sorted(made) == sorted(FIGURES)
    for name in FIGURES:
        assert [p.name for p in made[name]] == [f"{name}.png", f"{name}.pdf"], name
        for p in made[name]:
            assert p.stat().st_size > 5000, p
            assert p.read_bytes()[:4] in (b"\x89PNG", b"%PDF")


def test_reruns_are_byte_identical(built):
    (_, made), (b, _) = built
    for name in FIGURES:
        for p in made[name]:
            assert p.read_bytes() == (b / p.name).read_bytes(), f"{p.name} differs between two runs"


def test_absent_inputs_are_skipped_with_a_note(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SCALING_REFERENCE_DATA", str(tmp_path / "nowhere"))
    empty = tmp_path / "empty"
    empty.mkdir()
    made = _make_all().make_all(empty, tmp_path / "out", only="fig1,fig2,fig3,fig4,fig5,fig7,fig8")
    assert all(paths == [] for paths in made.values())
    notes = capsys.readouterr().out
    for name in made:
        assert f"{name}: skipped: " in notes
    assert "runs.csv not found" in notes and "Epoch AI's Chinchilla data not found" in notes


def test_curves_without_weight_path_draw_the_curve_part(synthetic_store, tmp_path):
    import shutil

    store = tmp_path / "store"
    shutil.copytree(synthetic_store, store, ignore=shutil.ignore_patterns("interpolation"))
    made = _make_all().make_all(store, tmp_path / "out", only="fig7", verbose=False)
    assert len(made["fig7_interpolation"]) == 2


def test_cli_figures(synthetic_store, tmp_path, capsys):
    from scaling.cli.main import main

    assert main(["figures", str(synthetic_store), "--out", str(tmp_path), "--only", "fig1,fig7"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "fig1_isoflop.pdf",
        "fig1_isoflop.png",
        "fig7_interpolation.pdf",
        "fig7_interpolation.png",
    ]
    assert "2 of 2 figures written" in capsys.readouterr().out
    assert main(["figures", str(synthetic_store), "--only", "fig99"]) == 2  # unknown figure: a clear error
    capsys.readouterr()
    assert main(["figures", str(tmp_path / "nonexistent")]) == 2  # nothing drawn, a one-line error
    assert "nonexistent' does not exist" in capsys.readouterr().err


def test_figures_of_another_store_go_beside_it_not_over_the_committed_ones(synthetic_store, tmp_path):
    from scaling.plotting.figure import DEFAULT_OUT, DEFAULT_RESULTS, resolve_dirs

    assert resolve_dirs(None, None) == (DEFAULT_RESULTS, DEFAULT_OUT)
    assert resolve_dirs(synthetic_store, None) == (synthetic_store, synthetic_store / "figures")
    assert resolve_dirs(synthetic_store, tmp_path) == (synthetic_store, tmp_path)
    with pytest.raises(FileNotFoundError, match="has no runs.csv"):
        resolve_dirs(tmp_path, None)


def test_figure_script_runs_alone(synthetic_store, tmp_path):
    proc = subprocess.run(
        [sys.executable, str(REPO / "paper_figures" / "fig6_mup.py"), str(synthetic_store), "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "fig6_mup.png").stat().st_size > 0
    assert (tmp_path / "fig6_mup.pdf").stat().st_size > 0


def test_figures_read_the_law_runs_as_the_analysis_does():
    """LR-tuning runs (off-optimum by design) stay out of the figures' fits, as out of load_table's."""
    from scaling.analysis.table import load_table
    from scaling.plotting import load_results

    store = REPO / "results" / "quickstart"
    res = load_results(store)
    table = load_table(store)
    assert sorted(res.runs["run_id"]) == sorted(table["run_id"])
    assert "lr_tune" not in set(res.runs["plan_kind"]) and len(res.runs) == 102
    assert set(res.curves["run_id"]) <= set(res.runs["run_id"])
