"""The console's front page: programme figures, the programme month by month (charts), what needs
my attention, and recent changes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from babel.dates import format_skeleton
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from beyondbank.alliance import admission, relationships
from beyondbank.alliance import service as alliance
from beyondbank.alliance.models import (
    ApplicationStatus,
    MerchantStatus,
)
from beyondbank.benefits import redemptions
from beyondbank.benefits import service as benefits
from beyondbank.benefits.models import BenefitStatus, RedemptionStatus
from beyondbank.cards import service as cards
from beyondbank.core import audit
from beyondbank.core.authz import Permission, Principal, can
from beyondbank.core.settings import Settings
from beyondbank.core.uow import UnitOfWork
from beyondbank.deps import SettingsDep, UoW
from beyondbank.ledger import service as ledger
from beyondbank.web import lookups
from beyondbank.web.console import views
from beyondbank.web.console.guards import StatsReader
from beyondbank.web.i18n import _, format_locale
from beyondbank.web.pages import render

router = APIRouter(prefix="/console", include_in_schema=False)

P = Permission
ATTENTION_ROWS = 10
RECENT_CHANGES = 12
CHART_MONTHS = 12


@dataclass(frozen=True, slots=True)
class Figure:
    label: str
    value: int
    href: str | None


def figures(uow: UnitOfWork, actor: Principal) -> list[Figure]:
    """The programme at a glance, each figure one count in the database."""
    pipeline = (
        "/console/applications?status=under_review" if can(actor, P.APPLICATIONS_READ) else None
    )
    awaiting = (ApplicationStatus.SUBMITTED, ApplicationStatus.UNDER_REVIEW)
    since = uow.clock.now() - timedelta(days=30)
    return [
        Figure(_("Active members"), alliance.count_members(uow), None),
        Figure(
            _("Active merchants"),
            alliance.count_merchants(uow, MerchantStatus.ACTIVE),
            "/console/merchants?status=active",
        ),
        Figure(_("Active circles"), alliance.count_circles(uow), "/console/circles?status=active"),
        Figure(
            _("Applications awaiting a decision"),
            alliance.count_applications(uow, awaiting),
            pipeline,
        ),
        Figure(
            _("Benefits awaiting approval"),
            benefits.count_benefits(uow, BenefitStatus.SUBMITTED),
            "/console/benefits?status=submitted",
        ),
        Figure(
            _("Redemptions in the last 30 days"),
            redemptions.count_redemptions(uow, since=since, status=RedemptionStatus.REDEEMED),
            None,
        ),
    ]


@dataclass(frozen=True, slots=True)
class Point:
    label: str  # the month in full, e.g. "November 2026"
    short: str  # under its column, e.g. "Nov"
    value: int
    fraction: float  # of the tallest column


@dataclass(frozen=True, slots=True)
class Series:
    id: str
    title: str
    note: str
    value_head: str
    currency: str | None
    points: list[Point]


def month_starts(now: datetime, timezone: str, months: int) -> list[datetime]:
    """The first instants of the last `months` months in the bank's time zone (this one last), and
    the next month's start: n + 1 bounds for n months."""
    zone = ZoneInfo(timezone)
    local = now.astimezone(zone)
    year, month = local.year, local.month
    firsts: list[date] = []
    for back in range(months - 1, -2, -1):
        index = year * 12 + (month - 1) - back
        firsts.append(date(index // 12, index % 12 + 1, 1))
    return [datetime(d.year, d.month, d.day, tzinfo=zone) for d in firsts]


def _points(bounds: Sequence[datetime], values: Sequence[int]) -> list[Point]:
    locale = format_locale()
    tallest = max([*values, 0])
    return [
        Point(
            label=str(format_skeleton("yMMMM", start, locale=locale)),
            short=str(format_skeleton("MMM", start, locale=locale)),
            value=value,
            fraction=max(value, 0) / tallest if tallest else 0.0,
        )
        for start, value in zip(bounds, values, strict=False)
    ]


def programme_series(uow: UnitOfWork, settings: Settings) -> list[Series]:
    """The programme month by month: one grouped query per series, aggregates only (every
    reader of the programme's figures may see them, analysts included)."""
    bounds = month_starts(uow.clock.now(), settings.default_timezone, CHART_MONTHS)
    currency = settings.default_currency
    redeemed = benefits.redemptions_by_month(uow, bounds)
    spec: list[tuple[str, str, str, str, str | None, list[int]]] = [
        (
            "members",
            _("Members"),
            _("Members enrolled and not left, at each month's end."),
            _("Members"),
            None,
            alliance.members_by_month(uow, bounds),
        ),
        (
            "active-merchants",
            _("Active merchants"),
            _("Merchants with at least one voucher redeemed in the month."),
            _("Merchants"),
            None,
            [merchants for _redemptions, merchants in redeemed],
        ),
        (
            "redemptions",
            _("Redemptions"),
            _("Vouchers redeemed at the counter and not reversed."),
            _("Redemptions"),
            None,
            [redemptions for redemptions, _merchants in redeemed],
        ),
        (
            "rewards",
            _("Card-linked rewards"),
            _("Cashback granted to members less cashback clawed back."),
            _("Cashback"),
            currency,
            cards.cashback_by_month(uow, bounds, currency),
        ),
        (
            "commissions",
            _("Commissions"),
            _("The bank's commission revenue in the ledger."),
            _("Commission revenue"),
            currency,
            ledger.commission_revenue_by_month(uow, bounds, currency),
        ),
    ]
    return [
        Series(
            id=key,
            title=title,
            note=note,
            value_head=head,
            currency=cur,
            points=_points(bounds, values),
        )
        for key, title, note, head, cur, values in spec
    ]


@router.get("", response_class=HTMLResponse)
def overview(request: Request, uow: UoW, settings: SettingsDep, principal: StatsReader) -> Response:
    context: dict[str, Any] = {
        "figures": figures(uow, principal),
        "series": programme_series(uow, settings),
        "offers": [],
        "overdue": [],
        "to_decide": [],
        "changes": [],
    }
    if can(principal, P.APPLICATIONS_DECIDE):
        context["offers"] = views.waitlist_rows(uow, admission.offers_for(uow, principal))
        to_decide, _more = admission.list_applications(
            uow,
            principal,
            status=ApplicationStatus.UNDER_REVIEW,
            circle_id=None,
            merchant_id=None,
            sub_industry=None,
            cursor=None,
            limit=ATTENTION_ROWS,
        )
        context["to_decide"] = to_decide
    if can(principal, P.RELATIONSHIP_WRITE):
        today = lookups.bank_today(uow.clock.now(), settings)
        overdue, _more = relationships.follow_ups(
            uow,
            principal,
            manager_id=principal.id,
            overdue=True,
            today=today,
            cursor=None,
            limit=ATTENTION_ROWS,
        )
        context["overdue"] = views.interaction_rows(uow, overdue, today)
    if can(principal, P.AUDIT_READ):
        changes, _more = audit.trail(
            uow.session, audit.TrailFilter(), cursor=None, limit=RECENT_CHANGES
        )
        context["changes"] = changes
    return render(request, "console/overview.html", context, principal=principal)
