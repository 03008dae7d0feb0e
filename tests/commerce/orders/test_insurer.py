"""The insurance partner: device protection is sold only with an insurer underwriting it, the
policy is issued when its premium is captured, the premium reaches the insurer's payable (less
the bank's commission under its contract) when the order completes, once, and comes back if the
whole order is returned; both parties' statements show their side."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import Engine, func, select

from beyondbank.commerce import service as commerce
from beyondbank.commerce.models import (
    Order,
    OrderStatus,
    Partner,
    PartnerKind,
    PartnerStatus,
    ProtectionPolicy,
)
from beyondbank.commerce.orders import service
from beyondbank.core.authz import SYSTEM
from beyondbank.core.clock import FixedClock
from beyondbank.core.errors import Conflict, InvalidInput
from beyondbank.core.models import AuditEvent
from beyondbank.core.uow import UnitOfWork, make_session_factory
from beyondbank.ledger import chart, verify
from beyondbank.ledger import service as ledger
from beyondbank.ledger.models import LedgerTransaction, OwnerKind
from beyondbank.payments.bankcore import BankCoreGateway
from beyondbank.settlement import periods
from beyondbank.settlement.models import PartyKind
from beyondbank.settlement.statements import SHOP_PROTECTION_CATEGORY
from tests.commerce.orders.conftest import Shop, checkout_in
from tests.conftest import T0
from tests.races import together
from tests.settlement import factories as sf

# 2 units at 10.00: goods 20.00, premium 2 × 2.99 = 5.98, total 25.98.
GOODS, PREMIUM = 2_000, 598


def _payable(uow: UnitOfWork, party: Partner) -> int:
    book = chart.payable(uow, OwnerKind.PARTNER, party.public_id, "GBP")
    return ledger.balance(uow, book).posted.amount


def _transit(uow: UnitOfWork) -> int:
    return ledger.balance(uow, chart.premiums_in_transit(uow, "GBP")).posted.amount


def _contracts(uow: UnitOfWork, shop: Shop) -> tuple[object, object]:
    retailer = sf.make_contract(
        uow, shop.partner.public_id, kind=PartyKind.PARTNER, starts_on=date(2026, 11, 1)
    )
    insurer = sf.make_contract(
        uow,
        shop.insurer.public_id,
        kind=PartyKind.PARTNER,
        starts_on=date(2026, 11, 1),
        base_share_bps=2_500,
        category_overrides={SHOP_PROTECTION_CATEGORY: 3_000},
    )
    uow.commit()
    return retailer, insurer


def _delivered(uow: UnitOfWork, bank: BankCoreGateway, shop: Shop) -> Order:
    order = service.checkout_order(
        uow, bank, shop.buyer, checkout_in(shop, (shop.product, 2), device_protection=True)
    ).order
    assert (order.protection_minor, order.total_minor) == (PREMIUM, GOODS + PREMIUM)
    service.fulfil(uow, shop.partner_admin, order.public_id)
    service.ship(uow, bank, shop.partner_admin, order.public_id)
    service.deliver(uow, shop.partner_admin, order.public_id)
    return order


def _policy(uow: UnitOfWork, order: Order) -> ProtectionPolicy:
    policy = uow.session.get(ProtectionPolicy, order.id, populate_existing=True)
    assert policy is not None
    return policy


def _audited(uow: UnitOfWork, policy: ProtectionPolicy) -> list[str]:
    return list(
        uow.session.scalars(
            select(AuditEvent.action)
            .where(AuditEvent.object_id == policy.policy_ref)
            .order_by(AuditEvent.id)
        )
    )


def test_the_premium_reaches_the_insurer_less_the_banks_commission_once(
    uow: UnitOfWork, bank: BankCoreGateway, shop: Shop, clock: FixedClock
) -> None:
    _retailer, insurer_contract = _contracts(uow, shop)
    order = _delivered(uow, bank, shop)
    policy = _policy(uow, order)
    assert (policy.insurer_id, policy.premium_minor, policy.passed_at) == (
        shop.insurer.id,
        PREMIUM,
        None,
    )
    assert policy.policy_ref == order.protection_policy_ref
    assert _payable(uow, shop.partner) == GOODS + PREMIUM  # the retailer collected it all
    assert _payable(uow, shop.insurer) == 0

    clock.advance(timedelta(days=15))
    assert service.complete_orders(uow) == [order.public_id]
    assert service.complete_orders(uow) == []  # twice: nothing more
    policy = _policy(uow, order)
    # floor(598 × 3,000 / 10,000) = 179: the insurer's `shop.protection` override, not 25%.
    assert (policy.passed_at, policy.commission_minor) == (clock.now(), 179)
    uow.session.refresh(order)
    assert order.commission_minor == 100  # the retailer's 5% of the goods alone
    assert _payable(uow, shop.partner) == GOODS - 100
    assert _payable(uow, shop.insurer) == PREMIUM - 179
    assert _transit(uow) == 0
    kinds = uow.session.execute(
        select(LedgerTransaction.kind, LedgerTransaction.counterparty_ref)
        .where(LedgerTransaction.category == SHOP_PROTECTION_CATEGORY)
        .order_by(LedgerTransaction.id)
    ).all()
    assert [tuple(k) for k in kinds] == [
        ("premium", shop.partner.public_id),
        ("premium", shop.insurer.public_id),
        ("commission", shop.insurer.public_id),
    ]
    assert _audited(uow, policy) == ["shop.protection.issued", "shop.protection.premium_passed"]
    assert verify.run(uow.session).ok

    # Each party's statement shows its side: the retailer passes the premium on, the insurer
    # receives it and pays the bank's commission on it; neither is charged anything else on it.
    clock.set(datetime(2027, 1, 2, 12, 0, tzinfo=UTC))
    for contract, expected in (
        (_retailer, {"sale": GOODS + PREMIUM, "commission": -100, "premium": -PREMIUM}),
        (insurer_contract, {"premium": PREMIUM, "commission": -179}),
    ):
        statements = [
            json.loads(periods.close(uow, SYSTEM, p.public_id).statement.content)
            for p in sf.open_periods(uow, contract)[:2]  # type: ignore[arg-type]
        ]
        activity: dict[str, int] = {}
        for statement in statements:
            for line in statement["activity"]:
                activity[line["kind"]] = activity.get(line["kind"], 0) + line["amount_minor"]
        assert activity == expected
        assert sum(s["totals"]["commission_minor"] for s in statements) == 0
        assert sum(s["totals"]["net_minor"] for s in statements) == sum(expected.values())


def test_a_whole_order_returned_after_completion_hands_the_premium_back(
    uow: UnitOfWork, bank: BankCoreGateway, shop: Shop, clock: FixedClock
) -> None:
    _contracts(uow, shop)
    order = _delivered(uow, bank, shop)
    clock.advance(timedelta(days=15))
    service.complete_orders(uow)
    service.confirm_returned(uow, bank, shop.partner_admin, order.public_id)
    uow.session.refresh(order)
    assert (order.status, order.refunded_minor) == (OrderStatus.REFUNDED, GOODS + PREMIUM)
    policy = _policy(uow, order)
    assert policy.cancelled_at == clock.now()
    assert _payable(uow, shop.insurer) == 0  # premium back, the bank's 179 clawed back
    assert _payable(uow, shop.partner) == 0  # refunded in full, its commission clawed back
    assert _transit(uow) == 0
    assert _audited(uow, policy)[-1] == "shop.protection.cancelled"
    assert verify.run(uow.session).ok


def test_a_return_within_the_window_cancels_the_policy_before_anything_is_passed(
    uow: UnitOfWork, bank: BankCoreGateway, shop: Shop
) -> None:
    _contracts(uow, shop)
    order = _delivered(uow, bank, shop)
    service.request_return(uow, shop.buyer, order.public_id, "changed my mind")
    service.confirm_returned(uow, bank, shop.partner_admin, order.public_id)
    policy = _policy(uow, order)
    assert (policy.passed_at, policy.cancelled_at is not None) == (None, True)
    premiums = select(func.count()).where(LedgerTransaction.kind.like("premium%"))
    assert uow.session.scalar(premiums) == 0
    assert (_payable(uow, shop.partner), _payable(uow, shop.insurer)) == (0, 0)


def _without_insurer(uow: UnitOfWork, shop: Shop) -> None:
    insurer = uow.session.get_one(Partner, shop.insurer.id)
    insurer.status = PartnerStatus.TERMINATED
    uow.commit()


def test_without_an_insurer_protection_is_not_offered_and_a_checkout_asking_writes_nothing(
    uow: UnitOfWork, bank: BankCoreGateway, shop: Shop
) -> None:
    _without_insurer(uow, shop)
    service.add_item(
        uow, shop.buyer, product_id=shop.product.public_id, quantity=1, campaign_id=None
    )
    offers = service.offers(uow, shop.buyer, shop.partner.public_id)
    assert (offers.insurer, offers.protection_minor) == (None, 0)
    with pytest.raises(InvalidInput) as refused:
        service.checkout_order(
            uow, bank, shop.buyer, checkout_in(shop, (shop.product, 1), device_protection=True)
        )
    assert [e.field for e in refused.value.errors] == ["body.device_protection"]
    assert uow.session.scalar(select(func.count()).select_from(Order)) == 0
    placed = service.checkout_order(uow, bank, shop.buyer, checkout_in(shop, (shop.product, 1)))
    assert placed.order.status is OrderStatus.PAID  # without protection, as ever


def test_an_insurer_gone_before_the_first_shipment_stops_it_before_any_capture(
    uow: UnitOfWork, bank: BankCoreGateway, shop: Shop
) -> None:
    order = service.checkout_order(
        uow, bank, shop.buyer, checkout_in(shop, (shop.product, 1), device_protection=True)
    ).order
    service.fulfil(uow, shop.partner_admin, order.public_id)
    _without_insurer(uow, shop)
    with pytest.raises(Conflict) as refused:
        service.ship(uow, bank, shop.partner_admin, order.public_id)
    assert refused.value.extra["reason"] == "no_underwriter"
    uow.session.refresh(order)
    assert (order.status, order.captured_minor) == (OrderStatus.FULFILLING, 0)
    assert uow.session.get(ProtectionPolicy, order.id) is None


def test_one_active_insurer_per_currency(uow: UnitOfWork, shop: Shop) -> None:
    second = commerce.PartnerIn(
        name="Other Mutual",
        legal_name="Other Mutual plc",
        country="GB",
        currency="GBP",
        timezone="Europe/London",
        kind=PartnerKind.INSURER,
    )
    with pytest.raises(Conflict) as refused:
        commerce.create_partner(uow, SYSTEM, second)
    assert refused.value.extra["insurer_id"] == shop.insurer.public_id
    euro = commerce.create_partner(uow, SYSTEM, replace(second, currency="EUR"))
    assert euro.kind is PartnerKind.INSURER  # another currency has an insurer of its own


def test_two_insurers_registered_at_once_leave_one(committing_engine: Engine) -> None:
    clock = FixedClock(T0)
    factory = make_session_factory(committing_engine)

    def register(i: int) -> str:
        with UnitOfWork(factory, clock) as uow:
            return commerce.create_partner(
                uow,
                SYSTEM,
                commerce.PartnerIn(
                    name=f"Insurer {i}",
                    legal_name=f"Insurer {i} plc",
                    country="GB",
                    currency="GBP",
                    timezone="Europe/London",
                    kind=PartnerKind.INSURER,
                ),
            ).public_id

    results = together(6, register)
    assert sum(isinstance(r, str) for r in results) == 1
    assert sum(isinstance(r, Conflict) for r in results) == 5
    with factory() as session:
        insurers = select(func.count()).where(Partner.kind == PartnerKind.INSURER)
        assert session.scalar(insurers) == 1
