"""Request and response shapes for the alliance: field validation lives here, so errors name the field."""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal
from functools import lru_cache
from typing import Annotated, Any, Literal
from zoneinfo import available_timezones

from babel import Locale
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from schwifty import BIC, IBAN

from beyondbank.alliance import segments
from beyondbank.alliance.models import (
    DEFAULT_RADIUS_M,
    ApplicationStatus,
    CircleKind,
    CircleStatus,
    CorrectiveActionStatus,
    InteractionKind,
    KybStatus,
    MemberStatus,
    MerchantStatus,
    RequirementKind,
    VisitMode,
    VisitOutcome,
    WaitlistStatus,
)
from beyondbank.alliance.taxonomy import LifeDomain, taxonomy
from beyondbank.core.i18n import _
from beyondbank.core.money import POINTS, is_currency
from beyondbank.core.passwords import check_password_strength

# -- reusable field types ----------------------------------------------------------------------


@lru_cache
def _time_zones() -> frozenset[str]:
    return frozenset(available_timezones())


@lru_cache
def _countries() -> frozenset[str]:
    codes = (code for code in Locale("en").territories if isinstance(code, str))
    return frozenset(code for code in codes if re.fullmatch(r"[A-Z]{2}", code))


def _time_zone(value: str) -> str:
    if value not in _time_zones():
        raise ValueError(_("%(value)r is not an IANA time zone (e.g. Europe/London)", value=value))
    return value


def _country(value: str) -> str:
    if value.upper() not in _countries():
        raise ValueError(_("%(value)r is not an ISO 3166 country code (e.g. GB)", value=value))
    return value.upper()


def _sub_industry(value: str) -> str:
    if taxonomy().sub_industry(value) is None:
        raise ValueError(_("%(value)r is not a sub-industry of the taxonomy", value=value))
    return value


def _iban(value: str) -> str:
    try:
        return str(IBAN(value).compact)
    except ValueError as exc:
        raise ValueError(_("not a valid IBAN: %(reason)s", reason=exc)) from None


def _bic(value: str) -> str:
    try:
        return str(BIC(value).compact)
    except ValueError as exc:
        raise ValueError(_("not a valid BIC: %(reason)s", reason=exc)) from None


Latitude = Annotated[float, Field(ge=-90, le=90, description="WGS 84 degrees")]
Longitude = Annotated[float, Field(ge=-180, le=180, description="WGS 84 degrees")]
TimeZone = Annotated[str, Field(max_length=64), AfterValidator(_time_zone)]
Country = Annotated[str, Field(min_length=2, max_length=2), AfterValidator(_country)]
SubIndustryCode = Annotated[str, Field(max_length=40), AfterValidator(_sub_industry)]
Code = Annotated[str, Field(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")]
Name = Annotated[str, Field(min_length=1, max_length=200)]
Reason = Annotated[str, Field(min_length=1, max_length=2000)]
PublicId = Annotated[str, Field(min_length=1, max_length=40)]
Radius = Annotated[int, Field(gt=0, le=100_000, description="Metres")]
Iban = Annotated[str, Field(max_length=42), AfterValidator(_iban)]
Bic = Annotated[str, Field(max_length=11), AfterValidator(_bic)]
Scalar = str | int | float | bool


class Input(BaseModel):
    """Requests refuse unknown fields, so a misspelt field is an error, not silently ignored."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


# -- taxonomy --------------------------------------------------------------------------------


class SubIndustryOut(BaseModel):
    code: str
    names: dict[str, str]
    mcc: list[str]


class DomainOut(BaseModel):
    code: LifeDomain
    names: dict[str, str]
    sub_industries: list[SubIndustryOut]


class TaxonomyOut(BaseModel):
    domains: list[DomainOut]


# -- branches --------------------------------------------------------------------------------


class BranchIn(Input):
    code: Code
    name: Name
    address: str = Field(min_length=1, max_length=400)
    latitude: Latitude
    longitude: Longitude
    timezone: TimeZone


class BranchOut(BaseModel):
    id: str
    code: str
    name: str
    address: str
    latitude: float
    longitude: float
    timezone: str
    created_at: datetime


# -- circles ---------------------------------------------------------------------------------


def _segment_rule(value: dict[str, Any] | None) -> dict[str, Any] | None:
    """Validated with the same parser that decides membership; the message names the bad part."""
    if value is None:
        return None
    try:
        segments.parse_rule(value)
    except ValidationError as exc:
        raise ValueError("; ".join(segments.describe_errors(exc))) from None
    return value


def _describe(exc: ValidationError) -> list[str]:
    """A nested model's errors as `path: message`, to report under the field that holds it."""
    return [
        f"{'.'.join(str(p) for p in error['loc']) or 'value'}: {error['msg']}"
        for error in exc.errors()
    ]


SegmentRule = Annotated[dict[str, Any], AfterValidator(_segment_rule)]


class CircleIn(Input):
    code: Code
    name: Name
    description: str | None = Field(default=None, max_length=4000)
    kind: CircleKind
    branch_id: PublicId | None = Field(
        default=None, description="Anchor branch; its coordinates are the default centre"
    )
    center_latitude: Latitude | None = None
    center_longitude: Longitude | None = None
    radius_m: Radius | None = Field(
        default=None, description=f"Geographic circles only; default {DEFAULT_RADIUS_M}"
    )
    segment_name: str | None = Field(default=None, min_length=1, max_length=100)
    segment_rule: SegmentRule | None = None


class CirclePatch(Input):
    name: Name | None = None
    description: str | None = Field(default=None, max_length=4000)
    branch_id: PublicId | None = None
    center_latitude: Latitude | None = None
    center_longitude: Longitude | None = None
    radius_m: Radius | None = None
    segment_name: str | None = Field(default=None, min_length=1, max_length=100)
    segment_rule: SegmentRule | None = None


class _MinParams(Input):
    min: float = Field(ge=0)


class _ScoreParams(Input):
    min: float = Field(ge=0, le=5)


class _YearsParams(Input):
    years: float = Field(gt=0, le=200)


class _AllowedParams(Input):
    domains: list[LifeDomain] = Field(default_factory=list)
    codes: list[SubIndustryCode] = Field(default_factory=list)


class _NoParams(Input):
    pass


_PARAMS: dict[RequirementKind, type[Input]] = {
    RequirementKind.MIN_REVIEW_SCORE: _ScoreParams,
    RequirementKind.MIN_REVIEW_COUNT: _MinParams,
    RequirementKind.MIN_YEARS_TRADING: _YearsParams,
    RequirementKind.SUB_INDUSTRY_ALLOWED: _AllowedParams,
}


class RequirementIn(Input):
    kind: RequirementKind
    label: str = Field(
        default="",
        max_length=200,
        validate_default=True,
        description="Tells requirements of one kind apart",
    )
    params: dict[str, Any] = Field(default_factory=dict)

    @field_validator("params")
    @classmethod
    def _params_fit_kind(cls, value: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        kind = info.data.get("kind")
        if kind is None:
            return value
        try:
            parsed = _PARAMS.get(kind, _NoParams).model_validate(value)
        except ValidationError as exc:
            raise ValueError("; ".join(_describe(exc))) from None
        if isinstance(parsed, _AllowedParams) and not (parsed.domains or parsed.codes):
            raise ValueError(_("name the allowed `domains` or sub-industry `codes`"))
        return parsed.model_dump(mode="json")

    @field_validator("label")
    @classmethod
    def _manual_checks_say_what(cls, value: str, info: ValidationInfo) -> str:
        if info.data.get("kind") == RequirementKind.MANUAL_CHECK and not value:
            raise ValueError(_("a manual check needs a label saying what the manager confirms"))
        return value


class RequirementsIn(Input):
    requirements: list[RequirementIn] = Field(max_length=50)


class RequirementOut(BaseModel):
    kind: RequirementKind
    label: str
    params: dict[str, Any]


class SeatOut(BaseModel):
    sub_industry: str
    domain: LifeDomain
    merchant_id: str
    merchant_name: str
    application_id: str
    taken_at: datetime


class DomainCoverageOut(BaseModel):
    domain: LifeDomain
    names: dict[str, str]
    held: list[str]
    free: list[str]


class CircleOut(BaseModel):
    id: str
    code: str
    name: str
    description: str | None
    kind: CircleKind
    status: CircleStatus
    branch_id: str | None
    center_latitude: float | None
    center_longitude: float | None
    radius_m: int | None
    segment_name: str | None
    segment_rule: dict[str, Any] | None
    created_at: datetime
    updated_at: datetime


class CircleDetailOut(CircleOut):
    requirements: list[RequirementOut]
    seats: list[SeatOut]
    coverage: list[DomainCoverageOut]


class CircleNearOut(CircleOut):
    distance_m: float


class MemberCircleOut(CircleOut):
    because: list[str] = Field(description="home, work or segment")


# -- merchants -------------------------------------------------------------------------------


class TerminalIn(Input):
    acquirer_merchant_id: str = Field(
        min_length=1,
        max_length=15,
        pattern=r"^[0-9A-Za-z]{1,15}$",
        description="ISO 8583 DE 42, card acceptor identification code",
    )
    terminal_id: str | None = Field(
        default=None,
        pattern=r"^[0-9A-Za-z]{8}$",
        description="ISO 8583 DE 41, 8 characters; absent means every terminal of the merchant id",
    )


class TerminalOut(BaseModel):
    id: str
    acquirer_merchant_id: str
    terminal_id: str | None
    created_at: datetime


class LocationIn(Input):
    name: Name
    address_line: str = Field(min_length=1, max_length=300)
    city: str = Field(min_length=1, max_length=100)
    postcode: str | None = Field(default=None, max_length=20)
    country: Country
    latitude: Latitude
    longitude: Longitude
    timezone: TimeZone | None = Field(default=None, description="Default: the merchant's")
    terminals: list[TerminalIn] = Field(default_factory=list, max_length=500)


class LocationOut(BaseModel):
    id: str
    name: str
    address_line: str
    city: str
    postcode: str | None
    country: str
    latitude: float
    longitude: float
    timezone: str
    active: bool
    terminals: list[TerminalOut]


class ContactIn(Input):
    name: Name
    role: str | None = Field(default=None, max_length=100)
    email: EmailStr | None = None
    phone: str | None = Field(default=None, max_length=40, pattern=r"^\+?[0-9 ()-]{6,40}$")
    is_primary: bool = False


class ContactOut(BaseModel):
    id: str
    name: str
    role: str | None
    email: str | None
    phone: str | None
    is_primary: bool


class SettlementAccountIn(Input):
    iban: Iban
    bic: Bic | None = None
    account_name: str = Field(min_length=1, max_length=140)


class SettlementAccountOut(BaseModel):
    iban: str
    bic: str | None
    account_name: str | None


def _mcc_in_sub_industry(mcc: str | None, info: ValidationInfo) -> str | None:
    sub = taxonomy().sub_industry(info.data.get("sub_industry") or "")
    if mcc is not None and sub is not None and mcc not in sub.mcc:
        raise ValueError(
            _(
                "MCC %(mcc)s is not one of %(sub_industry)s's codes: %(codes)s",
                mcc=mcc,
                sub_industry=sub.code,
                codes=", ".join(sub.mcc),
            )
        )
    return mcc


def _single_primary(contacts: list[ContactIn]) -> list[ContactIn]:
    if sum(c.is_primary for c in contacts) > 1:
        raise ValueError(_("at most one contact is the primary contact"))
    return contacts


Mcc = Annotated[str, Field(pattern=r"^[0-9]{4}$", description="ISO 18245 merchant category code")]


class MerchantIn(Input):
    legal_name: Name
    trading_name: Name
    registration_number: str | None = Field(default=None, max_length=40)
    sub_industry: SubIndustryCode
    mcc: Mcc | None = Field(default=None, description="Default: the sub-industry's first code")
    timezone: TimeZone
    description: str | None = Field(default=None, max_length=4000)
    website: str | None = Field(default=None, max_length=300, pattern=r"^https?://\S+$")
    founded_on: date | None = None
    licence_number: str | None = Field(default=None, max_length=60)
    settlement_account: SettlementAccountIn | None = None
    locations: list[LocationIn] = Field(min_length=1, max_length=200)
    contacts: list[ContactIn] = Field(default_factory=list, max_length=50)

    _mcc = field_validator("mcc")(_mcc_in_sub_industry)
    _contacts = field_validator("contacts")(_single_primary)


class MerchantPatch(Input):
    legal_name: Name | None = None
    trading_name: Name | None = None
    registration_number: str | None = Field(default=None, max_length=40)
    sub_industry: SubIndustryCode | None = None
    mcc: Mcc | None = None
    timezone: TimeZone | None = None
    description: str | None = Field(default=None, max_length=4000)
    website: str | None = Field(default=None, max_length=300, pattern=r"^https?://\S+$")
    founded_on: date | None = None
    licence_number: str | None = Field(default=None, max_length=60)

    _mcc = field_validator("mcc")(_mcc_in_sub_industry)


class ApplicantIn(Input):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)  # passwords as typed

    email: EmailStr
    name: Name
    password: str = Field(min_length=12, max_length=1024)

    @field_validator("password")
    @classmethod
    def _strong(cls, value: str) -> str:
        weakness = check_password_strength(value)
        if weakness:
            raise ValueError(weakness)
        return value


class SelfApplicationIn(Input):
    """A business applying online: its profile and the person who will administer it."""

    merchant: MerchantIn
    admin: ApplicantIn


class TransitionIn(Input):
    to: MerchantStatus
    reason: Reason


class LicenceVerificationIn(Input):
    verified: bool
    note: Reason


class KybResultIn(Input):
    result: Literal[KybStatus.PASSED, KybStatus.FAILED]
    note: Reason


class ReviewsIn(Input):
    score: Decimal = Field(ge=0, le=5, max_digits=3, decimal_places=2)
    count: int = Field(ge=0)
    source: str = Field(min_length=1, max_length=100, description="Where the reviews come from")


class ManagerRef(BaseModel):
    id: str
    name: str


class MerchantOut(BaseModel):
    id: str
    legal_name: str
    trading_name: str
    registration_number: str | None
    sub_industry: str
    domain: LifeDomain
    mcc: str
    status: MerchantStatus
    status_reason: str | None
    status_changed_at: datetime | None
    timezone: str
    description: str | None
    website: str | None
    founded_on: date | None
    review_score: Decimal | None
    review_count: int
    licence_number: str | None
    licence_verified_at: datetime | None
    kyb_status: KybStatus
    kyb_checked_at: datetime | None
    created_at: datetime
    updated_at: datetime


class MerchantDetailOut(MerchantOut):
    locations: list[LocationOut]
    contacts: list[ContactOut] | None = Field(description="Only for those who may read contacts")
    settlement_account: SettlementAccountOut | None
    manager: ManagerRef | None
    circles: list[str] = Field(description="Circles where the merchant holds its seat")


# -- admission -------------------------------------------------------------------------------


class ApplicationIn(Input):
    merchant_id: PublicId
    circle_id: PublicId


class DecisionIn(Input):
    reason: Reason


class CheckConfirmationIn(Input):
    passed: bool
    note: Reason


class CheckOut(BaseModel):
    id: str
    kind: RequirementKind
    label: str
    passed: bool | None
    reason: str
    checked_at: datetime
    confirmed_by: str | None
    confirmed_at: datetime | None


class WaitlistOut(BaseModel):
    application_id: str
    circle_id: str
    sub_industry: str
    merchant_id: str
    merchant_name: str
    status: WaitlistStatus
    position: int | None = Field(description="1 is next in line; None once the entry is closed")
    joined_at: datetime
    offered_at: datetime | None
    offered_to: str | None
    closed_at: datetime | None


class ApplicationOut(BaseModel):
    id: str
    merchant_id: str
    merchant_name: str
    circle_id: str
    circle_name: str
    sub_industry: str
    status: ApplicationStatus
    submitted_at: datetime
    checked_at: datetime | None
    decided_at: datetime | None
    decided_by: str | None
    decision_reason: str | None
    checks: list[CheckOut]
    waitlist: WaitlistOut | None


# -- membership ------------------------------------------------------------------------------


class PlaceIn(Input):
    latitude: Latitude
    longitude: Longitude


class ConsentIn(Input):
    text_version: str = Field(min_length=1, max_length=40, description="The consent text shown")
    accepted: Literal[True] = Field(description="The customer ticked the consent")


class EnrolIn(Input):
    consent: ConsentIn
    home: PlaceIn | None = None
    work: PlaceIn | None = None


AttributeName = Annotated[str, Field(max_length=64, pattern=r"^[a-z][a-z0-9_]*$")]
Attributes = dict[AttributeName, Scalar | list[Scalar] | None]


class BankConsentIn(Input):
    text_version: str = Field(min_length=1, max_length=40)
    granted_at: AwareDatetime = Field(
        description="When the customer consented in the bank's channel"
    )
    channel: str = Field(default="bank", min_length=1, max_length=32)


class BankEnrolIn(Input):
    bank_ref: str = Field(min_length=1, max_length=128, description="The bank's customer reference")
    consent: BankConsentIn
    home: PlaceIn | None = None
    work: PlaceIn | None = None
    attributes: Attributes = Field(default_factory=dict)


class PlacesIn(Input):
    """Home and work places; a field sent as null clears it, a field left out keeps it."""

    home: PlaceIn | None = None
    work: PlaceIn | None = None


class AttributesIn(Input):
    attributes: Attributes


class CardIn(Input):
    card_token: str = Field(
        min_length=8, max_length=64, pattern=r"^[A-Za-z0-9_-]+$", description="The bank's token"
    )
    last4: str | None = Field(default=None, pattern=r"^[0-9]{4}$")


class LeaveIn(Input):
    reason: str | None = Field(default=None, max_length=2000)


class PlaceOut(BaseModel):
    latitude: float
    longitude: float


class CardOut(BaseModel):
    id: str
    last4: str | None
    linked_at: datetime
    unlinked_at: datetime | None


class MemberOut(BaseModel):
    id: str
    member_number: str
    status: MemberStatus
    enrolled_at: datetime
    left_at: datetime | None
    home: PlaceOut | None
    work: PlaceOut | None
    cards: list[CardOut]


class MemberAdminOut(MemberOut):
    customer_ref: str
    attributes: dict[str, Any]


# -- relationship management -----------------------------------------------------------------


class ManagerIn(Input):
    manager_id: PublicId


class AssignmentOut(BaseModel):
    manager: ManagerRef
    assigned_at: datetime
    ended_at: datetime | None


class InteractionIn(Input):
    kind: InteractionKind
    occurred_at: AwareDatetime
    notes: str = Field(min_length=1, max_length=10_000)
    next_action: str | None = Field(default=None, min_length=1, max_length=2000)
    # validate_default: the check must also run when the date is left out.
    next_action_on: date | None = Field(default=None, validate_default=True)

    @field_validator("next_action_on")
    @classmethod
    def _dated_action(cls, value: date | None, info: ValidationInfo) -> date | None:
        if "next_action" not in info.data:
            return value  # the action itself is invalid, and reported
        has_action = info.data["next_action"] is not None
        if value is None and has_action:
            raise ValueError(_("a next action needs the date it is due"))
        if value is not None and not has_action:
            raise ValueError(_("a date needs the next action it is for"))
        occurred = info.data.get("occurred_at")
        if value is not None and isinstance(occurred, datetime) and value < occurred.date():
            raise ValueError(_("the next action cannot be due before the interaction"))
        return value


class InteractionOut(BaseModel):
    id: str
    merchant_id: str
    merchant_name: str
    manager: ManagerRef
    kind: InteractionKind
    occurred_at: datetime
    notes: str
    next_action: str | None
    next_action_on: date | None
    follow_up_done_at: datetime | None
    overdue: bool


# -- mystery-shopper audit visits ------------------------------------------------------------

MAX_VISIT_ITEMS = 20


def _cash_currency(value: str) -> str:
    code = value.upper()
    if code == POINTS or not is_currency(code):
        raise ValueError(_("%(value)r is not an ISO 4217 currency (e.g. GBP)", value=value))
    return code


CashCurrency = Annotated[str, Field(min_length=3, max_length=3), AfterValidator(_cash_currency)]
PriceMinor = Annotated[int, Field(ge=0, le=10**12, description="Minor units of the currency")]


class AuditItemIn(Input):
    """One thing bought or asked for on the visit, with the two prices seen."""

    description: str = Field(min_length=1, max_length=300, description="What was bought or asked")
    currency: CashCurrency
    public_price_minor: PriceMinor = Field(description="The price anyone is charged")
    alliance_price_minor: PriceMinor = Field(description="The price charged to the member")
    benefit_honoured: bool = Field(description="Whether the member benefit was given as offered")


class AuditVisitIn(Input):
    merchant_id: PublicId
    location_id: PublicId
    mode: VisitMode
    visited_at: AwareDatetime
    staff_knew_programme: bool
    card_accepted: bool = Field(description="The bank's member card was accepted for payment")
    signage_displayed: bool = Field(description="The alliance's signage was on display")
    items: list[AuditItemIn] = Field(min_length=1, max_length=MAX_VISIT_ITEMS)
    notes: str | None = Field(default=None, min_length=1, max_length=10_000)
    corrective_action: str | None = Field(
        default=None,
        min_length=1,
        max_length=4000,
        description="What the merchant must put right; needed when the visit does not pass",
    )
    corrective_action_due_on: date | None = Field(
        default=None, description="Defaults by the outcome: 7 days after a fail, 30 after findings"
    )


class AuditItemOut(BaseModel):
    description: str
    currency: str
    public_price_minor: int
    alliance_price_minor: int
    benefit_honoured: bool
    beats_public_price: bool


class CorrectiveActionIn(Input):
    resolution: str = Field(min_length=1, max_length=4000, description="What was put right")


class CorrectiveActionOut(BaseModel):
    id: str
    visit_id: str
    merchant_id: str
    merchant_name: str
    description: str
    due_on: date
    status: CorrectiveActionStatus
    overdue: bool
    opened_at: datetime
    closed_at: datetime | None
    closed_by: ManagerRef | None
    resolution: str | None


class AuditVisitOut(BaseModel):
    id: str
    merchant_id: str
    merchant_name: str
    location_id: str
    location_name: str
    timezone: str = Field(description="The location's IANA zone, in which to show `visited_at`")
    auditor: ManagerRef | None = Field(description="Shown to the bank's staff only")
    mode: VisitMode
    visited_at: datetime
    staff_knew_programme: bool
    card_accepted: bool
    signage_displayed: bool
    outcome: VisitOutcome
    items: list[AuditItemOut]
    notes: str | None = Field(description="The auditor's notes: shown to the bank's staff only")
    corrective_action: CorrectiveActionOut | None
    recorded_at: datetime
