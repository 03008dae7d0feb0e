"""Re-authorisation: a paid order not yet captured when its 7-day authorisation runs out is held
again (with its own Idempotency-Key) before the first shipment captures, or cancelled, with the
bank's reason in its history, when the bank refuses; the job is safe to run again."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, select
from typer.testing import CliRunner

from beyondbank.commerce.models import Order, OrderEvent, OrderStatus, PartnerKind, WebhookEvent
from beyondbank.commerce.orders import checkout, service
from beyondbank.commerce.orders.checkout import Wanted
from beyondbank.core.authz import SYSTEM
from beyondbank.core.clock import FixedClock
from beyondbank.core.errors import InvalidTransition
from beyondbank.core.models import AuditEvent
from beyondbank.core.uow import UnitOfWork, make_session_factory
from beyondbank.payments import service as payments
from beyondbank.payments.bankcore import BankCoreGateway
from beyondbank.payments.gateway import AuthoriseRequest, PaymentResult, PaymentStatus
from tests import factories as f
from tests.commerce.factories import make_product
from tests.commerce.orders.conftest import ADDRESS, Shop, checkout_in
from tests.conftest import T0
from tests.payments import factories as pf
from tests.races import in_units

DAY = timedelta(days=1)


def _paid(uow: UnitOfWork, bank: BankCoreGateway, shop: Shop, **over: Any) -> Order:
    order = service.checkout_order(
        uow, bank, shop.buyer, checkout_in(shop, (shop.product, 2), **over)
    ).order
    assert order.status is OrderStatus.PAID
    return order


def _notes(uow: UnitOfWork, order: Order) -> list[str | None]:
    return [e.note for e in service.order_events(uow, order)]


def test_an_order_whose_hold_runs_out_soon_is_held_again_and_ships_from_the_new_hold(
    uow: UnitOfWork, bank: BankCoreGateway, shop: Shop, clock: FixedClock
) -> None:
    order = _paid(uow, bank, shop)
    service.fulfil(uow, shop.partner_admin, order.public_id)
    old = order.payment_ref or ""
    clock.advance(5 * DAY)
    assert service.renewals_due(uow, ahead=DAY) == []  # two days left: not yet
    clock.advance(DAY + timedelta(hours=1))  # 23 hours left

    done = service.reauthorise_orders(uow, bank, ahead=DAY)
    assert (done.renewed, done.cancelled, done.failed) == ([order.public_id], [], [])
    uow.session.refresh(order)
    new = order.payment_ref or ""
    assert new != old
    assert order.status is OrderStatus.FULFILLING
    assert bank.payment(old).status is PaymentStatus.VOIDED
    renewed = bank.payment(new)
    assert (renewed.status, renewed.amount_minor) == (PaymentStatus.AUTHORISED, order.total_minor)
    assert renewed.expires_at == clock.now() + 7 * DAY
    assert pf.deposit_figures(uow, shop.account).pending == order.total_minor  # held once
    assert _notes(uow, order)[-1] == f"{service.REAUTHORISED}: {new}"
    audited = uow.session.scalars(
        select(AuditEvent).where(AuditEvent.action == "shop.order.reauthorised")
    ).one()
    assert (audited.before, audited.after) == ({"payment_ref": old}, {"payment_ref": new})

    again = service.reauthorise_orders(uow, bank, ahead=DAY)  # twice: nothing is due
    assert (again.renewed, again.cancelled, again.unchanged) == ([], [], [])

    shipment = service.ship(uow, bank, shop.partner_admin, order.public_id)
    assert shipment.amount_minor == order.total_minor
    assert bank.payment(new).status is PaymentStatus.CAPTURED


def test_an_expired_hold_is_renewed_before_the_shipment_that_it_would_refuse(
    uow: UnitOfWork, bank: BankCoreGateway, shop: Shop, clock: FixedClock
) -> None:
    order = _paid(uow, bank, shop, device_protection=True)
    service.fulfil(uow, shop.partner_admin, order.public_id)
    clock.advance(8 * DAY)
    bank.expire_due()  # the bank released the hold
    with pytest.raises(InvalidTransition) as refused:
        service.ship(uow, bank, shop.partner_admin, order.public_id)
    assert refused.value.extra["current_status"] == "expired"

    done = service.reauthorise_orders(uow, bank, ahead=timedelta(0))
    assert done.renewed == [order.public_id]
    uow.session.refresh(order)
    shipment = service.ship(uow, bank, shop.partner_admin, order.public_id)
    assert shipment.amount_minor == order.total_minor  # goods and the protection premium


def test_a_refused_renewal_cancels_the_order_and_says_why(
    uow: UnitOfWork, bank: BankCoreGateway, shop: Shop, clock: FixedClock
) -> None:
    order = _paid(uow, bank, shop)
    old = order.payment_ref or ""
    payments.block(uow, SYSTEM, shop.account, "suspected fraud")
    uow.commit()
    clock.advance(6 * DAY + timedelta(hours=12))

    done = service.reauthorise_orders(uow, bank, ahead=DAY)
    assert (done.renewed, done.cancelled) == ([], [order.public_id])
    uow.session.refresh(order)
    assert order.status is OrderStatus.CANCELLED
    assert _notes(uow, order)[-1] == f"{service.REAUTHORISATION_DECLINED}: account_blocked"
    assert bank.payment(old).status is PaymentStatus.VOIDED  # the old hold released at once
    assert pf.deposit_figures(uow, shop.account).pending == 0
    uow.session.refresh(shop.product)
    assert shop.product.stock_reserved == 0
    events = uow.session.scalars(select(WebhookEvent.event_type).order_by(WebhookEvent.id)).all()
    assert events[-1] == "order.cancelled"  # the partner is told not to send it
    assert service.reauthorise_orders(uow, bank, ahead=DAY).cancelled == []  # twice: nothing


def test_a_crash_after_the_bank_renewed_is_finished_by_the_next_run_with_the_same_key(
    uow: UnitOfWork, bank: BankCoreGateway, shop: Shop, clock: FixedClock
) -> None:
    order = _paid(uow, bank, shop)
    old = order.payment_ref or ""

    class DiesAfterTheBank:
        def authorise(self, request: AuthoriseRequest, **kw: Any) -> PaymentResult:
            bank.authorise(request, **kw)
            raise ConnectionError("the answer was lost")

        def __getattr__(self, name: str) -> Any:
            return getattr(bank, name)

    clock.advance(6 * DAY + timedelta(hours=12))
    lost = service.reauthorise_orders(uow, DiesAfterTheBank(), ahead=DAY)  # type: ignore[arg-type]
    assert lost.failed == [(order.public_id, "ConnectionError: the answer was lost")]
    done = service.reauthorise_orders(uow, bank, ahead=DAY)
    assert done.renewed == [order.public_id]
    found, _next = payments.list_payments(
        uow, SYSTEM, payments.PaymentFilters(reference=order.public_id)
    )
    # One renewal, not two: the rerun's key got the bank's first answer.
    assert sorted(p.status.value for p in found) == ["authorised", "voided"]
    uow.session.refresh(order)
    assert order.payment_ref != old
    key = checkout.reauthorise_key(order, old)
    assert key == f"shop:{order.public_id}:reauthorise:{old}"


def test_an_order_shipped_meanwhile_keeps_its_payment_and_the_new_hold_is_released(
    uow: UnitOfWork, bank: BankCoreGateway, shop: Shop, clock: FixedClock
) -> None:
    order = _paid(uow, bank, shop)
    service.fulfil(uow, shop.partner_admin, order.public_id)
    old = order.payment_ref or ""
    clock.advance(6 * DAY + timedelta(hours=12))

    class ShipsWhileTheBankWorks:
        def authorise(self, request: AuthoriseRequest, **kw: Any) -> PaymentResult:
            answer = bank.authorise(request, **kw)
            with uow.fresh() as partner:
                service.ship(partner, bank, shop.partner_admin, order.public_id)
            return answer

        def __getattr__(self, name: str) -> Any:
            return getattr(bank, name)

    done = service.reauthorise_orders(uow, ShipsWhileTheBankWorks(), ahead=DAY)  # type: ignore[arg-type]
    assert done.unchanged == [order.public_id]
    uow.session.refresh(order)
    assert (order.status, order.payment_ref) == (OrderStatus.SHIPPED, old)
    statuses = sorted(
        p.status.value
        for p in payments.list_payments(
            uow, SYSTEM, payments.PaymentFilters(reference=order.public_id)
        )[0]
    )
    assert statuses == ["captured", "voided"]
    assert pf.deposit_figures(uow, shop.account).pending == 0


def test_group_buy_and_shipped_orders_are_never_due(
    uow: UnitOfWork, bank: BankCoreGateway, shop: Shop, clock: FixedClock
) -> None:
    shipped = _paid(uow, bank, shop)
    service.fulfil(uow, shop.partner_admin, shipped.public_id)
    service.ship(uow, bank, shop.partner_admin, shipped.public_id)
    cancelled = _paid(uow, bank, shop)
    service.cancel(uow, bank, shop.buyer, cancelled.public_id)
    clock.advance(10 * DAY)
    assert service.renewals_due(uow, ahead=DAY) == []


def test_the_command_renews_prints_and_is_safe_to_run_twice(
    uow: UnitOfWork,
    bank: BankCoreGateway,
    shop: Shop,
    clock: FixedClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from contextlib import contextmanager

    from beyondbank.cli import app as cli
    from beyondbank.commerce.orders import cli as orders_cli

    order = _paid(uow, bank, shop)
    clock.advance(6 * DAY + timedelta(hours=12))

    @contextmanager
    def the_tests_unit():  # type: ignore[no-untyped-def]
        yield uow, bank

    monkeypatch.setattr(orders_cli, "_unit", the_tests_unit)
    runner = CliRunner()
    first = runner.invoke(cli, ["shop", "reauthorise-orders", "--ahead-hours", "24"])
    assert first.exit_code == 0, first.output
    assert f"renewed {order.public_id}" in first.output
    assert "1 renewed, 0 cancelled, 0 changed meanwhile, 0 failed" in first.output
    second = runner.invoke(cli, ["shop", "reauthorise-orders"])
    assert "0 renewed, 0 cancelled, 0 changed meanwhile, 0 failed" in second.output
    notes = uow.session.scalars(select(OrderEvent.note).where(OrderEvent.order_id == order.id))
    assert sum(1 for n in notes if n and n.startswith(service.REAUTHORISED)) == 1


def test_runs_at_once_renew_each_order_once(committing_engine: Engine) -> None:
    """Four runs of the job at the same moment on PostgreSQL, over the same six due orders of
    six customers: every order is renewed once (one new hold, pointed at by the order, the old
    one voided), each by one run; the others find it claimed or done."""
    clock = FixedClock(T0)
    factory = make_session_factory(committing_engine)
    bank = BankCoreGateway(factory, clock, timezone="Europe/London")
    order_ids, accounts = [], []
    with UnitOfWork(factory, clock) as uow:
        partner = f.make_partner(uow)
        f.make_partner(uow, kind=PartnerKind.INSURER)
        product = make_product(uow, partner, public_minor=1_250, client_minor=1_000, stock=50)
        uow.commit()
        for _ in range(6):
            customer = f.make_customer(uow)
            accounts.append(pf.make_account(uow, customer, opening=10_000))
            uow.commit()
            data = service.CheckoutIn(
                partner_id=partner.public_id,
                shipping_address=dict(ADDRESS),
                share_address_with_partner=True,
                items=[Wanted(product.public_id, 1)],
            )
            placed = service.checkout_order(uow, bank, f.principal(customer), data)
            order_ids.append(placed.order.public_id)
    clock.advance(6 * DAY + timedelta(hours=12))

    def run(uow: UnitOfWork, i: int) -> service.Renewals:
        return service.reauthorise_orders(uow, bank, ahead=DAY)

    results = in_units(committing_engine, clock, 4, run)
    runs = [r for r in results if isinstance(r, service.Renewals)]
    assert len(runs) == 4
    assert all(r.failed == [] and r.cancelled == [] for r in runs)
    assert sorted(o for r in runs for o in r.renewed) == sorted(order_ids)  # each once
    with UnitOfWork(factory, clock) as uow:
        for order_id, account in zip(order_ids, accounts, strict=True):
            order = uow.session.scalars(select(Order).where(Order.public_id == order_id)).one()
            found, _next = payments.list_payments(
                uow, SYSTEM, payments.PaymentFilters(reference=order_id)
            )
            held = [p.public_id for p in found if p.status is PaymentStatus.AUTHORISED]
            assert held == [order.payment_ref]
            assert sorted(p.status.value for p in found) == ["authorised", "voided"]
            assert pf.deposit_figures(uow, account).pending == 1_000


def test_runs_at_once_over_one_customers_orders_renew_each_once(
    committing_engine: Engine,
) -> None:
    """Five due orders of one customer and four runs at once: renewing one order (an
    authorisation) and releasing another's old hold (a void) touch the same deposit account at
    the same moment; every order is renewed once and the customer's money is held once."""
    clock = FixedClock(T0)
    factory = make_session_factory(committing_engine)
    bank = BankCoreGateway(factory, clock, timezone="Europe/London")
    with UnitOfWork(factory, clock) as uow:
        partner = f.make_partner(uow)
        product = make_product(uow, partner, public_minor=1_250, client_minor=1_000, stock=50)
        customer = f.make_customer(uow)
        account = pf.make_account(uow, customer, opening=100_000)
        uow.commit()
        data = service.CheckoutIn(
            partner_id=partner.public_id,
            shipping_address=dict(ADDRESS),
            share_address_with_partner=True,
            items=[Wanted(product.public_id, 1)],
        )
        order_ids = [
            service.checkout_order(uow, bank, f.principal(customer), data).order.public_id
            for _ in range(5)
        ]
    clock.advance(6 * DAY + timedelta(hours=12))

    def run(uow: UnitOfWork, i: int) -> service.Renewals:
        return service.reauthorise_orders(uow, bank, ahead=DAY)

    runs = [
        r for r in in_units(committing_engine, clock, 4, run) if isinstance(r, service.Renewals)
    ]
    assert [r.failed for r in runs] == [[], [], [], []]
    assert sorted(o for r in runs for o in r.renewed) == sorted(order_ids)
    with UnitOfWork(factory, clock) as uow:
        assert pf.deposit_figures(uow, account).pending == 5 * 1_000
