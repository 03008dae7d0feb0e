"""Relationship management: who looks after each merchant, the interaction log, and follow-ups."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from beyondbank.alliance import people
from beyondbank.alliance.models import Interaction, ManagerAssignment, Merchant
from beyondbank.alliance.schemas import InteractionIn
from beyondbank.core import audit
from beyondbank.core.authz import Principal, Role, ensure_visible
from beyondbank.core.errors import Conflict, Forbidden, NotFound, invalid
from beyondbank.core.i18n import N_, _
from beyondbank.core.ids import new_public_id
from beyondbank.core.pagination import paginate
from beyondbank.core.uow import UnitOfWork

# Clocks on phones and laptops drift; an interaction logged "now" may be a little ahead.
_CLOCK_SKEW = timedelta(minutes=5)


# -- relationship managers -------------------------------------------------------------------


def assign_manager(
    uow: UnitOfWork, actor: Principal, merchant: Merchant, manager_public_id: str
) -> ManagerAssignment:
    """Make the user the merchant's relationship manager; the previous assignment ends (kept)."""
    try:
        manager = people.user_by_public_id(uow, manager_public_id)
    except NotFound:
        raise invalid("body.manager_id", _("no such user")) from None
    if manager.role != Role.RELATIONSHIP_MANAGER or not manager.active:
        raise invalid("body.manager_id", _("not an active relationship manager"))
    now = uow.clock.now()
    current = current_assignment(uow, merchant)
    if current is not None and current.manager_id == manager.id:
        return current
    uow.session.execute(
        update(ManagerAssignment)
        .where(ManagerAssignment.merchant_id == merchant.id, ManagerAssignment.ended_at.is_(None))
        .values(ended_at=now)
    )
    assignment = ManagerAssignment(merchant_id=merchant.id, manager_id=manager.id, assigned_at=now)
    try:
        with uow.session.begin_nested():
            uow.session.add(assignment)
    except IntegrityError:
        raise Conflict(
            _("%(merchant)s was reassigned meanwhile; try again.", merchant=merchant.trading_name)
        ) from None
    previous = people.users_by_ids(uow, {current.manager_id}) if current else {}
    audit.record(
        uow.session,
        actor=actor,
        at=now,
        action="merchant.manager_assigned",
        object_type="merchant",
        object_id=merchant.public_id,
        before={"manager": previous[current.manager_id].public_id} if current else None,
        after={"manager": manager.public_id},
    )
    uow.commit()
    return assignment


def end_assignment(uow: UnitOfWork, actor: Principal, merchant: Merchant, reason: str) -> None:
    current = current_assignment(uow, merchant)
    if current is None:
        raise Conflict(
            _("%(merchant)s has no relationship manager.", merchant=merchant.trading_name)
        )
    current.ended_at = uow.clock.now()
    manager = people.users_by_ids(uow, {current.manager_id})[current.manager_id]
    audit.record(
        uow.session,
        actor=actor,
        at=current.ended_at,
        action="merchant.manager_unassigned",
        object_type="merchant",
        object_id=merchant.public_id,
        before={"manager": manager.public_id},
        reason=reason,
    )
    uow.commit()


def current_assignment(uow: UnitOfWork, merchant: Merchant) -> ManagerAssignment | None:
    return uow.session.scalars(
        select(ManagerAssignment).where(
            ManagerAssignment.merchant_id == merchant.id, ManagerAssignment.ended_at.is_(None)
        )
    ).one_or_none()


def assignments(uow: UnitOfWork, merchant: Merchant) -> list[ManagerAssignment]:
    """Every manager the merchant has had, newest first."""
    return list(
        uow.session.scalars(
            select(ManagerAssignment)
            .where(ManagerAssignment.merchant_id == merchant.id)
            .order_by(ManagerAssignment.assigned_at.desc(), ManagerAssignment.id.desc())
        )
    )


# -- the interaction log ---------------------------------------------------------------------


def log_interaction(
    uow: UnitOfWork, actor: Principal, merchant: Merchant, data: InteractionIn
) -> Interaction:
    """Record a visit, call, meeting or training salon, and the next action promised."""
    now = uow.clock.now()
    if data.occurred_at > now + _CLOCK_SKEW:
        raise invalid("body.occurred_at", _("cannot be in the future; log interactions once held"))
    if actor.kind != "user":
        raise Forbidden(_("Interactions are logged by the bank's staff."))
    interaction = Interaction(
        public_id=new_public_id("itx"),
        merchant_id=merchant.id,
        manager_id=actor.id,
        kind=data.kind,
        occurred_at=data.occurred_at,
        notes=data.notes,
        next_action=data.next_action,
        next_action_on=data.next_action_on,
        created_at=now,
    )
    uow.session.add(interaction)
    uow.session.flush()
    audit.record(
        uow.session,
        actor=actor,
        at=now,
        action="interaction.logged",
        object_type="interaction",
        object_id=interaction.public_id,
        after={
            "merchant": merchant.public_id,
            **audit.snapshot(
                interaction, only=("kind", "occurred_at", "notes", "next_action", "next_action_on")
            ),
        },
    )
    uow.commit()
    return interaction


def get_interaction(uow: UnitOfWork, actor: Principal, public_id: str) -> Interaction:
    interaction = uow.session.scalars(
        select(Interaction).where(Interaction.public_id == public_id)
    ).one_or_none()
    if interaction is None:
        raise NotFound(_("No interaction %(public_id)r here.", public_id=public_id))
    ensure_visible(actor, interaction.merchant_id, N_("interaction"), public_id)
    return interaction


def list_interactions(
    uow: UnitOfWork, merchant: Merchant, *, cursor: str | None, limit: int
) -> tuple[Sequence[Interaction], str | None]:
    """The merchant's log, newest first."""
    stmt = select(Interaction).where(Interaction.merchant_id == merchant.id)
    return paginate(uow.session, stmt, Interaction.id, cursor=cursor, limit=limit, descending=True)


def complete_follow_up(uow: UnitOfWork, actor: Principal, interaction: Interaction) -> Interaction:
    if interaction.next_action is None:
        raise Conflict(
            _("Interaction %(interaction)s has no follow-up.", interaction=interaction.public_id)
        )
    if interaction.follow_up_done_at is not None:
        raise Conflict(
            _(
                "The follow-up of %(interaction)s is done already.",
                interaction=interaction.public_id,
            )
        )
    interaction.follow_up_done_at = uow.clock.now()
    audit.record(
        uow.session,
        actor=actor,
        at=interaction.follow_up_done_at,
        action="interaction.follow_up_done",
        object_type="interaction",
        object_id=interaction.public_id,
        after={"follow_up_done_at": interaction.follow_up_done_at.isoformat()},
    )
    uow.commit()
    return interaction


def is_overdue(interaction: Interaction, today: date) -> bool:
    return (
        interaction.next_action_on is not None
        and interaction.follow_up_done_at is None
        and interaction.next_action_on < today
    )


def follow_ups(
    uow: UnitOfWork,
    actor: Principal,
    *,
    manager_id: int | None,
    overdue: bool,
    today: date,
    cursor: str | None,
    limit: int,
) -> tuple[Sequence[Interaction], str | None]:
    """Open follow-ups (only those past due if `overdue`). A relationship manager sees their own;
    a merchant sees its own; the bank's other staff see everyone's or one manager's."""
    stmt = select(Interaction).where(
        Interaction.next_action_on.is_not(None), Interaction.follow_up_done_at.is_(None)
    )
    if actor.merchant_id is not None:
        stmt = stmt.where(Interaction.merchant_id == actor.merchant_id)
    elif actor.role == Role.RELATIONSHIP_MANAGER:
        if manager_id not in (None, actor.id):
            raise Forbidden(_("Relationship managers see their own follow-ups."))
        manager_id = actor.id
    if manager_id is not None:
        stmt = stmt.where(Interaction.manager_id == manager_id)
    if overdue:
        stmt = stmt.where(Interaction.next_action_on < today)
    return paginate(uow.session, stmt, Interaction.id, cursor=cursor, limit=limit)
