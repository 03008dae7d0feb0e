"""The concurrent single path's workers, importable by the processes the benchmark starts."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, text

from beyondbank.core.clock import SystemClock
from beyondbank.core.db import make_engine
from beyondbank.core.money import Money
from beyondbank.core.uow import UnitOfWork, make_session_factory
from beyondbank.ledger import service as ledger

MEMBERS = 1_000


@dataclass
class Books:
    receivable: int
    expense: int
    members: list[int]


def single_worker(
    engine: Engine,
    books: Books,
    worker: int,
    workers: int,
    transactions: int,
    hot: bool,
    keys: str = "threads",
) -> tuple[float, float]:
    """One API worker's share of the single path, on a connection of its own: when it started
    and ended (wall clock, comparable between processes)."""
    factory = make_session_factory(engine)
    clock = SystemClock()
    members = books.members
    started = time.time()
    for i in range(worker, transactions, workers):
        amount = Money(50 + i % 17, "GBP")
        # Hot: every transaction touches the bank's one expense account, as rewards do.
        # Spread: member-to-member transfers, which share no account between workers.
        debit = books.expense if hot else members[(2 * i) % MEMBERS]
        with UnitOfWork(factory, clock) as uow:
            ledger.post(
                uow,
                ledger.Draft(
                    key=f"concurrent:{keys}:{hot}:{i}",
                    kind="reward",
                    legs=(
                        ledger.Leg.debit(debit, amount),
                        ledger.Leg.credit(members[(2 * i + 1) % MEMBERS], amount),
                    ),
                ),
            )
            uow.commit()
    return started, time.time()


def single_process(
    url: str,
    options: str,
    start: Any,
    books: Books,
    worker: int,
    workers: int,
    transactions: int,
    hot: bool,
) -> tuple[float, float]:
    """`single_worker` in a process of its own, with its own engine (as an API worker has),
    connected before the start (a barrier shared by the processes) so that starting Python and
    connecting are not timed."""
    engine = make_engine(url, connect_args={"options": options})
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        start.wait()
        return single_worker(engine, books, worker, workers, transactions, hot, "processes")
    finally:
        engine.dispose()
