"""Merchants: creation by staff and online, validation that names the field, terminals that
belong to one merchant, visibility, profile changes, locations, contacts and verification."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from beyondbank.alliance.models import (
    KybStatus,
    Merchant,
    MerchantContact,
    MerchantLocation,
    MerchantStatus,
    MerchantTerminal,
)
from beyondbank.core.authz import Role
from beyondbank.core.models import AuditEvent
from beyondbank.core.settings import Settings
from beyondbank.core.uow import UnitOfWork
from beyondbank.identity.models import User
from tests import factories as f

API = "/api/v1"
IBAN = "GB29NWBK60161331926819"


def _count(uow: UnitOfWork, model: Any) -> int:
    return int(uow.session.scalar(select(func.count()).select_from(model)) or 0)


def _counts(uow: UnitOfWork) -> tuple[int, ...]:
    return tuple(
        _count(uow, m)
        for m in (Merchant, MerchantLocation, MerchantTerminal, MerchantContact, AuditEvent)
    )


def merchant_body(**over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "legal_name": "Golden Dragon Catering Ltd",
        "trading_name": "Golden Dragon",
        "registration_number": "09876543",
        "sub_industry": "restaurant",
        "timezone": "Europe/London",
        "founded_on": "2015-04-01",
        "licence_number": "FHRS-55120",
        "settlement_account": {
            "iban": "GB29 NWBK 6016 1331 9268 19",
            "account_name": "Golden Dragon Catering Ltd",
        },
        "locations": [
            {
                "name": "Westferry Road",
                "address_line": "14 Westferry Road",
                "city": "London",
                "postcode": "E14 8LT",
                "country": "gb",
                "latitude": 51.5020,
                "longitude": -0.0260,
                "terminals": [
                    {"acquirer_merchant_id": "4470001234", "terminal_id": "GD000001"},
                    {"acquirer_merchant_id": "4470001234", "terminal_id": "GD000002"},
                ],
            }
        ],
        "contacts": [
            {
                "name": "Li Wei",
                "role": "Owner",
                "email": "li.wei@golden-dragon.example",
                "phone": "+44 20 7946 0001",
                "is_primary": True,
            }
        ],
    }
    body.update(over)
    return body


def _with(path: str, value: Any) -> dict[str, Any]:
    """The default body with one nested field replaced, e.g. `locations.0.latitude`."""
    body = copy.deepcopy(merchant_body())
    target: Any = body
    *parents, last = path.split(".")
    for part in parents:
        target = target[int(part)] if part.isdigit() else target[part]
    target[int(last) if last.isdigit() else last] = value
    return body


# -- creating ----------------------------------------------------------------------------


def test_staff_register_a_merchant_with_locations_terminals_and_contacts(
    client: TestClient, uow: UnitOfWork, settings: Settings, rm_user: User
) -> None:
    response = client.post(
        f"{API}/merchants", json=merchant_body(), headers=f.auth(settings, uow, rm_user)
    )
    assert response.status_code == 201, response.text
    merchant = response.json()
    assert merchant["id"].startswith("mer_")
    assert merchant["status"] == "applied"
    assert merchant["mcc"] == "5812"  # the sub-industry's code, by default
    assert merchant["domain"] == "dining"
    assert merchant["kyb_status"] == "pending"
    assert merchant["settlement_account"]["iban"] == IBAN  # stored compact
    [location] = merchant["locations"]
    assert location["country"] == "GB"
    assert location["timezone"] == "Europe/London"
    assert [t["terminal_id"] for t in location["terminals"]] == ["GD000001", "GD000002"]
    assert merchant["contacts"][0]["is_primary"] is True
    event = uow.session.scalars(
        select(AuditEvent).where(AuditEvent.object_id == merchant["id"])
    ).one()
    assert event.action == "merchant.created"
    assert event.actor_id == rm_user.public_id
    assert len(event.after["terminals"]) == 2


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (_with("locations.0.latitude", 91.0), "body.locations.0.latitude"),
        (_with("locations.0.longitude", -181), "body.locations.0.longitude"),
        (merchant_body(mcc="9999"), "body.mcc"),
        (merchant_body(mcc="5814"), "body.mcc"),  # fast food's code, not a restaurant's
        (merchant_body(mcc="58A2"), "body.mcc"),
        (merchant_body(sub_industry="spaceport"), "body.sub_industry"),
        (
            _with("settlement_account.iban", "GB29NWBK60161331926818"),
            "body.settlement_account.iban",
        ),
        (_with("settlement_account.iban", "not an iban"), "body.settlement_account.iban"),
        (_with("settlement_account.bic", "NOTABIC"), "body.settlement_account.bic"),
        (merchant_body(timezone="Mars/Olympus_Mons"), "body.timezone"),
        (_with("locations.0.timezone", "GMT+25"), "body.locations.0.timezone"),
        (_with("locations.0.country", "XX"), "body.locations.0.country"),
        (
            _with("locations.0.terminals.0.terminal_id", "SHORT"),
            "body.locations.0.terminals.0.terminal_id",
        ),
        (
            _with("locations.0.terminals.0.acquirer_merchant_id", "1234567890123456"),
            "body.locations.0.terminals.0.acquirer_merchant_id",
        ),
        (_with("locations.0.terminals.1.terminal_id", "GD000001"), "body.locations.0.terminals.1"),
        (_with("contacts.0.email", "not-an-email"), "body.contacts.0.email"),
        (merchant_body(locations=[]), "body.locations"),
        (merchant_body(founded_on="2030-01-01"), "body.founded_on"),
        (merchant_body(website="javascript:alert(1)"), "body.website"),
        (merchant_body(unexpected="field"), "body.unexpected"),
    ],
)
def test_bad_merchant_is_a_422_naming_the_field_and_writes_nothing(
    client: TestClient,
    uow: UnitOfWork,
    settings: Settings,
    rm_user: User,
    body: dict[str, Any],
    field: str,
) -> None:
    before = _counts(uow)
    response = client.post(f"{API}/merchants", json=body, headers=f.auth(settings, uow, rm_user))
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert field in [e["field"] for e in response.json()["errors"]], response.json()
    assert _counts(uow) == before


def test_a_terminal_of_another_merchant_is_a_409_naming_it_and_writes_nothing(
    client: TestClient, uow: UnitOfWork, settings: Settings, rm_user: User
) -> None:
    f.make_merchant(uow, mid="4470001234")  # its terminal: 4470001234 / T…
    other = f.make_merchant(uow)
    terminal = other.locations[0].terminals[0]
    body = _with(
        "locations.0.terminals.1",
        {
            "acquirer_merchant_id": terminal.acquirer_merchant_id,
            "terminal_id": terminal.terminal_id,
        },
    )
    before = _counts(uow)
    response = client.post(f"{API}/merchants", json=body, headers=f.auth(settings, uow, rm_user))
    assert response.status_code == 409, response.text
    assert [e["field"] for e in response.json()["errors"]] == ["body.locations.0.terminals.1"]
    assert _counts(uow) == before


def test_merchant_users_do_not_create_other_merchants(
    client: TestClient, uow: UnitOfWork, settings: Settings
) -> None:
    own = f.make_merchant(uow)
    admin = f.make_user(uow, Role.MERCHANT_ADMIN, own)
    response = client.post(
        f"{API}/merchants", json=merchant_body(), headers=f.auth(settings, uow, admin)
    )
    assert response.status_code == 403


def test_a_business_applies_online_and_its_admin_signs_in(
    client: TestClient, uow: UnitOfWork
) -> None:
    body = {
        "merchant": merchant_body(),
        "admin": {"email": "owner@golden-dragon.example", "name": "Li Wei", "password": f.PASSWORD},
    }
    response = client.post(f"{API}/merchants/apply", json=body)
    assert response.status_code == 201, response.text
    merchant_id = response.json()["id"]
    assert response.json()["status"] == "applied"
    token = client.post(
        f"{API}/auth/token", json={"email": "owner@golden-dragon.example", "password": f.PASSWORD}
    ).json()["access_token"]
    own = client.get(f"{API}/merchants/{merchant_id}", headers={"Authorization": f"Bearer {token}"})
    assert own.status_code == 200
    assert own.json()["trading_name"] == "Golden Dragon"
    events = uow.session.scalars(
        select(AuditEvent.action).where(AuditEvent.object_id == merchant_id)
    ).all()
    assert events == ["merchant.applied_online"]


def test_online_application_with_a_weak_password_or_a_known_email_writes_nothing(
    client: TestClient, uow: UnitOfWork
) -> None:
    f.make_user(uow, Role.ANALYST, email="taken@example.com")
    before = _counts(uow)
    weak = client.post(
        f"{API}/merchants/apply",
        json={
            "merchant": merchant_body(),
            "admin": {"email": "a@example.com", "name": "A", "password": "alllowercase1234"},
        },
    )
    assert weak.status_code == 422
    assert weak.json()["errors"][0]["field"] == "body.admin.password"
    taken = client.post(
        f"{API}/merchants/apply",
        json={
            "merchant": merchant_body(),
            "admin": {"email": "taken@example.com", "name": "A", "password": f.PASSWORD},
        },
    )
    assert taken.status_code == 409
    assert _counts(uow) == before


# -- reading: another merchant's objects do not exist ------------------------------------


def test_merchant_users_see_only_their_own_merchant(
    client: TestClient, uow: UnitOfWork, settings: Settings
) -> None:
    own, other = f.make_merchant(uow), f.make_merchant(uow)
    staff = f.make_user(uow, Role.MERCHANT_STAFF, own)
    headers = f.auth(settings, uow, staff)
    listed = client.get(f"{API}/merchants", headers=headers).json()["items"]
    assert [m["id"] for m in listed] == [own.public_id]
    assert client.get(f"{API}/merchants/{own.public_id}", headers=headers).status_code == 200
    hidden = client.get(f"{API}/merchants/{other.public_id}", headers=headers)
    assert hidden.status_code == 404
    assert hidden.json()["detail"] == client.get(
        f"{API}/merchants/mer_nope", headers=headers
    ).json()["detail"].replace("mer_nope", other.public_id)
    admin = f.make_user(uow, Role.MERCHANT_ADMIN, own)
    patch = client.patch(
        f"{API}/merchants/{other.public_id}",
        json={"trading_name": "Hijacked"},
        headers=f.auth(settings, uow, admin),
    )
    assert patch.status_code == 404


def test_contacts_and_settlement_account_are_hidden_from_analysts_and_counter_staff(
    client: TestClient, uow: UnitOfWork, settings: Settings
) -> None:
    merchant = f.make_merchant(uow)
    for role, merchant_bound in ((Role.ANALYST, None), (Role.MERCHANT_STAFF, merchant)):
        user = f.make_user(uow, role, merchant_bound)
        body = client.get(
            f"{API}/merchants/{merchant.public_id}", headers=f.auth(settings, uow, user)
        ).json()
        assert body["contacts"] is None
        assert body["settlement_account"] is None
        contacts = client.get(
            f"{API}/merchants/{merchant.public_id}/contacts", headers=f.auth(settings, uow, user)
        )
        assert contacts.status_code == 403
    auditor = f.make_user(uow, Role.AUDITOR)
    body = client.get(
        f"{API}/merchants/{merchant.public_id}", headers=f.auth(settings, uow, auditor)
    ).json()
    assert body["settlement_account"]["iban"] == IBAN


def test_list_filters(
    client: TestClient, uow: UnitOfWork, settings: Settings, admin_user: User
) -> None:
    circle = f.make_circle(uow)
    cinema = f.make_merchant(uow, sub_industry="cinema", trading_name="Odeon Docklands")
    f.make_merchant(uow, sub_industry="restaurant", status=MerchantStatus.APPLIED)
    f.make_seat(uow, circle, cinema)
    headers = f.auth(settings, uow, admin_user)

    def ids(query: str) -> list[str]:
        response = client.get(f"{API}/merchants?{query}", headers=headers)
        assert response.status_code == 200, response.text
        return [m["id"] for m in response.json()["items"]]

    assert ids("domain=entertainment") == [cinema.public_id]
    assert ids(f"circle={circle.public_id}") == [cinema.public_id]
    assert ids("q=odeon") == [cinema.public_id]
    assert ids("status=applied&sub_industry=cinema") == []
    assert client.get(f"{API}/merchants?manager=usr_nope", headers=headers).status_code == 422


# -- changing ----------------------------------------------------------------------------


def test_merchant_admin_edits_its_profile_but_not_its_category(
    client: TestClient, uow: UnitOfWork, settings: Settings
) -> None:
    merchant = f.make_merchant(uow)
    headers = f.auth(settings, uow, f.make_user(uow, Role.MERCHANT_ADMIN, merchant))
    url = f"{API}/merchants/{merchant.public_id}"
    ok = client.patch(
        url,
        json={"trading_name": "Golden Dragon Express", "website": "https://gd.example"},
        headers=headers,
    )
    assert ok.status_code == 200, ok.text
    assert ok.json()["trading_name"] == "Golden Dragon Express"
    assert client.patch(url, json={"sub_industry": "fast_food"}, headers=headers).status_code == 403
    event = uow.session.scalars(
        select(AuditEvent).where(AuditEvent.action == "merchant.updated")
    ).one()
    assert event.before["trading_name"] != "Golden Dragon Express"
    assert event.after["trading_name"] == "Golden Dragon Express"


def test_new_licence_number_must_be_verified_again(
    client: TestClient, uow: UnitOfWork, settings: Settings, rm_user: User
) -> None:
    merchant = f.make_merchant(uow)
    assert merchant.licence_verified_at is not None
    response = client.patch(
        f"{API}/merchants/{merchant.public_id}",
        json={"licence_number": "LIC-NEW-1"},
        headers=f.auth(settings, uow, rm_user),
    )
    assert response.json()["licence_verified_at"] is None


def test_staff_change_sub_industry_only_when_no_seat_is_held(
    client: TestClient, uow: UnitOfWork, settings: Settings, rm_user: User
) -> None:
    merchant = f.make_merchant(uow, sub_industry="restaurant")
    headers = f.auth(settings, uow, rm_user)
    url = f"{API}/merchants/{merchant.public_id}"
    wrong_mcc = client.patch(url, json={"mcc": "5411"}, headers=headers)
    assert wrong_mcc.status_code == 422
    assert wrong_mcc.json()["errors"][0]["field"] == "body.mcc"
    moved = client.patch(url, json={"sub_industry": "fast_food"}, headers=headers)
    assert moved.status_code == 200, moved.text
    assert (moved.json()["sub_industry"], moved.json()["mcc"]) == ("fast_food", "5814")
    f.make_seat(uow, f.make_circle(uow), merchant)
    held = client.patch(url, json={"sub_industry": "restaurant"}, headers=headers)
    assert held.status_code == 409


def test_settlement_account_is_validated(
    client: TestClient, uow: UnitOfWork, settings: Settings, rm_user: User
) -> None:
    merchant = f.make_merchant(uow)
    url = f"{API}/merchants/{merchant.public_id}/settlement-account"
    headers = f.auth(settings, uow, rm_user)
    bad = client.put(
        url, json={"iban": "DE89370400440532013001", "account_name": "X"}, headers=headers
    )
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "body.iban"
    good = client.put(
        url,
        json={
            "iban": "DE89370400440532013000",
            "bic": "COBADEFFXXX",
            "account_name": "Merchant GmbH",
        },
        headers=headers,
    )
    assert good.status_code == 200, good.text
    assert good.json()["settlement_account"] == {
        "iban": "DE89370400440532013000",
        "bic": "COBADEFFXXX",
        "account_name": "Merchant GmbH",
    }


def test_locations_terminals_and_contacts(
    client: TestClient, uow: UnitOfWork, settings: Settings, rm_user: User
) -> None:
    merchant = f.make_merchant(uow)
    other = f.make_merchant(uow)
    headers = f.auth(settings, uow, rm_user)
    base = f"{API}/merchants/{merchant.public_id}"
    location = client.post(
        f"{base}/locations",
        json={
            "name": "Crossrail Place",
            "address_line": "Crossrail Place",
            "city": "London",
            "country": "GB",
            "latitude": 51.5058,
            "longitude": -0.0187,
            "timezone": "Europe/London",
        },
        headers=headers,
    )
    assert location.status_code == 201, location.text
    location_id = location.json()["id"]
    terminal = client.post(
        f"{base}/locations/{location_id}/terminals",
        json={"acquirer_merchant_id": "4470009999"},
        headers=headers,
    )
    assert terminal.status_code == 201, terminal.text
    assert terminal.json()["terminal_id"] is None  # every terminal of that merchant id
    taken = other.locations[0].terminals[0]
    clash = client.post(
        f"{base}/locations/{location_id}/terminals",
        json={"acquirer_merchant_id": taken.acquirer_merchant_id, "terminal_id": taken.terminal_id},
        headers=headers,
    )
    assert clash.status_code == 409
    removed = client.delete(f"{base}/terminals/{terminal.json()['id']}", headers=headers)
    assert removed.status_code == 204
    closed = client.delete(f"{base}/locations/{location_id}", headers=headers)
    assert closed.status_code == 200
    assert closed.json()["active"] is False
    last = client.delete(f"{base}/locations/{merchant.locations[0].public_id}", headers=headers)
    assert last.status_code == 409  # an active merchant keeps at least one location
    assert "at least one location" in last.json()["detail"]
    hidden = client.delete(f"{base}/locations/{other.locations[0].public_id}", headers=headers)
    assert hidden.status_code == 404

    first = client.post(
        f"{base}/contacts", json={"name": "Ann", "is_primary": True}, headers=headers
    )
    second = client.post(
        f"{base}/contacts",
        json={"name": "Bo", "is_primary": True, "email": "bo@example.com"},
        headers=headers,
    )
    assert first.status_code == second.status_code == 201
    contacts = client.get(f"{base}/contacts", headers=headers).json()
    assert [(c["name"], c["is_primary"]) for c in contacts] == [("Ann", False), ("Bo", True)]
    assert (
        client.delete(f"{base}/contacts/{first.json()['id']}", headers=headers).status_code == 204
    )
    assert [c["name"] for c in client.get(f"{base}/contacts", headers=headers).json()] == ["Bo"]
    actions = uow.session.scalars(
        select(AuditEvent.action)
        .where(AuditEvent.object_id == merchant.public_id)
        .order_by(AuditEvent.id)
    ).all()
    assert actions == [
        "merchant.location_added",
        "merchant.terminal_added",
        "merchant.terminal_removed",
        "merchant.location_removed",
        "merchant.contact_added",
        "merchant.contact_added",
        "merchant.contact_removed",
    ]


def test_staff_record_licence_kyb_and_reviews(
    client: TestClient, uow: UnitOfWork, settings: Settings, rm_user: User
) -> None:
    merchant = f.make_merchant(
        uow,
        licence_verified_at=None,
        kyb_status=KybStatus.PENDING,
        review_score=None,
        review_count=0,
    )
    headers = f.auth(settings, uow, rm_user)
    base = f"{API}/merchants/{merchant.public_id}"
    licence = client.post(
        f"{base}/licence-verification",
        json={"verified": True, "note": "Checked with the council register"},
        headers=headers,
    )
    assert licence.json()["licence_verified_at"] is not None
    kyb = client.post(
        f"{base}/kyb",
        json={"result": "passed", "note": "Companies House, UBO checked"},
        headers=headers,
    )
    assert kyb.json()["kyb_status"] == "passed"
    reviews = client.put(
        f"{base}/reviews", json={"score": "4.35", "count": 212, "source": "Google"}, headers=headers
    )
    assert reviews.status_code == 200, reviews.text
    assert (reviews.json()["review_score"], reviews.json()["review_count"]) == ("4.35", 212)
    bad = client.put(
        f"{base}/reviews", json={"score": "5.5", "count": 1, "source": "x"}, headers=headers
    )
    assert bad.json()["errors"][0]["field"] == "body.score"
    event = uow.session.scalars(
        select(AuditEvent).where(AuditEvent.action == "merchant.kyb_recorded")
    ).one()
    assert event.reason == "Companies House, UBO checked"
    assert event.after["kyb_status"] == "passed"

    own_admin = f.make_user(uow, Role.MERCHANT_ADMIN, merchant)
    self_verified = client.post(
        f"{base}/kyb",
        json={"result": "passed", "note": "trust me"},
        headers=f.auth(settings, uow, own_admin),
    )
    assert self_verified.status_code == 403
