"""Test data builders: small functions that insert realistic rows with sensible defaults."""

from __future__ import annotations

import itertools
from datetime import datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any

from beyondbank.alliance.membership import luhn_check_digit
from beyondbank.alliance.models import (
    AdmissionRequirement,
    Application,
    ApplicationStatus,
    Branch,
    Circle,
    CircleKind,
    KybStatus,
    Member,
    MemberStatus,
    Merchant,
    MerchantLocation,
    MerchantStatus,
    MerchantTerminal,
    RequirementKind,
    Seat,
)
from beyondbank.alliance.taxonomy import taxonomy
from beyondbank.commerce.models import Partner, PartnerStatus
from beyondbank.core.authz import PARTNER_ROLES, Principal, Role
from beyondbank.core.ids import new_public_id
from beyondbank.core.passwords import hash_password
from beyondbank.core.settings import Settings
from beyondbank.core.tokens import issue_access_token
from beyondbank.core.uow import UnitOfWork
from beyondbank.identity import service as identity
from beyondbank.identity.models import ApiClient, Customer, User

PASSWORD = "Correct-Horse-Battery-9"
_seq = itertools.count(1)

# Canary Wharf, London: the default branch and circle centre.
CANARY_WHARF = (51.5054, -0.0235)


@lru_cache
def _password_hash() -> str:
    return hash_password(PASSWORD)  # argon2 is slow on purpose; hash once per test run


def n() -> int:
    return next(_seq)


def make_partner(uow: UnitOfWork, **over: Any) -> Partner:
    i = n()
    partner = Partner(
        public_id=new_public_id("prt"),
        name=over.pop("name", f"Partner Shop {i}"),
        legal_name=over.pop("legal_name", f"Partner Shop {i} Ltd"),
        status=PartnerStatus.ACTIVE,
        country="GB",
        currency=over.pop("currency", "GBP"),
        timezone=over.pop("timezone", "Europe/London"),
        settlement_iban=over.pop("settlement_iban", None),
        settlement_bic=over.pop("settlement_bic", None),
        created_at=uow.clock.now(),
        **over,
    )
    uow.session.add(partner)
    uow.session.flush()
    return partner


def make_user(
    uow: UnitOfWork,
    role: Role,
    merchant: Merchant | None = None,
    partner: Partner | None = None,
    **over: Any,
) -> User:
    """A user; a partner role without a partner gets a partner of its own."""
    i = n()
    if role in PARTNER_ROLES and partner is None:
        partner = make_partner(uow)
    user = User(
        public_id=new_public_id("usr"),
        email=over.pop("email", f"user{i}@example.test"),
        name=over.pop("name", f"Test User {i}"),
        role=role,
        merchant_id=merchant.id if merchant else None,
        partner_id=partner.id if partner else None,
        password_hash=_password_hash(),
        active=over.pop("active", True),
        created_at=uow.clock.now(),
        **over,
    )
    uow.session.add(user)
    uow.session.flush()
    return user


def make_client(
    uow: UnitOfWork,
    scopes: list[str],
    merchant: Merchant | None = None,
    partner: Partner | None = None,
) -> ApiClient:
    client = ApiClient(
        public_id=new_public_id("cli"),
        client_id=f"bbc_test{n()}",
        secret_hash=_password_hash(),
        name="Test client",
        scopes=scopes,
        merchant_id=merchant.id if merchant else None,
        partner_id=partner.id if partner else None,
        active=True,
        created_at=uow.clock.now(),
    )
    uow.session.add(client)
    uow.session.flush()
    return client


def make_customer(uow: UnitOfWork, **over: Any) -> Customer:
    i = n()
    customer = Customer(
        public_id=new_public_id("cus"),
        bank_ref=over.pop("bank_ref", f"CUST-{i:06d}"),
        name=over.pop("name", f"Customer {i}"),
        created_at=uow.clock.now(),
        **over,
    )
    uow.session.add(customer)
    uow.session.flush()
    return customer


def make_branch(uow: UnitOfWork, at: tuple[float, float] = CANARY_WHARF) -> Branch:
    i = n()
    branch = Branch(
        public_id=new_public_id("brn"),
        code=f"BR{i:03d}",
        name=f"Branch {i}",
        address=f"{i} Bank Street, London",
        latitude=at[0],
        longitude=at[1],
        timezone="Europe/London",
        created_at=uow.clock.now(),
    )
    uow.session.add(branch)
    uow.session.flush()
    return branch


def make_circle(
    uow: UnitOfWork,
    *,
    kind: CircleKind = CircleKind.GEOGRAPHIC,
    center: tuple[float, float] = CANARY_WHARF,
    radius_m: int = 3000,
    segment_rule: dict[str, Any] | None = None,
    **over: Any,
) -> Circle:
    i = n()
    now = uow.clock.now()
    geographic = kind == CircleKind.GEOGRAPHIC
    circle = Circle(
        public_id=new_public_id("cir"),
        code=over.pop("code", f"circle-{i}"),
        name=over.pop("name", f"Circle {i}"),
        kind=kind,
        center_latitude=center[0] if geographic else None,
        center_longitude=center[1] if geographic else None,
        radius_m=radius_m if geographic else None,
        segment_name=None if geographic else over.pop("segment_name", "parents"),
        segment_rule=segment_rule if not geographic else None,
        created_at=now,
        updated_at=now,
        **over,
    )
    uow.session.add(circle)
    uow.session.flush()
    return circle


def make_merchant(
    uow: UnitOfWork,
    *,
    sub_industry: str = "restaurant",
    status: MerchantStatus = MerchantStatus.ACTIVE,
    at: tuple[float, float] = CANARY_WHARF,
    mid: str | None = None,
    **over: Any,
) -> Merchant:
    i = n()
    now = uow.clock.now()
    sub = taxonomy().sub_industry(sub_industry)
    assert sub is not None, sub_industry
    merchant = Merchant(
        public_id=new_public_id("mer"),
        legal_name=over.pop("legal_name", f"Merchant {i} Ltd"),
        trading_name=over.pop("trading_name", f"Merchant {i}"),
        sub_industry=sub_industry,
        mcc=over.pop("mcc", sub.mcc[0]),
        status=status,
        timezone="Europe/London",
        review_score=over.pop("review_score", Decimal("4.50")),
        review_count=over.pop("review_count", 120),
        licence_number=over.pop("licence_number", f"LIC-{i:05d}"),
        licence_verified_at=over.pop("licence_verified_at", now),
        kyb_status=over.pop("kyb_status", KybStatus.PASSED),
        kyb_checked_at=over.pop("kyb_checked_at", now),
        settlement_iban=over.pop("settlement_iban", "GB29NWBK60161331926819"),
        settlement_account_name=f"Merchant {i} Ltd",
        created_at=now,
        updated_at=now,
        **over,
    )
    uow.session.add(merchant)
    uow.session.flush()
    location = MerchantLocation(
        public_id=new_public_id("loc"),
        merchant_id=merchant.id,
        name="Main shop",
        address_line=f"{i} High Street",
        city="London",
        postcode="E14 5AB",
        country="GB",
        latitude=at[0],
        longitude=at[1],
        timezone="Europe/London",
        active=True,
        created_at=now,
    )
    uow.session.add(location)
    uow.session.flush()
    uow.session.add(
        MerchantTerminal(
            location_id=location.id,
            acquirer_merchant_id=mid or f"MID{i:09d}",
            terminal_id=f"T{i:07d}",
            created_at=now,
        )
    )
    uow.session.flush()
    uow.session.refresh(merchant)
    return merchant


def make_member(
    uow: UnitOfWork,
    customer: Customer | None = None,
    *,
    home: tuple[float, float] | None = None,
    attributes: dict[str, Any] | None = None,
    enrolled_at: datetime | None = None,
) -> Member:
    customer = customer or make_customer(uow)
    payload = f"{n() + 620000000:09d}"
    member = Member(
        public_id=new_public_id("mem"),
        customer_id=customer.id,
        member_number=payload + luhn_check_digit(payload),
        status=MemberStatus.ACTIVE,
        enrolled_at=enrolled_at or uow.clock.now(),
        home_latitude=home[0] if home else None,
        home_longitude=home[1] if home else None,
        attributes=attributes or {},
    )
    uow.session.add(member)
    uow.session.flush()
    return member


def make_requirement(
    uow: UnitOfWork,
    circle: Circle,
    kind: RequirementKind,
    params: dict[str, Any] | None = None,
    label: str = "",
) -> AdmissionRequirement:
    requirement = AdmissionRequirement(
        circle_id=circle.id, kind=kind, label=label, params=params or {}
    )
    uow.session.add(requirement)
    uow.session.flush()
    uow.session.expire(circle, ["requirements"])
    return requirement


def make_application(
    uow: UnitOfWork,
    merchant: Merchant,
    circle: Circle,
    status: ApplicationStatus = ApplicationStatus.UNDER_REVIEW,
) -> Application:
    now = uow.clock.now()
    application = Application(
        public_id=new_public_id("app"),
        merchant_id=merchant.id,
        circle_id=circle.id,
        sub_industry=merchant.sub_industry,
        status=status,
        submitted_at=now,
        decided_at=now if status == ApplicationStatus.APPROVED else None,
    )
    uow.session.add(application)
    uow.session.flush()
    return application


def make_seat(uow: UnitOfWork, circle: Circle, merchant: Merchant) -> Seat:
    """The merchant holding its sub-industry's seat in the circle, through an approved application."""
    application = make_application(uow, merchant, circle, ApplicationStatus.APPROVED)
    seat = Seat(
        circle_id=circle.id,
        sub_industry=merchant.sub_industry,
        merchant_id=merchant.id,
        application_id=application.id,
        taken_at=uow.clock.now(),
    )
    uow.session.add(seat)
    uow.session.flush()
    return seat


def principal(who: User | ApiClient | Customer) -> Principal:
    """The principal a service sees for this user, client (all its scopes) or customer."""
    if isinstance(who, User):
        return identity.principal_for_user(who)
    if isinstance(who, ApiClient):
        return identity.principal_for_client(who)
    return identity.principal_for_customer(who)


def token_for(
    settings: Settings, uow: UnitOfWork, kind: str, public_id: str, scopes: tuple[str, ...] = ()
) -> dict[str, str]:
    token = issue_access_token(
        settings.secret_key.get_secret_value(),
        kind=kind,
        subject=public_id,
        now=uow.clock.now(),
        ttl_seconds=3600,
        scopes=scopes,
    )
    return {"Authorization": f"Bearer {token}"}


def auth(settings: Settings, uow: UnitOfWork, who: User | ApiClient | Customer) -> dict[str, str]:
    """Bearer headers for a user, a client (all its scopes) or a customer."""
    if isinstance(who, User):
        return token_for(settings, uow, "user", who.public_id)
    if isinstance(who, ApiClient):
        return token_for(settings, uow, "client", who.public_id, tuple(who.scopes))
    return token_for(settings, uow, "customer", who.public_id)
