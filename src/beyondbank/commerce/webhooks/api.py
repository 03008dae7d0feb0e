"""Partner webhook endpoints under /shop/webhooks: register, list, rotate, deactivate, deliveries."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from beyondbank.commerce import service as partners
from beyondbank.commerce.models import DeliveryStatus, WebhookEndpoint
from beyondbank.commerce.webhooks import schemas, service
from beyondbank.core.authz import Permission, Principal
from beyondbank.core.pagination import DEFAULT_LIMIT, MAX_LIMIT, Page
from beyondbank.core.uow import UnitOfWork
from beyondbank.deps import SettingsDep, UoW, requires

router = APIRouter(prefix="/shop/webhooks", tags=["shop: webhooks"])

Manager = Annotated[Principal, Depends(requires(Permission.WEBHOOKS_MANAGE))]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]

_PROBLEMS: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such endpoint or delivery, or another partner's"},
    409: {"description": "Not allowed in its current state (`current_status`)"},
    422: {"description": "Invalid fields: a URL that is not https, a malformed event type"},
}


@router.post(
    "/endpoints",
    response_model=schemas.EndpointCreatedOut,
    status_code=201,
    summary="Register a webhook endpoint; the answer shows its signing secret, once",
    responses=_PROBLEMS,
)
def create_endpoint(
    body: schemas.EndpointIn, uow: UoW, actor: Manager, settings: SettingsDep
) -> schemas.EndpointCreatedOut:
    created = service.create_endpoint(
        uow,
        actor,
        service.EndpointIn(**body.model_dump()),
        production=settings.environment == "production",
    )
    out = _endpoints_out(uow, [created.endpoint])[0]
    return schemas.EndpointCreatedOut(**out.model_dump(), secret=created.secret)


@router.get(
    "/endpoints",
    response_model=Page[schemas.EndpointOut],
    summary="List webhook endpoints, newest first (a partner: its own)",
)
def list_endpoints(
    uow: UoW,
    actor: Manager,
    cursor: str | None = None,
    limit: Limit = DEFAULT_LIMIT,
    partner_id: str | None = None,
) -> Page[schemas.EndpointOut]:
    rows, next_cursor = service.list_endpoints(
        uow, actor, partner_public_id=partner_id, cursor=cursor, limit=limit
    )
    return Page(items=_endpoints_out(uow, rows), next_cursor=next_cursor)


@router.get(
    "/endpoints/{endpoint_id}",
    response_model=schemas.EndpointOut,
    summary="One webhook endpoint (never its secret)",
    responses=_PROBLEMS,
)
def get_endpoint(endpoint_id: str, uow: UoW, actor: Manager) -> schemas.EndpointOut:
    return _endpoints_out(uow, [service.get_endpoint(uow, actor, endpoint_id)])[0]


@router.delete(
    "/endpoints/{endpoint_id}",
    response_model=schemas.EndpointOut,
    summary="Deactivate an endpoint: nothing more is sent to it, what was pending is dead",
    responses=_PROBLEMS,
)
def deactivate_endpoint(endpoint_id: str, uow: UoW, actor: Manager) -> schemas.EndpointOut:
    return _endpoints_out(uow, [service.deactivate_endpoint(uow, actor, endpoint_id)])[0]


@router.post(
    "/endpoints/{endpoint_id}/rotate-secret",
    response_model=schemas.EndpointCreatedOut,
    summary="Replace the endpoint's signing secret; the answer shows the new one, once. The old "
    "one signs beside it for a grace period",
    responses=_PROBLEMS,
)
def rotate_secret(
    endpoint_id: str,
    uow: UoW,
    actor: Manager,
    settings: SettingsDep,
    body: schemas.RotateIn | None = None,
) -> schemas.EndpointCreatedOut:
    hours = settings.shop_webhook_secret_grace_hours
    if body is not None and body.grace_hours is not None:
        hours = body.grace_hours
    rotated = service.rotate_secret(uow, actor, endpoint_id, grace=timedelta(hours=hours))
    out = _endpoints_out(uow, [rotated.endpoint])[0]
    return schemas.EndpointCreatedOut(**out.model_dump(), secret=rotated.secret)


@router.get(
    "/deliveries",
    response_model=Page[schemas.DeliveryOut],
    summary="Webhook deliveries, newest first: status, attempts, the last answer or error",
)
def list_deliveries(
    uow: UoW,
    actor: Manager,
    cursor: str | None = None,
    limit: Limit = DEFAULT_LIMIT,
    status: DeliveryStatus | None = None,
    endpoint_id: str | None = None,
    event_type: Annotated[str | None, Query(max_length=64)] = None,
) -> Page[schemas.DeliveryOut]:
    filters = service.DeliveryFilters(status=status, endpoint_id=endpoint_id, event_type=event_type)
    views, next_cursor = service.list_deliveries(uow, actor, filters, cursor=cursor, limit=limit)
    return Page(items=_deliveries_out(uow, views), next_cursor=next_cursor)


@router.post(
    "/deliveries/{delivery_id}/replay",
    response_model=schemas.DeliveryOut,
    summary="Send a dead delivery again, with a fresh run of attempts (same webhook-id)",
    responses=_PROBLEMS,
)
def replay_delivery(delivery_id: int, uow: UoW, actor: Manager) -> schemas.DeliveryOut:
    return _deliveries_out(uow, [service.replay_delivery(uow, actor, delivery_id)])[0]


# -- response shapes -----------------------------------------------------------------------------


def _endpoints_out(
    uow: UnitOfWork, endpoints: Sequence[WebhookEndpoint]
) -> list[schemas.EndpointOut]:
    ids = partners.partner_public_ids(uow, {e.partner_id for e in endpoints})
    return [
        schemas.EndpointOut(
            id=e.public_id,
            partner_id=ids[e.partner_id],
            url=e.url,
            event_types=list(e.event_types),
            active=e.active,
            created_at=e.created_at,
            previous_secret_valid_until=e.previous_secret_until if e.previous_secret else None,
        )
        for e in endpoints
    ]


def _deliveries_out(
    uow: UnitOfWork, views: Sequence[service.DeliveryView]
) -> list[schemas.DeliveryOut]:
    ids = partners.partner_public_ids(uow, {v.endpoint.partner_id for v in views})
    return [
        schemas.DeliveryOut(
            id=v.delivery.id,
            event_id=v.event.public_id,
            event_type=v.event.event_type,
            endpoint_id=v.endpoint.public_id,
            partner_id=ids[v.endpoint.partner_id],
            status=v.delivery.status,
            attempts=v.delivery.attempts,
            next_attempt_at=v.delivery.next_attempt_at
            if v.delivery.status == DeliveryStatus.PENDING
            else None,
            last_status_code=v.delivery.last_status_code,
            last_error=v.delivery.last_error,
            delivered_at=v.delivery.delivered_at,
            event_created_at=v.event.created_at,
        )
        for v in views
    ]
