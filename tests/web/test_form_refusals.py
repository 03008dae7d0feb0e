"""Console forms refuse what they must, before anything is written: a post without the session's
CSRF token, and a role without the permission the matching API endpoint requires."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from beyondbank.alliance import service as alliance
from beyondbank.core.authz import Role
from beyondbank.core.models import AuditEvent
from beyondbank.core.uow import UnitOfWork
from tests.web.conftest import World
from tests.web.pages import csrf_from, sign_in

# (form action, fields, the roles allowed to post it)
FORMS: list[tuple[str, dict[str, str], set[Role]]] = [
    ("/console/circles", {"code": "x", "name": "X", "kind": "segment"}, {Role.BANK_ADMIN}),
    ("/console/circles/{circle}/requirements", {"slot_free": "true"}, {Role.BANK_ADMIN}),
    (
        "/console/merchants/{holder}/transitions",
        {"to": "suspended", "reason": "r"},
        {Role.BANK_ADMIN, Role.RELATIONSHIP_MANAGER},
    ),
    (
        "/console/merchants/{holder}/interactions",
        {"kind": "call", "occurred_at": "2026-11-22T09:00", "notes": "n"},
        {Role.BANK_ADMIN, Role.RELATIONSHIP_MANAGER},
    ),
    ("/console/merchants/{holder}/manager", {"manager_id": "usr_x"}, {Role.BANK_ADMIN}),
    (
        "/console/applications/{application}/approve",
        {"reason": "r"},
        {Role.BANK_ADMIN, Role.RELATIONSHIP_MANAGER},
    ),
    (
        "/console/applications/{application}/reject",
        {"reason": "r"},
        {Role.BANK_ADMIN, Role.RELATIONSHIP_MANAGER},
    ),
    ("/console/benefits/{benefit}/approve", {}, {Role.BANK_ADMIN}),
    ("/console/benefits/{benefit}/reject", {"reason": "nope"}, {Role.BANK_ADMIN}),
    ("/console/relationships/assign", {"merchant_id": "m", "manager_id": "u"}, {Role.BANK_ADMIN}),
]


def _action(template: str, world: World) -> str:
    return template.format(
        circle=world.circle.public_id,
        holder=world.holder.public_id,
        application=world.application.public_id,
        benefit=world.benefit.public_id,
    )


def _changes(uow: UnitOfWork) -> int:
    uow.session.expire_all()
    return len(uow.session.query(AuditEvent).all())


@pytest.mark.parametrize(
    "role", [Role.RELATIONSHIP_MANAGER, Role.AUDITOR, Role.ANALYST], ids=lambda r: r.value
)
def test_roles_without_the_permission_are_refused_and_nothing_changes(
    client: TestClient, world: World, uow: UnitOfWork, role: Role
) -> None:
    user = {
        Role.RELATIONSHIP_MANAGER: world.rm,
        Role.AUDITOR: world.auditor,
        Role.ANALYST: world.analyst,
    }[role]
    sign_in(client, user)
    token = csrf_from(client.get("/console").text)
    before = _changes(uow)
    for template, fields, allowed in FORMS:
        if role in allowed:
            continue
        response = client.post(_action(template, world), data={**fields, "csrf_token": token})
        assert response.status_code == 403, template
    assert _changes(uow) == before


def test_posts_without_the_sessions_csrf_token_are_refused(
    client: TestClient, world: World, uow: UnitOfWork
) -> None:
    sign_in(client, world.admin)
    before = _changes(uow)
    for template, fields, _allowed in FORMS:
        for token in ({}, {"csrf_token": "forged"}):
            response = client.post(_action(template, world), data={**fields, **token})
            assert response.status_code == 403, template
            assert "did not come from this site" in response.text
    assert _changes(uow) == before
    assert alliance.slot_holder(uow, world.circle.id, "bakery_cafe") is None
