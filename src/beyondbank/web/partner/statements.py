"""The partner's commission statements: its settlement periods with what each settled, and the
CSV and PDF the API serves (the same service functions); another party's is a 404."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from beyondbank.core.http import attachment
from beyondbank.deps import SettingsDep, UoW
from beyondbank.settlement import contracts, periods
from beyondbank.web.console.params import or_none
from beyondbank.web.pages import render
from beyondbank.web.partner.guards import StatementReader

router = APIRouter(prefix="/partner", include_in_schema=False)

PAGE_SIZE = 50


@router.get("/statements", response_class=HTMLResponse)
def statements_page(
    request: Request, uow: UoW, principal: StatementReader, cursor: str | None = None
) -> Response:
    rows, next_cursor = periods.list_periods(
        uow, principal, periods.PeriodFilters(), cursor=or_none(cursor), limit=PAGE_SIZE
    )
    owners = contracts.contracts_by_ids(uow, {p.contract_id for p in rows})
    stated = periods.statement_ids(uow, {p.id for p in rows})
    context: dict[str, Any] = {
        "rows": [
            {
                "period": p,
                "contract": owners[p.contract_id],
                "last_day": p.ends_on - timedelta(days=1),
                "statement_id": stated.get(p.id),
            }
            for p in sorted(rows, key=lambda p: p.end_at, reverse=True)
        ],
        "next_cursor": next_cursor,
        "cursor": cursor,
        "query": "",
    }
    return render(request, "partner/statements.html", context, principal=principal)


@router.get("/statements/{period_id}.csv")
def statement_csv(
    period_id: str, uow: UoW, principal: StatementReader, settings: SettingsDep
) -> Response:
    file = periods.statement_file(uow, principal, period_id, "csv", bank_name=settings.bank_name)
    return attachment(file.body, file.media_type, file.filename)


@router.get("/statements/{period_id}.pdf")
def statement_pdf(
    period_id: str, uow: UoW, principal: StatementReader, settings: SettingsDep
) -> Response:
    file = periods.statement_file(uow, principal, period_id, "pdf", bank_name=settings.bank_name)
    return attachment(file.body, file.media_type, file.filename)
