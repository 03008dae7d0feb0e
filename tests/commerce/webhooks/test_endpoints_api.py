"""Managing webhook endpoints and deliveries through the API: the secret shown once, https only,
each partner its own, replaying a dead delivery."""

from __future__ import annotations

import base64
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from beyondbank.commerce.models import DeliveryStatus, Partner, WebhookDelivery
from beyondbank.commerce.webhooks import service
from beyondbank.commerce.webhooks.outbox import emit
from beyondbank.core.authz import Role
from beyondbank.core.models import AuditEvent
from beyondbank.core.settings import Settings
from beyondbank.core.uow import UnitOfWork
from tests import factories as f

API = "/api/v1/shop/webhooks"


@dataclass
class People:
    partner: Partner
    other: Partner
    headers: dict[str, dict[str, str]]  # admin, other_admin (another partner's), bank


@pytest.fixture
def people(uow: UnitOfWork, settings: Settings) -> People:
    partner = f.make_partner(uow)
    other = f.make_partner(uow)
    found = People(
        partner,
        other,
        {
            "admin": f.auth(settings, uow, f.make_user(uow, Role.PARTNER_ADMIN, partner=partner)),
            "other_admin": f.auth(
                settings, uow, f.make_user(uow, Role.PARTNER_ADMIN, partner=other)
            ),
            "bank": f.auth(settings, uow, f.make_user(uow, Role.BANK_ADMIN)),
        },
    )
    uow.commit()
    return found


def h(people: People, who: str) -> dict[str, str]:
    return people.headers[who]


def test_registering_shows_the_secret_once(
    client: TestClient, uow: UnitOfWork, people: People
) -> None:
    created = client.post(
        f"{API}/endpoints",
        json={"url": "https://partner.example/hooks", "event_types": ["order.paid", "order.paid"]},
        headers=h(people, "admin"),
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["secret"].startswith("whsec_")
    assert len(base64.b64decode(body["secret"][6:])) == 32
    assert body["event_types"] == ["order.paid"]
    shown = client.get(f"{API}/endpoints/{body['id']}", headers=h(people, "admin")).json()
    assert "secret" not in shown
    listed = client.get(f"{API}/endpoints", headers=h(people, "admin")).json()["items"]
    assert [e["id"] for e in listed] == [body["id"]]
    assert all("secret" not in e for e in listed)
    uow.session.expire_all()
    trail = uow.session.scalars(select(AuditEvent).where(AuditEvent.object_id == body["id"])).all()
    assert [a.action for a in trail] == ["webhook_endpoint.created"]
    assert body["secret"] not in str(trail[0].after)


def test_rotating_replaces_the_secret(client: TestClient, people: People) -> None:
    first = client.post(
        f"{API}/endpoints", json={"url": "https://p.example/h"}, headers=h(people, "admin")
    ).json()
    rotated = client.post(
        f"{API}/endpoints/{first['id']}/rotate-secret", headers=h(people, "admin")
    ).json()
    assert rotated["secret"].startswith("whsec_")
    assert rotated["secret"] != first["secret"]


@pytest.mark.parametrize(
    "url",
    [
        "http://partner.example/hooks",
        "ftp://partner.example/hooks",
        "https:///no-host",
        "partner.example/hooks",
        "https://user:pass@partner.example/hooks",
        "https://partner.example/" + "x" * 500,
    ],
)
def test_a_url_that_cannot_receive_webhooks_is_refused(
    client: TestClient, people: People, url: str
) -> None:
    response = client.post(f"{API}/endpoints", json={"url": url}, headers=h(people, "admin"))
    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == ["body.url"]
    assert client.get(f"{API}/endpoints", headers=h(people, "admin")).json()["items"] == []


def test_localhost_over_http_is_for_development_only() -> None:
    assert service.check_url("http://127.0.0.1:9000/h", production=False) is None
    assert service.check_url("http://localhost/h", production=False) is None
    assert service.check_url("http://127.0.0.1:9000/h", production=True) == (
        "must be https in production"
    )
    assert service.check_url("https://partner.example/h", production=True) is None


def test_a_malformed_event_type_is_refused(client: TestClient, people: People) -> None:
    response = client.post(
        f"{API}/endpoints",
        json={"url": "https://p.example/h", "event_types": ["order.paid", "Order Paid"]},
        headers=h(people, "admin"),
    )
    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == ["body.event_types.1"]


def test_the_bank_names_the_partner_and_a_partner_cannot_name_another(
    client: TestClient, people: People
) -> None:
    partner, other = people.partner, people.other
    url = {"url": "https://p.example/h"}
    assert client.post(f"{API}/endpoints", json=url, headers=h(people, "bank")).status_code == 422
    by_bank = client.post(
        f"{API}/endpoints",
        json={**url, "partner_id": partner.public_id},
        headers=h(people, "bank"),
    )
    assert by_bank.status_code == 201
    assert by_bank.json()["partner_id"] == partner.public_id
    not_theirs = client.post(
        f"{API}/endpoints",
        json={**url, "partner_id": other.public_id},
        headers=h(people, "admin"),
    )
    assert not_theirs.status_code == 422
    endpoint = by_bank.json()["id"]
    assert (
        client.get(f"{API}/endpoints/{endpoint}", headers=h(people, "other_admin")).status_code
        == 404
    )
    assert (
        client.delete(f"{API}/endpoints/{endpoint}", headers=h(people, "other_admin")).status_code
        == 404
    )
    assert client.get(f"{API}/endpoints", headers=h(people, "other_admin")).json()["items"] == []


def test_deliveries_are_listed_and_a_dead_one_replayed(
    client: TestClient, uow: UnitOfWork, people: People
) -> None:
    partner = people.partner
    endpoint = client.post(
        f"{API}/endpoints", json={"url": "https://p.example/h"}, headers=h(people, "admin")
    ).json()
    event = emit(uow, partner_id=partner.id, event_type="order.paid", data={"order_id": "o1"})
    uow.commit()
    listed = client.get(f"{API}/deliveries", headers=h(people, "admin")).json()["items"]
    assert [(d["event_id"], d["status"], d["attempts"]) for d in listed] == [
        (event.public_id, "pending", 0)
    ]
    assert listed[0]["endpoint_id"] == endpoint["id"]
    delivery = listed[0]["id"]
    pending = client.post(f"{API}/deliveries/{delivery}/replay", headers=h(people, "admin"))
    assert pending.status_code == 409
    assert pending.json()["current_status"] == "pending"
    row = uow.session.get_one(WebhookDelivery, delivery)
    row.status, row.attempts, row.last_status_code = DeliveryStatus.DEAD, 8, 503
    uow.commit()
    dead = client.get(f"{API}/deliveries?status=dead", headers=h(people, "admin")).json()["items"]
    assert [(d["id"], d["last_status_code"], d["next_attempt_at"]) for d in dead] == [
        (delivery, 503, None)
    ]
    assert (
        client.post(
            f"{API}/deliveries/{delivery}/replay", headers=h(people, "other_admin")
        ).status_code
        == 404
    )
    replayed = client.post(f"{API}/deliveries/{delivery}/replay", headers=h(people, "admin"))
    assert replayed.status_code == 200
    assert (replayed.json()["status"], replayed.json()["attempts"]) == ("pending", 0)
    assert client.get(f"{API}/deliveries", headers=h(people, "other_admin")).json()["items"] == []


def test_deactivating_twice_is_harmless_and_rotation_after_it_is_refused(
    client: TestClient, people: People
) -> None:
    endpoint = client.post(
        f"{API}/endpoints", json={"url": "https://p.example/h"}, headers=h(people, "admin")
    ).json()["id"]
    for _ in range(2):
        gone = client.delete(f"{API}/endpoints/{endpoint}", headers=h(people, "admin"))
        assert gone.status_code == 200
        assert gone.json()["active"] is False
    rotate = client.post(f"{API}/endpoints/{endpoint}/rotate-secret", headers=h(people, "admin"))
    assert rotate.status_code == 409
