"""Group-buy endpoints under `/shop/group-buys`: campaigns for partners and the bank, live
progress for customers, closing and the supplier's purchase order. Thin: parse, authorise, call
the service, shape the answer.

Cancel and close move money (refunds) and are idempotent by the campaign's own state: repeating
either answers what the first settled and only retries refunds still pending, so no request can
refund twice. Refunds run after the campaign's transaction has committed, outside any lock.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Header, Query, Response

from beyondbank.commerce.groupbuy import closing, schemas, service
from beyondbank.commerce.groupbuy import purchase_order as po
from beyondbank.commerce.models import CampaignStatus
from beyondbank.core.authz import Permission, Principal
from beyondbank.core.errors import Forbidden
from beyondbank.core.i18n import _
from beyondbank.core.pagination import DEFAULT_LIMIT, MAX_LIMIT, Page
from beyondbank.deps import UoW, requires
from beyondbank.payments.api import Gateway

router = APIRouter(prefix="/shop", tags=["shop: group buying"])

Reader = Annotated[Principal, Depends(requires(Permission.SHOP_READ))]
Manager = Annotated[Principal, Depends(requires(Permission.GROUPBUY_MANAGE))]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]

_PROBLEMS: dict[int | str, dict[str, object]] = {
    404: {"description": "No such group buy, or another partner's"},
    409: {"description": "Not allowed in the campaign's state (`current_status`)"},
    422: {"description": "Invalid fields"},
}


@router.post(
    "/group-buys",
    response_model=schemas.GroupBuyOut,
    status_code=201,
    summary="Create a group-buy campaign for a product (a partner: its own products)",
    responses=_PROBLEMS,
)
def create(body: schemas.CampaignIn, uow: UoW, actor: Manager) -> schemas.GroupBuyOut:
    campaign = service.create_campaign(uow, actor, body.to_service())
    return schemas.GroupBuyOut.of(service.progress(uow, actor, campaign.public_id))


@router.get(
    "/group-buys",
    response_model=Page[schemas.GroupBuyOut],
    summary="Group buys with their live progress (a customer: with its own units)",
)
def list_group_buys(
    uow: UoW,
    actor: Reader,
    status: CampaignStatus | None = None,
    cursor: str | None = None,
    limit: Limit = DEFAULT_LIMIT,
) -> Page[schemas.GroupBuyOut]:
    rows, next_cursor = service.list_progress(uow, actor, status=status, cursor=cursor, limit=limit)
    return Page(items=[schemas.GroupBuyOut.of(p) for p in rows], next_cursor=next_cursor)


@router.get(
    "/group-buys/{group_buy_id}",
    response_model=schemas.GroupBuyOut,
    summary="A group buy's live progress: units, tier reached, units to the next tier",
    responses=_PROBLEMS,
)
def get_group_buy(group_buy_id: str, uow: UoW, actor: Reader) -> schemas.GroupBuyOut:
    return schemas.GroupBuyOut.of(service.progress(uow, actor, group_buy_id))


@router.post(
    "/group-buys/{group_buy_id}/cancel",
    response_model=schemas.CloseOut,
    summary="Cancel a campaign before it closes: every paid order is refunded in full",
    responses=_PROBLEMS,
)
def cancel(group_buy_id: str, uow: UoW, actor: Manager, bank: Gateway) -> schemas.CloseOut:
    settled, run = closing.cancel(uow, bank, actor, group_buy_id)
    return schemas.CloseOut.of(service.progress(uow, actor, group_buy_id), settled, run)


@router.post(
    "/group-buys/{group_buy_id}/close",
    response_model=schemas.CloseOut,
    summary="Close a campaign whose window has ended, now (the bank's staff; the job does it too)",
    responses={**_PROBLEMS, 403: {"description": "A partner's principal: closing is the bank's"}},
)
def close(group_buy_id: str, uow: UoW, actor: Manager, bank: Gateway) -> schemas.CloseOut:
    if actor.is_org_bound:
        raise Forbidden(_("Closing a group buy is the bank's: its job closes every campaign due."))
    settled, run = closing.close_now(uow, bank, actor, group_buy_id)
    return schemas.CloseOut.of(service.progress(uow, actor, group_buy_id), settled, run)


@router.get(
    "/group-buys/{group_buy_id}/purchase-order",
    response_model=schemas.PurchaseOrderOut,
    summary="The aggregated purchase order for the partner's supplier (JSON, or CSV)",
    responses={
        **_PROBLEMS,
        200: {"content": {"text/csv": {}}, "description": "JSON, or CSV with format=csv"},
    },
)
def purchase_order(
    group_buy_id: str,
    uow: UoW,
    actor: Manager,
    format: Literal["json", "csv"] | None = None,
    accept: Annotated[str | None, Header()] = None,
) -> Response | schemas.PurchaseOrderOut:
    order = po.purchase_order(uow, actor, group_buy_id)
    wants_csv = format == "csv" or (format is None and "text/csv" in (accept or ""))
    if wants_csv:
        return Response(
            po.as_csv(order),
            media_type="text/csv; charset=utf-8",
            headers={
                "Content-Disposition": f'attachment; filename="{order.group_buy_id}-purchase-order.csv"'
            },
        )
    return schemas.PurchaseOrderOut.of(order)
