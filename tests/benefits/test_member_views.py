"""What a member sees: the dynamic code (with its QR), the benefits open to them, and their history."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient

from beyondbank.alliance.models import CircleKind
from beyondbank.benefits.models import BenefitStatus, LimitPeriod
from beyondbank.core.authz import Role
from beyondbank.core.clock import FixedClock
from beyondbank.core.settings import Settings
from beyondbank.core.tokens import verify_member_code
from beyondbank.core.uow import UnitOfWork
from tests import factories as f
from tests.benefits import factories as bf

API = "/api/v1"


def test_a_member_gets_a_fresh_code_with_its_qr_and_expiry(
    client: TestClient, uow: UnitOfWork, settings: Settings, clock: FixedClock
) -> None:
    customer = f.make_customer(uow)
    member = f.make_member(uow, customer)
    clock.advance(timedelta(seconds=12))
    response = client.get(f"{API}/me/member-code", headers=f.auth(settings, uow, customer))
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["member_number"] == member.member_number
    assert len(body["code"]) == 18
    assert body["code"].startswith(member.member_number)
    assert body["refresh_after_seconds"] == 18  # the 30-second window started 12 s ago
    assert datetime.fromisoformat(body["expires_at"]) == datetime(2026, 11, 22, 10, 1, tzinfo=UTC)
    assert body["qr_svg"].startswith("<svg")
    assert "<title>Member code</title>" in body["qr_svg"]
    secret = settings.secret_key.get_secret_value()
    assert verify_member_code(secret, body["code"], now=clock.now()).member_number == (
        member.member_number
    )


def test_the_code_from_the_app_redeems_at_the_counter(
    client: TestClient, uow: UnitOfWork, settings: Settings
) -> None:
    customer = f.make_customer(uow)
    f.make_member(uow, customer)
    merchant = f.make_merchant(uow)
    benefit = bf.make_benefit(uow, merchant)
    staff = f.auth(settings, uow, f.make_user(uow, Role.MERCHANT_STAFF, merchant))
    code = client.get(f"{API}/me/member-code", headers=f.auth(settings, uow, customer)).json()
    response = client.post(
        f"{API}/redemptions",
        json={"code": code["code"], "benefit_id": benefit.public_id, "purchase_amount_minor": 2500},
        headers={**staff, "Idempotency-Key": "app-code"},
    )
    assert response.status_code == 201, response.text
    assert response.json()["reward_minor"] == 500
    history = client.get(f"{API}/me/redemptions", headers=f.auth(settings, uow, customer)).json()
    assert [r["id"] for r in history["items"]] == [response.json()["id"]]


def test_no_code_without_an_active_membership_and_none_for_staff(
    client: TestClient, uow: UnitOfWork, settings: Settings
) -> None:
    not_joined = f.auth(settings, uow, f.make_customer(uow))
    response = client.get(f"{API}/me/member-code", headers=not_joined)
    assert response.status_code == 404
    assert "join" in response.json()["detail"]
    staff = f.auth(settings, uow, f.make_user(uow, Role.BANK_ADMIN))
    assert client.get(f"{API}/me/member-code", headers=staff).status_code == 403
    assert client.get(f"{API}/me/member-code").status_code == 401


def test_a_members_benefit_page_shows_what_where_when_and_uses_left(
    client: TestClient, uow: UnitOfWork, settings: Settings, clock: FixedClock
) -> None:
    customer = f.make_customer(uow)
    member = f.make_member(uow, customer)
    merchant = f.make_merchant(uow, trading_name="Harbour Grocer")
    benefit = bf.make_benefit(
        uow,
        merchant,
        member_limit=2,
        limit_period=LimitPeriod.WEEK,
        hour_start=8,
        hour_end=20,
        quantity=10,
    )
    staff = f.auth(settings, uow, f.make_user(uow, Role.MERCHANT_STAFF, merchant))
    client.post(
        f"{API}/redemptions",
        json={
            "code": bf.code_at(settings, member, clock.now()),
            "benefit_id": benefit.public_id,
            "purchase_amount_minor": 1000,
        },
        headers={**staff, "Idempotency-Key": "page-1"},
    )
    me = f.auth(settings, uow, customer)
    page = client.get(f"{API}/me/benefits/{benefit.public_id}", headers=me)
    assert page.status_code == 200, page.text
    body = page.json()
    assert body["summary"] == "20% off, up to £10.00"
    assert body["merchant"]["name"] == "Harbour Grocer"
    assert body["merchant"]["locations"][0]["city"] == "London"
    assert body["schedule"]["description"] == "Every day, 08:00 to 20:00"
    assert (body["uses_this_period"], body["remaining_this_period"]) == (1, 1)
    assert body["available_now"] is True
    assert body["sold_out"] is False
    assert "merchant_share_bps" not in body  # the bank's terms are not shown to members
    assert "commission_bps" not in body

    clock.set(datetime(2026, 11, 22, 21, 0, tzinfo=UTC))
    late = client.get(
        f"{API}/me/benefits/{benefit.public_id}", headers=f.auth(settings, uow, customer)
    )
    assert late.json()["available_now"] is False
    assert "08:00 to 20:00" in late.json()["unavailable_reason"]
    clock.set(datetime(2026, 11, 23, 9, 0, tzinfo=UTC))  # Monday: a new ISO week
    monday = client.get(
        f"{API}/me/benefits/{benefit.public_id}", headers=f.auth(settings, uow, customer)
    )
    assert (monday.json()["uses_this_period"], monday.json()["remaining_this_period"]) == (0, 2)


def test_members_see_active_benefits_they_are_targeted_by(
    client: TestClient, uow: UnitOfWork, settings: Settings
) -> None:
    merchant = f.make_merchant(uow)
    parents = f.make_circle(
        uow,
        kind=CircleKind.SEGMENT,
        segment_rule={"all": [{"attr": "children", "op": "gte", "value": 1}]},
    )
    for_everyone = bf.make_benefit(uow, merchant, title="Everyone")
    for_parents = bf.make_benefit(uow, merchant, title="Parents", targets=[parents])
    bf.make_benefit(uow, merchant, title="Draft", status=BenefitStatus.DRAFT)
    bf.make_benefit(uow, merchant, title="Paused", status=BenefitStatus.PAUSED)

    parent = f.make_customer(uow)
    f.make_member(uow, parent, attributes={"children": 1})
    seen = client.get(f"{API}/me/benefits", headers=f.auth(settings, uow, parent)).json()["items"]
    assert {b["id"] for b in seen} == {for_everyone.public_id, for_parents.public_id}

    single = f.make_customer(uow)
    f.make_member(uow, single)
    headers = f.auth(settings, uow, single)
    seen = client.get(f"{API}/me/benefits", headers=headers).json()["items"]
    assert [b["id"] for b in seen] == [for_everyone.public_id]
    assert (
        client.get(f"{API}/me/benefits/{for_parents.public_id}", headers=headers).status_code == 404
    )

    prospect = f.auth(
        settings, uow, f.make_customer(uow)
    )  # not a member yet: sees what joining gives
    seen = client.get(f"{API}/me/benefits", headers=prospect).json()["items"]
    assert [(b["id"], b["remaining_this_period"]) for b in seen] == [(for_everyone.public_id, None)]
