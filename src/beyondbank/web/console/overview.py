"""The console's front page: programme figures, what needs my attention, and recent changes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

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
from beyondbank.core import audit
from beyondbank.core.authz import Permission, Principal, can
from beyondbank.core.uow import UnitOfWork
from beyondbank.deps import SettingsDep, UoW
from beyondbank.web import lookups
from beyondbank.web.console import views
from beyondbank.web.console.guards import StatsReader
from beyondbank.web.i18n import _
from beyondbank.web.pages import render

router = APIRouter(prefix="/console", include_in_schema=False)

P = Permission
ATTENTION_ROWS = 10
RECENT_CHANGES = 12


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


@router.get("", response_class=HTMLResponse)
def overview(request: Request, uow: UoW, settings: SettingsDep, principal: StatsReader) -> Response:
    context: dict[str, Any] = {
        "figures": figures(uow, principal),
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
