"""Races for the tests that prove concurrency on PostgreSQL: real threads released together."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy import Engine

from beyondbank.core.clock import Clock
from beyondbank.core.errors import Problem
from beyondbank.core.uow import UnitOfWork, make_session_factory

T = TypeVar("T")


def together(count: int, attempt: Callable[[int], T]) -> list[T | Problem]:
    """`attempt(i)` in `count` threads released at once by a barrier. A Problem is an answer
    (a refusal), kept as the result; anything else raised is a bug, and fails the test."""
    barrier = threading.Barrier(count)
    results: list[T | Problem | None] = [None] * count
    crashes: list[BaseException] = []

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = attempt(i)
        except Problem as problem:
            results[i] = problem
        except BaseException as crash:
            crashes.append(crash)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a racing call hung"
    assert crashes == [], crashes
    return [r for r in results if r is not None]


def in_units(
    engine: Engine,
    clock: Clock,
    count: int,
    attempt: Callable[[UnitOfWork, int], T],
    *,
    commit: bool = False,
) -> list[T | Problem]:
    """`together`, each thread in a unit of work of its own (committed after, if `commit`)."""
    factory = make_session_factory(engine)

    def run(i: int) -> T:
        with UnitOfWork(factory, clock) as uow:
            result = attempt(uow, i)
            if commit:
                uow.commit()
            return result

    return together(count, run)
