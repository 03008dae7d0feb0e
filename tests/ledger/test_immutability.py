"""The database itself refuses to change history: postings never change, and a transaction
changes only while it is a pending hold (its status, once). On SQLite and on PostgreSQL alike,
whatever code or person issues the statement."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import delete, select, text, update
from sqlalchemy.exc import DBAPIError

from beyondbank.core.uow import UnitOfWork
from beyondbank.ledger import service as ledger
from beyondbank.ledger.models import LedgerTransaction, Posting, TransactionStatus
from tests.ledger.factories import account, pool, row_counts, transfer


def _refused(uow: UnitOfWork, statement: Any) -> str:
    """Run the statement in a savepoint, expect the database to refuse it, and say why."""
    savepoint = uow.session.begin_nested()
    try:
        with pytest.raises(DBAPIError) as refused:
            uow.session.execute(statement)
    finally:
        savepoint.rollback()
    return str(refused.value.orig)


def _books(uow: UnitOfWork) -> tuple[LedgerTransaction, LedgerTransaction]:
    cash = account(uow, "cash")
    the_pool = pool(uow)
    posted = ledger.post(uow, transfer(cash, the_pool, 500, key="posted")).transaction
    held = ledger.hold(uow, transfer(the_pool, cash, 100, key="held")).transaction
    return posted, held


def _posting(uow: UnitOfWork, transaction: LedgerTransaction) -> Posting:
    return uow.session.scalars(
        select(Posting).where(Posting.transaction_id == transaction.id).order_by(Posting.id)
    ).first()  # type: ignore[return-value]


POSTING_CHANGES: dict[str, Callable[[Posting], Any]] = {
    "amount": lambda p: update(Posting).where(Posting.id == p.id).values(amount_minor=1),
    "pending": lambda p: update(Posting).where(Posting.id == p.id).values(pending=not p.pending),
    "time": lambda p: (
        update(Posting)
        .where(Posting.id == p.id)
        .values(effective_at=p.effective_at.replace(year=2020))
    ),
    "delete": lambda p: delete(Posting).where(Posting.id == p.id),
}


@pytest.mark.parametrize("change", sorted(POSTING_CHANGES))
@pytest.mark.parametrize("of", ["posted", "held"])
def test_a_posting_never_changes(uow: UnitOfWork, change: str, of: str) -> None:
    posted, held = _books(uow)
    posting = _posting(uow, posted if of == "posted" else held)
    before = (posting.amount_minor, posting.pending, posting.effective_at)
    message = _refused(uow, POSTING_CHANGES[change](posting))
    assert "ledger postings are immutable" in message
    uow.session.refresh(posting)
    assert (posting.amount_minor, posting.pending, posting.effective_at) == before


def test_a_bulk_delete_of_postings_is_refused_too(uow: UnitOfWork) -> None:
    _books(uow)
    before = row_counts(uow)
    assert "immutable" in _refused(uow, text("DELETE FROM ledger_postings"))
    assert row_counts(uow) == before


TRANSACTION_CHANGES: dict[str, Callable[[LedgerTransaction], Any]] = {
    "description": lambda t: (
        update(LedgerTransaction)
        .where(LedgerTransaction.id == t.id)
        .values(description="rewritten")
    ),
    "status": lambda t: (
        update(LedgerTransaction)
        .where(LedgerTransaction.id == t.id)
        .values(status=TransactionStatus.VOIDED)
    ),
    "fingerprint": lambda t: (
        update(LedgerTransaction).where(LedgerTransaction.id == t.id).values(fingerprint="0" * 64)
    ),
    "key": lambda t: (
        update(LedgerTransaction)
        .where(LedgerTransaction.id == t.id)
        .values(idempotency_key="another")
    ),
    "delete": lambda t: delete(LedgerTransaction).where(LedgerTransaction.id == t.id),
}


@pytest.mark.parametrize("change", sorted(TRANSACTION_CHANGES))
def test_a_posted_transaction_never_changes(uow: UnitOfWork, change: str) -> None:
    posted, _ = _books(uow)
    message = _refused(uow, TRANSACTION_CHANGES[change](posted))
    assert "ledger transactions are immutable" in message
    uow.session.refresh(posted)
    assert (posted.status, posted.description, posted.idempotency_key) == (
        TransactionStatus.POSTED,
        "",
        "posted",
    )


@pytest.mark.parametrize("change", ["fingerprint", "key", "delete"])
def test_a_pending_hold_changes_only_its_status(uow: UnitOfWork, change: str) -> None:
    _, held = _books(uow)
    assert "ledger transactions are immutable" in _refused(uow, TRANSACTION_CHANGES[change](held))
    moved_time = (
        update(LedgerTransaction)
        .where(LedgerTransaction.id == held.id)
        .values(effective_at=held.effective_at.replace(year=2020))
    )
    assert "immutable" in _refused(uow, moved_time)


def test_a_resolved_hold_is_final(uow: UnitOfWork) -> None:
    _, held = _books(uow)
    ledger.void(uow, held.id)
    back_to_pending = (
        update(LedgerTransaction)
        .where(LedgerTransaction.id == held.id)
        .values(status=TransactionStatus.PENDING)
    )
    assert "immutable" in _refused(uow, back_to_pending)
    to_captured = (
        update(LedgerTransaction)
        .where(LedgerTransaction.id == held.id)
        .values(status=TransactionStatus.CAPTURED)
    )
    assert "immutable" in _refused(uow, to_captured)
    uow.session.refresh(held)
    assert held.status is TransactionStatus.VOIDED


def test_the_test_transaction_survives_every_refusal(uow: UnitOfWork) -> None:
    """Each refusal ran in a savepoint: the books are still there and still take postings."""
    posted, held = _books(uow)
    for change in TRANSACTION_CHANGES.values():
        _refused(uow, change(posted))
    captured = ledger.capture(uow, held.id, key="capture")
    assert captured.created
    assert row_counts(uow)["transactions"] == 3
