"""Mystery-shopper audit visits: what an auditor found at a merchant's location, the outcome that
follows from it, and the corrective action a visit that did not pass opens until it is put right.

The outcome rule (also in docs/audits.md):

- **fail** when a member was not better off than anyone else: an item's alliance price was not
  strictly below its public price, or the member benefit was refused;
- **findings** otherwise, when the programme was not run as agreed: the staff did not know the
  programme, the member card was not accepted, or the alliance's signage was not on display;
- **pass** when there is nothing of the above.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Protocol
from zoneinfo import ZoneInfo

from sqlalchemy import Select, func, select, update
from sqlalchemy.orm import joinedload, lazyload

from beyondbank.alliance.models import (
    AuditItem,
    AuditVisit,
    CorrectiveAction,
    CorrectiveActionStatus,
    Merchant,
    MerchantLocation,
    MerchantStatus,
    VisitMode,
    VisitOutcome,
)
from beyondbank.alliance.schemas import AuditVisitIn
from beyondbank.alliance.service import current_manager_id, get_location, get_merchant
from beyondbank.core import audit
from beyondbank.core.authz import Principal, ensure_visible
from beyondbank.core.errors import (
    FieldError,
    Forbidden,
    InvalidInput,
    InvalidTransition,
    NotFound,
    invalid,
)
from beyondbank.core.i18n import N_, _
from beyondbank.core.ids import new_public_id
from beyondbank.core.pagination import paginate
from beyondbank.core.uow import UnitOfWork

# Clocks on phones and laptops drift; a visit recorded "just now" may be a little ahead.
_CLOCK_SKEW = timedelta(minutes=5)
# Merchants trading in the alliance, the only ones an auditor visits (a suspended one too: to see
# whether what got it suspended is put right).
AUDITED_STATUSES = (MerchantStatus.ACTIVE, MerchantStatus.SUSPENDED)
# How long a merchant has to put things right when the auditor does not set a date.
DAYS_TO_CORRECT = {VisitOutcome.FAIL: 7, VisitOutcome.FINDINGS: 30}


class Finding(StrEnum):
    PRICE_NOT_BELOW_PUBLIC = "price_not_below_public"
    BENEFIT_REFUSED = "benefit_refused"
    STAFF_UNAWARE = "staff_unaware"
    CARD_REFUSED = "card_refused"
    NO_SIGNAGE = "no_signage"


# Findings that leave a member no better off than the public: the visit fails.
FAILING = frozenset({Finding.PRICE_NOT_BELOW_PUBLIC, Finding.BENEFIT_REFUSED})


class PricedItem(Protocol):
    """An item as typed (`AuditItemIn`) or as stored (`AuditItem`)."""

    @property
    def public_price_minor(self) -> int: ...
    @property
    def alliance_price_minor(self) -> int: ...
    @property
    def benefit_honoured(self) -> bool: ...


class Observed(Protocol):
    """A visit's observations, as typed (`AuditVisitIn`) or as stored (`AuditVisit`)."""

    @property
    def staff_knew_programme(self) -> bool: ...
    @property
    def card_accepted(self) -> bool: ...
    @property
    def signage_displayed(self) -> bool: ...


def beats_public_price(item: PricedItem) -> bool:
    """The alliance price is strictly below the public one (equal is not a benefit)."""
    return item.alliance_price_minor < item.public_price_minor


def findings_of(items: Iterable[PricedItem], observed: Observed) -> list[Finding]:
    """Every finding of a visit: the items' first, in their order, then the observations'."""
    found: list[Finding] = []
    for item in items:
        if not beats_public_price(item):
            found.append(Finding.PRICE_NOT_BELOW_PUBLIC)
        if not item.benefit_honoured:
            found.append(Finding.BENEFIT_REFUSED)
    for seen, finding in (
        (observed.staff_knew_programme, Finding.STAFF_UNAWARE),
        (observed.card_accepted, Finding.CARD_REFUSED),
        (observed.signage_displayed, Finding.NO_SIGNAGE),
    ):
        if not seen:
            found.append(finding)
    return found


def outcome_of(findings: Iterable[Finding]) -> VisitOutcome:
    """Fail if any finding left a member no better off; findings if any other; pass if none."""
    found = set(findings)
    if found & FAILING:
        return VisitOutcome.FAIL
    return VisitOutcome.FINDINGS if found else VisitOutcome.PASS


def local_visit_date(visit_at: datetime, timezone: str) -> date:
    return visit_at.astimezone(ZoneInfo(timezone)).date()


# -- recording a visit -----------------------------------------------------------------------


def record_visit(uow: UnitOfWork, actor: Principal, data: AuditVisitIn) -> AuditVisit:
    """Record a visit once made, with its items; a visit that did not pass opens its corrective
    action in the same transaction. Bad input answers every field at once and writes nothing."""
    if actor.kind != "user":
        raise Forbidden(_("Audit visits are recorded by the bank's auditors."))
    merchant = get_merchant(uow, actor, data.merchant_id, field="body.merchant_id")
    if merchant.status not in AUDITED_STATUSES:
        raise invalid("body.merchant_id", _("not trading in the alliance: nothing to audit"))
    location = get_location(uow, merchant, data.location_id, field="body.location_id")
    now = uow.clock.now()
    outcome = outcome_of(findings_of(data.items, data))
    due_on = _due_on(data, outcome, local_visit_date(data.visited_at, location.timezone))
    _check_visit(data, outcome, now, due_on, location.timezone)
    visit = AuditVisit(
        public_id=new_public_id("aud"),
        merchant_id=merchant.id,
        location=location,
        auditor_id=actor.id,
        mode=data.mode,
        visited_at=data.visited_at,
        staff_knew_programme=data.staff_knew_programme,
        card_accepted=data.card_accepted,
        signage_displayed=data.signage_displayed,
        outcome=outcome,
        notes=data.notes,
        created_at=now,
        items=[
            AuditItem(position=position, **item.model_dump())
            for position, item in enumerate(data.items, start=1)
        ],
    )
    uow.session.add(visit)
    uow.session.flush()
    _audit_recorded(uow, actor, visit, merchant, now)
    if data.corrective_action is not None and due_on is not None:
        _open_action(uow, actor, visit, data.corrective_action, due_on, now)
    uow.commit()
    return visit


def _due_on(data: AuditVisitIn, outcome: VisitOutcome, visit_day: date) -> date | None:
    if outcome == VisitOutcome.PASS:
        return None
    return data.corrective_action_due_on or visit_day + timedelta(days=DAYS_TO_CORRECT[outcome])


def _check_visit(
    data: AuditVisitIn, outcome: VisitOutcome, now: datetime, due_on: date | None, timezone: str
) -> None:
    errors: list[FieldError] = []
    if data.visited_at > now + _CLOCK_SKEW:
        errors.append(
            FieldError("body.visited_at", _("cannot be in the future; record visits once made"))
        )
    if outcome != VisitOutcome.PASS and data.corrective_action is None:
        errors.append(
            FieldError(
                "body.corrective_action",
                _("the visit did not pass: say what the merchant must put right"),
            )
        )
    if outcome == VisitOutcome.PASS and data.corrective_action is not None:
        errors.append(
            FieldError(
                "body.corrective_action", _("a visit that passed needs no corrective action")
            )
        )
    if outcome == VisitOutcome.PASS and data.corrective_action_due_on is not None:
        errors.append(
            FieldError("body.corrective_action_due_on", _("a visit that passed has nothing due"))
        )
    if due_on is not None and due_on <= local_visit_date(data.visited_at, timezone):
        errors.append(
            FieldError("body.corrective_action_due_on", _("must be after the day of the visit"))
        )
    if errors:
        raise InvalidInput(_("The visit cannot be recorded as it is."), errors=tuple(errors))


def _audit_recorded(
    uow: UnitOfWork, actor: Principal, visit: AuditVisit, merchant: Merchant, now: datetime
) -> None:
    audit.record(
        uow.session,
        actor=actor,
        at=now,
        action="audit_visit.recorded",
        object_type="audit_visit",
        object_id=visit.public_id,
        after={
            "merchant": merchant.public_id,
            "location": visit.location.public_id,
            **audit.snapshot(
                visit,
                only=(
                    "mode",
                    "visited_at",
                    "staff_knew_programme",
                    "card_accepted",
                    "signage_displayed",
                    "outcome",
                    "notes",
                ),
            ),
            "items": [
                audit.snapshot(
                    item,
                    only=(
                        "description",
                        "currency",
                        "public_price_minor",
                        "alliance_price_minor",
                        "benefit_honoured",
                    ),
                )
                for item in visit.items
            ],
        },
    )


def _open_action(
    uow: UnitOfWork,
    actor: Principal,
    visit: AuditVisit,
    description: str,
    due_on: date,
    now: datetime,
) -> None:
    action = CorrectiveAction(
        public_id=new_public_id("cor"),
        visit_id=visit.id,
        merchant_id=visit.merchant_id,
        description=description,
        due_on=due_on,
        status=CorrectiveActionStatus.OPEN,
        opened_at=now,
    )
    uow.session.add(action)
    uow.session.flush()
    visit.corrective_action = action
    audit.record(
        uow.session,
        actor=actor,
        at=now,
        action="corrective_action.opened",
        object_type="corrective_action",
        object_id=action.public_id,
        after={"visit": visit.public_id, "description": description, "due_on": due_on.isoformat()},
    )


# -- reading visits --------------------------------------------------------------------------

# A visit's location is shown with it, never the location's card terminals.
_WITH_LOCATION = joinedload(AuditVisit.location).options(lazyload(MerchantLocation.terminals))


@dataclass(frozen=True, slots=True)
class VisitFilter:
    merchant_id: int | None = None
    outcome: VisitOutcome | None = None
    mode: VisitMode | None = None
    auditor_id: int | None = None
    since: datetime | None = None  # visited at or after
    until: datetime | None = None  # visited before


def get_visit(uow: UnitOfWork, actor: Principal, public_id: str) -> AuditVisit:
    """The visit, if the principal may see it; another merchant's answers 404."""
    visit = uow.session.scalars(
        select(AuditVisit).where(AuditVisit.public_id == public_id)
    ).one_or_none()
    if visit is None:
        raise NotFound(_("No audit visit %(public_id)r here.", public_id=public_id))
    ensure_visible(actor, visit.merchant_id, N_("audit visit"), public_id)
    return visit


def list_visits(
    uow: UnitOfWork, actor: Principal, filters: VisitFilter, *, cursor: str | None, limit: int
) -> tuple[Sequence[AuditVisit], str | None]:
    """Visits matching the filters, latest recorded first; a merchant sees its own only."""
    return paginate(
        uow.session,
        _filtered(select(AuditVisit).options(_WITH_LOCATION), actor, filters),
        AuditVisit.id,
        cursor=cursor,
        limit=limit,
        descending=True,
    )


def _filtered(stmt: Select[AuditVisit], actor: Principal, f: VisitFilter) -> Select[AuditVisit]:
    if actor.merchant_id is not None:
        stmt = stmt.where(AuditVisit.merchant_id == actor.merchant_id)
    for column, value in (
        (AuditVisit.merchant_id, f.merchant_id),
        (AuditVisit.outcome, f.outcome),
        (AuditVisit.mode, f.mode),
        (AuditVisit.auditor_id, f.auditor_id),
    ):
        if value is not None:
            stmt = stmt.where(column == value)
    if f.since is not None:
        stmt = stmt.where(AuditVisit.visited_at >= f.since)
    if f.until is not None:
        stmt = stmt.where(AuditVisit.visited_at < f.until)
    return stmt


def visit_history(uow: UnitOfWork, merchant: Merchant, *, last: int = 12) -> list[AuditVisit]:
    """The merchant's last visits by the day they were made, oldest first (for a chart)."""
    rows = uow.session.scalars(
        select(AuditVisit)
        .options(_WITH_LOCATION)
        .where(AuditVisit.merchant_id == merchant.id)
        .order_by(AuditVisit.visited_at.desc(), AuditVisit.id.desc())
        .limit(last)
    ).all()
    return list(reversed(rows))


def audited_merchants(uow: UnitOfWork) -> list[tuple[str, str]]:
    """The public id and name of each merchant visited at least once, by name (a filter's
    choices): columns only, not the merchants with their locations and contacts."""
    visited = select(AuditVisit.merchant_id).distinct().scalar_subquery()
    rows = uow.session.execute(
        select(Merchant.public_id, Merchant.trading_name)
        .where(Merchant.id.in_(visited))
        .order_by(Merchant.trading_name)
    )
    return [(public_id, name) for public_id, name in rows]


def merchant_names(uow: UnitOfWork, ids: Iterable[int]) -> dict[int, tuple[str, str]]:
    """Each merchant's public id and trading name by internal id, in one query of two columns."""
    wanted = set(ids)
    if not wanted:
        return {}
    rows = uow.session.execute(
        select(Merchant.id, Merchant.public_id, Merchant.trading_name).where(
            Merchant.id.in_(wanted)
        )
    )
    return {id_: (public_id, name) for id_, public_id, name in rows}


def places_to_visit(uow: UnitOfWork) -> list[tuple[Merchant, list[MerchantLocation]]]:
    """Every merchant trading in the alliance with its open locations, by name (where an auditor
    may go)."""
    merchants = uow.session.scalars(
        select(Merchant)
        .where(Merchant.status.in_(AUDITED_STATUSES))
        .order_by(Merchant.trading_name, Merchant.id)
    ).all()
    places = [(m, [loc for loc in m.locations if loc.active]) for m in merchants]
    return [(m, locations) for m, locations in places if locations]


def location_by_public_id(uow: UnitOfWork, public_id: str) -> MerchantLocation | None:
    return uow.session.scalars(
        select(MerchantLocation).where(MerchantLocation.public_id == public_id)
    ).one_or_none()


def outcome_counts(uow: UnitOfWork, merchant: Merchant) -> dict[VisitOutcome, int]:
    rows = uow.session.execute(
        select(AuditVisit.outcome, func.count())
        .where(AuditVisit.merchant_id == merchant.id)
        .group_by(AuditVisit.outcome)
    )
    counts = dict.fromkeys(VisitOutcome, 0)
    for outcome, n in rows:
        counts[outcome] = n
    return counts


# -- corrective actions ----------------------------------------------------------------------


def is_overdue(action: CorrectiveAction, today: date) -> bool:
    return action.status == CorrectiveActionStatus.OPEN and action.due_on < today


def get_action(uow: UnitOfWork, actor: Principal, public_id: str) -> CorrectiveAction:
    action = uow.session.scalars(
        select(CorrectiveAction).where(CorrectiveAction.public_id == public_id)
    ).one_or_none()
    if action is None:
        raise NotFound(_("No corrective action %(public_id)r here.", public_id=public_id))
    ensure_visible(actor, action.merchant_id, N_("corrective action"), public_id)
    return action


def list_actions(
    uow: UnitOfWork,
    actor: Principal,
    *,
    merchant_id: int | None,
    status: CorrectiveActionStatus | None,
    overdue: bool,
    today: date,
    cursor: str | None,
    limit: int,
) -> tuple[Sequence[CorrectiveAction], str | None]:
    """Corrective actions, oldest opened first; only open ones past their date if `overdue`."""
    stmt = select(CorrectiveAction).options(
        joinedload(CorrectiveAction.visit).options(_WITH_LOCATION)
    )
    if actor.merchant_id is not None:
        stmt = stmt.where(CorrectiveAction.merchant_id == actor.merchant_id)
    if merchant_id is not None:
        stmt = stmt.where(CorrectiveAction.merchant_id == merchant_id)
    if overdue:
        status = CorrectiveActionStatus.OPEN
        stmt = stmt.where(CorrectiveAction.due_on < today)
    if status is not None:
        stmt = stmt.where(CorrectiveAction.status == status)
    return paginate(uow.session, stmt, CorrectiveAction.id, cursor=cursor, limit=limit)


def close_action(
    uow: UnitOfWork, actor: Principal, action: CorrectiveAction, resolution: str
) -> CorrectiveAction:
    """The merchant's relationship manager closes the action once put right. Two closing at
    once: the conditional update lets exactly one through; the other is told it is closed."""
    if actor.kind != "user" or current_manager_id(uow, action.merchant_id) != actor.id:
        raise Forbidden(
            _("Only the merchant's relationship manager closes its corrective actions.")
        )
    now = uow.clock.now()
    closed = uow.session.execute(
        update(CorrectiveAction)
        .where(
            CorrectiveAction.id == action.id,
            CorrectiveAction.status == CorrectiveActionStatus.OPEN,
        )
        .values(
            status=CorrectiveActionStatus.CLOSED,
            closed_at=now,
            closed_by_id=actor.id,
            resolution=resolution,
        )
        .execution_options(synchronize_session=False)
    )
    if closed.rowcount != 1:  # type: ignore[attr-defined]
        uow.rollback()
        raise InvalidTransition(
            _("Corrective action %(action)s is closed already.", action=action.public_id),
            extra={"current_status": CorrectiveActionStatus.CLOSED.value},
        )
    audit.record(
        uow.session,
        actor=actor,
        at=now,
        action="corrective_action.closed",
        object_type="corrective_action",
        object_id=action.public_id,
        before={"status": CorrectiveActionStatus.OPEN.value},
        after={"status": CorrectiveActionStatus.CLOSED.value, "resolution": resolution},
    )
    uow.commit()
    uow.session.refresh(action)
    return action
