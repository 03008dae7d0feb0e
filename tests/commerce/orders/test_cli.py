"""`beyondbank shop expire-reservations` and `beyondbank shop complete-orders` on a database of
their own, as an operator's schedule runs them: each is safe to run twice."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import Engine, select
from typer.testing import CliRunner

from beyondbank.cli import app as cli
from beyondbank.commerce.models import Order, OrderStatus
from beyondbank.commerce.orders import service
from beyondbank.core.authz import Role
from beyondbank.core.clock import FixedClock, SystemClock
from beyondbank.core.uow import UnitOfWork, make_session_factory
from beyondbank.payments.bankcore import BankCoreGateway
from beyondbank.payments.gateway import PaymentStatus
from beyondbank.payments.models import Payment
from tests import factories as f
from tests.commerce.factories import make_product
from tests.commerce.orders.conftest import ADDRESS
from tests.commerce.orders.test_checkout import AuthorisesThenFails
from tests.payments import factories as pf


def test_the_jobs_expire_reservations_and_complete_orders(cli_database: Engine) -> None:
    factory = make_session_factory(cli_database)
    last_month = FixedClock(SystemClock().now() - timedelta(days=30))
    bank = BankCoreGateway(factory, last_month)
    with UnitOfWork(factory, last_month) as uow:
        partner = f.make_partner(uow, return_window_days=14)
        product = make_product(
            uow, partner, stock=10, valid_from=last_month.now() - timedelta(days=1)
        )
        customer = f.make_customer(uow)
        pf.make_account(uow, customer, opening=10_000)
        uow.commit()
        buyer = f.principal(customer)
        data = service.CheckoutIn(
            partner_id=partner.public_id,
            shipping_address=dict(ADDRESS),
            share_address_with_partner=True,
            items=[service.Wanted(product.public_id, 1)],
        )
        delivered = service.checkout_order(uow, bank, buyer, data).order.public_id
        admin = f.principal(f.make_user(uow, Role.PARTNER_ADMIN, partner=partner))
        uow.commit()
        service.fulfil(uow, admin, delivered)
        service.ship(uow, bank, admin, delivered)
        service.deliver(uow, admin, delivered)
        # An order whose checkout died after the bank authorised it, before it was marked paid.
        with pytest.raises(KeyboardInterrupt):
            service.checkout_order(uow, AuthorisesThenFails(bank, KeyboardInterrupt()), buyer, data)  # type: ignore[arg-type]
        stuck = uow.session.scalars(
            select(Order.public_id).where(Order.status == OrderStatus.PENDING_PAYMENT)
        ).one()

    runner = CliRunner()
    expired = runner.invoke(cli, ["shop", "expire-reservations"])
    assert expired.exit_code == 0, expired.output
    assert f"cancelled {stuck}" in expired.output
    completed = runner.invoke(cli, ["shop", "complete-orders"])
    assert completed.exit_code == 0, completed.output
    assert f"completed {delivered}" in completed.output
    assert "0 order(s)" in runner.invoke(cli, ["shop", "expire-reservations"]).output
    assert "0 order(s) completed" in runner.invoke(cli, ["shop", "complete-orders"]).output

    with UnitOfWork(factory, SystemClock()) as uow:
        statuses = dict(uow.session.execute(select(Order.public_id, Order.status)).all())
        assert statuses == {
            delivered: OrderStatus.COMPLETED,
            stuck: OrderStatus.CANCELLED,
        }
        [payment] = [p for p in uow.session.scalars(select(Payment)) if p.reference == stuck]
        assert payment.status is PaymentStatus.VOIDED
