"""Merchants: profile, locations and card terminals, settlement account, contacts, verification and
the lifecycle (see `lifecycle` for the transition table)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError

from beyondbank.alliance import admission, lifecycle
from beyondbank.alliance.models import (
    Application,
    ApplicationStatus,
    KybStatus,
    ManagerAssignment,
    Merchant,
    MerchantContact,
    MerchantLocation,
    MerchantStatus,
    MerchantTerminal,
    Seat,
)
from beyondbank.alliance.schemas import (
    ContactIn,
    LocationIn,
    MerchantIn,
    MerchantPatch,
    SelfApplicationIn,
    SettlementAccountIn,
    TerminalIn,
)
from beyondbank.alliance.service import held_seats, lock_rows, patch_values
from beyondbank.alliance.taxonomy import LifeDomain, taxonomy
from beyondbank.core import audit
from beyondbank.core.authz import Permission, Principal, Role, can
from beyondbank.core.errors import Conflict, FieldError, Forbidden, InvalidInput, NotFound, invalid
from beyondbank.core.i18n import _
from beyondbank.core.ids import new_public_id
from beyondbank.core.pagination import paginate
from beyondbank.core.uow import UnitOfWork
from beyondbank.identity import service as identity

# Statuses in which a merchant trades in the alliance and must keep at least one location.
_TRADING = frozenset({MerchantStatus.ADMITTED, MerchantStatus.ACTIVE, MerchantStatus.SUSPENDED})
# Fields only the bank may change: they decide which slot a merchant competes for.
_CATEGORY_FIELDS = frozenset({"sub_industry", "mcc"})


def _applicant(email: str) -> Principal:
    """Who acts in an online application: the platform, on behalf of a person not yet signed up."""
    return Principal(
        kind="system", id=0, public_id="self-service", label=f"online applicant {email}"
    )


# -- creating ----------------------------------------------------------------------------------


def _terminal_rows(location: MerchantLocation, terminals: Sequence[TerminalIn], now: Any) -> None:
    for terminal in terminals:
        location.terminals.append(
            MerchantTerminal(
                public_id=new_public_id("trm"),
                acquirer_merchant_id=terminal.acquirer_merchant_id,
                terminal_id=terminal.terminal_id,
                created_at=now,
            )
        )


def _location_row(merchant: Merchant, data: LocationIn, now: Any) -> MerchantLocation:
    location = MerchantLocation(
        public_id=new_public_id("loc"),
        name=data.name,
        address_line=data.address_line,
        city=data.city,
        postcode=data.postcode,
        country=data.country,
        latitude=data.latitude,
        longitude=data.longitude,
        timezone=data.timezone or merchant.timezone,
        active=True,
        created_at=now,
    )
    _terminal_rows(location, data.terminals, now)
    return location


def _contact_row(data: ContactIn) -> MerchantContact:
    return MerchantContact(public_id=new_public_id("con"), **data.model_dump())


def _duplicate_terminals(locations: Sequence[LocationIn], prefix: str) -> list[FieldError]:
    """The same terminal twice in one request is the caller's mistake, not a conflict."""
    seen: set[tuple[str, str | None]] = set()
    errors = []
    for i, location in enumerate(locations):
        for j, terminal in enumerate(location.terminals):
            key = (terminal.acquirer_merchant_id, terminal.terminal_id)
            if key in seen:
                errors.append(FieldError(f"{prefix}{i}.terminals.{j}", _("listed twice")))
            seen.add(key)
    return errors


def _check_founded(founded_on: date | None, today: date, field: str) -> None:
    if founded_on is not None and founded_on > today:
        raise invalid(field, _("cannot be in the future"))


def _build(uow: UnitOfWork, data: MerchantIn) -> Merchant:
    errors = _duplicate_terminals(data.locations, "body.locations.")
    if errors:
        raise InvalidInput(_("Some terminals are listed twice."), errors=tuple(errors))
    now = uow.clock.now()
    _check_founded(data.founded_on, now.date(), "body.founded_on")
    sub = taxonomy().sub_industry(data.sub_industry)
    assert sub is not None  # validated by the schema
    account = data.settlement_account
    merchant = Merchant(
        public_id=new_public_id("mer"),
        legal_name=data.legal_name,
        trading_name=data.trading_name,
        registration_number=data.registration_number,
        sub_industry=data.sub_industry,
        mcc=data.mcc or sub.mcc[0],
        status=MerchantStatus.APPLIED,
        status_changed_at=now,
        timezone=data.timezone,
        description=data.description,
        website=data.website,
        founded_on=data.founded_on,
        review_count=0,
        licence_number=data.licence_number,
        kyb_status=KybStatus.PENDING,
        settlement_iban=account.iban if account else None,
        settlement_bic=account.bic if account else None,
        settlement_account_name=account.account_name if account else None,
        created_at=now,
        updated_at=now,
    )
    merchant.locations = [_location_row(merchant, loc, now) for loc in data.locations]
    merchant.contacts = [_contact_row(c) for c in data.contacts]
    _insert(
        uow,
        merchant,
        [(f"body.locations.{i}", loc.terminals) for i, loc in enumerate(data.locations)],
    )
    return merchant


def _insert(
    uow: UnitOfWork, row: object, terminals: list[tuple[str, Sequence[TerminalIn]]]
) -> None:
    """Add the row in a savepoint; a terminal another merchant registered first is a 409 naming it."""
    try:
        with uow.session.begin_nested():
            uow.session.add(row)
    except IntegrityError:
        taken = [
            FieldError(f"{path}.terminals.{j}", _("registered to a merchant already"))
            for path, items in terminals
            for j, t in enumerate(items)
            if _terminal_taken(uow, t)
        ]
        if not taken:
            raise
        raise Conflict(
            _("Some card terminals are registered to a merchant already."), errors=tuple(taken)
        ) from None


def _terminal_taken(uow: UnitOfWork, terminal: TerminalIn) -> bool:
    stmt = select(MerchantTerminal.id).where(
        MerchantTerminal.acquirer_merchant_id == terminal.acquirer_merchant_id
    )
    if terminal.terminal_id is None:
        stmt = stmt.where(MerchantTerminal.terminal_id.is_(None))
    else:
        stmt = stmt.where(MerchantTerminal.terminal_id == terminal.terminal_id)
    return uow.session.scalars(stmt).first() is not None


def _record_created(uow: UnitOfWork, actor: Principal, merchant: Merchant, action: str) -> None:
    audit.record(
        uow.session,
        actor=actor,
        at=merchant.created_at,
        action=action,
        object_type="merchant",
        object_id=merchant.public_id,
        after={
            **audit.snapshot(merchant),
            "locations": [audit.snapshot(loc) for loc in merchant.locations],
            "terminals": [
                {"acquirer_merchant_id": t.acquirer_merchant_id, "terminal_id": t.terminal_id}
                for loc in merchant.locations
                for t in loc.terminals
            ],
            "contacts": [c.public_id for c in merchant.contacts],
        },
    )


def create_merchant(uow: UnitOfWork, actor: Principal, data: MerchantIn) -> Merchant:
    """The bank registers a merchant's application on its behalf."""
    if actor.merchant_id is not None:
        raise Forbidden(
            _("A merchant's users manage their own merchant; they do not create others.")
        )
    merchant = _build(uow, data)
    _record_created(uow, actor, merchant, "merchant.created")
    uow.commit()
    return merchant


def apply_online(uow: UnitOfWork, data: SelfApplicationIn) -> Merchant:
    """A business applies on its own: the merchant (status `applied`) and its first admin user,
    written together or not at all."""
    actor = _applicant(data.admin.email)
    merchant = _build(uow, data.merchant)
    _record_created(uow, actor, merchant, "merchant.applied_online")
    identity.create_user(  # commits the merchant with its admin, or rolls both back
        uow,
        actor,
        email=data.admin.email,
        name=data.admin.name,
        role=Role.MERCHANT_ADMIN,
        merchant_id=merchant.id,
        password=data.admin.password,
    )
    return merchant


# -- reading ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MerchantFilter:
    status: MerchantStatus | None = None
    sub_industry: str | None = None
    domain: LifeDomain | None = None
    circle_id: int | None = None  # holding a seat in this circle
    manager_id: int | None = None  # looked after by this relationship manager
    text: str | None = None  # in the trading or legal name


def list_merchants(
    uow: UnitOfWork, actor: Principal, filters: MerchantFilter, *, cursor: str | None, limit: int
) -> tuple[Sequence[Merchant], str | None]:
    stmt = select(Merchant)
    if actor.merchant_id is not None:
        stmt = stmt.where(Merchant.id == actor.merchant_id)
    if filters.status is not None:
        stmt = stmt.where(Merchant.status == filters.status)
    if filters.sub_industry is not None:
        stmt = stmt.where(Merchant.sub_industry == filters.sub_industry)
    if filters.domain is not None:
        codes = [s.code for s in taxonomy().domain(filters.domain).sub_industries]
        stmt = stmt.where(Merchant.sub_industry.in_(codes))
    if filters.circle_id is not None:
        stmt = stmt.where(
            Merchant.id.in_(
                select(Seat.merchant_id).where(
                    Seat.circle_id == filters.circle_id, Seat.released_at.is_(None)
                )
            )
        )
    if filters.manager_id is not None:
        stmt = stmt.where(
            Merchant.id.in_(
                select(ManagerAssignment.merchant_id).where(
                    ManagerAssignment.manager_id == filters.manager_id,
                    ManagerAssignment.ended_at.is_(None),
                )
            )
        )
    if filters.text:
        pattern = f"%{filters.text.lower()}%"
        stmt = stmt.where(
            or_(Merchant.trading_name.ilike(pattern), Merchant.legal_name.ilike(pattern))
        )
    return paginate(uow.session, stmt, Merchant.id, cursor=cursor, limit=limit)


# -- changing the profile --------------------------------------------------------------------


def _snapshot(merchant: Merchant) -> dict[str, Any]:
    return audit.snapshot(merchant)


def _record_update(
    uow: UnitOfWork,
    actor: Principal,
    merchant: Merchant,
    before: dict[str, Any],
    action: str = "merchant.updated",
    reason: str | None = None,
) -> None:
    now = uow.clock.now()
    if audit.record_changes(
        uow.session,
        actor=actor,
        at=now,
        action=action,
        object_type="merchant",
        object_id=merchant.public_id,
        before=before,
        after=_snapshot(merchant),
        reason=reason,
    ):
        merchant.updated_at = now


def update_merchant(
    uow: UnitOfWork, actor: Principal, merchant: Merchant, patch: MerchantPatch
) -> Merchant:
    """Change the profile. A new licence number must be verified again; the sub-industry (and so
    the slot the merchant competes for) is the bank's to change, and not while it holds or
    seeks a seat."""
    values = patch_values(
        patch,
        nullable=("registration_number", "description", "website", "founded_on", "licence_number"),
    )
    if _CATEGORY_FIELDS & values.keys() and not can(actor, Permission.MERCHANTS_LIFECYCLE):
        raise Forbidden(_("Only the bank changes a merchant's sub-industry or MCC."))
    _check_founded(values.get("founded_on"), uow.clock.now().date(), "body.founded_on")
    lock_rows(uow, Merchant.id, [merchant.id])
    uow.session.refresh(merchant)
    if "sub_industry" in values and values["sub_industry"] != merchant.sub_industry:
        _ensure_no_slot_business(uow, merchant)
        sub = taxonomy().sub_industry(values["sub_industry"])
        assert sub is not None  # validated by the schema
        values.setdefault("mcc", sub.mcc[0])
    elif "mcc" in values:
        sub = taxonomy().sub_industry(merchant.sub_industry)
        if sub is not None and values["mcc"] not in sub.mcc:
            raise invalid(
                "body.mcc",
                _(
                    "not one of %(sub_industry)s's codes: %(codes)s",
                    sub_industry=sub.code,
                    codes=", ".join(sub.mcc),
                ),
            )
    if "licence_number" in values and values["licence_number"] != merchant.licence_number:
        merchant.licence_verified_at = None
    before = _snapshot(merchant)
    for name, value in values.items():
        setattr(merchant, name, value)
    _record_update(uow, actor, merchant, before)
    uow.commit()
    return merchant


def _ensure_no_slot_business(uow: UnitOfWork, merchant: Merchant) -> None:
    if held_seats(uow, merchant_id=merchant.id):
        raise Conflict(
            _(
                "%(merchant)s holds seats in its current sub-industry.",
                merchant=merchant.trading_name,
            )
        )
    open_application = uow.session.scalars(
        select(Application.id).where(
            Application.merchant_id == merchant.id,
            Application.status.in_(admission.OPEN_APPLICATIONS),
        )
    ).first()
    if open_application is not None:
        raise Conflict(
            _(
                "%(merchant)s has open applications in its sub-industry.",
                merchant=merchant.trading_name,
            )
        )


def set_settlement_account(
    uow: UnitOfWork, actor: Principal, merchant: Merchant, data: SettlementAccountIn
) -> Merchant:
    before = _snapshot(merchant)
    merchant.settlement_iban = data.iban
    merchant.settlement_bic = data.bic
    merchant.settlement_account_name = data.account_name
    _record_update(uow, actor, merchant, before, "merchant.settlement_account_set")
    uow.commit()
    return merchant


def record_licence_verification(
    uow: UnitOfWork, actor: Principal, merchant: Merchant, *, verified: bool, note: str
) -> Merchant:
    """Staff record that they checked the business licence (or that it did not check out)."""
    if verified and not merchant.licence_number:
        raise Conflict(
            _(
                "%(merchant)s has no licence number on file to verify.",
                merchant=merchant.trading_name,
            )
        )
    before = _snapshot(merchant)
    merchant.licence_verified_at = uow.clock.now() if verified else None
    _record_update(uow, actor, merchant, before, "merchant.licence_verification", reason=note)
    uow.commit()
    return merchant


def record_kyb(
    uow: UnitOfWork, actor: Principal, merchant: Merchant, *, result: KybStatus, note: str
) -> Merchant:
    """Staff record the outcome of know-your-business due diligence."""
    before = _snapshot(merchant)
    merchant.kyb_status = result
    merchant.kyb_checked_at = uow.clock.now()
    _record_update(uow, actor, merchant, before, "merchant.kyb_recorded", reason=note)
    uow.commit()
    return merchant


def record_reviews(
    uow: UnitOfWork,
    actor: Principal,
    merchant: Merchant,
    *,
    score: Decimal,
    count: int,
    source: str,
) -> Merchant:
    """Staff record the merchant's public review score and count, and where they come from."""
    before = _snapshot(merchant)
    merchant.review_score = score
    merchant.review_count = count
    _record_update(uow, actor, merchant, before, "merchant.reviews_recorded", reason=source)
    uow.commit()
    return merchant


# -- locations, terminals, contacts ----------------------------------------------------------


def _record_part(
    uow: UnitOfWork,
    actor: Principal,
    merchant: Merchant,
    action: str,
    *,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> None:
    merchant.updated_at = uow.clock.now()
    audit.record(
        uow.session,
        actor=actor,
        at=merchant.updated_at,
        action=action,
        object_type="merchant",
        object_id=merchant.public_id,
        before=before,
        after=after,
    )


def add_location(
    uow: UnitOfWork, actor: Principal, merchant: Merchant, data: LocationIn
) -> MerchantLocation:
    errors = _duplicate_terminals([data], "body.")
    if errors:
        raise InvalidInput(_("Some terminals are listed twice."), errors=tuple(e for e in errors))
    location = _location_row(merchant, data, uow.clock.now())
    location.merchant_id = merchant.id
    _insert(uow, location, [("body", data.terminals)])
    _record_part(
        uow,
        actor,
        merchant,
        "merchant.location_added",
        after={"location": audit.snapshot(location)},
    )
    uow.commit()
    uow.session.expire(merchant, ["locations"])
    return location


def _location(merchant: Merchant, public_id: str) -> MerchantLocation:
    location = next((loc for loc in merchant.locations if loc.public_id == public_id), None)
    if location is None:
        raise NotFound(_("No location %(public_id)r here.", public_id=public_id))
    return location


def remove_location(
    uow: UnitOfWork, actor: Principal, merchant: Merchant, location_id: str
) -> MerchantLocation:
    """Close a location: it stays in the history (redemptions refer to it), its terminals go."""
    lock_rows(uow, Merchant.id, [merchant.id])
    uow.session.refresh(merchant)
    location = _location(merchant, location_id)
    if not location.active:
        raise Conflict(_("Location %(location_id)s is closed already.", location_id=location_id))
    others = [loc for loc in merchant.locations if loc.active and loc.id != location.id]
    if not others and merchant.status in _TRADING:
        raise Conflict(
            _(
                "%(merchant)s is %(status)s: it must keep at least one location.",
                merchant=merchant.trading_name,
                status=merchant.status.value,
            )
        )
    terminals = [_terminal_summary(t) for t in location.terminals]
    for terminal in list(location.terminals):
        uow.session.delete(terminal)
    location.active = False
    _record_part(
        uow,
        actor,
        merchant,
        "merchant.location_removed",
        before={"location": location.public_id, "terminals": terminals},
    )
    uow.commit()
    return location


def _terminal_summary(terminal: MerchantTerminal) -> dict[str, Any]:
    return {
        "id": terminal.public_id,
        "acquirer_merchant_id": terminal.acquirer_merchant_id,
        "terminal_id": terminal.terminal_id,
    }


def add_terminal(
    uow: UnitOfWork, actor: Principal, merchant: Merchant, location_id: str, data: TerminalIn
) -> MerchantTerminal:
    location = _location(merchant, location_id)
    if not location.active:
        raise Conflict(_("Location %(location_id)s is closed.", location_id=location_id))
    terminal = MerchantTerminal(
        public_id=new_public_id("trm"),
        location_id=location.id,
        acquirer_merchant_id=data.acquirer_merchant_id,
        terminal_id=data.terminal_id,
        created_at=uow.clock.now(),
    )
    try:
        with uow.session.begin_nested():
            uow.session.add(terminal)
    except IntegrityError:
        raise Conflict(
            _(
                "Terminal %(acquirer_merchant_id)s/%(terminal_id)s is registered to a merchant already.",
                acquirer_merchant_id=data.acquirer_merchant_id,
                terminal_id=data.terminal_id or "*",
            ),
            errors=(FieldError("body", _("registered to a merchant already")),),
        ) from None
    _record_part(uow, actor, merchant, "merchant.terminal_added", after=_terminal_summary(terminal))
    uow.commit()
    uow.session.expire(location, ["terminals"])
    return terminal


def remove_terminal(
    uow: UnitOfWork, actor: Principal, merchant: Merchant, terminal_id: str
) -> None:
    terminal = next(
        (t for loc in merchant.locations for t in loc.terminals if t.public_id == terminal_id), None
    )
    if terminal is None:
        raise NotFound(_("No terminal %(terminal_id)r here.", terminal_id=terminal_id))
    summary, location = _terminal_summary(terminal), terminal.location
    uow.session.delete(terminal)
    _record_part(uow, actor, merchant, "merchant.terminal_removed", before=summary)
    uow.commit()
    uow.session.expire(location, ["terminals"])


def add_contact(
    uow: UnitOfWork, actor: Principal, merchant: Merchant, data: ContactIn
) -> MerchantContact:
    """Add a contact; a new primary contact takes over from the previous one."""
    if data.is_primary:
        uow.session.execute(
            update(MerchantContact)
            .where(MerchantContact.merchant_id == merchant.id, MerchantContact.is_primary)
            .values(is_primary=False)
        )
    contact = _contact_row(data)
    contact.merchant_id = merchant.id
    uow.session.add(contact)
    uow.session.flush()
    _record_part(
        uow, actor, merchant, "merchant.contact_added", after={"contact": audit.snapshot(contact)}
    )
    uow.commit()
    uow.session.expire(merchant, ["contacts"])
    return contact


def remove_contact(uow: UnitOfWork, actor: Principal, merchant: Merchant, contact_id: str) -> None:
    contact = next((c for c in merchant.contacts if c.public_id == contact_id), None)
    if contact is None:
        raise NotFound(_("No contact %(contact_id)r here.", contact_id=contact_id))
    before = {"contact": audit.snapshot(contact)}
    uow.session.delete(contact)
    _record_part(uow, actor, merchant, "merchant.contact_removed", before=before)
    uow.commit()
    uow.session.expire(merchant, ["contacts"])


# -- lifecycle -------------------------------------------------------------------------------


def change_status(
    uow: UnitOfWork, actor: Principal, merchant: Merchant, to: MerchantStatus, reason: str
) -> Merchant:
    """Move the merchant along its lifecycle. Exiting releases its seats and offers each freed
    slot to the slot's waitlist; a rejection refuses its open applications."""
    lock_rows(uow, Merchant.id, [merchant.id])
    uow.session.refresh(merchant)
    lifecycle.check_transition(merchant, to)
    if to == MerchantStatus.EXITED:
        admission.withdraw_from_alliance(
            uow,
            actor,
            merchant,
            closing=ApplicationStatus.WITHDRAWN,
            reason=f"merchant exited: {reason}",
        )
    elif to == MerchantStatus.REJECTED:
        admission.withdraw_from_alliance(
            uow,
            actor,
            merchant,
            closing=ApplicationStatus.REJECTED,
            reason=f"merchant rejected: {reason}",
        )
    lifecycle.set_status(uow, actor, merchant, to, reason)
    uow.commit()
    return merchant


# -- the merchant's review figures over time (read-only) -----------------------------------------

REVIEW_HISTORY_LIMIT = 100


@dataclass(frozen=True, slots=True)
class ReviewRecord:
    """The review score and count as they stood after one recording, and where they came from."""

    at: date  # the moment it was recorded (a datetime)
    score: Decimal | None
    count: int
    source: str | None


def review_history(
    uow: UnitOfWork, merchant: Merchant, *, limit: int = REVIEW_HISTORY_LIMIT
) -> list[ReviewRecord]:
    """The merchant's recorded review figures, oldest first (the latest `limit` recordings).

    Each recording's audit entry keeps only the fields it changed, so the figures are rebuilt
    backwards from the merchant's current ones.
    """
    events, _more = audit.trail(
        uow.session,
        audit.TrailFilter(
            object_type="merchant",
            object_id=merchant.public_id,
            action="merchant.reviews_recorded",
        ),
        cursor=None,
        limit=limit,
    )
    score, count = merchant.review_score, merchant.review_count
    newest_first: list[ReviewRecord] = []
    for event in events:
        newest_first.append(ReviewRecord(event.occurred_at, score, count, event.reason))
        before = event.before or {}
        if "review_score" in before:
            old = before["review_score"]
            score = Decimal(str(old)) if old is not None else None
        if "review_count" in before:
            count = int(before["review_count"])
    return list(reversed(newest_first))
