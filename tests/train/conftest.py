"""Fixtures shared by tests/train: one reference run of the tiny config, trained in-process."""

from __future__ import annotations

import pytest
from train_helpers import RUN

from scaling.train import train


@pytest.fixture(scope="session")
def reference(tmp_path_factory):
    """The uninterrupted run of train_helpers.RUN (12 steps, 8 devices): (result, run dir)."""
    out = tmp_path_factory.mktemp("train") / "reference"
    result = train(RUN, out)
    assert result.status == "done", result.error
    return result, out
