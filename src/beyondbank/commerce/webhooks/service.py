"""A partner's webhook endpoints and their deliveries: register, list, rotate, deactivate, replay.

A partner's admin manages its own partner's endpoints; the bank's admin any partner's. Every
change is audited without the secret, which is shown once: when an endpoint is registered and
when its secret is rotated.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from sqlalchemy import select, update

from beyondbank.commerce import service as partners
from beyondbank.commerce.models import (
    DeliveryStatus,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
)
from beyondbank.commerce.webhooks import signing
from beyondbank.core import audit
from beyondbank.core.authz import Principal, ensure_partner_visible
from beyondbank.core.errors import FieldError, InvalidInput, InvalidTransition, NotFound, invalid
from beyondbank.core.i18n import _
from beyondbank.core.ids import new_public_id
from beyondbank.core.pagination import paginate
from beyondbank.core.uow import UnitOfWork

EVENT_TYPE = re.compile(r"^[a-z][a-z_]*(\.[a-z_]+)+$")
MAX_EVENT_TYPES = 50
MAX_URL = 500
# Plain http is for a developer's own machine, and never in production.
LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
_AUDITED = ("url", "event_types", "active")


@dataclass(frozen=True, slots=True)
class EndpointIn:
    url: str
    event_types: list[str] = field(default_factory=list)
    partner_id: str | None = None  # the partner's public id; a partner's own admin may omit it


@dataclass(frozen=True, slots=True)
class Created:
    endpoint: WebhookEndpoint
    secret: str  # shown once


@dataclass(frozen=True, slots=True)
class DeliveryView:
    delivery: WebhookDelivery
    event: WebhookEvent
    endpoint: WebhookEndpoint


def check_url(url: str, *, production: bool) -> str | None:
    """Why the URL cannot receive webhooks, or None if it can."""
    if len(url) > MAX_URL:
        return _("at most %(max_url)s characters", max_url=MAX_URL)
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        return _("not a URL")
    if not host:
        return _("not an absolute URL with a host")
    if parts.username or parts.password:
        return _("must not carry credentials: the signature authenticates us")
    if parts.scheme == "https":
        return None
    if parts.scheme == "http" and host in LOCAL_HOSTS and not production:
        return None
    if parts.scheme == "http" and host in LOCAL_HOSTS:
        return _("must be https in production")
    return _("must be https (plain http only for localhost outside production)")


def _check(data: EndpointIn, *, production: bool) -> list[str]:
    errors: list[FieldError] = []
    problem = check_url(data.url, production=production)
    if problem:
        errors.append(FieldError("body.url", problem))
    if len(data.event_types) > MAX_EVENT_TYPES:
        errors.append(
            FieldError(
                "body.event_types",
                _("at most %(max_event_types)s types", max_event_types=MAX_EVENT_TYPES),
            )
        )
    for i, event_type in enumerate(data.event_types):
        if len(event_type) > 64 or not EVENT_TYPE.match(event_type):
            errors.append(
                FieldError(f"body.event_types.{i}", _("an event type such as `order.paid`"))
            )
    if errors:
        raise InvalidInput(
            _("The webhook endpoint cannot be registered as it stands."), errors=errors
        )
    return sorted(set(data.event_types))


def _partner_id_for(uow: UnitOfWork, actor: Principal, partner_public_id: str | None) -> int:
    """The partner the endpoint is for: the actor's own, or the one a bank admin names."""
    if actor.partner_id is not None:
        if partner_public_id is not None:
            partner = partners.get_partner(uow, partner_public_id, field="body.partner_id")
            if partner.id != actor.partner_id:
                raise InvalidInput(
                    _("You register endpoints for your own partner only."),
                    errors=(FieldError("body.partner_id", _("not your partner")),),
                )
        return actor.partner_id
    if partner_public_id is None:
        raise InvalidInput(
            _("Name the partner whose endpoint this is."),
            errors=(FieldError("body.partner_id", _("required for bank staff")),),
        )
    return partners.get_partner(uow, partner_public_id, field="body.partner_id").id


def create_endpoint(
    uow: UnitOfWork, actor: Principal, data: EndpointIn, *, production: bool
) -> Created:
    """Register where a partner receives its events; the answer carries the secret, once."""
    event_types = _check(data, production=production)
    partner_id = _partner_id_for(uow, actor, data.partner_id)
    secret = signing.generate_secret()
    endpoint = WebhookEndpoint(
        public_id=new_public_id("whe"),
        partner_id=partner_id,
        url=data.url,
        secret=secret,
        event_types=event_types,
        active=True,
        created_at=uow.clock.now(),
    )
    uow.session.add(endpoint)
    uow.session.flush()
    _audit(
        uow, actor, endpoint, "webhook_endpoint.created", after=audit.snapshot(endpoint, _AUDITED)
    )
    uow.commit()
    return Created(endpoint, secret)


def get_endpoint(uow: UnitOfWork, actor: Principal, public_id: str) -> WebhookEndpoint:
    endpoint = uow.session.scalars(
        select(WebhookEndpoint).where(WebhookEndpoint.public_id == public_id)
    ).one_or_none()
    if endpoint is None:
        raise NotFound(_("No webhook endpoint %(public_id)r here.", public_id=public_id))
    ensure_partner_visible(actor, endpoint.partner_id, "webhook endpoint", public_id)
    return endpoint


def list_endpoints(
    uow: UnitOfWork,
    actor: Principal,
    *,
    partner_public_id: str | None,
    cursor: str | None,
    limit: int,
) -> tuple[Sequence[WebhookEndpoint], str | None]:
    stmt = select(WebhookEndpoint)
    if actor.partner_id is not None:
        stmt = stmt.where(WebhookEndpoint.partner_id == actor.partner_id)
    if partner_public_id is not None:
        partner = partners.get_partner(uow, partner_public_id, field="query.partner_id")
        stmt = stmt.where(WebhookEndpoint.partner_id == partner.id)
    return paginate(
        uow.session, stmt, WebhookEndpoint.id, cursor=cursor, limit=limit, descending=True
    )


def deactivate_endpoint(uow: UnitOfWork, actor: Principal, public_id: str) -> WebhookEndpoint:
    """Stop sending to the endpoint; what was still waiting for it is given up (dead)."""
    endpoint = get_endpoint(uow, actor, public_id)
    if not endpoint.active:
        return endpoint  # deactivating twice changes nothing
    endpoint.active = False
    abandoned = uow.session.execute(
        update(WebhookDelivery)
        .where(
            WebhookDelivery.endpoint_id == endpoint.id,
            WebhookDelivery.status == DeliveryStatus.PENDING,
        )
        .values(status=DeliveryStatus.DEAD, last_error="endpoint deactivated")
    )
    _audit(
        uow,
        actor,
        endpoint,
        "webhook_endpoint.deactivated",
        before={"active": True},
        after={"active": False, "pending_abandoned": int(getattr(abandoned, "rowcount", 0))},
    )
    uow.commit()
    return endpoint


def rotate_secret(
    uow: UnitOfWork, actor: Principal, public_id: str, *, grace: timedelta
) -> Created:
    """A new secret, effective for the next attempt of every delivery. For `grace` after now the
    secret it replaces signs beside it (two signatures in `webhook-signature`), so a receiver
    holding either accepts; then only the new one. A zero grace stops the old secret at once
    (say, it leaked). Rotating again within a grace period keeps only the secret just replaced:
    there are never more than two."""
    endpoint = get_endpoint(uow, actor, public_id)
    if not endpoint.active:
        raise InvalidTransition(
            _("The endpoint is deactivated; register a new one."),
            extra={"current_status": "inactive"},
        )
    if grace < timedelta(0):
        raise invalid("body.grace_hours", _("must be at least 0"))
    before: dict[str, object] = {"previous_secret_until": _iso(endpoint.previous_secret_until)}
    now = uow.clock.now()
    secret = signing.generate_secret()
    endpoint.previous_secret = endpoint.secret if grace else None
    endpoint.previous_secret_until = now + grace if grace else None
    endpoint.secret = secret
    _audit(
        uow,
        actor,
        endpoint,
        "webhook_endpoint.secret_rotated",
        before=before,
        after={"previous_secret_until": _iso(endpoint.previous_secret_until)},
    )
    uow.commit()
    return Created(endpoint, secret)


def _iso(at: datetime | None) -> str | None:
    return None if at is None else at.isoformat()


# -- deliveries ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DeliveryFilters:
    status: DeliveryStatus | None = None
    endpoint_id: str | None = None
    event_type: str | None = None


def list_deliveries(
    uow: UnitOfWork,
    actor: Principal,
    filters: DeliveryFilters,
    *,
    cursor: str | None,
    limit: int,
) -> tuple[list[DeliveryView], str | None]:
    """Deliveries newest first, with their event and endpoint; a partner sees its own."""
    stmt = select(WebhookDelivery).join(
        WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id
    )
    if actor.partner_id is not None:
        stmt = stmt.where(WebhookEndpoint.partner_id == actor.partner_id)
    if filters.status is not None:
        stmt = stmt.where(WebhookDelivery.status == filters.status)
    if filters.endpoint_id is not None:
        stmt = stmt.where(WebhookEndpoint.public_id == filters.endpoint_id)
    if filters.event_type is not None:
        stmt = stmt.join(WebhookEvent, WebhookEvent.id == WebhookDelivery.event_id).where(
            WebhookEvent.event_type == filters.event_type
        )
    rows, next_cursor = paginate(
        uow.session, stmt, WebhookDelivery.id, cursor=cursor, limit=limit, descending=True
    )
    return _views(uow, rows), next_cursor


def _views(uow: UnitOfWork, rows: Sequence[WebhookDelivery]) -> list[DeliveryView]:
    if not rows:
        return []
    events = {
        e.id: e
        for e in uow.session.scalars(
            select(WebhookEvent).where(WebhookEvent.id.in_({r.event_id for r in rows}))
        )
    }
    endpoints = {
        e.id: e
        for e in uow.session.scalars(
            select(WebhookEndpoint).where(WebhookEndpoint.id.in_({r.endpoint_id for r in rows}))
        )
    }
    return [DeliveryView(r, events[r.event_id], endpoints[r.endpoint_id]) for r in rows]


def get_delivery(uow: UnitOfWork, actor: Principal, delivery_id: int) -> DeliveryView:
    delivery = uow.session.get(WebhookDelivery, delivery_id)
    if delivery is None:
        raise NotFound(_("No webhook delivery %(public_id)r here.", public_id=str(delivery_id)))
    view = _views(uow, [delivery])[0]
    ensure_partner_visible(actor, view.endpoint.partner_id, "webhook delivery", str(delivery_id))
    return view


def replay_delivery(uow: UnitOfWork, actor: Principal, delivery_id: int) -> DeliveryView:
    """Give a dead delivery a fresh run of attempts, due now (same event, same webhook-id)."""
    view = get_delivery(uow, actor, delivery_id)
    delivery = view.delivery
    if delivery.status != DeliveryStatus.DEAD:
        raise InvalidTransition(
            _(
                "Only a dead delivery is replayed; this one is %(status)s.",
                status=delivery.status.value,
            ),
            extra={"current_status": delivery.status.value},
        )
    if not view.endpoint.active:
        raise InvalidTransition(
            _("The endpoint is deactivated; nothing can be sent to it."),
            extra={"current_status": delivery.status.value},
        )
    # Conditional, so that two replays at once give one fresh run, not two.
    replayed = uow.session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.id == delivery.id, WebhookDelivery.status == DeliveryStatus.DEAD)
        .values(status=DeliveryStatus.PENDING, attempts=0, next_attempt_at=uow.clock.now())
    )
    if int(getattr(replayed, "rowcount", 0)) != 1:
        raise InvalidTransition(
            _("The delivery was replayed meanwhile."), extra={"current_status": "pending"}
        )
    audit.record(
        uow.session,
        actor=actor,
        at=uow.clock.now(),
        action="webhook_delivery.replayed",
        object_type="webhook_delivery",
        object_id=str(delivery.id),
        before={"status": "dead", "attempts": delivery.attempts},
        after={"status": "pending", "attempts": 0, "event_id": view.event.public_id},
    )
    uow.commit()
    uow.session.refresh(delivery)
    return view


def _audit(
    uow: UnitOfWork,
    actor: Principal,
    endpoint: WebhookEndpoint,
    action: str,
    *,
    before: dict[str, object] | None = None,
    after: dict[str, object] | None = None,
) -> None:
    # Never the secret: the trail is read by auditors, the secret only by the partner.
    audit.record(
        uow.session,
        actor=actor,
        at=uow.clock.now(),
        action=action,
        object_type="webhook_endpoint",
        object_id=endpoint.public_id,
        before=before,
        after=after,
    )
