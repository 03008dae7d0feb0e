"""Staff-made ledger entries: the request's references resolved and amounts read in the account's
currency, an audit record for each change (none for a replay), and the key in the `api:` space."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from beyondbank.core.authz import Principal
from beyondbank.core.errors import InvalidInput
from beyondbank.core.models import AuditEvent
from beyondbank.core.uow import UnitOfWork
from beyondbank.ledger import entries, schemas
from beyondbank.ledger.models import AccountType, TransactionStatus
from tests.ledger.factories import account, pool

STAFF = Principal(kind="user", id=7, public_id="usr_FINANCE", label="Finance")


def _actions(uow: UnitOfWork) -> list[str]:
    """What was audited of transactions and holds (the service audits accounts opened)."""
    return list(
        uow.session.scalars(
            select(AuditEvent.action)
            .where(AuditEvent.object_type == "ledger_transaction")
            .order_by(AuditEvent.id)
        )
    )


def _entry(debit: str, credit: str, amount: str = "12.50") -> schemas.TransactionIn:
    return schemas.TransactionIn.model_validate(
        {
            "description": "manual",
            "postings": [
                {"account": debit, "side": "debit", "currency": "GBP", "amount": amount},
                {"account": credit, "side": "credit", "currency": "GBP", "amount": amount},
            ],
        }
    )


def test_a_manual_entry_is_keyed_audited_once_and_replayed(uow: UnitOfWork) -> None:
    cash = account(uow)
    the_pool = pool(uow, floor=-10_000)
    body = _entry(the_pool.code, cash.public_id)
    posted = entries.post(uow, STAFF, "k-1", body)
    assert (posted.created, posted.transaction.idempotency_key) == (True, "api:k-1")
    again = entries.post(uow, STAFF, "k-1", body)
    assert (again.created, again.transaction.id) == (False, posted.transaction.id)
    assert _actions(uow) == ["ledger.transaction.posted"]
    [out] = entries.transactions_out(uow, [posted.transaction])
    assert [(p.account_id, p.side, p.amount) for p in out.postings] == [
        (the_pool.public_id, "debit", "12.50"),
        (cash.public_id, "credit", "12.50"),
    ]


def test_references_and_keys_are_refused_where_the_request_has_them(uow: UnitOfWork) -> None:
    cash = account(uow)
    with pytest.raises(InvalidInput) as missing:
        entries.post(uow, STAFF, None, _entry("acc_NOPE", cash.code))
    assert [e.field for e in missing.value.errors] == ["header.Idempotency-Key"]
    with pytest.raises(InvalidInput) as unknown:
        entries.post(uow, STAFF, "k-2", _entry("acc_NOPE", cash.code))
    assert [e.field for e in unknown.value.errors] == ["body.postings.0.account"]
    assert _actions(uow) == []


def test_a_hold_captured_in_part_then_voiding_a_second_is_audited_once(uow: UnitOfWork) -> None:
    cash = account(uow)
    expense = account(uow, "fees", type=AccountType.EXPENSE)
    held = entries.hold(uow, STAFF, "h-1", _entry(expense.code, cash.code))
    captured = entries.capture(
        uow, STAFF, held.transaction.public_id, "c-1", schemas.CaptureIn(amount="2.50")
    )
    assert captured.created
    second = entries.hold(uow, STAFF, "h-2", _entry(expense.code, cash.code, "1.00"))
    entries.void(uow, STAFF, second.transaction.public_id, reason="not needed")
    voided = entries.void(uow, STAFF, second.transaction.public_id)
    assert voided.status is TransactionStatus.VOIDED
    assert _actions(uow) == [
        "ledger.hold.created",
        "ledger.hold.captured",
        "ledger.hold.created",
        "ledger.hold.voided",
    ]
