"""One party's settlement periods and their statements, with the CSV and PDF downloads the API
serves (the same service functions), for the merchant's portal and the partner's alike: each
mounts `statements_router` with its own guard, layout and title; another party's is a 404."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from beyondbank.core.authz import Principal
from beyondbank.core.http import attachment
from beyondbank.core.uow import UnitOfWork
from beyondbank.deps import SettingsDep, UoW
from beyondbank.settlement import contracts, periods
from beyondbank.web.console.params import or_none
from beyondbank.web.pages import render

PAGE_SIZE = 50


def statements_router(
    prefix: str, reader: Callable[..., Principal], *, layout: str, title: str
) -> APIRouter:
    """`{prefix}/statements` and its `.csv` and `.pdf` downloads, for whoever `reader` (the
    portal's page guard asking for `settlement:read`) lets in; the page in `layout` under
    `title` (marked for translation, said in the viewer's language)."""
    router = APIRouter(prefix=prefix, include_in_schema=False)

    @router.get("/statements", response_class=HTMLResponse)
    def statements_page(
        request: Request,
        uow: UoW,
        principal: Principal = Depends(reader),
        cursor: str | None = None,
    ) -> Response:
        context = _periods(uow, principal, cursor) | {
            "layout": layout,
            "title": title,
            "base": f"{prefix}/statements",
        }
        return render(request, "statements.html", context, principal=principal)

    @router.get("/statements/{period_id}.csv")
    def statement_csv(
        period_id: str, uow: UoW, settings: SettingsDep, principal: Principal = Depends(reader)
    ) -> Response:
        return _download(uow, principal, period_id, "csv", settings.bank_name)

    @router.get("/statements/{period_id}.pdf")
    def statement_pdf(
        period_id: str, uow: UoW, settings: SettingsDep, principal: Principal = Depends(reader)
    ) -> Response:
        return _download(uow, principal, period_id, "pdf", settings.bank_name)

    return router


def _periods(uow: UnitOfWork, principal: Principal, cursor: str | None) -> dict[str, Any]:
    rows, next_cursor = periods.list_periods(
        uow, principal, periods.PeriodFilters(), cursor=or_none(cursor), limit=PAGE_SIZE
    )
    owners = contracts.contracts_by_ids(uow, {p.contract_id for p in rows})
    stated = periods.statement_ids(uow, {p.id for p in rows})
    return {
        # Newest period first: the one a party looks for is last month's.
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


def _download(
    uow: UnitOfWork, principal: Principal, period_id: str, kind: str, bank_name: str
) -> Response:
    file = periods.statement_file(uow, principal, period_id, kind, bank_name=bank_name)
    return attachment(file.body, file.media_type, file.filename)
