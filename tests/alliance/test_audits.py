"""Mystery-shopper audit visits: the outcome rule, recording (all field errors at once, nothing
written on refusal), who sees what (another merchant's visit is a 404, the auditor stays
anonymous to the merchant), corrective actions closed by the merchant's manager only and once."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta
from threading import Barrier
from types import SimpleNamespace
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select

from beyondbank.alliance import audits, relationships
from beyondbank.alliance.audits import Finding
from beyondbank.alliance.models import (
    AuditItem,
    AuditVisit,
    CorrectiveAction,
    CorrectiveActionStatus,
    Merchant,
    MerchantStatus,
    VisitOutcome,
)
from beyondbank.alliance.schemas import AuditVisitIn
from beyondbank.core.authz import Role
from beyondbank.core.clock import FixedClock
from beyondbank.core.errors import Forbidden, InvalidTransition
from beyondbank.core.models import AuditEvent
from beyondbank.core.settings import Settings
from beyondbank.core.uow import UnitOfWork, make_session_factory
from beyondbank.identity.models import User
from tests import factories as f

API = "/api/v1"


def _item(public: int = 1200, alliance: int = 1000, honoured: bool = True) -> dict[str, Any]:
    return {
        "description": "Set lunch for one",
        "currency": "GBP",
        "public_price_minor": public,
        "alliance_price_minor": alliance,
        "benefit_honoured": honoured,
    }


def _visit(merchant: Merchant, **over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "merchant_id": merchant.public_id,
        "location_id": merchant.locations[0].public_id,
        "mode": "mystery_shopper",
        "visited_at": "2026-11-20T12:30:00+00:00",
        "staff_knew_programme": True,
        "card_accepted": True,
        "signage_displayed": True,
        "items": [_item()],
    }
    body.update(over)
    return body


def _where(merchant: Merchant) -> dict[str, str]:
    return {"merchant_id": merchant.public_id, "location_id": merchant.locations[0].public_id}


def _observed(staff: bool = True, card: bool = True, signage: bool = True) -> SimpleNamespace:
    return SimpleNamespace(
        staff_knew_programme=staff, card_accepted=card, signage_displayed=signage
    )


def _priced(public: int, alliance: int, honoured: bool = True) -> SimpleNamespace:
    return SimpleNamespace(
        public_price_minor=public, alliance_price_minor=alliance, benefit_honoured=honoured
    )


# -- the outcome rule ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("items", "observed", "findings", "outcome"),
    [
        ([_priced(1200, 1000)], _observed(), [], VisitOutcome.PASS),
        ([_priced(1200, 1199)], _observed(), [], VisitOutcome.PASS),
        # Equal to the public price is no benefit at all.
        ([_priced(1200, 1200)], _observed(), [Finding.PRICE_NOT_BELOW_PUBLIC], VisitOutcome.FAIL),
        ([_priced(1200, 1300)], _observed(), [Finding.PRICE_NOT_BELOW_PUBLIC], VisitOutcome.FAIL),
        (
            [_priced(1200, 1000, honoured=False)],
            _observed(),
            [Finding.BENEFIT_REFUSED],
            VisitOutcome.FAIL,
        ),
        (
            [_priced(1200, 1000)],
            _observed(staff=False),
            [Finding.STAFF_UNAWARE],
            VisitOutcome.FINDINGS,
        ),
        (
            [_priced(1200, 1000)],
            _observed(card=False),
            [Finding.CARD_REFUSED],
            VisitOutcome.FINDINGS,
        ),
        (
            [_priced(1200, 1000)],
            _observed(signage=False),
            [Finding.NO_SIGNAGE],
            VisitOutcome.FINDINGS,
        ),
        # One failing item among good ones, with a finding: the fail wins.
        (
            [_priced(500, 400), _priced(900, 950)],
            _observed(signage=False),
            [Finding.PRICE_NOT_BELOW_PUBLIC, Finding.NO_SIGNAGE],
            VisitOutcome.FAIL,
        ),
    ],
)
def test_the_outcome_follows_from_the_findings(
    items: list[Any], observed: Any, findings: list[Finding], outcome: VisitOutcome
) -> None:
    found = audits.findings_of(items, observed)
    assert found == findings
    assert audits.outcome_of(found) == outcome


# -- recording -------------------------------------------------------------------------------


@pytest.fixture
def auditor_user(uow: UnitOfWork) -> User:
    return f.make_user(uow, Role.AUDITOR, name="Grace Liu")


def _headers(settings: Settings, uow: UnitOfWork, user: User) -> dict[str, str]:
    return f.auth(settings, uow, user)


def test_a_failed_visit_opens_a_corrective_action_due_in_a_week(
    client: TestClient, uow: UnitOfWork, settings: Settings, auditor_user: User
) -> None:
    merchant = f.make_merchant(uow)
    body = _visit(
        merchant,
        items=[_item(), _item(public=800, alliance=800)],
        notes="Charged the public price for the dessert.",
        corrective_action="Brief the floor staff on the member price of desserts.",
    )
    response = client.post(
        f"{API}/audit-visits", json=body, headers=_headers(settings, uow, auditor_user)
    )
    assert response.status_code == 201, response.text
    visit = response.json()
    assert visit["outcome"] == "fail"
    assert [i["beats_public_price"] for i in visit["items"]] == [True, False]
    assert visit["auditor"]["name"] == "Grace Liu"
    assert visit["timezone"] == "Europe/London"
    action = visit["corrective_action"]
    assert action["status"] == "open"
    assert action["due_on"] == "2026-11-27"  # seven days after the visit, by default
    assert action["overdue"] is False
    actions = [
        e.action
        for e in uow.session.scalars(select(AuditEvent).order_by(AuditEvent.id))
        if e.object_type in ("audit_visit", "corrective_action")
    ]
    assert actions == ["audit_visit.recorded", "corrective_action.opened"]
    stored = uow.session.scalars(select(AuditItem).order_by(AuditItem.position)).all()
    assert [(i.position, i.alliance_price_minor) for i in stored] == [(1, 1000), (2, 800)]


def test_findings_give_a_month_unless_the_auditor_sets_a_date(
    uow: UnitOfWork, auditor_user: User
) -> None:
    merchant = f.make_merchant(uow)
    actor = f.principal(auditor_user)
    default = audits.record_visit(
        uow,
        actor,
        AuditVisitIn.model_validate(
            _visit(merchant, signage_displayed=False, corrective_action="Put up the sticker.")
        ),
    )
    assert default.outcome == VisitOutcome.FINDINGS
    assert default.corrective_action is not None
    assert default.corrective_action.due_on == date(2026, 12, 20)
    chosen = audits.record_visit(
        uow,
        actor,
        AuditVisitIn.model_validate(
            _visit(
                merchant,
                card_accepted=False,
                corrective_action="Enable the card at the second till.",
                corrective_action_due_on="2026-11-25",
            )
        ),
    )
    assert chosen.corrective_action is not None
    assert chosen.corrective_action.due_on == date(2026, 11, 25)


def test_a_visit_that_passes_opens_nothing(
    client: TestClient, uow: UnitOfWork, settings: Settings, auditor_user: User
) -> None:
    merchant = f.make_merchant(uow)
    headers = _headers(settings, uow, auditor_user)
    response = client.post(f"{API}/audit-visits", json=_visit(merchant), headers=headers)
    assert response.status_code == 201, response.text
    assert response.json()["outcome"] == "pass"
    assert response.json()["corrective_action"] is None
    refused = client.post(
        f"{API}/audit-visits",
        json=_visit(
            merchant, corrective_action="Nothing really", corrective_action_due_on="2026-12-01"
        ),
        headers=headers,
    )
    assert refused.status_code == 422
    assert {e["field"] for e in refused.json()["errors"]} == {
        "body.corrective_action",
        "body.corrective_action_due_on",
    }


def test_bad_input_names_every_field_and_writes_nothing(
    client: TestClient, uow: UnitOfWork, settings: Settings, auditor_user: User, clock: FixedClock
) -> None:
    merchant = f.make_merchant(uow)
    headers = _headers(settings, uow, auditor_user)
    future = (clock.now() + timedelta(days=1)).isoformat()
    body = _visit(
        merchant,
        visited_at=future,
        items=[_item(honoured=False)],
        corrective_action_due_on="2026-11-01",
    )
    response = client.post(f"{API}/audit-visits", json=body, headers=headers)
    assert response.status_code == 422
    assert {e["field"] for e in response.json()["errors"]} == {
        "body.visited_at",
        "body.corrective_action",
        "body.corrective_action_due_on",
    }
    for bad, field in [
        ({"items": []}, "body.items"),
        ({"items": [_item() | {"currency": "PTS"}]}, "body.items.0.currency"),
        ({"items": [_item(public=-1)]}, "body.items.0.public_price_minor"),
        ({"visited_at": "2026-11-20T12:30:00"}, "body.visited_at"),
        ({"location_id": f.make_merchant(uow).locations[0].public_id}, "body.location_id"),
        ({"merchant_id": "mer_nope"}, "body.merchant_id"),
        (_where(f.make_merchant(uow, status=MerchantStatus.APPLIED)), "body.merchant_id"),
    ]:
        refused = client.post(f"{API}/audit-visits", json=_visit(merchant, **bad), headers=headers)
        assert refused.status_code in (404, 422), (bad, refused.text)
        assert field in {e["field"] for e in refused.json()["errors"]}, (bad, refused.text)
    for table in (AuditVisit, AuditItem, CorrectiveAction):
        assert uow.session.scalar(select(func.count()).select_from(table)) == 0
    assert (
        uow.session.scalar(select(func.count()).where(AuditEvent.object_type == "audit_visit")) == 0
    )


# -- who sees what ---------------------------------------------------------------------------


def _record(uow: UnitOfWork, auditor: User, merchant: Merchant, **over: Any) -> AuditVisit:
    return audits.record_visit(
        uow, f.principal(auditor), AuditVisitIn.model_validate(_visit(merchant, **over))
    )


def test_a_merchant_sees_its_own_results_without_the_auditors_name(
    client: TestClient, uow: UnitOfWork, settings: Settings, auditor_user: User
) -> None:
    own, other = f.make_merchant(uow), f.make_merchant(uow, sub_industry="cinema")
    mine = _record(uow, auditor_user, own, card_accepted=False, corrective_action="Take the card.")
    theirs = _record(uow, auditor_user, other)
    staff = _headers(settings, uow, f.make_user(uow, Role.MERCHANT_STAFF, own))
    listed = client.get(f"{API}/audit-visits", headers=staff).json()["items"]
    assert [v["id"] for v in listed] == [mine.public_id]
    assert listed[0]["auditor"] is None
    assert listed[0]["notes"] is None
    assert listed[0]["corrective_action"]["description"] == "Take the card."
    for path in (
        f"/audit-visits/{theirs.public_id}",
        f"/audit-visits?merchant={other.public_id}",
    ):
        response = client.get(API + path, headers=staff)
        assert response.status_code == 404, path
        assert response.json()["type"] == "/problems/not-found"
    assert client.get(f"{API}/audit-visits/{mine.public_id}", headers=staff).status_code == 200
    actions = client.get(f"{API}/corrective-actions", headers=staff).json()["items"]
    assert [a["visit_id"] for a in actions] == [mine.public_id]
    admin = _headers(settings, uow, f.make_user(uow, Role.BANK_ADMIN))
    visit = client.get(f"{API}/audit-visits/{theirs.public_id}", headers=admin).json()
    assert visit["auditor"]["name"] == "Grace Liu"


def test_visits_filter_by_merchant_outcome_and_day(
    client: TestClient, uow: UnitOfWork, settings: Settings, auditor_user: User
) -> None:
    a, b = f.make_merchant(uow), f.make_merchant(uow, sub_industry="cinema")
    passed = _record(uow, auditor_user, a, visited_at="2026-11-02T10:00:00+00:00")
    failed = _record(
        uow, auditor_user, a, items=[_item(honoured=False)], corrective_action="Honour it."
    )
    elsewhere = _record(uow, auditor_user, b)
    headers = _headers(settings, uow, f.make_user(uow, Role.RELATIONSHIP_MANAGER))

    def ids(query: str) -> list[str]:
        response = client.get(f"{API}/audit-visits?{query}", headers=headers)
        assert response.status_code == 200, response.text
        return [v["id"] for v in response.json()["items"]]

    assert ids("") == [elsewhere.public_id, failed.public_id, passed.public_id]
    assert ids(f"merchant={a.public_id}") == [failed.public_id, passed.public_id]
    assert ids("outcome=fail") == [failed.public_id]
    assert ids("since=2026-11-10T00:00:00Z") == [elsewhere.public_id, failed.public_id]
    assert ids("until=2026-11-10T00:00:00Z") == [passed.public_id]
    assert ids(f"auditor={auditor_user.public_id}&limit=1") == [elsewhere.public_id]
    assert client.get(f"{API}/audit-visits?outcome=great", headers=headers).status_code == 422


# -- corrective actions ----------------------------------------------------------------------


def test_the_merchants_manager_closes_an_action_once(
    client: TestClient, uow: UnitOfWork, settings: Settings, auditor_user: User
) -> None:
    merchant = f.make_merchant(uow)
    manager, other_manager = (f.make_user(uow, Role.RELATIONSHIP_MANAGER) for _ in range(2))
    admin = f.make_user(uow, Role.BANK_ADMIN)
    relationships.assign_manager(uow, f.principal(admin), merchant, manager.public_id)
    visit = _record(
        uow, auditor_user, merchant, signage_displayed=False, corrective_action="Signs."
    )
    assert visit.corrective_action is not None
    url = f"{API}/corrective-actions/{visit.corrective_action.public_id}/close"
    body = {"resolution": "Window sticker and till card in place; photo on file."}
    for user in (other_manager, admin):
        refused = client.post(url, json=body, headers=_headers(settings, uow, user))
        assert refused.status_code == 403, refused.text
    assert (
        client.post(
            url, json={"resolution": ""}, headers=_headers(settings, uow, manager)
        ).status_code
        == 422
    )
    closed = client.post(url, json=body, headers=_headers(settings, uow, manager))
    assert closed.status_code == 200, closed.text
    assert closed.json()["status"] == "closed"
    assert closed.json()["closed_by"]["id"] == manager.public_id
    again = client.post(url, json=body, headers=_headers(settings, uow, manager))
    assert again.status_code == 409
    assert again.json()["type"] == "/problems/invalid-transition"
    assert again.json()["current_status"] == "closed"
    events = uow.session.scalars(
        select(AuditEvent).where(AuditEvent.action == "corrective_action.closed")
    ).all()
    assert [(e.actor_id, e.after["resolution"]) for e in events] == [
        (manager.public_id, body["resolution"])
    ]


def test_overdue_actions_are_the_open_ones_past_their_date(
    client: TestClient, uow: UnitOfWork, settings: Settings, auditor_user: User
) -> None:
    merchant = f.make_merchant(uow)
    late = _record(
        uow,
        auditor_user,
        merchant,
        visited_at="2026-11-02T10:00:00+00:00",
        staff_knew_programme=False,
        corrective_action="Train the staff.",
        corrective_action_due_on="2026-11-09",
    )
    _record(uow, auditor_user, merchant, card_accepted=False, corrective_action="Cards.")
    headers = _headers(settings, uow, f.make_user(uow, Role.BANK_ADMIN))
    overdue = client.get(f"{API}/corrective-actions?overdue=true", headers=headers).json()["items"]
    assert [(a["visit_id"], a["overdue"]) for a in overdue] == [(late.public_id, True)]
    assert (
        len(client.get(f"{API}/corrective-actions?status=open", headers=headers).json()["items"])
        == 2
    )
    assert (
        client.get(f"{API}/corrective-actions?status=closed", headers=headers).json()["items"] == []
    )


@pytest.mark.postgres
def test_two_closing_one_action_at_once_close_it_once(
    committing_engine: Engine, clock: FixedClock
) -> None:
    """The same manager in two tabs: the conditional update lets exactly one close through."""
    factory = make_session_factory(committing_engine)
    with UnitOfWork(factory, clock) as uow:
        merchant = f.make_merchant(uow)
        manager = f.make_user(uow, Role.RELATIONSHIP_MANAGER)
        admin = f.make_user(uow, Role.BANK_ADMIN)
        relationships.assign_manager(uow, f.principal(admin), merchant, manager.public_id)
        visit = _record(
            uow,
            f.make_user(uow, Role.AUDITOR),
            merchant,
            card_accepted=False,
            corrective_action="x",
        )
        assert visit.corrective_action is not None
        action_id = visit.corrective_action.public_id
        uow.commit()
    barrier = Barrier(4)

    def close(i: int) -> str:
        with UnitOfWork(factory, clock) as own:
            actor = f.principal(own.session.get_one(User, manager.id))
            action = audits.get_action(own, actor, action_id)
            barrier.wait(timeout=30)
            try:
                audits.close_action(own, actor, action, f"Done, says tab {i}")
            except InvalidTransition:
                return "refused"
            except Forbidden:
                return "forbidden"
            return "closed"

    with ThreadPoolExecutor(max_workers=4) as pool:
        outcomes = sorted(pool.map(close, range(4)))
    assert outcomes == ["closed", "refused", "refused", "refused"]
    with UnitOfWork(factory, clock) as uow:
        action = uow.session.scalars(select(CorrectiveAction)).one()
        assert action.status == CorrectiveActionStatus.CLOSED
        assert (
            uow.session.scalar(
                select(func.count()).where(AuditEvent.action == "corrective_action.closed")
            )
            == 1
        )
