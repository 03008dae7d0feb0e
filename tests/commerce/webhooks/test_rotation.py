"""Rotating a webhook secret with a grace period: for the grace, every delivery carries two
Standard Webhooks signatures (the new secret's and the old one's), so a receiver still holding
the old secret and one already holding the new both accept; after it, only the new one signs."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from beyondbank.commerce.models import DeliveryStatus, Partner, WebhookDelivery
from beyondbank.commerce.webhooks import dispatcher, service, signing
from beyondbank.commerce.webhooks.outbox import emit
from beyondbank.core.authz import SYSTEM, Role
from beyondbank.core.clock import FixedClock
from beyondbank.core.errors import InvalidInput
from beyondbank.core.models import AuditEvent
from beyondbank.core.settings import Settings
from beyondbank.core.uow import UnitOfWork
from tests import factories as f
from tests.commerce.webhooks.receivers import Receiver, serving

API = "/api/v1/shop/webhooks"


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client() as client:
        yield client


def _register(uow: UnitOfWork, partner: Partner, url: str) -> service.Created:
    return service.create_endpoint(
        uow,
        SYSTEM,
        service.EndpointIn(url=url, event_types=[], partner_id=partner.public_id),
        production=False,
    )


def _send_one(
    uow: UnitOfWork,
    factory: sessionmaker[Session],
    clock: FixedClock,
    http: httpx.Client,
    partner: Partner,
) -> DeliveryStatus:
    """Emit one event and run one delivery pass; the delivery's status after it."""
    event = emit(uow, partner_id=partner.id, event_type="order.paid", data={"order_id": "ord_1"})
    uow.commit()
    dispatcher.deliver_due(factory, clock, client=http)
    uow.session.expire_all()
    delivery = uow.session.scalars(
        select(WebhookDelivery).where(WebhookDelivery.event_id == event.id)
    ).one()
    return delivery.status


def test_during_the_grace_a_receiver_with_either_secret_accepts_and_after_it_only_the_new(
    uow: UnitOfWork,
    session_factory: sessionmaker[Session],
    clock: FixedClock,
    http: httpx.Client,
) -> None:
    partner = f.make_partner(uow)
    with serving(Receiver(failures=0)) as receiver:
        created = _register(uow, partner, receiver.url)
        old = created.secret
        receiver.secret = old
        assert _send_one(uow, session_factory, clock, http, partner) is DeliveryStatus.DELIVERED

        rotated = service.rotate_secret(
            uow, SYSTEM, created.endpoint.public_id, grace=timedelta(hours=24)
        )
        new = rotated.secret
        assert new != old
        assert rotated.endpoint.previous_secret_until == clock.now() + timedelta(hours=24)
        # The partner has not switched yet: its receiver still checks the old secret.
        assert _send_one(uow, session_factory, clock, http, partner) is DeliveryStatus.DELIVERED
        receiver.secret = new  # switched: the new secret alone
        assert _send_one(uow, session_factory, clock, http, partner) is DeliveryStatus.DELIVERED

        clock.advance(timedelta(hours=24))  # the grace is over: the old secret no longer signs
        assert _send_one(uow, session_factory, clock, http, partner) is DeliveryStatus.DELIVERED
        receiver.secret = old
        assert _send_one(uow, session_factory, clock, http, partner) is DeliveryStatus.PENDING
        assert receiver.bad_signatures == 1  # refused, and retried later (with the new secret)
    trail = uow.session.scalars(
        select(AuditEvent).where(AuditEvent.action == "webhook_endpoint.secret_rotated")
    ).one()
    assert old not in str(trail.after)
    assert new not in str(trail.after)


def test_the_signature_header_carries_both_signatures_new_first() -> None:
    old, new = signing.generate_secret(), signing.generate_secret()
    headers = signing.headers((new, old), "msg_1", 1_700_000_000, b'{"a":1}')
    first, second = headers["webhook-signature"].split(" ")
    assert first == signing.sign(new, "msg_1", 1_700_000_000, b'{"a":1}')
    assert second == signing.sign(old, "msg_1", 1_700_000_000, b'{"a":1}')
    for secret in (old, new):
        assert signing.verify(secret, headers, b'{"a":1}', now=1_700_000_000) == "msg_1"
    with pytest.raises(signing.WebhookVerificationError):
        signing.verify(signing.generate_secret(), headers, b'{"a":1}', now=1_700_000_000)


def test_a_zero_grace_stops_the_old_secret_at_once_and_rotating_again_keeps_two_at_most(
    uow: UnitOfWork, clock: FixedClock
) -> None:
    partner = f.make_partner(uow)
    created = _register(uow, partner, "https://partner.example/hooks")
    endpoint_id = created.endpoint.public_id
    first = service.rotate_secret(uow, SYSTEM, endpoint_id, grace=timedelta(hours=2))
    second = service.rotate_secret(uow, SYSTEM, endpoint_id, grace=timedelta(hours=2))
    endpoint = second.endpoint
    assert dispatcher.signing_secrets(endpoint, clock.now()) == (second.secret, first.secret)
    leaked = service.rotate_secret(uow, SYSTEM, endpoint_id, grace=timedelta(0))
    assert dispatcher.signing_secrets(leaked.endpoint, clock.now()) == (leaked.secret,)
    assert leaked.endpoint.previous_secret is None
    with pytest.raises(InvalidInput):
        service.rotate_secret(uow, SYSTEM, endpoint_id, grace=timedelta(hours=-1))


def test_the_api_uses_the_setting_or_the_grace_asked_for(
    client: TestClient, uow: UnitOfWork, settings: Settings, clock: FixedClock
) -> None:
    partner = f.make_partner(uow)
    admin = f.make_user(uow, Role.PARTNER_ADMIN, partner=partner)
    uow.commit()
    headers = f.auth(settings, uow, admin)
    made = client.post(f"{API}/endpoints", json={"url": "https://p.example/h"}, headers=headers)
    endpoint_id = made.json()["id"]
    assert made.json()["previous_secret_valid_until"] is None
    settings.shop_webhook_secret_grace_hours = 6
    rotated = client.post(f"{API}/endpoints/{endpoint_id}/rotate-secret", headers=headers)
    assert rotated.status_code == 200, rotated.text
    until = rotated.json()["previous_secret_valid_until"]
    assert until == (clock.now() + timedelta(hours=6)).isoformat().replace("+00:00", "Z")
    shown = client.get(f"{API}/endpoints/{endpoint_id}", headers=headers).json()
    assert shown["previous_secret_valid_until"] == until
    assert "secret" not in shown
    now_only = client.post(
        f"{API}/endpoints/{endpoint_id}/rotate-secret", json={"grace_hours": 0}, headers=headers
    )
    assert now_only.json()["previous_secret_valid_until"] is None
    too_long = client.post(
        f"{API}/endpoints/{endpoint_id}/rotate-secret", json={"grace_hours": 169}, headers=headers
    )
    assert too_long.status_code == 422
    assert [e["field"] for e in too_long.json()["errors"]] == ["body.grace_hours"]


@pytest.mark.parametrize("hours", ["-1", "169"])
def test_the_grace_setting_is_validated(monkeypatch: pytest.MonkeyPatch, hours: str) -> None:
    monkeypatch.setenv("BEYONDBANK_SHOP_WEBHOOK_SECRET_GRACE_HOURS", hours)
    with pytest.raises(ValidationError):
        Settings()
