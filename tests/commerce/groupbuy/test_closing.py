"""Closing campaigns: the final tier, refunds of the difference or in full through the real bank
core gateway and ledger, exactly once across reruns and gateway failures."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from beyondbank.commerce.groupbuy import closing, service
from beyondbank.commerce.models import (
    CampaignRefund,
    CampaignStatus,
    GroupBuy,
    Order,
    OrderStatus,
    Partner,
    Product,
    WebhookEvent,
)
from beyondbank.core.authz import SYSTEM
from beyondbank.core.clock import FixedClock
from beyondbank.core.errors import Conflict, InvalidTransition
from beyondbank.core.models import AuditEvent
from beyondbank.core.uow import UnitOfWork
from beyondbank.payments.bankcore import BankCoreGateway
from beyondbank.payments.gateway import OperationKind, PaymentStatus
from beyondbank.payments.models import PaymentOperation
from tests.commerce.factories import make_product
from tests.commerce.groupbuy.conftest import FlakyBank
from tests.commerce.groupbuy.factories import make_campaign, make_paid_order
from tests.factories import make_partner
from tests.payments.factories import deposit_figures

TIERS = ((1, 1_000), (5, 900), (10, 800))


@pytest.fixture
def shop(uow: UnitOfWork) -> tuple[Partner, Product]:
    partner = make_partner(uow)
    return partner, make_product(uow, partner, public_minor=1_200, client_minor=1_100)


def _campaign(uow: UnitOfWork, shop: tuple[Partner, Product], **over) -> GroupBuy:  # type: ignore[no-untyped-def]
    partner, product = shop
    over.setdefault("tiers", TIERS)
    over.setdefault("min_total_units", 5)
    campaign = make_campaign(uow, partner, product, **over)
    uow.commit()
    return campaign


def _refund_ops(uow: UnitOfWork) -> int:
    return int(
        uow.session.scalar(
            select(func.count(PaymentOperation.id)).where(
                PaymentOperation.kind == OperationKind.REFUND
            )
        )
        or 0
    )


def _refunds(uow: UnitOfWork, campaign: GroupBuy) -> list[CampaignRefund]:
    return list(
        uow.session.scalars(
            select(CampaignRefund)
            .where(CampaignRefund.campaign_id == campaign.id)
            .order_by(CampaignRefund.order_id)
            .execution_options(populate_existing=True)
        )
    )


def _fresh(uow: UnitOfWork, obj):  # type: ignore[no-untyped-def]
    uow.session.refresh(obj)
    return obj


def test_a_successful_close_refunds_each_order_the_difference(
    uow: UnitOfWork, clock: FixedClock, bank: BankCoreGateway, shop
) -> None:  # type: ignore[no-untyped-def]
    campaign = _campaign(uow, shop)
    orders = [make_paid_order(uow, bank, campaign, quantity=q) for q in (3, 4, 4)]  # 11 units
    balances = [deposit_figures(uow, o.account).posted for o in orders]
    clock.advance(timedelta(days=3))

    run = closing.close_due(uow, bank)

    assert [s.status for s in run.settled] == [CampaignStatus.SUCCEEDED]
    assert run.settled[0].units == 11
    campaign = _fresh(uow, campaign)
    assert campaign.status is CampaignStatus.SUCCEEDED
    assert campaign.final_unit_minor == 800  # 11 units reach the 10-unit tier
    assert [r.amount_minor for r in _refunds(uow, campaign)] == [600, 800, 800]
    assert all(
        r.done_at is not None and r.reason == "tier_difference" for r in _refunds(uow, campaign)
    )
    assert run.refunds.refunded == 3
    assert run.refunds.refunded_minor == 2_200
    for paid, before, back in zip(orders, balances, (600, 800, 800), strict=True):
        order = _fresh(uow, paid.order)
        assert order.refunded_minor == back
        assert order.status is OrderStatus.PAID  # a successful campaign's orders go on
        payment = bank.payment(paid.payment_id)
        assert payment.status is PaymentStatus.PARTIALLY_REFUNDED
        assert payment.refunded_minor == back
        # the money is back on the customer's deposit, through the ledger
        assert deposit_figures(uow, paid.account).posted == before + back
    # what customers paid net is exactly the total at the final price
    paid_net = sum(
        _fresh(uow, o.order).captured_minor - _fresh(uow, o.order).refunded_minor for o in orders
    )
    assert paid_net == 11 * 800
    event = uow.session.scalars(
        select(WebhookEvent).where(WebhookEvent.event_type == "group_buy.closed")
    ).one()
    assert event.partner_id == campaign.partner_id
    assert event.payload["data"]["final_unit_minor"] == 800
    assert event.payload["data"]["orders"] == 3


def test_a_campaign_below_its_minimum_fails_and_refunds_in_full(
    uow: UnitOfWork, clock: FixedClock, bank: BankCoreGateway, shop
) -> None:  # type: ignore[no-untyped-def]
    campaign = _campaign(uow, shop, min_total_units=10)
    orders = [make_paid_order(uow, bank, campaign, quantity=q) for q in (2, 3)]
    balances = [deposit_figures(uow, o.account).posted for o in orders]
    product = shop[1]
    assert _fresh(uow, product).stock_reserved == 5
    clock.advance(timedelta(days=3))

    run = closing.close_due(uow, bank)

    assert run.settled[0].status is CampaignStatus.FAILED
    campaign = _fresh(uow, campaign)
    assert campaign.status is CampaignStatus.FAILED
    assert campaign.final_unit_minor is None
    assert [(r.amount_minor, r.reason) for r in _refunds(uow, campaign)] == [
        (2_000, "campaign_failed"),
        (3_000, "campaign_failed"),
    ]
    for paid, before in zip(orders, balances, strict=True):
        order = _fresh(uow, paid.order)
        assert order.status is OrderStatus.CANCELLED
        assert order.refunded_minor == order.captured_minor
        assert bank.payment(paid.payment_id).status is PaymentStatus.REFUNDED
        assert deposit_figures(uow, paid.account).posted == before + order.captured_minor
    assert _fresh(uow, product).stock_reserved == 0  # the cancelled orders' stock is released


def test_closing_twice_refunds_once(
    uow: UnitOfWork, clock: FixedClock, flaky: FlakyBank, bank: BankCoreGateway, shop
) -> None:  # type: ignore[no-untyped-def]
    campaign = _campaign(uow, shop)
    for q in (5, 5):
        make_paid_order(uow, bank, campaign, quantity=q)
    clock.advance(timedelta(days=3))

    first = closing.close_due(uow, flaky)
    again = closing.close_due(uow, flaky)
    by_hand, refunds = closing.close_now(uow, flaky, SYSTEM, campaign.public_id)

    assert first.refunds.refunded == 2
    assert again.settled == []
    assert again.refunds.refunded == 0
    assert by_hand.newly is False
    assert by_hand.refund_minor == 2 * 5 * 200
    assert refunds.refunded == 0
    assert len(flaky.refund_calls) == 2
    assert _refund_ops(uow) == 2
    assert len(_refunds(uow, campaign)) == 2
    closed_events = uow.session.scalar(
        select(func.count(WebhookEvent.id)).where(WebhookEvent.event_type == "group_buy.closed")
    )
    assert closed_events == 1


def test_a_gateway_failure_leaves_one_refund_pending_and_a_rerun_finishes_it(
    uow: UnitOfWork, clock: FixedClock, flaky: FlakyBank, bank: BankCoreGateway, shop
) -> None:  # type: ignore[no-untyped-def]
    campaign = _campaign(uow, shop, min_total_units=20)  # will fail: full refunds
    orders = [make_paid_order(uow, bank, campaign, quantity=q) for q in (1, 2, 3)]
    flaky.down.add(orders[1].payment_id)
    clock.advance(timedelta(days=3))

    first = closing.close_due(uow, flaky)

    assert first.refunds.refunded == 2
    assert first.refunds.failed == 1
    pending = [r for r in _refunds(uow, campaign) if r.done_at is None]
    assert len(pending) == 1
    assert pending[0].order_id == orders[1].order.id
    assert "unreachable" in (pending[0].error or "")
    assert _fresh(uow, orders[1].order).refunded_minor == 0

    flaky.down.clear()
    clock.advance(timedelta(minutes=10))
    second = closing.close_due(uow, flaky)

    assert second.refunds.refunded == 1
    assert second.refunds.failed == 0
    assert all(r.done_at is not None and r.error is None for r in _refunds(uow, campaign))
    assert _refund_ops(uow) == 3
    for paid in orders:
        order = _fresh(uow, paid.order)
        assert order.refunded_minor == order.captured_minor


def test_a_crash_after_the_bank_refunded_is_repaired_without_refunding_twice(
    uow: UnitOfWork, clock: FixedClock, bank: BankCoreGateway, shop
) -> None:  # type: ignore[no-untyped-def]
    campaign = _campaign(uow, shop)
    paid = make_paid_order(uow, bank, campaign, quantity=5)
    clock.advance(timedelta(days=3))
    closing.settle(uow, campaign.id, SYSTEM, action="close")
    (refund,) = _refunds(uow, campaign)
    # The bank refunds, then the job dies before recording it.
    bank.refund(
        paid.payment_id, key=closing.refund_key(refund.id), amount_minor=refund.amount_minor
    )

    run = closing.close_due(uow, bank)

    assert run.refunds.refunded == 1
    assert _refund_ops(uow) == 1  # the rerun's call was the bank's replay of the first
    assert bank.payment(paid.payment_id).refunded_minor == 500
    assert _fresh(uow, paid.order).refunded_minor == 500


def test_only_paid_orders_count(
    uow: UnitOfWork, clock: FixedClock, bank: BankCoreGateway, shop
) -> None:  # type: ignore[no-untyped-def]
    campaign = _campaign(uow, shop, min_total_units=5)
    make_paid_order(uow, bank, campaign, quantity=3)
    make_paid_order(uow, bank, campaign, quantity=4, status=OrderStatus.CANCELLED)
    clock.advance(timedelta(days=3))
    run = closing.close_due(uow, bank)
    assert run.settled[0].status is CampaignStatus.FAILED
    assert run.settled[0].units == 3
    assert run.settled[0].orders == 1


def test_closing_before_the_window_ends_is_refused(
    uow: UnitOfWork, bank: BankCoreGateway, shop
) -> None:  # type: ignore[no-untyped-def]
    campaign = _campaign(uow, shop)
    with pytest.raises(InvalidTransition) as refused:
        closing.close_now(uow, bank, SYSTEM, campaign.public_id)
    assert refused.value.extra["current_status"] == "open"
    assert closing.close_due(uow, bank).settled == []
    assert _fresh(uow, campaign).status is CampaignStatus.OPEN  # the job recorded its opening


def test_cancel_refunds_in_full_and_a_closed_campaign_cannot_be_cancelled(
    uow: UnitOfWork, clock: FixedClock, bank: BankCoreGateway, shop
) -> None:  # type: ignore[no-untyped-def]
    campaign = _campaign(uow, shop)
    paid = make_paid_order(uow, bank, campaign, quantity=5)
    settled, refunds = closing.cancel(uow, bank, SYSTEM, campaign.public_id)
    assert settled.status is CampaignStatus.CANCELLED
    assert refunds.refunded == 1
    assert refunds.refunded_minor == 5_000
    assert bank.payment(paid.payment_id).status is PaymentStatus.REFUNDED
    assert _fresh(uow, paid.order).status is OrderStatus.CANCELLED
    audit = uow.session.scalars(
        select(AuditEvent).where(AuditEvent.action == "group_buy.cancelled")
    ).one()
    assert audit.object_id == campaign.public_id
    again, _ = closing.cancel(uow, bank, SYSTEM, campaign.public_id)
    assert again.newly is False
    assert again.status is CampaignStatus.CANCELLED
    clock.advance(timedelta(days=3))
    assert closing.close_due(uow, bank).settled == []
    assert _refund_ops(uow) == 1


def test_a_campaign_nobody_joined_fails_with_nothing_to_refund(
    uow: UnitOfWork, clock: FixedClock, bank: BankCoreGateway, shop
) -> None:  # type: ignore[no-untyped-def]
    _campaign(uow, shop, opens_in=timedelta(hours=1))
    clock.advance(timedelta(days=3))
    run = closing.close_due(uow, bank)
    assert run.settled[0].status is CampaignStatus.FAILED
    assert run.settled[0].orders == 0
    assert run.refunds.refunded == 0
    assert uow.session.scalar(select(func.count(Order.id))) == 0


def test_entry_price_helper_matches_join(uow: UnitOfWork, shop) -> None:  # type: ignore[no-untyped-def]
    campaign = _campaign(uow, shop)
    assert service.entry_unit_minor(uow, campaign.id) == 1_000


def test_a_closed_campaign_cannot_be_cancelled(
    uow: UnitOfWork, clock: FixedClock, bank: BankCoreGateway, shop
) -> None:  # type: ignore[no-untyped-def]
    campaign = _campaign(uow, shop)
    make_paid_order(uow, bank, campaign, quantity=5)
    clock.advance(timedelta(days=3))
    closing.close_due(uow, bank)
    with pytest.raises(InvalidTransition) as refused:
        closing.cancel(uow, bank, SYSTEM, campaign.public_id)
    assert refused.value.extra["current_status"] == "succeeded"
    assert _fresh(uow, campaign).status is CampaignStatus.SUCCEEDED


def test_an_order_still_being_paid_holds_the_close_back(
    uow: UnitOfWork, clock: FixedClock, bank: BankCoreGateway, shop
) -> None:  # type: ignore[no-untyped-def]
    campaign = _campaign(uow, shop, min_total_units=2)
    make_paid_order(uow, bank, campaign, quantity=2)
    paying = make_paid_order(uow, bank, campaign, quantity=1, status=OrderStatus.PENDING_PAYMENT)
    other = _campaign(uow, shop)
    clock.advance(timedelta(days=3))

    first = closing.close_due(uow, bank)

    assert [s.group_buy_id for s in first.settled] == [other.public_id]
    assert len(first.deferred) == 1
    assert "1 order(s) being paid" in first.deferred[0]
    assert _fresh(uow, campaign).status is CampaignStatus.OPEN
    assert _refunds(uow, campaign) == []
    with pytest.raises(Conflict) as refused:
        closing.close_now(uow, bank, SYSTEM, campaign.public_id)
    assert refused.value.extra["orders_being_paid"] == 1

    _fresh(uow, paying.order).status = OrderStatus.PAID  # the checkout finishes
    uow.commit()
    second = closing.close_due(uow, bank)

    assert second.settled[0].units == 3
    assert second.settled[0].final_unit_minor == 1_000
    assert second.deferred == []


def test_an_order_paid_after_its_campaign_was_cancelled_is_refunded_by_the_next_run(
    uow: UnitOfWork, bank: BankCoreGateway, shop
) -> None:  # type: ignore[no-untyped-def]
    campaign = _campaign(uow, shop)
    make_paid_order(uow, bank, campaign, quantity=1)
    closing.cancel(uow, bank, SYSTEM, campaign.public_id)
    # A checkout that joined before the cancel captures its payment after it.
    late = make_paid_order(uow, bank, campaign, quantity=2, join=False)

    run = closing.close_due(uow, bank)

    assert run.late == 1
    assert run.refunds.refunded == 1
    assert run.refunds.refunded_minor == 2_000
    assert bank.payment(late.payment_id).status is PaymentStatus.REFUNDED
    order = _fresh(uow, late.order)
    assert order.status is OrderStatus.CANCELLED
    assert order.refunded_minor == 2_000
    again = closing.close_due(uow, bank)
    assert again.late == 0
    assert again.refunds.refunded == 0
    assert _refund_ops(uow) == 2
