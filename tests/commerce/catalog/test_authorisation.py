"""Who may call each catalog endpoint: every role, the partner's client and another partner's
admin, against every endpoint. Another partner's objects answer 404, not 403."""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient

from beyondbank.commerce.catalog import service
from beyondbank.commerce.models import Partner
from beyondbank.core.authz import SYSTEM, Role
from beyondbank.core.settings import Settings
from beyondbank.core.uow import UnitOfWork
from tests import factories as f
from tests.commerce.factories import make_product

API = "/api/v1"
FEED = "sku,title,category,public_price,client_price,stock\nM1,Mug,kitchen,5.00,4.50,3\n"


@dataclass
class Scene:
    partner_id: str
    product_id: str
    import_id: str


def _principals(uow: UnitOfWork, settings: Settings, partner: Partner) -> dict[str, Any]:
    merchant = f.make_merchant(uow)
    client = f.make_client(uow, ["catalog:write", "shop:read"], partner=partner)
    headers = {
        "anonymous": {},
        "customer": f.auth(settings, uow, f.make_customer(uow)),
        "partner_client": f.auth(settings, uow, client),
        "other_partner_admin": f.auth(settings, uow, f.make_user(uow, Role.PARTNER_ADMIN)),
    }
    for role in Role:
        if role == Role.CUSTOMER:
            continue
        bound_merchant = merchant if role in (Role.MERCHANT_ADMIN, Role.MERCHANT_STAFF) else None
        bound_partner = partner if role in (Role.PARTNER_ADMIN, Role.PARTNER_STAFF) else None
        headers[role.value] = f.auth(
            settings, uow, f.make_user(uow, role, bound_merchant, partner=bound_partner)
        )
    return headers


def _scene(uow: UnitOfWork, partner: Partner) -> Scene:
    product = make_product(uow, partner, stock=10)
    job = service.import_feed(
        uow, SYSTEM, partner, io.BytesIO(FEED.encode()), "csv", source="matrix"
    )
    return Scene(partner.public_id, product.public_id, job.public_id)


Call = Callable[[TestClient, Scene, dict[str, str]], Any]


def _get(path: Callable[[Scene], str]) -> Call:
    return lambda client, s, h: client.get(f"{API}{path(s)}", headers=h)


ENDPOINTS: dict[str, Call] = {
    "POST /shop/catalog/imports": lambda client, s, h: client.post(
        f"{API}/shop/catalog/imports?partner={s.partner_id}",
        content=FEED.encode(),
        headers={**h, "Content-Type": "text/csv"},
    ),
    "GET /shop/catalog/imports": _get(lambda s: f"/shop/catalog/imports?partner={s.partner_id}"),
    "GET /shop/catalog/imports/{id}": _get(lambda s: f"/shop/catalog/imports/{s.import_id}"),
    "PATCH /shop/products/{id}/stock": lambda client, s, h: client.patch(
        f"{API}/shop/products/{s.product_id}/stock", json={"stock_on_hand": 7}, headers=h
    ),
    "PUT /shop/products/{id}/prices": lambda client, s, h: client.put(
        f"{API}/shop/products/{s.product_id}/prices",
        json={"public_price": "13.00", "client_price": "11.70"},
        headers=h,
    ),
    "GET /shop/products": _get(lambda s: f"/shop/products?partner={s.partner_id}"),
    "GET /shop/products/{id}": _get(lambda s: f"/shop/products/{s.product_id}"),
    "GET /shop/categories": _get(lambda s: f"/shop/categories?partner={s.partner_id}"),
}

WRITE = {
    "POST /shop/catalog/imports",
    "GET /shop/catalog/imports",
    "GET /shop/catalog/imports/{id}",
    "PATCH /shop/products/{id}/stock",
    "PUT /shop/products/{id}/prices",
}
READ = set(ENDPOINTS) - WRITE

ALLOWED: dict[str, set[str]] = {
    "bank_admin": set(ENDPOINTS),
    "relationship_manager": READ,
    "auditor": READ,
    "analyst": READ,
    "merchant_admin": set(),
    "merchant_staff": set(),
    "partner_admin": set(ENDPOINTS),
    "partner_staff": READ,  # a partner's staff fulfil orders; its admins run the catalog
    "customer": READ,
    "partner_client": set(ENDPOINTS),
    "other_partner_admin": set(),
    "anonymous": set(),
}
# Holding the permission, but for another partner's catalog: as if it did not exist.
HIDDEN: dict[str, set[str]] = {"other_partner_admin": set(ENDPOINTS)}


@pytest.mark.parametrize("who", sorted(ALLOWED))
def test_authorisation_matrix(
    client: TestClient, uow: UnitOfWork, settings: Settings, who: str
) -> None:
    partner = f.make_partner(uow)
    headers = _principals(uow, settings, partner)[who]
    wrong = []
    for endpoint, call in ENDPOINTS.items():
        response = call(client, _scene(uow, partner), headers)
        if endpoint in ALLOWED[who]:
            ok = response.status_code < 300
        elif endpoint in HIDDEN.get(who, set()):
            ok = response.status_code == 404
        else:
            ok = response.status_code == (401 if who == "anonymous" else 403)
        if not ok:
            wrong.append(f"{endpoint}: {response.status_code} {response.text[:300]}")
    assert wrong == [], "\n".join(wrong)
