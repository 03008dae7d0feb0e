"""Reward and clawback rows post balanced ledger transactions once: member cashback payable,
merchant funding receivable, bank expense, commission revenue, points."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select, update

from beyondbank.cards import frames, posting
from beyondbank.cards.models import CardReward, CardRun, RunStatus
from beyondbank.core.ids import new_public_id
from beyondbank.core.money import Money
from beyondbank.core.uow import UnitOfWork
from beyondbank.ledger import chart, verify
from beyondbank.ledger import service as ledger
from beyondbank.ledger.models import LedgerTransaction, OwnerKind
from tests.cards import factories as cf

LINKED = datetime(2026, 11, 1, tzinfo=UTC)
AT = datetime(2026, 11, 20, 12, 30, tzinfo=UTC)


def _run(uow: UnitOfWork) -> CardRun:
    run = CardRun(
        public_id=new_public_id("run"),
        source="feed.csv",
        status=RunStatus.MATCHING,
        started_at=uow.clock.now(),
        details={},
    )
    uow.session.add(run)
    uow.session.flush()
    return run


def _reward(uow: UnitOfWork, p: cf.Programme, run: CardRun, **over: Any) -> CardReward:
    fields = cf.reward_fields(p, AT, run_id=run.id, **over)
    row = CardReward(**fields)
    uow.session.add(row)
    uow.session.flush()
    return row


def _count(uow: UnitOfWork) -> int:
    return uow.session.scalar(select(func.count()).select_from(LedgerTransaction)) or 0


def test_a_grant_and_its_clawback_post_the_funding_split_and_the_commission(
    uow: UnitOfWork,
) -> None:
    p = cf.programme(uow, LINKED)
    run = _run(uow)
    _reward(uow, p, run)
    _reward(
        uow,
        p,
        run,
        kind=frames.CLAWBACK,
        txn_id="r-1",
        original_txn_id="t-1",
        txn_amount_minor=1_000,
        amount_minor=200,
        merchant_funded_minor=120,
        bank_funded_minor=80,
        commission_minor=25,
    )

    assert posting.post_outbox(uow, now=uow.clock.now) == 2

    merchant, member = p.merchant.public_id, p.member.public_id
    cashback = chart.member_cashback(uow, member, "GBP")
    receivable = chart.receivable(uow, OwnerKind.MERCHANT, merchant, "GBP")
    assert ledger.balance(uow, cashback).posted == Money(600, "GBP")  # 800 − 200
    assert ledger.balance(uow, receivable).posted == Money(480 - 120 + 100 - 25, "GBP")
    assert ledger.balance(uow, chart.benefit_expense(uow, "GBP")).posted == Money(240, "GBP")
    assert ledger.balance(uow, chart.commission_revenue(uow, "GBP")).posted == Money(75, "GBP")
    grant = ledger.transaction_by_key(uow, "card-reward:t-1")
    assert grant is not None
    assert (grant.kind, grant.counterparty_ref, grant.member_ref, grant.reference) == (
        chart.Kind.REWARD.value,
        merchant,
        member,
        "t-1",
    )
    assert grant.details["merchant_funded_minor"] == 480
    assert grant.effective_at == AT
    clawback = ledger.transaction_by_key(uow, "card-clawback:r-1")
    assert clawback is not None
    assert clawback.kind == chart.Kind.REWARD_CLAWBACK.value
    assert verify.run(uow.session).ok


def test_points_post_to_the_members_points(uow: UnitOfWork) -> None:
    p = cf.programme(uow, LINKED)
    run = _run(uow)
    _reward(
        uow,
        p,
        run,
        benefit_id=None,
        amount_minor=0,
        merchant_funded_minor=0,
        bank_funded_minor=0,
        commission_minor=0,
        points_benefit_id=p.benefit.id,
        points=120,
    )

    posting.post_outbox(uow, now=uow.clock.now)

    points = chart.member_points(uow, p.member.public_id)
    assert ledger.balance(uow, points).posted == Money(120, "PTS")
    assert _count(uow) == 1  # no cash, no commission: only the points


def test_posting_again_after_a_crash_before_the_mark_writes_nothing_new(uow: UnitOfWork) -> None:
    p = cf.programme(uow, LINKED)
    run = _run(uow)
    _reward(uow, p, run)
    posting.post_outbox(uow, now=uow.clock.now)
    before = _count(uow)
    # As if the process died after the ledger chunk but before the outbox mark committed.
    uow.session.execute(update(CardReward).values(posted_at=None))

    assert posting.post_outbox(uow, now=uow.clock.now) == 1
    assert _count(uow) == before
    assert posting.post_outbox(uow, now=uow.clock.now) == 0
