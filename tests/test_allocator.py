"""The `scaling` command's allocator: mimalloc preloaded on Linux, off by SCALING_ALLOCATOR=system."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from scaling import allocator

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="LD_PRELOAD is Linux-only")
CHILD = "from scaling.allocator import active_allocator; print(active_allocator())"


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", allocator.ENV)}
    return env | extra


def test_mimalloc_library_is_installed_with_the_package():
    lib = allocator.mimalloc_library()
    assert lib is not None and lib.is_file() and "libmimalloc" in lib.name


def test_preload_env_names_the_library_and_keeps_other_preloads():
    env = allocator.preload_env(_clean_env(LD_PRELOAD="/x/libother.so"))
    assert env is not None
    first, rest = env["LD_PRELOAD"].split(":", 1)
    assert Path(first) == allocator.mimalloc_library() and rest == "/x/libother.so"
    assert env[allocator.ENV] == "mimalloc"


def test_preload_env_is_off_when_asked_or_already_loaded():
    assert allocator.preload_env(_clean_env(SCALING_ALLOCATOR="system")) is None
    loaded = allocator.preload_env(_clean_env())
    assert allocator.preload_env(loaded) is None  # no second re-exec


def test_a_process_started_with_the_env_runs_on_mimalloc_and_one_without_does_not():
    run = lambda env: subprocess.run(  # noqa: E731
        [sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, check=True
    ).stdout.strip()
    assert run(allocator.preload_env(_clean_env())) == "mimalloc"
    assert run(_clean_env()) == "system"


@pytest.mark.parametrize("setting, expected", [(None, "mimalloc"), ("system", "system")])
def test_console_entry_reexecs_under_mimalloc_unless_turned_off(tmp_path, setting, expected):
    """`run_cli` (the `scaling` script) re-executes once under mimalloc, then runs the CLI module."""
    (tmp_path / "probe_cli.py").write_text(
        "import sys\nfrom scaling.allocator import active_allocator\n"
        "def main():\n    print(active_allocator(), *sys.argv[1:])\n    return 0\n"
        "if __name__ == '__main__':\n    sys.exit(main())\n"
    )
    env = _clean_env(PYTHONPATH=os.pathsep.join([str(tmp_path), *sys.path]))
    if setting:
        env[allocator.ENV] = setting
    code = "import sys; sys.argv = ['scaling', 'fit', 'x.csv']; from scaling.allocator import run_cli; run_cli('probe_cli')"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [expected, "fit", "x.csv"]
