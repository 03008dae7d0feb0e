"""The console's front page: programme figures, what needs my attention, and recent changes."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
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
# says "10,000+" rather than keep a person waiting (see the report: a count service is due).
COUNT_CAP = 10_000
ATTENTION_ROWS = 10
RECENT_CHANGES = 12


@dataclass(frozen=True, slots=True)
class Figure:
    label: str
    count: int
    more: bool  # the count stopped at COUNT_CAP
    href: str | None


Fetch = Callable[[str | None], tuple[Sequence[Any], str | None]]


def _count(fetch: Fetch) -> tuple[int, bool]:
    rows, capped = lookups.every(fetch, cap=COUNT_CAP)
    return len(rows), capped


def _figure(label: str, fetches: Sequence[Fetch], href: str | None) -> Figure:
    total, more = 0, False
    for fetch in fetches:
        count, capped = _count(fetch)
        total, more = total + count, more or capped
    return Figure(label, total, more, href)


def programme_figures(uow: UnitOfWork, actor: Principal) -> list[Figure]:
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

    readable = can(actor, P.APPLICATIONS_READ)
    return [
        _figure(_("Active members"), [members], None),
        _figure(_("Active merchants"), [active_merchants], "/console/merchants?status=active"),
        _figure(_("Active circles"), [active_circles], "/console/circles"),
        _figure(
            _("Applications awaiting a decision"),
            [
                applications(ApplicationStatus.SUBMITTED),
                applications(ApplicationStatus.UNDER_REVIEW),
            ],
            "/console/applications?status=under_review" if readable else None,
        ),
        _figure(
            _("Benefits awaiting approval"),
            [submitted_benefits],
            "/console/benefits?status=submitted",
        ),
        _figure(_("Redemptions in the last 30 days"), [recent_redemptions], None),
    ]


@router.get("", response_class=HTMLResponse)
def overview(request: Request, uow: UoW, settings: SettingsDep, principal: StatsReader) -> Response:
    context: dict[str, Any] = {
        "figures": programme_figures(uow, principal),
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
