"""The merchant's home page: my profile, my benefits and their status, today's redemptions at my
counters, and who my relationship manager is, with how to reach them."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from beyondbank.alliance import service as alliance
from beyondbank.benefits import redemptions, rules
from beyondbank.benefits import service as benefits
from beyondbank.core.authz import Permission, can
from beyondbank.core.pagination import MAX_LIMIT
from beyondbank.deps import UoW
from beyondbank.web import lookups
from beyondbank.web.pages import render
from beyondbank.web.session import MerchantPage

router = APIRouter(include_in_schema=False)

P = Permission
BENEFITS_SHOWN = 50


def local_day(now: datetime, timezone: str) -> tuple[datetime, datetime]:
    """Today in the merchant's time zone, as the instants it starts and ends."""
    zone = ZoneInfo(timezone)
    start = datetime.combine(now.astimezone(zone).date(), time(0), tzinfo=zone)
    end = datetime.combine(start.date() + timedelta(days=1), time(0), tzinfo=zone)
    return start, end


@router.get("/merchant", response_class=HTMLResponse)
def merchant_home(request: Request, uow: UoW, principal: MerchantPage) -> Response:
    assert principal.merchant_id is not None  # merchant pages are for merchant users only
    merchant = alliance.merchant_by_id(uow, principal.merchant_id)
    context: dict[str, Any] = {
        "merchant": merchant,
        "benefit_rows": [],
        "redemptions": [],
        "more_redemptions": False,
        "manager": None,
        "seats": [],
    }
    if can(principal, P.BENEFITS_READ):
        rows, _more = benefits.list_benefits(uow, principal, cursor=None, limit=BENEFITS_SHOWN)
        context["benefit_rows"] = [
            (b, rules.describe_reward(benefits.reward_of(b), b.currency)) for b in rows
        ]
    if can(principal, P.REDEMPTIONS_READ):
        start, end = local_day(uow.clock.now(), merchant.timezone)
        filters = redemptions.RedemptionFilters(redeemed_from=start, redeemed_to=end)
        today, more = redemptions.list_redemptions(
            uow, principal, filters, cursor=None, limit=MAX_LIMIT
        )
        titles = benefits.benefits_by_ids(uow, {r.benefit_id for r in today})
        context["redemptions"] = [(r, titles[r.benefit_id]) for r in reversed(today)]
        context["more_redemptions"] = more is not None
    manager_id = alliance.current_manager_id(uow, merchant.id)
    if manager_id is not None:
        context["manager"] = lookups.users(uow, [manager_id]).get(manager_id)
    if can(principal, P.CIRCLES_READ):
        circles = {c.id: c for c in lookups.all_circles(uow)}
        context["seats"] = [
            (seat, circles[seat.circle_id])
            for seat in alliance.held_seats(uow, merchant_id=merchant.id)
        ]
    return render(request, "merchant/home.html", context, principal=principal)
