"""My rewards: card-linked cashback and points, each refund's clawback explained against the
purchase it reverses, the totals, and my redemptions at the counter."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from babel.dates import format_date
from babel.numbers import format_decimal
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from beyondbank.alliance import service as alliance
from beyondbank.benefits import service as benefits
from beyondbank.cards import service as cards
from beyondbank.cards.models import CardReward
from beyondbank.deps import UoW
from beyondbank.web.i18n import _
from beyondbank.web.pages import render
from beyondbank.web.session import CustomerPage
from beyondbank.web.templating import money

router = APIRouter(include_in_schema=False)

# Purchases per page; each may carry a few refunds beneath it.
PAGE_SIZE = 20
REDEMPTIONS_SHOWN = 20


def local_day(at: datetime, timezone: str) -> date:
    return at.astimezone(ZoneInfo(timezone)).date()


def clawback_words(
    clawback: CardReward, merchant: str, timezone: str, locale: str = "en_GB"
) -> str:
    """A clawback in words: "Refund of £12.00 at X on 3 Nov 2026: £0.60 cashback taken back"."""
    refund = money(clawback.txn_amount_minor, clawback.currency, locale)
    when = format_date(local_day(clawback.txn_time, timezone), "medium", locale=locale)
    cash = money(clawback.amount_minor, clawback.currency, locale)
    points = format_decimal(clawback.points, locale=locale)
    if clawback.amount_minor and clawback.points:
        taken = _("%(cash)s cashback and %(points)s points taken back", cash=cash, points=points)
    elif clawback.points:
        taken = _("%(points)s points taken back", points=points)
    else:
        taken = _("%(cash)s cashback taken back", cash=cash)
    return _(
        "Refund of %(amount)s at %(merchant)s on %(day)s: %(taken)s",
        amount=refund,
        merchant=merchant,
        day=when,
        taken=taken,
    )


@router.get("/app/rewards", response_class=HTMLResponse)
def my_rewards(
    request: Request, uow: UoW, principal: CustomerPage, cursor: str | None = None
) -> Response:
    mine = cards.my_card_rewards(uow, principal, cursor=cursor, limit=PAGE_SIZE)
    redeemed = benefits.my_redemptions(uow, principal, limit=REDEMPTIONS_SHOWN)
    titles = benefits.benefits_by_ids(uow, {r.benefit_id for r in redeemed})
    merchants = alliance.merchants_by_ids(uow, {r.merchant_id for r in redeemed})
    context = {
        "member": benefits.member_of(uow, principal),
        "rewards": mine,
        "redemptions": [
            (r, titles[r.benefit_id].title, merchants[r.merchant_id].trading_name) for r in redeemed
        ],
        "cursor": cursor,
        "clawback_words": clawback_words,
    }
    return render(request, "customer/rewards.html", context, principal=principal)
