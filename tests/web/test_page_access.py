"""Who may open which page: each console page asks for its API's permission, merchant users stay
out of the console, customers and merchants have their own pages, and nobody lands on a 404."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from beyondbank.core.authz import Role
from beyondbank.core.settings import Settings
from beyondbank.core.uow import UnitOfWork
from beyondbank.demo.sso import issue_demo_sso_token
from tests import factories as f
from tests.web.conftest import World
from tests.web.pages import csrf_from, sign_in

STAFF = (Role.BANK_ADMIN, Role.RELATIONSHIP_MANAGER, Role.AUDITOR, Role.ANALYST)
ADMIN, RM, AUDITOR, ANALYST = STAFF
DECIDERS = {ADMIN, RM}
APPLICATION_READERS = {ADMIN, RM, AUDITOR}

# (page, the staff roles that may open it); every other role is refused.
CONSOLE_PAGES: list[tuple[str, set[Role]]] = [
    ("/console", set(STAFF)),
    ("/console/circles", set(STAFF)),
    ("/console/circles/{circle}", set(STAFF)),
    ("/console/circles/new", {ADMIN}),
    ("/console/merchants", set(STAFF)),
    ("/console/merchants/{holder}", set(STAFF)),
    ("/console/merchants/{holder}/interactions/new", DECIDERS),
    ("/console/applications", APPLICATION_READERS),
    ("/console/applications/waitlists", APPLICATION_READERS),
    ("/console/applications/offers", DECIDERS),
    ("/console/applications/{application}", APPLICATION_READERS),
    ("/console/benefits", set(STAFF)),
    ("/console/benefits/{benefit}", set(STAFF)),
    ("/console/relationships", APPLICATION_READERS),
    ("/console/settlement", APPLICATION_READERS),  # settlement:read
    ("/console/users", {ADMIN}),  # users:manage
    ("/console/audit", {ADMIN, AUDITOR}),
    ("/console/audits", APPLICATION_READERS),  # visits:read
    ("/console/audits/new", {ADMIN, AUDITOR}),  # visits:record
    ("/console/audits/{visit}", APPLICATION_READERS),
]


def _path(template: str, world: World) -> str:
    return template.format(
        circle=world.circle.public_id,
        holder=world.holder.public_id,
        application=world.application.public_id,
        benefit=world.benefit.public_id,
        visit=world.visit.public_id,
    )


def _user(world: World, role: Role):  # type: ignore[no-untyped-def]
    return {
        ADMIN: world.admin,
        RM: world.rm,
        AUDITOR: world.auditor,
        ANALYST: world.analyst,
        Role.MERCHANT_ADMIN: world.owner,
        Role.MERCHANT_STAFF: world.counter,
    }[role]


@pytest.mark.parametrize("role", STAFF, ids=lambda r: r.value)
def test_each_staff_role_opens_exactly_its_console_pages(
    client: TestClient, world: World, role: Role
) -> None:
    sign_in(client, _user(world, role))
    for template, allowed in CONSOLE_PAGES:
        response = client.get(_path(template, world), follow_redirects=False)
        expected = 200 if role in allowed else 403
        assert response.status_code == expected, (template, role, response.text[:500])
        assert "text/html" in response.headers["content-type"]
    # The staff land on the console and never on a page that does not exist.
    landing = client.get("/", follow_redirects=False)
    assert landing.headers["location"] == "/console"
    assert client.get("/merchant").status_code == 403
    assert client.get("/app").status_code == 403


@pytest.mark.parametrize("role", [Role.MERCHANT_ADMIN, Role.MERCHANT_STAFF], ids=lambda r: r.value)
def test_merchant_users_cannot_open_console_pages(
    client: TestClient, world: World, role: Role
) -> None:
    sign_in(client, _user(world, role))
    for template, _allowed in CONSOLE_PAGES:
        response = client.get(_path(template, world), follow_redirects=False)
        assert response.status_code == 403, template
        assert "for the bank&#39;s staff" in response.text
    # ... nor post to its forms.
    page = client.get("/merchant")
    assert page.status_code == 200
    refused = client.post(
        f"/console/applications/{world.application.public_id}/approve",
        data={"reason": "sneaky", "csrf_token": csrf_from(page.text)},
    )
    assert refused.status_code == 403
    landing = client.get("/", follow_redirects=False)
    assert landing.headers["location"] == "/merchant"


def test_anonymous_visitors_are_sent_to_sign_in(client: TestClient, world: World) -> None:
    for template, _allowed in [*CONSOLE_PAGES, ("/merchant", set())]:
        response = client.get(_path(template, world), follow_redirects=False)
        assert response.status_code == 303, template
        assert response.headers["location"].startswith("/login?next=")
    app = client.get("/app")
    assert app.status_code == 401
    assert "bank&#39;s app" in app.text


def test_customers_have_their_app_and_nothing_else(
    client: TestClient, world: World, uow: UnitOfWork, settings: Settings
) -> None:
    customer = f.make_customer(uow, bank_ref="CUST-ACCESS")
    f.make_member(uow, customer)
    token = issue_demo_sso_token(settings, customer_ref="CUST-ACCESS", now=uow.clock.now())
    assert client.get(f"/sso?token={token}", follow_redirects=False).status_code == 303
    assert client.get("/app").status_code == 200
    assert client.get("/", follow_redirects=False).headers["location"] == "/app"
    for template, _allowed in CONSOLE_PAGES:
        assert client.get(_path(template, world)).status_code == 403, template
    assert client.get("/merchant").status_code == 403


def test_navigation_offers_only_what_the_role_may_open(client: TestClient, world: World) -> None:
    sign_in(client, world.analyst)
    page = client.get("/console").text
    for allowed in ("/console/circles", "/console/merchants", "/console/benefits"):
        assert f'href="{allowed}"' in page
    for refused in ("/console/applications", "/console/relationships", "/console/audit"):
        assert f'href="{refused}"' not in page


def test_console_pages_stay_within_the_content_security_policy(
    client: TestClient, world: World
) -> None:
    sign_in(client, world.admin)
    for template, _allowed in CONSOLE_PAGES:
        response = client.get(_path(template, world))
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
        # No inline scripts or styles, nothing from another host.
        assert "<script>" not in response.text
        assert " style=" not in response.text
        assert "http://" not in response.text.replace("http://testserver", "")
        assert "<style" not in response.text
