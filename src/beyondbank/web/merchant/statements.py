"""This merchant's settlement periods and their statements, with the CSV and PDF downloads the API
serves (the same service functions); another merchant's statement is a 404."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from beyondbank.core.authz import Principal
from beyondbank.core.uow import UnitOfWork
from beyondbank.deps import SettingsDep, UoW
from beyondbank.settlement import contracts, exports, periods
from beyondbank.settlement.models import SettlementPeriod, SettlementStatement
from beyondbank.web.console.params import or_none
from beyondbank.web.merchant.guards import StatementReader
from beyondbank.web.pages import render

router = APIRouter(prefix="/merchant", include_in_schema=False)

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
        # Newest period first: the one a merchant looks for is last month's.
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
    return render(request, "merchant/statements.html", context, principal=principal)


def _statement(
    uow: UnitOfWork, principal: Principal, period_id: str
) -> tuple[SettlementPeriod, SettlementStatement, dict[str, Any]]:
    period = periods.get_period(uow, principal, period_id)
    statement = periods.statement_of(uow, period)
    content: dict[str, Any] = json.loads(statement.content)
    return period, statement, content


def _download(body: bytes, media_type: str, filename: str) -> Response:
    return Response(
        body,
        media_type=media_type,
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@router.get("/statements/{period_id}.csv")
def statement_csv(period_id: str, uow: UoW, principal: StatementReader) -> Response:
    period, statement, content = _statement(uow, principal, period_id)
    body = exports.statement_csv(statement.public_id, statement.sha256, content)
    return _download(body, "text/csv; charset=utf-8", f"statement-{period.public_id}.csv")


@router.get("/statements/{period_id}.pdf")
def statement_pdf(
    period_id: str, uow: UoW, principal: StatementReader, settings: SettingsDep
) -> Response:
    period, statement, content = _statement(uow, principal, period_id)
    body = exports.statement_pdf(
        statement.public_id, statement.sha256, content, bank_name=settings.bank_name
    )
    return _download(body, "application/pdf", f"statement-{period.public_id}.pdf")
