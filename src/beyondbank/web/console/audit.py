"""The audit trail page: every change by staff, merchants and partner systems, filtered by the kind
of object, the actor, the action and a date range (days in the bank's time zone), newest first."""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from beyondbank.core import audit
from beyondbank.deps import SettingsDep, UoW
from beyondbank.web.console.guards import AuditReader
from beyondbank.web.console.params import day_range, or_none
from beyondbank.web.forms import Form
from beyondbank.web.pages import render
from beyondbank.web.templating import words

router = APIRouter(prefix="/console", include_in_schema=False)

PAGE_SIZE = 50
FILTER_FIELDS = ("object_type", "object_id", "actor_id", "action", "from", "to")


@router.get("/audit", response_class=HTMLResponse)
def audit_trail(
    request: Request,
    uow: UoW,
    settings: SettingsDep,
    principal: AuditReader,
    cursor: str | None = None,
) -> Response:
    typed = {name: request.query_params.get(name, "") for name in FILTER_FIELDS}
    form = Form("audit", values=typed)
    # Whole days in the bank's time zone.
    since, until = day_range(form, "from", "to", settings.default_timezone)
    filters = audit.TrailFilter(
        object_type=or_none(typed["object_type"]),
        object_id=or_none(typed["object_id"]),
        actor_id=or_none(typed["actor_id"]),
        action=or_none(typed["action"]),
        since=since,
        until=until,
    )
    events, next_cursor = (
        ([], None)
        if form.errors
        else audit.trail(uow.session, filters, cursor=or_none(cursor), limit=PAGE_SIZE)
    )
    return render(
        request,
        "console/audit.html",
        {
            "events": events,
            "form": form,
            "object_types": [(t, words(t)) for t in audit.object_types(uow.session)],
            "next_cursor": next_cursor,
            "cursor": cursor,
            "query": urlencode({k: v for k, v in typed.items() if v}),
        },
        principal=principal,
        status_code=422 if form.errors else 200,
    )
