"""Work handed to worker threads in order: Polars lets go of the GIL, so a second core helps."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def ahead(items: Iterator[T], name: str = "ahead") -> Generator[T, None, None]:
    """The same items, the next one made on a worker thread while the caller works on this one.

    One item ahead at most: memory grows by one item, not by the whole sequence. Closing the
    generator waits for the item being made, then stops."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix=name) as worker:
        upcoming: Future[T] = worker.submit(next, items)
        while True:
            try:
                item = upcoming.result()
            except StopIteration:
                return
            upcoming = worker.submit(next, items)
            yield item


def ordered_map(
    work: Callable[[T], R], items: Iterable[T], workers: int, name: str = "map"
) -> Generator[R, None, None]:
    """work(item) for each item, `workers` at a time on worker threads, handed back in the
    items' order. At most `workers` results wait at any time, so memory stays bounded."""
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix=name) as pool:
        pending: deque[Future[R]] = deque()
        for item in items:
            pending.append(pool.submit(work, item))
            if len(pending) >= workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
