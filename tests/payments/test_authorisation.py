"""Who may call each payments endpoint: every role and partner system against every endpoint."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient

from beyondbank.alliance.models import Merchant
from beyondbank.core.authz import SYSTEM, Role
from beyondbank.core.settings import Settings
from beyondbank.core.uow import UnitOfWork
from beyondbank.payments import service
from beyondbank.payments.bankcore import BankCoreGateway
from tests import factories as f
from tests.payments import factories as pf

API = "/api/v1"


@dataclass
class Scene:
    merchant_id: str
    customer_id: str
    account_id: str
    blocked_id: str
    empty_id: str
    authorised_id: str
    captured_id: str


def _principals(uow: UnitOfWork, settings: Settings, merchant: Merchant) -> dict[str, Any]:
    """Bearer headers for every role and partner system, and the signed-in customer."""
    customer = f.make_customer(uow)
    f.make_member(uow, customer)
    # A merchant's point-of-sale system, and the shop's (or bank app's) backend.
    pos = f.make_client(uow, ["payments:create", "payments:read"], merchant)
    shop = f.make_client(uow, ["payments:create", "payments:read"])
    feed = f.make_client(uow, ["benefits:read"])
    headers = {
        "anonymous": {},
        "customer": f.auth(settings, uow, customer),
        "pos_client": f.auth(settings, uow, pos),
        "shop_client": f.auth(settings, uow, shop),
        "feed_client": f.auth(settings, uow, feed),
    }
    for role in Role:
        if role != Role.CUSTOMER:
            bound = merchant if role in (Role.MERCHANT_ADMIN, Role.MERCHANT_STAFF) else None
            headers[role.value] = f.auth(settings, uow, f.make_user(uow, role, bound))
    return headers


def _scene(uow: UnitOfWork, bank: BankCoreGateway, merchant: Merchant) -> Scene:
    """Fresh objects in the state each endpoint needs, so every allowed call can succeed."""
    account = pf.make_account(uow, opening=50_000)
    blocked = pf.make_account(uow)
    service.block(uow, SYSTEM, blocked, "Card stolen")
    authorised = bank.authorise(pf.request(account, merchant, 1_000), key=pf.fresh_key())
    captured = bank.authorise(pf.request(account, merchant, 2_000), key=pf.fresh_key())
    bank.capture(captured.payment.id, key=pf.fresh_key())
    return Scene(
        merchant_id=merchant.public_id,
        customer_id=f.make_customer(uow).public_id,
        account_id=account.public_id,
        blocked_id=blocked.public_id,
        empty_id=pf.make_account(uow, opening=0).public_id,
        authorised_id=authorised.payment.id,
        captured_id=captured.payment.id,
    )


Call = Callable[[TestClient, Scene, dict[str, str]], Any]


def _get(path: Callable[[Scene], str]) -> Call:
    return lambda client, s, h: client.get(f"{API}{path(s)}", headers=h)


def _post(
    path: Callable[[Scene], str],
    body: Callable[[Scene], Any] = lambda s: None,
    key: str | None = None,
) -> Call:
    def call(client: TestClient, s: Scene, h: dict[str, str]) -> Any:
        headers = {**h, "Idempotency-Key": key} if key else h
        return client.post(f"{API}{path(s)}", json=body(s), headers=headers)

    return call


def _payment(s: Scene) -> dict[str, Any]:
    return {
        "account_id": s.account_id,
        "amount_minor": 1_250,
        "currency": "GBP",
        "payee_kind": "merchant",
        "payee_id": s.merchant_id,
    }


ENDPOINTS: dict[str, Call] = {
    "POST /payments": _post(lambda s: "/payments", _payment, key="matrix-pay"),
    "GET /payments": _get(lambda s: "/payments"),
    "GET /payments/{id}": _get(lambda s: f"/payments/{s.captured_id}"),
    "POST /payments/{id}/capture": _post(
        lambda s: f"/payments/{s.authorised_id}/capture", key="matrix-capture"
    ),
    "POST /payments/{id}/void": _post(
        lambda s: f"/payments/{s.authorised_id}/void", key="matrix-void"
    ),
    "POST /payments/{id}/refund": _post(
        lambda s: f"/payments/{s.captured_id}/refund",
        lambda s: {"amount_minor": 500},
        key="matrix-refund",
    ),
    "POST /bank-core/accounts": _post(
        lambda s: "/bank-core/accounts",
        lambda s: {"customer_id": s.customer_id, "currency": "GBP", "opening_balance_minor": 100},
        key="matrix-open",
    ),
    "GET /bank-core/accounts": _get(lambda s: "/bank-core/accounts"),
    "GET /bank-core/accounts/{id}": _get(lambda s: f"/bank-core/accounts/{s.account_id}"),
    "PATCH /bank-core/accounts/{id}": lambda client, s, h: client.patch(
        f"{API}/bank-core/accounts/{s.account_id}",
        json={"daily_limit_minor": 100_000},
        headers=h,
    ),
    "POST /bank-core/accounts/{id}/block": _post(
        lambda s: f"/bank-core/accounts/{s.account_id}/block", lambda s: {"reason": "Fraud check"}
    ),
    "POST /bank-core/accounts/{id}/unblock": _post(
        lambda s: f"/bank-core/accounts/{s.blocked_id}/unblock"
    ),
    "POST /bank-core/accounts/{id}/close": _post(
        lambda s: f"/bank-core/accounts/{s.empty_id}/close"
    ),
    "POST /bank-core/accounts/{id}/deposits": _post(
        lambda s: f"/bank-core/accounts/{s.account_id}/deposits",
        lambda s: {"amount_minor": 1_000, "currency": "GBP"},
        key="matrix-deposit",
    ),
    "POST /bank-core/accounts/{id}/withdrawals": _post(
        lambda s: f"/bank-core/accounts/{s.account_id}/withdrawals",
        lambda s: {"amount_minor": 1_000, "currency": "GBP"},
        key="matrix-withdrawal",
    ),
    "POST /bank-core/authorisations/expire": _post(lambda s: "/bank-core/authorisations/expire"),
}

READ_PAYMENTS = {"GET /payments", "GET /payments/{id}"}
TAKE_PAYMENTS = {
    "POST /payments",
    "POST /payments/{id}/capture",
    "POST /payments/{id}/void",
    "POST /payments/{id}/refund",
}
READ_BANK_CORE = {"GET /bank-core/accounts", "GET /bank-core/accounts/{id}"}

ALLOWED: dict[str, set[str]] = {
    "bank_admin": set(ENDPOINTS),
    "auditor": READ_PAYMENTS | READ_BANK_CORE,
    "relationship_manager": set(),
    "analyst": set(),
    "merchant_admin": set(),
    "merchant_staff": set(),
    "partner_admin": set(),  # a partner's people hold the shop's permissions only
    "partner_staff": set(),
    "customer": set(),
    # Partner systems take and read payments (a merchant's only its own), never deposit accounts.
    "pos_client": READ_PAYMENTS | TAKE_PAYMENTS,
    "shop_client": READ_PAYMENTS | TAKE_PAYMENTS,
    "feed_client": set(),
    "anonymous": set(),
}


@pytest.mark.parametrize("who", sorted(ALLOWED))
def test_authorisation_matrix(
    client: TestClient, uow: UnitOfWork, settings: Settings, bank: BankCoreGateway, who: str
) -> None:
    merchant = f.make_merchant(uow)
    headers = _principals(uow, settings, merchant)[who]
    wrong = []
    for endpoint, call in ENDPOINTS.items():
        response = call(client, _scene(uow, bank, merchant), headers)
        if endpoint in ALLOWED[who]:
            ok = response.status_code < 300
        else:
            ok = response.status_code == (401 if who == "anonymous" else 403)
        if not ok:
            wrong.append(f"{endpoint}: {response.status_code} {response.text[:200]}")
    assert wrong == [], "\n".join(wrong)
