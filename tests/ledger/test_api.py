"""The ledger through the API: accounts, journal entries, corrections, holds, balances and
statements; idempotency by key; and bad input refused with a clear error, writing nothing."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from beyondbank.core.authz import Role
from beyondbank.core.clock import FixedClock
from beyondbank.core.models import AuditEvent
from beyondbank.core.settings import Settings
from beyondbank.core.uow import UnitOfWork
from beyondbank.ledger import chart
from beyondbank.ledger import service as ledger
from beyondbank.ledger.models import Account, AccountType, LedgerTransaction
from tests import factories as f
from tests.ledger.factories import account, pool, row_counts, transfer

API = "/api/v1"


class World:
    """Finance and an auditor; the bank's cash, a pool holding £100.00, a member's cashback."""

    def __init__(self, uow: UnitOfWork, settings: Settings) -> None:
        self.finance_user = f.make_user(uow, Role.BANK_ADMIN)
        self.finance = f.auth(settings, uow, self.finance_user)
        self.auditor = f.auth(settings, uow, f.make_user(uow, Role.AUDITOR))
        self.cash = account(uow, "cash")
        self.pool = pool(uow, "cmp_1")
        self.cashback = chart.member_cashback(uow, "mem_1", "GBP")
        ledger.post(uow, transfer(self.cash, self.pool, 10_000, key="fund"))

    def key(self, key: str) -> dict[str, str]:
        return {**self.finance, "Idempotency-Key": key}


@pytest.fixture
def world(uow: UnitOfWork, settings: Settings) -> World:
    return World(uow, settings)


def _leg(acc: Account | str, side: str, amount: Any, currency: str = "GBP") -> dict[str, Any]:
    ref = acc if isinstance(acc, str) else acc.public_id
    return {"account": ref, "side": side, "currency": currency, "amount": amount}


def _entry(debit: Account, credit: Account, amount: Any = "12.50", **over: Any) -> dict[str, Any]:
    return {"postings": [_leg(debit, "debit", amount), _leg(credit, "credit", amount)], **over}


def _ok(response: Any, status: int = 201) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    return body


def _problem(response: Any, status: int, slug: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["type"] == f"/problems/{slug}"
    return body


def _fields(body: dict[str, Any]) -> dict[str, str]:
    """Each field named, with its messages (joined when there are several)."""
    fields: dict[str, list[str]] = {}
    for error in body.get("errors", []):
        fields.setdefault(error["field"], []).append(error["message"])
    return {field: " | ".join(messages) for field, messages in fields.items()}


def _state(uow: UnitOfWork, *accounts: Account) -> tuple[Any, ...]:
    """Everything a refusal must leave alone: row counts and every account's totals."""
    totals = []
    for acc in accounts:
        uow.session.refresh(acc)
        totals.append(
            (acc.debits_posted, acc.credits_posted, acc.debits_pending, acc.credits_pending)
        )
    return (row_counts(uow), totals)


# -- accounts -----------------------------------------------------------------------------------


def test_finance_opens_an_account_once(client: TestClient, uow: UnitOfWork, world: World) -> None:
    body = {
        "owner_kind": "merchant",
        "owner_ref": "mer_01ABC",
        "purpose": "prepaid_budget",
        "type": "liability",
        "currency": "GBP",
        "name": "Prepaid budget of the Corner Cafe",
        "floor": "0",
    }
    opened = _ok(client.post(f"{API}/ledger/accounts", json=body, headers=world.finance))
    assert opened["id"].startswith("acc_")
    assert opened["code"] == "merchant:mer_01ABC:prepaid_budget:GBP"
    assert (opened["type"], opened["normal_side"], opened["status"]) == (
        "liability",
        "credit",
        "open",
    )
    assert (opened["floor_minor"], opened["floor"]) == (0, "0.00")
    assert opened["balance"] == {
        "at": None,
        "currency": "GBP",
        "posted_minor": 0,
        "pending_minor": 0,
        "available_minor": 0,
        "posted": "0.00",
        "pending": "0.00",
        "available": "0.00",
    }
    again = _ok(client.post(f"{API}/ledger/accounts", json=body, headers=world.finance), 200)
    assert again["id"] == opened["id"]
    event = uow.session.scalars(
        select(AuditEvent).where(AuditEvent.object_id == opened["id"])
    ).one()
    assert (event.action, event.actor_id) == ("ledger.account.opened", world.finance_user.public_id)
    clash = client.post(
        f"{API}/ledger/accounts", json={**body, "type": "asset"}, headers=world.finance
    )
    assert "exists as liability" in _problem(clash, 409, "conflict")["detail"]


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"currency": "XYZ"}, "body.currency", "unknown currency"),
        ({"floor": "5.00"}, "body.floor", "its floor is zero or below"),
        ({"floor": "-0.001"}, "body.floor", "more decimal places than GBP allows"),
        ({"floor": 0}, "body.floor", "not a JSON number"),
        ({"purpose": "a:b"}, "body.purpose", "String should match pattern"),
        ({"type": "equity"}, "body.type", "Input should be"),
    ],
)
def test_a_bad_account_is_refused_and_opens_nothing(
    client: TestClient,
    uow: UnitOfWork,
    world: World,
    change: dict[str, Any],
    field: str,
    message: str,
) -> None:
    body = {"owner_kind": "pool", "owner_ref": "cmp_2", "purpose": "pool", "type": "liability"}
    body |= {"currency": "GBP", "floor": "0", **change}
    before = row_counts(uow)
    problem = _problem(
        client.post(f"{API}/ledger/accounts", json=body, headers=world.finance),
        422,
        "invalid-input",
    )
    assert message in _fields(problem)[field]
    assert row_counts(uow) == before


def test_an_overdraft_and_a_points_account(client: TestClient, world: World) -> None:
    deposit = _ok(
        client.post(
            f"{API}/ledger/accounts",
            json={
                "owner_kind": "member",
                "owner_ref": "cus_1",
                "purpose": "deposit",
                "type": "liability",
                "currency": "GBP",
                "floor": "-500.00",
            },
            headers=world.finance,
        )
    )
    assert (deposit["floor_minor"], deposit["floor"]) == (-50_000, "-500.00")
    points = _ok(
        client.post(
            f"{API}/ledger/accounts",
            json={
                "owner_kind": "bank",
                "purpose": "points_pool",
                "type": "liability",
                "currency": "PTS",
            },
            headers=world.finance,
        )
    )
    assert (points["code"], points["floor"], points["balance"]["posted"]) == (
        "bank:-:points_pool:PTS",
        None,
        "0",
    )


def test_an_account_by_public_id_or_code_with_its_balance(
    client: TestClient, uow: UnitOfWork, world: World
) -> None:
    ledger.hold(uow, transfer(world.pool, world.cashback, 2_550))
    by_id = _ok(
        client.get(f"{API}/ledger/accounts/{world.pool.public_id}", headers=world.auditor), 200
    )
    by_code = _ok(
        client.get(f"{API}/ledger/accounts/{world.pool.code}", headers=world.auditor), 200
    )
    assert by_id == by_code
    assert by_id["balance"] | {"at": None} == {
        "at": None,
        "currency": "GBP",
        "posted_minor": 10_000,
        "pending_minor": 2_550,
        "available_minor": 7_450,
        "posted": "100.00",
        "pending": "25.50",
        "available": "74.50",
    }
    cash = _ok(
        client.get(f"{API}/ledger/accounts/{world.cash.public_id}", headers=world.auditor), 200
    )
    assert (cash["normal_side"], cash["balance"]["posted"]) == ("debit", "100.00")
    _problem(client.get(f"{API}/ledger/accounts/acc_NOPE", headers=world.auditor), 404, "not-found")


def test_accounts_are_listed_by_owner_and_currency_a_page_at_a_time(
    client: TestClient, uow: UnitOfWork, world: World
) -> None:
    for i in range(3):
        pool(uow, f"cmp_x{i}")
    pool(uow, "cmp_x0", currency="EUR")
    listed = _ok(
        client.get(f"{API}/ledger/accounts?owner_kind=pool&limit=3", headers=world.auditor), 200
    )
    assert len(listed["items"]) == 3
    rest = _ok(
        client.get(
            f"{API}/ledger/accounts?owner_kind=pool&limit=3&cursor={listed['next_cursor']}",
            headers=world.auditor,
        ),
        200,
    )
    assert (len(rest["items"]), rest["next_cursor"]) == (2, None)
    euros = _ok(client.get(f"{API}/ledger/accounts?currency=EUR", headers=world.auditor), 200)
    assert [a["code"] for a in euros["items"]] == ["pool:cmp_x0:pool:EUR"]
    mine = _ok(client.get(f"{API}/ledger/accounts?owner_ref=cmp_x0", headers=world.auditor), 200)
    assert len(mine["items"]) == 2


def test_closing_an_account(client: TestClient, uow: UnitOfWork, world: World) -> None:
    suspense = account(uow, "suspense", type=AccountType.LIABILITY)
    closed = _ok(
        client.post(f"{API}/ledger/accounts/{suspense.public_id}/close", headers=world.finance), 200
    )
    assert closed["status"] == "closed"
    assert closed["closed_at"] is not None
    again = client.post(f"{API}/ledger/accounts/{suspense.public_id}/close", headers=world.finance)
    assert _problem(again, 409, "invalid-transition")["current_status"] == "closed"
    busy = client.post(f"{API}/ledger/accounts/{world.pool.public_id}/close", headers=world.finance)
    assert "still holds 10000" in _problem(busy, 409, "conflict")["detail"]


# -- journal entries -------------------------------------------------------------------------------


def test_finance_posts_a_journal_entry(client: TestClient, uow: UnitOfWork, world: World) -> None:
    body = _entry(world.pool, world.cashback, "12.50", description="Goodwill for a late refund")
    posted = _ok(client.post(f"{API}/ledger/transactions", json=body, headers=world.key("je-1")))
    assert posted["id"].startswith("ltx_")
    assert (posted["kind"], posted["status"], posted["idempotency_key"]) == (
        "adjustment",
        "posted",
        "api:je-1",
    )
    assert posted["created_by"] == world.finance_user.public_id
    assert posted["postings"] == [
        {
            "account_id": world.pool.public_id,
            "account_code": world.pool.code,
            "side": "debit",
            "currency": "GBP",
            "amount_minor": 1250,
            "amount": "12.50",
            "pending": False,
        },
        {
            "account_id": world.cashback.public_id,
            "account_code": world.cashback.code,
            "side": "credit",
            "currency": "GBP",
            "amount_minor": 1250,
            "amount": "12.50",
            "pending": False,
        },
    ]
    fetched = _ok(
        client.get(f"{API}/ledger/transactions/{posted['id']}", headers=world.auditor), 200
    )
    assert fetched == posted
    event = uow.session.scalars(
        select(AuditEvent).where(AuditEvent.object_id == posted["id"])
    ).one()
    assert (event.action, event.actor_id) == (
        "ledger.transaction.posted",
        world.finance_user.public_id,
    )
    assert event.after is not None
    assert [p["amount"] for p in event.after["postings"]] == ["12.50", "12.50"]
    pool_now = _ok(
        client.get(f"{API}/ledger/accounts/{world.pool.public_id}", headers=world.auditor), 200
    )
    assert pool_now["balance"]["posted"] == "87.50"


def test_accounts_by_code_kinds_and_dimensions(client: TestClient, world: World) -> None:
    body = {
        "kind": "pool.draw",
        "description": "Campaign spend",
        "reference": "cmp_1/2026-11",
        "counterparty": "mer_01ABC",
        "member": "mem_1",
        "category": "marketing",
        "postings": [
            _leg(world.pool.code, "debit", "5"),
            _leg(world.cashback.code, "credit", "5.00"),
        ],
    }
    posted = _ok(client.post(f"{API}/ledger/transactions", json=body, headers=world.key("k-dims")))
    assert (posted["kind"], posted["counterparty"], posted["member"], posted["category"]) == (
        "pool.draw",
        "mer_01ABC",
        "mem_1",
        "marketing",
    )
    assert [p["amount_minor"] for p in posted["postings"]] == [500, 500]
    unknown_kind = client.post(
        f"{API}/ledger/transactions", json={**body, "kind": "gift"}, headers=world.key("k-kind")
    )
    assert "body.kind" in _fields(_problem(unknown_kind, 422, "invalid-input"))


def test_the_same_key_and_body_answers_the_original_and_writes_nothing(
    client: TestClient, uow: UnitOfWork, world: World
) -> None:
    body = _entry(world.pool, world.cashback, "3.00")
    first = client.post(f"{API}/ledger/transactions", json=body, headers=world.key("retry-me"))
    assert "Idempotent-Replayed" not in first.headers
    before = _state(uow, world.pool, world.cashback)
    again = client.post(f"{API}/ledger/transactions", json=body, headers=world.key("retry-me"))
    assert again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    # Naming the accounts by code instead is the same request.
    by_code = _entry(world.pool, world.cashback, "3.00")
    by_code["postings"][0]["account"] = world.pool.code
    third = client.post(f"{API}/ledger/transactions", json=by_code, headers=world.key("retry-me"))
    assert third.json()["id"] == first.json()["id"]
    assert _state(uow, world.pool, world.cashback) == before


@pytest.mark.parametrize(
    "change",
    [
        {"postings.0.amount": "3.01"},
        {"description": "another"},
        {"kind": "pool.draw"},
        {"effective_at": "2026-11-20T00:00:00Z"},
    ],
)
def test_the_same_key_with_another_body_is_refused_and_writes_nothing(
    client: TestClient, uow: UnitOfWork, world: World, change: dict[str, str]
) -> None:
    body = _entry(world.pool, world.cashback, "3.00")
    first = _ok(client.post(f"{API}/ledger/transactions", json=body, headers=world.key("once")))
    for name, value in change.items():
        if name == "postings.0.amount":
            body["postings"][0]["amount"] = body["postings"][1]["amount"] = value
        else:
            body[name] = value
    before = _state(uow, world.pool, world.cashback)
    refused = client.post(f"{API}/ledger/transactions", json=body, headers=world.key("once"))
    problem = _problem(refused, 422, "idempotency-key-reused")
    assert problem["transaction_id"] == first["id"]
    assert _state(uow, world.pool, world.cashback) == before


def test_one_key_is_one_request_across_endpoints(
    client: TestClient, uow: UnitOfWork, world: World
) -> None:
    """A key used for an entry is not reusable for a hold of the same postings, and API keys
    never meet the keys that internal postings use."""
    body = _entry(world.pool, world.cashback, "1.00")
    _ok(client.post(f"{API}/ledger/transactions", json=body, headers=world.key("shared")))
    before = row_counts(uow)
    held = client.post(f"{API}/ledger/holds", json=body, headers=world.key("shared"))
    _problem(held, 422, "idempotency-key-reused")
    assert row_counts(uow) == before
    # "fund" is the key of the pool's funding, posted internally: the API's "fund" is another.
    fresh = _ok(client.post(f"{API}/ledger/transactions", json=body, headers=world.key("fund")))
    assert fresh["idempotency_key"] == "api:fund"


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({}, "required"),
        ({"Idempotency-Key": "k" * 252}, "1 to 251 printable characters"),
        ({"Idempotency-Key": "tab\tkey"}, "1 to 251 printable characters"),
    ],
)
def test_a_money_moving_post_needs_a_usable_key(
    client: TestClient, uow: UnitOfWork, world: World, headers: dict[str, str], message: str
) -> None:
    before = row_counts(uow)
    for path, body in (
        ("/ledger/transactions", _entry(world.pool, world.cashback)),
        ("/ledger/holds", _entry(world.pool, world.cashback)),
        (f"/ledger/transactions/{_any_posted(uow)}/reverse", {"reason": "test"}),
    ):
        response = client.post(f"{API}{path}", json=body, headers={**world.finance, **headers})
        problem = _problem(response, 422, "invalid-input")
        assert message in _fields(problem)["header.Idempotency-Key"]
    assert row_counts(uow) == before


def _any_posted(uow: UnitOfWork) -> str:
    return uow.session.scalars(select(LedgerTransaction.public_id)).first() or ""


# -- bad input writes nothing -------------------------------------------------------------------------


BAD_ENTRIES: dict[str, tuple[Any, str, str]] = {
    # name: (how to spoil the postings, the field named, what it says)
    "unbalanced": (
        lambda w: [_leg(w.pool, "debit", "12.50"), _leg(w.cashback, "credit", "12.00")],
        "body.postings",
        "debits and credits in GBP differ by 0.50 GBP",
    ),
    "unknown currency": (
        lambda w: [_leg(w.pool, "debit", "1.00", "XYZ"), _leg(w.cashback, "credit", "1.00", "XYZ")],
        "body.postings.0.currency",
        "unknown currency",
    ),
    "a float": (
        lambda w: [_leg(w.pool, "debit", 12.5), _leg(w.cashback, "credit", 12.5)],
        "body.postings.0.amount",
        'give the amount as a string such as "12.50", not a JSON number',
    ),
    "an integer": (
        lambda w: [_leg(w.pool, "debit", 12), _leg(w.cashback, "credit", 12)],
        "body.postings.1.amount",
        "not a JSON number",
    ),
    "too many decimals": (
        lambda w: [_leg(w.pool, "debit", "12.505"), _leg(w.cashback, "credit", "12.505")],
        "body.postings.0.amount",
        "12.505 has more decimal places than GBP allows",
    ),
    "not a decimal": (
        lambda w: [_leg(w.pool, "debit", "12,50"), _leg(w.cashback, "credit", "1e3")],
        "body.postings.1.amount",
        "a positive decimal such as",
    ),
    "negative": (
        lambda w: [_leg(w.pool, "debit", "-1.00"), _leg(w.cashback, "credit", "-1.00")],
        "body.postings.0.amount",
        "a positive decimal such as",
    ),
    "zero": (
        lambda w: [_leg(w.pool, "debit", "0.00"), _leg(w.cashback, "credit", "0")],
        "body.postings.0.amount",
        "must be greater than zero",
    ),
    "one posting": (
        lambda w: [_leg(w.pool, "debit", "1.00")],
        "body.postings",
        "a transaction has at least two postings",
    ),
    "unknown account": (
        lambda w: [_leg("acc_NOPE", "debit", "1.00"), _leg(w.cashback, "credit", "1.00")],
        "body.postings.0.account",
        "no such account 'acc_NOPE'",
    ),
    "another currency than the account's": (
        lambda w: [_leg(w.pool, "debit", "1.00", "EUR"), _leg(w.cashback, "credit", "1.00", "EUR")],
        "body.postings.0.currency",
        "keeps GBP, not EUR",
    ),
    "a side that is neither": (
        lambda w: [_leg(w.pool, "dr", "1.00"), _leg(w.cashback, "credit", "1.00")],
        "body.postings.0.side",
        "Input should be 'debit' or 'credit'",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_ENTRIES))
@pytest.mark.parametrize("endpoint", ["/ledger/transactions", "/ledger/holds"])
def test_bad_input_is_refused_clearly_and_writes_nothing(
    client: TestClient, uow: UnitOfWork, world: World, case: str, endpoint: str
) -> None:
    spoil, field, message = BAD_ENTRIES[case]
    before = _state(uow, world.pool, world.cashback)
    response = client.post(
        f"{API}{endpoint}", json={"postings": spoil(world)}, headers=world.key(f"bad-{case}")
    )
    problem = _problem(response, 422, "invalid-input")
    assert message in _fields(problem).get(field, ""), problem
    assert _state(uow, world.pool, world.cashback) == before
    # The refusal did not use the key up: the good request with it goes through.
    good = client.post(
        f"{API}{endpoint}",
        json=_entry(world.pool, world.cashback),
        headers=world.key(f"bad-{case}"),
    )
    assert good.status_code == 201, good.text


def test_an_unbalanced_multi_currency_entry_names_each_currency(
    client: TestClient, uow: UnitOfWork, world: World
) -> None:
    eur_cash = account(uow, "cash", currency="EUR")
    eur_pool = pool(uow, "cmp_1", currency="EUR")
    body = {
        "postings": [
            _leg(world.cash, "debit", "10.00"),
            _leg(world.pool, "credit", "9.00"),
            _leg(eur_cash, "debit", "10.00", "EUR"),
            _leg(eur_pool, "credit", "11.00", "EUR"),
        ]
    }
    before = row_counts(uow)
    problem = _problem(
        client.post(f"{API}/ledger/transactions", json=body, headers=world.key("fx")),
        422,
        "invalid-input",
    )
    assert [e["message"] for e in problem["errors"]] == [
        "debits and credits in EUR differ by 1.00 EUR",
        "debits and credits in GBP differ by 1.00 GBP",
    ]
    assert row_counts(uow) == before


def test_posting_to_a_closed_account_is_refused_naming_it(
    client: TestClient, uow: UnitOfWork, world: World
) -> None:
    old = account(uow, "old_suspense", type=AccountType.LIABILITY)
    ledger.close_account(uow, old.id, actor=ledger.SYSTEM)
    before = _state(uow, world.pool, old)
    problem = _problem(
        client.post(
            f"{API}/ledger/transactions", json=_entry(world.pool, old), headers=world.key("closed")
        ),
        422,
        "invalid-input",
    )
    assert _fields(problem) == {"body.postings.1.account": f"account {old.public_id} is closed"}
    assert _state(uow, world.pool, old) == before


def test_going_below_a_floor_is_refused_and_writes_nothing(
    client: TestClient, uow: UnitOfWork, world: World
) -> None:
    before = _state(uow, world.pool, world.cashback)
    response = client.post(
        f"{API}/ledger/transactions",
        json=_entry(world.pool, world.cashback, "100.01"),
        headers=world.key("too-much"),
    )
    problem = _problem(response, 409, "insufficient-balance")
    assert problem["account_id"] == world.pool.public_id
    assert (problem["available_minor"], problem["floor_minor"]) == (10_000, 0)
    assert "100.00 GBP available above its floor of 0.00 GBP" in problem["detail"]
    assert _state(uow, world.pool, world.cashback) == before


def test_a_naive_time_is_refused(client: TestClient, uow: UnitOfWork, world: World) -> None:
    body = _entry(world.pool, world.cashback, effective_at="2026-11-20T10:00:00")
    problem = _problem(
        client.post(f"{API}/ledger/transactions", json=body, headers=world.key("naive")),
        422,
        "invalid-input",
    )
    assert "give a time zone" in _fields(problem)["body.effective_at"]
    balance = client.get(
        f"{API}/ledger/accounts/{world.pool.public_id}/balance?at=2026-11-20T10:00:00",
        headers=world.auditor,
    )
    assert "query.at" in _fields(_problem(balance, 422, "invalid-input"))


# -- corrections ----------------------------------------------------------------------------------


def test_a_reversal_in_full_and_in_parts(client: TestClient, uow: UnitOfWork, world: World) -> None:
    original = _ok(
        client.post(
            f"{API}/ledger/transactions",
            json=_entry(world.pool, world.cashback, "10.00", kind="pool.draw"),
            headers=world.key("draw"),
        )
    )
    path = f"{API}/ledger/transactions/{original['id']}/reverse"
    part = _ok(
        client.post(
            path, json={"reason": "Partial refund", "amount": "4.00"}, headers=world.key("r1")
        )
    )
    assert (part["kind"], part["corrects"], part["description"]) == (
        "pool.draw.reversal",
        original["id"],
        "Partial refund",
    )
    assert [(p["side"], p["amount"]) for p in part["postings"]] == [
        ("credit", "4.00"),
        ("debit", "4.00"),
    ]
    replay = client.post(
        path, json={"reason": "Partial refund", "amount": "4.00"}, headers=world.key("r1")
    )
    assert (replay.status_code, replay.json()["id"]) == (201, part["id"])
    other = client.post(
        path, json={"reason": "Another reason", "amount": "4.00"}, headers=world.key("r1")
    )
    _problem(other, 422, "idempotency-key-reused")
    before = row_counts(uow)
    too_much = client.post(path, json={"reason": "The rest"}, headers=world.key("r2"))
    assert "corrected by 400 of 1000" in _problem(too_much, 409, "conflict")["detail"]
    decimals = client.post(
        path, json={"reason": "The rest", "amount": "6.001"}, headers=world.key("r3")
    )
    assert "more decimal places" in _fields(_problem(decimals, 422, "invalid-input"))["body.amount"]
    beyond = client.post(
        path, json={"reason": "The rest", "amount": "10.01"}, headers=world.key("r4")
    )
    assert "within 1..1000" in _fields(_problem(beyond, 422, "invalid-input"))["body.amount"]
    assert row_counts(uow) == before
    _ok(client.post(path, json={"reason": "The rest", "amount": "6.00"}, headers=world.key("r5")))
    cashback = _ok(
        client.get(f"{API}/ledger/accounts/{world.cashback.public_id}", headers=world.auditor), 200
    )
    assert cashback["balance"]["posted"] == "0.00"
    actions = uow.session.scalars(
        select(AuditEvent.action).where(AuditEvent.action.like("ledger.transaction.%"))
    ).all()
    assert sorted(actions) == [
        "ledger.transaction.posted",
        "ledger.transaction.reversed",
        "ledger.transaction.reversed",
    ]


def test_a_manual_correction_names_what_it_corrects(
    client: TestClient, uow: UnitOfWork, world: World
) -> None:
    other = chart.member_cashback(uow, "mem_2", "GBP")
    original = _ok(
        client.post(
            f"{API}/ledger/transactions",
            json=_entry(world.pool, world.cashback, "10.00"),
            headers=world.key("wrong-member"),
        )
    )
    moved = _ok(
        client.post(
            f"{API}/ledger/transactions",
            json=_entry(world.cashback, other, "10.00", corrects=original["id"]),
            headers=world.key("right-member"),
        )
    )
    assert moved["corrects"] == original["id"]
    before = row_counts(uow)
    again = client.post(
        f"{API}/ledger/transactions",
        json=_entry(world.cashback, other, "0.01", corrects=original["id"]),
        headers=world.key("over"),
    )
    _problem(again, 409, "conflict")
    nothing = client.post(
        f"{API}/ledger/transactions",
        json=_entry(world.cashback, other, "0.01", corrects="ltx_NOPE"),
        headers=world.key("nothing"),
    )
    assert _fields(_problem(nothing, 422, "invalid-input")) == {
        "body.corrects": "no such transaction 'ltx_NOPE'"
    }
    assert row_counts(uow) == before


def test_only_posted_transactions_are_reversed(client: TestClient, world: World) -> None:
    held = _ok(
        client.post(
            f"{API}/ledger/holds", json=_entry(world.pool, world.cashback), headers=world.key("h")
        )
    )
    refused = client.post(
        f"{API}/ledger/transactions/{held['id']}/reverse",
        json={"reason": "Not posted"},
        headers=world.key("rh"),
    )
    assert _problem(refused, 409, "invalid-transition")["current_status"] == "pending"
    corrects_hold = client.post(
        f"{API}/ledger/transactions",
        json=_entry(world.cashback, world.pool, corrects=held["id"]),
        headers=world.key("ch"),
    )
    assert _problem(corrects_hold, 409, "invalid-transition")["current_status"] == "pending"
    missing = client.post(
        f"{API}/ledger/transactions/ltx_NOPE/reverse",
        json={"reason": "x" * 3},
        headers=world.key("m"),
    )
    _problem(missing, 404, "not-found")


# -- holds --------------------------------------------------------------------------------------------


def test_a_hold_captured_in_part_once(client: TestClient, uow: UnitOfWork, world: World) -> None:
    held = _ok(
        client.post(
            f"{API}/ledger/holds",
            json=_entry(world.pool, world.cashback, "30.00", kind="pool.draw"),
            headers=world.key("hold-1"),
        )
    )
    assert held["status"] == "pending"
    assert all(p["pending"] for p in held["postings"])
    pool_now = _ok(
        client.get(f"{API}/ledger/accounts/{world.pool.public_id}", headers=world.auditor), 200
    )
    assert (
        pool_now["balance"]["posted"],
        pool_now["balance"]["pending"],
        pool_now["balance"]["available"],
    ) == (
        "100.00",
        "30.00",
        "70.00",
    )
    path = f"{API}/ledger/holds/{held['id']}/capture"
    captured = _ok(client.post(path, json={"amount": "12.50"}, headers=world.key("cap-1")))
    assert (captured["status"], captured["resolves"], captured["kind"]) == (
        "posted",
        held["id"],
        "pool.draw",
    )
    assert [p["amount"] for p in captured["postings"]] == ["12.50", "12.50"]
    hold_now = _ok(
        client.get(f"{API}/ledger/transactions/{held['id']}", headers=world.auditor), 200
    )
    assert (hold_now["status"], hold_now["captured_by"]) == ("captured", captured["id"])
    replay = client.post(path, json={"amount": "12.50"}, headers=world.key("cap-1"))
    assert (replay.status_code, replay.headers["Idempotent-Replayed"], replay.json()["id"]) == (
        201,
        "true",
        captured["id"],
    )
    before = row_counts(uow)
    second = client.post(path, headers=world.key("cap-2"))
    problem = _problem(second, 409, "invalid-transition")
    assert problem["current_status"] == "captured"
    assert "is captured" in problem["detail"]
    void = client.post(f"{API}/ledger/holds/{held['id']}/void", headers=world.finance)
    assert _problem(void, 409, "invalid-transition")["current_status"] == "captured"
    assert row_counts(uow) == before
    pool_now = _ok(
        client.get(f"{API}/ledger/accounts/{world.pool.public_id}", headers=world.auditor), 200
    )
    assert (pool_now["balance"]["posted"], pool_now["balance"]["pending"]) == ("87.50", "0.00")
    actions = uow.session.scalars(
        select(AuditEvent.action).where(AuditEvent.action.like("ledger.hold.%"))
    ).all()
    assert sorted(actions) == ["ledger.hold.captured", "ledger.hold.created"]


def test_a_hold_captured_in_full_without_a_body(client: TestClient, world: World) -> None:
    held = _ok(
        client.post(
            f"{API}/ledger/holds", json=_entry(world.pool, world.cashback), headers=world.key("h")
        )
    )
    captured = _ok(client.post(f"{API}/ledger/holds/{held['id']}/capture", headers=world.key("c")))
    assert [p["amount"] for p in captured["postings"]] == ["12.50", "12.50"]


def test_holds_count_against_the_floor(client: TestClient, uow: UnitOfWork, world: World) -> None:
    _ok(
        client.post(
            f"{API}/ledger/holds",
            json=_entry(world.pool, world.cashback, "60.00"),
            headers=world.key("big-hold"),
        )
    )
    before = _state(uow, world.pool)
    for endpoint in ("/ledger/transactions", "/ledger/holds"):
        response = client.post(
            f"{API}{endpoint}",
            json=_entry(world.pool, world.cashback, "40.01"),
            headers=world.key(f"over-{endpoint}"),
        )
        assert _problem(response, 409, "insufficient-balance")["available_minor"] == 4_000
    assert _state(uow, world.pool) == before


def test_an_n_posting_hold_is_captured_only_in_full(
    client: TestClient, uow: UnitOfWork, world: World
) -> None:
    fees = account(uow, "fees", type=AccountType.REVENUE)
    body = {
        "postings": [
            _leg(world.pool, "debit", "10.00"),
            _leg(world.cashback, "credit", "9.00"),
            _leg(fees, "credit", "1.00"),
        ]
    }
    held = _ok(client.post(f"{API}/ledger/holds", json=body, headers=world.key("n")))
    part = client.post(
        f"{API}/ledger/holds/{held['id']}/capture", json={"amount": "5.00"}, headers=world.key("p")
    )
    assert "only a two-posting hold" in _fields(_problem(part, 422, "invalid-input"))["body.amount"]
    _ok(client.post(f"{API}/ledger/holds/{held['id']}/capture", headers=world.key("full")))


def test_a_void_releases_the_hold_once(client: TestClient, uow: UnitOfWork, world: World) -> None:
    held = _ok(
        client.post(
            f"{API}/ledger/holds",
            json=_entry(world.pool, world.cashback, "30.00"),
            headers=world.key("h"),
        )
    )
    path = f"{API}/ledger/holds/{held['id']}/void"
    voided = _ok(
        client.post(path, json={"reason": "Campaign cancelled"}, headers=world.finance), 200
    )
    assert voided["status"] == "voided"
    assert voided["resolved_at"] is not None
    again = _ok(client.post(path, headers=world.finance), 200)
    assert again == voided
    events = uow.session.scalars(
        select(AuditEvent).where(AuditEvent.action == "ledger.hold.voided")
    ).all()
    assert [(e.object_id, e.reason) for e in events] == [(held["id"], "Campaign cancelled")]
    late = client.post(f"{API}/ledger/holds/{held['id']}/capture", headers=world.key("late"))
    assert _problem(late, 409, "invalid-transition")["current_status"] == "voided"
    pool_now = _ok(
        client.get(f"{API}/ledger/accounts/{world.pool.public_id}", headers=world.auditor), 200
    )
    assert pool_now["balance"]["available"] == "100.00"


def test_a_posted_transaction_is_not_a_hold(client: TestClient, world: World) -> None:
    posted = _ok(
        client.post(
            f"{API}/ledger/transactions",
            json=_entry(world.pool, world.cashback),
            headers=world.key("p"),
        )
    )
    capture = client.post(f"{API}/ledger/holds/{posted['id']}/capture", headers=world.key("c"))
    assert _problem(capture, 409, "invalid-transition")["current_status"] == "posted"
    void = client.post(f"{API}/ledger/holds/{posted['id']}/void", headers=world.finance)
    assert _problem(void, 409, "invalid-transition")["current_status"] == "posted"
    _problem(
        client.post(f"{API}/ledger/holds/ltx_NOPE/void", headers=world.finance), 404, "not-found"
    )


# -- balances and statements --------------------------------------------------------------------


def test_the_balance_at_a_point_in_time(
    client: TestClient, clock: FixedClock, world: World
) -> None:
    t0 = clock.now()
    clock.advance(timedelta(minutes=30))  # tokens last an hour
    _ok(
        client.post(
            f"{API}/ledger/transactions",
            json=_entry(world.pool, world.cashback, "25.00"),
            headers=world.key("later"),
        )
    )
    path = f"{API}/ledger/accounts/{world.pool.public_id}/balance"
    then = _ok(client.get(path, params={"at": t0.isoformat()}, headers=world.auditor), 200)
    assert (then["at"], then["posted"], then["pending"]) == (
        "2026-11-22T10:00:00Z",
        "100.00",
        "0.00",
    )
    before = _ok(
        client.get(
            path, params={"at": (t0 - timedelta(seconds=1)).isoformat()}, headers=world.auditor
        ),
        200,
    )
    assert before["posted_minor"] == 0
    now = _ok(client.get(path, headers=world.auditor), 200)
    assert (now["at"], now["posted"]) == (None, "75.00")


def _statement_world(client: TestClient, clock: FixedClock, world: World) -> tuple[str, str]:
    start = clock.now() + timedelta(minutes=10)  # tokens last an hour
    clock.set(start)
    _ok(
        client.post(
            f"{API}/ledger/transactions",
            json=_entry(
                world.pool, world.cashback, "20.00", kind="pool.draw", description="=HYPERLINK(1)"
            ),
            headers=world.key("s1"),
        )
    )
    clock.advance(timedelta(minutes=10))
    _ok(
        client.post(
            f"{API}/ledger/transactions",
            json=_entry(
                world.cash, world.pool, "5.25", kind="pool.contribution", reference="top-up"
            ),
            headers=world.key("s2"),
        )
    )
    end = clock.now() + timedelta(minutes=10)
    return start.isoformat(), end.isoformat()


def test_a_statement_in_json(client: TestClient, clock: FixedClock, world: World) -> None:
    start, end = _statement_world(client, clock, world)
    statement = _ok(
        client.get(
            f"{API}/ledger/accounts/{world.pool.public_id}/statement",
            params={"from": start, "to": end},
            headers=world.auditor,
        ),
        200,
    )
    assert statement["account"]["id"] == world.pool.public_id
    assert (statement["from"], statement["currency"]) == ("2026-11-22T10:10:00Z", "GBP")
    assert (statement["opening"], statement["closing"]) == ("100.00", "85.25")
    assert (statement["total_debits"], statement["total_credits"]) == ("20.00", "5.25")
    assert [
        (line["kind"], line["debit"], line["credit"], line["balance"])
        for line in statement["lines"]
    ] == [("pool.draw", "20.00", "0.00", "80.00"), ("pool.contribution", "0.00", "5.25", "85.25")]
    assert statement["lines"][1]["reference"] == "top-up"
    # `to` defaults to now.
    clock.advance(timedelta(minutes=1))
    to_now = _ok(
        client.get(
            f"{API}/ledger/accounts/{world.pool.public_id}/statement",
            params={"from": start},
            headers=world.auditor,
        ),
        200,
    )
    assert to_now["closing"] == "85.25"


def test_a_statement_in_csv(client: TestClient, clock: FixedClock, world: World) -> None:
    start, end = _statement_world(client, clock, world)
    response = client.get(
        f"{API}/ledger/accounts/{world.pool.public_id}/statement",
        params={"from": start, "to": end},
        headers={**world.auditor, "Accept": "text/csv"},
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.headers["content-disposition"].startswith(
        f'attachment; filename="statement-{world.pool.public_id}-20261122T101000Z-'
    )
    rows = list(csv.reader(io.StringIO(response.text)))
    assert rows[0] == [
        "effective_at",
        "transaction_id",
        "kind",
        "description",
        "reference",
        "debit",
        "credit",
        "balance",
        "currency",
    ]
    assert [r[2:] for r in rows[1:]] == [
        ["opening", "Opening balance", "", "", "", "100.00", "GBP"],
        ["pool.draw", "'=HYPERLINK(1)", "", "20.00", "0.00", "80.00", "GBP"],
        ["pool.contribution", "", "top-up", "0.00", "5.25", "85.25", "GBP"],
        ["closing", "Closing balance", "", "20.00", "5.25", "85.25", "GBP"],
    ]


def test_a_statement_needs_a_period(client: TestClient, world: World) -> None:
    path = f"{API}/ledger/accounts/{world.pool.public_id}/statement"
    missing = client.get(path, headers=world.auditor)
    assert "query.from" in _fields(_problem(missing, 422, "invalid-input"))
    backwards = client.get(
        path,
        params={"from": "2026-11-22T00:00:00Z", "to": "2026-11-21T00:00:00Z"},
        headers=world.auditor,
    )
    assert _fields(_problem(backwards, 422, "invalid-input")) == {"query.to": "must be after from"}


# -- listing transactions -----------------------------------------------------------------------------


def test_transactions_are_listed_newest_first_with_filters(
    client: TestClient, uow: UnitOfWork, world: World
) -> None:
    for i, kind in enumerate(("pool.draw", "pool.draw", "adjustment")):
        _ok(
            client.post(
                f"{API}/ledger/transactions",
                json=_entry(
                    world.pool, world.cashback, "1.00", kind=kind, counterparty=f"mer_{i % 2}"
                ),
                headers=world.key(f"list-{i}"),
            )
        )
    _ok(
        client.post(
            f"{API}/ledger/holds",
            json=_entry(world.pool, world.cashback, "1.00"),
            headers=world.key("list-h"),
        )
    )

    def listed(**params: Any) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = _ok(
            client.get(f"{API}/ledger/transactions", params=params, headers=world.auditor), 200
        )["items"]
        return items

    everything = listed(account=world.cashback.public_id)
    assert [t["idempotency_key"] for t in everything] == [
        "api:list-h",
        "api:list-2",
        "api:list-1",
        "api:list-0",
    ]
    assert len(listed(account=world.pool.code)) == 5  # and the funding
    assert [t["idempotency_key"] for t in listed(kind="pool.draw")] == ["api:list-1", "api:list-0"]
    assert [t["idempotency_key"] for t in listed(status="pending")] == ["api:list-h"]
    assert [t["idempotency_key"] for t in listed(counterparty="mer_1")] == ["api:list-1"]
    page = _ok(client.get(f"{API}/ledger/transactions?limit=2", headers=world.auditor), 200)
    assert len(page["items"]) == 2
    assert page["next_cursor"]
    _problem(
        client.get(f"{API}/ledger/transactions?account=acc_NOPE", headers=world.auditor),
        404,
        "not-found",
    )
    _problem(
        client.get(f"{API}/ledger/transactions/ltx_NOPE", headers=world.auditor), 404, "not-found"
    )


def test_points_through_the_api(client: TestClient, uow: UnitOfWork, world: World) -> None:
    issued = chart.points_issued(uow)
    points = chart.member_points(uow, "mem_1")
    body = {
        "kind": "points",
        "postings": [
            _leg(issued, "debit", "1500", "PTS"),
            _leg(points, "credit", "1500", "PTS"),
        ],
    }
    posted = _ok(client.post(f"{API}/ledger/transactions", json=body, headers=world.key("pts")))
    assert [p["amount"] for p in posted["postings"]] == ["1500", "1500"]
    body["postings"][0]["amount"] = body["postings"][1]["amount"] = "1.5"
    refused = client.post(f"{API}/ledger/transactions", json=body, headers=world.key("pts-2"))
    assert (
        "more decimal places than PTS allows"
        in _fields(_problem(refused, 422, "invalid-input"))["body.postings.0.amount"]
    )
    member = _ok(
        client.get(f"{API}/ledger/accounts/{points.public_id}", headers=world.auditor), 200
    )
    assert (member["balance"]["posted"], member["floor"]) == ("1500", "0")
    count = uow.session.scalar(select(func.count()).select_from(LedgerTransaction))
    assert count == 2  # the pool's funding and the points
