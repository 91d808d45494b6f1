"""Optional features and the extras that install their libraries: a missing one is a
one-line error naming the extra (`pip install 'scaling[EXTRA]'`), raised before any
compute is spent."""

from __future__ import annotations

import importlib.util


class MissingExtraError(ImportError, ValueError):
    """An optional feature's library is not installed (a ValueError too, so the CLI
    reports it in one line)."""


def require(module: str, extra: str, what: str) -> None:
    """Raise MissingExtraError unless `module` is importable."""
    if importlib.util.find_spec(module) is None:
        raise MissingExtraError(f"{what} needs {module}, which is not installed: pip install 'scaling[{extra}]'")
