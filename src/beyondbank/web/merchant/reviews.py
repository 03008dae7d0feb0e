"""The merchant's rating as the bank recorded it: today's review score and count, and, when there
is history, how the score moved at each recording (a server-drawn chart with its data table)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from beyondbank.alliance import merchants as merchant_cases
from beyondbank.alliance import service as alliance
from beyondbank.deps import UoW
from beyondbank.web.i18n import format_locale
from beyondbank.web.merchant.guards import ProfileReader, merchant_id_of
from beyondbank.web.pages import render
from beyondbank.web.templating import day

router = APIRouter(prefix="/merchant", include_in_schema=False)

TOP_SCORE = Decimal(5)


@dataclass(frozen=True, slots=True)
class Bar:
    label: str
    value: Decimal
    fraction: float


@router.get("/reviews", response_class=HTMLResponse)
def reviews_page(request: Request, uow: UoW, principal: ProfileReader) -> Response:
    merchant = alliance.merchant_by_id(uow, merchant_id_of(principal))
    history = merchant_cases.review_history(uow, merchant)
    locale = format_locale()
    bars = [
        Bar(day(r.at, locale), r.score, float(r.score / TOP_SCORE))
        for r in history
        if r.score is not None
    ]
    context: dict[str, Any] = {
        "merchant": merchant,
        "history": list(reversed(history)),
        # One recording is a figure, not a trend: the chart shows from two.
        "bars": bars if len(bars) > 1 else [],
    }
    return render(request, "merchant/reviews.html", context, principal=principal)
