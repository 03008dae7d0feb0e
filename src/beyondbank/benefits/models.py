"""Benefit, redemption and per-member usage tables; every field the matching rules use lives here."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import Boolean, CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from beyondbank.core.db import Base, IdMixin, str_enum


class BenefitKind(StrEnum):
    PERCENT_OFF = "percent_off"
    AMOUNT_OFF = "amount_off"
    SPEND_THRESHOLD = "spend_threshold"
    POINTS_MULTIPLIER = "points_multiplier"
    GIFT = "gift"
    FREE_TRIAL = "free_trial"
    EVENT = "event"


CASH_KINDS = frozenset(
    {BenefitKind.PERCENT_OFF, BenefitKind.AMOUNT_OFF, BenefitKind.SPEND_THRESHOLD}
)


class Channel(StrEnum):
    CARD_LINKED = "card_linked"
    VOUCHER = "voucher"
    ONLINE = "online"


class BenefitStatus(StrEnum):
    DRAFT = "draft"
    SUBMITTED = "submitted"
    ACTIVE = "active"
    PAUSED = "paused"
    REJECTED = "rejected"
    ENDED = "ended"


class LimitPeriod(StrEnum):
    DAY = "day"
    WEEK = "week"  # ISO week
    MONTH = "month"  # calendar month
    CAMPAIGN = "campaign"  # the benefit's whole life


class Stacking(StrEnum):
    EXCLUSIVE = "exclusive"
    STACKABLE = "stackable"


class Benefit(IdMixin, Base):
    """A merchant-funded benefit for alliance members.

    Amounts are integer minor units of `currency`. Schedules read in `timezone` (the merchant's):
    dates inclusive, ISO weekdays (1 = Monday), hours `[hour_start, hour_end)`.
    """

    __tablename__ = "benefits"
    __table_args__ = (
        CheckConstraint("valid_from <= valid_to", name="dates_ordered"),
        CheckConstraint(
            "hour_start >= 0 AND hour_end <= 24 AND hour_start < hour_end", name="hours_ordered"
        ),
        CheckConstraint("min_spend_minor >= 0", name="min_spend_non_negative"),
        CheckConstraint(
            "percent_bps IS NULL OR (percent_bps > 0 AND percent_bps <= 10000)",
            name="percent_range",
        ),
        CheckConstraint(
            "max_reward_minor IS NULL OR max_reward_minor > 0", name="max_reward_positive"
        ),
        CheckConstraint("fixed_minor IS NULL OR fixed_minor > 0", name="fixed_positive"),
        CheckConstraint(
            "threshold_minor IS NULL OR threshold_minor > 0", name="threshold_positive"
        ),
        CheckConstraint(
            "points_multiplier IS NULL OR points_multiplier >= 2", name="multiplier_range"
        ),
        CheckConstraint("member_limit IS NULL OR member_limit > 0", name="member_limit_positive"),
        CheckConstraint(
            "budget_minor IS NULL OR (budget_remaining_minor >= 0"
            " AND budget_remaining_minor <= budget_minor)",
            name="budget_within_bounds",
        ),
        CheckConstraint(
            "quantity IS NULL OR (quantity_remaining >= 0 AND quantity_remaining <= quantity)",
            name="quantity_within_bounds",
        ),
        CheckConstraint("merchant_share_bps BETWEEN 0 AND 10000", name="merchant_share_range"),
        CheckConstraint("commission_bps BETWEEN 0 AND 10000", name="commission_range"),
        CheckConstraint(
            "new_to_merchant_days IS NULL OR new_to_merchant_days > 0",
            name="new_to_merchant_positive",
        ),
        CheckConstraint(
            "public_discount_bps IS NULL OR public_discount_bps BETWEEN 0 AND 10000",
            name="public_discount_range",
        ),
    )

    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"), index=True)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    kind: Mapped[BenefitKind] = mapped_column(str_enum(BenefitKind))
    channels: Mapped[list[str]]
    status: Mapped[BenefitStatus] = mapped_column(str_enum(BenefitStatus), index=True)
    currency: Mapped[str] = mapped_column(String(3))

    valid_from: Mapped[date]
    valid_to: Mapped[date]
    weekdays: Mapped[list[int]]  # ISO weekdays, 1 = Monday … 7 = Sunday
    hour_start: Mapped[int] = mapped_column(default=0)
    hour_end: Mapped[int] = mapped_column(default=24)
    timezone: Mapped[str] = mapped_column(String(64))

    min_spend_minor: Mapped[int] = mapped_column(default=0)
    percent_bps: Mapped[int | None]  # percent_off
    max_reward_minor: Mapped[int | None]  # cap for percent_off
    fixed_minor: Mapped[int | None]  # amount_off, spend_threshold reward
    threshold_minor: Mapped[int | None]  # spend_threshold
    points_multiplier: Mapped[int | None]  # points_multiplier
    offer_details: Mapped[str | None] = mapped_column(Text)  # gift, free trial, event

    member_limit: Mapped[int | None]
    limit_period: Mapped[LimitPeriod] = mapped_column(
        str_enum(LimitPeriod), default=LimitPeriod.CAMPAIGN
    )
    budget_minor: Mapped[int | None]
    budget_remaining_minor: Mapped[int | None]
    quantity: Mapped[int | None]  # redemptions available in all ("the first 100 members")
    quantity_remaining: Mapped[int | None]

    merchant_share_bps: Mapped[int] = mapped_column(default=10000)  # merchant funds this share
    commission_bps: Mapped[int] = mapped_column(default=0)  # bank's commission on the purchase
    new_to_merchant_days: Mapped[int | None]
    stacking: Mapped[Stacking] = mapped_column(str_enum(Stacking), default=Stacking.EXCLUSIVE)

    # Price integrity: what the merchant offers everyone for the same goods.
    regular_price_minor: Mapped[int | None]
    public_price_minor: Mapped[int | None]
    public_discount_bps: Mapped[int | None]
    publicly_available: Mapped[bool] = mapped_column(Boolean, default=False)

    submitted_at: Mapped[datetime | None]
    decided_at: Mapped[datetime | None]
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    decision_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    targets: Mapped[list[BenefitTarget]] = relationship(
        back_populates="benefit", lazy="selectin", cascade="all, delete-orphan"
    )


class BenefitTarget(Base):
    """A circle (geographic or segment) the benefit is limited to; none means every member."""

    __tablename__ = "benefit_targets"
    __table_args__ = (UniqueConstraint("benefit_id", "circle_id"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    benefit_id: Mapped[int] = mapped_column(ForeignKey("benefits.id", ondelete="CASCADE"))
    circle_id: Mapped[int] = mapped_column(ForeignKey("circles.id"), index=True)

    benefit: Mapped[Benefit] = relationship(back_populates="targets")


class BenefitUsage(Base):
    """How often a member used a benefit in a period; the conditional upsert enforces the limit."""

    __tablename__ = "benefit_usages"
    __table_args__ = (
        UniqueConstraint("benefit_id", "member_id", "period_key"),
        # A reversal gives the use back; the row stays (at zero) as the period's history.
        CheckConstraint("uses >= 0", name="uses_non_negative"),
    )

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    benefit_id: Mapped[int] = mapped_column(ForeignKey("benefits.id"))
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"), index=True)
    period_key: Mapped[str] = mapped_column(
        String(16)
    )  # 2026-11-22 | 2026-W47 | 2026-11 | campaign
    uses: Mapped[int]


class RedemptionStatus(StrEnum):
    REDEEMED = "redeemed"
    REVERSED = "reversed"


class Redemption(IdMixin, Base):
    """A voucher redeemed at the counter: one scan of a member's dynamic code, recorded once."""

    __tablename__ = "redemptions"
    __table_args__ = (
        # A member's code is single-use: one redemption per member per code window.
        UniqueConstraint("member_id", "code_step"),
        Index("ix_redemptions_merchant_time", "merchant_id", "redeemed_at"),
        # New-to-merchant checks look up a member's latest redemption at a merchant.
        Index("ix_redemptions_member_merchant_time", "member_id", "merchant_id", "redeemed_at"),
        CheckConstraint("reward_minor >= 0", name="reward_non_negative"),
        CheckConstraint(
            "merchant_funded_minor + bank_funded_minor = reward_minor", name="funding_adds_up"
        ),
    )

    benefit_id: Mapped[int] = mapped_column(ForeignKey("benefits.id"), index=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"), index=True)
    # The member number read from the code: what the counter saw, and how staff search.
    member_number: Mapped[str] = mapped_column(String(10), index=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"))
    location_id: Mapped[int | None] = mapped_column(ForeignKey("merchant_locations.id"))
    redeemed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    redeemed_by_client_id: Mapped[int | None] = mapped_column(ForeignKey("api_clients.id"))
    status: Mapped[RedemptionStatus] = mapped_column(str_enum(RedemptionStatus))
    currency: Mapped[str] = mapped_column(String(3))
    purchase_amount_minor: Mapped[int | None]
    reward_minor: Mapped[int]  # value given: discount, or 0 for gifts, trials and events
    # Who pays for the reward (the terms at the time), and the bank's commission on the purchase.
    merchant_funded_minor: Mapped[int]
    bank_funded_minor: Mapped[int]
    commission_minor: Mapped[int]
    period_key: Mapped[str] = mapped_column(String(16))
    code_step: Mapped[int]
    redeemed_at: Mapped[datetime]
    reversed_at: Mapped[datetime | None]
    reversal_reason: Mapped[str | None] = mapped_column(Text)
