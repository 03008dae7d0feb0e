"""The settlement API end to end: contracts, pools, periods and statements, payout runs."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from beyondbank.core.authz import SYSTEM, Role
from beyondbank.core.settings import Settings
from beyondbank.core.uow import UnitOfWork
from beyondbank.settlement import contracts, exports
from beyondbank.settlement.models import CommissionContract
from tests import factories as f
from tests.settlement import factories as sf

API = "/api/v1/settlement"


@pytest.fixture
def admin(uow: UnitOfWork, settings: Settings) -> dict[str, str]:
    return f.auth(settings, uow, f.make_user(uow, Role.BANK_ADMIN))


def _contract(client: TestClient, admin: dict[str, str], party_id: str, **over: Any) -> Any:
    body = {
        "party_kind": "merchant",
        "party_id": party_id,
        "starts_on": "2026-09-01",
        "base_share_bps": 500,
        "category_overrides": {"books": 100},
        "sales_tiers": [{"from_minor": 0, "bonus_bps": 0}, {"from_minor": 50_000, "bonus_bps": 50}],
        "new_customer_fee_minor": 100,
        "minimum_monthly_fee_minor": 1_000,
        **over,
    }
    response = client.post(f"{API}/contracts", json=body, headers=admin)
    assert response.status_code == 201, response.text
    return response.json()


def _contract_row(uow: UnitOfWork, public_id: str) -> CommissionContract:
    return contracts.get_contract(uow, SYSTEM, public_id)


def test_contracts_and_versions(client: TestClient, uow: UnitOfWork, admin: dict[str, str]) -> None:
    merchant = f.make_merchant(uow)
    made = _contract(client, admin, merchant.public_id)
    assert (made["currency"], made["timezone"], made["frequency"]) == (
        "GBP",
        "Europe/London",
        "month",
    )
    assert [v["version"] for v in made["versions"]] == [1]
    assert made["versions"][0]["effective_from"] == "2026-09-01"

    added = client.post(
        f"{API}/contracts/{made['id']}/versions",
        json={"effective_from": "2026-12-01", "base_share_bps": 700},
        headers=admin,
    )
    assert added.status_code == 201, added.text
    assert [(v["version"], v["base_share_bps"]) for v in added.json()["versions"]] == [
        (1, 500),
        (2, 700),
    ]
    earlier = client.post(
        f"{API}/contracts/{made['id']}/versions",
        json={"effective_from": "2026-11-30", "base_share_bps": 1},
        headers=admin,
    )
    assert earlier.status_code == 422
    assert earlier.json()["errors"][0]["field"] == "body.effective_from"
    # No way to edit a version: there is no such endpoint.
    assert (
        client.patch(f"{API}/contracts/{made['id']}/versions", json={}, headers=admin).status_code
        == 405
    )

    again = client.post(
        f"{API}/contracts",
        json={
            "party_kind": "merchant",
            "party_id": merchant.public_id,
            "starts_on": "2026-09-01",
            "base_share_bps": 1,
        },
        headers=admin,
    )
    assert again.status_code == 409
    listed = client.get(f"{API}/contracts", params={"party_id": merchant.public_id}, headers=admin)
    assert [c["id"] for c in listed.json()["items"]] == [made["id"]]


@pytest.mark.parametrize(
    ("over", "field"),
    [
        ({"frequency": "days"}, "body"),
        ({"period_days": 7}, "body"),
        ({"timezone": "Mars/Base"}, "body.timezone"),
        ({"currency": "XYZ"}, "body.currency"),
        ({"base_share_bps": 10_001}, "body.base_share_bps"),
        (
            {"sales_tiers": [{"from_minor": 5, "bonus_bps": 1}, {"from_minor": 5, "bonus_bps": 2}]},
            "body.sales_tiers",
        ),
        ({"party_id": "mer_nobody"}, "body.party_id"),
    ],
)
def test_bad_contracts_are_refused_whole(
    client: TestClient, uow: UnitOfWork, admin: dict[str, str], over: dict[str, Any], field: str
) -> None:
    merchant = f.make_merchant(uow)
    body = {
        "party_kind": "merchant",
        "party_id": merchant.public_id,
        "starts_on": "2026-09-01",
        "base_share_bps": 5,
        **over,
    }
    response = client.post(f"{API}/contracts", json=body, headers=admin)
    assert response.status_code in (404, 422), response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert any(e["field"].startswith(field) for e in response.json().get("errors", [])), (
        response.json()
    )
    assert client.get(f"{API}/contracts", headers=admin).json()["items"] == []


def test_periods_close_and_statements(
    client: TestClient, uow: UnitOfWork, admin: dict[str, str]
) -> None:
    merchant = f.make_merchant(uow)
    made = _contract(client, admin, merchant.public_id)
    contract = _contract_row(uow, made["id"])
    sf.sale(
        uow, contract, 60_000, at=datetime(2026, 9, 5, tzinfo=UTC), member="m1", category="books"
    )
    sf.sale(uow, contract, 40_000, at=datetime(2026, 9, 6, tzinfo=UTC), member="m2")

    opened = client.post(f"{API}/periods/open-due", json={"contract_id": made["id"]}, headers=admin)
    assert opened.status_code == 200, opened.text
    assert [p["starts_on"] for p in opened.json()] == ["2026-09-01", "2026-10-01", "2026-11-01"]
    september = opened.json()[0]["id"]

    early = client.get(f"{API}/periods/{september}/statement", headers=admin)
    assert early.status_code == 409
    assert early.json()["current_status"] == "open"
    running = client.post(f"{API}/periods/{opened.json()[2]['id']}/close", headers=admin)
    assert running.status_code == 409

    first = client.post(f"{API}/periods/{september}/close", headers=admin)
    assert first.status_code == 200, first.text
    totals = first.json()["content"]["totals"]
    # books 60,000 at 1% = 600; other 40,000 at 5% = 2,000; tier: 50,000 above 50,000 at 0.5%
    # = 250; new customers 2 × 100; charges 3,050 (above the 1,000 minimum).
    assert (
        totals["commission_minor"],
        totals["bonus_minor"],
        totals["new_customer_fees_minor"],
    ) == (
        2_600,
        250,
        200,
    )
    assert totals["net_minor"] == 100_000 - 3_050
    second = client.post(f"{API}/periods/{september}/close", headers=admin)
    assert second.content == first.content
    assert (
        client.get(f"{API}/periods/{september}/statement", headers=admin).content == first.content
    )

    period = client.get(f"{API}/periods/{september}", headers=admin).json()
    assert (period["status"], period["net_minor"], period["statement_id"]) == (
        "closed",
        96_950,
        first.json()["id"],
    )
    closed = client.get(f"{API}/periods", params={"status": "closed"}, headers=admin).json()[
        "items"
    ]
    assert [p["id"] for p in closed] == [september]

    csv_1 = client.get(f"{API}/periods/{september}/statement.csv", headers=admin)
    csv_2 = client.get(f"{API}/periods/{september}/statement.csv", headers=admin)
    assert csv_1.headers["content-type"].startswith("text/csv")
    assert csv_1.content == csv_2.content
    rows = list(csv.DictReader(io.StringIO(csv_1.text)))
    net = next(r for r in rows if (r["section"], r["item"]) == ("total", "net"))
    assert (net["amount_minor"], net["amount"]) == ("96950", "969.50")
    assert next(r for r in rows if r["item"] == "sha256")["text"] == first.json()["sha256"]

    pdf_1 = client.get(f"{API}/periods/{september}/statement.pdf", headers=admin)
    pdf_2 = client.get(f"{API}/periods/{september}/statement.pdf", headers=admin)
    assert pdf_1.headers["content-type"] == "application/pdf"
    assert pdf_1.content.startswith(b"%PDF-")
    assert pdf_1.content == pdf_2.content
    assert 'filename="statement-' in pdf_1.headers["content-disposition"]


def test_pools_over_the_api(client: TestClient, uow: UnitOfWork, admin: dict[str, str]) -> None:
    merchant = f.make_merchant(uow)
    made = _contract(client, admin, merchant.public_id, pool_party_share_bps=2_500)
    pool = client.post(
        f"{API}/pools", json={"contract_id": made["id"], "name": "Xmas"}, headers=admin
    )
    assert pool.status_code == 201, pool.text
    pool_id = pool.json()["id"]

    missing_key = client.post(
        f"{API}/pools/{pool_id}/contributions", json={"amount_minor": 1}, headers=admin
    )
    assert missing_key.status_code == 422
    assert missing_key.json()["errors"][0]["field"] == "header.Idempotency-Key"

    keyed = {**admin, "Idempotency-Key": "fund-1"}
    funded = client.post(
        f"{API}/pools/{pool_id}/contributions", json={"amount_minor": 1_001}, headers=keyed
    )
    assert funded.status_code == 201, funded.text
    assert (funded.json()["party_minor"], funded.json()["bank_minor"]) == (250, 751)

    draw = {**admin, "Idempotency-Key": "draw-1"}
    body = {"amount_minor": 600, "campaign_ref": "xmas-2026"}
    first = client.post(f"{API}/pools/{pool_id}/draws", json=body, headers=draw)
    replay = client.post(f"{API}/pools/{pool_id}/draws", json=body, headers=draw)
    assert (first.status_code, replay.status_code) == (201, 200)
    assert replay.headers["idempotent-replayed"] == "true"
    assert replay.json() == first.json()
    reused = client.post(
        f"{API}/pools/{pool_id}/draws", json={**body, "amount_minor": 1}, headers=draw
    )
    assert reused.status_code == 422
    too_much = client.post(
        f"{API}/pools/{pool_id}/draws", json=body, headers={**admin, "Idempotency-Key": "draw-2"}
    )
    assert too_much.status_code == 409
    assert too_much.json()["type"] == "/problems/insufficient-balance"
    assert client.get(f"{API}/pools/{pool_id}", headers=admin).json()["balance_minor"] == 401
    listed = client.get(f"{API}/pools", params={"contract_id": made["id"]}, headers=admin)
    assert [p["id"] for p in listed.json()["items"]] == [pool_id]


def test_payout_runs_over_the_api(
    client: TestClient, uow: UnitOfWork, admin: dict[str, str]
) -> None:
    merchant = f.make_merchant(uow)
    made = _contract(
        client, admin, merchant.public_id, minimum_monthly_fee_minor=0, new_customer_fee_minor=0
    )
    contract = _contract_row(uow, made["id"])
    sf.sale(uow, contract, 20_000, at=datetime(2026, 9, 5, tzinfo=UTC))
    september = client.post(f"{API}/periods/open-due", json={}, headers=admin).json()[0]["id"]
    client.post(f"{API}/periods/{september}/close", headers=admin)

    keyed = {**admin, "Idempotency-Key": "run-1"}
    body = {"currency": "GBP", "execution_date": "2026-11-24"}
    run = client.post(f"{API}/payout-runs", json=body, headers=keyed)
    assert run.status_code == 201, run.text
    replay = client.post(f"{API}/payout-runs", json=body, headers=keyed)
    assert replay.json() == run.json()
    assert replay.headers["idempotent-replayed"] == "true"
    made_run = run.json()
    assert (made_run["number_of_transactions"], made_run["control_sum"]) == (1, "190.00")
    assert made_run["debtor_name"] == "Thames & Harbour Bank"
    assert made_run["lines"][0]["period_id"] == september

    again = client.post(f"{API}/payout-runs", json=body, headers=admin)
    assert again.status_code == 409

    file_1 = client.get(f"{API}/payout-runs/{made_run['id']}/pain.001", headers=admin)
    file_2 = client.get(f"{API}/payout-runs/{made_run['id']}/pain.001", headers=admin)
    assert file_1.status_code == 200, file_1.text
    assert file_1.headers["content-type"].startswith("application/xml")
    assert file_1.content == file_2.content
    assert exports.pain001_problems(file_1.content) == []
    assert b"<CtrlSum>190.00</CtrlSum>" in file_1.content
    assert (
        client.get(f"{API}/periods/{september}", headers=admin).json()["paid_in_run"]
        == made_run["id"]
    )

    bad = client.post(
        f"{API}/payout-runs",
        json={"currency": "GBP", "debtor": {"name": "X", "iban": "GB00XXXX", "bic": "BADBIC00"}},
        headers=admin,
    )
    assert bad.status_code == 422
    listed = client.get(f"{API}/payout-runs", headers=admin).json()["items"]
    assert [r["id"] for r in listed] == [made_run["id"]]
