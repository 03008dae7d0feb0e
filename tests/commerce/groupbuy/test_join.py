"""Joining and leaving a campaign: the checkout's contract (per-customer limit, cap, window)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from beyondbank.commerce.groupbuy import service
from beyondbank.commerce.models import CampaignStatus, GroupBuy, GroupBuyParticipant
from beyondbank.core.clock import FixedClock
from beyondbank.core.errors import Conflict, InvalidInput, InvalidTransition, LimitReached
from beyondbank.core.uow import UnitOfWork
from tests.commerce.factories import make_product
from tests.commerce.groupbuy.factories import make_campaign
from tests.factories import make_customer, make_partner


def _held(uow: UnitOfWork, campaign: GroupBuy, customer_id: int) -> int | None:
    return uow.session.scalar(
        select(GroupBuyParticipant.units).where(
            GroupBuyParticipant.campaign_id == campaign.id,
            GroupBuyParticipant.customer_id == customer_id,
        )
    )


def _joined(uow: UnitOfWork, campaign: GroupBuy) -> int:
    uow.session.refresh(campaign)
    return campaign.units_joined


@pytest.fixture
def setup(uow: UnitOfWork):  # type: ignore[no-untyped-def]
    partner = make_partner(uow)
    product = make_product(uow, partner)
    return partner, product


def test_join_returns_the_entry_price_and_counts_units(uow: UnitOfWork, setup) -> None:  # type: ignore[no-untyped-def]
    partner, product = setup
    campaign = make_campaign(uow, partner, product, tiers=((1, 950), (5, 850), (10, 750)))
    customer = make_customer(uow)
    price = service.join(uow, campaign_id=campaign.id, customer_id=customer.id, quantity=2)
    assert price == 950
    service.join(uow, campaign_id=campaign.id, customer_id=customer.id, quantity=1)
    assert _held(uow, campaign, customer.id) == 3
    assert _joined(uow, campaign) == 3


def test_over_the_per_customer_limit_says_how_many_are_left(uow: UnitOfWork, setup) -> None:  # type: ignore[no-untyped-def]
    partner, product = setup
    campaign = make_campaign(uow, partner, product, per_customer_limit=3)
    customer = make_customer(uow)
    service.join(uow, campaign_id=campaign.id, customer_id=customer.id, quantity=2)
    with pytest.raises(LimitReached) as refused:
        service.join(uow, campaign_id=campaign.id, customer_id=customer.id, quantity=2)
    assert refused.value.extra["units_left"] == 1
    assert "1 left" in refused.value.detail
    # the refusal wrote nothing: neither counter moved
    assert _held(uow, campaign, customer.id) == 2
    assert _joined(uow, campaign) == 2
    with pytest.raises(LimitReached):
        service.join(uow, campaign_id=campaign.id, customer_id=make_customer(uow).id, quantity=4)


def test_the_cap_refuses_what_would_exceed_it(uow: UnitOfWork, setup) -> None:  # type: ignore[no-untyped-def]
    partner, product = setup
    campaign = make_campaign(uow, partner, product, max_total_units=5)
    first, second = make_customer(uow), make_customer(uow)
    service.join(uow, campaign_id=campaign.id, customer_id=first.id, quantity=4)
    with pytest.raises(Conflict) as refused:
        service.join(uow, campaign_id=campaign.id, customer_id=second.id, quantity=2)
    assert "sold out" in refused.value.detail
    assert _held(uow, campaign, second.id) is None
    service.join(uow, campaign_id=campaign.id, customer_id=second.id, quantity=1)
    assert _joined(uow, campaign) == 5


def test_joining_outside_the_window_names_the_status(
    uow: UnitOfWork,
    clock: FixedClock,
    setup,  # type: ignore[no-untyped-def]
) -> None:
    partner, product = setup
    later = make_campaign(uow, partner, product, opens_in=timedelta(hours=2))
    customer = make_customer(uow)
    with pytest.raises(InvalidTransition) as refused:
        service.join(uow, campaign_id=later.id, customer_id=customer.id, quantity=1)
    assert refused.value.extra["current_status"] == "scheduled"
    clock.advance(timedelta(hours=3))
    assert service.join(uow, campaign_id=later.id, customer_id=customer.id, quantity=1) == 900
    clock.advance(timedelta(days=3))
    with pytest.raises(InvalidTransition) as closed:
        service.join(uow, campaign_id=later.id, customer_id=customer.id, quantity=1)
    assert closed.value.extra["current_status"] == "closing"
    cancelled = make_campaign(uow, partner, product, status=CampaignStatus.CANCELLED)
    with pytest.raises(InvalidTransition) as refused:
        service.join(uow, campaign_id=cancelled.id, customer_id=customer.id, quantity=1)
    assert refused.value.extra["current_status"] == "cancelled"


@pytest.mark.parametrize("quantity", [0, -1])
def test_a_quantity_below_one_is_bad_input(uow: UnitOfWork, setup, quantity: int) -> None:  # type: ignore[no-untyped-def]
    partner, product = setup
    campaign = make_campaign(uow, partner, product)
    with pytest.raises(InvalidInput) as refused:
        service.join(
            uow, campaign_id=campaign.id, customer_id=make_customer(uow).id, quantity=quantity
        )
    assert refused.value.errors[0].field == "quantity"
    with pytest.raises(InvalidInput):
        service.leave(uow, campaign_id=campaign.id, customer_id=1, quantity=quantity)


def test_leave_gives_units_back_and_never_more_than_held(uow: UnitOfWork, setup) -> None:  # type: ignore[no-untyped-def]
    partner, product = setup
    campaign = make_campaign(uow, partner, product, per_customer_limit=3)
    customer = make_customer(uow)
    service.join(uow, campaign_id=campaign.id, customer_id=customer.id, quantity=3)
    service.leave(uow, campaign_id=campaign.id, customer_id=customer.id, quantity=2)
    assert _held(uow, campaign, customer.id) == 1
    assert _joined(uow, campaign) == 1
    with pytest.raises(Conflict):
        service.leave(uow, campaign_id=campaign.id, customer_id=customer.id, quantity=2)
    assert _held(uow, campaign, customer.id) == 1
    assert _joined(uow, campaign) == 1
    # the allowance is back: the customer may join for two more
    service.join(uow, campaign_id=campaign.id, customer_id=customer.id, quantity=2)
    assert _held(uow, campaign, customer.id) == 3
