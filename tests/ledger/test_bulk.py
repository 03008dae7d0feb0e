"""The bulk path posts exactly what the single path would, once, and refuses a bad batch whole."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from beyondbank.core.authz import SYSTEM
from beyondbank.core.errors import (
    IdempotencyKeyReused,
    InsufficientBalance,
    InvalidInput,
)
from beyondbank.core.money import Money
from beyondbank.core.uow import UnitOfWork
from beyondbank.ledger import bulk, verify
from beyondbank.ledger import service as ledger
from beyondbank.ledger.models import (
    Account,
    AccountType,
    LedgerTransaction,
    OwnerKind,
    Posting,
)
from tests.ledger.factories import account, transfer


def _counts(uow: UnitOfWork) -> tuple[int, int]:
    return (
        uow.session.scalar(select(func.count()).select_from(LedgerTransaction)) or 0,
        uow.session.scalar(select(func.count()).select_from(Posting)) or 0,
    )


def _rewards(
    uow: UnitOfWork, n: int, *, prefix: str = "reward"
) -> tuple[list[ledger.Draft], Account, list[Account]]:
    """Card-linked rewards as the engine posts them: three postings, funders to members."""
    receivable = account(uow, "receivable", owner_kind=OwnerKind.MERCHANT, owner_ref="mer_1")
    expense = account(uow, "benefit_expense", type=AccountType.EXPENSE)
    members = [
        account(
            uow,
            "cashback",
            type=AccountType.LIABILITY,
            owner_kind=OwnerKind.MEMBER,
            owner_ref=f"mbr_{i}",
        )
        for i in range(5)
    ]
    drafts = []
    for i in range(n):
        merchant_part, bank_part = 30 + i % 7, 20 + i % 3
        drafts.append(
            ledger.Draft(
                key=f"{prefix}:{i}",
                kind="reward",
                legs=(
                    ledger.Leg.debit(receivable, Money(merchant_part, "GBP")),
                    ledger.Leg.debit(expense, Money(bank_part, "GBP")),
                    ledger.Leg.credit(members[i % 5], Money(merchant_part + bank_part, "GBP")),
                ),
                effective_at=uow.clock.now() - timedelta(minutes=n - i),
                counterparty="mer_1",
                member=f"mbr_{i % 5}",
                reference=f"txn_{i}",
                details={"merchant_funded_minor": merchant_part},
            )
        )
    return drafts, receivable, members


def test_a_batch_posts_every_transaction_and_the_books_balance(uow: UnitOfWork) -> None:
    drafts, receivable, members = _rewards(uow, 250)

    result = bulk.post_many(uow, drafts, chunk_size=64)

    assert result == bulk.BulkResult(offered=250, created=250, existing=0, postings=750)
    assert _counts(uow) == (250, 750)
    expected_merchant = sum(30 + i % 7 for i in range(250))
    assert ledger.balance(uow, receivable).posted == Money(expected_merchant, "GBP")
    assert sum(ledger.balance(uow, m).posted.amount for m in members) == sum(
        50 + i % 7 + i % 3 for i in range(250)
    )
    assert verify.run(uow.session).ok
    stored = ledger.transaction_by_key(uow, "reward:7")
    assert stored is not None
    assert (stored.kind, stored.counterparty_ref, stored.member_ref, stored.reference) == (
        "reward",
        "mer_1",
        "mbr_2",
        "txn_7",
    )
    assert stored.details == {"merchant_funded_minor": 30}
    assert stored.effective_at == drafts[7].effective_at


def test_the_same_batch_again_writes_nothing(uow: UnitOfWork) -> None:
    drafts, receivable, _members = _rewards(uow, 40)
    bulk.post_many(uow, drafts)
    before = _counts(uow), ledger.balance(uow, receivable).posted

    again = bulk.post_many(uow, drafts, chunk_size=7)

    assert again == bulk.BulkResult(offered=40, created=0, existing=40, postings=0)
    assert (_counts(uow), ledger.balance(uow, receivable).posted) == before


def test_overlapping_batches_post_each_key_once(uow: UnitOfWork) -> None:
    drafts, _receivable, _members = _rewards(uow, 30)
    bulk.post_many(uow, drafts[:20])

    result = bulk.post_many(uow, drafts[10:])

    assert (result.created, result.existing) == (10, 10)
    assert _counts(uow) == (30, 90)
    assert verify.run(uow.session).ok


def test_the_single_path_and_the_bulk_path_agree_on_a_key(uow: UnitOfWork) -> None:
    drafts, _receivable, _members = _rewards(uow, 3)
    ledger.post(uow, drafts[1])

    result = bulk.post_many(uow, drafts)

    assert (result.created, result.existing) == (2, 1)
    assert ledger.post(uow, drafts[2]).created is False


def test_a_key_reused_with_other_content_refuses_the_whole_batch(uow: UnitOfWork) -> None:
    drafts, receivable, members = _rewards(uow, 10)
    bulk.post_many(uow, drafts[:5])
    before = _counts(uow)
    changed = transfer(receivable, members[0], 999, key="reward:3", kind="reward")

    with pytest.raises(IdempotencyKeyReused, match="reward:3"):
        bulk.post_many(uow, [*drafts[5:], changed])

    assert _counts(uow) == before


def test_a_key_twice_in_one_batch(uow: UnitOfWork) -> None:
    drafts, receivable, members = _rewards(uow, 4)

    assert bulk.post_many(uow, [*drafts, drafts[0]]).created == 4
    with pytest.raises(IdempotencyKeyReused, match="twice in the batch"):
        bulk.post_many(
            uow,
            [
                transfer(receivable, members[0], 1, key="x"),
                transfer(receivable, members[0], 2, key="x"),
            ],
        )


def test_a_batch_that_would_break_a_floor_writes_nothing(uow: UnitOfWork) -> None:
    cash = account(uow, "cash")
    budget = account(
        uow,
        "prepaid_budget",
        type=AccountType.LIABILITY,
        owner_kind=OwnerKind.MERCHANT,
        owner_ref="mer_1",
        floor=0,
    )
    spend = account(uow, "benefit_expense", type=AccountType.EXPENSE)
    ledger.post(uow, transfer(cash, budget, 100, key="top-up"))
    before = _counts(uow)
    draws = [transfer(budget, spend, 30, key=f"draw:{i}") for i in range(4)]

    with pytest.raises(InsufficientBalance, match="below its floor"):
        bulk.post_many(uow, draws)

    assert _counts(uow) == before
    assert bulk.post_many(uow, draws[:3]).created == 3
    assert ledger.balance(uow, budget).available == Money(10, "GBP")


def test_bad_drafts_are_refused_before_anything_is_written(uow: UnitOfWork) -> None:
    cash = account(uow, "cash")
    revenue = account(uow, "commission", type=AccountType.REVENUE)
    points = account(uow, "points", type=AccountType.LIABILITY, currency="PTS")
    before = _counts(uow)
    good = transfer(cash, revenue, 10, key="good")
    unbalanced = ledger.Draft(
        key="unbalanced",
        kind="test",
        legs=(
            ledger.Leg.debit(cash, Money(10, "GBP")),
            ledger.Leg.credit(revenue, Money(9, "GBP")),
        ),
    )
    wrong_currency = ledger.Draft(
        key="pts",
        kind="test",
        legs=(
            ledger.Leg.debit(cash, Money(10, "PTS")),
            ledger.Leg.credit(points, Money(10, "PTS")),
        ),
    )
    unknown = transfer(cash, revenue, 10, key="unknown")
    unknown = ledger.Draft(
        key="unknown",
        kind="test",
        legs=(unknown.legs[0], ledger.Leg.credit(999_999, Money(10, "GBP"))),
    )

    with pytest.raises(InvalidInput) as unbalanced_error:
        bulk.post_many(uow, [good, unbalanced])
    with pytest.raises(InvalidInput) as currency_error:
        bulk.post_many(uow, [good, wrong_currency])
    with pytest.raises(InvalidInput) as unknown_error:
        bulk.post_many(uow, [good, unknown])

    assert "differ by" in unbalanced_error.value.errors[0].message
    assert currency_error.value.errors[0].field == "pts.postings.0.currency"
    assert unknown_error.value.errors[0].field == "unknown.postings.1.account"
    assert _counts(uow) == before


def test_a_closed_account_takes_no_batch(uow: UnitOfWork) -> None:
    cash = account(uow, "cash")
    old = account(uow, "old", type=AccountType.REVENUE)
    ledger.close_account(uow, old.id, actor=SYSTEM)

    with pytest.raises(InvalidInput) as error:
        bulk.post_many(uow, [transfer(cash, old, 5, key="late")])

    assert [(e.field, e.message) for e in error.value.errors] == [
        ("late.postings.1.account", "the account is closed")
    ]


def test_bulk_postings_read_back_by_time(uow: UnitOfWork) -> None:
    drafts, receivable, _members = _rewards(uow, 10)
    bulk.post_many(uow, drafts)
    middle = drafts[4].effective_at
    assert middle is not None

    at_middle = ledger.balance(uow, receivable, at=middle)
    statement = ledger.statement(uow, receivable, middle, uow.clock.now() + timedelta(days=1))

    assert at_middle.posted == Money(sum(30 + i % 7 for i in range(5)), "GBP")
    assert statement.opening == Money(sum(30 + i % 7 for i in range(4)), "GBP")
    assert len(statement.lines) == 6
    assert statement.closing == ledger.balance(uow, receivable).posted
