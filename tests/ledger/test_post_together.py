"""`ledger.post_together`: several transactions in one call (one statement on PostgreSQL), each
posted once, balanced, with the same refusals as `post`."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from beyondbank.core.errors import IdempotencyKeyReused, InsufficientBalance, InvalidInput
from beyondbank.core.uow import UnitOfWork
from beyondbank.ledger import service as ledger
from beyondbank.ledger.models import Account, AccountType, LedgerTransaction, Posting
from tests.ledger.factories import account, credit, debit, draft, pool, row_counts, transfer


def _accounts(uow: UnitOfWork) -> tuple[Account, Account, Account]:
    cash = account(uow, "cash")
    revenue = account(uow, "revenue", type=AccountType.REVENUE)
    cashback = account(uow, "cashback", type=AccountType.LIABILITY)
    return cash, revenue, cashback


def test_drafts_post_in_order_and_move_every_total(uow: UnitOfWork) -> None:
    cash, revenue, cashback = _accounts(uow)
    drafts = [
        transfer(cash, revenue, 300, key="a"),
        draft(debit(cash, 500), credit(revenue, 120), credit(cashback, 380), key="b"),
        transfer(cash, cashback, 7, key="c", kind="other"),
    ]

    ids = ledger.post_together(uow, drafts)

    stored = {
        t.id: t
        for t in uow.session.scalars(select(LedgerTransaction).where(LedgerTransaction.id.in_(ids)))
    }
    assert [stored[i].idempotency_key for i in ids] == ["a", "b", "c"]
    assert [stored[i].fingerprint for i in ids] == [ledger.fingerprint_of(d) for d in drafts]
    assert stored[ids[2]].kind == "other"
    for account_, expected in ((cash, 807), (revenue, 420), (cashback, 387)):
        assert ledger.balance(uow, account_).posted.amount == expected
    # Balanced: every transaction's postings sum to zero, and so do all of them.
    sums = uow.session.execute(
        select(Posting.transaction_id, func.sum(Posting.amount_minor))
        .where(Posting.transaction_id.in_(ids))
        .group_by(Posting.transaction_id)
    ).all()
    assert sorted(s for _id, s in sums) == [0, 0, 0]
    legs = uow.session.scalar(
        select(func.count()).select_from(Posting).where(Posting.transaction_id.in_(ids))
    )
    assert legs == 7


def test_posting_the_same_drafts_again_writes_nothing_and_names_the_originals(
    uow: UnitOfWork,
) -> None:
    cash, revenue, cashback = _accounts(uow)
    drafts = [transfer(cash, revenue, 300, key="a"), transfer(cash, cashback, 40, key="b")]
    first = ledger.post_together(uow, drafts)
    before = row_counts(uow)

    again = ledger.post_together(uow, [drafts[1], transfer(cash, cashback, 5, key="c"), drafts[0]])

    assert [again[0], again[2]] == [first[1], first[0]]
    assert again[1] not in first
    after = row_counts(uow)
    assert after["transactions"] == before["transactions"] + 1
    assert after["postings"] == before["postings"] + 2
    assert ledger.balance(uow, cash).posted.amount == 345


def test_a_known_key_with_different_content_is_refused(uow: UnitOfWork) -> None:
    cash, revenue, _cashback = _accounts(uow)
    ledger.post_together(uow, [transfer(cash, revenue, 300, key="a")])

    with pytest.raises(IdempotencyKeyReused):
        ledger.post_together(uow, [transfer(cash, revenue, 301, key="a")])


def test_a_draft_below_its_floor_is_refused(uow: UnitOfWork) -> None:
    cash, _revenue, cashback = _accounts(uow)
    the_pool = pool(uow, "together")
    ledger.post(uow, transfer(cash, the_pool, 100, key="fund"))

    with pytest.raises(InsufficientBalance) as refused:
        ledger.post_together(
            uow,
            [transfer(the_pool, cashback, 60, key="x"), transfer(the_pool, cashback, 60, key="y")],
        )
    assert refused.value.extra["account_id"] == the_pool.public_id


def test_an_unbalanced_draft_is_refused_before_anything_is_written(uow: UnitOfWork) -> None:
    cash, revenue, _cashback = _accounts(uow)
    before = row_counts(uow)

    with pytest.raises(InvalidInput):
        ledger.post_together(
            uow,
            [transfer(cash, revenue, 10, key="ok"), draft(debit(cash, 5), credit(revenue, 4))],
        )
    assert row_counts(uow) == before


def test_a_correction_goes_through_post_not_here(uow: UnitOfWork) -> None:
    cash, revenue, _cashback = _accounts(uow)
    original = ledger.post(uow, transfer(cash, revenue, 10, key="o")).transaction
    correction = draft(debit(revenue, 10), credit(cash, 10), corrects=original.id)

    with pytest.raises(ValueError, match="post_together"):
        ledger.post_together(uow, [correction])


def test_nothing_to_post_is_nothing(uow: UnitOfWork) -> None:
    assert ledger.post_together(uow, []) == []
