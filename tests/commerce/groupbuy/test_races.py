"""Group buying under concurrency, on PostgreSQL with real threads: the database decides.

Forty joins of one unit each by ten customers (four tries each) against a limit of three per
customer and a cap of twenty-five: exactly twenty-five units join, nobody holds more than three,
and both counters agree. Two close jobs at once settle once and refund each order once."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import Engine, func, select

from beyondbank.commerce.groupbuy import closing, service
from beyondbank.commerce.models import (
    CampaignRefund,
    CampaignStatus,
    GroupBuy,
    GroupBuyParticipant,
    Order,
    WebhookEvent,
)
from beyondbank.core.clock import FixedClock
from beyondbank.core.errors import Conflict, LimitReached, Problem
from beyondbank.core.uow import UnitOfWork, make_session_factory
from beyondbank.payments.bankcore import BankCoreGateway
from beyondbank.payments.gateway import OperationKind
from beyondbank.payments.models import PaymentOperation
from tests import factories as f
from tests import races
from tests.commerce.factories import make_product
from tests.commerce.groupbuy.factories import make_campaign, make_paid_order

pytestmark = pytest.mark.postgres

CUSTOMERS = 10
TRIES = 4  # each: 40 threads in all
LIMIT = 3
CAP = 25


def test_concurrent_joins_never_exceed_the_limit_or_the_cap(
    committing_engine: Engine, clock: FixedClock
) -> None:
    factory = make_session_factory(committing_engine)
    with UnitOfWork(factory, clock) as uow:
        partner = f.make_partner(uow)
        product = make_product(uow, partner)
        campaign = make_campaign(
            uow, partner, product, per_customer_limit=LIMIT, max_total_units=CAP
        )
        customers = [f.make_customer(uow).id for _ in range(CUSTOMERS)]
        uow.commit()
        campaign_id = campaign.id

    def attempt(uow: UnitOfWork, i: int) -> int:
        return service.join(
            uow, campaign_id=campaign_id, customer_id=customers[i % CUSTOMERS], quantity=1
        )

    results = races.in_units(committing_engine, clock, CUSTOMERS * TRIES, attempt, commit=True)

    joined = [r for r in results if not isinstance(r, Problem)]
    refused = [r for r in results if isinstance(r, Problem)]
    assert len(joined) == CAP
    assert len(refused) == CUSTOMERS * TRIES - CAP
    assert all(isinstance(r, LimitReached | Conflict) for r in refused)
    with UnitOfWork(factory, clock) as uow:
        held = dict(
            uow.session.execute(
                select(GroupBuyParticipant.customer_id, GroupBuyParticipant.units).where(
                    GroupBuyParticipant.campaign_id == campaign_id
                )
            ).all()
        )
        total = uow.session.scalar(select(GroupBuy.units_joined).where(GroupBuy.id == campaign_id))
    assert total == CAP
    assert sum(held.values()) == CAP
    assert max(held.values()) <= LIMIT


def test_two_close_jobs_at_once_settle_once_and_refund_once(
    committing_engine: Engine, clock: FixedClock
) -> None:
    factory = make_session_factory(committing_engine)
    bank = BankCoreGateway(factory, clock, timezone="Europe/London")
    with UnitOfWork(factory, clock) as uow:
        partner = f.make_partner(uow)
        product = make_product(uow, partner)
        campaign = make_campaign(uow, partner, product, min_total_units=4)
        uow.commit()
        for quantity in (1, 2, 3, 4):
            make_paid_order(uow, bank, campaign, quantity=quantity)
        campaign_id = campaign.id
    clock.advance(timedelta(days=3))

    runs = races.in_units(committing_engine, clock, 2, lambda uow, _i: closing.close_due(uow, bank))

    assert not any(isinstance(r, Problem) for r in runs)
    with UnitOfWork(factory, clock) as uow:
        refunds = uow.session.execute(
            select(CampaignRefund.id, CampaignRefund.done_at).where(
                CampaignRefund.campaign_id == campaign_id
            )
        ).all()
        operations = uow.session.scalar(
            select(func.count(PaymentOperation.id)).where(
                PaymentOperation.kind == OperationKind.REFUND
            )
        )
        events = uow.session.scalar(
            select(func.count(WebhookEvent.id)).where(WebhookEvent.event_type == "group_buy.closed")
        )
    assert len(refunds) == 4
    assert all(r.done_at is not None for r in refunds)
    assert operations == 4
    assert events == 1


def test_the_close_gives_way_to_an_order_being_changed_instead_of_deadlocking(
    committing_engine: Engine, clock: FixedClock
) -> None:
    factory = make_session_factory(committing_engine)
    bank = BankCoreGateway(factory, clock, timezone="Europe/London")
    with UnitOfWork(factory, clock) as uow:
        partner = f.make_partner(uow)
        product = make_product(uow, partner)
        campaign = make_campaign(uow, partner, product, min_total_units=1)
        uow.commit()
        paid = make_paid_order(uow, bank, campaign, quantity=2)
        campaign_id = campaign.id
    clock.advance(timedelta(days=3))

    # A customer's cancel holds the order's row (and would take the campaign's next).
    with UnitOfWork(factory, clock) as holder:
        holder.session.execute(
            select(Order.id).where(Order.id == paid.order.id).with_for_update()
        ).all()
        with UnitOfWork(factory, clock) as uow:
            waiting = closing.close_due(uow, bank)
    with UnitOfWork(factory, clock) as uow:
        settled = closing.close_due(uow, bank)
        status = uow.session.scalar(select(GroupBuy.status).where(GroupBuy.id == campaign_id))

    assert waiting.settled == []
    assert "being changed" in waiting.deferred[0]
    assert [s.units for s in settled.settled] == [2]
    assert status is CampaignStatus.SUCCEEDED
