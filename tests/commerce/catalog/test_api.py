"""The catalog API: uploading feeds, stock and prices as a partner, and the customers' catalog."""

from __future__ import annotations

import json
from datetime import timedelta

from fastapi.testclient import TestClient

from beyondbank.commerce.models import ProductStatus
from beyondbank.core.authz import Role
from beyondbank.core.clock import FixedClock
from beyondbank.core.settings import Settings
from beyondbank.core.uow import UnitOfWork
from tests import factories as f
from tests.commerce.factories import make_product

API = "/api/v1"
FEED = (
    "sku,title,description,category,public_price,client_price,stock\n"
    "MUG-1,Enamel mug,Blue enamel,kitchen,12.50,11.25,40\n"
    "BAG-2,Jute tote bag,,bags,8.00,8.00,3\n"
    "LAMP-3,Brass lamp,,home decor,45.00,39.99,0\n"
)


def _partner_admin(uow: UnitOfWork, settings: Settings):  # type: ignore[no-untyped-def]
    partner = f.make_partner(uow)
    return partner, f.auth(settings, uow, f.make_user(uow, Role.PARTNER_ADMIN, partner=partner))


def test_a_partner_uploads_a_csv_feed_and_reads_its_rejects(
    client: TestClient, uow: UnitOfWork, settings: Settings
) -> None:
    _, headers = _partner_admin(uow, settings)
    response = client.post(
        f"{API}/shop/catalog/imports?source=nightly.csv",
        content=FEED.encode(),
        headers={**headers, "Content-Type": "text/csv; charset=utf-8"},
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["rows_read"], body["created"], body["rejected"]) == (3, 2, 1)
    assert body["first_rejects"][0]["line"] == 3
    assert body["first_rejects"][0]["field"] == "client_price"
    detail = client.get(f"{API}/shop/catalog/imports/{body['id']}", headers=headers).json()
    assert detail["import"]["id"] == body["id"]
    assert [r["line"] for r in detail["rejects"]] == [3]
    again = client.post(
        f"{API}/shop/catalog/imports",
        content=FEED.encode(),
        headers={**headers, "Content-Type": "text/csv"},
    ).json()
    assert (again["unchanged"], again["created"], again["rejected"]) == (2, 0, 1)
    listed = client.get(f"{API}/shop/catalog/imports", headers=headers).json()["items"]
    assert [i["id"] for i in listed] == [again["id"], body["id"]]


def test_a_json_lines_upload(client: TestClient, uow: UnitOfWork, settings: Settings) -> None:
    _, headers = _partner_admin(uow, settings)
    row = {
        "sku": "J1",
        "title": "Mug",
        "category": "kitchen",
        "public_price": "2.00",
        "client_price": "1.80",
        "stock": 1,
    }
    response = client.post(
        f"{API}/shop/catalog/imports",
        content=(json.dumps(row) + "\n" + "{not json\n").encode(),
        headers={**headers, "Content-Type": "application/x-ndjson"},
    )
    assert response.status_code == 201
    assert (response.json()["created"], response.json()["rejected"]) == (1, 1)


def test_an_upload_without_a_feed_type_is_refused(
    client: TestClient, uow: UnitOfWork, settings: Settings
) -> None:
    _, headers = _partner_admin(uow, settings)
    response = client.post(
        f"{API}/shop/catalog/imports",
        content=FEED.encode(),
        headers={**headers, "Content-Type": "application/octet-stream"},
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "header.Content-Type"


def test_staff_must_name_the_partner(
    client: TestClient, uow: UnitOfWork, settings: Settings
) -> None:
    headers = f.auth(settings, uow, f.make_user(uow, Role.BANK_ADMIN))
    response = client.post(
        f"{API}/shop/catalog/imports",
        content=FEED.encode(),
        headers={**headers, "Content-Type": "text/csv"},
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "query.partner"


def test_stock_by_sku_and_never_below_reserved(
    client: TestClient, uow: UnitOfWork, settings: Settings
) -> None:
    partner, headers = _partner_admin(uow, settings)
    product = make_product(uow, partner, sku="MUG-9", stock=10, stock_reserved=4)
    ok = client.patch(
        f"{API}/shop/products/MUG-9/stock", json={"stock_on_hand": 6}, headers=headers
    )
    assert ok.status_code == 200, ok.text
    assert ok.json() == {
        "id": product.public_id,
        "sku": "MUG-9",
        "stock_on_hand": 6,
        "stock_reserved": 4,
        "available": 2,
    }
    refused = client.patch(
        f"{API}/shop/products/{product.public_id}/stock",
        json={"stock_on_hand": 3},
        headers=headers,
    )
    assert refused.status_code == 409
    assert refused.json()["stock_reserved"] == 4
    assert "4 unit(s)" in refused.json()["detail"]
    negative = client.patch(
        f"{API}/shop/products/MUG-9/stock", json={"stock_on_hand": -1}, headers=headers
    )
    assert negative.status_code == 422
    uow.session.refresh(product)
    assert product.stock_on_hand == 6


def test_another_partners_product_is_not_found(
    client: TestClient, uow: UnitOfWork, settings: Settings
) -> None:
    _, headers = _partner_admin(uow, settings)
    theirs = make_product(uow, f.make_partner(uow), sku="THEIRS", stock=5)
    for call in (
        lambda: client.patch(
            f"{API}/shop/products/{theirs.public_id}/stock",
            json={"stock_on_hand": 1},
            headers=headers,
        ),
        lambda: client.put(
            f"{API}/shop/products/{theirs.public_id}/prices",
            json={"public_price": "2.00", "client_price": "1.00"},
            headers=headers,
        ),
        lambda: client.patch(
            f"{API}/shop/products/THEIRS/stock", json={"stock_on_hand": 1}, headers=headers
        ),
        lambda: client.get(f"{API}/shop/products/{theirs.public_id}", headers=headers),
    ):
        assert call().status_code == 404
    uow.session.refresh(theirs)
    assert theirs.stock_on_hand == 5


def test_a_price_period_through_the_api(
    client: TestClient, uow: UnitOfWork, settings: Settings, clock: FixedClock
) -> None:
    partner, headers = _partner_admin(uow, settings)
    product = make_product(uow, partner, public_minor=1_000, client_minor=900)
    url = f"{API}/shop/products/{product.public_id}/prices"
    third = client.put(url, json={"public_price": "9.999", "client_price": "8.00"}, headers=headers)
    assert third.status_code == 422
    assert third.json()["errors"][0]["field"] == "body.public_price"
    above = client.put(url, json={"public_price": "9.00", "client_price": "9.00"}, headers=headers)
    assert above.status_code == 422
    assert above.json()["errors"][0]["field"] == "body.client_price"
    sale = clock.now() + timedelta(days=1)
    response = client.put(
        url,
        json={
            "public_price": "8.00",
            "client_price": "6.50",
            "valid_from": sale.isoformat(),
            "valid_to": (sale + timedelta(days=7)).isoformat(),
        },
        headers=headers,
    )
    assert response.status_code == 200, response.text
    periods = [
        (p["public_minor"], p["client_minor"], p["valid_from"], p["valid_to"])
        for p in response.json()["prices"]
    ]
    ends = (sale + timedelta(days=7)).isoformat().replace("+00:00", "Z")
    starts = sale.isoformat().replace("+00:00", "Z")
    assert [p[:2] for p in periods] == [(1_000, 900), (800, 650), (1_000, 900)]
    assert [p[3] for p in periods][:2] == [starts, ends]
    assert periods[2][2:] == (ends, None)
    buyer = f.make_customer(uow)

    def client_price_now() -> int:
        headers = f.auth(settings, uow, buyer)  # a fresh token: the clock moves by days
        got = client.get(f"{API}/shop/products/{product.public_id}", headers=headers)
        return int(got.json()["client_price_minor"])

    assert client_price_now() == 900
    clock.advance(timedelta(days=2))
    assert client_price_now() == 650
    clock.advance(timedelta(days=7))
    assert client_price_now() == 900


def test_customers_see_products_on_sale_with_their_saving(
    client: TestClient, uow: UnitOfWork, settings: Settings
) -> None:
    partner = f.make_partner(uow)
    mug = make_product(
        uow,
        partner,
        title="Enamel MUG",
        category="kitchen",
        public_minor=1_250,
        client_minor=1_000,
        stock=3,
        stock_reserved=3,
    )
    make_product(
        uow, partner, title="Tea towel", description="for the mug rack", category="kitchen", stock=2
    )
    make_product(uow, partner, title="Old mug", category="kitchen", status=ProductStatus.WITHDRAWN)
    make_product(
        uow,
        partner,
        title="Future mug",
        category="kitchen",
        valid_from=uow.clock.now() + timedelta(days=1),
    )
    make_product(uow, partner, title="Tote", category="bags")
    headers = f.auth(settings, uow, f.make_customer(uow))
    found = client.get(f"{API}/shop/products?q=mug&partner={partner.public_id}", headers=headers)
    assert found.status_code == 200
    items = found.json()["items"]
    assert [i["title"] for i in items] == ["Enamel MUG", "Tea towel"]
    first = items[0]
    assert (first["public_price_minor"], first["client_price_minor"], first["saving_minor"]) == (
        1_250,
        1_000,
        250,
    )
    assert (first["public_price"], first["client_price"], first["saving"]) == (
        "£12.50",
        "£10.00",
        "£2.50",
    )
    assert first["in_stock"] is False
    assert items[1]["in_stock"] is True
    in_stock = client.get(
        f"{API}/shop/products?q=mug&in_stock=true&partner={partner.public_id}", headers=headers
    ).json()["items"]
    assert [i["title"] for i in in_stock] == ["Tea towel"]
    one = client.get(f"{API}/shop/products/{mug.public_id}", headers=headers)
    assert one.json()["id"] == mug.public_id
    cats = client.get(f"{API}/shop/categories?partner={partner.public_id}", headers=headers)
    assert cats.json() == [{"name": "bags", "products": 1}, {"name": "kitchen", "products": 2}]


def test_the_catalog_pages_with_a_cursor(
    client: TestClient, uow: UnitOfWork, settings: Settings
) -> None:
    partner = f.make_partner(uow)
    for i in range(5):
        make_product(uow, partner, title=f"Thing {i}")
    headers = f.auth(settings, uow, f.make_customer(uow))
    seen: list[str] = []
    cursor = None
    while True:
        url = f"{API}/shop/products?partner={partner.public_id}&limit=2"
        page = client.get(url + (f"&cursor={cursor}" if cursor else ""), headers=headers).json()
        seen += [i["title"] for i in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [f"Thing {i}" for i in range(5)]
