"""Who may call each group-buy endpoint: every role, the partner's own people and system,
another partner's admin, a customer and nobody, against every endpoint."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from beyondbank.commerce.models import CampaignStatus, Partner
from beyondbank.core.authz import Role
from beyondbank.core.settings import Settings
from beyondbank.core.uow import UnitOfWork
from tests import factories as f
from tests.commerce.factories import make_product
from tests.commerce.groupbuy.factories import make_campaign

API = "/api/v1"


@dataclass
class Scene:
    product_id: str
    open_id: str  # taking joins
    due_id: str  # its window ended, not closed yet
    succeeded_id: str  # closed at or above its minimum


def _scene(uow: UnitOfWork, partner: Partner) -> Scene:
    product = make_product(uow, partner, public_minor=1_500, client_minor=1_200)
    succeeded = make_campaign(
        uow,
        partner,
        product,
        opens_in=timedelta(days=-5),
        lasts=timedelta(days=2),
        status=CampaignStatus.SUCCEEDED,
    )
    succeeded.final_unit_minor = 900
    succeeded.closed_at = uow.clock.now() - timedelta(days=2)
    due = make_campaign(uow, partner, product, opens_in=timedelta(days=-3), lasts=timedelta(days=1))
    scene = Scene(
        product_id=product.public_id,
        open_id=make_campaign(uow, partner, product).public_id,
        due_id=due.public_id,
        succeeded_id=succeeded.public_id,
    )
    uow.commit()
    return scene


def _principals(uow: UnitOfWork, settings: Settings, partner: Partner) -> dict[str, Any]:
    merchant = f.make_merchant(uow)
    other = f.make_partner(uow)
    system = f.make_client(uow, ["shop:read", "groupbuy:manage"], partner=partner)
    headers = {
        "anonymous": {},
        "customer": f.auth(settings, uow, f.make_customer(uow)),
        "partner_client": f.auth(settings, uow, system),
        "other_partner_admin": f.auth(
            settings, uow, f.make_user(uow, Role.PARTNER_ADMIN, partner=other)
        ),
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
    return headers


Call = Callable[[TestClient, Scene, dict[str, str]], Any]


def _get(path: Callable[[Scene], str]) -> Call:
    return lambda client, s, h: client.get(f"{API}{path(s)}", headers=h)


def _post(path: Callable[[Scene], str], body: Callable[[Scene], Any] = lambda s: None) -> Call:
    return lambda client, s, h: client.post(f"{API}{path(s)}", json=body(s), headers=h)


def _campaign(s: Scene) -> dict[str, Any]:
    return {
        "product_id": s.product_id,
        "title": "Winter coats together",
        "closes_at": "2026-12-01T12:00:00Z",
        "tiers": [
            {"min_units": 1, "unit_price": "11.00"},
            {"min_units": 20, "unit_minor": 1_000},
        ],
        "min_total_units": 10,
        "per_customer_limit": 3,
    }


ENDPOINTS: dict[str, Call] = {
    "POST /shop/group-buys": _post(lambda s: "/shop/group-buys", _campaign),
    "GET /shop/group-buys": _get(lambda s: "/shop/group-buys"),
    "GET /shop/group-buys/{id}": _get(lambda s: f"/shop/group-buys/{s.open_id}"),
    "POST /shop/group-buys/{id}/cancel": _post(lambda s: f"/shop/group-buys/{s.open_id}/cancel"),
    "POST /shop/group-buys/{id}/close": _post(lambda s: f"/shop/group-buys/{s.due_id}/close"),
    "GET /shop/group-buys/{id}/purchase-order": _get(
        lambda s: f"/shop/group-buys/{s.succeeded_id}/purchase-order"
    ),
}

READ = {"GET /shop/group-buys", "GET /shop/group-buys/{id}"}
MANAGE = {
    "POST /shop/group-buys",
    "POST /shop/group-buys/{id}/cancel",
    "GET /shop/group-buys/{id}/purchase-order",
}

ALLOWED: dict[str, set[str]] = {
    "bank_admin": set(ENDPOINTS),
    "relationship_manager": READ,
    "auditor": READ,
    "analyst": READ,
    "merchant_admin": set(),
    "merchant_staff": set(),
    # The partner runs its own campaigns; closing them is the bank's (its job, or its staff).
    "partner_admin": READ | MANAGE,
    "partner_client": READ | MANAGE,
    "partner_staff": READ,
    "other_partner_admin": {"GET /shop/group-buys"},  # which lists none of the partner's
    "customer": READ,
    "anonymous": set(),
}

# Another partner's campaign does not exist for it; its product neither.
HIDDEN: dict[str, dict[str, int]] = {
    "other_partner_admin": {
        "POST /shop/group-buys": 422,
        "GET /shop/group-buys/{id}": 404,
        "POST /shop/group-buys/{id}/cancel": 404,
        "GET /shop/group-buys/{id}/purchase-order": 404,
    }
}


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
        elif endpoint in HIDDEN.get(who, {}):
            ok = response.status_code == HIDDEN[who][endpoint]
        else:
            ok = response.status_code == (401 if who == "anonymous" else 403)
        if not ok:
            wrong.append(f"{endpoint}: {response.status_code} {response.text[:300]}")
    assert wrong == [], "\n".join(wrong)


def test_another_partner_lists_none_of_the_partners_campaigns(
    client: TestClient, uow: UnitOfWork, settings: Settings
) -> None:
    partner = f.make_partner(uow)
    _scene(uow, partner)
    headers = _principals(uow, settings, partner)
    own = client.get(f"{API}/shop/group-buys", headers=headers["partner_admin"]).json()
    other = client.get(f"{API}/shop/group-buys", headers=headers["other_partner_admin"]).json()
    assert len(own["items"]) == 3
    assert other["items"] == []
