"""A guard: `scaling.interpolate` builds on `scaling.train`'s public API only. Every import
of the trainer in its source is `from scaling.train import <public name>`, never a
private module (`scaling.train.step`, `.trainer`, `.mesh`, ...), so the trainer's
internals can change without breaking weight-space analysis."""

from __future__ import annotations

import ast
from pathlib import Path

import scaling.interpolate
import scaling.train

PACKAGE = Path(scaling.interpolate.__file__).parent


def trainer_imports(source: str) -> list[tuple[int, str, tuple[str, ...]]]:
    """(line, module, names) of every import of scaling.train or below in `source`,
    including `importlib.import_module("...")` / `__import__("...")` with a literal name."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module, tuple(a.name for a in node.names)))
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name, ()) for a in node.names]
        elif (
            isinstance(node, ast.Call)
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
            and getattr(node.func, "attr", getattr(node.func, "id", None)) in ("import_module", "__import__")
        ):
            found.append((node.lineno, node.args[0].value, ()))
    return [f for f in found if f[1] == "scaling.train" or f[1].startswith("scaling.train.")]


def violations(source: str) -> list[str]:
    out = []
    for line, module, names in trainer_imports(source):
        if module != "scaling.train" or not names:
            out.append(f"line {line}: imports {module} (use `from scaling.train import ...`)")
        out += [f"line {line}: {n!r} is not in scaling.train.__all__" for n in names if n not in scaling.train.__all__]
    return out


def test_interpolate_imports_only_public_trainer_names():
    files = sorted(PACKAGE.glob("*.py"))
    assert len(files) >= 6
    used = set()
    for path in files:
        source = path.read_text()
        assert violations(source) == [], path.name
        used |= {n for _, _, names in trainer_imports(source) for n in names}
    assert {"evaluator", "load_params", "checkpoint_steps", "param_shapes"} <= used  # the guard sees them


def test_the_guard_catches_reaching_back_in():
    bad = (
        "from scaling.train.step import program\n"
        "import scaling.train.mesh\n"
        "def f():\n    from scaling.train import eval_arrays\n"
        "import importlib\nimportlib.import_module('scaling.train.trainer')\n"
    )
    found = violations(bad)
    assert [v.split(":")[0] for v in found] == ["line 1", "line 1", "line 2", "line 4", "line 6"], found
    assert found[0].startswith("line 1: imports scaling.train.step") and "'program' is not" in found[1]
    assert "'eval_arrays' is not in scaling.train.__all__" in found[3]
    assert violations("from scaling.train import evaluator, load_params\nimport scaling.analysis\n") == []
