"""What console pages show for waitlist entries and interactions, built for a whole list at once
(one lookup of the people involved, not one per row)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from beyondbank.alliance import admission, relationships
from beyondbank.alliance.models import Interaction, InteractionKind, WaitlistEntry, WaitlistStatus
from beyondbank.core.uow import UnitOfWork
from beyondbank.web import lookups


@dataclass(frozen=True, slots=True)
class WaitlistRow:
    application_id: str
    circle_id: str
    circle_name: str
    sub_industry: str
    merchant_id: str
    merchant_name: str
    status: WaitlistStatus
    position: int | None  # 1 is next in line; None once closed
    joined_at: datetime
    offered_at: datetime | None
    offered_to: str | None  # the manager's name
    offered_to_id: int | None


def waitlist_rows(uow: UnitOfWork, entries: Sequence[WaitlistEntry]) -> list[WaitlistRow]:
    places = admission.positions(uow, entries)
    staff = lookups.staff(uow, (e.offered_to_id for e in entries))
    rows = []
    for entry in entries:
        application = entry.application
        manager = staff.get(entry.offered_to_id) if entry.offered_to_id else None
        rows.append(
            WaitlistRow(
                application_id=application.public_id,
                circle_id=application.circle.public_id,
                circle_name=application.circle.name,
                sub_industry=entry.sub_industry,
                merchant_id=application.merchant.public_id,
                merchant_name=application.merchant.trading_name,
                status=entry.status,
                position=places.get(entry.id) if entry.status in admission.OPEN_ENTRIES else None,
                joined_at=entry.joined_at,
                offered_at=entry.offered_at,
                offered_to=manager.name if manager else None,
                offered_to_id=entry.offered_to_id,
            )
        )
    return rows


@dataclass(frozen=True, slots=True)
class InteractionRow:
    id: str
    merchant_id: str
    merchant_name: str
    manager: str
    kind: InteractionKind
    occurred_at: datetime
    notes: str
    next_action: str | None
    next_action_on: date | None
    follow_up_done_at: datetime | None
    overdue: bool
    mine: bool = False


def interaction_rows(
    uow: UnitOfWork,
    interactions: Sequence[Interaction],
    today: date,
    *,
    viewer_id: int | None = None,
) -> list[InteractionRow]:
    staff = lookups.staff(uow, (i.manager_id for i in interactions))
    merchants = lookups.merchants(uow, (i.merchant_id for i in interactions))
    return [
        InteractionRow(
            id=i.public_id,
            merchant_id=merchants[i.merchant_id].public_id,
            merchant_name=merchants[i.merchant_id].trading_name,
            manager=staff[i.manager_id].name if i.manager_id in staff else "—",
            kind=i.kind,
            occurred_at=i.occurred_at,
            notes=i.notes,
            next_action=i.next_action,
            next_action_on=i.next_action_on,
            follow_up_done_at=i.follow_up_done_at,
            overdue=relationships.is_overdue(i, today),
            mine=viewer_id is not None and i.manager_id == viewer_id,
        )
        for i in interactions
    ]
