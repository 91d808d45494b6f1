"""The example notebook runs top to bottom against the committed quickstart results
(in quick mode: one fit start, 100 bootstrap refits), and is committed without outputs."""

from __future__ import annotations

import json

import pytest
from figure_helpers import REPO

NOTEBOOK = REPO / "notebooks" / "analysis.ipynb"


def test_notebook_is_committed_without_outputs():
    nb = json.loads(NOTEBOOK.read_text())
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [] and cell["execution_count"] is None


@pytest.mark.slow
def test_notebook_executes(synthetic_store, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    results = REPO / "results" / "quickstart"
    if not (results / "runs.csv").exists():  # before a quickstart is committed
        results = synthetic_store
    monkeypatch.setenv("SCALING_RESULTS", str(results))
    monkeypatch.setenv("SCALING_FIGURES_QUICK", "1")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(REPO)}}
    )
    client.execute()  # raises CellExecutionError naming the cell that failed
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors
    printed = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert f"results: {results.resolve()}" in printed
