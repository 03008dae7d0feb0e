"""Relationship management: one current manager per merchant with history, the interaction log,
and each manager's overdue follow-ups."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from beyondbank.alliance.models import Interaction, ManagerAssignment
from beyondbank.core.authz import Role
from beyondbank.core.clock import FixedClock
from beyondbank.core.models import AuditEvent
from beyondbank.core.settings import Settings
from beyondbank.core.uow import UnitOfWork
from beyondbank.identity.models import User
from tests import factories as f

API = "/api/v1"


def _visit(**over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "kind": "visit",
        "occurred_at": "2026-11-20T14:00:00+00:00",
        "notes": "Walked the owner through the voucher flow; staff trained at the till.",
        "next_action": "Send the first biweekly report",
        "next_action_on": "2026-11-21",
    }
    body.update(over)
    return body


def test_one_current_manager_with_history(
    client: TestClient, uow: UnitOfWork, settings: Settings, admin_user: User, clock: FixedClock
) -> None:
    merchant = f.make_merchant(uow)
    first, second = (f.make_user(uow, Role.RELATIONSHIP_MANAGER) for _ in range(2))
    headers = f.auth(settings, uow, admin_user)
    url = f"{API}/merchants/{merchant.public_id}/manager"
    assigned = client.put(url, json={"manager_id": first.public_id}, headers=headers)
    assert assigned.status_code == 200, assigned.text
    assert assigned.json()["manager"]["id"] == first.public_id
    same = client.put(url, json={"manager_id": first.public_id}, headers=headers)
    assert same.json()["assigned_at"] == assigned.json()["assigned_at"]
    clock.advance(timedelta(days=30))
    headers = f.auth(settings, uow, admin_user)  # a fresh token, a month later
    client.put(url, json={"manager_id": second.public_id}, headers=headers)
    history = client.get(f"{API}/merchants/{merchant.public_id}/managers", headers=headers).json()
    assert [(h["manager"]["id"], h["ended_at"] is None) for h in history] == [
        (second.public_id, True),
        (first.public_id, False),
    ]
    detail = client.get(f"{API}/merchants/{merchant.public_id}", headers=headers).json()
    assert detail["manager"] == {"id": second.public_id, "name": second.name}
    assert client.delete(url, headers=headers).status_code == 204
    assert client.delete(url, headers=headers).status_code == 409
    current = uow.session.scalars(
        select(ManagerAssignment).where(ManagerAssignment.ended_at.is_(None))
    ).all()
    assert current == []
    actions = uow.session.scalars(
        select(AuditEvent.action)
        .where(AuditEvent.object_id == merchant.public_id)
        .order_by(AuditEvent.id)
    ).all()
    assert actions == [
        "merchant.manager_assigned",
        "merchant.manager_assigned",
        "merchant.manager_unassigned",
    ]


@pytest.mark.parametrize("who", ["analyst", "inactive_rm", "nobody"])
def test_only_an_active_relationship_manager_can_be_assigned(
    client: TestClient, uow: UnitOfWork, settings: Settings, admin_user: User, who: str
) -> None:
    candidate = {
        "analyst": lambda: f.make_user(uow, Role.ANALYST).public_id,
        "inactive_rm": lambda: f.make_user(uow, Role.RELATIONSHIP_MANAGER, active=False).public_id,
        "nobody": lambda: "usr_nobody",
    }[who]()
    merchant = f.make_merchant(uow)
    response = client.put(
        f"{API}/merchants/{merchant.public_id}/manager",
        json={"manager_id": candidate},
        headers=f.auth(settings, uow, admin_user),
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "body.manager_id"
    assert uow.session.scalars(select(ManagerAssignment)).all() == []


def test_interaction_log(
    client: TestClient, uow: UnitOfWork, settings: Settings, rm_user: User
) -> None:
    merchant = f.make_merchant(uow)
    headers = f.auth(settings, uow, rm_user)
    url = f"{API}/merchants/{merchant.public_id}/interactions"
    logged = client.post(url, json=_visit(), headers=headers)
    assert logged.status_code == 201, logged.text
    body = logged.json()
    assert body["manager"]["id"] == rm_user.public_id
    assert body["overdue"] is True  # due yesterday, by the bank's calendar
    client.post(
        url,
        json=_visit(
            kind="training_salon",
            occurred_at="2026-11-21T18:00:00Z",
            next_action=None,
            next_action_on=None,
        ),
        headers=headers,
    )
    listed = client.get(url, headers=headers).json()["items"]
    assert [i["kind"] for i in listed] == ["training_salon", "visit"]  # newest first

    # The log holds the bank's internal notes: the merchant sees its manager, not the notes.
    own_admin = f.auth(settings, uow, f.make_user(uow, Role.MERCHANT_ADMIN, merchant))
    assert client.get(url, headers=own_admin).status_code == 403
    assert client.post(url, json=_visit(), headers=own_admin).status_code == 403
    auditor = f.auth(settings, uow, f.make_user(uow, Role.AUDITOR))
    assert len(client.get(url, headers=auditor).json()["items"]) == 2
    analyst = f.auth(settings, uow, f.make_user(uow, Role.ANALYST))
    assert client.get(url, headers=analyst).status_code == 403


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (
            _visit(occurred_at="2026-11-23T09:00:00Z", next_action_on="2026-11-24"),
            "body.occurred_at",
        ),
        (_visit(occurred_at="2026-11-20T14:00:00"), "body.occurred_at"),  # no time zone
        (_visit(next_action=None), "body.next_action_on"),
        (_visit(next_action_on=None), "body.next_action_on"),
        # The date left out altogether, not sent as null: the check must still run.
        ({k: v for k, v in _visit().items() if k != "next_action_on"}, "body.next_action_on"),
        (_visit(next_action_on="2026-11-19"), "body.next_action_on"),
        (_visit(kind="lunch"), "body.kind"),
        (_visit(notes=""), "body.notes"),
    ],
)
def test_bad_interaction_is_a_422_and_writes_nothing(
    client: TestClient,
    uow: UnitOfWork,
    settings: Settings,
    rm_user: User,
    body: dict[str, Any],
    field: str,
) -> None:
    merchant = f.make_merchant(uow)
    response = client.post(
        f"{API}/merchants/{merchant.public_id}/interactions",
        json=body,
        headers=f.auth(settings, uow, rm_user),
    )
    assert response.status_code == 422, response.text
    assert field in [e["field"] for e in response.json()["errors"]]
    assert uow.session.scalars(select(Interaction)).all() == []


def test_overdue_follow_ups_per_manager(
    client: TestClient, uow: UnitOfWork, settings: Settings, admin_user: User, rm_user: User
) -> None:
    colleague = f.make_user(uow, Role.RELATIONSHIP_MANAGER)
    merchant = f.make_merchant(uow)
    url = f"{API}/merchants/{merchant.public_id}/interactions"
    mine = f.auth(settings, uow, rm_user)
    theirs = f.auth(settings, uow, colleague)
    overdue = client.post(url, json=_visit(), headers=mine).json()
    due_today = client.post(
        url, json=_visit(kind="call", next_action_on="2026-11-22"), headers=mine
    ).json()
    colleagues = client.post(url, json=_visit(kind="meeting"), headers=theirs).json()

    def ids(headers: dict[str, str], query: str = "overdue=true") -> list[str]:
        response = client.get(f"{API}/relationship/follow-ups?{query}", headers=headers)
        assert response.status_code == 200, response.text
        return [i["id"] for i in response.json()["items"]]

    assert ids(mine) == [overdue["id"]]
    assert ids(mine, "overdue=false") == [overdue["id"], due_today["id"]]
    admin = f.auth(settings, uow, admin_user)
    assert ids(admin) == [overdue["id"], colleagues["id"]]
    assert ids(admin, f"overdue=true&manager={colleague.public_id}") == [colleagues["id"]]
    peek = client.get(f"{API}/relationship/follow-ups?manager={colleague.public_id}", headers=mine)
    assert peek.status_code == 403

    done = client.post(f"{API}/interactions/{overdue['id']}/follow-up-done", headers=mine)
    assert done.status_code == 200, done.text
    assert done.json()["overdue"] is False
    assert ids(mine) == []
    assert (
        client.post(f"{API}/interactions/{overdue['id']}/follow-up-done", headers=mine).status_code
        == 409
    )
    salon = client.post(
        url, json=_visit(kind="training_salon", next_action=None, next_action_on=None), headers=mine
    ).json()
    assert (
        client.post(f"{API}/interactions/{salon['id']}/follow-up-done", headers=mine).status_code
        == 409
    )
