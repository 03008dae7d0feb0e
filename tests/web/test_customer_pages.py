"""The customer's arrival from the bank's app (single sign-on) and their membership page; the demo
bank app that stands in for the bank's app; the merchant's home page."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from datetime import date, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Connection, Engine

from beyondbank.alliance import service as alliance
from beyondbank.alliance.membership import CONSENT_PURPOSE
from beyondbank.api import create_app
from beyondbank.benefits.models import BenefitStatus
from beyondbank.core.clock import FixedClock
from beyondbank.core.settings import Settings
from beyondbank.core.tokens import code_step, member_code
from beyondbank.core.uow import UnitOfWork
from beyondbank.demo.sso import issue_demo_sso_token
from beyondbank.web.customer import CONSENT_VERSION
from tests import factories as f
from tests.benefits import factories as bf
from tests.web.conftest import World
from tests.web.pages import csrf_from, field_error, sign_in, text_of


def _arrive(client: TestClient, settings: Settings, uow: UnitOfWork, bank_ref: str) -> str:
    token = issue_demo_sso_token(settings, customer_ref=bank_ref, now=uow.clock.now(), name="Mia")
    response = client.get(f"/sso?token={token}", follow_redirects=False)
    assert response.status_code == 303, response.text
    assert response.headers["location"] == "/app"
    return token


def test_a_valid_sign_on_token_opens_my_membership(
    client: TestClient, world: World, uow: UnitOfWork, settings: Settings
) -> None:
    customer = f.make_customer(uow, bank_ref="CUST-MIA")
    member = f.make_member(uow, customer, home=f.CANARY_WHARF)
    benefit = world.benefit
    benefit.status = BenefitStatus.ACTIVE
    uow.session.flush()
    _arrive(client, settings, uow, "CUST-MIA")
    page = client.get("/app")
    assert page.status_code == 200
    assert page.headers["cache-control"] == "no-store"
    text = text_of(page.text)
    assert f"Member number {member.member_number}" in text
    # The dynamic code as an SVG QR code, its digits and its expiry.
    code = member_code(
        settings.secret_key.get_secret_value(), member.member_number, code_step(uow.clock.now())
    )
    grouped = " ".join(code[i : i + 6] for i in range(0, len(code), 6))
    assert grouped in text
    qr = re.search(r'src="data:image/svg\+xml;base64,([^"]+)"', page.text)
    assert qr is not None
    assert base64.b64decode(qr.group(1)).decode().startswith("<svg")
    assert "Valid until 10:01:00" in text
    # My circles, and the benefits open to me.
    assert "My circles Canary Wharf (near home)" in text
    assert "20% off dinner 20% off, up to £10.00 Dockside Diner" in text
    assert "available now" in text
    assert "Mia" in text  # the name the bank's app sent


def test_a_replayed_sign_on_token_is_refused(
    client: TestClient, uow: UnitOfWork, settings: Settings
) -> None:
    f.make_member(uow, f.make_customer(uow, bank_ref="CUST-REPLAY"))
    token = _arrive(client, settings, uow, "CUST-REPLAY")
    client.cookies.clear()
    replay = client.get(f"/sso?token={token}", follow_redirects=False)
    assert replay.status_code == 401
    text = text_of(replay.text)
    assert "We could not sign you in This sign-on token was used already." in text
    assert "Go back to the bank's app" in text
    assert client.get("/app").status_code == 401  # and nobody is signed in


@pytest.mark.parametrize(
    ("token", "reason"),
    [("", "The link carries no sign-on token."), ("not-a-jwt", "The sign-on token is malformed.")],
)
def test_a_bad_sign_on_link_is_refused_in_words(
    client: TestClient, token: str, reason: str
) -> None:
    response = client.get(f"/sso?token={token}")
    assert response.status_code == 401
    assert reason in response.text


def test_an_expired_sign_on_token_is_refused(
    client: TestClient, uow: UnitOfWork, settings: Settings, clock: FixedClock
) -> None:
    token = issue_demo_sso_token(settings, customer_ref="CUST-LATE", now=clock.now())
    clock.advance(timedelta(minutes=10))
    response = client.get(f"/sso?token={token}")
    assert response.status_code == 401
    assert "The sign-on token has expired." in response.text


def test_a_customer_who_is_not_a_member_can_enrol_with_consent(
    client: TestClient, uow: UnitOfWork, settings: Settings
) -> None:
    _arrive(client, settings, uow, "CUST-NEW")
    page = client.get("/app")
    assert "Join the alliance" in page.text
    assert f"Version {CONSENT_VERSION}" in page.text
    unticked = client.post(
        "/app/enrol",
        data={"consent.text_version": CONSENT_VERSION, "csrf_token": csrf_from(page.text)},
    )
    assert unticked.status_code == 422
    assert field_error(unticked.text, "enrol-consent-accepted") == (
        "Tick the box to agree to the membership terms."
    )
    assert 'aria-describedby="enrol-consent-accepted-error" aria-invalid="true"' in unticked.text
    enrolled = client.post(
        "/app/enrol",
        data={
            "consent.text_version": CONSENT_VERSION,
            "consent.accepted": "true",
            "csrf_token": csrf_from(unticked.text),
        },
        follow_redirects=False,
    )
    assert enrolled.status_code == 303
    home = text_of(client.get("/app").text)
    assert "Welcome to the alliance. Your member number is" in home
    customer_id = f.principal(_customer(uow, "CUST-NEW")).customer_id
    assert customer_id is not None
    member = alliance.member_for_customer(uow, customer_id)
    assert member is not None
    assert f"Member number {member.member_number}" in home


def _customer(uow: UnitOfWork, bank_ref: str):  # type: ignore[no-untyped-def]
    from beyondbank.identity import service as identity

    return identity.customer_by_bank_ref(uow, bank_ref)


def test_consent_to_an_outdated_text_is_not_taken(
    client: TestClient, uow: UnitOfWork, settings: Settings
) -> None:
    _arrive(client, settings, uow, "CUST-OLD")
    page = client.get("/app")
    response = client.post(
        "/app/enrol",
        data={
            "consent.text_version": "alliance-membership-2020-01",
            "consent.accepted": "true",
            "csrf_token": csrf_from(page.text),
        },
    )
    assert response.status_code == 422
    assert "The terms have changed" in (field_error(response.text, "enrol-consent-accepted") or "")
    assert f'value="{CONSENT_VERSION}"' in response.text
    assert CONSENT_PURPOSE  # the consent purpose the service records


def test_the_page_script_fetches_a_fresh_code(
    client: TestClient, uow: UnitOfWork, settings: Settings, clock: FixedClock
) -> None:
    member = f.make_member(uow, f.make_customer(uow, bank_ref="CUST-CODE"))
    _arrive(client, settings, uow, "CUST-CODE")
    page = client.get("/app")
    assert '<script src="/static/member-code.js" defer></script>' in page.text
    assert 'data-refresh-after="30"' in page.text
    clock.advance(timedelta(seconds=31))
    fresh = client.get("/app/member-code")
    assert fresh.headers["cache-control"] == "no-store"
    body = fresh.json()
    assert body["code"].startswith(member.member_number)
    assert body["code"] == member_code(
        settings.secret_key.get_secret_value(), member.member_number, code_step(clock.now())
    )
    assert body["qr"].startswith("data:image/svg+xml;base64,")
    assert client.get("/static/member-code.js").status_code == 200


# -- the demo bank app ------------------------------------------------------------------------


@pytest.fixture
def demo_client(
    settings: Settings, engine: Engine, connection: Connection, clock: FixedClock
) -> Iterator[TestClient]:
    demo = settings.model_copy(update={"environment": "demo"})
    app = create_app(demo, engine=engine, session_bind=connection, clock=clock)
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


def test_the_demo_bank_app_is_not_found_outside_the_demo(
    client: TestClient, uow: UnitOfWork
) -> None:
    f.make_member(uow, f.make_customer(uow, bank_ref="CUST-DEMO"))
    assert client.get("/demo/bank-app").status_code == 404
    page = client.get("/login")
    opened = client.post(
        "/demo/bank-app/open",
        data={"customer_ref": "CUST-DEMO", "csrf_token": csrf_from(page.text)},
    )
    assert opened.status_code == 404


def test_the_demo_bank_app_signs_a_customer_in_with_a_fresh_token(
    demo_client: TestClient, uow: UnitOfWork
) -> None:
    customer = f.make_customer(uow, bank_ref="CUST-ANNA", name="Anna Demo")
    member = f.make_member(uow, customer)
    f.make_customer(uow, bank_ref="CUST-NOT-MEMBER", name="Not A Member")
    page = demo_client.get("/demo/bank-app")
    assert page.status_code == 200
    text = text_of(page.text)
    assert f"Anna Demo Member {member.member_number} Open beyondbank" in text
    assert "Not A Member" not in text
    opened = demo_client.post(
        "/demo/bank-app/open",
        data={"customer_ref": "CUST-ANNA", "csrf_token": csrf_from(page.text)},
        follow_redirects=False,
    )
    assert opened.status_code == 303
    assert opened.headers["location"].startswith("/sso?token=")
    home = demo_client.get(opened.headers["location"])  # follows on to /app
    assert home.url.path == "/app"
    assert f"Member number {member.member_number}" in text_of(home.text)
    # Only the bank's member customers can be opened, and never without the form's token.
    refused = demo_client.post(
        "/demo/bank-app/open",
        data={"customer_ref": "CUST-NOT-MEMBER", "csrf_token": csrf_from(home.text)},
    )
    assert refused.status_code == 404
    forged = demo_client.post("/demo/bank-app/open", data={"customer_ref": "CUST-ANNA"})
    assert forged.status_code == 403


# -- the merchant's home -----------------------------------------------------------------------


def test_the_merchant_home_shows_profile_benefits_redemptions_and_manager(
    client: TestClient, world: World, uow: UnitOfWork
) -> None:
    member = f.make_member(uow)
    live = bf.make_benefit(uow, world.holder, title="Free dessert", valid_to=date(2026, 12, 31))
    bf.make_redemption(uow, live, member, reward_minor=450, purchase_amount_minor=3000)
    other = f.make_merchant(uow, trading_name="Elsewhere")
    bf.make_redemption(uow, bf.make_benefit(uow, other, title="Not mine"), member, code_step=1)
    sign_in(client, world.counter)
    page = client.get("/merchant")
    assert page.status_code == 200
    text = text_of(page.text)
    assert "Dockside Diner active" in text
    assert "Alliance circles" not in text  # counter staff do not read circles
    assert "20% off dinner 20% off, up to £10.00 awaiting the bank's approval" in text
    assert "Free dessert" in text
    assert "Today's redemptions 1" in text
    assert f"{member.member_number} £30.00 £4.50 redeemed" in text
    assert "Not mine" not in text
    assert "My relationship manager Raj Manager raj@bank.test" in text
    assert "Walked the floor" not in text  # the manager's notes are internal
    client.cookies.clear()
    sign_in(client, world.owner)
    assert "Alliance circles Canary Wharf" in text_of(client.get("/merchant").text)
