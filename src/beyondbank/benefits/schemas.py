"""Request and response shapes for benefits, member codes and redemptions; field checks live here."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from beyondbank.benefits import rules
from beyondbank.benefits.models import (
    BenefitKind,
    BenefitStatus,
    Channel,
    LimitPeriod,
    RedemptionStatus,
    Stacking,
)
from beyondbank.core.errors import FieldError, InvalidInput
from beyondbank.core.i18n import _
from beyondbank.core.money import is_currency

Weekday = Annotated[int, Field(ge=1, le=7, description="ISO weekday, 1 = Monday … 7 = Sunday")]
Minor = Annotated[int, Field(gt=0, le=10**12, description="Minor units of the currency")]
Bps = Annotated[int, Field(ge=0, le=10_000, description="Basis points: 10000 = 100%")]
PublicRef = Annotated[str, Field(min_length=1, max_length=40)]

# Fields checked against the benefit's kind (see rules.kind_field_problem).
_KIND_CHECKED = (
    "percent_bps",
    "max_reward_minor",
    "threshold_minor",
    "fixed_minor",
    "points_multiplier",
    "offer_details",
    "budget_minor",
    "regular_price_minor",
    "public_price_minor",
    "public_discount_bps",
    "publicly_available",
)
BANK_TERMS = ("merchant_share_bps", "commission_bps")


class BenefitTermsIn(BaseModel):
    """Everything a merchant or the bank sets on a benefit. Field order matters: later fields'
    checks read earlier ones (kind before its terms, starts before ends)."""

    model_config = ConfigDict(extra="forbid")

    title: str = Field(min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=4000)
    kind: BenefitKind
    channels: list[Channel] = Field(min_length=1, description="Where members can use it")
    currency: str | None = Field(
        default=None, min_length=3, max_length=3, description="Defaults to the bank's currency"
    )

    valid_from: date
    valid_to: date = Field(description="Last day, inclusive, in the benefit's time zone")
    weekdays: list[Weekday] = Field(default_factory=lambda: list(range(1, 8)), min_length=1)
    hour_start: int = Field(default=0, ge=0, le=23)
    hour_end: int = Field(default=24, ge=1, le=24, description="Exclusive: [hour_start, hour_end)")
    timezone: str | None = Field(
        default=None, max_length=64, description="IANA zone; defaults to the merchant's"
    )

    min_spend_minor: int = Field(default=0, ge=0, le=10**12)
    percent_bps: int | None = Field(default=None, ge=1, le=10_000, validate_default=True)
    max_reward_minor: Minor | None = Field(default=None, validate_default=True)
    threshold_minor: Minor | None = Field(default=None, validate_default=True)
    fixed_minor: Minor | None = Field(default=None, validate_default=True)
    points_multiplier: int | None = Field(default=None, ge=2, le=100, validate_default=True)
    offer_details: str | None = Field(default=None, max_length=2000, validate_default=True)

    member_limit: int | None = Field(default=None, ge=1, le=10_000)
    limit_period: LimitPeriod = LimitPeriod.CAMPAIGN
    budget_minor: Minor | None = Field(default=None, validate_default=True)
    quantity: int | None = Field(default=None, ge=1, le=10_000_000)

    merchant_share_bps: Bps | None = Field(
        default=None, description="Share of each reward the merchant funds (bank sets; 10000)"
    )
    commission_bps: Bps | None = Field(
        default=None, description="The bank's commission on the purchase (bank sets; 0)"
    )
    target_circle_ids: list[PublicRef] = Field(
        default_factory=list, max_length=100, description="Circles or segments; empty = everyone"
    )
    new_to_merchant_days: int | None = Field(default=None, ge=1, le=3650)
    stacking: Stacking = Stacking.EXCLUSIVE

    regular_price_minor: Minor | None = Field(default=None, validate_default=True)
    public_price_minor: int | None = Field(default=None, ge=0, le=10**12, validate_default=True)
    public_discount_bps: Bps | None = Field(default=None, validate_default=True)
    publicly_available: bool | None = Field(default=None, validate_default=True)

    @field_validator("channels")
    @classmethod
    def _distinct_channels(cls, value: list[Channel]) -> list[Channel]:
        if len(set(value)) != len(value):
            raise ValueError(_("each channel once"))
        return value

    @field_validator("currency")
    @classmethod
    def _known_currency(cls, value: str | None) -> str | None:
        if value is not None and not is_currency(value):
            raise ValueError(_("not an ISO 4217 currency code"))
        return value

    @field_validator("valid_to")
    @classmethod
    def _ends_after_start(cls, value: date, info: ValidationInfo) -> date:
        start = info.data.get("valid_from")
        if start is not None and value < start:
            raise ValueError(_("ends before it starts (%(start)s)", start=start))
        return value

    @field_validator("weekdays")
    @classmethod
    def _distinct_weekdays(cls, value: list[int]) -> list[int]:
        if len(set(value)) != len(value):
            raise ValueError(_("each weekday once"))
        return sorted(value)

    @field_validator("hour_end")
    @classmethod
    def _hours_ordered(cls, value: int, info: ValidationInfo) -> int:
        start = info.data.get("hour_start")
        if start is not None and value <= start:
            raise ValueError(
                _("must be after hour_start (%(start)s): hours are [start, end)", start=start)
            )
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        if value is not None and not rules.is_timezone(value):
            raise ValueError(_("not an IANA time zone such as Europe/London"))
        return value

    @field_validator(*_KIND_CHECKED)
    @classmethod
    def _fits_kind(cls, value: Any, info: ValidationInfo) -> Any:
        kind = info.data.get("kind")
        if kind is None or info.field_name is None:
            return value  # the kind itself is invalid, and reported
        problem = rules.kind_field_problem(kind, info.field_name, value)
        if problem is None:
            problem = _cross_field_problem(kind, info.field_name, value, info.data)
        if problem:
            raise ValueError(problem)
        return value

    @field_validator("target_circle_ids")
    @classmethod
    def _distinct_circles(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError(_("each circle once"))
        return value


def _cross_field_problem(
    kind: BenefitKind, field: str, value: Any, data: dict[str, Any]
) -> str | None:
    if field == "fixed_minor" and kind == BenefitKind.SPEND_THRESHOLD:
        threshold = data.get("threshold_minor")
        if value is not None and threshold is not None and value > threshold:
            return f"cannot exceed threshold_minor ({threshold}): the reward is off that spend"
    if (
        field == "public_discount_bps"
        and rules.is_cash(kind)
        and value is None
        and data.get("public_price_minor") is None
    ):
        return "declare the public discount on the same goods (0 if none), or public_price_minor"
    return None


class BenefitIn(BenefitTermsIn):
    merchant_id: PublicRef | None = Field(
        default=None, description="The merchant (a merchant's own users may leave it out)"
    )


class BenefitPatch(BaseModel):
    """Changes to a draft or rejected benefit; the result is checked as a whole."""

    model_config = ConfigDict(extra="forbid")

    title: str | None = None
    description: str | None = None
    kind: BenefitKind | None = None
    channels: list[Channel] | None = None
    currency: str | None = None
    valid_from: date | None = None
    valid_to: date | None = None
    weekdays: list[int] | None = None
    hour_start: int | None = None
    hour_end: int | None = None
    timezone: str | None = None
    min_spend_minor: int | None = None
    percent_bps: int | None = None
    max_reward_minor: int | None = None
    threshold_minor: int | None = None
    fixed_minor: int | None = None
    points_multiplier: int | None = None
    offer_details: str | None = None
    member_limit: int | None = None
    limit_period: LimitPeriod | None = None
    budget_minor: int | None = None
    quantity: int | None = None
    merchant_share_bps: int | None = None
    commission_bps: int | None = None
    target_circle_ids: list[str] | None = None
    new_to_merchant_days: int | None = None
    stacking: Stacking | None = None
    regular_price_minor: int | None = None
    public_price_minor: int | None = None
    public_discount_bps: int | None = None
    publicly_available: bool | None = None


def validate_terms(data: dict[str, Any]) -> BenefitTermsIn:
    """Check merged terms as a whole; 422 naming each bad field as `body.<field>`."""
    try:
        return BenefitTermsIn.model_validate(data)
    except ValidationError as exc:
        errors = []
        for error in exc.errors():
            path = ".".join(str(part) for part in ("body", *error["loc"]))
            errors.append(FieldError(path, str(error["msg"]).removeprefix("Value error, ")))
        names = ", ".join(sorted({e.field for e in errors}))
        raise InvalidInput(
            _("Some fields are not valid: %(names)s.", names=names), errors=tuple(errors)
        ) from None


class ReasonIn(BaseModel):
    reason: str = Field(min_length=3, max_length=2000)


class OptionalReasonIn(BaseModel):
    reason: str | None = Field(default=None, min_length=3, max_length=2000)


class ApproveIn(BaseModel):
    """The bank's program manager approves, and may set the bank's terms as it does."""

    merchant_share_bps: Bps | None = None
    commission_bps: Bps | None = None
    note: str | None = Field(default=None, max_length=2000)


class ExtendIn(BaseModel):
    """Changes a live benefit can take: more budget, more quantity, a later end date."""

    add_budget_minor: Minor | None = None
    add_quantity: int | None = Field(default=None, ge=1, le=10_000_000)
    valid_to: date | None = None
    reason: str | None = Field(default=None, max_length=2000)

    @model_validator(mode="after")
    def _something(self) -> ExtendIn:
        if self.add_budget_minor is None and self.add_quantity is None and self.valid_to is None:
            raise ValueError(_("give add_budget_minor, add_quantity or valid_to"))
        return self


class BenefitOut(BaseModel):
    id: str
    merchant_id: str
    title: str
    description: str | None
    kind: BenefitKind
    summary: str = Field(description="The reward in words")
    channels: list[Channel]
    status: BenefitStatus
    currency: str
    valid_from: date
    valid_to: date
    weekdays: list[int]
    hour_start: int
    hour_end: int
    timezone: str
    min_spend_minor: int
    percent_bps: int | None
    max_reward_minor: int | None
    threshold_minor: int | None
    fixed_minor: int | None
    points_multiplier: int | None
    offer_details: str | None
    member_limit: int | None
    limit_period: LimitPeriod
    budget_minor: int | None
    budget_remaining_minor: int | None
    quantity: int | None
    quantity_remaining: int | None
    merchant_share_bps: int
    commission_bps: int
    target_circle_ids: list[str]
    new_to_merchant_days: int | None
    stacking: Stacking
    regular_price_minor: int | None
    public_price_minor: int | None
    public_discount_bps: int | None
    publicly_available: bool
    price_check: str = Field(description="Why the benefit beats what everyone gets")
    submitted_at: datetime | None
    decided_at: datetime | None
    decision_reason: str | None
    created_at: datetime
    updated_at: datetime


class LocationOut(BaseModel):
    id: str
    name: str
    address_line: str
    city: str
    postcode: str | None


class MerchantCard(BaseModel):
    id: str
    name: str
    locations: list[LocationOut]


class ScheduleOut(BaseModel):
    valid_from: date
    valid_to: date
    weekdays: list[int]
    hour_start: int
    hour_end: int
    timezone: str
    description: str


class MemberBenefitOut(BaseModel):
    """A benefit as a member sees it: what, where, when, and what is left for them."""

    id: str
    title: str
    description: str | None
    kind: BenefitKind
    summary: str
    offer_details: str | None
    channels: list[Channel]
    currency: str
    min_spend_minor: int
    merchant: MerchantCard
    schedule: ScheduleOut
    new_to_merchant_days: int | None
    member_limit: int | None
    limit_period: LimitPeriod
    uses_this_period: int
    remaining_this_period: int | None = Field(description="None: no limit")
    sold_out: bool
    available_now: bool
    unavailable_reason: str | None


class MemberCodeOut(BaseModel):
    code: str = Field(description="18 digits: show as a QR code, or read out at the counter")
    member_number: str
    expires_at: datetime
    refresh_after_seconds: int
    qr_svg: str = Field(description="The code as an SVG QR code")


class RedemptionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(
        min_length=1, max_length=40, description="The member's code, scanned or typed"
    )
    benefit_id: PublicRef
    location_id: PublicRef | None = None
    purchase_amount_minor: int | None = Field(
        default=None, ge=0, le=10**12, description="Required for price benefits and minimum spends"
    )
    currency: str | None = Field(default=None, min_length=3, max_length=3)


class RedemptionOut(BaseModel):
    id: str
    status: RedemptionStatus
    benefit_id: str
    benefit_title: str
    give: str = Field(description="What the counter gives the member")
    merchant_id: str
    location_id: str | None
    member_number: str
    currency: str
    purchase_amount_minor: int | None
    reward_minor: int
    merchant_funded_minor: int
    bank_funded_minor: int
    commission_minor: int
    period_key: str
    redeemed_at: datetime
    reversed_at: datetime | None
    reversal_reason: str | None
