"""Benefit pages: the approval queue first, then every benefit by status, merchant and kind; a
benefit's terms, schedule, limits, what is left of its budget, and the price-integrity verdict;
the bank admin's approval (setting funding and commission) or rejection."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from beyondbank.alliance import merchants as merchant_cases
from beyondbank.alliance import service as alliance
from beyondbank.alliance.models import Merchant
from beyondbank.benefits import rules
from beyondbank.benefits import service as benefits
from beyondbank.benefits.integrity import Verdict
from beyondbank.benefits.models import Benefit, BenefitKind, BenefitStatus
from beyondbank.benefits.schemas import ApproveIn, ReasonIn
from beyondbank.core.authz import Principal
from beyondbank.core.errors import Problem
from beyondbank.core.pagination import MAX_LIMIT
from beyondbank.core.uow import UnitOfWork
from beyondbank.deps import UoW
from beyondbank.web import lookups
from beyondbank.web.console.guards import BenefitApprover, BenefitReader
from beyondbank.web.console.params import choice, or_none
from beyondbank.web.forms import Form, PostedForm, nested, validate
from beyondbank.web.i18n import _
from beyondbank.web.pages import render
from beyondbank.web.session import CsrfChecked, flash

router = APIRouter(prefix="/console", include_in_schema=False)

PAGE_SIZE = 50
QUEUE_SIZE = MAX_LIMIT
MERCHANT_OPTIONS = (
    1_000  # merchants offered in the filter; a bank beyond that filters from the merchant's page
)
APPROVE_FIELDS = ("merchant_share_bps", "commission_bps", "note")


@dataclass(frozen=True, slots=True)
class BenefitRow:
    benefit: Benefit
    merchant: Merchant
    summary: str


def benefit_rows(
    uow: UnitOfWork, rows: Sequence[Benefit], known: dict[int, Merchant] | None = None
) -> list[BenefitRow]:
    """Rows with their merchant: from `known` when the page has the merchants already."""
    known = known or {}
    merchants = {**lookups.merchants(uow, {b.merchant_id for b in rows} - known.keys()), **known}
    return [
        BenefitRow(
            b, merchants[b.merchant_id], rules.describe_reward(benefits.reward_of(b), b.currency)
        )
        for b in rows
    ]


@router.get("/benefits", response_class=HTMLResponse)
def benefit_list(
    request: Request,
    uow: UoW,
    principal: BenefitReader,
    status: str | None = None,
    merchant: str | None = None,
    kind: str | None = None,
    cursor: str | None = None,
) -> Response:
    chosen_status = choice(BenefitStatus, status, "query.status")
    chosen_kind = choice(BenefitKind, kind, "query.kind")
    merchant_id = or_none(merchant)
    # The filter lists the merchants; the same list names each row's merchant, at no extra cost.
    options, _capped = lookups.every(
        lambda c: merchant_cases.list_merchants(
            uow, principal, merchant_cases.MerchantFilter(), cursor=c, limit=MAX_LIMIT
        ),
        cap=MERCHANT_OPTIONS,
    )
    known = {m.id: m for m in options}
    queue: list[BenefitRow] = []
    if chosen_status is None and cursor is None:
        # The approval queue comes first, oldest submission first, whatever else is shown.
        waiting, _more = benefits.list_benefits(
            uow,
            principal,
            merchant_id=merchant_id,
            status=BenefitStatus.SUBMITTED,
            kind=chosen_kind,
            limit=QUEUE_SIZE,
        )
        queue = benefit_rows(uow, waiting, known)
    rows, next_cursor = benefits.list_benefits(
        uow,
        principal,
        merchant_id=merchant_id,
        status=chosen_status,
        kind=chosen_kind,
        cursor=or_none(cursor),
        limit=PAGE_SIZE,
    )
    chosen = {"status": status or "", "merchant": merchant or "", "kind": kind or ""}
    return render(
        request,
        "console/benefits.html",
        {
            "queue": queue,
            "rows": benefit_rows(uow, rows, known),
            "filters": chosen,
            "statuses": _status_order(),
            "kinds": list(BenefitKind),
            "merchant_options": sorted(
                ((m.public_id, m.trading_name) for m in options), key=lambda o: o[1].lower()
            ),
            "next_cursor": next_cursor,
            "cursor": cursor,
            "query": urlencode({k: v for k, v in chosen.items() if v}),
        },
        principal=principal,
    )


def _status_order() -> list[BenefitStatus]:
    """The approval queue first, then the live states, then the rest."""
    first = [BenefitStatus.SUBMITTED, BenefitStatus.ACTIVE, BenefitStatus.PAUSED]
    return first + [s for s in BenefitStatus if s not in first]


# -- one benefit -------------------------------------------------------------------------------


def _benefit_page(
    request: Request,
    uow: UnitOfWork,
    principal: Principal,
    benefit: Benefit,
    *,
    forms: dict[str, Form] | None = None,
    problem: str | None = None,
    status_code: int = 200,
) -> Response:
    merchant = alliance.merchant_by_id(uow, benefit.merchant_id)
    targets = {t.circle_id for t in benefit.targets}
    circles = [c for c in lookups.all_circles(uow) if c.id in targets] if targets else []
    verdict: Verdict = benefits.price_verdict(benefit)
    schedule = benefits.schedule_of(benefit)
    shown = {
        "approve": Form(
            "approve",
            values={
                "merchant_share_bps": str(benefit.merchant_share_bps),
                "commission_bps": str(benefit.commission_bps),
            },
        ),
        "reject": Form("reject"),
    }
    shown.update(forms or {})
    decided_by = lookups.staff(uow, [benefit.decided_by_id])
    return render(
        request,
        "console/benefit.html",
        {
            "benefit": benefit,
            "merchant": merchant,
            "summary": rules.describe_reward(benefits.reward_of(benefit), benefit.currency),
            "circles": circles,
            "verdict": verdict,
            "open_now": rules.schedule_failure(schedule, uow.clock.now()),
            "decided_by": decided_by.get(benefit.decided_by_id) if benefit.decided_by_id else None,
            "forms": shown,
            # Once decided, the decision forms are gone: the problem shows at the top instead.
            "page_problem": problem if benefit.status != BenefitStatus.SUBMITTED else None,
        },
        principal=principal,
        status_code=status_code,
    )


@router.get("/benefits/{benefit_id}", response_class=HTMLResponse)
def benefit_detail(
    benefit_id: str, request: Request, uow: UoW, principal: BenefitReader
) -> Response:
    return _benefit_page(request, uow, principal, benefits.get_benefit(uow, principal, benefit_id))


@router.post(
    "/benefits/{benefit_id}/approve", response_class=HTMLResponse, dependencies=[CsrfChecked]
)
def approve(
    benefit_id: str, request: Request, uow: UoW, principal: BenefitApprover, posted: PostedForm
) -> Response:
    benefit = benefits.get_benefit(uow, principal, benefit_id)
    form = Form("approve", values=posted.typed())
    data = validate(ApproveIn, nested(form.values, APPROVE_FIELDS), form)
    if data is None:
        return _benefit_page(
            request, uow, principal, benefit, forms={"approve": form}, status_code=422
        )
    try:
        benefits.approve(uow, principal, benefit, data)
    except Problem as problem:
        uow.rollback()
        form.absorb(problem, APPROVE_FIELDS)
        return _benefit_page(
            request,
            uow,
            principal,
            benefit,
            forms={"approve": form},
            problem=problem.detail,
            status_code=problem.status,
        )
    flash(request, _("%(title)s is approved and live for members.", title=benefit.title))
    return RedirectResponse(f"/console/benefits/{benefit.public_id}", status_code=303)


@router.post(
    "/benefits/{benefit_id}/reject", response_class=HTMLResponse, dependencies=[CsrfChecked]
)
def reject(
    benefit_id: str, request: Request, uow: UoW, principal: BenefitApprover, posted: PostedForm
) -> Response:
    benefit = benefits.get_benefit(uow, principal, benefit_id)
    form = Form("reject", values=posted.typed())
    data = validate(ReasonIn, nested(form.values, ("reason",)), form)
    if data is None:
        return _benefit_page(
            request, uow, principal, benefit, forms={"reject": form}, status_code=422
        )
    try:
        benefits.reject(uow, principal, benefit, data.reason)
    except Problem as problem:
        uow.rollback()
        form.absorb(problem, ("reason",))
        return _benefit_page(
            request,
            uow,
            principal,
            benefit,
            forms={"reject": form},
            problem=problem.detail,
            status_code=problem.status,
        )
    flash(request, _("%(title)s is rejected; the merchant sees the reason.", title=benefit.title))
    return RedirectResponse(f"/console/benefits/{benefit.public_id}", status_code=303)
