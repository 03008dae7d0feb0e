"""Who may call each ledger endpoint: every role and partner system against every endpoint.

The ledger is the bank's books: finance (`bank_admin`) writes, auditors read, nobody else sees it
(not merchants, not customers, not partner systems, whatever their scopes)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient

from beyondbank.core.authz import CLIENT_SCOPES, Role
from beyondbank.core.ids import new_ulid
from beyondbank.core.settings import Settings
from beyondbank.core.uow import UnitOfWork
from beyondbank.ledger import chart
from beyondbank.ledger import service as ledger
from beyondbank.ledger.models import OwnerKind
from tests import factories as f
from tests.ledger.factories import account, pool, transfer

API = "/api/v1"


@dataclass
class Scene:
    cash: str
    pool: str
    empty: str
    posted: str
    hold_to_capture: str
    hold_to_void: str


def _principals(uow: UnitOfWork, settings: Settings) -> dict[str, dict[str, str]]:
    """Bearer headers for every role, a customer, and partner systems with every scope."""
    merchant = f.make_merchant(uow)
    headers = {
        "anonymous": {},
        "customer": f.auth(settings, uow, f.make_customer(uow)),
        "bank_core_client": f.auth(
            settings, uow, f.make_client(uow, sorted(s.value for s in CLIENT_SCOPES))
        ),
        "merchant_client": f.auth(
            settings, uow, f.make_client(uow, sorted(s.value for s in CLIENT_SCOPES), merchant)
        ),
    }
    for role in Role:
        if role != Role.CUSTOMER:
            bound = merchant if role in (Role.MERCHANT_ADMIN, Role.MERCHANT_STAFF) else None
            headers[role.value] = f.auth(settings, uow, f.make_user(uow, role, bound))
    return headers


def _scene(uow: UnitOfWork) -> Scene:
    """Fresh objects in the state each endpoint needs, so every allowed call can succeed."""
    cash = account(uow, "cash")
    the_pool = pool(uow, f"pool-{new_ulid()}")
    cashback = chart.member_cashback(uow, f"mem_{new_ulid()}", "GBP")
    ledger.post(uow, transfer(cash, the_pool, 10_000))
    posted = ledger.post(uow, transfer(the_pool, cashback, 1_000))
    to_capture = ledger.hold(uow, transfer(the_pool, cashback, 500))
    to_void = ledger.hold(uow, transfer(the_pool, cashback, 500))
    empty = account(uow, "suspense", owner_kind=OwnerKind.PARTNER, owner_ref=new_ulid())
    return Scene(
        cash=cash.public_id,
        pool=the_pool.public_id,
        empty=empty.public_id,
        posted=posted.transaction.public_id,
        hold_to_capture=to_capture.transaction.public_id,
        hold_to_void=to_void.transaction.public_id,
    )


Call = Callable[[TestClient, Scene, dict[str, str]], Any]


def _get(path: Callable[[Scene], str]) -> Call:
    return lambda client, s, h: client.get(f"{API}{path(s)}", headers=h)


def _post(
    path: Callable[[Scene], str], body: Callable[[Scene], Any] = lambda s: None, keyed: bool = True
) -> Call:
    def call(client: TestClient, s: Scene, h: dict[str, str]) -> Any:
        headers = {**h, "Idempotency-Key": new_ulid()} if keyed else h
        return client.post(f"{API}{path(s)}", json=body(s), headers=headers)

    return call


def _entry(s: Scene) -> dict[str, Any]:
    return {
        "description": "Top up the pool",
        "postings": [
            {"account": s.cash, "side": "debit", "currency": "GBP", "amount": "1.00"},
            {"account": s.pool, "side": "credit", "currency": "GBP", "amount": "1.00"},
        ],
    }


def _hold(s: Scene) -> dict[str, Any]:
    return {
        "kind": "pool.draw",
        "postings": [
            {"account": s.pool, "side": "debit", "currency": "GBP", "amount": "1.00"},
            {"account": s.cash, "side": "credit", "currency": "GBP", "amount": "1.00"},
        ],
    }


ENDPOINTS: dict[str, Call] = {
    "GET /ledger/accounts": _get(lambda s: "/ledger/accounts"),
    "POST /ledger/accounts": _post(
        lambda s: "/ledger/accounts",
        lambda s: {
            "owner_kind": "merchant",
            "owner_ref": f"mer_{new_ulid()}",
            "purpose": "prepaid_budget",
            "type": "liability",
            "currency": "GBP",
            "floor": "0",
        },
        keyed=False,
    ),
    "GET /ledger/accounts/{id}": _get(lambda s: f"/ledger/accounts/{s.pool}"),
    "GET /ledger/accounts/{id}/balance": _get(lambda s: f"/ledger/accounts/{s.pool}/balance"),
    "GET /ledger/accounts/{id}/statement": _get(
        lambda s: f"/ledger/accounts/{s.pool}/statement?from=2026-11-01T00:00:00Z"
    ),
    "POST /ledger/accounts/{id}/close": _post(
        lambda s: f"/ledger/accounts/{s.empty}/close", keyed=False
    ),
    "GET /ledger/transactions": _get(lambda s: "/ledger/transactions"),
    "GET /ledger/transactions/{id}": _get(lambda s: f"/ledger/transactions/{s.posted}"),
    "POST /ledger/transactions": _post(lambda s: "/ledger/transactions", _entry),
    "POST /ledger/transactions/{id}/reverse": _post(
        lambda s: f"/ledger/transactions/{s.posted}/reverse", lambda s: {"reason": "Wrong pool"}
    ),
    "POST /ledger/holds": _post(lambda s: "/ledger/holds", _hold),
    "POST /ledger/holds/{id}/capture": _post(
        lambda s: f"/ledger/holds/{s.hold_to_capture}/capture", lambda s: {"amount": "2.50"}
    ),
    "POST /ledger/holds/{id}/void": _post(
        lambda s: f"/ledger/holds/{s.hold_to_void}/void", keyed=False
    ),
}

READ = {e for e in ENDPOINTS if e.startswith("GET ")}
WRITE = set(ENDPOINTS) - READ

ALLOWED: dict[str, set[str]] = {
    "bank_admin": READ | WRITE,
    "auditor": READ,
    "relationship_manager": set(),
    "analyst": set(),
    "merchant_admin": set(),
    "merchant_staff": set(),
    "partner_admin": set(),  # a partner's people hold the shop's permissions only
    "partner_staff": set(),
    "customer": set(),
    "bank_core_client": set(),
    "merchant_client": set(),
    "anonymous": set(),
}


def test_every_role_is_in_the_matrix() -> None:
    assert {r.value for r in Role} - {"customer"} <= set(ALLOWED)


@pytest.mark.parametrize("who", sorted(ALLOWED))
def test_authorisation_matrix(
    client: TestClient, uow: UnitOfWork, settings: Settings, who: str
) -> None:
    headers = _principals(uow, settings)[who]
    wrong = []
    for endpoint, call in ENDPOINTS.items():
        response = call(client, _scene(uow), headers)
        if endpoint in ALLOWED[who]:
            ok = response.status_code < 300
        else:
            ok = response.status_code == (401 if who == "anonymous" else 403)
        if not ok:
            wrong.append(f"{endpoint}: {response.status_code} {response.text[:300]}")
    assert wrong == [], "\n".join(wrong)
