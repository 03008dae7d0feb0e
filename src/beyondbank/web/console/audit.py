"""The bank staff's console: programme overview, circles, merchants, applications, benefits,
relationships and the audit trail."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from beyondbank.core import audit
from beyondbank.core.authz import Permission, Principal
from beyondbank.deps import UoW
from beyondbank.web.pages import render
from beyondbank.web.session import page_requires

router = APIRouter(prefix="/console", include_in_schema=False)

AuditReader = Annotated[Principal, Depends(page_requires(Permission.AUDIT_READ))]


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
        {"events": events, "filters": filters, "next_cursor": next_cursor, "query": query},
        principal=principal,
    )


def vars_of(filters: audit.TrailFilter) -> dict[str, str | None]:
    return {
        "object_type": filters.object_type,
        "object_id": filters.object_id,
        "actor_id": filters.actor_id,
        "action": filters.action,
    }
