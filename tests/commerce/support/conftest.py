"""A partner with its people and systems, its customers with delivered orders, and the API caller."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient

from beyondbank.commerce.models import Order, Partner
from beyondbank.core.authz import Role
from beyondbank.core.settings import Settings
from beyondbank.core.uow import UnitOfWork
from beyondbank.identity.models import Customer
from tests import factories as f
from tests.commerce.support.factories import make_order

API = "/api/v1/shop"


class Headers(dict[str, Any]):
    """Bearer headers by who, minted at the clock's now when asked (tokens last an hour, and the
    tests move the clock by days)."""

    def __init__(self, uow: UnitOfWork, settings: Settings, who: dict[str, Any]) -> None:
        super().__init__(who)
        self._uow, self._settings = uow, settings

    def __getitem__(self, name: str) -> dict[str, str]:
        return f.auth(self._settings, self._uow, super().__getitem__(name))


@dataclass
class Shop:
    partner: Partner
    other_partner: Partner
    customer: Customer
    other_customer: Customer
    order: Order  # the customer's, delivered
    other_order: Order  # the other customer's, delivered, same partner
    h: Headers  # bearer headers by who


@pytest.fixture
def shop(uow: UnitOfWork, settings: Settings) -> Shop:
    partner = f.make_partner(uow, first_response_hours=2, resolution_hours=24)
    other_partner = f.make_partner(uow)
    customer, other_customer = f.make_customer(uow), f.make_customer(uow)
    client = f.make_client(uow, ["support:read", "support:write", "shop:read"], partner=partner)
    who: dict[str, Any] = {
        "customer": customer,
        "other_customer": other_customer,
        "partner_admin": f.make_user(uow, Role.PARTNER_ADMIN, partner=partner),
        "partner_staff": f.make_user(uow, Role.PARTNER_STAFF, partner=partner),
        "partner_client": client,
        "other_partner_admin": f.make_user(uow, Role.PARTNER_ADMIN, partner=other_partner),
        "bank_admin": f.make_user(uow, Role.BANK_ADMIN),
        "relationship_manager": f.make_user(uow, Role.RELATIONSHIP_MANAGER),
        "auditor": f.make_user(uow, Role.AUDITOR),
        "analyst": f.make_user(uow, Role.ANALYST),
    }
    shop = Shop(
        partner=partner,
        other_partner=other_partner,
        customer=customer,
        other_customer=other_customer,
        order=make_order(uow, customer, partner),
        other_order=make_order(uow, other_customer, partner),
        h=Headers(uow, settings, who),
    )
    uow.commit()
    return shop


def open_ticket(client: TestClient, shop: Shop, **over: Any) -> dict[str, Any]:
    body = {"order_id": shop.order.public_id, "subject": "Wrong size", "message": "Too small."}
    response = client.post(
        f"{API}/support/tickets", json={**body, **over}, headers=shop.h["customer"]
    )
    assert response.status_code == 201, response.text
    return dict(response.json())
