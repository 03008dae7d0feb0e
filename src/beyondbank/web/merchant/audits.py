"""The merchant's audit visit results: each visit to its locations (when, where, the outcome, what
was found and the prices seen) and what it must put right by when. The auditor is not named: a
mystery shopper stays anonymous."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from beyondbank.alliance import audits
from beyondbank.alliance import service as alliance
from beyondbank.deps import SettingsDep, UoW
from beyondbank.web import lookups
from beyondbank.web.console.params import or_none
from beyondbank.web.i18n import format_locale
from beyondbank.web.merchant.guards import VisitReader, merchant_id_of
from beyondbank.web.pages import render
from beyondbank.web.visits import findings_bars, visit_rows

router = APIRouter(prefix="/merchant", include_in_schema=False)

PAGE_SIZE = 10


@router.get("/audits", response_class=HTMLResponse)
def audit_results(
    request: Request,
    uow: UoW,
    settings: SettingsDep,
    principal: VisitReader,
    cursor: str | None = None,
) -> Response:
    merchant = alliance.merchant_by_id(uow, merchant_id_of(principal))
    visits, next_cursor = audits.list_visits(
        uow, principal, audits.VisitFilter(), cursor=or_none(cursor), limit=PAGE_SIZE
    )
    today = lookups.bank_today(uow.clock.now(), settings)
    history = audits.visit_history(uow, merchant)
    return render(
        request,
        "merchant/audits.html",
        {
            "rows": visit_rows(uow, visits, today, show_auditor=False),
            "bars": findings_bars(history, format_locale()) if len(history) > 1 else [],
            "counts": audits.outcome_counts(uow, merchant),
            "next_cursor": next_cursor,
            "cursor": cursor,
            "query": "",
        },
        principal=principal,
    )
