"""Support tickets under /shop/support and the NPS survey (/shop/orders/{id}/nps, /shop/nps)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Annotated, Any, Literal, cast

from fastapi import APIRouter, Depends, Query

from beyondbank.commerce import service as partners
from beyondbank.commerce.models import Order, SupportTicket, TicketStatus
from beyondbank.commerce.support import nps, schemas, service
from beyondbank.core.authz import Permission, Principal
from beyondbank.core.pagination import DEFAULT_LIMIT, MAX_LIMIT, Page
from beyondbank.core.uow import UnitOfWork
from beyondbank.deps import UoW, requires
from beyondbank.identity import service as identity

router = APIRouter(prefix="/shop", tags=["shop: support and NPS"])

Reader = Annotated[Principal, Depends(requires(Permission.SUPPORT_READ))]
Writer = Annotated[Principal, Depends(requires(Permission.SUPPORT_WRITE))]
Respondent = Annotated[Principal, Depends(requires(Permission.ORDERS_CREATE))]
ShopReader = Annotated[Principal, Depends(requires(Permission.SHOP_READ))]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]

_PROBLEMS: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such ticket or order, or not yours"},
    409: {"description": "Not allowed in its current state (`current_status`); answered already"},
    422: {"description": "Invalid fields: an empty message, a score outside 0–10"},
}


# -- tickets -------------------------------------------------------------------------------------


@router.post(
    "/support/tickets",
    response_model=schemas.TicketDetailOut,
    status_code=201,
    summary="Open a ticket with a partner, about an order or in general (customers)",
    responses=_PROBLEMS,
)
def open_ticket(body: schemas.TicketIn, uow: UoW, actor: Writer) -> schemas.TicketDetailOut:
    ticket = service.open_ticket(uow, actor, service.TicketIn(**body.model_dump()))
    return _detail(uow, actor, ticket)


@router.get(
    "/support/tickets",
    response_model=Page[schemas.TicketOut],
    summary="Tickets, newest first: a customer's own, a partner's own, every one for the bank",
)
def list_tickets(
    uow: UoW,
    actor: Reader,
    cursor: str | None = None,
    limit: Limit = DEFAULT_LIMIT,
    status: TicketStatus | None = None,
    partner_id: str | None = None,
    order_id: str | None = None,
) -> Page[schemas.TicketOut]:
    filters = service.TicketFilters(status=status, partner_id=partner_id, order_id=order_id)
    rows, next_cursor = service.list_tickets(uow, actor, filters, cursor=cursor, limit=limit)
    return Page(items=_tickets_out(uow, actor, rows), next_cursor=next_cursor)


@router.get(
    "/support/tickets/{ticket_id}",
    response_model=schemas.TicketDetailOut,
    summary="A ticket and its messages",
    responses=_PROBLEMS,
)
def get_ticket(ticket_id: str, uow: UoW, actor: Reader) -> schemas.TicketDetailOut:
    return _detail(uow, actor, service.get_ticket(uow, actor, ticket_id))


@router.post(
    "/support/tickets/{ticket_id}/messages",
    response_model=schemas.TicketDetailOut,
    status_code=201,
    summary="Write on a ticket: a partner's answer, the customer's reply, or the bank's word",
    responses=_PROBLEMS,
)
def post_message(
    ticket_id: str, body: schemas.MessageIn, uow: UoW, actor: Writer
) -> schemas.TicketDetailOut:
    service.post_message(uow, actor, ticket_id, body.body)
    return _detail(uow, actor, service.get_ticket(uow, actor, ticket_id))


@router.post(
    "/support/tickets/{ticket_id}/resolve",
    response_model=schemas.TicketDetailOut,
    summary="Mark a ticket resolved (the customer, the partner or the bank)",
    responses=_PROBLEMS,
)
def resolve(ticket_id: str, uow: UoW, actor: Writer) -> schemas.TicketDetailOut:
    return _detail(uow, actor, service.resolve(uow, actor, ticket_id))


@router.post(
    "/support/tickets/{ticket_id}/close",
    response_model=schemas.TicketDetailOut,
    summary="Close a resolved ticket",
    responses=_PROBLEMS,
)
def close(ticket_id: str, uow: UoW, actor: Writer) -> schemas.TicketDetailOut:
    return _detail(uow, actor, service.close(uow, actor, ticket_id))


@router.get(
    "/support/overdue",
    response_model=schemas.OverdueOut,
    summary="Tickets past their response-time targets, the latest first (bank: all; partner: own)",
)
def overdue(
    uow: UoW, actor: Reader, limit: Annotated[int, Query(ge=1, le=500)] = 100
) -> schemas.OverdueOut:
    found = service.overdue(uow, actor, limit=limit)
    outs = _tickets_out(uow, actor, [o.ticket for o in found])
    items = [
        schemas.OverdueTicketOut(
            **out.model_dump(),
            breaches=[
                schemas.BreachOut(
                    target=cast(Literal["first_response", "resolution"], b.target),
                    due_at=b.due_at,
                    late_by_minutes=int(b.late_by.total_seconds() // 60),
                )
                for b in o.breaches
            ],
        )
        for o, out in zip(found, outs, strict=True)
    ]
    return schemas.OverdueOut(as_of=uow.clock.now(), items=items)


# -- NPS -----------------------------------------------------------------------------------------


@router.post(
    "/orders/{order_id}/nps",
    response_model=schemas.NpsOut,
    status_code=201,
    summary="Answer the NPS survey for a delivered order, once (customers)",
    responses=_PROBLEMS,
)
def answer_nps(order_id: str, body: schemas.NpsIn, uow: UoW, actor: Respondent) -> schemas.NpsOut:
    done = nps.answer(uow, actor, order_id, body.score, body.comment)
    return schemas.NpsOut(
        order_id=done.order.public_id,
        partner_id=done.partner.public_id,
        score=done.response.score,
        category=cast(
            Literal["promoter", "passive", "detractor"], nps.category(done.response.score)
        ),
        comment=done.response.comment,
        answered_at=done.response.answered_at,
    )


@router.get(
    "/nps/summary",
    response_model=schemas.NpsSummaryOut,
    summary="NPS by partner and by month (the bank: every partner; a partner: its own)",
)
def nps_summary(
    uow: UoW,
    actor: ShopReader,
    since: date | None = None,
    until: date | None = None,
    partner_id: str | None = None,
) -> schemas.NpsSummaryOut:
    found = nps.summary(uow, actor, since=since, until=until, partner_public_id=partner_id)
    return schemas.NpsSummaryOut(
        overall=_tally(found.overall),
        by_partner=[
            schemas.PartnerTallyOut(
                partner_id=pid, partner_name=found.names[pid], **_tally(t).model_dump()
            )
            for pid, t in sorted(found.by_partner.items(), key=lambda kv: found.names[kv[0]])
        ],
        by_month=[
            schemas.MonthTallyOut(month=month, **_tally(t).model_dump())
            for month, t in sorted(found.by_month.items())
        ],
    )


# -- response shapes -----------------------------------------------------------------------------


def _tally(t: nps.Tally) -> schemas.TallyOut:
    return schemas.TallyOut(
        responses=t.responses,
        promoters=t.promoters,
        passives=t.passives,
        detractors=t.detractors,
        nps=t.score,
    )


def _tickets_out(
    uow: UnitOfWork, actor: Principal, tickets: Sequence[SupportTicket]
) -> list[schemas.TicketOut]:
    partner_ids = partners.partner_public_ids(uow, {t.partner_id for t in tickets})
    order_ids = {t.order_id for t in tickets if t.order_id is not None}
    orders = {
        o.id: o.public_id for o in (uow.session.get(Order, i) for i in order_ids) if o is not None
    }
    # A partner learns nothing about the customer but what the ticket says.
    show_customer = service.side_of(actor) != service.Side.PARTNER
    customers = (
        {
            i: c.public_id
            for i, c in identity.customers_by_ids(uow, {t.customer_id for t in tickets}).items()
        }
        if show_customer
        else {}
    )
    return [
        schemas.TicketOut(
            id=t.public_id,
            partner_id=partner_ids[t.partner_id],
            order_id=orders.get(t.order_id) if t.order_id else None,
            customer_id=customers.get(t.customer_id),
            subject=t.subject,
            status=t.status,
            opened_at=t.opened_at,
            first_response_due_at=t.first_response_due_at,
            first_responded_at=t.first_responded_at,
            resolution_due_at=t.resolution_due_at,
            resolved_at=t.resolved_at,
            updated_at=t.updated_at,
        )
        for t in tickets
    ]


def _detail(uow: UnitOfWork, actor: Principal, ticket: SupportTicket) -> schemas.TicketDetailOut:
    out = _tickets_out(uow, actor, [ticket])[0]
    messages = [
        schemas.MessageOut(
            author=cast(Literal["customer", "partner", "bank"], m.author_kind),
            body=m.body,
            sent_at=m.sent_at,
        )
        for m in service.messages_of(uow, ticket)
    ]
    return schemas.TicketDetailOut(**out.model_dump(), messages=messages)
