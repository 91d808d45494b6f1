"""One tiny training run (see interp_helpers.RUN), shared by every interpolation test:
training dominates their time. Trained by the trainer's Python API on its default mesh
(all 8 fake CPU devices on the data axis)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from interp_helpers import RUN


@pytest.fixture(scope="session")
def run_dir(tmp_path_factory) -> Path:
    from scaling.train import train

    out = tmp_path_factory.mktemp("interpolate") / "tiny"
    result = train(RUN, out)
    assert result.status == "done", result
    return out


@pytest.fixture(scope="session")
def metrics(run_dir) -> dict[int, dict]:
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return {r["step"]: r for r in rows}
