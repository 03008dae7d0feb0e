"""Who may call each card-linked endpoint: every role and partner system against every endpoint.

Runs are the bank's (staff who read cards); rewards also to a merchant's admin (its own only);
the descriptor queue is decided by the programme's staff (bank admin, relationship manager)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import iso8583
import pytest
from fastapi.testclient import TestClient
from iso8583.specs import default_ascii

from beyondbank.alliance import service as alliance
from beyondbank.alliance.models import Merchant
from beyondbank.cards import frames
from beyondbank.cards.models import CardReward, CardRun, DescriptorReview, ReviewStatus, RunStatus
from beyondbank.core.authz import SYSTEM, Role
from beyondbank.core.ids import new_public_id, new_ulid
from beyondbank.core.settings import Settings
from beyondbank.core.uow import UnitOfWork
from tests import factories as f
from tests.cards import factories as cf
from tests.ledger.test_authorisation import _principals

API = "/api/v1"
AT = datetime(2026, 11, 16, 12, tzinfo=UTC)


@dataclass
class Scene:
    run: str
    merchant: str
    to_confirm: str
    to_reject: str
    programme: cf.Programme


def _review(uow: UnitOfWork) -> str:
    review = DescriptorReview(
        public_id=new_public_id("dsc"),
        descriptor_key=f"shop {new_ulid()}",
        mcc="5812",
        example="SQ *SOME SHOP",
        city="london",
        transactions=1,
        status=ReviewStatus.OPEN,
        first_seen_at=AT,
        last_seen_at=AT,
    )
    uow.session.add(review)
    uow.session.flush()
    return review.public_id


def _scene(uow: UnitOfWork) -> Scene:
    p = cf.programme(uow, AT)
    run = CardRun(
        public_id=new_public_id("run"),
        source="feed.csv",
        status=RunStatus.DONE,
        started_at=AT,
        details={},
    )
    uow.session.add(run)
    uow.session.flush()
    uow.session.add(
        CardReward(
            run_id=run.id,
            kind=frames.REWARD,
            txn_id=f"t-{new_ulid()}",
            txn_time=AT,
            member_id=p.member.id,
            merchant_id=p.merchant.id,
            currency="GBP",
            purchase_amount_minor=1_000,
            txn_amount_minor=1_000,
            benefit_id=p.benefit.id,
            amount_minor=200,
            merchant_funded_minor=120,
            bank_funded_minor=80,
            commission_minor=25,
            points=0,
        )
    )
    uow.session.flush()
    return Scene(run.public_id, p.merchant.public_id, _review(uow), _review(uow), p)


Call = Callable[[TestClient, Scene, dict[str, str]], Any]


def _get(path: Callable[[Scene], str]) -> Call:
    return lambda client, s, h: client.get(f"{API}{path(s)}", headers=h)


def _post(path: Callable[[Scene], str], body: Callable[[Scene], Any]) -> Call:
    return lambda client, s, h: client.post(f"{API}{path(s)}", json=body(s), headers=h)


ENDPOINTS: dict[str, Call] = {
    "GET /cards/runs": _get(lambda s: "/cards/runs"),
    "GET /cards/runs/{id}": _get(lambda s: f"/cards/runs/{s.run}"),
    "GET /cards/rewards": _get(lambda s: "/cards/rewards"),
    "GET /cards/reviews": _get(lambda s: "/cards/reviews"),
    "GET /cards/reviews/{id}": _get(lambda s: f"/cards/reviews/{s.to_confirm}"),
    "POST /cards/reviews/{id}/confirm": _post(
        lambda s: f"/cards/reviews/{s.to_confirm}/confirm", lambda s: {"merchant": s.merchant}
    ),
    "POST /cards/reviews/{id}/reject": _post(
        lambda s: f"/cards/reviews/{s.to_reject}/reject", lambda s: {"note": "a market stall"}
    ),
}


def _event(s: Scene) -> dict[str, Any]:
    return {**cf.feed_row(s.programme, f"rt-{new_ulid()}", AT, 1_000), "amount_minor": 1_000}


def _iso8583(client: TestClient, s: Scene, h: dict[str, str]) -> Any:
    p = s.programme
    message, _ = iso8583.encode(
        {
            "t": "0200",
            "2": p.token,
            "3": "000000",
            "4": "000000001000",
            "7": AT.strftime("%m%d%H%M%S"),
            "18": p.merchant.mcc,
            "37": new_ulid()[-12:],
            "41": p.terminal.terminal_id or "",
            "42": p.terminal.acquirer_merchant_id.ljust(15),
            "43": "HARBOUR NOODLE BAR     LONDON        GBR",
            "49": "826",
        },
        default_ascii,
    )
    headers = {**h, "Content-Type": "application/octet-stream"}
    return client.post(f"{API}/cards/iso8583", content=bytes(message), headers=headers)


ENDPOINTS["POST /cards/events"] = _post(lambda s: "/cards/events", _event)
ENDPOINTS["POST /cards/iso8583"] = _iso8583

EVENTS = {"POST /cards/events", "POST /cards/iso8583"}
RUNS = {"GET /cards/runs", "GET /cards/runs/{id}"}
STAFF_READ = RUNS | {"GET /cards/rewards"}

ALLOWED: dict[str, set[str]] = {
    "bank_admin": set(ENDPOINTS),
    "relationship_manager": set(ENDPOINTS) - EVENTS,
    "auditor": STAFF_READ,
    "analyst": set(),
    "merchant_admin": {"GET /cards/rewards"},
    "merchant_staff": set(),
    "partner_admin": set(),  # a partner's people hold the shop's permissions only
    "partner_staff": set(),
    "customer": set(),
    "bank_core_client": EVENTS,
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


def test_a_merchant_reads_only_its_own_rewards(
    client: TestClient, uow: UnitOfWork, settings: Settings
) -> None:
    scene = _scene(uow)
    _scene(uow)  # another merchant's reward
    own = f.make_user(uow, Role.MERCHANT_ADMIN, _merchant(uow, scene.merchant))
    response = client.get(f"{API}/cards/rewards", headers=f.auth(settings, uow, own))
    assert response.status_code == 200
    items = response.json()["items"]
    assert [i["merchant"] for i in items] == [scene.merchant]
    assert items[0]["amount_minor"] == 200
    assert items[0]["posted"] is False


def _merchant(uow: UnitOfWork, public_id: str) -> Merchant:
    return alliance.get_merchant(uow, SYSTEM, public_id)
