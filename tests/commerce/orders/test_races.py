"""The flash sale on PostgreSQL with real threads: 2,000 buyers, 100 units. The database decides:
exactly 100 orders are paid, stock never goes below zero, every authorised payment has its paid
order and every paid order its authorised payment, and every other buyer gets a clear problem."""

from __future__ import annotations

import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import Engine, func, select

from beyondbank.commerce.models import Order, OrderLine, OrderStatus, Product
from beyondbank.commerce.orders import service
from beyondbank.commerce.orders.checkout import Wanted
from beyondbank.core.authz import Principal
from beyondbank.core.clock import FixedClock
from beyondbank.core.errors import Problem
from beyondbank.core.uow import UnitOfWork, make_session_factory
from beyondbank.payments.bankcore import BankCoreGateway
from beyondbank.payments.gateway import PayeeKind, PaymentStatus
from beyondbank.payments.models import Payment
from tests import factories as f
from tests.commerce.factories import make_product
from tests.commerce.orders.conftest import ADDRESS
from tests.payments import factories as pf

pytestmark = pytest.mark.postgres

BUYERS = 2_000
UNITS = 100
THREADS = 48
UNFUNDED = set(range(0, 500, 10))  # 50 early buyers whose account cannot pay: declined


def test_flash_sale_sells_exactly_the_stock(committing_engine: Engine, clock: FixedClock) -> None:
    factory = make_session_factory(committing_engine)
    with UnitOfWork(factory, clock) as uow:
        partner = f.make_partner(uow)
        product = make_product(uow, partner, public_minor=9_999, client_minor=7_999, stock=UNITS)
        uow.commit()
        partner_ref, product_ref, product_pk = partner.public_id, product.public_id, product.id

    with UnitOfWork(factory, clock) as uow:  # account numbers are sequential: one opener
        buyers: list[Principal] = []
        for i in range(BUYERS):
            customer = f.make_customer(uow)
            pf.make_account(uow, customer, opening=0 if i in UNFUNDED else 10_000)
            buyers.append(f.principal(customer))
        uow.commit()
    bank = BankCoreGateway(factory, clock)

    def buy(i: int) -> Order | Problem:
        data = service.CheckoutIn(
            partner_id=partner_ref,
            shipping_address=dict(ADDRESS),
            share_address_with_partner=True,
            items=[Wanted(product_ref, 1)],
        )
        with UnitOfWork(factory, clock) as uow:
            try:
                return service.checkout_order(
                    uow, bank, buyers[i], data, key=f"flash-{i}", fingerprint="flash"
                ).order
            except Problem as problem:
                return problem

    started = time.monotonic()
    with ThreadPoolExecutor(THREADS) as pool:
        results = list(pool.map(buy, range(BUYERS)))
    elapsed = time.monotonic() - started

    outcomes = Counter(r.status.value if isinstance(r, Order) else r.slug for r in results)
    declined = outcomes["payment-declined"]
    assert outcomes["paid"] == UNITS
    assert 0 < declined <= len(UNFUNDED)
    assert outcomes["sold-out"] == BUYERS - UNITS - declined
    assert set(outcomes) == {"paid", "payment-declined", "sold-out"}
    print(f"{BUYERS} checkouts in {elapsed:.1f} s")
    assert elapsed < 120, f"{BUYERS} checkouts took {elapsed:.1f} s"  # ~20 s on a quiet machine

    with UnitOfWork(factory, clock) as uow:
        session = uow.session
        stock = session.get_one(Product, product_pk)
        assert (stock.stock_on_hand, stock.stock_reserved) == (UNITS, UNITS)
        statuses = Counter(session.scalars(select(Order.status)))
        assert statuses == Counter({OrderStatus.PAID: UNITS, OrderStatus.CANCELLED: declined})
        sold = session.scalar(
            select(func.sum(OrderLine.quantity))
            .join(Order, Order.id == OrderLine.order_id)
            .where(Order.status == OrderStatus.PAID)
        )
        assert sold == UNITS
        paid = {
            o.public_id: o
            for o in session.scalars(select(Order).where(Order.status == OrderStatus.PAID))
        }
        payments = session.scalars(
            select(Payment).where(Payment.payee_kind == PayeeKind.PARTNER)
        ).all()
        held = [p for p in payments if p.status is PaymentStatus.AUTHORISED]
        # Every authorised payment has its paid order, and every paid order its payment.
        assert sorted(p.reference or "" for p in held) == sorted(paid)
        assert {o.payment_ref for o in paid.values()} == {p.public_id for p in held}
        assert all(p.amount_minor == paid[p.reference or ""].total_minor for p in held)
        assert not [p for p in payments if p.status is PaymentStatus.CAPTURED]
        assert Counter(p.status for p in payments) == Counter(
            {PaymentStatus.AUTHORISED: UNITS, PaymentStatus.DECLINED: declined}
        )
