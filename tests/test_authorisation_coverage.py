"""Every API endpoint appears in an authorisation matrix (each role × each endpoint), so a new
endpoint cannot ship without its access being decided and tested."""

from __future__ import annotations

import re

from fastapi import FastAPI

from tests.alliance.test_access import MATRIX as ALLIANCE
from tests.benefits.test_authorisation import ENDPOINTS as BENEFITS
from tests.cards.test_authorisation import ENDPOINTS as CARDS
from tests.commerce.catalog.test_authorisation import ENDPOINTS as SHOP_CATALOG
from tests.commerce.groupbuy.test_authorisation import ENDPOINTS as SHOP_GROUPBUY
from tests.commerce.orders.test_authorisation import ENDPOINTS as SHOP_ORDERS
from tests.commerce.support.test_authorisation import ENDPOINTS as SHOP_SUPPORT
from tests.commerce.webhooks.test_authorisation import ENDPOINTS as SHOP_WEBHOOKS
from tests.identity.test_access import MATRIX as IDENTITY
from tests.ledger.test_authorisation import ENDPOINTS as LEDGER
from tests.payments.test_authorisation import ENDPOINTS as PAYMENTS
from tests.settlement.test_authorisation import ENDPOINTS as SETTLEMENT

# Open to anyone by design: health, sign-in, and a merchant's online application form.
PUBLIC = {
    "GET /health",
    "POST /auth/token",
    "POST /oauth/token",
    "POST /sso/session",
    "POST /merchants/apply",
}


PLACEHOLDER = re.compile(r"\{[^}]*\}")


def _shape(endpoint: str) -> str:
    """`GET /merchants/{merchant_id}` and `GET /merchants/{own}` are the same endpoint."""
    method, path = endpoint.split(" ", 1)
    return f"{method} {PLACEHOLDER.sub('{}', path.split('?', 1)[0])}"


def test_every_endpoint_is_in_an_authorisation_matrix(app: FastAPI) -> None:
    routes = {
        _shape(f"{method.upper()} {path.removeprefix('/api/v1')}")
        for path, operations in app.openapi()["paths"].items()
        for method in operations
    }
    covered = (
        {_shape(f"{m} {p}") for m, p, _, _ in ALLIANCE}
        | {_shape(e) for e in BENEFITS}
        | {_shape(f"{m} {p}") for m, p, _, _ in IDENTITY}
        | {_shape(e) for e in LEDGER}
        | {_shape(e) for e in PAYMENTS}
        | {_shape(e) for e in SETTLEMENT}
        | {_shape(e) for e in CARDS}
        | {_shape(e) for e in SHOP_CATALOG}
        | {_shape(e) for e in SHOP_GROUPBUY}
        | {_shape(e) for e in SHOP_ORDERS}
        | {_shape(e) for e in SHOP_SUPPORT}
        | {_shape(e) for e in SHOP_WEBHOOKS}
        | {_shape(e) for e in PUBLIC}
    )
    missing = sorted(routes - covered)
    assert missing == [], "\n".join(missing)
    assert sorted(covered - routes) == [], "the matrices name endpoints that do not exist"
