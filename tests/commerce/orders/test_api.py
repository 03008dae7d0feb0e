"""The HTTP surface: carts, checkout with an Idempotency-Key, bad input as clear problems, and
the partner's view of an order."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from beyondbank.commerce.models import Order
from beyondbank.core.authz import Role
from beyondbank.core.settings import Settings
from beyondbank.core.uow import UnitOfWork
from tests import factories as f
from tests.commerce.orders.conftest import ADDRESS, Shop
from tests.payments import factories as pf

API = "/api/v1/shop"


def _body(shop: Shop, **over: Any) -> dict[str, Any]:
    return {
        "partner_id": shop.partner.public_id,
        "shipping_address": ADDRESS,
        "share_address_with_partner": True,
        "items": [{"product_id": shop.product.public_id, "quantity": 2}],
        **over,
    }


def _fields(response: Any) -> list[str]:
    return [e["field"] for e in response.json().get("errors", [])]


def test_the_cart(client: TestClient, uow: UnitOfWork, settings: Settings, shop: Shop) -> None:
    me = f.auth(settings, uow, shop.customer)
    added = client.post(
        f"{API}/cart/items", json={"product_id": shop.product.public_id, "quantity": 2}, headers=me
    )
    assert added.status_code == 201, added.text
    client.post(
        f"{API}/cart/items", json={"product_id": shop.product.public_id, "quantity": 1}, headers=me
    )
    [cart] = client.get(f"{API}/cart", headers=me).json()
    assert (cart["partner_id"], cart["goods_minor"]) == (shop.partner.public_id, 3_000)
    assert [(line["sku"], line["quantity"]) for line in cart["lines"]] == [(shop.product.sku, 3)]
    offers = client.get(
        f"{API}/checkout/offers", params={"partner_id": shop.partner.public_id}, headers=me
    ).json()
    assert [p["months"] for p in offers["instalment_plans"]] == [3, 6, 12]
    assert [i["amount_minor"] for i in offers["instalment_plans"][0]["instalments"]] == [1_000] * 3
    assert offers["device_protection_minor"] == 3 * 299
    gone = client.delete(f"{API}/cart/items/{shop.product.public_id}", headers=me)
    assert gone.status_code == 204
    assert client.get(f"{API}/cart", headers=me).json()[0]["lines"] == []


def test_another_partners_product_goes_in_another_cart(
    client: TestClient, uow: UnitOfWork, settings: Settings, shop: Shop
) -> None:
    from tests.commerce.factories import make_product

    elsewhere = make_product(uow, f.make_partner(uow))
    uow.commit()
    me = f.auth(settings, uow, shop.customer)
    for product in (shop.product, elsewhere):
        client.post(
            f"{API}/cart/items", json={"product_id": product.public_id, "quantity": 1}, headers=me
        )
    assert len(client.get(f"{API}/cart", headers=me).json()) == 2


def test_bad_cart_input_names_the_field(
    client: TestClient, uow: UnitOfWork, settings: Settings, shop: Shop
) -> None:
    me = f.auth(settings, uow, shop.customer)
    negative = client.post(
        f"{API}/cart/items", json={"product_id": shop.product.public_id, "quantity": -1}, headers=me
    )
    assert (negative.status_code, _fields(negative)) == (422, ["body.quantity"])
    unknown = client.post(
        f"{API}/cart/items", json={"product_id": "prd_NOPE", "quantity": 1}, headers=me
    )
    assert (unknown.status_code, _fields(unknown)) == (422, ["body.product_id"])


def test_checkout_replays_the_same_order_for_the_same_key(
    client: TestClient, uow: UnitOfWork, settings: Settings, shop: Shop
) -> None:
    me = {**f.auth(settings, uow, shop.customer), "Idempotency-Key": "chk-1"}
    first = client.post(f"{API}/checkout", json=_body(shop), headers=me)
    assert first.status_code == 201, first.text
    assert first.json()["status"] == "paid"
    again = client.post(f"{API}/checkout", json=_body(shop), headers=me)
    assert again.status_code == 201
    assert again.json()["order_id"] == first.json()["order_id"]
    assert again.headers["Idempotent-Replayed"] == "true"
    other = client.post(
        f"{API}/checkout",
        json=_body(shop, items=[{"product_id": shop.product.public_id, "quantity": 3}]),
        headers=me,
    )
    assert other.status_code == 422
    assert other.json()["type"] == "/problems/idempotency-key-reused"
    assert uow.session.scalar(select(func.count()).select_from(Order)) == 1


def test_bad_checkout_input_is_a_clear_problem_and_writes_nothing(
    client: TestClient, uow: UnitOfWork, settings: Settings, shop: Shop
) -> None:
    me = f.auth(settings, uow, shop.customer)
    cases = {
        "body.instalment_months": _body(shop, instalment_months=5),
        "body.expected_total": _body(shop, expected_total="20.001"),
        "body.share_address_with_partner": _body(shop, share_address_with_partner=False),
        "body.items.0.quantity": _body(
            shop, items=[{"product_id": shop.product.public_id, "quantity": -2}]
        ),
        "body.items.0.product_id": _body(shop, items=[{"product_id": "prd_NOPE", "quantity": 1}]),
    }
    for n, (field, body) in enumerate(cases.items()):
        answer = client.post(
            f"{API}/checkout", json=body, headers={**me, "Idempotency-Key": f"bad-{n}"}
        )
        assert answer.status_code == 422, (field, answer.text)
        assert answer.json()["type"] == "/problems/invalid-input"
        assert _fields(answer) == [field], answer.text
    keyless = client.post(f"{API}/checkout", json=_body(shop), headers=me)
    assert (keyless.status_code, _fields(keyless)) == (422, ["header.Idempotency-Key"])
    assert uow.session.scalar(select(func.count()).select_from(Order)) == 0


def test_a_decline_is_a_402_with_its_code(
    client: TestClient, uow: UnitOfWork, settings: Settings, shop: Shop
) -> None:
    poor = f.make_customer(uow)
    pf.make_account(uow, poor, opening=100)
    uow.commit()
    answer = client.post(
        f"{API}/checkout",
        json=_body(shop),
        headers={**f.auth(settings, uow, poor), "Idempotency-Key": "poor-1"},
    )
    assert answer.status_code == 402
    assert (answer.json()["type"], answer.json()["decline_code"]) == (
        "/problems/payment-declined",
        "insufficient_funds",
    )


def test_sold_out_is_a_409(
    client: TestClient, uow: UnitOfWork, settings: Settings, shop: Shop
) -> None:
    answer = client.post(
        f"{API}/checkout",
        json=_body(shop, items=[{"product_id": shop.other.public_id, "quantity": 6}]),
        headers={**f.auth(settings, uow, shop.customer), "Idempotency-Key": "many"},
    )
    assert (answer.status_code, answer.json()["type"]) == (409, "/problems/sold-out")


def test_the_partner_system_ships_and_sees_only_the_address(
    client: TestClient, uow: UnitOfWork, settings: Settings, shop: Shop
) -> None:
    order = client.post(
        f"{API}/checkout",
        json=_body(shop),
        headers={**f.auth(settings, uow, shop.customer), "Idempotency-Key": "p-1"},
    ).json()
    system = f.make_client(uow, ["orders:read", "orders:fulfil"], partner=shop.partner)
    uow.commit()
    partner = f.auth(settings, uow, system)
    listed = client.get(f"{API}/partner/orders", headers=partner).json()["items"]
    assert [o["order_id"] for o in listed] == [order["order_id"]]
    seen = listed[0]
    assert seen["shipping_address"] == ADDRESS
    for private in (shop.customer.public_id, shop.customer.bank_ref, "saving_minor", "partner_id"):
        assert private not in str(seen)
    oid = order["order_id"]
    assert client.post(f"{API}/partner/orders/{oid}/fulfil", headers=partner).status_code == 200
    shipped = client.post(
        f"{API}/partner/orders/{oid}/shipments",
        json={"lines": [{"sku": shop.product.sku, "quantity": 2}], "tracking": "RM123"},
        headers=partner,
    )
    assert shipped.status_code == 201, shipped.text
    assert (shipped.json()["status"], shipped.json()["captured_minor"]) == ("shipped", 2_000)
    late = client.post(f"{API}/partner/orders/{oid}/fulfil", headers=partner)
    assert late.status_code == 409
    assert late.json()["current_status"] == "shipped"
    mine = client.get(f"{API}/orders/{oid}", headers=f.auth(settings, uow, shop.customer)).json()
    assert mine["shipments"][0]["tracking"] == "RM123"


def test_a_retried_shipment_with_its_idempotency_key_ships_once(
    client: TestClient, uow: UnitOfWork, settings: Settings, shop: Shop
) -> None:
    order = client.post(
        f"{API}/checkout",
        json=_body(shop, items=[{"product_id": shop.product.public_id, "quantity": 3}]),
        headers={**f.auth(settings, uow, shop.customer), "Idempotency-Key": "p-3"},
    ).json()
    partner = f.auth(settings, uow, f.make_user(uow, Role.PARTNER_ADMIN, partner=shop.partner))
    oid = order["order_id"]
    assert client.post(f"{API}/partner/orders/{oid}/fulfil", headers=partner).status_code == 200
    one_unit = {"lines": [{"sku": shop.product.sku, "quantity": 1}], "tracking": "RM1"}
    keyed = {**partner, "Idempotency-Key": "ship-1"}
    first = client.post(f"{API}/partner/orders/{oid}/shipments", json=one_unit, headers=keyed)
    again = client.post(f"{API}/partner/orders/{oid}/shipments", json=one_unit, headers=keyed)
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json()["captured_minor"] == first.json()["captured_minor"] == 1_000
    mine = client.get(f"{API}/orders/{oid}", headers=f.auth(settings, uow, shop.customer)).json()
    assert len(mine["shipments"]) == 1
    assert mine["lines"][0]["shipped_quantity"] == 1
    other = client.post(
        f"{API}/partner/orders/{oid}/shipments",
        json={**one_unit, "tracking": "RM2"},
        headers=keyed,
    )
    assert other.status_code == 422
    assert other.json()["type"] == "/problems/idempotency-key-reused"
