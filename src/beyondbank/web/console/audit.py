"""The audit trail page: every change by staff, merchants and partner systems, with filters."""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from beyondbank.core import audit
from beyondbank.deps import UoW
from beyondbank.web.console.guards import AuditReader
from beyondbank.web.pages import render

router = APIRouter(prefix="/console", include_in_schema=False)


@router.get("/audit", response_class=HTMLResponse)
def audit_trail(
    request: Request,
    uow: UoW,
    principal: AuditReader,
    object_type: str | None = None,
    object_id: str | None = None,
    actor_id: str | None = None,
    action: str | None = None,
    cursor: str | None = None,
) -> Response:
    filters = audit.TrailFilter(
        object_type=object_type or None,
        object_id=object_id or None,
        actor_id=actor_id or None,
        action=action or None,
    )
    events, next_cursor = audit.trail(uow.session, filters, cursor=cursor, limit=50)
    query = urlencode({k: v for k, v in vars_of(filters).items() if v})
    return render(
        request,
        "console/audit.html",
        {
            "events": events,
            "filters": filters,
            "next_cursor": next_cursor,
            "cursor": cursor,
            "query": query,
        },
        principal=principal,
    )


def vars_of(filters: audit.TrailFilter) -> dict[str, str | None]:
    return {
        "object_type": filters.object_type,
        "object_id": filters.object_id,
        "actor_id": filters.actor_id,
        "action": filters.action,
    }
