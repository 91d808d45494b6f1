"""The committed quickstart results (results/quickstart/): the shape the analysis and
the notebook rely on, without training anything."""

from __future__ import annotations

from pathlib import Path

import pytest

from scaling.sweep import CURVE_COLUMNS, RUN_COLUMNS, load_sweep_config, plan_sweep

RESULTS = Path(__file__).resolve().parents[2] / "results" / "quickstart"

pytestmark = pytest.mark.skipif(not (RESULTS / "runs.csv").exists(), reason="no committed quickstart results")


def test_committed_files_only():
    files = {p.name for p in RESULTS.iterdir()}
    assert {"runs.csv", "curves.csv", "sweep.toml", "manifest.json"} <= files
    assert not {p for p in files if p not in {"runs.csv", "curves.csv", "sweep.toml", "manifest.json",
                                              "isoflop.png", ".gitignore", "runs", "interpolation",
                                              "lr_tuning.json", "tables.json"}}  # fmt: skip
    # experiments/weight_path.sh adds the weight-space paths figure 7 draws: small JSON only
    interp = RESULTS / "interpolation"
    if interp.exists():
        assert all(f.suffix == ".json" and f.stat().st_size < 100_000 for f in interp.iterdir())
    assert (RESULTS / ".gitignore").read_text().strip().endswith("runs/")  # checkpoints never committed


def test_runs_match_their_sweep_and_have_interior_minima():
    pd = pytest.importorskip("pandas")
    from scaling.analysis.isoflop import isoflop_analysis
    from scaling.analysis.table import load_table

    runs = pd.read_csv(RESULTS / "runs.csv")
    assert tuple(runs.columns) == RUN_COLUMNS
    assert tuple(pd.read_csv(RESULTS / "curves.csv").columns) == CURVE_COLUMNS
    assert (runs["status"] == "done").all()
    plan = plan_sweep(load_sweep_config(RESULTS / "sweep.toml"))  # the law runs, at their tuned LRs
    # The table is this sweep's plan (compared by shape, not id: ids also hash the trainer's
    # defaults, which may move after the results were made).
    law = runs[runs["plan_kind"] != "lr_tune"]
    planned = [(r.width, r.depth, r.budget, r.steps, r.lr) for r in plan.runs]
    assert list(zip(law["width"], law["depth"], law["budget"], law["steps"], law["lr"])) == planned
    # the bar: >= 5 budgets over >= 1.5 decades, >= 5 sizes each
    sizes = law.groupby("budget")["params_nonembedding"].nunique()
    assert len(sizes) >= 5 and (sizes >= 5).all()
    assert law["budget"].max() / law["budget"].min() >= 10**1.5 * 0.999
    # the tuning runs: an LR grid per width at the smallest budget, left out of the law table
    tune = runs[runs["plan_kind"] == "lr_tune"]
    assert set(tune["budget"]) == {law["budget"].min()} and tune.groupby("width")["lr"].nunique().min() >= 3
    table = load_table(RESULTS)
    assert len(table) == len(law) and not set(table["run_id"]) & set(tune["run_id"])
    iso = isoflop_analysis(load_table(RESULTS), budget="budget", n_boot=500, seed=0)
    # every budget's minimum lies inside its sizes (3 seeds per size; the smallest budget
    # reaches width 4), so all five enter the exponent fit, and its 95% interval is
    # narrower than 0.3 (the bar; one seed per size gave 0.49)
    assert all(p.interior and p.convex for p in iso.profiles), iso.to_frame()
    assert len(iso.used) == 5
    lo, hi = iso.n_opt.exponent_interval
    assert lo < iso.a < hi and hi - lo < 0.3, (iso.a, lo, hi)
    assert 0.5 < iso.a < 1.0


def test_committed_corpus_is_the_embedded_default():
    import json

    from scaling.cli.quickstart import corpus_check

    manifest = json.loads((RESULTS / "manifest.json").read_text())
    assert manifest["data"]["source"] == "embedded"
    assert manifest["data"]["corpus_hash"] == "cb7ab91e42d94a7154124da6cd58b47ac6853622080f68edb8c728f9f6c8c344"
    assert "committed reference" in corpus_check(RESULTS)


def test_quickstart_figure_and_family_optimum(tmp_path):
    """The quickstart's own analysis pieces on the committed tables: the figure is drawn,
    and the law's optimum at 10x the budget is a family member with D = C / flops_per_token."""
    import shutil

    from scaling.analysis.isoflop import isoflop_analysis
    from scaling.analysis.table import load_table
    from scaling.cli.quickstart import isoflop_figure, law_optimum_on_family
    from scaling.model import ModelConfig, flops_per_token
    from scaling.sweep.plan import family_sizes

    for name in ("runs.csv", "curves.csv", "sweep.toml"):
        shutil.copy(RESULTS / name, tmp_path / name)
    config = load_sweep_config(tmp_path / "sweep.toml")
    iso = isoflop_analysis(load_table(tmp_path), budget="budget", n_boot=50)

    class Law:  # the shape of a FitResult that the helper reads
        law = "chinchilla"
        params = {"E": 1.6, "A": 44.0, "B": 2.9e7, "alpha": 0.59, "beta": 1.41}

    target = 10 * max(config.sweep.budgets)
    best = law_optimum_on_family(Law, config, target)
    widest = max(s.width for s in family_sizes(config))
    assert config.family.widths[0] <= best["width"] <= 8 * widest and best["depth"] == 2
    model = ModelConfig(width=best["width"], depth=2, head_dim=config.base.model["head_dim"], seq_len=128)
    assert best["D"] == pytest.approx(target / flops_per_token(model, "exact"))
    isoflop_figure(iso, tmp_path / "isoflop.png", target=target, chinchilla=(best["N"], best["D"]))
    assert (tmp_path / "isoflop.png").stat().st_size > 10_000
