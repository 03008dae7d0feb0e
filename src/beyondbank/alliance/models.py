"""Alliance tables: branches, circles, merchants and their locations, admission, seats, members."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from beyondbank.core.db import Base, IdMixin, str_enum
from beyondbank.core.ids import new_public_id

DEFAULT_RADIUS_M = 3000


def _public_id(prefix: str) -> Any:
    """A column default, so rows created anywhere (import, demo, tests) get a public id."""
    return lambda: new_public_id(prefix)


def _where(condition: str) -> dict[str, Any]:
    """A partial index predicate, understood by both SQLite and PostgreSQL."""
    return {"sqlite_where": text(condition), "postgresql_where": text(condition)}


class Branch(IdMixin, Base):
    """A bank branch: the usual anchor of a geographic circle."""

    __tablename__ = "branches"
    __table_args__ = (
        CheckConstraint("latitude BETWEEN -90 AND 90", name="latitude_range"),
        CheckConstraint("longitude BETWEEN -180 AND 180", name="longitude_range"),
    )

    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    address: Mapped[str] = mapped_column(String(400))
    latitude: Mapped[float] = mapped_column(Float)
    longitude: Mapped[float] = mapped_column(Float)
    timezone: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]


class CircleKind(StrEnum):
    GEOGRAPHIC = "geographic"
    SEGMENT = "segment"


class CircleStatus(StrEnum):
    ACTIVE = "active"
    ARCHIVED = "archived"


class Circle(IdMixin, Base):
    """A business circle: a radius around a point, or a customer segment with its membership rule."""

    __tablename__ = "circles"
    __table_args__ = (
        CheckConstraint(
            "kind <> 'geographic' OR (center_latitude IS NOT NULL AND center_longitude IS NOT NULL"
            " AND radius_m IS NOT NULL)",
            name="geographic_has_area",
        ),
        CheckConstraint("kind <> 'segment' OR segment_rule IS NOT NULL", name="segment_has_rule"),
        CheckConstraint("center_latitude BETWEEN -90 AND 90", name="latitude_range"),
        CheckConstraint("center_longitude BETWEEN -180 AND 180", name="longitude_range"),
        CheckConstraint("radius_m > 0 AND radius_m <= 100000", name="radius_range"),
    )

    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    kind: Mapped[CircleKind] = mapped_column(str_enum(CircleKind))
    status: Mapped[CircleStatus] = mapped_column(
        str_enum(CircleStatus), default=CircleStatus.ACTIVE
    )
    branch_id: Mapped[int | None] = mapped_column(ForeignKey("branches.id"), index=True)
    center_latitude: Mapped[float | None] = mapped_column(Float)
    center_longitude: Mapped[float | None] = mapped_column(Float)
    radius_m: Mapped[int | None]
    segment_name: Mapped[str | None] = mapped_column(String(100))
    # A declarative rule over member attributes, e.g. {"all": [{"attr": "children", "op": "gte", "value": 1}]}
    segment_rule: Mapped[dict[str, Any] | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    branch: Mapped[Branch | None] = relationship(lazy="joined")
    requirements: Mapped[list[AdmissionRequirement]] = relationship(
        back_populates="circle", lazy="selectin", order_by="AdmissionRequirement.id"
    )


class RequirementKind(StrEnum):
    LOCATION_IN_CIRCLE = "location_in_circle"
    MIN_REVIEW_SCORE = "min_review_score"  # params: {"min": 4.0}
    MIN_REVIEW_COUNT = "min_review_count"  # params: {"min": 20}
    LICENCE_VERIFIED = "licence_verified"
    KYB_PASSED = "kyb_passed"
    SLOT_FREE = "slot_free"
    SETTLEMENT_ACCOUNT = "settlement_account"  # a valid IBAN on file
    MIN_YEARS_TRADING = "min_years_trading"  # params: {"years": 2}
    SUB_INDUSTRY_ALLOWED = "sub_industry_allowed"  # params: {"domains": [...]} or {"codes": [...]}
    MANUAL_CHECK = "manual_check"  # params: {"label": "..."}; a relationship manager confirms


class AdmissionRequirement(Base):
    """One requirement a circle sets for admission, with its parameters."""

    __tablename__ = "admission_requirements"
    __table_args__ = (UniqueConstraint("circle_id", "kind", "label"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    circle_id: Mapped[int] = mapped_column(ForeignKey("circles.id", ondelete="CASCADE"))
    kind: Mapped[RequirementKind] = mapped_column(str_enum(RequirementKind))
    label: Mapped[str] = mapped_column(String(200), default="")
    params: Mapped[dict[str, Any]]

    circle: Mapped[Circle] = relationship(back_populates="requirements")


class MerchantStatus(StrEnum):
    APPLIED = "applied"
    UNDER_REVIEW = "under_review"
    ADMITTED = "admitted"
    REJECTED = "rejected"
    ACTIVE = "active"
    SUSPENDED = "suspended"
    EXITED = "exited"


class KybStatus(StrEnum):
    PENDING = "pending"
    PASSED = "passed"
    FAILED = "failed"


class Merchant(IdMixin, Base):
    """A business in (or applying to) the alliance."""

    __tablename__ = "merchants"
    __table_args__ = (
        CheckConstraint(
            "review_score IS NULL OR (review_score >= 0 AND review_score <= 5)",
            name="review_score_range",
        ),
        CheckConstraint("review_count >= 0", name="review_count_non_negative"),
    )

    legal_name: Mapped[str] = mapped_column(String(200))
    trading_name: Mapped[str] = mapped_column(String(200), index=True)
    registration_number: Mapped[str | None] = mapped_column(String(40))
    sub_industry: Mapped[str] = mapped_column(String(40), index=True)
    mcc: Mapped[str] = mapped_column(String(4))
    status: Mapped[MerchantStatus] = mapped_column(str_enum(MerchantStatus), index=True)
    # Why and when the merchant last changed state (the full history is in the audit trail).
    status_reason: Mapped[str | None] = mapped_column(Text)
    status_changed_at: Mapped[datetime | None]
    timezone: Mapped[str] = mapped_column(String(64))
    description: Mapped[str | None] = mapped_column(Text)
    website: Mapped[str | None] = mapped_column(String(300))
    founded_on: Mapped[date | None]
    review_score: Mapped[Decimal | None] = mapped_column(Numeric(3, 2))
    review_count: Mapped[int] = mapped_column(default=0)
    licence_number: Mapped[str | None] = mapped_column(String(60))
    licence_verified_at: Mapped[datetime | None]
    kyb_status: Mapped[KybStatus] = mapped_column(str_enum(KybStatus), default=KybStatus.PENDING)
    kyb_checked_at: Mapped[datetime | None]
    settlement_iban: Mapped[str | None] = mapped_column(String(34))
    settlement_bic: Mapped[str | None] = mapped_column(String(11))
    settlement_account_name: Mapped[str | None] = mapped_column(String(140))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    locations: Mapped[list[MerchantLocation]] = relationship(
        back_populates="merchant", lazy="selectin", order_by="MerchantLocation.id"
    )
    contacts: Mapped[list[MerchantContact]] = relationship(
        back_populates="merchant", lazy="selectin", order_by="MerchantContact.id"
    )


class MerchantLocation(IdMixin, Base):
    """A place where the merchant trades; card terminals belong to a location."""

    __tablename__ = "merchant_locations"
    __table_args__ = (
        CheckConstraint("latitude BETWEEN -90 AND 90", name="latitude_range"),
        CheckConstraint("longitude BETWEEN -180 AND 180", name="longitude_range"),
        Index("ix_merchant_locations_lat_lon", "latitude", "longitude"),
    )

    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    address_line: Mapped[str] = mapped_column(String(300))
    city: Mapped[str] = mapped_column(String(100))
    postcode: Mapped[str | None] = mapped_column(String(20))
    country: Mapped[str] = mapped_column(String(2))
    latitude: Mapped[float] = mapped_column(Float)
    longitude: Mapped[float] = mapped_column(Float)
    timezone: Mapped[str] = mapped_column(String(64))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime]

    merchant: Mapped[Merchant] = relationship(back_populates="locations")
    terminals: Mapped[list[MerchantTerminal]] = relationship(
        back_populates="location", lazy="selectin", order_by="MerchantTerminal.id"
    )


class MerchantTerminal(Base):
    """The keys a card transaction carries: acquirer merchant id (DE 42) and terminal id (DE 41).

    A row without a terminal id stands for every terminal of that acquirer merchant id.
    """

    __tablename__ = "merchant_terminals"
    __table_args__ = (
        UniqueConstraint("acquirer_merchant_id", "terminal_id"),
        Index(
            "uq_merchant_terminals_mid_any_terminal",
            "acquirer_merchant_id",
            unique=True,
            **_where("terminal_id IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    public_id: Mapped[str] = mapped_column(String(40), unique=True, default=_public_id("trm"))
    location_id: Mapped[int] = mapped_column(ForeignKey("merchant_locations.id"), index=True)
    acquirer_merchant_id: Mapped[str] = mapped_column(String(15))
    terminal_id: Mapped[str | None] = mapped_column(String(8))
    created_at: Mapped[datetime]

    location: Mapped[MerchantLocation] = relationship(back_populates="terminals")


class MerchantContact(Base):
    """A person at the merchant the bank deals with; at most one is the primary contact."""

    __tablename__ = "merchant_contacts"
    __table_args__ = (
        Index("uq_merchant_contacts_primary", "merchant_id", unique=True, **_where("is_primary")),
    )

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    public_id: Mapped[str] = mapped_column(String(40), unique=True, default=_public_id("con"))
    merchant_id: Mapped[int] = mapped_column(
        ForeignKey("merchants.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str | None] = mapped_column(String(100))
    email: Mapped[str | None] = mapped_column(String(254))
    phone: Mapped[str | None] = mapped_column(String(40))
    is_primary: Mapped[bool] = mapped_column(Boolean, default=False)

    merchant: Mapped[Merchant] = relationship(back_populates="contacts")


class ApplicationStatus(StrEnum):
    SUBMITTED = "submitted"
    UNDER_REVIEW = "under_review"
    APPROVED = "approved"
    REJECTED = "rejected"
    WAITLISTED = "waitlisted"
    WITHDRAWN = "withdrawn"


class Application(IdMixin, Base):
    """A merchant's request to join one circle in its sub-industry's slot."""

    __tablename__ = "applications"
    __table_args__ = (
        Index(
            "uq_applications_open",
            "merchant_id",
            "circle_id",
            unique=True,
            **_where("status IN ('submitted', 'under_review', 'waitlisted')"),
        ),
    )

    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"), index=True)
    circle_id: Mapped[int] = mapped_column(ForeignKey("circles.id"), index=True)
    sub_industry: Mapped[str] = mapped_column(String(40))
    status: Mapped[ApplicationStatus] = mapped_column(str_enum(ApplicationStatus), index=True)
    submitted_at: Mapped[datetime]
    checked_at: Mapped[datetime | None]
    decided_at: Mapped[datetime | None]
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    decision_reason: Mapped[str | None] = mapped_column(Text)

    merchant: Mapped[Merchant] = relationship(lazy="joined")
    circle: Mapped[Circle] = relationship(lazy="joined")
    checks: Mapped[list[ApplicationCheck]] = relationship(
        back_populates="application", lazy="selectin", order_by="ApplicationCheck.id"
    )


class ApplicationCheck(Base):
    """The recorded result of one admission requirement for one application, with its reason."""

    __tablename__ = "application_checks"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    public_id: Mapped[str] = mapped_column(String(40), unique=True, default=_public_id("chk"))
    application_id: Mapped[int] = mapped_column(
        ForeignKey("applications.id", ondelete="CASCADE"), index=True
    )
    requirement_id: Mapped[int | None] = mapped_column(ForeignKey("admission_requirements.id"))
    kind: Mapped[RequirementKind] = mapped_column(str_enum(RequirementKind))
    label: Mapped[str] = mapped_column(String(200))
    passed: Mapped[bool | None] = mapped_column(Boolean)  # None: waits for a manual confirmation
    reason: Mapped[str] = mapped_column(Text)
    checked_at: Mapped[datetime]
    confirmed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    confirmed_at: Mapped[datetime | None]

    application: Mapped[Application] = relationship(back_populates="checks")


class Seat(Base):
    """A merchant holding its sub-industry's slot in a circle: the uniqueness principle lives here.

    At most one unreleased seat per (circle, sub-industry), enforced by a partial unique index.
    """

    __tablename__ = "circle_seats"
    __table_args__ = (
        Index(
            "uq_circle_seats_held",
            "circle_id",
            "sub_industry",
            unique=True,
            **_where("released_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    circle_id: Mapped[int] = mapped_column(ForeignKey("circles.id"), index=True)
    sub_industry: Mapped[str] = mapped_column(String(40))
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"), index=True)
    application_id: Mapped[int] = mapped_column(ForeignKey("applications.id"), unique=True)
    taken_at: Mapped[datetime]
    released_at: Mapped[datetime | None]
    release_reason: Mapped[str | None] = mapped_column(Text)

    merchant: Mapped[Merchant] = relationship(lazy="joined")


class WaitlistStatus(StrEnum):
    WAITING = "waiting"
    OFFERED = "offered"
    ADMITTED = "admitted"
    DECLINED = "declined"
    WITHDRAWN = "withdrawn"


class WaitlistEntry(Base):
    """An application waiting for a taken slot; offered to the relationship manager in order."""

    __tablename__ = "waitlist_entries"
    __table_args__ = (
        Index("ix_waitlist_entries_slot", "circle_id", "sub_industry", "status"),
        # A slot is offered to one waiting merchant at a time, in order of joining.
        Index(
            "uq_waitlist_entries_offered",
            "circle_id",
            "sub_industry",
            unique=True,
            **_where("status = 'offered'"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    circle_id: Mapped[int] = mapped_column(ForeignKey("circles.id"))
    sub_industry: Mapped[str] = mapped_column(String(40))
    application_id: Mapped[int] = mapped_column(ForeignKey("applications.id"), unique=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"))
    status: Mapped[WaitlistStatus] = mapped_column(str_enum(WaitlistStatus))
    joined_at: Mapped[datetime]
    offered_at: Mapped[datetime | None]
    offered_to_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    closed_at: Mapped[datetime | None]

    application: Mapped[Application] = relationship(lazy="joined")


class MemberStatus(StrEnum):
    ACTIVE = "active"
    LEFT = "left"


class Member(IdMixin, Base):
    """A customer's membership of the alliance: one active membership per customer."""

    __tablename__ = "members"
    __table_args__ = (
        Index(
            "uq_members_active_customer", "customer_id", unique=True, **_where("status = 'active'")
        ),
        CheckConstraint("home_latitude BETWEEN -90 AND 90", name="home_latitude_range"),
        CheckConstraint("home_longitude BETWEEN -180 AND 180", name="home_longitude_range"),
        CheckConstraint("work_latitude BETWEEN -90 AND 90", name="work_latitude_range"),
        CheckConstraint("work_longitude BETWEEN -180 AND 180", name="work_longitude_range"),
    )

    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    member_number: Mapped[str] = mapped_column(String(10), unique=True)
    status: Mapped[MemberStatus] = mapped_column(str_enum(MemberStatus))
    enrolled_at: Mapped[datetime]
    left_at: Mapped[datetime | None]
    home_latitude: Mapped[float | None] = mapped_column(Float)
    home_longitude: Mapped[float | None] = mapped_column(Float)
    work_latitude: Mapped[float | None] = mapped_column(Float)
    work_longitude: Mapped[float | None] = mapped_column(Float)
    # Segment attributes the bank shares with consent, e.g. {"children": 2, "car_owner": true}
    attributes: Mapped[dict[str, Any]]

    cards: Mapped[list[CardLink]] = relationship(
        back_populates="member", lazy="selectin", order_by="CardLink.id"
    )


class ConsentRecord(Base):
    """A consent given (and perhaps withdrawn), with the exact version of the text shown."""

    __tablename__ = "consent_records"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    member_id: Mapped[int | None] = mapped_column(ForeignKey("members.id"), index=True)
    purpose: Mapped[str] = mapped_column(String(64))
    text_version: Mapped[str] = mapped_column(String(40))
    granted_at: Mapped[datetime]
    withdrawn_at: Mapped[datetime | None]
    channel: Mapped[str] = mapped_column(String(32))


class CardLink(Base):
    """A payment card token linked to a member for card-linked benefits; history is kept."""

    __tablename__ = "card_links"
    __table_args__ = (
        Index(
            "uq_card_links_active_token", "card_token", unique=True, **_where("unlinked_at IS NULL")
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    public_id: Mapped[str] = mapped_column(String(40), unique=True, default=_public_id("crd"))
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"), index=True)
    card_token: Mapped[str] = mapped_column(String(64), index=True)
    last4: Mapped[str | None] = mapped_column(String(4))
    linked_at: Mapped[datetime]
    unlinked_at: Mapped[datetime | None]

    member: Mapped[Member] = relationship(back_populates="cards")


class ManagerAssignment(Base):
    """Which relationship manager looks after a merchant; one current manager per merchant."""

    __tablename__ = "manager_assignments"
    __table_args__ = (
        Index(
            "uq_manager_assignments_current",
            "merchant_id",
            unique=True,
            **_where("ended_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"), index=True)
    manager_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    assigned_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]


class InteractionKind(StrEnum):
    VISIT = "visit"
    CALL = "call"
    MEETING = "meeting"
    TRAINING_SALON = "training_salon"


class Interaction(IdMixin, Base):
    """A relationship manager's visit, call, meeting or training salon, with its follow-up."""

    __tablename__ = "interactions"

    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"), index=True)
    manager_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    kind: Mapped[InteractionKind] = mapped_column(str_enum(InteractionKind))
    occurred_at: Mapped[datetime]
    notes: Mapped[str] = mapped_column(Text)
    next_action: Mapped[str | None] = mapped_column(Text)
    next_action_on: Mapped[date | None] = mapped_column(index=True)
    follow_up_done_at: Mapped[datetime | None]
    created_at: Mapped[datetime]


class VisitMode(StrEnum):
    MYSTERY_SHOPPER = "mystery_shopper"  # anonymous: staff do not know they are being audited
    ANNOUNCED = "announced"


class VisitOutcome(StrEnum):
    PASS = "pass"  # noqa: S105 (an outcome, not a password)
    FINDINGS = "findings"
    FAIL = "fail"


class AuditVisit(IdMixin, Base):
    """An auditor's visit to one of a merchant's locations, checking that alliance prices beat
    public prices and that members get their benefits; recorded once the visit is over.

    The outcome is computed from the items and observations (`alliance.audits.outcome_of`) and
    stored, so that a later change of the rule does not rewrite past results.
    """

    __tablename__ = "audit_visits"
    __table_args__ = (Index("ix_audit_visits_merchant_visited", "merchant_id", "visited_at"),)

    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"))
    location_id: Mapped[int] = mapped_column(ForeignKey("merchant_locations.id"), index=True)
    auditor_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    mode: Mapped[VisitMode] = mapped_column(str_enum(VisitMode))
    visited_at: Mapped[datetime] = mapped_column(index=True)
    # Observations: what the auditor saw besides the prices.
    staff_knew_programme: Mapped[bool] = mapped_column(Boolean)
    card_accepted: Mapped[bool] = mapped_column(Boolean)
    signage_displayed: Mapped[bool] = mapped_column(Boolean)
    outcome: Mapped[VisitOutcome] = mapped_column(str_enum(VisitOutcome), index=True)
    notes: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]

    location: Mapped[MerchantLocation] = relationship(lazy="joined")
    items: Mapped[list[AuditItem]] = relationship(
        back_populates="visit", lazy="selectin", order_by="AuditItem.position"
    )
    corrective_action: Mapped[CorrectiveAction | None] = relationship(
        back_populates="visit", lazy="selectin"
    )


class AuditItem(Base):
    """One thing the auditor bought or asked for on a visit: the public price seen, the alliance
    price charged to the member, and whether the member benefit was honoured."""

    __tablename__ = "audit_items"
    __table_args__ = (
        UniqueConstraint("visit_id", "position"),
        CheckConstraint("public_price_minor >= 0", name="public_price_non_negative"),
        CheckConstraint("alliance_price_minor >= 0", name="alliance_price_non_negative"),
    )

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    visit_id: Mapped[int] = mapped_column(ForeignKey("audit_visits.id", ondelete="CASCADE"))
    position: Mapped[int]
    description: Mapped[str] = mapped_column(String(300))
    currency: Mapped[str] = mapped_column(String(3))
    public_price_minor: Mapped[int]
    alliance_price_minor: Mapped[int]
    benefit_honoured: Mapped[bool] = mapped_column(Boolean)

    visit: Mapped[AuditVisit] = relationship(back_populates="items")


class CorrectiveActionStatus(StrEnum):
    OPEN = "open"
    CLOSED = "closed"


class CorrectiveAction(IdMixin, Base):
    """What a merchant must put right after a visit with findings, by when; the merchant's
    relationship manager closes it once done. One per visit that did not pass."""

    __tablename__ = "corrective_actions"
    __table_args__ = (
        CheckConstraint(
            "(status = 'open' AND closed_at IS NULL AND closed_by_id IS NULL)"
            " OR (status = 'closed' AND closed_at IS NOT NULL AND closed_by_id IS NOT NULL"
            " AND resolution IS NOT NULL)",
            name="closed_has_closer",
        ),
        Index("ix_corrective_actions_open_due", "status", "due_on"),
    )

    visit_id: Mapped[int] = mapped_column(ForeignKey("audit_visits.id"), unique=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"), index=True)
    description: Mapped[str] = mapped_column(Text)
    due_on: Mapped[date]
    status: Mapped[CorrectiveActionStatus] = mapped_column(str_enum(CorrectiveActionStatus))
    opened_at: Mapped[datetime]
    closed_at: Mapped[datetime | None]
    closed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    resolution: Mapped[str | None] = mapped_column(Text)

    visit: Mapped[AuditVisit] = relationship(back_populates="corrective_action")
