"""Run the `scaling` command under mimalloc, a caching allocator, where one is installed.

Why: XLA:CPU allocates and frees its step buffers on every call. glibc's malloc returns
those large blocks to the kernel and takes them back as fresh zeroed pages, so a small
model's training step spends a fifth of its CPU time in page faults (1.5 million minor
faults in 20 steps at width 128, depth 4). A caching allocator keeps the pages: the same
step runs ~1.4x faster per CPU-second (benchmarks/results/peers.md). Numerics are
unchanged (the allocator only decides addresses; the quickstart's losses are identical).

An allocator can only be chosen before a process starts, so the console script re-executes
itself once with `LD_PRELOAD` set; child processes (sweep workers, multi-host launches)
inherit it. `SCALING_ALLOCATOR=system` turns this off. Linux only; elsewhere, or when the
library is missing, the command runs as it is.
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path

ENV = "SCALING_ALLOCATOR"
_LIB_NAMES = ("libmimalloc.so.3", "libmimalloc.so")


def mimalloc_library() -> Path | None:
    """Path of the mimalloc shared library of the `cmeel-mimalloc` wheel, if installed."""
    for entry in sys.path:
        lib = Path(entry or ".") / "cmeel.prefix" / "lib"
        for name in _LIB_NAMES:
            if (lib / name).is_file():
                return lib / name
    return None


def active_allocator() -> str:
    """ "mimalloc" when this process runs with it loaded, else "system"."""
    try:
        maps = Path("/proc/self/maps").read_text()
    except OSError:
        return "system"
    return "mimalloc" if "libmimalloc" in maps else "system"


def preload_env(environ: dict[str, str] | None = None) -> dict[str, str] | None:
    """The environment to re-execute with, or None when nothing should change."""
    env = dict(os.environ if environ is None else environ)
    if not sys.platform.startswith("linux") or env.get(ENV, "mimalloc") == "system":
        return None
    lib = mimalloc_library()
    preload = env.get("LD_PRELOAD", "")
    if lib is None or "libmimalloc" in preload:
        return None
    env["LD_PRELOAD"] = f"{lib}:{preload}" if preload else str(lib)
    env[ENV] = "mimalloc"
    return env


def run_cli(module: str = "scaling.cli.main") -> None:
    """Console-script entry point: re-exec under mimalloc once, then run `module`'s main()."""
    env = preload_env()
    if env is not None and active_allocator() == "system":
        try:
            os.execve(sys.executable, [sys.executable, "-m", module, *sys.argv[1:]], env)
        except OSError:
            pass  # could not re-exec: run with the system allocator
    sys.exit(importlib.import_module(module).main())
