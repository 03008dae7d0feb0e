"""The partner's support tickets, newest first, with those past a response-time target marked
overdue (the same overdue list as the API: the targets missed and by how long); one ticket with
its messages and the partner's reply, written by the support service as through the API (so the
customer and the bank see it, and a first answer meets the first-response target)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from beyondbank.commerce.models import Order, TicketStatus
from beyondbank.commerce.support import service as support
from beyondbank.core.authz import Permission, Principal, can
from beyondbank.core.errors import Problem
from beyondbank.core.uow import UnitOfWork
from beyondbank.deps import UoW
from beyondbank.web.console.params import or_none
from beyondbank.web.forms import Form, PostedForm
from beyondbank.web.i18n import _
from beyondbank.web.pages import render
from beyondbank.web.partner.guards import SupportReader, SupportWriter
from beyondbank.web.session import CsrfChecked, flash

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


@router.get("/support/{ticket_id}", response_class=HTMLResponse)
def ticket_page(request: Request, ticket_id: str, uow: UoW, principal: SupportReader) -> Response:
    return _ticket_page(request, uow, principal, ticket_id)


def _ticket_page(
    request: Request,
    uow: UnitOfWork,
    principal: Principal,
    ticket_id: str,
    *,
    form: Form | None = None,
    status_code: int = 200,
) -> Response:
    ticket = support.get_ticket(uow, principal, ticket_id)  # another partner's: a 404
    order = uow.session.get(Order, ticket.order_id) if ticket.order_id is not None else None
    late = next(
        (o for o in support.overdue(uow, principal, limit=500) if o.ticket.id == ticket.id), None
    )
    context: dict[str, Any] = {
        "ticket": ticket,
        "order_ref": order.public_id if order else None,
        "messages": support.messages_of(uow, ticket),
        "late": late,
        "form": form or Form("reply"),
        "can_reply": ticket.status not in (TicketStatus.RESOLVED, TicketStatus.CLOSED)
        and can(principal, Permission.SUPPORT_WRITE),
    }
    return render(
        request, "partner/ticket.html", context, principal=principal, status_code=status_code
    )


@router.post(
    "/support/{ticket_id}/messages", response_class=HTMLResponse, dependencies=[CsrfChecked]
)
def reply(
    request: Request, ticket_id: str, uow: UoW, principal: SupportWriter, posted: PostedForm
) -> Response:
    """The partner's answer; a refused one (empty, too long, a ticket resolved or closed by now)
    shows the ticket again with the reason and what was typed, and nothing is written."""
    form = Form("reply", values=posted.typed())
    try:
        support.post_message(uow, principal, ticket_id, form.value("body"))
    except Problem as problem:
        uow.rollback()
        if problem.status == 404:
            raise
        form.absorb(problem, ("body",))
        return _ticket_page(
            request, uow, principal, ticket_id, form=form, status_code=problem.status
        )
    flash(request, _("Your answer is sent."))
    return RedirectResponse(f"/partner/support/{ticket_id}", status_code=303)
