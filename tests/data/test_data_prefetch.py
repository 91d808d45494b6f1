"""Prefetcher: order, bounded look-ahead, errors re-raised in the consumer, clean shutdown."""

from __future__ import annotations

import time

import pytest

from scaling.data import Prefetcher


def test_yields_steps_in_order_from_start_step():
    with Prefetcher(lambda s: s * s, start_step=5, depth=2) as it:
        got = [next(it) for _ in range(6)]
    assert got == [(s, s * s) for s in range(5, 11)]


def test_stop_step_ends_iteration():
    assert list(Prefetcher(lambda s: -s, start_step=2, stop_step=5)) == [(2, -2), (3, -3), (4, -4)]


def test_look_ahead_is_bounded_by_depth():
    calls = []
    it = Prefetcher(lambda s: calls.append(s) or s, start_step=0, depth=3)
    time.sleep(0.3)
    # depth items queued, plus at most one computed and waiting for room
    assert len(calls) <= 3 + 1
    assert next(it) == (0, 0)
    it.close()


def test_exception_is_reraised_in_the_consumer_at_its_step():
    def fn(step):
        if step == 3:
            raise RuntimeError("bad shard at step 3")
        return step

    it = Prefetcher(fn, start_step=0, depth=2)
    assert [next(it) for _ in range(3)] == [(0, 0), (1, 1), (2, 2)]
    with pytest.raises(RuntimeError, match="bad shard at step 3"):
        next(it)
    with pytest.raises(StopIteration):
        next(it)


def test_close_stops_the_thread_while_the_queue_is_full():
    it = Prefetcher(lambda s: s, depth=1)
    time.sleep(0.1)  # worker now blocked on the full queue
    it.close()
    it.close()  # idempotent
    assert not it._thread.is_alive()
    with pytest.raises(StopIteration):
        next(it)


def test_depth_must_be_positive():
    with pytest.raises(ValueError, match="depth"):
        Prefetcher(lambda s: s, depth=0)


def test_a_dropped_prefetcher_stops_its_thread():
    import gc

    it = Prefetcher(lambda s: s, depth=1)
    thread = it._thread
    del it
    gc.collect()
    thread.join(timeout=2)
    assert not thread.is_alive()
