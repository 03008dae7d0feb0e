"""Admission requirement checks: one function per requirement kind, each giving a result and
the reason a person reads ("review score 3.9 is below the circle's minimum 4.0")."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from schwifty import IBAN

from beyondbank.alliance.models import Circle, CircleKind, KybStatus, Merchant, RequirementKind
from beyondbank.alliance.service import distance_to_centre, slot_holder
from beyondbank.alliance.taxonomy import taxonomy
from beyondbank.core.uow import UnitOfWork


@dataclass(frozen=True, slots=True)
class Outcome:
    passed: bool | None  # None: waits for a relationship manager's confirmation
    reason: str


@dataclass(frozen=True, slots=True)
class CheckContext:
    uow: UnitOfWork
    merchant: Merchant
    circle: Circle
    sub_industry: str
    today: date


def _number(value: float | Decimal) -> str:
    """3.90 → "3.9", 4 → "4.0", 4.25 → "4.25": as a person would write a score."""
    text = f"{Decimal(str(value)):.2f}".rstrip("0")
    return text + "0" if text.endswith(".") else text


def _location_in_circle(ctx: CheckContext, params: dict[str, Any]) -> Outcome:
    circle = ctx.circle
    if circle.kind != CircleKind.GEOGRAPHIC or circle.radius_m is None:
        return Outcome(False, "the circle has no area to be inside")
    located = [
        (distance_to_centre(circle, loc.latitude, loc.longitude), loc.name)
        for loc in ctx.merchant.locations
        if loc.active
    ]
    located_ok = [(d, name) for d, name in located if d is not None]
    if not located_ok:
        return Outcome(False, "the merchant has no active location")
    distance, name = min(located_ok)
    if distance <= circle.radius_m:
        return Outcome(
            True,
            f"location {name!r} is {distance:,.0f} m from the centre, "
            f"inside the circle's {circle.radius_m:,} m",
        )
    shown = "more than 100 km" if distance == float("inf") else f"{distance:,.0f} m"
    return Outcome(
        False,
        f"no location is inside the circle's {circle.radius_m:,} m: the nearest, {name!r}, "
        f"is {shown} from the centre",
    )


def _min_review_score(ctx: CheckContext, params: dict[str, Any]) -> Outcome:
    minimum, score = float(params["min"]), ctx.merchant.review_score
    if score is None:
        return Outcome(
            False, f"no review score on file; the circle's minimum is {_number(minimum)}"
        )
    if float(score) < minimum:
        return Outcome(
            False,
            f"review score {_number(score)} is below the circle's minimum {_number(minimum)}",
        )
    return Outcome(True, f"review score {_number(score)} meets the minimum {_number(minimum)}")


def _min_review_count(ctx: CheckContext, params: dict[str, Any]) -> Outcome:
    minimum, count = int(params["min"]), ctx.merchant.review_count
    if count < minimum:
        return Outcome(False, f"{count} reviews, fewer than the {minimum} the circle requires")
    return Outcome(True, f"{count} reviews, at least the {minimum} required")


def _licence_verified(ctx: CheckContext, params: dict[str, Any]) -> Outcome:
    merchant = ctx.merchant
    if not merchant.licence_number:
        return Outcome(False, "no business licence on file")
    if merchant.licence_verified_at is None:
        return Outcome(False, f"licence {merchant.licence_number} has not been verified")
    return Outcome(
        True,
        f"licence {merchant.licence_number} verified on {merchant.licence_verified_at.date()}",
    )


def _kyb_passed(ctx: CheckContext, params: dict[str, Any]) -> Outcome:
    merchant = ctx.merchant
    checked = f" on {merchant.kyb_checked_at.date()}" if merchant.kyb_checked_at else ""
    if merchant.kyb_status == KybStatus.PASSED:
        return Outcome(True, f"KYB passed{checked}")
    if merchant.kyb_status == KybStatus.FAILED:
        return Outcome(False, f"KYB failed{checked}")
    return Outcome(False, "KYB has not been completed")


def _slot_free(ctx: CheckContext, params: dict[str, Any]) -> Outcome:
    holder = slot_holder(ctx.uow, ctx.circle.id, ctx.sub_industry)
    if holder is None:
        return Outcome(True, f"the {ctx.sub_industry} slot is free")
    if holder.merchant_id == ctx.merchant.id:
        return Outcome(False, f"the merchant already holds the {ctx.sub_industry} slot")
    return Outcome(
        False,
        f"the {ctx.sub_industry} slot is held by {holder.merchant.trading_name} "
        f"since {holder.taken_at.date()}",
    )


def _settlement_account(ctx: CheckContext, params: dict[str, Any]) -> Outcome:
    iban = ctx.merchant.settlement_iban
    if not iban:
        return Outcome(False, "no settlement account on file")
    try:
        IBAN(iban)
    except ValueError as exc:
        return Outcome(False, f"the settlement IBAN on file is not valid: {exc}")
    return Outcome(True, f"settlement IBAN ending {iban[-4:]} is valid")


def _min_years_trading(ctx: CheckContext, params: dict[str, Any]) -> Outcome:
    required, founded = float(params["years"]), ctx.merchant.founded_on
    if founded is None:
        return Outcome(False, f"no founding date on file; {_number(required)} years required")
    years = (ctx.today - founded).days / 365.2425
    if years < required:
        return Outcome(
            False,
            f"trading since {founded} ({years:.1f} years), "
            f"less than the {_number(required)} years required",
        )
    return Outcome(True, f"trading since {founded} ({years:.1f} years)")


def _sub_industry_allowed(ctx: CheckContext, params: dict[str, Any]) -> Outcome:
    sub = taxonomy().sub_industry(ctx.sub_industry)
    domain = sub.domain.value if sub else "unknown"
    allowed = ctx.sub_industry in params.get("codes", []) or domain in params.get("domains", [])
    if allowed:
        return Outcome(True, f"{ctx.sub_industry} ({domain}) is allowed in this circle")
    return Outcome(
        False, f"{ctx.sub_industry} ({domain}) is not among the circle's allowed sub-industries"
    )


def _manual_check(ctx: CheckContext, params: dict[str, Any]) -> Outcome:
    return Outcome(None, "awaits a relationship manager's confirmation")


CHECKS: dict[RequirementKind, Callable[[CheckContext, dict[str, Any]], Outcome]] = {
    RequirementKind.LOCATION_IN_CIRCLE: _location_in_circle,
    RequirementKind.MIN_REVIEW_SCORE: _min_review_score,
    RequirementKind.MIN_REVIEW_COUNT: _min_review_count,
    RequirementKind.LICENCE_VERIFIED: _licence_verified,
    RequirementKind.KYB_PASSED: _kyb_passed,
    RequirementKind.SLOT_FREE: _slot_free,
    RequirementKind.SETTLEMENT_ACCOUNT: _settlement_account,
    RequirementKind.MIN_YEARS_TRADING: _min_years_trading,
    RequirementKind.SUB_INDUSTRY_ALLOWED: _sub_industry_allowed,
    RequirementKind.MANUAL_CHECK: _manual_check,
}
