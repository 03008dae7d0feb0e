"""Admission: applications to circles, their automatic checks, decisions, seats and waitlists.

The uniqueness principle (one merchant per sub-industry per circle) is the database's: a seat is
a row, and the partial unique index `uq_circle_seats_held` refuses a second unreleased seat for
a slot. An approval takes the seat in a savepoint; when the index refuses it, the application
joins the slot's waitlist and that is committed even though the approval failed.

Locks are taken in one order everywhere: the merchant, then circles (by id), then the rows of
seats, applications and waitlist entries. A circle's lock serialises the decisions on its slots,
so the waitlist's turn is respected: a slot freed while merchants wait is offered to the first of
them before anybody else may take it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.exc import IntegrityError

from beyondbank.alliance import checks, lifecycle, people
from beyondbank.alliance.models import (
    Application,
    ApplicationCheck,
    ApplicationStatus,
    Circle,
    CircleStatus,
    Merchant,
    MerchantStatus,
    RequirementKind,
    Seat,
    WaitlistEntry,
    WaitlistStatus,
)
from beyondbank.alliance.service import (
    current_manager_id,
    held_seats,
    lock_rows,
    slot_holder,
)
from beyondbank.core import audit
from beyondbank.core.authz import Principal, Role
from beyondbank.core.errors import Conflict, Forbidden, InvalidTransition, SlotTaken
from beyondbank.core.i18n import _
from beyondbank.core.ids import new_public_id
from beyondbank.core.pagination import paginate
from beyondbank.core.uow import UnitOfWork

A = ApplicationStatus
APPLICATION_TRANSITIONS: dict[ApplicationStatus, frozenset[ApplicationStatus]] = {
    A.SUBMITTED: frozenset({A.UNDER_REVIEW, A.REJECTED, A.WITHDRAWN}),
    A.UNDER_REVIEW: frozenset({A.APPROVED, A.REJECTED, A.WAITLISTED, A.WITHDRAWN}),
    A.WAITLISTED: frozenset({A.APPROVED, A.REJECTED, A.WITHDRAWN}),
    A.APPROVED: frozenset(),
    A.REJECTED: frozenset(),
    A.WITHDRAWN: frozenset(),
}
OPEN_APPLICATIONS = frozenset({A.SUBMITTED, A.UNDER_REVIEW, A.WAITLISTED})
OPEN_ENTRIES = frozenset({WaitlistStatus.WAITING, WaitlistStatus.OFFERED})


# -- requirement checks ------------------------------------------------------------------------


def evaluate(uow: UnitOfWork, actor: Principal, application: Application) -> list[ApplicationCheck]:
    """Check the application against each of its circle's requirements and store each result.

    A check keeps its id across evaluations (a manager's confirmation refers to it), and a manual
    check that a manager has answered keeps that answer.
    """
    now = uow.clock.now()
    ctx = checks.CheckContext(
        uow, application.merchant, application.circle, application.sub_industry, now.date()
    )
    existing = {(c.kind, c.label): c for c in application.checks}
    results = []
    for requirement in application.circle.requirements:
        check = existing.pop((requirement.kind, requirement.label), None)
        if check is None or check.confirmed_at is None:
            outcome = checks.CHECKS[requirement.kind](ctx, requirement.params)
            if check is None:
                check = ApplicationCheck(
                    application_id=application.id, kind=requirement.kind, label=requirement.label
                )
                uow.session.add(check)
            check.passed, check.reason = outcome.passed, outcome.reason
        check.requirement_id = requirement.id
        check.checked_at = now
        results.append(check)
    for obsolete in existing.values():  # the circle dropped that requirement
        uow.session.delete(obsolete)
    application.checked_at = now
    uow.session.flush()
    uow.session.expire(application, ["checks"])
    audit.record(
        uow.session,
        actor=actor,
        at=now,
        action="application.checked",
        object_type="application",
        object_id=application.public_id,
        after={"checks": [_check_summary(c) for c in results]},
    )
    return results


def _check_summary(check: ApplicationCheck) -> dict[str, Any]:
    return {
        "id": check.public_id,
        "kind": check.kind.value,
        "label": check.label,
        "passed": check.passed,
        "reason": check.reason,
    }


# -- applications ------------------------------------------------------------------------------


def _move(
    uow: UnitOfWork,
    actor: Principal,
    application: Application,
    to: ApplicationStatus,
    reason: str | None,
) -> None:
    current = application.status
    if to not in APPLICATION_TRANSITIONS[current]:
        raise InvalidTransition(
            _(
                "Application %(application)s is %(current)s: it cannot become %(to)s.",
                application=application.public_id,
                current=current.value,
                to=to.value,
            ),
            extra={"current_status": current.value},
        )
    now = uow.clock.now()
    application.status = to
    if to in (A.APPROVED, A.REJECTED, A.WITHDRAWN):
        application.decided_at = now
        application.decided_by_id = actor.id if actor.kind == "user" else None
        application.decision_reason = reason
    audit.record(
        uow.session,
        actor=actor,
        at=now,
        action=f"application.{to.value}",
        object_type="application",
        object_id=application.public_id,
        before={"status": current.value},
        after={"status": to.value},
        reason=reason,
    )


def submit(uow: UnitOfWork, actor: Principal, merchant: Merchant, circle: Circle) -> Application:
    """Apply for the merchant's sub-industry slot in the circle; checks run at once."""
    lock_rows(uow, Merchant.id, [merchant.id])
    uow.session.refresh(merchant)
    if circle.status != CircleStatus.ACTIVE:
        raise InvalidTransition(
            _(
                "Circle %(circle)s is %(status)s: it admits nobody.",
                circle=circle.public_id,
                status=circle.status.value,
            )
        )
    if merchant.status not in lifecycle.MAY_APPLY:
        raise InvalidTransition(
            _(
                "Merchant %(merchant)s is %(status)s: it cannot apply to circles.",
                merchant=merchant.public_id,
                status=merchant.status.value,
            ),
            extra={"current_status": merchant.status.value},
        )
    holder = slot_holder(uow, circle.id, merchant.sub_industry)
    if holder is not None and holder.merchant_id == merchant.id:
        raise Conflict(
            _(
                "%(merchant)s already holds its seat in %(circle)s.",
                merchant=merchant.trading_name,
                circle=circle.name,
            )
        )
    if merchant.status == MerchantStatus.APPLIED:
        lifecycle.set_status(
            uow, actor, merchant, MerchantStatus.UNDER_REVIEW, f"applied to circle {circle.name}"
        )
    now = uow.clock.now()
    application = Application(
        public_id=new_public_id("app"),
        merchant_id=merchant.id,
        circle_id=circle.id,
        sub_industry=merchant.sub_industry,
        status=A.SUBMITTED,
        submitted_at=now,
    )
    try:
        with uow.session.begin_nested():
            uow.session.add(application)
    except IntegrityError:
        raise Conflict(
            _(
                "%(merchant)s already has an open application to %(circle)s.",
                merchant=merchant.trading_name,
                circle=circle.name,
            )
        ) from None
    uow.session.refresh(application)
    audit.record(
        uow.session,
        actor=actor,
        at=now,
        action="application.submitted",
        object_type="application",
        object_id=application.public_id,
        after={
            "merchant": merchant.public_id,
            "circle": circle.public_id,
            "sub_industry": merchant.sub_industry,
        },
    )
    evaluate(uow, actor, application)
    _move(uow, actor, application, A.UNDER_REVIEW, None)
    uow.commit()
    return application


def recheck(uow: UnitOfWork, actor: Principal, application: Application) -> Application:
    """Run the checks again (after a licence is verified, KYB passes, reviews come in...)."""
    if application.status not in OPEN_APPLICATIONS:
        raise InvalidTransition(
            _(
                "Application %(application)s is %(status)s: it is decided.",
                application=application.public_id,
                status=application.status.value,
            ),
            extra={"current_status": application.status.value},
        )
    evaluate(uow, actor, application)
    uow.commit()
    return application


def confirm_check(
    uow: UnitOfWork,
    actor: Principal,
    application: Application,
    check_id: str,
    *,
    passed: bool,
    note: str,
) -> Application:
    """A relationship manager answers a manual check, with what they saw."""
    if application.status not in OPEN_APPLICATIONS:
        raise InvalidTransition(
            _(
                "Application %(application)s is %(status)s: it is decided.",
                application=application.public_id,
                status=application.status.value,
            ),
            extra={"current_status": application.status.value},
        )
    check = next((c for c in application.checks if c.public_id == check_id), None)
    if check is None:
        raise Conflict(
            _(
                "Application %(application)s has no check %(check_id)r.",
                application=application.public_id,
                check_id=check_id,
            )
        )
    if check.kind != RequirementKind.MANUAL_CHECK:
        raise Conflict(
            _(
                "%(kind)s is checked automatically; only manual checks are confirmed.",
                kind=check.kind.value,
            )
        )
    before = _check_summary(check)
    now = uow.clock.now()
    check.passed = passed
    check.reason = f"{'confirmed' if passed else 'not confirmed'} by {actor.label}: {note}"
    check.confirmed_by_id = actor.id if actor.kind == "user" else None
    check.confirmed_at = now
    audit.record(
        uow.session,
        actor=actor,
        at=now,
        action="application.check_confirmed",
        object_type="application",
        object_id=application.public_id,
        before=before,
        after=_check_summary(check),
    )
    uow.commit()
    return application


def approve(
    uow: UnitOfWork, actor: Principal, application: Application, reason: str
) -> Application:
    """Admit the merchant to the circle: every requirement must be met, and the seat taken.

    If the slot is taken (or already offered to the waitlist), the application joins the slot's
    waitlist, that is committed, and a `SlotTaken` problem naming the holder is raised.
    """
    merchant, circle = application.merchant, application.circle
    lock_rows(uow, Merchant.id, [merchant.id])
    lock_rows(uow, Circle.id, [circle.id])
    for row in (merchant, circle, application):
        uow.session.refresh(row)
    entry = waitlist_entry(uow, application)
    _ensure_decidable(application, entry, actor)
    _ensure_admissible(merchant, circle)
    _ensure_requirements_met(uow, actor, application)
    seat = _seat_or_waitlist(uow, actor, application, entry)
    _move(uow, actor, application, A.APPROVED, reason)
    if entry is not None:
        _close_entry(uow, actor, entry, WaitlistStatus.ADMITTED, reason)
    audit.record(
        uow.session,
        actor=actor,
        at=seat.taken_at,
        action="seat.taken",
        object_type="circle",
        object_id=circle.public_id,
        after={
            "sub_industry": seat.sub_industry,
            "merchant": merchant.public_id,
            "application": application.public_id,
        },
    )
    if merchant.status == MerchantStatus.UNDER_REVIEW:
        lifecycle.set_status(
            uow, actor, merchant, MerchantStatus.ADMITTED, f"admitted to circle {circle.name}"
        )
    uow.commit()
    return application


def _ensure_requirements_met(uow: UnitOfWork, actor: Principal, application: Application) -> None:
    """Check again now; anything not passed (a manual check not confirmed) refuses the approval.
    The slot is not checked here: the database decides it when the seat is taken."""
    results = evaluate(uow, actor, application)
    unmet = [c for c in results if c.kind != RequirementKind.SLOT_FREE and c.passed is not True]
    if unmet:
        uow.commit()  # the fresh results are kept: they say what is missing
        raise Conflict(
            # The checks' reasons are records, kept in the language they were written in.
            _(
                "Not every admission requirement is met: %(unmet)s.",
                unmet="; ".join(f"{c.label or c.kind.value}: {c.reason}" for c in unmet),
            ),
            extra={"unmet_checks": [_check_summary(c) for c in unmet]},
        )


def _seat_or_waitlist(
    uow: UnitOfWork, actor: Principal, application: Application, entry: WaitlistEntry | None
) -> Seat:
    """The seat; or else the application joins the waitlist, committed, and `SlotTaken` is raised."""
    sub_industry, circle = application.sub_industry, application.circle.name
    offered = _offer_for_another(uow, application)
    if offered is not None:
        detail = _(
            "The %(sub_industry)s slot in %(circle)s is being offered to %(merchant)s, "
            "who waited first; this application joined the waitlist.",
            sub_industry=sub_industry,
            circle=circle,
            merchant=offered.application.merchant.trading_name,
        )
        holder = None
    else:
        seat = _take_seat(uow, application)
        if seat is not None:
            return seat
        holder = slot_holder(uow, application.circle_id, application.sub_industry)
        held_by = holder.merchant.trading_name if holder else _("another merchant")
        detail = _(
            "The %(sub_industry)s slot in %(circle)s is held by %(merchant)s; "
            "this application joined the slot's waitlist.",
            sub_industry=sub_industry,
            circle=circle,
            merchant=held_by,
        )
    _join_waitlist(uow, actor, application, entry)
    uow.commit()
    raise SlotTaken(detail, extra=_slot_extra(uow, application, holder))


def reject(uow: UnitOfWork, actor: Principal, application: Application, reason: str) -> Application:
    """Refuse the application (declining a waitlist offer passes the slot to the next in line)."""
    lock_rows(uow, Circle.id, [application.circle_id])
    uow.session.refresh(application)
    entry = waitlist_entry(uow, application)
    if entry is None or entry.status != WaitlistStatus.WAITING:
        _ensure_decidable(application, entry, actor)
    _move(uow, actor, application, A.REJECTED, reason)
    if entry is not None:
        _close_entry(uow, actor, entry, WaitlistStatus.DECLINED, reason)
        offer_next(uow, actor, application.circle, application.sub_industry)
    uow.commit()
    return application


def withdraw(
    uow: UnitOfWork, actor: Principal, application: Application, reason: str
) -> Application:
    """The merchant (or staff on its behalf) withdraws an open application."""
    lock_rows(uow, Circle.id, [application.circle_id])
    uow.session.refresh(application)
    _move(uow, actor, application, A.WITHDRAWN, reason)
    entry = waitlist_entry(uow, application)
    if entry is not None:
        _close_entry(uow, actor, entry, WaitlistStatus.WITHDRAWN, reason)
        offer_next(uow, actor, application.circle, application.sub_industry)
    uow.commit()
    return application


def _ensure_decidable(
    application: Application, entry: WaitlistEntry | None, actor: Principal
) -> None:
    if application.status in (A.SUBMITTED, A.UNDER_REVIEW):
        return
    if application.status == A.WAITLISTED and entry is not None:
        if entry.status != WaitlistStatus.OFFERED:
            raise InvalidTransition(
                _(
                    "Application %(application)s is waitlisted and its turn has not come: the slot has not been offered to it.",
                    application=application.public_id,
                ),
                extra={"current_status": application.status.value},
            )
        if actor.id != entry.offered_to_id and actor.role != Role.BANK_ADMIN:
            raise Forbidden(_("This waitlist offer is for another relationship manager to decide."))
        return
    raise InvalidTransition(
        _(
            "Application %(application)s is %(status)s: it is decided.",
            application=application.public_id,
            status=application.status.value,
        ),
        extra={"current_status": application.status.value},
    )


def _ensure_admissible(merchant: Merchant, circle: Circle) -> None:
    if circle.status != CircleStatus.ACTIVE:
        raise InvalidTransition(
            _(
                "Circle %(circle)s is %(status)s: it admits nobody.",
                circle=circle.public_id,
                status=circle.status.value,
            )
        )
    if merchant.status not in lifecycle.MAY_BE_APPROVED:
        raise InvalidTransition(
            _(
                "Merchant %(merchant)s is %(status)s: it cannot be admitted to a circle.",
                merchant=merchant.public_id,
                status=merchant.status.value,
            ),
            extra={"current_status": merchant.status.value},
        )


def list_applications(
    uow: UnitOfWork,
    actor: Principal,
    *,
    status: ApplicationStatus | None,
    circle_id: int | None,
    merchant_id: int | None,
    sub_industry: str | None,
    cursor: str | None,
    limit: int,
) -> tuple[Sequence[Application], str | None]:
    stmt = select(Application)
    if actor.merchant_id is not None:
        stmt = stmt.where(Application.merchant_id == actor.merchant_id)
    for column, value in (
        (Application.status, status),
        (Application.circle_id, circle_id),
        (Application.merchant_id, merchant_id),
        (Application.sub_industry, sub_industry),
    ):
        if value is not None:
            stmt = stmt.where(column == value)
    return paginate(uow.session, stmt, Application.id, cursor=cursor, limit=limit)


# -- seats ---------------------------------------------------------------------------------


def _take_seat(uow: UnitOfWork, application: Application) -> Seat | None:
    """The seat, or None when the database refuses a second holder for the slot."""
    seat = Seat(
        circle_id=application.circle_id,
        sub_industry=application.sub_industry,
        merchant_id=application.merchant_id,
        application_id=application.id,
        taken_at=uow.clock.now(),
    )
    try:
        with uow.session.begin_nested():
            uow.session.add(seat)
    except IntegrityError:
        return None
    return seat


def release_seats(uow: UnitOfWork, actor: Principal, seats: Iterable[Seat], reason: str) -> None:
    """Free the seats (the rows stay, as history); the caller holds the circles' locks."""
    now = uow.clock.now()
    for seat in seats:
        seat.released_at = now
        seat.release_reason = reason
        audit.record(
            uow.session,
            actor=actor,
            at=now,
            action="seat.released",
            object_type="circle",
            object_id=_circle_public_id(uow, seat.circle_id),
            before={"sub_industry": seat.sub_industry, "merchant": seat.merchant.public_id},
            reason=reason,
        )
    uow.session.flush()


def _circle_public_id(uow: UnitOfWork, circle_id: int) -> str:
    return uow.session.get_one(Circle, circle_id).public_id


def withdraw_from_alliance(
    uow: UnitOfWork,
    actor: Principal,
    merchant: Merchant,
    *,
    closing: ApplicationStatus,
    reason: str,
) -> None:
    """A merchant leaving (or refused by) the alliance: its open applications are closed with
    `closing`, its seats released, and every slot it frees or stops waiting for is offered to the
    next merchant in line. The caller holds the merchant's lock and commits."""
    seats = held_seats(uow, merchant_id=merchant.id)
    applications = list(
        uow.session.scalars(
            select(Application).where(
                Application.merchant_id == merchant.id, Application.status.in_(OPEN_APPLICATIONS)
            )
        )
    )
    lock_rows(uow, Circle.id, [s.circle_id for s in seats] + [a.circle_id for a in applications])
    slots = {(s.circle_id, s.sub_industry) for s in seats}
    for application in applications:
        entry = waitlist_entry(uow, application)
        _move(uow, actor, application, closing, reason)
        if entry is not None:
            if entry.status == WaitlistStatus.OFFERED:
                slots.add((application.circle_id, application.sub_industry))
            _close_entry(uow, actor, entry, WaitlistStatus.WITHDRAWN, reason)
    release_seats(uow, actor, seats, reason)
    for circle_id, sub_industry in sorted(slots):
        offer_next(uow, actor, uow.session.get_one(Circle, circle_id), sub_industry)


def close_circle(uow: UnitOfWork, actor: Principal, circle: Circle, reason: str) -> None:
    """An archived circle keeps nobody: seats released, open applications withdrawn.
    The caller holds the circle's lock and commits."""
    applications = uow.session.scalars(
        select(Application).where(
            Application.circle_id == circle.id, Application.status.in_(OPEN_APPLICATIONS)
        )
    )
    for application in applications:
        entry = waitlist_entry(uow, application)
        _move(uow, actor, application, A.WITHDRAWN, reason)
        if entry is not None:
            _close_entry(uow, actor, entry, WaitlistStatus.WITHDRAWN, reason)
    release_seats(uow, actor, held_seats(uow, circle_id=circle.id), reason)


# -- waitlists -----------------------------------------------------------------------------


def waitlist_entry(uow: UnitOfWork, application: Application) -> WaitlistEntry | None:
    return uow.session.scalars(
        select(WaitlistEntry).where(WaitlistEntry.application_id == application.id)
    ).one_or_none()


def _join_waitlist(
    uow: UnitOfWork, actor: Principal, application: Application, entry: WaitlistEntry | None
) -> WaitlistEntry:
    """Queue the application for its slot; one whose offer could not be honoured keeps its place."""
    now = uow.clock.now()
    if entry is None:
        entry = WaitlistEntry(
            circle_id=application.circle_id,
            sub_industry=application.sub_industry,
            application_id=application.id,
            merchant_id=application.merchant_id,
            status=WaitlistStatus.WAITING,
            joined_at=now,
        )
        uow.session.add(entry)
        _move(uow, actor, application, A.WAITLISTED, "the slot is taken")
    else:
        entry.status = WaitlistStatus.WAITING
        entry.offered_at = None
        entry.offered_to_id = None
    uow.session.flush()
    audit.record(
        uow.session,
        actor=actor,
        at=now,
        action="waitlist.joined",
        object_type="application",
        object_id=application.public_id,
        after={"circle": application.circle.public_id, "sub_industry": application.sub_industry},
    )
    return entry


def _close_entry(
    uow: UnitOfWork, actor: Principal, entry: WaitlistEntry, status: WaitlistStatus, reason: str
) -> None:
    before = entry.status
    entry.status = status
    entry.closed_at = uow.clock.now()
    audit.record(
        uow.session,
        actor=actor,
        at=entry.closed_at,
        action=f"waitlist.{status.value}",
        object_type="application",
        object_id=entry.application.public_id,
        before={"waitlist": before.value},
        after={"waitlist": status.value},
        reason=reason,
    )
    uow.session.flush()


def _slot_entries(circle_id: int, sub_industry: str) -> Select[WaitlistEntry]:
    return (
        select(WaitlistEntry)
        .where(
            WaitlistEntry.circle_id == circle_id,
            WaitlistEntry.sub_industry == sub_industry,
            WaitlistEntry.status.in_(OPEN_ENTRIES),
        )
        .order_by(WaitlistEntry.joined_at, WaitlistEntry.id)
    )


def _offer_for_another(uow: UnitOfWork, application: Application) -> WaitlistEntry | None:
    """The slot's outstanding offer, if it is for some other application."""
    return uow.session.scalars(
        _slot_entries(application.circle_id, application.sub_industry).where(
            WaitlistEntry.status == WaitlistStatus.OFFERED,
            WaitlistEntry.application_id != application.id,
        )
    ).first()


def offer_next(
    uow: UnitOfWork, actor: Principal, circle: Circle, sub_industry: str
) -> WaitlistEntry | None:
    """Offer a free slot to the first merchant waiting for it, through its relationship manager
    (or a bank admin when it has none). The caller holds the circle's lock."""
    if circle.status != CircleStatus.ACTIVE or slot_holder(uow, circle.id, sub_industry):
        return None
    entries = list(uow.session.scalars(_slot_entries(circle.id, sub_industry)))
    if not entries or any(e.status == WaitlistStatus.OFFERED for e in entries):
        return None
    entry = entries[0]
    manager_id = current_manager_id(uow, entry.merchant_id)
    if manager_id is None:
        admin = people.first_bank_admin(uow)
        manager_id = admin.id if admin else None
    now = uow.clock.now()
    entry.status = WaitlistStatus.OFFERED
    entry.offered_at = now
    entry.offered_to_id = manager_id
    uow.session.flush()
    refs = people.users_by_ids(uow, {manager_id} if manager_id else set())
    audit.record(
        uow.session,
        actor=actor,
        at=now,
        action="waitlist.offered",
        object_type="application",
        object_id=entry.application.public_id,
        after={
            "circle": circle.public_id,
            "sub_industry": sub_industry,
            "offered_to": refs[manager_id].public_id if manager_id else None,
        },
    )
    return entry


def positions(uow: UnitOfWork, entries: Iterable[WaitlistEntry]) -> dict[int, int]:
    """Each open entry's place in its slot's queue (1 is next)."""
    places: dict[int, int] = {}
    for circle_id, sub_industry in {(e.circle_id, e.sub_industry) for e in entries}:
        queue = uow.session.scalars(_slot_entries(circle_id, sub_industry))
        places.update({entry.id: i for i, entry in enumerate(queue, start=1)})
    return places


def slot_waitlist(
    uow: UnitOfWork, actor: Principal, circle: Circle, sub_industry: str | None
) -> list[WaitlistEntry]:
    """The open waitlist of a circle's slots, in order; a merchant sees only its own entries."""
    stmt = select(WaitlistEntry).where(
        WaitlistEntry.circle_id == circle.id, WaitlistEntry.status.in_(OPEN_ENTRIES)
    )
    if sub_industry is not None:
        stmt = stmt.where(WaitlistEntry.sub_industry == sub_industry)
    if actor.merchant_id is not None:
        stmt = stmt.where(WaitlistEntry.merchant_id == actor.merchant_id)
    stmt = stmt.order_by(WaitlistEntry.sub_industry, WaitlistEntry.joined_at, WaitlistEntry.id)
    return list(uow.session.scalars(stmt))


def offers_for(uow: UnitOfWork, actor: Principal) -> list[WaitlistEntry]:
    """The waitlist offers waiting for this manager's decision, oldest first."""
    return list(
        uow.session.scalars(
            select(WaitlistEntry)
            .where(
                WaitlistEntry.status == WaitlistStatus.OFFERED,
                WaitlistEntry.offered_to_id == actor.id,
            )
            .order_by(WaitlistEntry.offered_at, WaitlistEntry.id)
        )
    )


def _slot_extra(uow: UnitOfWork, application: Application, holder: Seat | None) -> dict[str, Any]:
    entry = waitlist_entry(uow, application)
    place = positions(uow, [entry]).get(entry.id) if entry else None
    return {
        "application_id": application.public_id,
        "circle_id": application.circle.public_id,
        "sub_industry": application.sub_industry,
        "holder": (
            {"merchant_id": holder.merchant.public_id, "name": holder.merchant.trading_name}
            if holder
            else None
        ),
        "waitlist_position": place,
    }
