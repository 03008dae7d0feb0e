"""Work on worker threads comes back in order, holds only a bounded number of items, passes
errors on, and stops when the caller stops."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from beyondbank.core.threads import ahead, ordered_map


@settings(max_examples=30, deadline=None)
@given(items=st.lists(st.integers(), max_size=40), workers=st.integers(1, 4))
def test_ordered_map_keeps_the_order_whatever_finishes_first(
    items: list[int], workers: int
) -> None:
    def slow_for_small(n: int) -> int:
        time.sleep(0.001 * (n % 3))
        return n * 2

    assert list(ordered_map(slow_for_small, items, workers)) == [n * 2 for n in items]


def test_ordered_map_runs_at_most_its_workers_at_once_and_holds_no_more() -> None:
    running = 0
    most = 0
    lock = threading.Lock()
    taken = 0

    def source() -> Iterator[int]:
        nonlocal taken
        for n in range(20):
            taken += 1
            yield n

    def work(n: int) -> int:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        time.sleep(0.005)
        with lock:
            running -= 1
        return n

    results = ordered_map(work, source(), 3)
    assert next(results) == 0
    assert taken <= 3  # nothing read far ahead of what the caller takes
    assert list(results) == list(range(1, 20))
    assert most <= 3


def test_an_error_in_the_work_reaches_the_caller_in_its_place() -> None:
    def work(n: int) -> int:
        if n == 3:
            raise ValueError("bad item 3")
        return n

    results = ordered_map(work, range(6), 2)
    assert [next(results) for _ in range(3)] == [0, 1, 2]
    with pytest.raises(ValueError, match="bad item 3"):
        next(results)


def test_ahead_makes_the_next_item_while_the_caller_works() -> None:
    made: list[tuple[int, str]] = []

    def source() -> Iterator[int]:
        for n in range(3):
            made.append((n, threading.current_thread().name))
            yield n

    items = ahead(source(), "test-ahead")
    assert next(items) == 0
    time.sleep(0.05)
    assert [n for n, _ in made] == [0, 1]  # the second was made while the caller slept
    assert all(name.startswith("test-ahead") for _, name in made)
    assert list(items) == [1, 2]


def test_ahead_passes_errors_on_and_stops_when_closed() -> None:
    def failing() -> Iterator[int]:
        yield 1
        raise RuntimeError("the feed broke")

    items = ahead(failing())
    assert next(items) == 1
    with pytest.raises(RuntimeError, match="the feed broke"):
        next(items)

    endless = ahead(iter(range(10**9)))
    assert next(endless) == 0
    endless.close()  # returns: the worker finishes the item it was making and stops
