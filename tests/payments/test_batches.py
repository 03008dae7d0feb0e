"""Calls combined into batches (`payments.batches`): each caller gets its own answer, whoever
arrives while a batch runs goes in the next one, and a failed batch frees the lead."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from beyondbank.payments.batches import Batches, BatchFailed


def _doubled(items: list[int]) -> list[int]:
    return [2 * i for i in items]


def test_a_call_alone_runs_at_once_as_a_batch_of_one() -> None:
    sizes: list[int] = []

    def run(items: list[int]) -> list[int]:
        sizes.append(len(items))
        return _doubled(items)

    batches: Batches[int, int] = Batches(limit=8)
    assert [batches.submit(i, run) for i in (1, 2, 3)] == [2, 4, 6]
    assert sizes == [1, 1, 1]


def _crowd(
    batches: Batches[int, int], count: int, run: Callable[[list[int]], list[int]]
) -> dict[int, int]:
    """`count` threads submit while the first batch is held until the others wait."""
    answers: dict[int, int] = {}
    errors: list[BaseException] = []

    def call(i: int) -> None:
        try:
            answers[i] = batches.submit(i, run)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=call, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not any(t.is_alive() for t in threads), "a call hung"
    assert errors == []
    return answers


def _held_until(
    batches: Batches[int, int], waiting: int, sizes: list[int]
) -> Callable[[list[int]], list[int]]:
    """A run whose first batch waits until `waiting` calls queue behind it."""

    def run(items: list[int]) -> list[int]:
        if not sizes:
            deadline = time.monotonic() + 10
            while len(batches._waiting) < waiting and time.monotonic() < deadline:
                time.sleep(0.001)
        sizes.append(len(items))
        return _doubled(items)

    return run


def test_calls_that_arrive_during_a_batch_go_together_in_the_next() -> None:
    batches: Batches[int, int] = Batches(limit=32)
    sizes: list[int] = []
    answers = _crowd(batches, 12, _held_until(batches, 11, sizes))
    assert answers == {i: 2 * i for i in range(12)}
    assert sizes == [1, 11]


def test_a_batch_holds_at_most_its_limit() -> None:
    batches: Batches[int, int] = Batches(limit=4)
    sizes: list[int] = []
    answers = _crowd(batches, 10, _held_until(batches, 9, sizes))
    assert answers == {i: 2 * i for i in range(10)}
    assert sizes == [1, 4, 4, 1]


def test_a_failed_batch_fails_its_calls_and_frees_the_lead() -> None:
    batches: Batches[int, int] = Batches(limit=8)
    sizes: list[int] = []
    held = _held_until(batches, 2, sizes)

    def run(items: list[int]) -> list[int]:
        if sizes:  # the second batch: the two calls that waited behind the first
            sizes.append(len(items))
            raise ConnectionError("the database went away")
        return held(items)

    outcomes: dict[int, object] = {}

    def call(i: int) -> None:
        try:
            outcomes[i] = batches.submit(i, run)
        except (ConnectionError, BatchFailed) as exc:
            outcomes[i] = type(exc)

    first = threading.Thread(target=call, args=(0,))
    first.start()
    while not batches._running:
        time.sleep(0.001)  # the first call leads its batch before the others come
    others = [threading.Thread(target=call, args=(i,)) for i in (1, 2)]
    for thread in [*others]:
        thread.start()
    for thread in [first, *others]:
        thread.join(10)
    assert sizes == [1, 2]
    assert outcomes[0] == 0
    # The second batch's leader meets the error itself; the call that waited on it is told so.
    assert sorted(map(str, (outcomes[1], outcomes[2]))) == sorted(
        map(str, (ConnectionError, BatchFailed))
    )
    assert batches.submit(3, _doubled) == 6  # nobody holds the lead any more


def test_a_run_must_answer_every_call() -> None:
    batches: Batches[int, int] = Batches(limit=8)
    with pytest.raises(RuntimeError, match="0 answers for a batch of 1"):
        batches.submit(1, lambda items: [])


def test_a_batch_holds_at_least_one_call() -> None:
    with pytest.raises(ValueError, match="at least one call"):
        Batches(limit=0)
