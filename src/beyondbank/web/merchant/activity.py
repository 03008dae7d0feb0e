"""What happened at this merchant: voucher redemptions (by date range in the merchant's time zone
and by benefit, a page at a time) and the card-linked rewards and clawbacks of its customers'
card purchases."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from beyondbank.alliance import service as alliance
from beyondbank.benefits import redemptions
from beyondbank.benefits import service as benefits
from beyondbank.cards import service as cards
from beyondbank.core.errors import Problem
from beyondbank.core.pagination import MAX_LIMIT
from beyondbank.deps import UoW
from beyondbank.web.console.params import or_none
from beyondbank.web.forms import Form
from beyondbank.web.i18n import _
from beyondbank.web.merchant.guards import RedemptionReader, RewardReader, merchant_id_of
from beyondbank.web.pages import render

router = APIRouter(prefix="/merchant", include_in_schema=False)

PAGE_SIZE = 50
REWARD_KINDS = ("reward", "clawback")


def local_midnight(day: date, timezone: str) -> datetime:
    return datetime.combine(day, time(0), tzinfo=ZoneInfo(timezone))


def _day(form: Form, name: str) -> date | None:
    value = form.value(name).strip()
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        form.errors[name] = _("Give a date such as 2026-11-22.")
        return None


@router.get("/redemptions", response_class=HTMLResponse)
def redemptions_page(
    request: Request,
    uow: UoW,
    principal: RedemptionReader,
    start: str = "",
    end: str = "",
    benefit: str = "",
    cursor: str | None = None,
) -> Response:
    merchant = alliance.merchant_by_id(uow, merchant_id_of(principal))
    chosen = {"start": start, "end": end, "benefit": benefit}
    form = Form("filter", values=dict(chosen))
    first, last = _day(form, "start"), _day(form, "end")
    if first and last and last < first:
        form.errors["end"] = _("The last day comes before the first.")
    own, _more = benefits.list_benefits(uow, principal, limit=MAX_LIMIT)
    known = {b.id: b for b in own}
    context: dict[str, Any] = {
        "merchant": merchant,
        "form": form,
        "benefit_options": [(b.public_id, b.title) for b in own],
        "rows": [],
        "next_cursor": None,
        "cursor": cursor,
        "query": urlencode({k: v for k, v in chosen.items() if v}),
    }
    if form.errors:
        return render(
            request, "merchant/redemptions.html", context, principal=principal, status_code=422
        )
    filters = redemptions.RedemptionFilters(
        benefit_id=or_none(benefit),
        redeemed_from=local_midnight(first, merchant.timezone) if first else None,
        redeemed_to=(local_midnight(last + timedelta(days=1), merchant.timezone) if last else None),
    )
    try:
        rows, next_cursor = redemptions.list_redemptions(
            uow, principal, filters, cursor=or_none(cursor), limit=PAGE_SIZE
        )
    except Problem as problem:  # e.g. a benefit that is not this merchant's
        form.absorb(problem, ("benefit_id",))
        form.errors["benefit"] = form.errors.pop("benefit_id", problem.detail)
        return render(
            request,
            "merchant/redemptions.html",
            context,
            principal=principal,
            status_code=problem.status,
        )
    missing = {r.benefit_id for r in rows} - known.keys()
    known.update(benefits.benefits_by_ids(uow, missing))
    context["rows"] = [(r, known[r.benefit_id]) for r in rows]
    context["next_cursor"] = next_cursor
    return render(request, "merchant/redemptions.html", context, principal=principal)


@router.get("/rewards", response_class=HTMLResponse)
def rewards_page(
    request: Request,
    uow: UoW,
    principal: RewardReader,
    kind: str = "",
    cursor: str | None = None,
) -> Response:
    merchant = alliance.merchant_by_id(uow, merchant_id_of(principal))
    form = Form("filter", values={"kind": kind})
    context: dict[str, Any] = {
        "merchant": merchant,
        "form": form,
        "kind_options": [("reward", _("Rewards")), ("clawback", _("Clawbacks"))],
        "rows": [],
        "next_cursor": None,
        "cursor": cursor,
        "query": urlencode({"kind": kind} if kind else {}),
    }
    if kind and kind not in REWARD_KINDS:
        form.errors["kind"] = _("Choose rewards or clawbacks.")
        return render(
            request, "merchant/rewards.html", context, principal=principal, status_code=422
        )
    views, next_cursor = cards.list_rewards(
        uow, principal, kind=or_none(kind), cursor=or_none(cursor), limit=PAGE_SIZE
    )
    ids = {b for v in views for b in (v.reward.benefit_id, v.reward.points_benefit_id) if b}
    titles = {i: b.title for i, b in benefits.benefits_by_ids(uow, ids).items()}
    context["rows"] = [
        (
            v,
            titles.get(v.reward.benefit_id) if v.reward.benefit_id else None,
            titles.get(v.reward.points_benefit_id) if v.reward.points_benefit_id else None,
        )
        for v in views
    ]
    context["next_cursor"] = next_cursor
    return render(request, "merchant/rewards.html", context, principal=principal)
