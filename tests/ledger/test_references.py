"""The database refuses a posting whose transaction or account (in its currency) does not exist,
and the rows postings refer to never go away or change key: on SQLite and PostgreSQL alike."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
from sqlalchemy import delete, insert, update
from sqlalchemy.exc import DBAPIError

from beyondbank.core.uow import UnitOfWork
from beyondbank.ledger import service as ledger
from beyondbank.ledger.models import Account, LedgerTransaction, Posting
from tests.ledger.factories import account, pool, row_counts, transfer

AT = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)


def _refused(uow: UnitOfWork, statement: Any, rows: Any = None) -> str:
    """Run the statement in a savepoint, expect the database to refuse it, and say why."""
    savepoint = uow.session.begin_nested()
    try:
        with pytest.raises(DBAPIError) as refused:
            uow.session.execute(statement, rows)
    finally:
        savepoint.rollback()
    return str(refused.value.orig)


def _books(uow: UnitOfWork) -> tuple[Account, Account, LedgerTransaction, LedgerTransaction]:
    cash = account(uow, "cash")
    the_pool = pool(uow)
    posted = ledger.post(uow, transfer(cash, the_pool, 500, key="posted")).transaction
    held = ledger.hold(uow, transfer(the_pool, cash, 100, key="held")).transaction
    return cash, the_pool, posted, held


def _line(transaction_id: int, account_id: int, amount: int, currency: str = "GBP") -> dict:  # type: ignore[type-arg]
    return {
        "transaction_id": transaction_id,
        "account_id": account_id,
        "currency": currency,
        "amount_minor": amount,
        "pending": False,
        "effective_at": AT,
    }


@pytest.mark.parametrize("wrong", ["transaction", "account", "currency"])
def test_a_posting_must_refer_to_what_exists(uow: UnitOfWork, wrong: str) -> None:
    cash, the_pool, posted, _ = _books(uow)
    before = row_counts(uow)
    bad = {
        "transaction": _line(posted.id + 1_000, cash.id, 5),
        "account": _line(posted.id, the_pool.id + 1_000, 5),
        "currency": _line(posted.id, cash.id, 5, currency="EUR"),
    }[wrong]
    # One bad row among good ones: the whole statement is refused.
    rows = [_line(posted.id, cash.id, -5), bad, _line(posted.id, the_pool.id, 5)]
    message = _refused(uow, insert(Posting), rows)
    assert "refer" in message
    assert row_counts(uow) == before


def test_a_good_posting_goes_in(uow: UnitOfWork) -> None:
    cash, the_pool, posted, _ = _books(uow)
    savepoint = uow.session.begin_nested()
    uow.session.execute(
        insert(Posting), [_line(posted.id, cash.id, 7), _line(posted.id, the_pool.id, -7)]
    )
    savepoint.rollback()


def test_a_ledger_account_is_never_deleted_nor_rekeyed(uow: UnitOfWork) -> None:
    cash, _, _, _ = _books(uow)
    unused = account(uow, "suspense")
    for target in (cash, unused):
        assert "never deleted" in _refused(uow, delete(Account).where(Account.id == target.id))
    moved = update(Account).where(Account.id == cash.id)
    assert "keeps its id and currency" in _refused(uow, moved.values(currency="EUR"))
    assert "keeps its id and currency" in _refused(uow, moved.values(id=cash.id + 1_000))


def test_a_hold_keeps_its_id(uow: UnitOfWork) -> None:
    _, _, _, held = _books(uow)
    rekeyed = (
        update(LedgerTransaction)
        .where(LedgerTransaction.id == held.id)
        .values(id=held.id + 1_000, status="voided")
    )
    assert "immutable" in _refused(uow, rekeyed)


def _copy(raw: Any, lines: list[str]) -> None:
    columns = "transaction_id, account_id, currency, amount_minor, pending, effective_at"
    with (
        raw.cursor() as cursor,
        cursor.copy(f"COPY ledger_postings ({columns}) FROM STDIN") as copy,
    ):
        copy.write("".join(lines))


def test_a_bulk_copy_is_checked_too(uow: UnitOfWork, is_postgres: bool) -> None:
    if not is_postgres:
        pytest.skip("COPY is PostgreSQL's")
    cash, _, posted, _ = _books(uow)
    lines = [
        f"{posted.id}\t{cash.id}\tGBP\t-5\tf\t{AT.isoformat()}\n",
        f"{posted.id + 1_000}\t{cash.id}\tGBP\t5\tf\t{AT.isoformat()}\n",
    ]
    savepoint = uow.session.begin_nested()
    try:
        with pytest.raises(psycopg.errors.ForeignKeyViolation) as refused:
            _copy(uow.session.connection().connection.driver_connection, lines)
    finally:
        savepoint.rollback()
    assert "refer" in str(refused.value)
