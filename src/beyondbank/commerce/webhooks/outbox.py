"""Writing a partner event into the outbox, inside the transaction of the change it reports."""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert, select

from beyondbank.commerce.models import (
    DeliveryStatus,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
)
from beyondbank.core.ids import new_public_id
from beyondbank.core.uow import UnitOfWork


def emit(
    uow: UnitOfWork, *, partner_id: int, event_type: str, data: dict[str, Any]
) -> WebhookEvent:
    """Record an event for the partner and one pending delivery per endpoint that wants it.

    Written with the caller's change and committed by the caller: a rolled-back change leaves no
    event, and a committed one always has its deliveries. Nothing is sent here; the dispatcher
    sends what is due.
    """
    now = uow.clock.now()
    event = WebhookEvent(
        public_id=new_public_id("msg"),
        partner_id=partner_id,
        event_type=event_type,
        payload={"type": event_type, "timestamp": now.isoformat(), "data": data},
        created_at=now,
    )
    uow.session.add(event)
    uow.session.flush()
    endpoints = uow.session.scalars(
        select(WebhookEndpoint).where(
            WebhookEndpoint.partner_id == partner_id, WebhookEndpoint.active.is_(True)
        )
    ).all()
    wanted = [e.id for e in endpoints if not e.event_types or event_type in e.event_types]
    if wanted:
        uow.session.execute(
            insert(WebhookDelivery),
            [
                {
                    "event_id": event.id,
                    "endpoint_id": endpoint_id,
                    "status": DeliveryStatus.PENDING,
                    "attempts": 0,
                    "next_attempt_at": now,
                }
                for endpoint_id in wanted
            ],
        )
    return event
