"""The README is the toolkit's front page: its commands and Python API must work as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()


def test_readme_opens_with_the_two_commands_and_ci_runs_the_test_one():
    block = re.search(r"```bash\n(.*?)```", README, re.S).group(1)
    commands = [c for c in (line.split("#")[0].strip() for line in block.splitlines()) if c]
    assert commands[0].endswith("uv run --frozen scaling quickstart")
    assert commands[1].endswith("uv run --frozen --extra test pytest")
    ci = (REPO / ".ci" / "run").read_text().strip().splitlines()
    assert ci[-1].strip() == commands[1], "the last line of .ci/run must be the README's test command, verbatim"
    for command in commands[:2]:  # each installs its own uv first, also under PEP 668 (user site)
        assert command.startswith("(python3 -m pip install -q uv 2>/dev/null || python3 -m pip install -q --user")
        assert "&& python3 -m uv run --frozen" in command


@pytest.mark.slow
def test_readme_python_api_block_runs(monkeypatch, capsys):
    code = re.search(r"```python\n(.*?)```", README, re.S).group(1)
    monkeypatch.chdir(REPO)
    exec(compile(code, "README.md", "exec"), {"__name__": "readme"})
    out = capsys.readouterr().out
    assert "law: chinchilla" in out and "tokens_per_param" in out and "parametric" in out
