"""Ledger write throughput: `python -m bench.ledger` (run from the checkout with the venv).

Measures, on SQLite and PostgreSQL, in one run:

- the naive baseline the issue names: one ORM insert and one commit per posting;
- the single path: `ledger.post` + commit per transaction (two postings each), as the API posts;
- the bulk path: `bulk.post_many` for a batch of card-linked rewards (three postings each).

Each database starts empty (a fresh SQLite file; a fresh PostgreSQL schema), is migrated, and
gets the same accounts: one merchant receivable, the bank's benefit expense, and a thousand
members' cashback accounts. Figures are wall-clock, printed as a table, and optionally written
as JSON for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from rich.console import Console
from rich.progress import Progress
from rich.table import Table
from sqlalchemy import Engine, text

from bench.ledger import workers
from bench.ledger.workers import MEMBERS, Books
from beyondbank import schema
from beyondbank.core.clock import SystemClock
from beyondbank.core.db import make_engine
from beyondbank.core.money import Money
from beyondbank.core.uow import UnitOfWork, make_session_factory
from beyondbank.ledger import bulk, chart, verify
from beyondbank.ledger import service as ledger
from beyondbank.ledger.models import (
    LedgerTransaction,
    OwnerKind,
    Posting,
    TransactionStatus,
)

console = Console()
POSTGRES = os.environ.get("BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
SCHEMA = "bench_ledger"


@dataclass
class Figure:
    database: str
    path: str
    transactions: int
    postings: int
    seconds: float

    @property
    def postings_per_second(self) -> float:
        return self.postings / self.seconds

    @property
    def transactions_per_second(self) -> float:
        return self.transactions / self.seconds


@contextmanager
def database(kind: str) -> Iterator[Engine]:
    if kind == "sqlite":
        with tempfile.TemporaryDirectory(prefix="bench-ledger-") as tmp:
            engine = make_engine(f"sqlite:///{tmp}/ledger.db")
            schema.upgrade(engine)
            yield engine
            engine.dispose()
        return
    admin = make_engine(POSTGRES)
    with admin.begin() as conn:
        conn.execute(text(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"))
        conn.execute(text(f"CREATE SCHEMA {SCHEMA}"))
    engine = make_engine(POSTGRES, connect_args={"options": f"-csearch_path={SCHEMA}"})
    schema.upgrade(engine)
    try:
        yield engine
    finally:
        engine.dispose()
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"))
        admin.dispose()


def open_books(engine: Engine) -> Books:
    with UnitOfWork(make_session_factory(engine), SystemClock()) as uow:
        receivable = chart.receivable(uow, OwnerKind.MERCHANT, "mer_bench", "GBP")
        expense = chart.benefit_expense(uow, "GBP")
        members = [chart.member_cashback(uow, f"mbr_{i:05d}", "GBP") for i in range(MEMBERS)]
        uow.commit()
        return Books(receivable.id, expense.id, [m.id for m in members])


def naive(engine: Engine, postings: int, progress: Progress) -> Figure:
    """One ORM insert and one commit per posting, onto a transaction row made beforehand."""
    factory = make_session_factory(engine)
    now = datetime.now(UTC)
    with factory() as session:
        holder = LedgerTransaction(
            public_id="ltx_BENCHNAIVE",
            idempotency_key="bench-naive",
            fingerprint="0" * 64,
            kind="bench",
            status=TransactionStatus.POSTED,
            effective_at=now,
            created_at=now,
            created_by="bench",
            details={},
        )
        session.add(holder)
        session.commit()
        books = session.scalars(
            text("SELECT id FROM ledger_accounts ORDER BY id LIMIT 1")  # type: ignore[call-overload]
        ).one()
    task = progress.add_task(f"{engine.dialect.name}: naive", total=postings)
    started = time.perf_counter()
    with factory() as session:
        for i in range(postings):
            session.add(
                Posting(
                    transaction_id=holder.id,
                    account_id=books,
                    currency="GBP",
                    amount_minor=1 if i % 2 else -1,
                    pending=False,
                    effective_at=now,
                )
            )
            session.commit()
            progress.advance(task)
    return Figure(
        engine.dialect.name,
        "naive ORM insert + commit per posting",
        postings // 2,
        postings,
        time.perf_counter() - started,
    )


def single(engine: Engine, books: Books, transactions: int, progress: Progress) -> Figure:
    factory = make_session_factory(engine)
    clock = SystemClock()
    task = progress.add_task(f"{engine.dialect.name}: single path", total=transactions)
    started = time.perf_counter()
    for i in range(transactions):
        with UnitOfWork(factory, clock) as uow:
            amount = Money(50 + i % 17, "GBP")
            ledger.post(
                uow,
                ledger.Draft(
                    key=f"single:{i}",
                    kind="reward",
                    legs=(
                        ledger.Leg.debit(books.expense, amount),
                        ledger.Leg.credit(books.members[i % MEMBERS], amount),
                    ),
                    counterparty="mer_bench",
                    member=f"mbr_{i % MEMBERS:05d}",
                ),
            )
            uow.commit()
        progress.advance(task)
    return Figure(
        engine.dialect.name,
        "single: ledger.post + commit per transaction",
        transactions,
        2 * transactions,
        time.perf_counter() - started,
    )


def single_processes(transactions: int, count: int, books: Books, *, hot: bool) -> Figure:
    """The single path as N API worker processes run it: nobody waits for a GIL. They start
    together once each is up and connected; timed from then to the last one's last post."""
    context = multiprocessing.get_context("spawn")
    with context.Manager() as manager, ProcessPoolExecutor(count, mp_context=context) as pool:
        start = manager.Barrier(count)
        options = f"-csearch_path={SCHEMA}"
        spans = list(
            pool.map(
                workers.single_process,
                *zip(
                    *(
                        (POSTGRES, options, start, books, w, count, transactions, hot)
                        for w in range(count)
                    ),
                    strict=True,
                ),
            )
        )
    where = "one hot account in every transaction" if hot else "no account shared"
    return Figure(
        "postgresql",
        f"single: {count} worker processes, {where}",
        transactions,
        2 * transactions,
        max(end for _, end in spans) - min(start for start, _ in spans),
    )


def single_concurrent(
    engine: Engine, books: Books, transactions: int, count: int, *, hot: bool
) -> Figure:
    """The single path as N concurrent API requests run it, each on its own connection (threads:
    the database's work overlaps; Python's own work still takes turns on the GIL)."""
    started = time.perf_counter()
    with ThreadPoolExecutor(count) as pool:
        list(
            pool.map(
                lambda w: workers.single_worker(engine, books, w, count, transactions, hot),
                range(count),
            )
        )
    where = "one hot account in every transaction" if hot else "no account shared"
    return Figure(
        engine.dialect.name,
        f"single: {count} worker threads, {where}",
        transactions,
        2 * transactions,
        time.perf_counter() - started,
    )


def rewards(books: Books, n: int, start: datetime) -> Iterator[ledger.Draft]:
    for i in range(n):
        merchant_part, bank_part = 30 + i % 7, 20 + i % 3
        yield ledger.Draft(
            key=f"bulk:{i}",
            kind="reward",
            legs=(
                ledger.Leg.debit(books.receivable, Money(merchant_part, "GBP")),
                ledger.Leg.debit(books.expense, Money(bank_part, "GBP")),
                ledger.Leg.credit(
                    books.members[i % MEMBERS], Money(merchant_part + bank_part, "GBP")
                ),
            ),
            effective_at=start + timedelta(seconds=i),
            counterparty="mer_bench",
            member=f"mbr_{i % MEMBERS:05d}",
            reference=f"txn_{i}",
            details={"merchant_funded_minor": merchant_part},
        )


def bulk_path(engine: Engine, books: Books, transactions: int, progress: Progress) -> Figure:
    task = progress.add_task(f"{engine.dialect.name}: bulk path", total=transactions)
    started = time.perf_counter()
    with UnitOfWork(make_session_factory(engine), SystemClock()) as uow:
        result = bulk.post_many(
            uow,
            rewards(books, transactions, datetime(2026, 11, 1, tzinfo=UTC)),
            on_chunk=lambda r: progress.advance(task, r.offered),
        )
        uow.commit()
    seconds = time.perf_counter() - started
    assert result.created == transactions, result
    return Figure(
        engine.dialect.name,
        "bulk: post_many (COPY on PostgreSQL)",
        transactions,
        result.postings,
        seconds,
    )


def rerun(engine: Engine, books: Books, transactions: int) -> Figure:
    """The same batch again: every key is known, nothing is written (what a replay costs)."""
    started = time.perf_counter()
    with UnitOfWork(make_session_factory(engine), SystemClock()) as uow:
        result = bulk.post_many(
            uow, rewards(books, transactions, datetime(2026, 11, 1, tzinfo=UTC))
        )
        uow.commit()
    if (result.created, result.existing) != (0, transactions):
        raise SystemExit(f"the replay wrote something: {result}")
    return Figure(
        engine.dialect.name,
        "bulk replay: same batch again, nothing written",
        transactions,
        3 * transactions,
        time.perf_counter() - started,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--naive", type=int, default=4_000, help="postings for the baseline")
    parser.add_argument("--single", type=int, default=5_000, help="transactions, single path")
    parser.add_argument(
        "--workers",
        type=int,
        default=4,
        help="threads, then processes, for the concurrent single path",
    )
    parser.add_argument("--bulk", type=int, default=200_000, help="transactions, bulk path")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()

    figures: list[Figure] = []
    with Progress(console=console, transient=True) as progress:
        for kind in args.databases.split(","):
            with database(kind) as engine:
                books = open_books(engine)
                figures.append(single(engine, books, args.single, progress))
                if kind == "postgresql":
                    for hot in (False, True):
                        figures.append(
                            single_concurrent(engine, books, args.single, args.workers, hot=hot)
                        )
                        figures.append(single_processes(args.single, args.workers, books, hot=hot))
                figures.append(bulk_path(engine, books, args.bulk, progress))
                figures.append(rerun(engine, books, args.bulk))
                with make_session_factory(engine)() as session:
                    report = verify.run(session)
                    assert report.ok, "the benchmark left the books unsound"
                # Last: the baseline writes postings without the account totals, as naive code would;
                # it is listed first for its database.
                first = next(i for i, f in enumerate(figures) if f.database == kind)
                figures.insert(first, naive(engine, args.naive, progress))

    table = Table(
        title=f"Ledger write throughput — {platform.processor() or platform.machine()}, {os.cpu_count()} cores"
    )
    for column in (
        "database",
        "path",
        "transactions",
        "postings",
        "seconds",
        "postings/s",
        "transactions/s",
        "× naive",
    ):
        table.add_column(column, justify="left" if column in ("database", "path") else "right")
    baseline = {f.database: f.postings_per_second for f in figures if f.path.startswith("naive")}
    for f in figures:
        table.add_row(
            f.database,
            f.path,
            f"{f.transactions:,}",
            f"{f.postings:,}",
            f"{f.seconds:.2f}",
            f"{f.postings_per_second:,.0f}",
            f"{f.transactions_per_second:,.0f}",
            f"{f.postings_per_second / baseline[f.database]:.1f}",
        )
    console.print(table)
    if args.json:
        args.json.write_text(
            json.dumps(
                [asdict(f) | {"postings_per_second": f.postings_per_second} for f in figures],
                indent=2,
            )
        )


if __name__ == "__main__":
    main()
