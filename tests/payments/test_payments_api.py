"""The payments and bank core API: shapes, problems, idempotency over HTTP, scoping."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from beyondbank.alliance.models import Merchant
from beyondbank.core.authz import Role
from beyondbank.core.clock import FixedClock
from beyondbank.core.errors import PROBLEM_MEDIA_TYPE
from beyondbank.core.settings import Settings
from beyondbank.core.uow import UnitOfWork
from beyondbank.payments.models import DepositAccount, Payment
from tests import factories as f
from tests.payments import factories as pf

API = "/api/v1"


@dataclass
class Api:
    client: TestClient
    admin: dict[str, str]
    account: DepositAccount
    merchant: Merchant

    def post(self, path: str, body: Any = None, key: str | None = "k", **headers: str) -> Any:
        sent = {**self.admin, **headers}
        if key is not None:
            sent["Idempotency-Key"] = key
        return self.client.post(f"{API}{path}", json=body, headers=sent)

    def get(self, path: str, **params: Any) -> Any:
        return self.client.get(f"{API}{path}", params=params, headers=self.admin)

    def pay(self, amount: int = 2_500, key: str = "pay-1", **over: Any) -> Any:
        body = {
            "account_id": self.account.public_id,
            "amount_minor": amount,
            "currency": "GBP",
            "payee_kind": "merchant",
            "payee_id": self.merchant.public_id,
            **over,
        }
        return self.post("/payments", body, key=key)


@pytest.fixture
def api(client: TestClient, uow: UnitOfWork, settings: Settings) -> Api:
    admin = f.auth(settings, uow, f.make_user(uow, Role.BANK_ADMIN))
    return Api(client, admin, pf.make_account(uow, opening=10_000), f.make_merchant(uow))


def _problem(response: Any, status: int, slug: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM_MEDIA_TYPE)
    body: dict[str, Any] = response.json()
    assert body["type"] == f"/problems/{slug}"
    assert body["status"] == status
    assert body["title"]
    assert body["detail"]
    return body


# -- payments ------------------------------------------------------------------------------------


def test_authorise_answers_the_payment_and_the_operation(api: Api) -> None:
    response = api.pay(2_500, reference="ord_77", category="books")
    assert response.status_code == 201, response.text
    body = response.json()
    payment, operation = body["payment"], body["operation"]
    assert payment["id"].startswith("pay_")
    assert payment["status"] == "authorised"
    assert payment["account_id"] == api.account.public_id
    assert (payment["payee_kind"], payment["payee_id"]) == ("merchant", api.merchant.public_id)
    assert (payment["amount_minor"], payment["captured_minor"], payment["refundable_minor"]) == (
        2_500,
        0,
        0,
    )
    assert (payment["reference"], payment["category"]) == ("ord_77", "books")
    assert payment["hold_transaction_id"].startswith("ltx_")
    assert payment["decline_code"] is None
    assert operation["kind"] == "authorise"
    assert operation["outcome"] == "approved"
    assert "Idempotent-Replayed" not in response.headers


def test_money_posts_need_an_idempotency_key(api: Api) -> None:
    response = api.post(
        "/payments",
        {
            "account_id": api.account.public_id,
            "amount_minor": 100,
            "currency": "GBP",
            "payee_kind": "merchant",
            "payee_id": api.merchant.public_id,
        },
        key=None,
    )
    body = _problem(response, 422, "invalid-input")
    assert body["errors"][0]["field"] == "header.Idempotency-Key"
    for path in (f"/bank-core/accounts/{api.account.public_id}/deposits", "/bank-core/accounts"):
        assert api.post(path, {"amount_minor": 1, "currency": "GBP"}, key=None).status_code == 422


def test_a_retry_answers_the_original_and_another_body_is_refused(
    api: Api, uow: UnitOfWork
) -> None:
    first = api.pay(2_500, key="same")
    again = api.pay(2_500, key="same")
    assert again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert uow.session.scalar(select(func.count()).select_from(Payment)) == 1

    reused = api.pay(2_600, key="same")
    _problem(reused, 422, "idempotency-key-reused")


def test_keys_belong_to_their_caller(
    api: Api, uow: UnitOfWork, settings: Settings, client: TestClient
) -> None:
    other = f.auth(settings, uow, f.make_user(uow, Role.BANK_ADMIN))
    mine = api.pay(1_000, key="order-1")
    theirs = api.post(
        "/payments",
        {
            "account_id": api.account.public_id,
            "amount_minor": 1_000,
            "currency": "GBP",
            "payee_kind": "merchant",
            "payee_id": api.merchant.public_id,
        },
        key="order-1",
        **other,
    )
    assert theirs.status_code == 201
    assert theirs.json()["payment"]["id"] != mine.json()["payment"]["id"]


def test_a_decline_is_a_402_problem_with_its_code(api: Api) -> None:
    response = api.pay(10_001, key="too-much")
    body = _problem(response, 402, "payment-declined")
    assert body["decline_code"] == "insufficient_funds"
    assert body["payment_id"].startswith("pay_")
    again = api.pay(10_001, key="too-much")
    assert _problem(again, 402, "payment-declined")["payment_id"] == body["payment_id"]
    kept = api.get(f"/payments/{body['payment_id']}").json()
    assert (kept["status"], kept["decline_code"]) == ("declined", "insufficient_funds")
    assert [o["outcome"] for o in kept["operations"]] == ["declined"]


@pytest.mark.parametrize("amount", [12.5, "1250", True, 0, -1, 10**13])
def test_amounts_are_strict_positive_integers(api: Api, amount: Any) -> None:
    body = _problem(api.pay(amount, key=f"bad-{amount}"), 422, "invalid-input")
    assert [e["field"] for e in body["errors"]] == ["body.amount_minor"]


def test_capture_void_refund_over_http(api: Api) -> None:
    pid = api.pay(2_500, key="p").json()["payment"]["id"]
    captured = api.post(f"/payments/{pid}/capture", {"amount_minor": 2_000}, key="c")
    assert captured.status_code == 200, captured.text
    assert captured.json()["payment"]["captured_minor"] == 2_000

    void = api.post(f"/payments/{pid}/void", key="v")
    body = _problem(void, 409, "invalid-transition")
    assert body["current_status"] == "captured"

    refunded = api.post(f"/payments/{pid}/refund", {"amount_minor": 500}, key="r1")
    assert refunded.json()["payment"]["status"] == "partially_refunded"
    beyond = _problem(
        api.post(f"/payments/{pid}/refund", {"amount_minor": 1_501}, key="r2"), 409, "conflict"
    )
    assert beyond["refundable_minor"] == 1_500
    rest = api.post(f"/payments/{pid}/refund", key="r3")  # no body: what is left
    assert rest.json()["payment"]["status"] == "refunded"
    assert rest.json()["operation"]["amount_minor"] == 1_500

    detail = api.get(f"/payments/{pid}").json()
    assert [o["kind"] for o in detail["operations"]] == [
        "authorise",
        "capture",
        "refund",
        "refund",
    ]
    assert all(o["ledger_transaction_id"].startswith("ltx_") for o in detail["operations"])
    _problem(api.post("/payments/pay_nothing/capture", key="x"), 404, "not-found")


def test_void_releases_over_http(api: Api) -> None:
    pid = api.pay(2_500, key="p").json()["payment"]["id"]
    assert api.post(f"/payments/{pid}/void", key="v").json()["payment"]["status"] == "voided"
    account = api.get(f"/bank-core/accounts/{api.account.public_id}").json()
    assert account["balance"]["pending_minor"] == 0


def test_listing_payments_filters(api: Api) -> None:
    kept = api.pay(1_000, key="a", reference="ord_1").json()["payment"]["id"]
    api.pay(99_999, key="b")
    newest = api.pay(500, key="c").json()["payment"]["id"]
    listed = api.get("/payments").json()
    assert listed["items"][0]["id"] == newest  # newest first
    assert len(listed["items"]) == 3
    declined = api.get("/payments", status="declined").json()["items"]
    assert [p["amount_minor"] for p in declined] == [99_999]
    assert [p["id"] for p in api.get("/payments", reference="ord_1").json()["items"]] == [kept]
    by_account = api.get("/payments", account_id=api.account.public_id, limit=2).json()
    assert len(by_account["items"]) == 2
    assert by_account["next_cursor"]


def test_a_merchants_system_sees_and_takes_only_its_own_payments(
    api: Api, uow: UnitOfWork, settings: Settings, client: TestClient
) -> None:
    pos = f.auth(
        settings, uow, f.make_client(uow, ["payments:create", "payments:read"], api.merchant)
    )
    other_merchant = f.make_merchant(uow)
    theirs = api.pay(500, key="theirs", payee_id=other_merchant.public_id).json()["payment"]["id"]
    body = {
        "account_id": api.account.public_id,
        "amount_minor": 700,
        "currency": "GBP",
        "payee_kind": "merchant",
    }
    own = api.post("/payments", {**body, "payee_id": api.merchant.public_id}, key="o", **pos)
    assert own.status_code == 201, own.text
    elsewhere = api.post("/payments", {**body, "payee_id": other_merchant.public_id}, **pos)
    _problem(elsewhere, 403, "forbidden")
    _problem(client.get(f"{API}/payments/{theirs}", headers=pos), 404, "not-found")
    _problem(api.post(f"/payments/{theirs}/void", key="v", **pos), 404, "not-found")
    listed = client.get(f"{API}/payments", headers=pos).json()["items"]
    assert [p["id"] for p in listed] == [own.json()["payment"]["id"]]


# -- bank core -----------------------------------------------------------------------------------


def test_open_an_account_over_http(api: Api, uow: UnitOfWork) -> None:
    customer = f.make_customer(uow)
    body = {
        "customer_id": customer.public_id,
        "currency": "GBP",
        "opening_balance_minor": 5_000,
        "overdraft_minor": 1_000,
        "daily_limit_minor": 20_000,
    }
    response = api.post("/bank-core/accounts", body, key="open-1")
    assert response.status_code == 201, response.text
    account = response.json()
    assert account["id"].startswith("dep_")
    assert account["iban"].startswith("GB")
    assert account["customer_id"] == customer.public_id
    assert (account["status"], account["overdraft_minor"], account["daily_limit_minor"]) == (
        "active",
        1_000,
        20_000,
    )
    assert account["balance"] == {
        "balance_minor": 5_000,
        "pending_minor": 0,
        "available_minor": 5_000,
        "spendable_minor": 6_000,
    }
    again = api.post("/bank-core/accounts", body, key="open-1")
    assert again.json() == account
    assert again.headers["Idempotent-Replayed"] == "true"
    _problem(api.post("/bank-core/accounts", body, key="open-2"), 409, "conflict")
    bad = api.post("/bank-core/accounts", {**body, "overdraft_minor": -1}, key="open-3")
    assert _problem(bad, 422, "invalid-input")["errors"][0]["field"] == "body.overdraft_minor"


def test_the_account_shows_posted_pending_and_available(api: Api) -> None:
    path = f"/bank-core/accounts/{api.account.public_id}"
    pid = api.pay(2_500, key="p").json()["payment"]["id"]
    assert api.get(path).json()["balance"] == {
        "balance_minor": 10_000,
        "pending_minor": 2_500,
        "available_minor": 7_500,
        "spendable_minor": 7_500,
    }
    api.post(f"/payments/{pid}/capture", {"amount_minor": 1_000}, key="c")
    balance = api.get(path).json()["balance"]
    assert (balance["balance_minor"], balance["pending_minor"]) == (9_000, 0)


def test_block_limits_and_money_over_http(api: Api) -> None:
    path = f"/bank-core/accounts/{api.account.public_id}"
    blocked = api.post(f"{path}/block", {"reason": "Card stolen"})
    assert (blocked.json()["status"], blocked.json()["status_reason"]) == ("blocked", "Card stolen")
    declined = _problem(api.pay(100, key="while-blocked"), 402, "payment-declined")
    assert declined["decline_code"] == "account_blocked"
    _problem(api.post(f"{path}/block", {"reason": "Again"}), 409, "invalid-transition")
    assert api.post(f"{path}/unblock").json()["status"] == "active"

    patched = api.client.patch(
        f"{API}{path}", json={"per_payment_limit_minor": 1_000}, headers=api.admin
    )
    assert patched.json()["per_payment_limit_minor"] == 1_000
    declined = _problem(api.pay(1_001, key="over-limit"), 402, "payment-declined")
    assert declined["decline_code"] == "per_payment_limit"
    cleared = api.client.patch(
        f"{API}{path}", json={"per_payment_limit_minor": None}, headers=api.admin
    )
    assert cleared.json()["per_payment_limit_minor"] is None
    unknown = api.client.patch(f"{API}{path}", json={"overdraft_minor": 5}, headers=api.admin)
    assert unknown.status_code == 422

    deposit = api.post(f"{path}/deposits", {"amount_minor": 2_000, "currency": "GBP"}, key="d")
    assert deposit.status_code == 201, deposit.text
    assert deposit.json()["account"]["balance"]["balance_minor"] == 12_000
    assert deposit.json()["transaction_id"].startswith("ltx_")
    replay = api.post(f"{path}/deposits", {"amount_minor": 2_000, "currency": "GBP"}, key="d")
    assert replay.json() == deposit.json()
    assert api.get(path).json()["balance"]["balance_minor"] == 12_000
    too_much = api.post(f"{path}/withdrawals", {"amount_minor": 12_001, "currency": "GBP"}, key="w")
    _problem(too_much, 409, "insufficient-balance")
    _problem(api.get("/bank-core/accounts/dep_nothing"), 404, "not-found")


def test_expire_authorisations_over_http(
    api: Api, clock: FixedClock, uow: UnitOfWork, settings: Settings
) -> None:
    pid = api.pay(2_500, key="p").json()["payment"]["id"]
    assert api.post("/bank-core/authorisations/expire", key=None).json() == {"expired": []}
    clock.advance(timedelta(days=7))
    api.admin = f.auth(settings, uow, f.make_user(uow, Role.BANK_ADMIN))  # a fresh token
    assert api.post("/bank-core/authorisations/expire", key=None).json() == {"expired": [pid]}
    assert api.get(f"/payments/{pid}").json()["status"] == "expired"


def test_partner_systems_never_see_deposit_accounts(
    api: Api, uow: UnitOfWork, settings: Settings, client: TestClient
) -> None:
    backend = f.auth(settings, uow, f.make_client(uow, ["payments:read", "payments:create"]))
    _problem(client.get(f"{API}/bank-core/accounts", headers=backend), 403, "forbidden")
    auditor = f.auth(settings, uow, f.make_user(uow, Role.AUDITOR))
    listed = client.get(f"{API}/bank-core/accounts", headers=auditor)
    assert listed.status_code == 200
    assert api.account.public_id in {a["id"] for a in listed.json()["items"]}
