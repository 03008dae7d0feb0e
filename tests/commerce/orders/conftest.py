"""Fixtures for carts, checkout and orders: a partner with a product, a funded customer, the bank."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from beyondbank.commerce.models import Partner, PartnerKind, Product
from beyondbank.commerce.orders import service
from beyondbank.commerce.orders.checkout import Wanted
from beyondbank.core.authz import Principal, Role
from beyondbank.core.clock import FixedClock
from beyondbank.core.uow import UnitOfWork
from beyondbank.identity.models import Customer
from beyondbank.payments.bankcore import BankCoreGateway
from beyondbank.payments.models import DepositAccount
from tests import factories as f
from tests.commerce.factories import make_product
from tests.payments import factories as pf

ADDRESS = {
    "recipient": "Amelia Clarke",
    "line1": "12 Elm Road",
    "city": "London",
    "postcode": "SW4 7AB",
    "country": "GB",
}


@pytest.fixture
def bank(session_factory: sessionmaker[Session], clock: FixedClock) -> BankCoreGateway:
    return BankCoreGateway(session_factory, clock, timezone="Europe/London")


@dataclass
class Shop:
    partner: Partner
    product: Product  # 12.50 public, 10.00 for the bank's customers, 10 in stock
    other: Product  # 300.00 public, 250.00 for the bank's customers, 5 in stock
    customer: Customer
    account: DepositAccount  # 1,000.00 GBP
    buyer: Principal
    partner_admin: Principal
    insurer: Partner  # underwrites device protection in GBP


@pytest.fixture
def shop(uow: UnitOfWork) -> Shop:
    partner = f.make_partner(uow, return_window_days=14)
    customer = f.make_customer(uow, name="Amelia Clarke")
    account = pf.make_account(uow, customer, opening=100_000)
    admin = f.make_user(uow, Role.PARTNER_ADMIN, partner=partner)
    made = Shop(
        partner=partner,
        product=make_product(uow, partner, public_minor=1_250, client_minor=1_000, stock=10),
        other=make_product(
            uow, partner, public_minor=30_000, client_minor=25_000, stock=5, category="phones"
        ),
        customer=customer,
        account=account,
        buyer=f.principal(customer),
        partner_admin=f.principal(admin),
        insurer=f.make_partner(uow, name="Harbour Mutual Insurance", kind=PartnerKind.INSURER),
    )
    uow.commit()  # the services roll back on failure: what the test set up must survive it
    return made


def checkout_in(shop: Shop, *items: tuple[Product, int], **over: Any) -> service.CheckoutIn:
    return service.CheckoutIn(
        partner_id=shop.partner.public_id,
        shipping_address=dict(ADDRESS),
        share_address_with_partner=over.pop("share", True),
        items=[Wanted(p.public_id, q) for p, q in items] or [Wanted(shop.product.public_id, 2)],
        **over,
    )
