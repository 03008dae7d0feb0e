"""Circle pages: the list with every circle on a map-like plot and the coverage grid, a circle's coverage of the six life domains with its seats, waitlists and
admission requirements, and the bank admin's forms to create a circle and set its requirements."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from beyondbank.alliance import admission
from beyondbank.alliance import circles as cases
from beyondbank.alliance import service as alliance
from beyondbank.alliance.models import (
    AdmissionRequirement,
    Circle,
    CircleKind,
    CircleStatus,
    RequirementKind,
    Seat,
)
from beyondbank.alliance.schemas import CircleIn, RequirementsIn
from beyondbank.alliance.taxonomy import LifeDomain, taxonomy
from beyondbank.core.authz import Permission, Principal, can
from beyondbank.core.errors import Problem
from beyondbank.core.uow import UnitOfWork
from beyondbank.deps import UoW
from beyondbank.web import lookups
from beyondbank.web.console import plot, views
from beyondbank.web.console.guards import CircleReader, CircleWriter
from beyondbank.web.console.params import choice, or_none
from beyondbank.web.forms import Form, PostedForm, nested, validate
from beyondbank.web.i18n import _
from beyondbank.web.pages import render
from beyondbank.web.session import CsrfChecked, flash
from beyondbank.web.templating import domain_name, requirement_name

router = APIRouter(prefix="/console", include_in_schema=False)

PAGE_SIZE = 50
CIRCLE_FIELDS = (
    "code",
    "name",
    "description",
    "kind",
    "branch_id",
    "center_latitude",
    "center_longitude",
    "radius_m",
    "segment_name",
    "segment_rule",
)
# Requirement kinds the form shows as one tick box each, with the parameter each one takes.
SIMPLE_KINDS: tuple[tuple[RequirementKind, str | None], ...] = (
    (RequirementKind.LOCATION_IN_CIRCLE, None),
    (RequirementKind.SLOT_FREE, None),
    (RequirementKind.KYB_PASSED, None),
    (RequirementKind.LICENCE_VERIFIED, None),
    (RequirementKind.SETTLEMENT_ACCOUNT, None),
    (RequirementKind.MIN_REVIEW_SCORE, "min"),
    (RequirementKind.MIN_REVIEW_COUNT, "min"),
    (RequirementKind.MIN_YEARS_TRADING, "years"),
    (RequirementKind.SUB_INDUSTRY_ALLOWED, "domains"),
)
MANUAL_SLOTS = 3  # blank manual checks offered beyond the circle's own


# -- the list ----------------------------------------------------------------------------------


@router.get("/circles", response_class=HTMLResponse)
def circle_list(
    request: Request,
    uow: UoW,
    principal: CircleReader,
    kind: str | None = None,
    status: str | None = None,
    branch: str | None = None,
    cursor: str | None = None,
) -> Response:
    filters = cases.CircleFilter(
        kind=choice(CircleKind, kind, "query.kind"),
        status=choice(CircleStatus, status, "query.status"),
        branch_id=alliance.get_branch(uow, branch, field="query.branch").id if branch else None,
    )
    rows, next_cursor = cases.list_circles(uow, filters, cursor=or_none(cursor), limit=PAGE_SIZE)
    seats = alliance.held_seats(uow)  # one query: the counts, the plot's dots and the grid
    held = Counter(seat.circle_id for seat in seats)
    active = alliance.all_circles(uow)
    query = urlencode(
        {k: v for k, v in (("kind", kind), ("status", status), ("branch", branch)) if v}
    )
    return render(
        request,
        "console/circles.html",
        {
            "circles": rows,
            "held": held,
            "slots": len(taxonomy().sub_industries),
            "plot": plot.plot(active, seats),
            "coverage": plot.coverage_rows(active, seats),
            "domains": [d.code for d in taxonomy().domains],
            "branches": lookups.all_branches(uow),
            "filters": {"kind": kind or "", "status": status or "", "branch": branch or ""},
            "kinds": list(CircleKind),
            "statuses": list(CircleStatus),
            "next_cursor": next_cursor,
            "cursor": cursor,
            "query": query,
        },
        principal=principal,
    )


# -- creating ----------------------------------------------------------------------------------


def _circle_form(
    request: Request, uow: UnitOfWork, principal: Principal, form: Form, status_code: int = 200
) -> Response:
    return render(
        request,
        "console/circle_form.html",
        {
            "form": form,
            "branch_options": [
                (b.public_id, f"{b.name} ({b.code})") for b in lookups.all_branches(uow)
            ],
        },
        principal=principal,
        status_code=status_code,
    )


@router.get("/circles/new", response_class=HTMLResponse)
def new_circle(request: Request, uow: UoW, principal: CircleWriter) -> Response:
    form = Form("circle", values={"kind": CircleKind.GEOGRAPHIC.value, "radius_m": "3000"})
    return _circle_form(request, uow, principal, form)


@router.post("/circles", response_class=HTMLResponse, dependencies=[CsrfChecked])
def create_circle(
    request: Request, uow: UoW, principal: CircleWriter, posted: PostedForm
) -> Response:
    form = Form("circle", values=posted.typed())
    body = nested(form.values, CIRCLE_FIELDS)
    if "segment_rule" in body:
        try:
            body["segment_rule"] = json.loads(str(body["segment_rule"]))
        except json.JSONDecodeError as exc:
            form.errors["segment_rule"] = _("Not valid JSON: %(reason)s", reason=exc.msg)
            body.pop("segment_rule")
    data = validate(
        CircleIn,
        body,
        form,
        messages={
            "code:string_pattern_mismatch": _(
                "Use letters, digits, dots, dashes and underscores only, starting with a letter "
                "or digit."
            )
        },
    )
    if data is None or form.errors:
        return _circle_form(request, uow, principal, form, status_code=422)
    try:
        circle = cases.create_circle(uow, principal, data)
    except Problem as problem:
        form.absorb(problem, CIRCLE_FIELDS)
        return _circle_form(request, uow, principal, form, status_code=problem.status)
    flash(
        request,
        _("Circle %(name)s created. Set its admission requirements next.", name=circle.name),
    )
    return RedirectResponse(f"/console/circles/{circle.public_id}", status_code=303)


# -- one circle --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Cell:
    """One sub-industry slot of the circle: who holds it, or free, and how many wait for it."""

    code: str
    seat: Seat | None
    waiting: int


@dataclass(frozen=True, slots=True)
class DomainRow:
    domain: LifeDomain
    cells: list[Cell]
    held: int


def coverage_grid(seats: Sequence[Seat], waiting: dict[str, int]) -> list[DomainRow]:
    by_slot = {seat.sub_industry: seat for seat in seats}
    rows = []
    for coverage in cases.coverage(seats):
        domain = taxonomy().domain(coverage.domain)
        cells = [
            Cell(code=s.code, seat=by_slot.get(s.code), waiting=waiting.get(s.code, 0))
            for s in domain.sub_industries
        ]
        rows.append(DomainRow(domain=coverage.domain, cells=cells, held=len(coverage.held)))
    return rows


@dataclass
class RequirementsView:
    """The circle's requirements as the form shows them, or why the form cannot show them all."""

    chosen: set[RequirementKind] = field(default_factory=set)
    labels: dict[RequirementKind, str] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    manual: list[str] = field(default_factory=list)
    unshowable: bool = False


def requirements_view(circle: Circle) -> RequirementsView:
    view = RequirementsView()
    for requirement in circle.requirements:
        if requirement.kind == RequirementKind.MANUAL_CHECK:
            view.manual.append(requirement.label)
            continue
        if requirement.kind in view.chosen:
            view.unshowable = True  # two of one kind (told apart by label): the API edits those
            continue
        view.chosen.add(requirement.kind)
        view.labels[requirement.kind] = requirement.label
        for name, value in requirement.params.items():
            view.params[f"{requirement.kind.value}.{name}"] = value
    return view


def _circle_page(
    request: Request,
    uow: UnitOfWork,
    principal: Principal,
    circle: Circle,
    *,
    form: Form | None = None,
    status_code: int = 200,
) -> Response:
    seats = alliance.held_seats(uow, circle_id=circle.id)
    waitlists: dict[str, list[views.WaitlistRow]] = defaultdict(list)
    if can(principal, Permission.APPLICATIONS_READ):
        entries = admission.slot_waitlist(uow, principal, circle, None)
        for row in views.waitlist_rows(uow, entries):
            waitlists[row.sub_industry].append(row)
    grid = coverage_grid(seats, {slot: len(rows) for slot, rows in waitlists.items()})
    shown = requirements_view(circle)
    form = form or _requirements_form(circle, shown)
    return render(
        request,
        "console/circle.html",
        {
            "circle": circle,
            "seats": seats,
            "grid": grid,
            "held_total": sum(row.held for row in grid),
            "slot_total": sum(len(row.cells) for row in grid),
            "waitlists": dict(sorted(waitlists.items())),
            "requirements": [(r, requirement_summary(r)) for r in circle.requirements],
            "shown": shown,
            "form": form,
            "simple_kinds": SIMPLE_KINDS,
            "manual_slots": len(shown.manual) + MANUAL_SLOTS,
            "requirement_labels": {k.value: requirement_name(k) for k in RequirementKind},
            "domain_options": [
                (d.code.value, domain_name(d.code.value)) for d in taxonomy().domains
            ],
        },
        principal=principal,
        status_code=status_code,
    )


@router.get("/circles/{circle_id}", response_class=HTMLResponse)
def circle_detail(circle_id: str, request: Request, uow: UoW, principal: CircleReader) -> Response:
    return _circle_page(request, uow, principal, alliance.get_circle(uow, circle_id))


# -- admission requirements ----------------------------------------------------------------------


def _requirements_form(circle: Circle, shown: RequirementsView) -> Form:
    values: dict[str, Any] = {kind.value: "true" for kind in shown.chosen}
    for name, value in shown.params.items():
        values[name] = [str(v) for v in value] if isinstance(value, list) else str(value)
    for kind, label in shown.labels.items():
        values[f"{kind.value}.label"] = label
    for i, label in enumerate(shown.manual):
        values[f"manual_check.{i}"] = label
    return Form("requirements", values=values)


def _requirement_rows(posted: PostedForm, slots: int) -> tuple[list[dict[str, Any]], list[str]]:
    """The ticked requirements as API request rows, and the form field each row's errors go to."""
    rows: list[dict[str, Any]] = []
    fields: list[str] = []
    for kind, param in SIMPLE_KINDS:
        if posted.get(kind.value) != "true":
            continue
        row: dict[str, Any] = {"kind": kind.value, "label": posted.get(f"{kind.value}.label")}
        if param == "domains":
            row["params"] = {"domains": posted.getlist(f"{kind.value}.domains")}
        elif param is not None:
            typed = posted.get(f"{kind.value}.{param}").strip()
            row["params"] = {param: typed} if typed else {}
        rows.append(row)
        fields.append(f"{kind.value}.{param}" if param else kind.value)
    for i in range(slots):
        label = posted.get(f"manual_check.{i}").strip()
        if label:
            rows.append({"kind": RequirementKind.MANUAL_CHECK.value, "label": label})
            fields.append(f"manual_check.{i}")
    return rows, fields


@router.post(
    "/circles/{circle_id}/requirements", response_class=HTMLResponse, dependencies=[CsrfChecked]
)
def set_requirements(
    circle_id: str, request: Request, uow: UoW, principal: CircleWriter, posted: PostedForm
) -> Response:
    circle = alliance.get_circle(uow, circle_id)
    slots = len(requirements_view(circle).manual) + MANUAL_SLOTS
    form = Form("requirements", values=posted.typed())
    rows, fields = _requirement_rows(posted, slots)
    checked = Form("checked")
    data = validate(RequirementsIn, {"requirements": rows}, checked)
    for name, message in checked.errors.items():
        form.errors.setdefault(_requirement_field(name, fields), message)
    if data is None:
        return _circle_page(request, uow, principal, circle, form=form, status_code=422)
    try:
        cases.replace_requirements(uow, principal, circle, data.requirements)
    except Problem as problem:
        for error in problem.errors:
            form.errors.setdefault(_requirement_field(error.field, fields), error.message)
        form.problem = problem.detail
        return _circle_page(request, uow, principal, circle, form=form, status_code=problem.status)
    flash(request, _("Admission requirements of %(name)s saved.", name=circle.name))
    return RedirectResponse(f"/console/circles/{circle.public_id}#requirements", status_code=303)


def _requirement_field(path: str, fields: list[str]) -> str:
    """`body.requirements.3.params` → the form field of the fourth ticked requirement."""
    parts = path.removeprefix("body.").split(".")
    if len(parts) >= 2 and parts[0] == "requirements" and parts[1].isdigit():
        index = int(parts[1])
        if index < len(fields):
            return fields[index]
    return path


def requirement_summary(requirement: AdmissionRequirement) -> str:
    """A requirement in words, as the circle page lists it."""
    params = requirement.params
    kind = requirement.kind
    if kind == RequirementKind.MIN_REVIEW_SCORE:
        return _("Review score of at least %(min)s", min=params.get("min"))
    if kind == RequirementKind.MIN_REVIEW_COUNT:
        return _("At least %(min)s reviews", min=params.get("min"))
    if kind == RequirementKind.MIN_YEARS_TRADING:
        return _("Trading for at least %(years)s years", years=params.get("years"))
    if kind == RequirementKind.SUB_INDUSTRY_ALLOWED:
        allowed = [*params.get("domains", []), *params.get("codes", [])]
        return _("Only these life domains or sub-industries: %(list)s", list=", ".join(allowed))
    if kind == RequirementKind.MANUAL_CHECK:
        return _("Confirmed by the relationship manager: %(what)s", what=requirement.label)
    return requirement_name(kind)
