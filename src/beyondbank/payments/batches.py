"""Calls from many threads combined into batches: whoever finds no batch running runs one with
every call waiting, the others wait for their answers, and the next waiter leads the next batch.

This is group commit done by the callers: under load the batches grow by themselves (whatever
arrived while one ran), and a call alone runs at once, as a batch of one, with no timer."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class BatchFailed(RuntimeError):
    """The batch this call was in raised (the leader's thread re-raises the error itself)."""


class _Call(Generic[T, R]):
    __slots__ = ("answer", "error", "item", "lead", "ready")

    def __init__(self, item: T) -> None:
        self.item = item
        self.ready = threading.Event()
        self.lead = False  # woken to lead the next batch rather than with an answer
        self.answer: R | None = None
        self.error: BaseException | None = None


class Batches(Generic[T, R]):
    """`submit(item, run)` answers `run([..., item, ...])`'s answer for `item`, where `run` is
    the leading caller's own (each caller brings one: its connection, say); `run` answers one
    result per item, in order. At most `limit` items a batch."""

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("a batch holds at least one call")
        self.limit = limit
        self._lock = threading.Lock()
        self._waiting: list[_Call[T, R]] = []
        self._running = False  # False only with nobody waiting

    def submit(self, item: T, run: Callable[[list[T]], list[R]]) -> R:
        call: _Call[T, R] = _Call(item)
        with self._lock:
            self._waiting.append(call)
            lead = not self._running
            self._running = True
        if not lead:
            call.ready.wait()
        if call.lead or lead:
            self._lead(run)
        if call.error is not None:
            raise BatchFailed("the batch of this call failed") from call.error
        return call.answer  # type: ignore[return-value]

    def _lead(self, run: Callable[[list[T]], list[R]]) -> None:
        """Run the batch at the head of the queue (the leader's own call is its first), answer
        its calls, and hand the lead to the first call waiting, if any."""
        with self._lock:
            batch = self._waiting[: self.limit]
            del self._waiting[: self.limit]
        try:
            answers = run([c.item for c in batch])
            if len(answers) != len(batch):
                raise RuntimeError(f"{len(answers)} answers for a batch of {len(batch)}")
        except BaseException as exc:
            for c in batch[1:]:
                c.error = exc
            raise
        else:
            for c, answer in zip(batch, answers, strict=True):
                c.answer = answer
        finally:
            self._hand_over()
            for c in batch[1:]:
                c.ready.set()

    def _hand_over(self) -> None:
        with self._lock:
            if self._waiting:
                following = self._waiting[0]
                following.lead = True
                following.ready.set()
            else:
                self._running = False
