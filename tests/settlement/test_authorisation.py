"""Who may call each settlement endpoint: every role and partner system against every endpoint."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from beyondbank.alliance.models import Merchant
from beyondbank.core.authz import SYSTEM, Role
from beyondbank.core.settings import Settings
from beyondbank.core.uow import UnitOfWork
from beyondbank.settlement import payouts, periods, pools
from beyondbank.settlement.schemas import PoolIn
from tests import factories as f
from tests.settlement import factories as sf

API = "/api/v1/settlement"


@dataclass
class Scene:
    contract_id: str
    partner_id: str
    pool_id: str
    closed_id: str  # closed, with a statement, not paid yet
    ended_id: str  # open and ended: can be closed
    run_id: str


def _principals(uow: UnitOfWork, settings: Settings, merchant: Merchant) -> dict[str, Any]:
    customer = f.make_customer(uow)
    f.make_member(uow, customer)
    pos = f.make_client(uow, ["benefits:read", "redemptions:create", "redemptions:read"], merchant)
    backend = f.make_client(uow, ["merchants:read", "payments:read", "payments:create"])
    headers = {
        "anonymous": {},
        "customer": f.auth(settings, uow, customer),
        "pos_client": f.auth(settings, uow, pos),
        "bank_app_client": f.auth(settings, uow, backend),
    }
    for role in Role:
        if role != Role.CUSTOMER:
            bound = merchant if role in (Role.MERCHANT_ADMIN, Role.MERCHANT_STAFF) else None
            headers[role.value] = f.auth(settings, uow, f.make_user(uow, role, bound))
    return headers


def _scene(uow: UnitOfWork, merchant: Merchant) -> Scene:
    """A merchant's contract from August: August paid, September closed, October ended and open,
    a funded pool; and a partner without a contract yet."""
    contract = sf.make_contract(uow, merchant.public_id, starts_on=date(2026, 8, 1))
    august, september, october, _ = sf.open_periods(uow, contract)
    for month in (8, 9, 10):
        sf.sale(uow, contract, 10_000, at=datetime(2026, month, 10, 12, tzinfo=UTC))
    periods.close(uow, SYSTEM, august.public_id)
    bank = payouts.check_debtor("Bank", payouts.DEFAULT_DEBTOR_IBAN, payouts.DEFAULT_DEBTOR_BIC)
    run = payouts.create_run(uow, SYSTEM, currency="GBP", debtor=bank)
    periods.close(uow, SYSTEM, september.public_id)
    pool = pools.create_pool(uow, SYSTEM, PoolIn(contract_id=contract.public_id, name="Fund"))
    pools.contribute(uow, SYSTEM, pool, amount_minor=1_000, key="fund", side="bank")
    return Scene(
        contract_id=contract.public_id,
        partner_id=f.make_partner(uow).public_id,
        pool_id=pool.public_id,
        closed_id=september.public_id,
        ended_id=october.public_id,
        run_id=run.public_id,
    )


Call = Callable[[TestClient, Scene, dict[str, str]], Any]


def _get(path: Callable[[Scene], str]) -> Call:
    return lambda client, s, h: client.get(f"{API}{path(s)}", headers=h)


def _post(
    path: Callable[[Scene], str], body: Callable[[Scene], Any] = lambda s: None, key: bool = False
) -> Call:
    def call(client: TestClient, s: Scene, h: dict[str, str]) -> Any:
        headers = {**h, "Idempotency-Key": "matrix"} if key else h
        return client.post(f"{API}{path(s)}", json=body(s), headers=headers)

    return call


ENDPOINTS: dict[str, Call] = {
    "POST /settlement/contracts": _post(
        lambda s: "/contracts",
        lambda s: {
            "party_kind": "partner",
            "party_id": s.partner_id,
            "starts_on": "2026-11-01",
            "base_share_bps": 100,
        },
    ),
    "GET /settlement/contracts": _get(lambda s: "/contracts"),
    "GET /settlement/contracts/{id}": _get(lambda s: f"/contracts/{s.contract_id}"),
    "POST /settlement/contracts/{id}/versions": _post(
        lambda s: f"/contracts/{s.contract_id}/versions",
        lambda s: {"effective_from": "2026-12-01", "base_share_bps": 600},
    ),
    "POST /settlement/pools": _post(
        lambda s: "/pools", lambda s: {"contract_id": s.contract_id, "name": "Matrix"}
    ),
    "GET /settlement/pools": _get(lambda s: "/pools"),
    "GET /settlement/pools/{id}": _get(lambda s: f"/pools/{s.pool_id}"),
    "POST /settlement/pools/{id}/contributions": _post(
        lambda s: f"/pools/{s.pool_id}/contributions", lambda s: {"amount_minor": 100}, key=True
    ),
    "POST /settlement/pools/{id}/draws": _post(
        lambda s: f"/pools/{s.pool_id}/draws",
        lambda s: {"amount_minor": 100, "campaign_ref": "matrix"},
        key=True,
    ),
    "GET /settlement/periods": _get(lambda s: "/periods"),
    "POST /settlement/periods/open-due": _post(lambda s: "/periods/open-due", lambda s: {}),
    "GET /settlement/periods/{id}": _get(lambda s: f"/periods/{s.closed_id}"),
    "POST /settlement/periods/{id}/close": _post(lambda s: f"/periods/{s.ended_id}/close"),
    "GET /settlement/periods/{id}/statement": _get(lambda s: f"/periods/{s.closed_id}/statement"),
    "GET /settlement/periods/{id}/statement.csv": _get(
        lambda s: f"/periods/{s.closed_id}/statement.csv"
    ),
    "GET /settlement/periods/{id}/statement.pdf": _get(
        lambda s: f"/periods/{s.closed_id}/statement.pdf"
    ),
    "POST /settlement/payout-runs": _post(lambda s: "/payout-runs", lambda s: {"currency": "GBP"}),
    "GET /settlement/payout-runs": _get(lambda s: "/payout-runs"),
    "GET /settlement/payout-runs/{id}": _get(lambda s: f"/payout-runs/{s.run_id}"),
    "GET /settlement/payout-runs/{id}/pain.001": _get(
        lambda s: f"/payout-runs/{s.run_id}/pain.001"
    ),
}

READ = {
    "GET /settlement/contracts",
    "GET /settlement/contracts/{id}",
    "GET /settlement/pools",
    "GET /settlement/pools/{id}",
    "GET /settlement/periods",
    "GET /settlement/periods/{id}",
    "GET /settlement/periods/{id}/statement",
    "GET /settlement/periods/{id}/statement.csv",
    "GET /settlement/periods/{id}/statement.pdf",
}
# Payout runs span every party: the bank's staff only.
RUNS = {
    "GET /settlement/payout-runs",
    "GET /settlement/payout-runs/{id}",
    "GET /settlement/payout-runs/{id}/pain.001",
}
MANAGE = set(ENDPOINTS) - READ - RUNS

ALLOWED: dict[str, set[str]] = {
    "bank_admin": READ | RUNS | MANAGE,
    "relationship_manager": READ | RUNS,
    "auditor": READ | RUNS,
    "analyst": set(),
    "merchant_admin": READ,  # its own merchant's only (the scene is its merchant's)
    "merchant_staff": set(),
    # A partner's admin reads its own partner's settlement only: the scene is a merchant's, so the
    # lists answer empty and each object 404 (below); payout runs are the bank's.
    "partner_admin": {
        "GET /settlement/contracts",
        "GET /settlement/pools",
        "GET /settlement/periods",
    },
    "partner_staff": set(),
    "customer": set(),
    "pos_client": set(),
    "bank_app_client": set(),
    "anonymous": set(),
}


# Reads a role may make, of another party's objects: a 404, as if they did not exist.
NOT_THEIRS: dict[str, set[str]] = {"partner_admin": READ - ALLOWED["partner_admin"]}


def test_manage_is_every_post() -> None:
    assert {e for e in MANAGE if not e.startswith("POST ")} == set()
    assert {e for e in READ | RUNS if not e.startswith("GET ")} == set()


@pytest.mark.parametrize("who", sorted(ALLOWED))
def test_authorisation_matrix(
    client: TestClient, uow: UnitOfWork, settings: Settings, who: str
) -> None:
    merchant = f.make_merchant(uow)
    headers = _principals(uow, settings, merchant)[who]
    scene = _scene(uow, merchant)
    wrong = []
    for endpoint, call in ENDPOINTS.items():
        response = call(client, scene, headers)
        if endpoint in ALLOWED[who]:
            ok = response.status_code < 300
        elif endpoint in NOT_THEIRS.get(who, set()):
            ok = response.status_code == 404
        else:
            ok = response.status_code == (401 if who == "anonymous" else 403)
        if not ok:
            wrong.append(f"{endpoint}: {response.status_code} {response.text[:200]}")
    assert wrong == [], "\n".join(wrong)


@pytest.mark.parametrize("role", [Role.MERCHANT_ADMIN, Role.PARTNER_ADMIN])
def test_another_partys_objects_answer_404(
    client: TestClient, uow: UnitOfWork, settings: Settings, role: Role
) -> None:
    mine, theirs = f.make_merchant(uow), f.make_merchant(uow)
    if role is Role.MERCHANT_ADMIN:
        user = f.make_user(uow, role, mine)
    else:
        user = f.make_user(uow, role, partner=f.make_partner(uow))
    headers = f.auth(settings, uow, user)
    scene = _scene(uow, theirs)
    for path in (
        f"/contracts/{scene.contract_id}",
        f"/pools/{scene.pool_id}",
        f"/periods/{scene.closed_id}",
        f"/periods/{scene.closed_id}/statement",
        f"/periods/{scene.closed_id}/statement.csv",
        f"/periods/{scene.closed_id}/statement.pdf",
    ):
        response = client.get(f"{API}{path}", headers=headers)
        assert response.status_code == 404, (path, response.text)
        assert response.headers["content-type"] == "application/problem+json"
    for path in ("/contracts", "/pools", "/periods"):
        assert client.get(f"{API}{path}", headers=headers).json()["items"] == []
