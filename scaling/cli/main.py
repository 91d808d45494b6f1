"""Entry point of the `scaling` console command.

Subcommand modules are discovered in this package: any module defining
`register(subparsers)` adds its parser and sets `func` on it. Heavy imports (JAX,
the training stack) happen inside the handlers, so `scaling fit` stays light.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

import scaling
import scaling.cli as _cli_pkg


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="scaling",
        description="Scaling-law research toolkit: plan, train, fit, figure.",
    )
    parser.add_argument("--version", action="version", version=f"scaling {scaling.__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(_cli_pkg.__path__), key=lambda m: m.name):
        if info.name == "main" or info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{_cli_pkg.__name__}.{info.name}")
        register = getattr(module, "register", None)
        if register is not None:
            register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        result = args.func(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (ValueError, FileNotFoundError, FileExistsError, PermissionError) as err:
        # Bad input is reported as one clear line, not a traceback.
        print(f"scaling {args.command}: error: {err}", file=sys.stderr)
        return 2
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
