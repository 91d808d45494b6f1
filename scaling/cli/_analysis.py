"""Helpers shared by `scaling fit`, `scaling predict` and `scaling optimal`."""

from __future__ import annotations

import json
import math
from pathlib import Path


def read_fit(path):
    """A FitResult from a JSON file written by `scaling fit --json`, with clear errors."""
    from scaling.analysis.results import FitResult

    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"no such fit file: {p}")
    try:
        d = json.loads(p.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{p} is not valid JSON ({err}); write it with `scaling fit ... --json {p}`") from None
    if not isinstance(d, dict) or "law" not in d or "params" not in d:
        raise ValueError(f"{p} is not a fit file: it needs the keys 'law' and 'params' (from `scaling fit --json`)")
    return FitResult.from_dict(d)


def write_json(path, payload: dict) -> None:
    """Write JSON atomically (temp file, then rename)."""
    from scaling.atomic import write_json as write

    print(f"wrote {write(path, payload)}")


def jsonable(value):
    """numpy scalars/arrays -> floats/lists (NaN kept as NaN)."""
    import numpy as np

    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    arr = np.asarray(value)
    if arr.ndim == 0:
        v = arr.item()
        return float(v) if isinstance(v, (float, int)) and not isinstance(v, bool) else v
    return arr.tolist()


def print_rows(rows: list[dict], columns: list[str]) -> None:
    """A plain aligned table."""

    def fmt(v):
        if isinstance(v, float):
            return "nan" if math.isnan(v) else f"{v:.6g}"
        return str(v)

    cells = [[fmt(r.get(c, "")) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    print("  ".join(c.rjust(w) for c, w in zip(columns, widths)))
    for row in cells:
        print("  ".join(v.rjust(w) for v, w in zip(row, widths)))


def positive_floats(values, name: str) -> list[float]:
    out = []
    for v in values:
        try:
            x = float(v)
        except ValueError:
            raise ValueError(f"--{name} {v!r} is not a number") from None
        if not x > 0 or math.isinf(x):
            raise ValueError(f"--{name} must be finite and positive; got {v}")
        out.append(x)
    return out
