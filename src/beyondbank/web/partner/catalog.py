"""The partner's stock levels and its group buys with their live progress, and the aggregated
purchase order of a campaign that succeeded, as the CSV the API serves (the same service)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from beyondbank.commerce.catalog import service as catalog
from beyondbank.commerce.groupbuy import purchase_order as po
from beyondbank.commerce.groupbuy import service as groupbuy
from beyondbank.commerce.models import CampaignStatus
from beyondbank.core.authz import Permission, can
from beyondbank.core.http import attachment
from beyondbank.deps import UoW
from beyondbank.web.console.params import or_none
from beyondbank.web.pages import render
from beyondbank.web.partner.guards import GroupBuyManager, ShopReader

router = APIRouter(prefix="/partner", include_in_schema=False)

PAGE_SIZE = 50
LOW_STOCK = 5  # units free to sell at or below which a product is shown as low


@router.get("/stock", response_class=HTMLResponse)
def stock_page(
    request: Request,
    uow: UoW,
    principal: ShopReader,
    low: str | None = None,
    cursor: str | None = None,
) -> Response:
    only_low = low == "1"
    rows, next_cursor = catalog.stock_levels(
        uow,
        principal,
        low_at=LOW_STOCK if only_low else None,
        cursor=or_none(cursor),
        limit=PAGE_SIZE,
    )
    context: dict[str, Any] = {
        "rows": [(p, p.stock_on_hand - p.stock_reserved) for p in rows],
        "low_at": LOW_STOCK,
        "only_low": only_low,
        "next_cursor": next_cursor,
        "cursor": cursor,
        "query": "low=1" if only_low else "",
    }
    return render(request, "partner/stock.html", context, principal=principal)


@router.get("/group-buys", response_class=HTMLResponse)
def group_buys_page(
    request: Request, uow: UoW, principal: ShopReader, cursor: str | None = None
) -> Response:
    rows, next_cursor = groupbuy.list_progress(
        uow, principal, cursor=or_none(cursor), limit=PAGE_SIZE
    )
    context: dict[str, Any] = {
        "rows": rows,
        "can_download": can(principal, Permission.GROUPBUY_MANAGE),
        "succeeded": CampaignStatus.SUCCEEDED.value,
        "next_cursor": next_cursor,
        "cursor": cursor,
        "query": "",
    }
    return render(request, "partner/group_buys.html", context, principal=principal)


@router.get("/group-buys/{group_buy_id}/purchase-order.csv")
def purchase_order_csv(group_buy_id: str, uow: UoW, principal: GroupBuyManager) -> Response:
    order = po.purchase_order(uow, principal, group_buy_id)
    return attachment(
        po.as_csv(order).encode(),
        "text/csv; charset=utf-8",
        f"{order.group_buy_id}-purchase-order.csv",
    )
