"""Silence Orbax's two warnings per read-only open ("read only", "save_interval_steps=0"):
every checkpoint restore here opens the run read-only on purpose, so they are noise."""

from __future__ import annotations

import contextlib
import logging


class _ReadOnlyNoise(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        return not ("read_only=True" in msg or "is read only" in msg)


_FILTER = _ReadOnlyNoise()


@contextlib.contextmanager
def quiet_read_only():
    logger = logging.getLogger("absl")
    logger.addFilter(_FILTER)
    try:
        yield
    finally:
        logger.removeFilter(_FILTER)
