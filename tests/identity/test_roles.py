"""Changing a user's role: another role of the same kind only, never one's own, always audited."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select

from beyondbank.core.authz import Role
from beyondbank.core.models import AuditEvent
from beyondbank.core.settings import Settings
from beyondbank.core.uow import UnitOfWork
from beyondbank.identity.models import User
from tests import factories as f

API = "/api/v1"


def test_a_bank_admin_moves_an_analyst_to_relationship_manager(
    client: TestClient, uow: UnitOfWork, settings: Settings
) -> None:
    admin = f.make_user(uow, Role.BANK_ADMIN)
    analyst = f.make_user(uow, Role.ANALYST)
    response = client.patch(
        f"{API}/users/{analyst.public_id}",
        json={"role": "relationship_manager"},
        headers=f.auth(settings, uow, admin),
    )
    assert response.status_code == 200, response.text
    assert response.json()["role"] == "relationship_manager"
    uow.session.expire_all()
    assert uow.session.get_one(User, analyst.id).role == Role.RELATIONSHIP_MANAGER
    event = uow.session.scalars(
        select(AuditEvent).where(AuditEvent.object_id == analyst.public_id)
    ).one()
    assert event.action == "user.updated"
    assert (event.before or {}).get("role") == "analyst"
    assert (event.after or {}).get("role") == "relationship_manager"


def test_a_role_of_another_kind_is_refused_and_nothing_changes(
    client: TestClient, uow: UnitOfWork, settings: Settings
) -> None:
    admin = f.make_user(uow, Role.BANK_ADMIN)
    merchant = f.make_merchant(uow)
    till = f.make_user(uow, Role.MERCHANT_STAFF, merchant)
    analyst = f.make_user(uow, Role.ANALYST)
    headers = f.auth(settings, uow, admin)
    for user, role in ((till, "bank_admin"), (analyst, "merchant_admin")):
        response = client.patch(
            f"{API}/users/{user.public_id}", json={"role": role}, headers=headers
        )
        assert response.status_code == 422, response.text
        assert response.json()["errors"][0]["field"] == "body.role"
    uow.session.expire_all()
    assert uow.session.get_one(User, till.id).role == Role.MERCHANT_STAFF
    assert uow.session.get_one(User, analyst.id).role == Role.ANALYST


def test_nobody_changes_their_own_role(
    client: TestClient, uow: UnitOfWork, settings: Settings
) -> None:
    admin = f.make_user(uow, Role.BANK_ADMIN)
    response = client.patch(
        f"{API}/users/{admin.public_id}",
        json={"role": "analyst"},
        headers=f.auth(settings, uow, admin),
    )
    assert response.status_code == 409
    assert response.json()["detail"] == "You cannot change your own role."


def test_a_merchant_admin_promotes_its_own_staff_only(
    client: TestClient, uow: UnitOfWork, settings: Settings
) -> None:
    mine, theirs = f.make_merchant(uow), f.make_merchant(uow, sub_industry="cinema")
    admin = f.make_user(uow, Role.MERCHANT_ADMIN, mine)
    colleague = f.make_user(uow, Role.MERCHANT_STAFF, mine)
    stranger = f.make_user(uow, Role.MERCHANT_STAFF, theirs)
    headers = f.auth(settings, uow, admin)
    promoted = client.patch(
        f"{API}/users/{colleague.public_id}", json={"role": "merchant_admin"}, headers=headers
    )
    assert promoted.status_code == 200
    elsewhere = client.patch(
        f"{API}/users/{stranger.public_id}", json={"role": "merchant_admin"}, headers=headers
    )
    assert elsewhere.status_code == 404
    uow.session.expire_all()
    assert uow.session.get_one(User, stranger.id).role == Role.MERCHANT_STAFF
