"""The ledger under real concurrency on PostgreSQL: threads released together by a barrier, each
with its own unit of work and connection, racing on one floor, one key, one hold."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from sqlalchemy import Engine, func, select

from beyondbank.core.clock import FixedClock
from beyondbank.core.errors import (
    Conflict,
    IdempotencyKeyReused,
    InsufficientBalance,
    InvalidTransition,
    Problem,
)
from beyondbank.core.ids import new_ulid
from beyondbank.core.money import Money
from beyondbank.core.uow import UnitOfWork, make_session_factory
from beyondbank.ledger import chart, verify
from beyondbank.ledger import service as ledger
from beyondbank.ledger.models import (
    Account,
    AccountType,
    LedgerTransaction,
    Posting,
    TransactionStatus,
)
from tests import races
from tests.ledger.factories import account, pool, transfer

pytestmark = pytest.mark.postgres

Outcome = ledger.Posted | LedgerTransaction | Problem


@dataclass
class Books:
    cash: int
    pool: int
    cashback: int


def _books(engine: Engine, clock: FixedClock, funding: int) -> Books:
    with UnitOfWork(make_session_factory(engine), clock) as uow:
        cash = account(uow, "cash")
        the_pool = pool(uow, "race")
        cashback = chart.member_cashback(uow, "mem_race", "GBP")
        ledger.post(uow, transfer(cash, the_pool, funding, key="fund"))
        uow.commit()
        return Books(cash.id, the_pool.id, cashback.id)


def _race(
    engine: Engine,
    clock: FixedClock,
    count: int,
    attempt: Callable[[UnitOfWork, int], Outcome],
) -> list[Outcome]:
    """Each thread commits its own work."""
    return races.in_units(engine, clock, count, attempt, commit=True)


def _kinds(results: list[Outcome]) -> Counter[str]:
    return Counter(type(r).__name__ for r in results)


def _check_books(engine: Engine, clock: FixedClock) -> None:
    with UnitOfWork(make_session_factory(engine), clock) as uow:
        report = verify.run(uow.session)
        failing = {c.name: [v.message for v in c.violations] for c in report.checks if not c.ok}
        assert failing == {}


def _balance(engine: Engine, clock: FixedClock, account_id: int) -> ledger.Balance:
    with UnitOfWork(make_session_factory(engine), clock) as uow:
        return ledger.balance(uow, uow.session.get_one(Account, account_id))


def test_twenty_draws_on_room_for_five(committing_engine: Engine, clock: FixedClock) -> None:
    books = _books(committing_engine, clock, funding=500)

    def draw(uow: UnitOfWork, i: int) -> Outcome:
        return ledger.post(uow, transfer_ids(books.pool, books.cashback, 100, key=f"draw-{i}"))

    results = _race(committing_engine, clock, 20, draw)
    assert _kinds(results) == {"Posted": 5, "InsufficientBalance": 15}
    assert all(isinstance(r, InsufficientBalance | ledger.Posted) for r in results)
    b = _balance(committing_engine, clock, books.pool)
    assert (b.posted.amount, b.pending.amount, b.available.amount) == (0, 0, 0)
    assert _balance(committing_engine, clock, books.cashback).posted.amount == 500
    with UnitOfWork(make_session_factory(committing_engine), clock) as uow:
        net = uow.session.scalar(
            select(func.sum(Posting.amount_minor)).where(Posting.account_id == books.pool)
        )
        assert net == 0  # credited 500 by the funding, debited 5 × 100
        draws = uow.session.scalar(
            select(func.count())
            .select_from(LedgerTransaction)
            .where(LedgerTransaction.idempotency_key.like("draw-%"))
        )
        assert draws == 5
    _check_books(committing_engine, clock)


def test_ten_posts_with_one_key_and_one_content_make_one_transaction(
    committing_engine: Engine, clock: FixedClock
) -> None:
    books = _books(committing_engine, clock, funding=500)

    def same(uow: UnitOfWork, i: int) -> Outcome:
        return ledger.post(uow, transfer_ids(books.pool, books.cashback, 100, key="once"))

    results = _race(committing_engine, clock, 10, same)
    assert all(isinstance(r, ledger.Posted) for r in results), results
    posted = [r for r in results if isinstance(r, ledger.Posted)]
    assert len({p.transaction.public_id for p in posted}) == 1
    assert sum(p.created for p in posted) == 1
    assert _balance(committing_engine, clock, books.pool).posted.amount == 400
    _check_books(committing_engine, clock)


def test_ten_posts_with_one_key_and_different_content_one_wins(
    committing_engine: Engine, clock: FixedClock
) -> None:
    books = _books(committing_engine, clock, funding=5_000)

    def different(uow: UnitOfWork, i: int) -> Outcome:
        return ledger.post(uow, transfer_ids(books.pool, books.cashback, 100 + i, key="contested"))

    results = _race(committing_engine, clock, 10, different)
    assert _kinds(results) == {"Posted": 1, "IdempotencyKeyReused": 9}
    winner = next(r for r in results if isinstance(r, ledger.Posted))
    assert all(
        r.status == 422 and r.extra["transaction_id"] == winner.transaction.public_id
        for r in results
        if isinstance(r, IdempotencyKeyReused)
    )
    with UnitOfWork(make_session_factory(committing_engine), clock) as uow:
        amount = (
            uow.session.scalar(
                select(Posting.amount_minor).where(
                    Posting.transaction_id == winner.transaction.id, Posting.amount_minor > 0
                )
            )
            or 0
        )
    assert 100 <= amount <= 109
    assert _balance(committing_engine, clock, books.pool).posted.amount == 5_000 - amount
    _check_books(committing_engine, clock)


def test_ten_captures_of_one_hold_with_different_keys_capture_it_once(
    committing_engine: Engine, clock: FixedClock
) -> None:
    books = _books(committing_engine, clock, funding=500)
    hold_id = _hold(committing_engine, clock, books, 300)

    def capture(uow: UnitOfWork, i: int) -> Outcome:
        return ledger.capture(uow, hold_id, key=f"capture-{i}", amount=100 + i)

    results = _race(committing_engine, clock, 10, capture)
    assert _kinds(results) == {"Posted": 1, "InvalidTransition": 9}
    assert all(
        r.extra == {"current_status": "captured"}
        for r in results
        if isinstance(r, InvalidTransition)
    )
    winner = next(r for r in results if isinstance(r, ledger.Posted))
    captured = 100 + int(winner.transaction.idempotency_key.removeprefix("capture-"))
    b = _balance(committing_engine, clock, books.pool)
    assert (b.posted.amount, b.pending.amount) == (500 - captured, 0)
    _check_books(committing_engine, clock)


def test_ten_captures_of_one_hold_with_one_key_all_get_the_capture(
    committing_engine: Engine, clock: FixedClock
) -> None:
    books = _books(committing_engine, clock, funding=500)
    hold_id = _hold(committing_engine, clock, books, 300)

    def capture(uow: UnitOfWork, i: int) -> Outcome:
        return ledger.capture(uow, hold_id, key="capture", amount=120)

    results = _race(committing_engine, clock, 10, capture)
    assert all(isinstance(r, ledger.Posted) for r in results), results
    posted = [r for r in results if isinstance(r, ledger.Posted)]
    assert len({p.transaction.id for p in posted}) == 1
    assert sum(p.created for p in posted) == 1
    assert _balance(committing_engine, clock, books.pool).posted.amount == 380
    _check_books(committing_engine, clock)


def test_captures_and_voids_of_one_hold_resolve_it_once(
    committing_engine: Engine, clock: FixedClock
) -> None:
    books = _books(committing_engine, clock, funding=500)
    hold_id = _hold(committing_engine, clock, books, 300)

    def resolve(uow: UnitOfWork, i: int) -> Outcome:
        if i % 2:
            return ledger.void(uow, hold_id)
        return ledger.capture(uow, hold_id, key=f"capture-{i}")

    results = _race(committing_engine, clock, 10, resolve)
    with UnitOfWork(make_session_factory(committing_engine), clock) as uow:
        status = uow.session.get_one(LedgerTransaction, hold_id).status
    captures = [r for r in results if isinstance(r, ledger.Posted)]
    if status is TransactionStatus.CAPTURED:
        # One capture won; every void and every other capture was refused.
        assert len(captures) == 1
        assert _kinds(results)["InvalidTransition"] == 9
        assert _balance(committing_engine, clock, books.pool).posted.amount == 200
    else:
        # A void won: the other voids see a voided hold (idempotent), every capture is refused.
        assert status is TransactionStatus.VOIDED
        assert captures == []
        assert _kinds(results) == {"LedgerTransaction": 5, "InvalidTransition": 5}
        assert _balance(committing_engine, clock, books.pool).posted.amount == 500
    assert _balance(committing_engine, clock, books.pool).pending.amount == 0
    _check_books(committing_engine, clock)


def test_holds_and_posts_racing_on_a_floor_never_breach_it(
    committing_engine: Engine, clock: FixedClock
) -> None:
    books = _books(committing_engine, clock, funding=1_000)

    def hold_or_post(uow: UnitOfWork, i: int) -> Outcome:
        draft = transfer_ids(books.pool, books.cashback, 150, key=f"mixed-{i}")
        return ledger.hold(uow, draft) if i % 2 else ledger.post(uow, draft)

    results = _race(committing_engine, clock, 20, hold_or_post)
    # Whatever the order, six fit above the floor (6 × 150 = 900) and a seventh never does.
    assert _kinds(results) == {"Posted": 6, "InsufficientBalance": 14}
    b = _balance(committing_engine, clock, books.pool)
    assert b.available.amount == 100
    holds = [
        r.transaction.id
        for r in results
        if isinstance(r, ledger.Posted) and r.transaction.status is TransactionStatus.PENDING
    ]

    # Now capture (in part) or void every hold while more draws race for what is released.
    def settle_or_draw(uow: UnitOfWork, i: int) -> Outcome:
        if i < len(holds):
            if i % 2:
                return ledger.void(uow, holds[i])
            return ledger.capture(uow, holds[i], key=f"settle-{i}", amount=50)
        return ledger.post(uow, transfer_ids(books.pool, books.cashback, 90, key=f"late-{i}"))

    _race(committing_engine, clock, 16, settle_or_draw)
    b = _balance(committing_engine, clock, books.pool)
    assert b.available.amount >= 0
    assert b.pending.amount == 0
    _check_books(committing_engine, clock)


def test_reversals_in_parts_racing_never_exceed_the_original(
    committing_engine: Engine, clock: FixedClock
) -> None:
    books = _books(committing_engine, clock, funding=1_000)
    with UnitOfWork(make_session_factory(committing_engine), clock) as uow:
        original = ledger.post(uow, transfer_ids(books.pool, books.cashback, 100)).transaction.id
        uow.commit()

    def refund(uow: UnitOfWork, i: int) -> Outcome:
        # Half retry one key; the others each try their own 30.
        key = "refund-same" if i % 2 else f"refund-{i}"
        return ledger.reverse(uow, original, key=key, reason="refund", amount=30)

    results = _race(committing_engine, clock, 10, refund)
    corrections = {r.transaction.id for r in results if isinstance(r, ledger.Posted)}
    assert len(corrections) == 3  # 3 × 30 ≤ 100 < 4 × 30
    assert all(isinstance(r, ledger.Posted | Conflict) for r in results)
    same_key = [r for i, r in enumerate(results) if i % 2]
    if any(isinstance(r, ledger.Posted) for r in same_key):
        # Once one retry of a key got through, every retry of it got the same correction.
        assert all(isinstance(r, ledger.Posted) for r in same_key)
        assert len({r.transaction.id for r in same_key if isinstance(r, ledger.Posted)}) == 1
    assert _balance(committing_engine, clock, books.pool).posted.amount == 1_000 - 100 + 90
    _check_books(committing_engine, clock)


def _hold(engine: Engine, clock: FixedClock, books: Books, amount: int) -> int:
    with UnitOfWork(make_session_factory(engine), clock) as uow:
        held = ledger.hold(uow, transfer_ids(books.pool, books.cashback, amount, key="hold"))
        uow.commit()
        return held.transaction.id


def test_posts_together_naming_shared_accounts_in_any_order_neither_deadlock_nor_lose_a_cent(
    committing_engine: Engine, clock: FixedClock
) -> None:
    """Twelve threads, each posting four transactions at once over the same three accounts,
    half of them naming the accounts in the opposite order: the statement locks them in id
    order first, so nobody deadlocks (a deadlock is an error here, not retried), and every
    total is the sum of what was posted."""
    with UnitOfWork(make_session_factory(committing_engine), clock) as uow:
        shared = [
            account(uow, "expense", type=AccountType.EXPENSE).id,
            account(uow, "revenue", type=AccountType.REVENUE).id,
            account(uow, "payable", type=AccountType.LIABILITY).id,
        ]
        uow.commit()

    def together(uow: UnitOfWork, i: int) -> list[int]:
        order = shared if i % 2 else shared[::-1]
        drafts = [
            transfer_ids(order[0], order[1], 10 + i, key=f"together-{i}-a"),
            transfer_ids(order[1], order[2], 20 + i, key=f"together-{i}-b"),
            transfer_ids(order[2], order[0], 30 + i, key=f"together-{i}-c"),
            transfer_ids(order[0], order[2], 1, key=f"together-{i}-d"),
        ]
        return ledger.post_together(uow, drafts)

    results = _race(committing_engine, clock, 12, together)

    assert all(isinstance(r, list) and len(set(r)) == 4 for r in results), results
    with UnitOfWork(make_session_factory(committing_engine), clock) as uow:
        accounts = {
            a.id: a for a in uow.session.scalars(select(Account).where(Account.id.in_(shared)))
        }
        posted = {
            account_id: int(net)
            for account_id, net in uow.session.execute(
                select(Posting.account_id, func.sum(Posting.amount_minor))
                .where(Posting.account_id.in_(shared))
                .group_by(Posting.account_id)
            )
        }
        for account_id, a in accounts.items():
            assert a.debits_posted - a.credits_posted == posted[account_id]
        assert sum(posted.values()) == 0
        count = uow.session.scalar(
            select(func.count())
            .select_from(LedgerTransaction)
            .where(LedgerTransaction.idempotency_key.like("together-%"))
        )
        assert count == 48
    _check_books(committing_engine, clock)


def transfer_ids(debit: int, credit: int, amount: int, *, key: str | None = None) -> ledger.Draft:
    """A transfer in pounds between accounts known by id (threads share no Account objects)."""
    money = Money(amount, "GBP")
    return ledger.Draft(
        key=key or f"race-{new_ulid()}",
        kind="test",
        legs=(ledger.Leg.debit(debit, money), ledger.Leg.credit(credit, money)),
    )
