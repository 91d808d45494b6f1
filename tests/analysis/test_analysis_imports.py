"""Import boundaries of `scaling.analysis`: a one-way, layered graph.

laws / table / levels -> engine -> results -> fit -> predictive (calibration) ->
uncertainty / compare -> optimal -> extrapolate -> approaches (with the numpy-only Approaches 1 and 2 beside them). A module imports only
from lower layers (function-level imports included), never a private name of another
module, and never the training stack: the analysis runs on published tables without
JAX training code, and importing it does not import JAX at all."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import scaling.analysis

PACKAGE = Path(scaling.analysis.__file__).parent
REPO = PACKAGE.parents[1]

# Layer of every module: a module may import only from strictly lower layers.
LAYERS = {
    "laws": 0,
    "table": 0,
    "allocation": 0,
    "loss_curves": 0,
    "schedules": 0,
    "levels": 0,
    "engine": 1,
    "synthetic": 1,
    "envelope": 1,
    "isoflop": 1,
    "curve_law": 1,
    "diagnostics": 1,
    "varpro": 2,
    "results": 2,
    "fit": 3,
    "predictive": 4,
    "uncertainty": 5,
    "compare": 5,
    "optimal": 6,
    "extrapolate": 7,
    "approaches": 8,
    # beyond Chinchilla: hyperparameter and data-constrained laws, active design
    "hparams": 6,
    "data_constrained": 6,
    "design": 8,  # reads extrapolate (the calibrated predictive interval)
}
# Packages the analysis must never import (the training stack and its libraries).
FORBIDDEN = ("scaling.train", "scaling.model", "scaling.sweep", "scaling.data", "scaling.interpolate",
             "scaling.sharding", "flax", "optax", "orbax")  # fmt: skip
# The one exception: the results store (JAX-free), whose torn-pair check load_table uses.
ALLOWED = ("scaling.sweep.store",)


def imports(source: str, module: str) -> list[tuple[int, str, tuple[str, ...]]]:
    """(line, absolute module, names) of every import in `source` (a module of
    scaling.analysis), at any depth (function bodies too)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = "scaling.analysis" if node.level == 1 else "scaling"
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            found.append((node.lineno, target, tuple(a.name for a in node.names)))
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name, ()) for a in node.names]
    return sorted(found)


def violations(source: str, module: str) -> list[str]:
    """Every breach of the boundaries in the source of scaling.analysis.<module>."""
    out = []
    for line, target, names in imports(source, module):
        if target not in ALLOWED and any(target == f or target.startswith(f + ".") for f in FORBIDDEN):
            out.append(f"line {line}: imports {target} (the training stack)")
            continue
        if target == "scaling.analysis":  # `from . import x`: x is a sibling module
            siblings = [(n, ()) for n in names]
        elif target.startswith("scaling.analysis."):
            siblings = [(target.removeprefix("scaling.analysis."), names)]
        else:
            if target.startswith("scaling.") or target == "scaling":
                out += [f"line {line}: private name {n!r} of {target}" for n in names if n.startswith("_")]
            continue
        for other, what in siblings:
            if other not in LAYERS:
                out.append(f"line {line}: imports scaling.analysis.{other}, which has no layer in LAYERS")
            elif other == module:
                continue
            elif LAYERS[other] >= LAYERS[module]:
                out.append(
                    f"line {line}: {module} (layer {LAYERS[module]}) imports {other} (layer {LAYERS[other]}): "
                    "a back-edge or sideways edge"
                )
            out += [f"line {line}: private name {n!r} of {other}" for n in what if n.startswith("_")]
    return out


def test_every_module_has_a_layer_and_respects_it():
    modules = {p.stem: p for p in PACKAGE.glob("*.py") if p.stem != "__init__"}
    assert set(modules) == set(LAYERS), "place new modules in LAYERS (and old ones out of it)"
    for name, path in sorted(modules.items()):
        assert violations(path.read_text(), name) == [], name


def test_graph_is_one_way():
    """No circles: with every edge pointing to a strictly lower layer, none can exist;
    this checks the edges themselves, independently of the layer table."""
    edges = {}
    for path in PACKAGE.glob("*.py"):
        if path.stem == "__init__":
            continue
        targets = set()
        for _, target, names in imports(path.read_text(), path.stem):
            if target == "scaling.analysis":
                targets |= set(names)
            elif target.startswith("scaling.analysis."):
                targets.add(target.removeprefix("scaling.analysis."))
        edges[path.stem] = targets - {path.stem}
    done = set()

    def visit(node, stack):
        assert node not in stack, f"import circle: {' -> '.join([*stack, node])}"
        if node in done:
            return
        for nxt in edges.get(node, ()):
            visit(nxt, [*stack, node])
        done.add(node)

    for node in edges:
        visit(node, [])
    assert edges["approaches"] >= {"fit", "optimal", "uncertainty"} and not edges["laws"]  # the walk saw edges


def test_no_private_analysis_names_used_outside_their_module():
    """Nothing in the repository (package, CLI, figures, tests, benchmarks) imports a
    private name from a scaling.analysis module."""
    bad = []
    for root in ("scaling", "paper_figures", "tests", "benchmarks", "experiments"):
        for path in sorted((REPO / root).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("scaling.analysis"):
                    bad += [f"{path.relative_to(REPO)}:{node.lineno} {a.name}" for a in node.names if a.name[0] == "_"]
    assert bad == []


def test_importing_the_analysis_imports_neither_jax_nor_the_trainer():
    modules = sorted(p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__")
    code = (
        "import sys, importlib\n"
        f"for m in {modules!r}: importlib.import_module('scaling.analysis.' + m)\n"
        "import scaling.analysis as a\n"
        "[getattr(a, n) for n in a.__all__]\n"
        "import scaling.sweep.store\n"
        "print(sorted(m for m in sys.modules if m == 'jax' or m.startswith(('jax.', 'scaling.train', 'flax'))))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    assert out.stdout.strip() == "[]"


def test_lazy_exports_are_declared_for_editors():
    """__all__ lists exactly the lazy exports, and each is also imported under
    TYPE_CHECKING (so editors and type checkers resolve `from scaling.analysis import fit_law`)."""
    tree = ast.parse((PACKAGE / "__init__.py").read_text())
    declared = {}  # name -> module, from the TYPE_CHECKING block
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            for stmt in node.body:
                declared |= {a.name: stmt.module for a in stmt.names}
    assert sorted(scaling.analysis.__all__) == sorted(declared)
    for name, module in declared.items():  # the lazy lookup finds the same object
        assert getattr(scaling.analysis, name).__module__ == f"scaling.analysis.{module}", name


def test_the_guard_catches_breaches():
    bad = (
        "from .fit import fit_law\n"  # back-edge: engine is below fit
        "from .laws import _batch_log_loss\n"  # a private name of a lower layer
        "def f():\n    from scaling.train import evaluator\n"
        "from . import nowhere\n"
        "from scaling.runtime import _secret\n"
    )
    found = violations(bad, "engine")
    assert [v.split(":")[0] for v in found] == ["line 1", "line 2", "line 4", "line 5", "line 6"], found
    assert "engine (layer 1) imports fit (layer 3)" in found[0]
    assert "private name '_batch_log_loss' of laws" in found[1] and "training stack" in found[2]
    assert "no layer" in found[3] and "'_secret' of scaling.runtime" in found[4]
    assert violations("from .laws import get_law\nfrom .table import as_table\n", "engine") == []
