"""The audit trail page: every change by staff, merchants and partner systems, filtered by the kind
of object, the actor, the action and a date range (days in the bank's time zone), newest first."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from beyondbank.core import audit
from beyondbank.deps import SettingsDep, UoW
from beyondbank.web.console.guards import AuditReader
from beyondbank.web.console.params import or_none
from beyondbank.web.forms import Form
from beyondbank.web.i18n import _
from beyondbank.web.pages import render
from beyondbank.web.templating import words

router = APIRouter(prefix="/console", include_in_schema=False)

PAGE_SIZE = 50
FILTER_FIELDS = ("object_type", "object_id", "actor_id", "action", "from", "to")


def _day(form: Form, name: str) -> date | None:
    """A day typed as YYYY-MM-DD (what a date input sends); an error beside the field if not."""
    typed = or_none(form.value(name))
    if typed is None:
        return None
    try:
        return date.fromisoformat(typed)
    except ValueError:
        form.errors[name] = _("Give a day as YYYY-MM-DD, e.g. 2026-11-01.")
        return None


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
    zone = ZoneInfo(settings.default_timezone)
    first, last = _day(form, "from"), _day(form, "to")
    if first and last and last < first:
        form.errors["to"] = _("The last day must come on or after the first.")
    filters = audit.TrailFilter(
        object_type=or_none(typed["object_type"]),
        object_id=or_none(typed["object_id"]),
        actor_id=or_none(typed["actor_id"]),
        action=or_none(typed["action"]),
        # Whole days in the bank's time zone: from the first day's midnight to the day after the last.
        since=datetime(first.year, first.month, first.day, tzinfo=zone) if first else None,
        until=(
            datetime(last.year, last.month, last.day, tzinfo=zone) + timedelta(days=1)
            if last
            else None
        ),
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
