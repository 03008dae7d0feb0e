"""The console's front page: programme figures, what needs my attention, and recent changes."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from beyondbank.alliance import admission, circles, membership, merchants, relationships
from beyondbank.alliance.models import (
    ApplicationStatus,
    CircleStatus,
    MemberStatus,
    MerchantStatus,
)
from beyondbank.benefits import redemptions
from beyondbank.benefits import service as benefits
from beyondbank.benefits.models import BenefitStatus, RedemptionStatus
from beyondbank.core import audit
from beyondbank.core.authz import Permission, Principal, can
from beyondbank.core.pagination import MAX_LIMIT
from beyondbank.core.uow import UnitOfWork
from beyondbank.deps import SettingsDep, UoW
from beyondbank.web import lookups
from beyondbank.web.console import views
from beyondbank.web.console.guards import StatsReader
from beyondbank.web.i18n import _
from beyondbank.web.pages import render

router = APIRouter(prefix="/console", include_in_schema=False)

P = Permission
# Figures are counted by reading the areas' lists page by page; past this many rows the page
# says "10,000+" rather than keep a person waiting (the areas offer no count yet).
COUNT_CAP = 10_000
ATTENTION_ROWS = 10
RECENT_CHANGES = 12
FIGURES_TTL = timedelta(seconds=60)


@dataclass(frozen=True, slots=True)
class Count:
    value: int
    more: bool  # counting stopped at COUNT_CAP


@dataclass(frozen=True, slots=True)
class Figure:
    label: str
    count: Count
    href: str | None


@dataclass(frozen=True, slots=True)
class Counted:
    """The programme's counts, and when they were taken."""

    at: datetime
    counts: dict[str, Count]


Fetch = Callable[[str | None], tuple[Sequence[Any], str | None]]


def _count(*fetches: Fetch) -> Count:
    total, more = 0, False
    for fetch in fetches:
        rows, capped = lookups.every(fetch, cap=COUNT_CAP)
        total, more = total + len(rows), more or capped
    return Count(total, more)


def programme_counts(uow: UnitOfWork, actor: Principal) -> dict[str, Count]:
    """Each figure, counted by reading the areas' own lists (no area offers a count yet)."""
    now = uow.clock.now()

    def members(cursor: str | None) -> tuple[Sequence[Any], str | None]:
        return membership.list_members(
            uow,
            status=MemberStatus.ACTIVE,
            customer_id=None,
            member_number=None,
            cursor=cursor,
            limit=MAX_LIMIT,
        )

    def active_merchants(cursor: str | None) -> tuple[Sequence[Any], str | None]:
        return merchants.list_merchants(
            uow,
            actor,
            merchants.MerchantFilter(status=MerchantStatus.ACTIVE),
            cursor=cursor,
            limit=MAX_LIMIT,
        )

    def active_circles(cursor: str | None) -> tuple[Sequence[Any], str | None]:
        return circles.list_circles(
            uow, circles.CircleFilter(status=CircleStatus.ACTIVE), cursor=cursor, limit=MAX_LIMIT
        )

    def applications(status: ApplicationStatus) -> Fetch:
        def fetch(cursor: str | None) -> tuple[Sequence[Any], str | None]:
            return admission.list_applications(
                uow,
                actor,
                status=status,
                circle_id=None,
                merchant_id=None,
                sub_industry=None,
                cursor=cursor,
                limit=MAX_LIMIT,
            )

        return fetch

    def submitted_benefits(cursor: str | None) -> tuple[Sequence[Any], str | None]:
        return benefits.list_benefits(
            uow, actor, status=BenefitStatus.SUBMITTED, cursor=cursor, limit=MAX_LIMIT
        )

    def recent_redemptions(cursor: str | None) -> tuple[Sequence[Any], str | None]:
        filters = redemptions.RedemptionFilters(
            status=RedemptionStatus.REDEEMED, redeemed_from=now - timedelta(days=30)
        )
        return redemptions.list_redemptions(uow, actor, filters, cursor=cursor, limit=MAX_LIMIT)

    return {
        "members": _count(members),
        "merchants": _count(active_merchants),
        "circles": _count(active_circles),
        "applications": _count(
            applications(ApplicationStatus.SUBMITTED), applications(ApplicationStatus.UNDER_REVIEW)
        ),
        "benefits": _count(submitted_benefits),
        "redemptions": _count(recent_redemptions),
    }


def counted(request: Request, uow: UnitOfWork, actor: Principal) -> Counted:
    """The counts, taken at most FIGURES_TTL ago. Counting reads every member page by page, so
    each worker keeps the result briefly (the page says when it was taken). The console is for
    the bank's staff only, who all see the whole programme, so one copy serves them all."""
    now = uow.clock.now()
    kept: Counted | None = getattr(request.app.state, "console_counts", None)
    if kept is None or not kept.at <= now < kept.at + FIGURES_TTL:
        kept = Counted(now, programme_counts(uow, actor))
        request.app.state.console_counts = kept
    return kept


def figures(counts: Counted, actor: Principal) -> list[Figure]:
    pipeline = (
        "/console/applications?status=under_review" if can(actor, P.APPLICATIONS_READ) else None
    )
    c = counts.counts
    return [
        Figure(_("Active members"), c["members"], None),
        Figure(_("Active merchants"), c["merchants"], "/console/merchants?status=active"),
        Figure(_("Active circles"), c["circles"], "/console/circles?status=active"),
        Figure(_("Applications awaiting a decision"), c["applications"], pipeline),
        Figure(
            _("Benefits awaiting approval"), c["benefits"], "/console/benefits?status=submitted"
        ),
        Figure(_("Redemptions in the last 30 days"), c["redemptions"], None),
    ]


@router.get("", response_class=HTMLResponse)
def overview(request: Request, uow: UoW, settings: SettingsDep, principal: StatsReader) -> Response:
    counts = counted(request, uow, principal)
    context: dict[str, Any] = {
        "figures": figures(counts, principal),
        "counted_at": counts.at,
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
