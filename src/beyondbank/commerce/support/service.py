"""Support tickets: a customer asks a partner about an order, the partner answers, the bank sees all.

Who acts is one of three sides, from the principal: the **customer** (its own tickets only), the
**partner** (a partner's users and API clients: tickets with that partner only) and the **bank**
(staff, and the bank's own unbound systems: every ticket). Anything not visible answers 404.

Status moves by the transition table below: a partner's message answers the ticket, the
customer's reopens it, either resolves it, and a resolved ticket is closed. The bank may step in
with a message without moving the ticket. Response-time targets come from the partner
(`first_response_hours`, `resolution_hours`), fixed when the ticket opens. The partner hears of
every ticket and message that is not its own through a webhook (`ticket.*`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import and_, or_, select, true

from beyondbank.commerce import service as partners
from beyondbank.commerce.models import Order, Partner, SupportTicket, TicketMessage, TicketStatus
from beyondbank.commerce.webhooks.outbox import emit
from beyondbank.core import audit
from beyondbank.core.authz import Principal
from beyondbank.core.errors import (
    FieldError,
    Forbidden,
    InvalidInput,
    InvalidTransition,
    NotFound,
    invalid,
)
from beyondbank.core.i18n import _
from beyondbank.core.ids import new_public_id
from beyondbank.core.pagination import paginate
from beyondbank.core.uow import UnitOfWork

MAX_SUBJECT = 200
MAX_MESSAGE = 5_000


class Side(StrEnum):
    CUSTOMER = "customer"
    PARTNER = "partner"
    BANK = "bank"


class Action(StrEnum):
    CUSTOMER_MESSAGE = "customer_message"
    PARTNER_MESSAGE = "partner_message"
    BANK_MESSAGE = "bank_message"
    RESOLVE = "resolve"
    CLOSE = "close"


S = TicketStatus
A = Action
TRANSITIONS: dict[tuple[TicketStatus, Action], TicketStatus] = {
    (S.OPEN, A.PARTNER_MESSAGE): S.ANSWERED,
    (S.ANSWERED, A.PARTNER_MESSAGE): S.ANSWERED,
    (S.OPEN, A.CUSTOMER_MESSAGE): S.OPEN,
    (S.ANSWERED, A.CUSTOMER_MESSAGE): S.OPEN,
    # A customer writing again about a resolved ticket still has a problem: it reopens.
    (S.RESOLVED, A.CUSTOMER_MESSAGE): S.OPEN,
    (S.OPEN, A.BANK_MESSAGE): S.OPEN,
    (S.ANSWERED, A.BANK_MESSAGE): S.ANSWERED,
    (S.RESOLVED, A.BANK_MESSAGE): S.RESOLVED,
    (S.OPEN, A.RESOLVE): S.RESOLVED,
    (S.ANSWERED, A.RESOLVE): S.RESOLVED,
    (S.RESOLVED, A.CLOSE): S.CLOSED,
}
_MESSAGE_ACTION = {
    Side.CUSTOMER: A.CUSTOMER_MESSAGE,
    Side.PARTNER: A.PARTNER_MESSAGE,
    Side.BANK: A.BANK_MESSAGE,
}


def side_of(actor: Principal) -> Side:
    """Which side of a conversation the principal speaks for."""
    if actor.kind == "customer":
        return Side.CUSTOMER
    if actor.partner_id is not None:
        return Side.PARTNER
    if actor.merchant_id is not None:
        # Alliance merchants have no part in shop tickets; their roles hold no support scope.
        raise Forbidden(_("Support tickets are between customers, partners and the bank."))
    return Side.BANK


def transition(status: TicketStatus, action: Action) -> TicketStatus:
    target = TRANSITIONS.get((status, action))
    if target is None:
        raise InvalidTransition(
            _(
                "A ticket that is %(status)s does not allow %(action)s.",
                status=status.value,
                action=action.value.replace("_", " "),
            ),
            extra={"current_status": status.value},
        )
    return target


# -- opening -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TicketIn:
    subject: str
    message: str
    order_id: str | None = None
    partner_id: str | None = None


def open_ticket(uow: UnitOfWork, actor: Principal, data: TicketIn) -> SupportTicket:
    """A customer's question to a partner, about one of its orders or in general."""
    if side_of(actor) != Side.CUSTOMER or actor.customer_id is None:
        raise Forbidden(_("Tickets are opened by customers; partners and the bank answer them."))
    subject, message = data.subject.strip(), data.message.strip()
    errors = _text_errors("body.subject", subject, MAX_SUBJECT) + _text_errors(
        "body.message", message, MAX_MESSAGE
    )
    if errors:
        raise InvalidInput(_("The ticket cannot be opened as it stands."), errors=errors)
    order = None
    if data.order_id is not None:
        order = _customer_order(uow, actor.customer_id, data.order_id, field="body.order_id")
    partner = _ticket_partner(uow, data.partner_id, order)
    now = uow.clock.now()
    ticket = SupportTicket(
        public_id=new_public_id("tkt"),
        customer_id=actor.customer_id,
        partner_id=partner.id,
        order_id=order.id if order else None,
        subject=subject,
        status=TicketStatus.OPEN,
        opened_at=now,
        first_response_due_at=now + timedelta(hours=partner.first_response_hours),
        first_responded_at=None,
        resolution_due_at=now + timedelta(hours=partner.resolution_hours),
        resolved_at=None,
        updated_at=now,
    )
    uow.session.add(ticket)
    uow.session.flush()
    _add_message(uow, actor, ticket, Side.CUSTOMER, message)
    audit.record(
        uow.session,
        actor=actor,
        at=now,
        action="ticket.opened",
        object_type="support_ticket",
        object_id=ticket.public_id,
        after={
            **audit.snapshot(
                ticket, ("subject", "status", "first_response_due_at", "resolution_due_at")
            ),
            "partner_id": partner.public_id,
            "order_id": order.public_id if order else None,
        },
    )
    _notify(uow, "ticket.opened", ticket, order, message=message, author=Side.CUSTOMER)
    uow.commit()
    return ticket


def _text_errors(field: str, value: str, limit: int) -> list[FieldError]:
    if not value:
        return [FieldError(field, _("must not be empty"))]
    if len(value) > limit:
        return [FieldError(field, _("at most %(limit)s characters", limit=limit))]
    return []


def _customer_order(uow: UnitOfWork, customer_id: int, public_id: str, *, field: str) -> Order:
    """The customer's own order; another customer's answers as if it did not exist."""
    order = uow.session.scalars(
        select(Order).where(Order.public_id == public_id, Order.customer_id == customer_id)
    ).one_or_none()
    if order is None:
        raise invalid(field, _("no order %(public_id)r of yours", public_id=public_id))
    return order


def _ticket_partner(uow: UnitOfWork, partner_public_id: str | None, order: Order | None) -> Partner:
    if order is not None:
        partner = uow.session.get_one(Partner, order.partner_id)
        if partner_public_id is not None and partner_public_id != partner.public_id:
            raise invalid("body.partner_id", _("the order was placed with another partner"))
        return partner
    if partner_public_id is None:
        raise InvalidInput(
            _("Name the order the ticket is about, or the partner for a general question."),
            errors=(FieldError("body.partner_id", _("required without an order")),),
        )
    return partners.get_partner(uow, partner_public_id, field="body.partner_id")


# -- reading -------------------------------------------------------------------------------------


def get_ticket(uow: UnitOfWork, actor: Principal, public_id: str) -> SupportTicket:
    ticket = uow.session.scalars(
        select(SupportTicket).where(SupportTicket.public_id == public_id)
    ).one_or_none()
    if ticket is None or not _visible(actor, ticket):
        raise NotFound(_("No ticket %(public_id)r here.", public_id=public_id))
    return ticket


def _visible(actor: Principal, ticket: SupportTicket) -> bool:
    side = side_of(actor)
    if side == Side.CUSTOMER:
        return ticket.customer_id == actor.customer_id
    if side == Side.PARTNER:
        return ticket.partner_id == actor.partner_id
    return True


def _scoped(actor: Principal) -> Any:
    """The WHERE clause that limits a listing to what the actor may see."""
    side = side_of(actor)
    if side == Side.CUSTOMER:
        return SupportTicket.customer_id == actor.customer_id
    if side == Side.PARTNER:
        return SupportTicket.partner_id == actor.partner_id
    return true()  # the bank sees every ticket


@dataclass(frozen=True, slots=True)
class TicketFilters:
    status: TicketStatus | None = None
    partner_id: str | None = None
    order_id: str | None = None


def list_tickets(
    uow: UnitOfWork, actor: Principal, filters: TicketFilters, *, cursor: str | None, limit: int
) -> tuple[Sequence[SupportTicket], str | None]:
    """Tickets the actor may see, newest first."""
    stmt = select(SupportTicket).where(_scoped(actor))
    if filters.status is not None:
        stmt = stmt.where(SupportTicket.status == filters.status)
    if filters.partner_id is not None:
        stmt = stmt.join(Partner, Partner.id == SupportTicket.partner_id).where(
            Partner.public_id == filters.partner_id
        )
    if filters.order_id is not None:
        stmt = stmt.join(Order, Order.id == SupportTicket.order_id).where(
            Order.public_id == filters.order_id
        )
    return paginate(
        uow.session, stmt, SupportTicket.id, cursor=cursor, limit=limit, descending=True
    )


def messages_of(uow: UnitOfWork, ticket: SupportTicket) -> Sequence[TicketMessage]:
    return uow.session.scalars(
        select(TicketMessage).where(TicketMessage.ticket_id == ticket.id).order_by(TicketMessage.id)
    ).all()


# -- the conversation ----------------------------------------------------------------------------


def post_message(uow: UnitOfWork, actor: Principal, public_id: str, body: str) -> TicketMessage:
    """A message on the ticket from the actor's side, moving the ticket as the table says."""
    text = body.strip()
    errors = _text_errors("body.body", text, MAX_MESSAGE)
    if errors:
        raise InvalidInput(_("The message cannot be sent as it stands."), errors=errors)
    ticket = _locked(uow, actor, public_id)
    side = side_of(actor)
    before = ticket.status
    ticket.status = transition(ticket.status, _MESSAGE_ACTION[side])
    now = uow.clock.now()
    if side == Side.PARTNER and ticket.first_responded_at is None:
        ticket.first_responded_at = now
    if before == TicketStatus.RESOLVED and ticket.status == TicketStatus.OPEN:
        ticket.resolved_at = None
    ticket.updated_at = now
    message = _add_message(uow, actor, ticket, side, text)
    audit.record(
        uow.session,
        actor=actor,
        at=now,
        action="ticket.message",
        object_type="support_ticket",
        object_id=ticket.public_id,
        before={"status": before.value},
        after={"status": ticket.status.value, "author": side.value, "message_id": message.id},
    )
    if side != Side.PARTNER:
        _notify(uow, "ticket.message", ticket, _order(uow, ticket), message=text, author=side)
    uow.commit()
    return message


def resolve(uow: UnitOfWork, actor: Principal, public_id: str) -> SupportTicket:
    return _move(uow, actor, public_id, Action.RESOLVE, "ticket.resolved")


def close(uow: UnitOfWork, actor: Principal, public_id: str) -> SupportTicket:
    return _move(uow, actor, public_id, Action.CLOSE, "ticket.closed")


def _move(
    uow: UnitOfWork, actor: Principal, public_id: str, action: Action, event: str
) -> SupportTicket:
    ticket = _locked(uow, actor, public_id)
    before = ticket.status
    ticket.status = transition(ticket.status, action)
    now = uow.clock.now()
    if ticket.status == TicketStatus.RESOLVED:
        ticket.resolved_at = now
    ticket.updated_at = now
    audit.record(
        uow.session,
        actor=actor,
        at=now,
        action=event,
        object_type="support_ticket",
        object_id=ticket.public_id,
        before={"status": before.value},
        after={"status": ticket.status.value, "by": side_of(actor).value},
    )
    _notify(uow, event, ticket, _order(uow, ticket), message=None, author=side_of(actor))
    uow.commit()
    return ticket


def _locked(uow: UnitOfWork, actor: Principal, public_id: str) -> SupportTicket:
    """The visible ticket, locked for the change: two messages at once apply one after the other."""
    ticket = get_ticket(uow, actor, public_id)
    uow.session.refresh(ticket, with_for_update=True)
    return ticket


def _add_message(
    uow: UnitOfWork, actor: Principal, ticket: SupportTicket, side: Side, body: str
) -> TicketMessage:
    message = TicketMessage(
        ticket_id=ticket.id,
        author_kind=side.value,
        author_ref=actor.public_id,
        body=body,
        sent_at=uow.clock.now(),
    )
    uow.session.add(message)
    uow.session.flush()
    return message


def _order(uow: UnitOfWork, ticket: SupportTicket) -> Order | None:
    return uow.session.get(Order, ticket.order_id) if ticket.order_id else None


def _notify(
    uow: UnitOfWork,
    event_type: str,
    ticket: SupportTicket,
    order: Order | None,
    *,
    message: str | None,
    author: Side,
) -> None:
    """Tell the partner, in this transaction. Nothing about the customer but what they wrote."""
    data: dict[str, Any] = {
        "ticket_id": ticket.public_id,
        "order_id": order.public_id if order else None,
        "subject": ticket.subject,
        "status": ticket.status.value,
        "by": author.value,
        "first_response_due_at": ticket.first_response_due_at.isoformat(),
        "resolution_due_at": ticket.resolution_due_at.isoformat(),
    }
    if message is not None:
        data["message"] = message
    emit(uow, partner_id=ticket.partner_id, event_type=event_type, data=data)


# -- response-time targets -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Breach:
    target: str  # first_response | resolution
    due_at: datetime
    late_by: timedelta


@dataclass(frozen=True, slots=True)
class Overdue:
    ticket: SupportTicket
    breaches: list[Breach]

    @property
    def latest(self) -> timedelta:
        return max(b.late_by for b in self.breaches)


def overdue(uow: UnitOfWork, actor: Principal, *, limit: int) -> list[Overdue]:
    """Tickets past a target: no first answer by its due time, or unresolved past resolution's.
    The bank sees every partner's, a partner its own; the latest first."""
    if side_of(actor) == Side.CUSTOMER:
        raise Forbidden(_("Overdue lists are for the bank and its partners."))
    now = uow.clock.now()
    waiting = (TicketStatus.OPEN, TicketStatus.ANSWERED)
    no_first_answer = and_(
        SupportTicket.status == TicketStatus.OPEN,
        SupportTicket.first_responded_at.is_(None),
        SupportTicket.first_response_due_at < now,
    )
    unresolved = and_(SupportTicket.status.in_(waiting), SupportTicket.resolution_due_at < now)
    tickets = uow.session.scalars(
        select(SupportTicket)
        .where(_scoped(actor), or_(no_first_answer, unresolved))
        .order_by(SupportTicket.first_response_due_at, SupportTicket.id)
        .limit(limit)
    ).all()
    found = []
    for ticket in tickets:
        breaches = []
        if ticket.first_responded_at is None and ticket.first_response_due_at < now:
            breaches.append(
                Breach(
                    "first_response",
                    ticket.first_response_due_at,
                    now - ticket.first_response_due_at,
                )
            )
        if ticket.resolution_due_at < now:
            breaches.append(
                Breach("resolution", ticket.resolution_due_at, now - ticket.resolution_due_at)
            )
        found.append(Overdue(ticket, breaches))
    return sorted(found, key=lambda o: (-o.latest, o.ticket.id))
