"""Races on PostgreSQL: two answers to one order's survey at the same moment, messages at once."""

from __future__ import annotations

from sqlalchemy import Engine, func, select

from beyondbank.commerce.models import NpsResponse, TicketMessage, TicketStatus
from beyondbank.commerce.support import nps, service
from beyondbank.core.authz import Role
from beyondbank.core.clock import FixedClock
from beyondbank.core.errors import Conflict
from beyondbank.core.uow import UnitOfWork, make_session_factory
from tests import factories as f
from tests.commerce.support.factories import make_order
from tests.conftest import T0
from tests.races import together


def test_one_answer_per_order_however_many_arrive_together(committing_engine: Engine) -> None:
    clock = FixedClock(T0)
    factory = make_session_factory(committing_engine)
    with UnitOfWork(factory, clock) as uow:
        customer = f.make_customer(uow)
        order = make_order(uow, customer, f.make_partner(uow))
        uow.commit()
        who, order_id = f.principal(customer), order.public_id

    def answer(i: int) -> nps.Answer:
        with UnitOfWork(factory, clock) as uow:
            return nps.answer(uow, who, order_id, i % 11, None)

    results = together(8, answer)
    assert sum(isinstance(r, nps.Answer) for r in results) == 1
    assert sum(isinstance(r, Conflict) for r in results) == 7
    with factory() as session:
        assert session.scalar(select(func.count()).select_from(NpsResponse)) == 1


def test_messages_at_once_all_land_and_the_first_answer_is_set_once(
    committing_engine: Engine,
) -> None:
    clock = FixedClock(T0)
    factory = make_session_factory(committing_engine)
    with UnitOfWork(factory, clock) as uow:
        partner = f.make_partner(uow)
        customer = f.make_customer(uow)
        staff = f.principal(f.make_user(uow, Role.PARTNER_STAFF, partner=partner))
        uow.commit()
        ticket = service.open_ticket(
            uow,
            f.principal(customer),
            service.TicketIn(subject="Late", message="Where?", partner_id=partner.public_id),
        ).public_id

    def reply(i: int) -> int:
        with UnitOfWork(factory, clock) as uow:
            return service.post_message(uow, staff, ticket, f"answer {i}").id

    results = together(6, reply)
    assert all(isinstance(r, int) for r in results)
    with UnitOfWork(factory, clock) as uow:
        found = service.get_ticket(uow, staff, ticket)
        assert found.status == TicketStatus.ANSWERED
        assert found.first_responded_at == T0
        count = uow.session.scalar(
            select(func.count())
            .select_from(TicketMessage)
            .where(TicketMessage.ticket_id == found.id)
        )
        assert count == 7
