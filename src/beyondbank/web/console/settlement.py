"""Settlement pages: the settlement periods with their status and net, the payout runs that paid
them, and one period's statement with its CSV and PDF downloads (the settlement service's own
exports), for the staff whose role reads settlement."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from beyondbank.core.http import attachment
from beyondbank.core.uow import UnitOfWork
from beyondbank.deps import SettingsDep, UoW
from beyondbank.settlement import contracts, payouts, periods
from beyondbank.settlement.models import (
    CommissionContract,
    PayoutLineStatus,
    PayoutRun,
    PeriodStatus,
    SettlementPeriod,
    SettlementStatement,
)
from beyondbank.web.console.guards import SettlementReader
from beyondbank.web.console.params import choice, or_none
from beyondbank.web.pages import render

router = APIRouter(prefix="/console", include_in_schema=False)

PAGE_SIZE = 50
RUNS_SHOWN = 20


@dataclass(frozen=True, slots=True)
class PeriodRow:
    period: SettlementPeriod
    contract: CommissionContract
    last_day: date  # periods end at the next day's midnight: people read the last day
    statement_id: str | None
    paid_in_run: str | None


@dataclass(frozen=True, slots=True)
class RunRow:
    run: PayoutRun
    paid: int
    exceptions: int
    control_sum_minor: int


def period_rows(uow: UnitOfWork, rows: list[SettlementPeriod]) -> list[PeriodRow]:
    """The periods with their contracts, statements and payouts: three lookups for the list."""
    owners = contracts.contracts_by_ids(uow, {p.contract_id for p in rows})
    stated = periods.statement_ids(uow, {p.id for p in rows})
    paid = payouts.paid_runs(uow, {p.id for p in rows})
    return [
        PeriodRow(
            period=p,
            contract=owners[p.contract_id],
            last_day=p.ends_on - timedelta(days=1),
            statement_id=stated.get(p.id),
            paid_in_run=paid.get(p.id),
        )
        for p in rows
    ]


def run_rows(runs: list[PayoutRun]) -> list[RunRow]:
    rows = []
    for run in runs:
        paid = payouts.paid_lines(run)
        rows.append(
            RunRow(
                run=run,
                paid=len(paid),
                exceptions=sum(
                    1 for line in run.lines if line.status is PayoutLineStatus.EXCEPTION
                ),
                control_sum_minor=sum(line.amount_minor for line in paid),
            )
        )
    return rows


def net_totals(rows: list[PeriodRow]) -> dict[str, tuple[int, int, int]]:
    """Per currency, for the closed periods listed: (owed to the parties, owed by them, net)."""
    totals: dict[str, tuple[int, int, int]] = {}
    for row in rows:
        net = row.period.net_minor
        if net is None:
            continue
        to_parties, from_parties, all_net = totals.get(row.contract.currency, (0, 0, 0))
        totals[row.contract.currency] = (
            to_parties + max(net, 0),
            from_parties + max(-net, 0),
            all_net + net,
        )
    return dict(sorted(totals.items()))


@router.get("/settlement", response_class=HTMLResponse)
def settlement_list(
    request: Request,
    uow: UoW,
    principal: SettlementReader,
    status: str | None = None,
    cursor: str | None = None,
) -> Response:
    filters = periods.PeriodFilters(status=choice(PeriodStatus, status, "query.status"))
    found, next_cursor = periods.list_periods(
        uow, principal, filters, cursor=or_none(cursor), limit=PAGE_SIZE
    )
    # Newest first: the period people look for is the one that just ended.
    rows = period_rows(uow, sorted(found, key=lambda p: (p.end_at, p.id), reverse=True))
    runs, _more = payouts.list_runs(uow, principal, cursor=None, limit=RUNS_SHOWN)
    return render(
        request,
        "console/settlement.html",
        {
            "rows": rows,
            "totals": net_totals(rows),
            "runs": run_rows(list(runs)),
            "statuses": list(PeriodStatus),
            "filters": {"status": status or ""},
            "next_cursor": next_cursor,
            "cursor": cursor,
            "query": urlencode({"status": status} if status else {}),
        },
        principal=principal,
    )


@router.get("/settlement/{period_id}", response_class=HTMLResponse)
def settlement_period(
    period_id: str, request: Request, uow: UoW, principal: SettlementReader
) -> Response:
    period = periods.get_period(uow, principal, period_id)
    row = period_rows(uow, [period])[0]
    content: dict[str, Any] | None = None
    statement: SettlementStatement | None = None
    if row.statement_id is not None:
        statement = periods.statement_of(uow, period)
        content = json.loads(statement.content)
    return render(
        request,
        "console/settlement_period.html",
        {"row": row, "statement": statement, "content": content},
        principal=principal,
    )


@router.get("/settlement/{period_id}/statement.csv")
def statement_csv(
    period_id: str, uow: UoW, principal: SettlementReader, settings: SettingsDep
) -> Response:
    file = periods.statement_file(uow, principal, period_id, "csv", bank_name=settings.bank_name)
    return attachment(file.body, file.media_type, file.filename)


@router.get("/settlement/{period_id}/statement.pdf")
def statement_pdf(
    period_id: str, uow: UoW, principal: SettlementReader, settings: SettingsDep
) -> Response:
    file = periods.statement_file(uow, principal, period_id, "pdf", bank_name=settings.bank_name)
    return attachment(file.body, file.media_type, file.filename)


@router.get("/settlement/runs/{run_id}/pain.001")
def payout_file(run_id: str, uow: UoW, principal: SettlementReader) -> Response:
    run = payouts.get_run(uow, principal, run_id)
    return attachment(
        payouts.pain001_of(uow, run), "application/xml", f"{run.public_id}.pain.001.xml"
    )
