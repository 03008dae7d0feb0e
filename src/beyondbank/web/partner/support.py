"""The partner's support tickets, newest first, with those past a response-time target marked
overdue (the same overdue list as the API: the targets missed and by how long)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from beyondbank.commerce.models import TicketStatus
from beyondbank.commerce.support import service as support
from beyondbank.deps import UoW
from beyondbank.web.console.params import or_none
from beyondbank.web.pages import render
from beyondbank.web.partner.guards import SupportReader

router = APIRouter(prefix="/partner", include_in_schema=False)

PAGE_SIZE = 50


@router.get("/support", response_class=HTMLResponse)
def tickets_page(
    request: Request,
    uow: UoW,
    principal: SupportReader,
    status: str | None = None,
    cursor: str | None = None,
) -> Response:
    chosen = TicketStatus(status) if status in {s.value for s in TicketStatus} else None
    rows, next_cursor = support.list_tickets(
        uow,
        principal,
        support.TicketFilters(status=chosen),
        cursor=or_none(cursor),
        limit=PAGE_SIZE,
    )
    late = {o.ticket.id: o for o in support.overdue(uow, principal, limit=500)}
    context: dict[str, Any] = {
        # Overdue first (the latest first, as the overdue list orders them), then the rest.
        "rows": sorted(
            ((t, late.get(t.id)) for t in rows),
            key=lambda row: row[1] is None,
        ),
        "overdue_count": len(late),
        "statuses": list(TicketStatus),
        "chosen": chosen.value if chosen else "",
        "next_cursor": next_cursor,
        "cursor": cursor,
        "query": f"status={chosen.value}" if chosen else "",
    }
    return render(request, "partner/tickets.html", context, principal=principal)
