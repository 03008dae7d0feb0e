"""Who may call each cart, checkout and order endpoint: every role, the partner's people and
system, another partner, the customer, another customer and anonymous, against every endpoint."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient

from beyondbank.commerce.models import Partner, Product
from beyondbank.commerce.orders import service
from beyondbank.core.authz import Principal, Role
from beyondbank.core.clock import FixedClock
from beyondbank.core.settings import Settings
from beyondbank.core.uow import UnitOfWork
from beyondbank.identity.models import Customer
from beyondbank.payments.bankcore import BankCoreGateway
from tests import factories as f
from tests.commerce.factories import make_product
from tests.commerce.orders.conftest import ADDRESS
from tests.payments import factories as pf

API = "/api/v1/shop"


@dataclass
class World:
    partner: Partner
    product: Product
    owner: Customer  # "customer": the orders below are theirs
    other: Customer  # "other_customer"
    headers: dict[str, dict[str, str]]


def _world(uow: UnitOfWork, settings: Settings) -> World:
    partner = f.make_partner(uow)
    product = make_product(uow, partner, stock=10_000)
    owner, other = f.make_customer(uow), f.make_customer(uow)
    for customer in (owner, other):
        pf.make_account(uow, customer, opening=10_000_000)
    merchant = f.make_merchant(uow)
    headers: dict[str, dict[str, str]] = {
        "anonymous": {},
        "customer": f.auth(settings, uow, owner),
        "other_customer": f.auth(settings, uow, other),
        "partner_client": f.auth(
            settings, uow, f.make_client(uow, ["orders:read", "orders:fulfil"], partner=partner)
        ),
        "other_partner_admin": f.auth(settings, uow, f.make_user(uow, Role.PARTNER_ADMIN)),
    }
    for role in Role:
        if role is Role.CUSTOMER:
            continue
        bound: dict[str, Any] = {}
        if role in (Role.MERCHANT_ADMIN, Role.MERCHANT_STAFF):
            bound["merchant"] = merchant
        if role in (Role.PARTNER_ADMIN, Role.PARTNER_STAFF):
            bound["partner"] = partner
        headers[role.value] = f.auth(settings, uow, f.make_user(uow, role, **bound))
    uow.commit()
    return World(partner, product, owner, other, headers)


@dataclass
class Scene:
    partner_id: str
    product_id: str
    order_id: str


def _order(uow: UnitOfWork, bank: BankCoreGateway, world: World, state: str) -> str:
    """A fresh order of the owner's, moved on to `state`."""
    buyer = f.principal(world.owner)
    data = service.CheckoutIn(
        partner_id=world.partner.public_id,
        shipping_address=dict(ADDRESS),
        share_address_with_partner=True,
        items=[service.Wanted(world.product.public_id, 1)],
    )
    order_id = service.checkout_order(uow, bank, buyer, data).order.public_id
    admin = Principal(kind="system", id=0, public_id="matrix", label="matrix")
    steps: list[Callable[[], Any]] = [
        lambda: service.fulfil(uow, admin, order_id),
        lambda: service.ship(uow, bank, admin, order_id),
        lambda: service.deliver(uow, admin, order_id),
        lambda: service.request_return(uow, buyer, order_id, ""),
    ]
    reach = ["paid", "fulfilling", "shipped", "delivered", "return_requested"].index(state)
    for step in steps[:reach]:
        step()
    return order_id


Call = Callable[[TestClient, Scene, dict[str, str]], Any]


def _get(path: Callable[[Scene], str]) -> Call:
    return lambda client, s, h: client.get(f"{API}{path(s)}", headers=h)


def _post(path: Callable[[Scene], str], body: Callable[[Scene], Any] = lambda s: {}) -> Call:
    return lambda client, s, h: client.post(f"{API}{path(s)}", json=body(s), headers=h)


def _checkout(client: TestClient, s: Scene, h: dict[str, str]) -> Any:
    body = {
        "partner_id": s.partner_id,
        "shipping_address": ADDRESS,
        "share_address_with_partner": True,
        "items": [{"product_id": s.product_id, "quantity": 1}],
    }
    return client.post(
        f"{API}/checkout", json=body, headers={**h, "Idempotency-Key": f"matrix-{s.order_id}"}
    )


# endpoint → (the state its order must be in, the call)
ENDPOINTS: dict[str, tuple[str, Call]] = {
    "GET /shop/cart": ("paid", _get(lambda s: "/cart")),
    "POST /shop/cart/items": (
        "paid",
        _post(lambda s: "/cart/items", lambda s: {"product_id": s.product_id, "quantity": 1}),
    ),
    "DELETE /shop/cart/items/{product_id}": (
        "paid",
        lambda client, s, h: client.delete(f"{API}/cart/items/{s.product_id}", headers=h),
    ),
    "GET /shop/checkout/offers": (
        "paid",
        _get(lambda s: f"/checkout/offers?partner_id={s.partner_id}"),
    ),
    "POST /shop/checkout": ("paid", _checkout),
    "GET /shop/orders": ("paid", _get(lambda s: "/orders")),
    "GET /shop/orders/{order_id}": ("paid", _get(lambda s: f"/orders/{s.order_id}")),
    "POST /shop/orders/{order_id}/cancel": (
        "paid",
        _post(lambda s: f"/orders/{s.order_id}/cancel"),
    ),
    "POST /shop/orders/{order_id}/return": (
        "delivered",
        _post(lambda s: f"/orders/{s.order_id}/return", lambda s: {"reason": "too big"}),
    ),
    "GET /shop/partner/orders": ("paid", _get(lambda s: "/partner/orders")),
    "GET /shop/partner/orders/{order_id}": (
        "paid",
        _get(lambda s: f"/partner/orders/{s.order_id}"),
    ),
    "POST /shop/partner/orders/{order_id}/fulfil": (
        "paid",
        _post(lambda s: f"/partner/orders/{s.order_id}/fulfil"),
    ),
    "POST /shop/partner/orders/{order_id}/shipments": (
        "fulfilling",
        _post(lambda s: f"/partner/orders/{s.order_id}/shipments"),
    ),
    "POST /shop/partner/orders/{order_id}/deliver": (
        "shipped",
        _post(lambda s: f"/partner/orders/{s.order_id}/deliver"),
    ),
    "POST /shop/partner/orders/{order_id}/returned": (
        "return_requested",
        _post(lambda s: f"/partner/orders/{s.order_id}/returned"),
    ),
}

CART = {
    "GET /shop/cart",
    "POST /shop/cart/items",
    "DELETE /shop/cart/items/{product_id}",
    "GET /shop/checkout/offers",
    "POST /shop/checkout",
    "GET /shop/orders",
}
OWN_ORDER = {
    "GET /shop/orders/{order_id}",
    "POST /shop/orders/{order_id}/cancel",
    "POST /shop/orders/{order_id}/return",
}
PARTNER_READ = {"GET /shop/partner/orders", "GET /shop/partner/orders/{order_id}"}
PARTNER_MOVE = {e for e in ENDPOINTS if e.startswith("POST /shop/partner/")}

# Allowed (2xx); hidden (404: another customer's or partner's object); everything else 401/403.
ALLOWED: dict[str, set[str]] = {
    "bank_admin": PARTNER_READ | PARTNER_MOVE,  # the bank's operators act for any partner
    "relationship_manager": PARTNER_READ,
    "auditor": PARTNER_READ,
    "analyst": set(),
    "merchant_admin": set(),
    "merchant_staff": set(),
    "partner_admin": PARTNER_READ | PARTNER_MOVE,
    "partner_staff": PARTNER_READ | PARTNER_MOVE,
    "partner_client": PARTNER_READ | PARTNER_MOVE,
    "other_partner_admin": {"GET /shop/partner/orders"},  # its own orders: none
    "customer": CART | OWN_ORDER,
    "other_customer": CART,  # its own cart and orders
    "anonymous": set(),
}
HIDDEN: dict[str, set[str]] = {
    "other_partner_admin": (PARTNER_READ | PARTNER_MOVE) - {"GET /shop/partner/orders"},
    "other_customer": OWN_ORDER,
}


@pytest.mark.parametrize("who", sorted(ALLOWED))
def test_authorisation_matrix(
    client: TestClient,
    uow: UnitOfWork,
    settings: Settings,
    bank: BankCoreGateway,
    clock: FixedClock,
    who: str,
) -> None:
    world = _world(uow, settings)
    headers = world.headers[who]
    actor = {"customer": world.owner, "other_customer": world.other}.get(who)
    wrong = []
    for endpoint, (state, call) in ENDPOINTS.items():
        order_id = _order(uow, bank, world, state)
        if actor is not None:  # the caller's own cart holds the product
            service.add_item(
                uow,
                f.principal(actor),
                product_id=world.product.public_id,
                quantity=1,
                campaign_id=None,
            )
        scene = Scene(world.partner.public_id, world.product.public_id, order_id)
        response = call(client, scene, headers)
        if endpoint in ALLOWED[who]:
            ok = response.status_code < 300
        elif endpoint in HIDDEN.get(who, set()):
            ok = response.status_code == 404
        else:
            ok = response.status_code == (401 if who == "anonymous" else 403)
        if not ok:
            wrong.append(f"{endpoint}: {response.status_code} {response.text[:200]}")
    assert wrong == [], "\n".join(wrong)
