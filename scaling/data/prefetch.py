"""Prefetcher: compute batches for upcoming steps on a background thread.

    with Prefetcher(lambda step: ds.train_batch(step, B, pi, pc), start_step=s, depth=2) as batches:
        for step, batch in batches:
            ...

A bounded queue (depth items) keeps at most `depth` batches ahead; an
exception raised while producing a batch is re-raised in the consumer when it
reaches that step; close() stops the thread and joins it.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any


class _Failure:
    def __init__(self, error: BaseException) -> None:
        self.error = error


_DONE = object()


def _put(q: queue.Queue, stop: threading.Event, item) -> bool:
    while not stop.is_set():
        try:
            q.put(item, timeout=0.05)
            return True
        except queue.Full:
            continue
    return False


def _work(fn, q: queue.Queue, stop: threading.Event, step: int, stop_step: int | None) -> None:
    while not stop.is_set() and (stop_step is None or step < stop_step):
        try:
            item = (step, fn(step))
        except BaseException as err:  # handed to the consumer, which re-raises it
            _put(q, stop, _Failure(err))
            return
        if not _put(q, stop, item):
            return
        step += 1
    _put(q, stop, _DONE)


class Prefetcher(Iterator[tuple[int, Any]]):
    """Iterator of (step, fn(step)) for step = start_step, start_step + 1, ... (up to stop_step, exclusive)."""

    def __init__(
        self,
        fn: Callable[[int], Any],
        start_step: int = 0,
        depth: int = 2,
        stop_step: int | None = None,
    ) -> None:
        if isinstance(depth, bool) or not isinstance(depth, int) or depth < 1:
            raise ValueError(f"Prefetcher depth must be a positive integer, got {depth!r}")
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._finished = False
        # The worker holds the queue and the event, not self: a Prefetcher dropped
        # without close() is collected, and __del__ stops its thread.
        self._thread = threading.Thread(
            target=_work,
            args=(fn, self._queue, self._stop, int(start_step), stop_step),
            name="scaling-data-prefetch",
            daemon=True,
        )
        self._thread.start()

    def __iter__(self) -> Prefetcher:
        return self

    def __next__(self) -> tuple[int, Any]:
        if self._finished:
            raise StopIteration
        while True:
            try:
                item = self._queue.get(timeout=0.1)
                break
            except queue.Empty:
                if not self._thread.is_alive() and self._queue.empty():
                    self._finished = True
                    raise StopIteration from None
        if item is _DONE:
            self._finished = True
            self.close()
            raise StopIteration
        if isinstance(item, _Failure):
            self._finished = True
            self.close()
            raise item.error
        return item

    def close(self) -> None:
        """Stop the worker and wait for it (idempotent)."""
        self._stop.set()
        while True:  # unblock a worker waiting on a full queue
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        if self._thread is not threading.current_thread():
            self._thread.join()
        self._finished = True

    def __enter__(self) -> Prefetcher:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self._stop.set()
        except Exception:
            pass
