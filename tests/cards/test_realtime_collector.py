"""The real-time path's collector: up to `writers` batches are written at once, and events that
arrive while every writer is busy wait and go together into the next batch (a writer stand-in
that holds each batch until released; no database)."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace
from typing import Any

import pytest

from beyondbank.cards import realtime


class _HeldWriter:
    """Records each batch's txn_ids and holds it until `release` is set; answers no_reward."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []
        self.release = threading.Event()
        self.most_at_once = 0
        self._in_flight = 0
        self._lock = threading.Lock()

    def write(self, batch: list[Any]) -> None:
        with self._lock:
            self._in_flight += 1
            self.most_at_once = max(self.most_at_once, self._in_flight)
            self.batches.append([p.event.txn_id for p in batch])
        assert self.release.wait(10)
        for pending in batch:
            pending.result = realtime.EventResult(pending.event.txn_id, "no_reward", [], None, None)
        with self._lock:
            self._in_flight -= 1


def _pending(txn_id: str) -> Any:
    return realtime._Pending(SimpleNamespace(txn_id=txn_id), None, None)


def _waves(writers: int) -> tuple[_HeldWriter, list[str]]:
    """Event 1, then 2 while 1 is written, then 3–5 while both are; then the writer lets go."""
    writer = _HeldWriter()

    async def scenario() -> list[str]:
        collector = realtime.Collector(writer, writers=writers)
        tasks = []
        for wave in (["1"], ["2"], ["3", "4", "5"]):
            tasks += [asyncio.create_task(collector.submit(_pending(t))) for t in wave]
            await asyncio.sleep(0.1)
        writer.release.set()
        return [r.txn_id for r in await asyncio.gather(*tasks)]

    with ThreadPoolExecutor(max_workers=1) as pool:
        answered = pool.submit(asyncio.run, scenario()).result()
    return writer, answered


@pytest.mark.parametrize(
    ("writers", "batches", "at_once"),
    [
        (2, [["1"], ["2"], ["3", "4", "5"]], 2),
        (1, [["1"], ["2", "3", "4", "5"]], 1),
    ],
)
def test_batches_are_written_by_at_most_so_many_writers_at_once(
    writers: int, batches: list[list[str]], at_once: int
) -> None:
    writer, answered = _waves(writers)
    assert writer.batches == batches
    assert writer.most_at_once == at_once
    assert answered == ["1", "2", "3", "4", "5"]  # each event its own answer
