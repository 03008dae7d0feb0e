"""The uniqueness principle is the database's: one unreleased seat per (circle, sub-industry),
even when Python is bypassed, and racing approvals leave exactly one seat (PostgreSQL)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import Engine, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from beyondbank.alliance import admission
from beyondbank.alliance.models import (
    Application,
    ApplicationStatus,
    MerchantStatus,
    Seat,
    WaitlistEntry,
    WaitlistStatus,
)
from beyondbank.alliance.service import get_application
from beyondbank.core.authz import Role
from beyondbank.core.clock import FixedClock
from beyondbank.core.errors import SlotTaken
from beyondbank.core.uow import UnitOfWork, make_session_factory
from tests import factories as f

RACERS = 8


def test_the_database_refuses_a_second_held_seat(uow: UnitOfWork) -> None:
    circle = f.make_circle(uow)
    held = f.make_seat(uow, circle, f.make_merchant(uow))
    rival = f.make_merchant(uow)
    row = {
        "circle_id": circle.id,
        "sub_industry": "restaurant",
        "merchant_id": rival.id,
        "application_id": f.make_application(uow, rival, circle).id,
        "taken_at": uow.clock.now(),
    }
    with pytest.raises(IntegrityError), uow.session.begin_nested():
        uow.session.execute(insert(Seat).values(**row))
    # Once the holder's seat is released, the slot can be taken again; the old row stays.
    uow.session.execute(update(Seat).where(Seat.id == held.id).values(released_at=uow.clock.now()))
    with uow.session.begin_nested():
        uow.session.execute(insert(Seat).values(**row))
    slot = select(func.count()).select_from(Seat).where(Seat.circle_id == circle.id)
    assert uow.session.scalar(slot) == 2
    assert uow.session.scalar(slot.where(Seat.released_at.is_(None))) == 1


def test_another_sub_industry_in_the_same_circle_is_a_different_slot(uow: UnitOfWork) -> None:
    circle = f.make_circle(uow)
    f.make_seat(uow, circle, f.make_merchant(uow, sub_industry="restaurant"))
    f.make_seat(uow, circle, f.make_merchant(uow, sub_industry="bar_pub"))
    f.make_seat(uow, f.make_circle(uow), f.make_merchant(uow, sub_industry="restaurant"))
    assert uow.session.scalar(select(func.count()).select_from(Seat)) == 3


@pytest.mark.postgres
def test_racing_approvals_for_one_slot_leave_one_seat_and_a_waitlist(
    committing_engine: Engine, clock: FixedClock
) -> None:
    factory = make_session_factory(committing_engine)
    with UnitOfWork(factory, clock) as uow:
        approver = f.principal(f.make_user(uow, Role.BANK_ADMIN))
        circle = f.make_circle(uow)
        uow.commit()
        applicants = [
            f.make_merchant(uow, status=MerchantStatus.UNDER_REVIEW) for _ in range(RACERS)
        ]
        uow.commit()
        application_ids = [admission.submit(uow, approver, m, circle).public_id for m in applicants]
        circle_id = circle.id
    barrier = threading.Barrier(RACERS)

    def approve(application_id: str) -> str | SlotTaken:
        with UnitOfWork(factory, clock) as own:
            application = get_application(own, approver, application_id)
            barrier.wait(timeout=30)
            try:
                admission.approve(own, approver, application, "first come, first served")
            except SlotTaken as taken:
                return taken
            return application_id

    with ThreadPoolExecutor(max_workers=RACERS) as pool:
        outcomes = list(pool.map(approve, application_ids))

    winners = [o for o in outcomes if isinstance(o, str)]
    losers = [o for o in outcomes if isinstance(o, SlotTaken)]
    assert len(winners) == 1
    assert len(losers) == RACERS - 1
    with UnitOfWork(factory, clock) as uow:
        seats = uow.session.scalars(select(Seat).where(Seat.circle_id == circle_id)).all()
        assert len(seats) == 1
        winner = uow.session.scalars(
            select(Application).where(Application.public_id == winners[0])
        ).one()
        assert seats[0].application_id == winner.id
        assert {loser.status for loser in losers} == {409}
        assert {loser.extra["holder"]["merchant_id"] for loser in losers} == {
            winner.merchant.public_id
        }
        statuses = uow.session.scalars(
            select(Application.status).where(Application.circle_id == circle_id)
        ).all()
        assert sorted(statuses) == sorted(
            [ApplicationStatus.APPROVED] + [ApplicationStatus.WAITLISTED] * (RACERS - 1)
        )
        entries = uow.session.scalars(
            select(WaitlistEntry).where(WaitlistEntry.circle_id == circle_id)
        ).all()
        assert len(entries) == RACERS - 1
        assert {e.status for e in entries} == {WaitlistStatus.WAITING}
        assert sorted(admission.positions(uow, entries).values()) == list(range(1, RACERS))
