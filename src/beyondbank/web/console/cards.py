"""Card-linked pages: the engine's runs with their counts, one run's quarantine reasons, totals
and latest reward rows; the descriptor review queue and a reviewer's confirm or reject."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from beyondbank.alliance import merchants as merchant_cases
from beyondbank.alliance import service as alliance
from beyondbank.alliance.models import Merchant, MerchantStatus
from beyondbank.benefits import service as benefits
from beyondbank.benefits.models import Benefit
from beyondbank.cards import reviews, service
from beyondbank.cards.models import CardRun, ReviewStatus
from beyondbank.cards.schemas import ConfirmIn, RejectIn
from beyondbank.core.authz import Principal
from beyondbank.core.errors import NotFound, Problem
from beyondbank.core.money import POINTS
from beyondbank.core.pagination import MAX_LIMIT
from beyondbank.core.uow import UnitOfWork
from beyondbank.deps import UoW
from beyondbank.web import lookups
from beyondbank.web.console.guards import CardReader, CardReviewer
from beyondbank.web.console.params import choice, or_none
from beyondbank.web.forms import Form, PostedForm, nested, validate
from beyondbank.web.i18n import _
from beyondbank.web.pages import render
from beyondbank.web.session import CsrfChecked, flash

router = APIRouter(prefix="/console", include_in_schema=False)

PAGE_SIZE = 50
LATEST_REWARDS = 50  # a run page shows its newest rows; the rewards file holds them all
QUEUE_SIZE = MAX_LIMIT
MERCHANT_OPTIONS = 1_000  # as on the benefits page: a bank beyond that types the merchant's id
CONFIRM_FIELDS = ("merchant", "location")


# -- runs ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RunRow:
    run: CardRun
    # rows_read = accepted + quarantined + duplicates: no row is lost between reading and matching
    conserved: bool


def run_rows(runs: Sequence[CardRun]) -> list[RunRow]:
    return [RunRow(r, r.rows_read == r.accepted + r.quarantined + r.duplicates) for r in runs]


@dataclass(frozen=True, slots=True)
class Bar:
    """One bar of a chart: its label, its count and its length relative to the longest bar."""

    label: str
    value: int
    fraction: float


def bars(counts: Mapping[str, int]) -> list[Bar]:
    """Counts as bars, largest first (ties by label), each scaled to the largest."""
    top = max(counts.values(), default=0)
    ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return [Bar(label, value, value / top if top else 0.0) for label, value in ordered]


@dataclass(frozen=True, slots=True)
class CurrencyTotals:
    currency: str
    rewarded: int
    clawed_back: int

    @property
    def net(self) -> int:
        return self.rewarded - self.clawed_back


def currency_totals(totals: Mapping[str, int]) -> list[CurrencyTotals]:
    """`rewarded:GBP`-style totals as one row per currency, points last; a currency with
    nothing either way (points, when no points benefit earned) is left out."""
    currencies = sorted({key.split(":", 1)[1] for key in totals}, key=lambda c: (c == POINTS, c))
    rows = [
        CurrencyTotals(c, totals.get(f"rewarded:{c}", 0), totals.get(f"clawed_back:{c}", 0))
        for c in currencies
    ]
    return [r for r in rows if r.rewarded or r.clawed_back]


@dataclass(frozen=True, slots=True)
class RewardRow:
    view: service.RewardView
    merchant: Merchant | None
    benefit: Benefit | None
    points_benefit: Benefit | None


def reward_rows(uow: UnitOfWork, views: Sequence[service.RewardView]) -> list[RewardRow]:
    """Reward rows with their merchant's and benefits' names, in one query each."""
    merchants = lookups.merchants(uow, {v.reward.merchant_id for v in views})
    wanted = {
        b for v in views for b in (v.reward.benefit_id, v.reward.points_benefit_id) if b is not None
    }
    found = benefits.benefits_by_ids(uow, wanted)
    return [
        RewardRow(
            v,
            merchants.get(v.reward.merchant_id),
            found.get(v.reward.benefit_id) if v.reward.benefit_id else None,
            found.get(v.reward.points_benefit_id) if v.reward.points_benefit_id else None,
        )
        for v in views
    ]


@router.get("/card-runs", response_class=HTMLResponse)
def run_list(
    request: Request, uow: UoW, principal: CardReader, cursor: str | None = None
) -> Response:
    runs, next_cursor = service.list_runs(uow, principal, cursor=or_none(cursor), limit=PAGE_SIZE)
    return render(
        request,
        "console/card_runs.html",
        {"rows": run_rows(runs), "next_cursor": next_cursor, "cursor": cursor, "query": ""},
        principal=principal,
    )


@router.get("/card-runs/{run_id}", response_class=HTMLResponse)
def run_detail(run_id: str, request: Request, uow: UoW, principal: CardReader) -> Response:
    run = service.get_run(uow, principal, run_id)
    latest, more = service.list_rewards(uow, principal, run=run.public_id, limit=LATEST_REWARDS)
    reasons = {str(k): int(v) for k, v in run.details.get("quarantine_reasons", {}).items()}
    return render(
        request,
        "console/card_run.html",
        {
            "row": run_rows([run])[0],
            "reasons": bars(reasons),
            "totals": currency_totals(service.run_totals(uow, run.id)),
            "rewards": reward_rows(uow, latest),
            "more_rewards": more is not None,
            "latest_rewards": LATEST_REWARDS,
        },
        principal=principal,
    )


# -- the descriptor review queue -------------------------------------------------------------------


@router.get("/descriptors", response_class=HTMLResponse)
def review_list(
    request: Request,
    uow: UoW,
    principal: CardReviewer,
    status: str | None = None,
    cursor: str | None = None,
) -> Response:
    chosen = choice(ReviewStatus, status, "query.status")
    queue: list[reviews.ReviewView] = []
    if chosen is None and cursor is None:
        # The open reviews come first, those carrying the most transactions at the top.
        waiting, _more = reviews.list_reviews(
            uow, principal, status=ReviewStatus.OPEN, limit=QUEUE_SIZE
        )
        queue = sorted(waiting, key=lambda v: -v.review.transactions)
    rows, next_cursor = reviews.list_reviews(
        uow, principal, status=chosen, cursor=or_none(cursor), limit=PAGE_SIZE
    )
    filters = {"status": status or ""}
    return render(
        request,
        "console/descriptors.html",
        {
            "queue": queue,
            "rows": rows,
            "filters": filters,
            "statuses": list(ReviewStatus),
            "next_cursor": next_cursor,
            "cursor": cursor,
            "query": urlencode({k: v for k, v in filters.items() if v}),
        },
        principal=principal,
    )


def _active_merchants(uow: UnitOfWork, principal: Principal) -> list[Merchant]:
    """The merchants a descriptor may be mapped to (only an active one can be), by name."""
    found, _capped = lookups.every(
        lambda c: merchant_cases.list_merchants(
            uow,
            principal,
            merchant_cases.MerchantFilter(status=MerchantStatus.ACTIVE),
            cursor=c,
            limit=MAX_LIMIT,
        ),
        cap=MERCHANT_OPTIONS,
    )
    return sorted(found, key=lambda m: m.trading_name.lower())


def _merchant_options(merchants: Sequence[Merchant], typed: str) -> list[tuple[str, str]]:
    """(public id, name) of each merchant; what was sent stays chosen even when it is none of
    them, so the page shows what was submitted beside the error that says why it failed."""
    options = [(m.public_id, m.trading_name) for m in merchants]
    if typed and typed not in {value for value, _name in options}:
        options.insert(0, (typed, typed))
    return options


def _location_groups(
    merchants: Sequence[Merchant], typed: str
) -> list[tuple[str, list[tuple[str, str]]]]:
    """Each merchant's active locations, grouped under its name."""
    groups = [
        (
            m.trading_name,
            [
                (loc.public_id, f"{loc.address_line}, {loc.city}")
                for loc in m.locations
                if loc.active
            ],
        )
        for m in merchants
    ]
    known = {value for _name, options in groups for value, _label in options}
    if typed and typed not in known:
        groups.insert(0, (_("As submitted"), [(typed, typed)]))
    return [g for g in groups if g[1]]


def _review_page(
    request: Request,
    uow: UnitOfWork,
    principal: Principal,
    view: reviews.ReviewView,
    *,
    forms: dict[str, Form] | None = None,
    problem: str | None = None,
    status_code: int = 200,
) -> Response:
    review = view.review
    shown = {
        "confirm": Form("confirm", values={"merchant": view.candidate_merchant or ""}),
        "reject": Form("reject"),
    }
    shown.update(forms or {})
    merchants = _active_merchants(uow, principal) if review.status is ReviewStatus.OPEN else []
    candidate = (
        lookups.merchants(uow, [review.candidate_merchant_id]).get(review.candidate_merchant_id)
        if review.candidate_merchant_id is not None
        else None
    )
    decided_by = lookups.staff(uow, [review.decided_by_id])
    return render(
        request,
        "console/descriptor.html",
        {
            "view": view,
            "review": review,
            "candidate": candidate,
            "decided_by": decided_by.get(review.decided_by_id) if review.decided_by_id else None,
            "forms": shown,
            "merchant_options": _merchant_options(merchants, shown["confirm"].value("merchant")),
            "location_groups": _location_groups(merchants, shown["confirm"].value("location")),
            # Once decided, the decision forms are gone: the problem shows at the top instead.
            "page_problem": problem if review.status is not ReviewStatus.OPEN else None,
        },
        principal=principal,
        status_code=status_code,
    )


@router.get("/descriptors/{review_id}", response_class=HTMLResponse)
def review_detail(review_id: str, request: Request, uow: UoW, principal: CardReviewer) -> Response:
    return _review_page(request, uow, principal, reviews.get_review(uow, principal, review_id))


def _refused(
    request: Request,
    uow: UnitOfWork,
    principal: Principal,
    review_id: str,
    form: Form,
    problem: Problem,
    fields: tuple[str, ...],
) -> Response:
    """The review's page again, as it is now, with the service's problem on the form."""
    uow.rollback()
    form.absorb(problem, fields)
    # An unknown merchant or location is a bad choice on the form, not a missing page.
    status = 422 if isinstance(problem, NotFound) else problem.status
    view = reviews.get_review(uow, principal, review_id)
    return _review_page(
        request,
        uow,
        principal,
        view,
        forms={form.name: form},
        problem=problem.detail,
        status_code=status,
    )


@router.post(
    "/descriptors/{review_id}/confirm", response_class=HTMLResponse, dependencies=[CsrfChecked]
)
def confirm(
    review_id: str, request: Request, uow: UoW, principal: CardReviewer, posted: PostedForm
) -> Response:
    view = reviews.get_review(uow, principal, review_id)
    form = Form("confirm", values=posted.typed())
    data = validate(
        ConfirmIn,
        nested(form.values, CONFIRM_FIELDS),
        form,
        messages={"merchant": _("Choose the alliance merchant this descriptor belongs to.")},
    )
    if data is None:
        return _review_page(request, uow, principal, view, forms={"confirm": form}, status_code=422)
    try:
        done = reviews.confirm(
            uow, principal, review_id, merchant_ref=data.merchant, location_ref=data.location
        )
    except Problem as problem:
        return _refused(request, uow, principal, review_id, form, problem, CONFIRM_FIELDS)
    chosen = alliance.get_merchant(uow, principal, data.merchant)
    flash(
        request,
        _(
            "%(descriptor)s now belongs to %(merchant)s: the next run resolves it exactly.",
            descriptor=done.review.example.strip(),
            merchant=chosen.trading_name,
        ),
    )
    return RedirectResponse("/console/descriptors", status_code=303)


@router.post(
    "/descriptors/{review_id}/reject", response_class=HTMLResponse, dependencies=[CsrfChecked]
)
def reject(
    review_id: str, request: Request, uow: UoW, principal: CardReviewer, posted: PostedForm
) -> Response:
    view = reviews.get_review(uow, principal, review_id)
    form = Form("reject", values=posted.typed())
    data = validate(RejectIn, nested(form.values, ("note",)), form)
    if data is None:
        return _review_page(request, uow, principal, view, forms={"reject": form}, status_code=422)
    try:
        done = reviews.reject(uow, principal, review_id, note=data.note)
    except Problem as problem:
        return _refused(request, uow, principal, review_id, form, problem, ("note",))
    flash(
        request,
        _(
            "%(descriptor)s is rejected: its transactions stay unresolved.",
            descriptor=done.review.example.strip(),
        ),
    )
    return RedirectResponse("/console/descriptors", status_code=303)
