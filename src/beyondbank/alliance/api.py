"""Alliance endpoints: taxonomy, branches, circles, merchants, admission, waitlists, members, relationships, audit visits."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Query, Response
from pydantic import AwareDatetime

from beyondbank.alliance import (
    admission,
    audits,
    circles,
    membership,
    merchants,
    people,
    relationships,
    schemas,
)
from beyondbank.alliance.models import (
    Application,
    ApplicationStatus,
    AuditVisit,
    Branch,
    CardLink,
    Circle,
    CircleKind,
    CircleStatus,
    CorrectiveAction,
    CorrectiveActionStatus,
    Interaction,
    ManagerAssignment,
    Member,
    MemberStatus,
    Merchant,
    MerchantContact,
    MerchantLocation,
    MerchantStatus,
    MerchantTerminal,
    VisitMode,
    VisitOutcome,
    WaitlistEntry,
)
from beyondbank.alliance.service import (
    application_public_ids,
    circle_public_ids,
    circles_containing,
    current_manager_id,
    distance_to_centre,
    get_application,
    get_branch,
    get_circle,
    get_merchant,
    held_seats,
    member_circles,
    merchant_by_id,
    merchants_by_ids,
)
from beyondbank.alliance.taxonomy import LifeDomain, taxonomy
from beyondbank.core.authz import Permission, Principal, can
from beyondbank.core.errors import Forbidden, NotFound, invalid
from beyondbank.core.i18n import _
from beyondbank.core.pagination import DEFAULT_LIMIT, MAX_LIMIT, Page
from beyondbank.core.settings import Settings
from beyondbank.deps import CurrentPrincipal, SettingsDep, UoW, requires

router = APIRouter(tags=["alliance"])

P = Permission
Cursor = Annotated[str | None, Query(description="`next_cursor` of the previous page")]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]
TaxonomyReader = Annotated[Principal, Depends(requires(P.TAXONOMY_READ))]
CircleReader = Annotated[Principal, Depends(requires(P.CIRCLES_READ))]
CircleWriter = Annotated[Principal, Depends(requires(P.CIRCLES_WRITE))]
MerchantReader = Annotated[Principal, Depends(requires(P.MERCHANTS_READ))]
MerchantWriter = Annotated[Principal, Depends(requires(P.MERCHANTS_WRITE))]
LifecycleManager = Annotated[Principal, Depends(requires(P.MERCHANTS_LIFECYCLE))]
ContactReader = Annotated[Principal, Depends(requires(P.MERCHANT_CONTACTS_READ))]
ApplicationReader = Annotated[Principal, Depends(requires(P.APPLICATIONS_READ))]
Applicant = Annotated[Principal, Depends(requires(P.APPLICATIONS_CREATE))]
Decider = Annotated[Principal, Depends(requires(P.APPLICATIONS_DECIDE))]
MemberReader = Annotated[Principal, Depends(requires(P.MEMBERS_READ))]
MemberWriter = Annotated[Principal, Depends(requires(P.MEMBERS_WRITE))]
RelationshipReader = Annotated[Principal, Depends(requires(P.RELATIONSHIP_READ))]
RelationshipWriter = Annotated[Principal, Depends(requires(P.RELATIONSHIP_WRITE))]
ManagerAssigner = Annotated[Principal, Depends(requires(P.RELATIONSHIP_ASSIGN))]
VisitReader = Annotated[Principal, Depends(requires(P.VISITS_READ))]
VisitRecorder = Annotated[Principal, Depends(requires(P.VISITS_RECORD))]
ActionCloser = Annotated[Principal, Depends(requires(P.VISITS_CLOSE))]


def _customer(principal: CurrentPrincipal) -> Principal:
    """Customers act on their own membership only; nobody else has a `me` membership."""
    if principal.customer_id is None:
        raise Forbidden(_("Only a customer signed in from the bank's app has a membership."))
    return principal


CustomerPrincipal = Annotated[Principal, Depends(_customer)]


# -- taxonomy --------------------------------------------------------------------------------


@router.get(
    "/taxonomy", response_model=schemas.TaxonomyOut, summary="Life domains, sub-industries, MCCs"
)
def get_taxonomy(_reader: TaxonomyReader) -> schemas.TaxonomyOut:
    return schemas.TaxonomyOut(
        domains=[
            schemas.DomainOut(
                code=domain.code,
                names=domain.names,
                sub_industries=[
                    schemas.SubIndustryOut(code=s.code, names=s.names, mcc=list(s.mcc))
                    for s in domain.sub_industries
                ],
            )
            for domain in taxonomy().domains
        ]
    )


# -- branches --------------------------------------------------------------------------------


def _branch_out(branch: Branch) -> schemas.BranchOut:
    return schemas.BranchOut(
        id=branch.public_id,
        code=branch.code,
        name=branch.name,
        address=branch.address,
        latitude=branch.latitude,
        longitude=branch.longitude,
        timezone=branch.timezone,
        created_at=branch.created_at,
    )


@router.post("/branches", response_model=schemas.BranchOut, status_code=201)
def create_branch(body: schemas.BranchIn, uow: UoW, actor: CircleWriter) -> schemas.BranchOut:
    return _branch_out(circles.create_branch(uow, actor, body))


@router.get("/branches", response_model=Page[schemas.BranchOut])
def list_branches(
    uow: UoW, _reader: CircleReader, cursor: Cursor = None, limit: Limit = DEFAULT_LIMIT
) -> Page[schemas.BranchOut]:
    rows, next_cursor = circles.list_branches(uow, cursor=cursor, limit=limit)
    return Page(items=[_branch_out(b) for b in rows], next_cursor=next_cursor)


@router.get("/branches/{branch_id}", response_model=schemas.BranchOut)
def read_branch(branch_id: str, uow: UoW, _reader: CircleReader) -> schemas.BranchOut:
    return _branch_out(get_branch(uow, branch_id))


# -- circles ---------------------------------------------------------------------------------


def _circle_fields(circle: Circle) -> dict[str, object]:
    return {
        "id": circle.public_id,
        "code": circle.code,
        "name": circle.name,
        "description": circle.description,
        "kind": circle.kind,
        "status": circle.status,
        "branch_id": circle.branch.public_id if circle.branch else None,
        "center_latitude": circle.center_latitude,
        "center_longitude": circle.center_longitude,
        "radius_m": circle.radius_m,
        "segment_name": circle.segment_name,
        "segment_rule": circle.segment_rule,
        "created_at": circle.created_at,
        "updated_at": circle.updated_at,
    }


def _circle_out(circle: Circle) -> schemas.CircleOut:
    return schemas.CircleOut.model_validate(_circle_fields(circle))


def _requirements_out(circle: Circle) -> list[schemas.RequirementOut]:
    return [
        schemas.RequirementOut(kind=r.kind, label=r.label, params=r.params)
        for r in circle.requirements
    ]


def _circle_detail(uow: UoW, circle: Circle) -> schemas.CircleDetailOut:
    seats = held_seats(uow, circle_id=circle.id)
    applications = application_public_ids(uow, {s.application_id for s in seats})
    return schemas.CircleDetailOut.model_validate(
        {
            **_circle_fields(circle),
            "requirements": _requirements_out(circle),
            "seats": [
                schemas.SeatOut(
                    sub_industry=seat.sub_industry,
                    domain=_domain(seat.sub_industry),
                    merchant_id=seat.merchant.public_id,
                    merchant_name=seat.merchant.trading_name,
                    application_id=applications[seat.application_id],
                    taken_at=seat.taken_at,
                )
                for seat in seats
            ],
            "coverage": [
                schemas.DomainCoverageOut(domain=c.domain, names=c.names, held=c.held, free=c.free)
                for c in circles.coverage(seats)
            ],
        }
    )


def _domain(sub_industry: str) -> LifeDomain:
    sub = taxonomy().sub_industry(sub_industry)
    assert sub is not None, sub_industry
    return sub.domain


@router.post("/circles", response_model=schemas.CircleDetailOut, status_code=201)
def create_circle(body: schemas.CircleIn, uow: UoW, actor: CircleWriter) -> schemas.CircleDetailOut:
    return _circle_detail(uow, circles.create_circle(uow, actor, body))


@router.get("/circles", response_model=Page[schemas.CircleOut])
def list_circles(
    uow: UoW,
    _reader: CircleReader,
    kind: CircleKind | None = None,
    status: CircleStatus | None = None,
    branch: Annotated[str | None, Query(description="Anchor branch id")] = None,
    contains_lat: Annotated[float | None, Query(ge=-90, le=90)] = None,
    contains_lon: Annotated[float | None, Query(ge=-180, le=180)] = None,
    cursor: Cursor = None,
    limit: Limit = DEFAULT_LIMIT,
) -> Page[schemas.CircleOut]:
    """Circles, filtered; `contains_lat` and `contains_lon` (together) keep the active geographic
    circles around that point."""
    if (contains_lat is None) != (contains_lon is None):
        missing = "contains_lon" if contains_lon is None else "contains_lat"
        raise invalid(f"query.{missing}", _("give both coordinates of the point"))
    filters = circles.CircleFilter(
        kind=kind,
        status=status,
        branch_id=get_branch(uow, branch, field="query.branch").id if branch else None,
        contains=(contains_lat, contains_lon)
        if contains_lat is not None and contains_lon is not None
        else None,
    )
    rows, next_cursor = circles.list_circles(uow, filters, cursor=cursor, limit=limit)
    return Page(items=[_circle_out(c) for c in rows], next_cursor=next_cursor)


@router.get("/circles/containing", response_model=list[schemas.CircleNearOut])
def circles_around(
    uow: UoW,
    _reader: CircleReader,
    lat: Annotated[float, Query(ge=-90, le=90)],
    lon: Annotated[float, Query(ge=-180, le=180)],
) -> list[schemas.CircleNearOut]:
    """Active geographic circles containing the point, nearest centre first."""
    return [
        schemas.CircleNearOut.model_validate(
            {**_circle_fields(c), "distance_m": round(distance_to_centre(c, lat, lon) or 0.0, 1)}
        )
        for c in circles_containing(uow, lat, lon)
    ]


@router.get("/circles/{circle_id}", response_model=schemas.CircleDetailOut)
def read_circle(circle_id: str, uow: UoW, _reader: CircleReader) -> schemas.CircleDetailOut:
    """A circle with its requirements, its seats and what each life domain still lacks."""
    return _circle_detail(uow, get_circle(uow, circle_id))


@router.patch("/circles/{circle_id}", response_model=schemas.CircleDetailOut)
def update_circle(
    circle_id: str, body: schemas.CirclePatch, uow: UoW, actor: CircleWriter
) -> schemas.CircleDetailOut:
    circle = circles.update_circle(uow, actor, get_circle(uow, circle_id), body)
    return _circle_detail(uow, circle)


@router.post("/circles/{circle_id}/archive", response_model=schemas.CircleDetailOut)
def archive_circle(
    circle_id: str, body: schemas.DecisionIn, uow: UoW, actor: CircleWriter
) -> schemas.CircleDetailOut:
    """Retire the circle: seats are released and open applications withdrawn."""
    circle = circles.archive_circle(uow, actor, get_circle(uow, circle_id), body.reason)
    return _circle_detail(uow, circle)


@router.get("/circles/{circle_id}/requirements", response_model=list[schemas.RequirementOut])
def list_requirements(
    circle_id: str, uow: UoW, _reader: CircleReader
) -> list[schemas.RequirementOut]:
    return _requirements_out(get_circle(uow, circle_id))


@router.put("/circles/{circle_id}/requirements", response_model=list[schemas.RequirementOut])
def replace_requirements(
    circle_id: str, body: schemas.RequirementsIn, uow: UoW, actor: CircleWriter
) -> list[schemas.RequirementOut]:
    circle = circles.replace_requirements(uow, actor, get_circle(uow, circle_id), body.requirements)
    return _requirements_out(circle)


@router.get("/circles/{circle_id}/waitlist", response_model=list[schemas.WaitlistOut])
def circle_waitlist(
    circle_id: str,
    uow: UoW,
    actor: ApplicationReader,
    sub_industry: str | None = None,
) -> list[schemas.WaitlistOut]:
    """The circle's waitlists in order (one slot's with `sub_industry`); merchants see their own."""
    entries = admission.slot_waitlist(uow, actor, get_circle(uow, circle_id), sub_industry)
    return _waitlist_out(uow, entries)


# -- merchants -------------------------------------------------------------------------------


def _terminal_out(terminal: MerchantTerminal) -> schemas.TerminalOut:
    return schemas.TerminalOut(
        id=terminal.public_id,
        acquirer_merchant_id=terminal.acquirer_merchant_id,
        terminal_id=terminal.terminal_id,
        created_at=terminal.created_at,
    )


def _location_out(location: MerchantLocation) -> schemas.LocationOut:
    return schemas.LocationOut(
        id=location.public_id,
        name=location.name,
        address_line=location.address_line,
        city=location.city,
        postcode=location.postcode,
        country=location.country,
        latitude=location.latitude,
        longitude=location.longitude,
        timezone=location.timezone,
        active=location.active,
        terminals=[_terminal_out(t) for t in location.terminals],
    )


def _contact_out(contact: MerchantContact) -> schemas.ContactOut:
    return schemas.ContactOut(
        id=contact.public_id,
        name=contact.name,
        role=contact.role,
        email=contact.email,
        phone=contact.phone,
        is_primary=contact.is_primary,
    )


def _merchant_fields(merchant: Merchant) -> dict[str, object]:
    return {
        "id": merchant.public_id,
        "legal_name": merchant.legal_name,
        "trading_name": merchant.trading_name,
        "registration_number": merchant.registration_number,
        "sub_industry": merchant.sub_industry,
        "domain": _domain(merchant.sub_industry),
        "mcc": merchant.mcc,
        "status": merchant.status,
        "status_reason": merchant.status_reason,
        "status_changed_at": merchant.status_changed_at,
        "timezone": merchant.timezone,
        "description": merchant.description,
        "website": merchant.website,
        "founded_on": merchant.founded_on,
        "review_score": merchant.review_score,
        "review_count": merchant.review_count,
        "licence_number": merchant.licence_number,
        "licence_verified_at": merchant.licence_verified_at,
        "kyb_status": merchant.kyb_status,
        "kyb_checked_at": merchant.kyb_checked_at,
        "created_at": merchant.created_at,
        "updated_at": merchant.updated_at,
    }


def _staff_ref(ref: people.StaffRef | None) -> schemas.ManagerRef | None:
    return schemas.ManagerRef(id=ref.public_id, name=ref.name) if ref else None


def _merchant_detail(uow: UoW, actor: Principal, merchant: Merchant) -> schemas.MerchantDetailOut:
    """The merchant's profile; contacts and the settlement account only for those who may read
    contacts (not analysts, not a merchant's counter staff)."""
    private = can(actor, P.MERCHANT_CONTACTS_READ)
    manager_id = current_manager_id(uow, merchant.id)
    manager = people.users_by_ids(uow, {manager_id}).get(manager_id) if manager_id else None
    seat_circles = circle_public_ids(
        uow, {s.circle_id for s in held_seats(uow, merchant_id=merchant.id)}
    )
    account = (
        schemas.SettlementAccountOut(
            iban=merchant.settlement_iban,
            bic=merchant.settlement_bic,
            account_name=merchant.settlement_account_name,
        )
        if private and merchant.settlement_iban
        else None
    )
    return schemas.MerchantDetailOut.model_validate(
        {
            **_merchant_fields(merchant),
            "locations": [_location_out(loc) for loc in merchant.locations],
            "contacts": [_contact_out(c) for c in merchant.contacts] if private else None,
            "settlement_account": account,
            "manager": _staff_ref(manager),
            "circles": sorted(seat_circles.values()),
        }
    )


@router.post("/merchants", response_model=schemas.MerchantDetailOut, status_code=201)
def create_merchant(
    body: schemas.MerchantIn, uow: UoW, actor: MerchantWriter
) -> schemas.MerchantDetailOut:
    """The bank registers a merchant's application on its behalf (status `applied`)."""
    return _merchant_detail(uow, actor, merchants.create_merchant(uow, actor, body))


@router.post(
    "/merchants/apply",
    response_model=schemas.MerchantOut,
    status_code=201,
    summary="A business applies to join the alliance (no sign-in needed)",
)
def apply_online(body: schemas.SelfApplicationIn, uow: UoW) -> schemas.MerchantOut:
    """Creates the merchant (status `applied`) and its administrator, who then signs in with the
    password given to follow the application."""
    merchant = merchants.apply_online(uow, body)
    return schemas.MerchantOut.model_validate(_merchant_fields(merchant))


@router.get("/merchants", response_model=Page[schemas.MerchantOut])
def list_merchants(
    uow: UoW,
    actor: MerchantReader,
    status: MerchantStatus | None = None,
    sub_industry: str | None = None,
    domain: LifeDomain | None = None,
    circle: Annotated[str | None, Query(description="Holding a seat in this circle")] = None,
    manager: Annotated[
        str | None, Query(description="Looked after by this manager (user id)")
    ] = None,
    q: Annotated[str | None, Query(max_length=100, description="Part of the name")] = None,
    cursor: Cursor = None,
    limit: Limit = DEFAULT_LIMIT,
) -> Page[schemas.MerchantOut]:
    filters = merchants.MerchantFilter(
        status=status,
        sub_industry=sub_industry,
        domain=domain,
        circle_id=get_circle(uow, circle, field="query.circle").id if circle else None,
        manager_id=_user_id(uow, manager, "query.manager") if manager else None,
        text=q,
    )
    rows, next_cursor = merchants.list_merchants(uow, actor, filters, cursor=cursor, limit=limit)
    return Page(
        items=[schemas.MerchantOut.model_validate(_merchant_fields(m)) for m in rows],
        next_cursor=next_cursor,
    )


def _user_id(uow: UoW, public_id: str, field: str) -> int:
    try:
        return people.user_by_public_id(uow, public_id).id
    except NotFound:
        raise invalid(field, _("no such user")) from None


@router.get("/merchants/{merchant_id}", response_model=schemas.MerchantDetailOut)
def read_merchant(merchant_id: str, uow: UoW, actor: MerchantReader) -> schemas.MerchantDetailOut:
    return _merchant_detail(uow, actor, get_merchant(uow, actor, merchant_id))


@router.patch("/merchants/{merchant_id}", response_model=schemas.MerchantDetailOut)
def update_merchant(
    merchant_id: str, body: schemas.MerchantPatch, uow: UoW, actor: MerchantWriter
) -> schemas.MerchantDetailOut:
    merchant = merchants.update_merchant(uow, actor, get_merchant(uow, actor, merchant_id), body)
    return _merchant_detail(uow, actor, merchant)


@router.put("/merchants/{merchant_id}/settlement-account", response_model=schemas.MerchantDetailOut)
def set_settlement_account(
    merchant_id: str, body: schemas.SettlementAccountIn, uow: UoW, actor: MerchantWriter
) -> schemas.MerchantDetailOut:
    merchant = get_merchant(uow, actor, merchant_id)
    return _merchant_detail(
        uow, actor, merchants.set_settlement_account(uow, actor, merchant, body)
    )


@router.post(
    "/merchants/{merchant_id}/locations", response_model=schemas.LocationOut, status_code=201
)
def add_location(
    merchant_id: str, body: schemas.LocationIn, uow: UoW, actor: MerchantWriter
) -> schemas.LocationOut:
    merchant = get_merchant(uow, actor, merchant_id)
    return _location_out(merchants.add_location(uow, actor, merchant, body))


@router.delete(
    "/merchants/{merchant_id}/locations/{location_id}", response_model=schemas.LocationOut
)
def remove_location(
    merchant_id: str, location_id: str, uow: UoW, actor: MerchantWriter
) -> schemas.LocationOut:
    """Close the location (kept in the history) and drop its terminals."""
    merchant = get_merchant(uow, actor, merchant_id)
    return _location_out(merchants.remove_location(uow, actor, merchant, location_id))


@router.post(
    "/merchants/{merchant_id}/locations/{location_id}/terminals",
    response_model=schemas.TerminalOut,
    status_code=201,
)
def add_terminal(
    merchant_id: str, location_id: str, body: schemas.TerminalIn, uow: UoW, actor: MerchantWriter
) -> schemas.TerminalOut:
    merchant = get_merchant(uow, actor, merchant_id)
    return _terminal_out(merchants.add_terminal(uow, actor, merchant, location_id, body))


@router.delete("/merchants/{merchant_id}/terminals/{terminal_id}", status_code=204)
def remove_terminal(
    merchant_id: str, terminal_id: str, uow: UoW, actor: MerchantWriter
) -> Response:
    merchants.remove_terminal(uow, actor, get_merchant(uow, actor, merchant_id), terminal_id)
    return Response(status_code=204)


@router.get("/merchants/{merchant_id}/contacts", response_model=list[schemas.ContactOut])
def list_contacts(merchant_id: str, uow: UoW, actor: ContactReader) -> list[schemas.ContactOut]:
    return [_contact_out(c) for c in get_merchant(uow, actor, merchant_id).contacts]


@router.post(
    "/merchants/{merchant_id}/contacts", response_model=schemas.ContactOut, status_code=201
)
def add_contact(
    merchant_id: str, body: schemas.ContactIn, uow: UoW, actor: MerchantWriter
) -> schemas.ContactOut:
    merchant = get_merchant(uow, actor, merchant_id)
    return _contact_out(merchants.add_contact(uow, actor, merchant, body))


@router.delete("/merchants/{merchant_id}/contacts/{contact_id}", status_code=204)
def remove_contact(merchant_id: str, contact_id: str, uow: UoW, actor: MerchantWriter) -> Response:
    merchants.remove_contact(uow, actor, get_merchant(uow, actor, merchant_id), contact_id)
    return Response(status_code=204)


@router.post("/merchants/{merchant_id}/transitions", response_model=schemas.MerchantDetailOut)
def change_status(
    merchant_id: str, body: schemas.TransitionIn, uow: UoW, actor: LifecycleManager
) -> schemas.MerchantDetailOut:
    """Move the merchant along its lifecycle; an illegal move is a 409 naming its status."""
    merchant = get_merchant(uow, actor, merchant_id)
    return _merchant_detail(
        uow, actor, merchants.change_status(uow, actor, merchant, body.to, body.reason)
    )


@router.post(
    "/merchants/{merchant_id}/licence-verification", response_model=schemas.MerchantDetailOut
)
def verify_licence(
    merchant_id: str, body: schemas.LicenceVerificationIn, uow: UoW, actor: LifecycleManager
) -> schemas.MerchantDetailOut:
    merchant = merchants.record_licence_verification(
        uow, actor, get_merchant(uow, actor, merchant_id), verified=body.verified, note=body.note
    )
    return _merchant_detail(uow, actor, merchant)


@router.post("/merchants/{merchant_id}/kyb", response_model=schemas.MerchantDetailOut)
def record_kyb(
    merchant_id: str, body: schemas.KybResultIn, uow: UoW, actor: LifecycleManager
) -> schemas.MerchantDetailOut:
    merchant = merchants.record_kyb(
        uow, actor, get_merchant(uow, actor, merchant_id), result=body.result, note=body.note
    )
    return _merchant_detail(uow, actor, merchant)


@router.put("/merchants/{merchant_id}/reviews", response_model=schemas.MerchantDetailOut)
def record_reviews(
    merchant_id: str, body: schemas.ReviewsIn, uow: UoW, actor: LifecycleManager
) -> schemas.MerchantDetailOut:
    merchant = merchants.record_reviews(
        uow,
        actor,
        get_merchant(uow, actor, merchant_id),
        score=body.score,
        count=body.count,
        source=body.source,
    )
    return _merchant_detail(uow, actor, merchant)


# -- admission -------------------------------------------------------------------------------


def _waitlist_out(uow: UoW, entries: Sequence[WaitlistEntry]) -> list[schemas.WaitlistOut]:
    places = admission.positions(uow, entries)
    staff = people.users_by_ids(uow, {e.offered_to_id for e in entries if e.offered_to_id})
    return [
        schemas.WaitlistOut(
            application_id=entry.application.public_id,
            circle_id=entry.application.circle.public_id,
            sub_industry=entry.sub_industry,
            merchant_id=entry.application.merchant.public_id,
            merchant_name=entry.application.merchant.trading_name,
            status=entry.status,
            position=places.get(entry.id) if entry.status in admission.OPEN_ENTRIES else None,
            joined_at=entry.joined_at,
            offered_at=entry.offered_at,
            offered_to=staff[entry.offered_to_id].public_id if entry.offered_to_id else None,
            closed_at=entry.closed_at,
        )
        for entry in entries
    ]


def _application_out(uow: UoW, application: Application) -> schemas.ApplicationOut:
    checks = application.checks
    ids = {c.confirmed_by_id for c in checks if c.confirmed_by_id}
    if application.decided_by_id:
        ids.add(application.decided_by_id)
    staff = people.users_by_ids(uow, ids)
    entry = admission.waitlist_entry(uow, application)
    return schemas.ApplicationOut(
        id=application.public_id,
        merchant_id=application.merchant.public_id,
        merchant_name=application.merchant.trading_name,
        circle_id=application.circle.public_id,
        circle_name=application.circle.name,
        sub_industry=application.sub_industry,
        status=application.status,
        submitted_at=application.submitted_at,
        checked_at=application.checked_at,
        decided_at=application.decided_at,
        decided_by=staff[application.decided_by_id].public_id
        if application.decided_by_id
        else None,
        decision_reason=application.decision_reason,
        checks=[
            schemas.CheckOut(
                id=c.public_id,
                kind=c.kind,
                label=c.label,
                passed=c.passed,
                reason=c.reason,
                checked_at=c.checked_at,
                confirmed_by=staff[c.confirmed_by_id].public_id if c.confirmed_by_id else None,
                confirmed_at=c.confirmed_at,
            )
            for c in checks
        ],
        waitlist=_waitlist_out(uow, [entry])[0] if entry else None,
    )


@router.post("/applications", response_model=schemas.ApplicationOut, status_code=201)
def submit_application(
    body: schemas.ApplicationIn, uow: UoW, actor: Applicant
) -> schemas.ApplicationOut:
    """Apply for the merchant's sub-industry slot in a circle; the requirements are checked at once."""
    merchant = get_merchant(uow, actor, body.merchant_id, field="body.merchant_id")
    circle = get_circle(uow, body.circle_id, field="body.circle_id")
    return _application_out(uow, admission.submit(uow, actor, merchant, circle))


@router.get("/applications", response_model=Page[schemas.ApplicationOut])
def list_applications(
    uow: UoW,
    actor: ApplicationReader,
    status: ApplicationStatus | None = None,
    circle: str | None = None,
    merchant: str | None = None,
    sub_industry: str | None = None,
    cursor: Cursor = None,
    limit: Limit = DEFAULT_LIMIT,
) -> Page[schemas.ApplicationOut]:
    rows, next_cursor = admission.list_applications(
        uow,
        actor,
        status=status,
        circle_id=get_circle(uow, circle, field="query.circle").id if circle else None,
        merchant_id=get_merchant(uow, actor, merchant, field="query.merchant").id
        if merchant
        else None,
        sub_industry=sub_industry,
        cursor=cursor,
        limit=limit,
    )
    return Page(items=[_application_out(uow, a) for a in rows], next_cursor=next_cursor)


@router.get("/applications/{application_id}", response_model=schemas.ApplicationOut)
def read_application(
    application_id: str, uow: UoW, actor: ApplicationReader
) -> schemas.ApplicationOut:
    return _application_out(uow, get_application(uow, actor, application_id))


@router.post("/applications/{application_id}/checks/run", response_model=schemas.ApplicationOut)
def run_checks(application_id: str, uow: UoW, actor: Decider) -> schemas.ApplicationOut:
    """Check the requirements again (after a licence is verified, KYB passes, ...)."""
    application = admission.recheck(uow, actor, get_application(uow, actor, application_id))
    return _application_out(uow, application)


@router.post(
    "/applications/{application_id}/checks/{check_id}/confirm",
    response_model=schemas.ApplicationOut,
)
def confirm_check(
    application_id: str,
    check_id: str,
    body: schemas.CheckConfirmationIn,
    uow: UoW,
    actor: Decider,
) -> schemas.ApplicationOut:
    """A relationship manager answers a manual check."""
    application = admission.confirm_check(
        uow,
        actor,
        get_application(uow, actor, application_id),
        check_id,
        passed=body.passed,
        note=body.note,
    )
    return _application_out(uow, application)


@router.post("/applications/{application_id}/approve", response_model=schemas.ApplicationOut)
def approve_application(
    application_id: str, body: schemas.DecisionIn, uow: UoW, actor: Decider
) -> schemas.ApplicationOut:
    """Admit the merchant: every requirement met, and the slot's seat taken. When the slot is
    taken, the answer is a 409 `slot-taken` naming the holder, and the application is waitlisted."""
    application = admission.approve(
        uow, actor, get_application(uow, actor, application_id), body.reason
    )
    return _application_out(uow, application)


@router.post("/applications/{application_id}/reject", response_model=schemas.ApplicationOut)
def reject_application(
    application_id: str, body: schemas.DecisionIn, uow: UoW, actor: Decider
) -> schemas.ApplicationOut:
    application = admission.reject(
        uow, actor, get_application(uow, actor, application_id), body.reason
    )
    return _application_out(uow, application)


@router.post("/applications/{application_id}/withdraw", response_model=schemas.ApplicationOut)
def withdraw_application(
    application_id: str, body: schemas.DecisionIn, uow: UoW, actor: Applicant
) -> schemas.ApplicationOut:
    application = admission.withdraw(
        uow, actor, get_application(uow, actor, application_id), body.reason
    )
    return _application_out(uow, application)


@router.get("/waitlist/offers", response_model=list[schemas.WaitlistOut])
def my_offers(uow: UoW, actor: Decider) -> list[schemas.WaitlistOut]:
    """Freed slots offered to me for a decision: accept (the merchant takes the seat) or decline."""
    return _waitlist_out(uow, admission.offers_for(uow, actor))


@router.post("/waitlist/offers/{application_id}/accept", response_model=schemas.ApplicationOut)
def accept_offer(
    application_id: str, body: schemas.DecisionIn, uow: UoW, actor: Decider
) -> schemas.ApplicationOut:
    return approve_application(application_id, body, uow, actor)


@router.post("/waitlist/offers/{application_id}/decline", response_model=schemas.ApplicationOut)
def decline_offer(
    application_id: str, body: schemas.DecisionIn, uow: UoW, actor: Decider
) -> schemas.ApplicationOut:
    """Decline: the application is rejected and the slot offered to the next in line."""
    return reject_application(application_id, body, uow, actor)


# -- membership: the customer's own ------------------------------------------------------------


def _place(latitude: float | None, longitude: float | None) -> schemas.PlaceOut | None:
    if latitude is None or longitude is None:
        return None
    return schemas.PlaceOut(latitude=latitude, longitude=longitude)


def _card_out(card: CardLink) -> schemas.CardOut:
    return schemas.CardOut(
        id=card.public_id, last4=card.last4, linked_at=card.linked_at, unlinked_at=card.unlinked_at
    )


def _member_fields(member: Member) -> dict[str, object]:
    return {
        "id": member.public_id,
        "member_number": member.member_number,
        "status": member.status,
        "enrolled_at": member.enrolled_at,
        "left_at": member.left_at,
        "home": _place(member.home_latitude, member.home_longitude),
        "work": _place(member.work_latitude, member.work_longitude),
        "cards": [_card_out(c) for c in member.cards],
    }


def _member_out(member: Member) -> schemas.MemberOut:
    return schemas.MemberOut.model_validate(_member_fields(member))


def _members_admin_out(uow: UoW, members: Iterable[Member]) -> list[schemas.MemberAdminOut]:
    rows = list(members)
    refs = people.bank_refs_by_ids(uow, {m.customer_id for m in rows})
    return [
        schemas.MemberAdminOut.model_validate(
            {**_member_fields(m), "customer_ref": refs[m.customer_id], "attributes": m.attributes}
        )
        for m in rows
    ]


@router.post("/members/me", response_model=schemas.MemberOut, status_code=201)
def enrol_me(body: schemas.EnrolIn, uow: UoW, actor: CustomerPrincipal) -> schemas.MemberOut:
    """Join the alliance, consenting to the text version shown; a member number is issued."""
    assert actor.customer_id is not None
    member = membership.enrol(
        uow,
        actor,
        customer_id=actor.customer_id,
        consent_version=body.consent.text_version,
        consent_channel="app",
        home=body.home,
        work=body.work,
    )
    return _member_out(member)


@router.get("/members/me", response_model=schemas.MemberOut)
def read_me(uow: UoW, actor: CustomerPrincipal) -> schemas.MemberOut:
    return _member_out(membership.my_membership(uow, actor))


@router.patch("/members/me/places", response_model=schemas.MemberOut)
def set_my_places(body: schemas.PlacesIn, uow: UoW, actor: CustomerPrincipal) -> schemas.MemberOut:
    member = membership.set_places(uow, actor, membership.my_membership(uow, actor), body)
    return _member_out(member)


@router.get("/members/me/circles", response_model=list[schemas.MemberCircleOut])
def my_circles(uow: UoW, actor: CustomerPrincipal) -> list[schemas.MemberCircleOut]:
    """The circles I belong to, and why: home or work inside, or my segment."""
    member = membership.my_membership(uow, actor)
    return [
        schemas.MemberCircleOut.model_validate({**_circle_fields(c), "because": because})
        for c, because in member_circles(uow, member)
    ]


@router.post("/members/me/cards", response_model=schemas.CardOut, status_code=201)
def link_my_card(body: schemas.CardIn, uow: UoW, actor: CustomerPrincipal) -> schemas.CardOut:
    return _card_out(membership.link_card(uow, actor, membership.my_membership(uow, actor), body))


@router.delete("/members/me/cards/{card_id}", response_model=schemas.CardOut)
def unlink_my_card(card_id: str, uow: UoW, actor: CustomerPrincipal) -> schemas.CardOut:
    return _card_out(
        membership.unlink_card(uow, actor, membership.my_membership(uow, actor), card_id)
    )


@router.post("/members/me/leave", response_model=schemas.MemberOut)
def leave(body: schemas.LeaveIn, uow: UoW, actor: CustomerPrincipal) -> schemas.MemberOut:
    """Leave the alliance: cards unlinked, consent withdrawn. You may enrol again later."""
    member = membership.leave(uow, actor, membership.my_membership(uow, actor), body.reason)
    return _member_out(member)


# -- membership: the bank's systems and staff ----------------------------------------------------


@router.post("/members", response_model=schemas.MemberAdminOut, status_code=201)
def enrol_by_bank(
    body: schemas.BankEnrolIn, uow: UoW, actor: MemberWriter
) -> schemas.MemberAdminOut:
    """The bank enrols a customer it knows by its own reference, with the consent it collected."""
    member = membership.enrol(
        uow,
        actor,
        customer_id=people.customer_for_bank_ref(uow, body.bank_ref),
        consent_version=body.consent.text_version,
        consent_channel=body.consent.channel,
        consent_granted_at=body.consent.granted_at,
        home=body.home,
        work=body.work,
        attributes=body.attributes,
    )
    return _members_admin_out(uow, [member])[0]


@router.get("/members", response_model=Page[schemas.MemberAdminOut])
def list_members(
    uow: UoW,
    _reader: MemberReader,
    status: MemberStatus | None = None,
    customer_ref: Annotated[str | None, Query(description="The bank's customer reference")] = None,
    member_number: str | None = None,
    cursor: Cursor = None,
    limit: Limit = DEFAULT_LIMIT,
) -> Page[schemas.MemberAdminOut]:
    customer_id = people.customer_id_for_bank_ref(uow, customer_ref) if customer_ref else None
    if customer_ref and customer_id is None:
        return Page(items=[], next_cursor=None)
    rows, next_cursor = membership.list_members(
        uow,
        status=status,
        customer_id=customer_id,
        member_number=member_number,
        cursor=cursor,
        limit=limit,
    )
    return Page(items=_members_admin_out(uow, rows), next_cursor=next_cursor)


@router.get("/members/{member_id}", response_model=schemas.MemberAdminOut)
def read_member(member_id: str, uow: UoW, _reader: MemberReader) -> schemas.MemberAdminOut:
    return _members_admin_out(uow, [membership.get_member(uow, member_id)])[0]


@router.put("/members/{member_id}/attributes", response_model=schemas.MemberAdminOut)
def set_member_attributes(
    member_id: str, body: schemas.AttributesIn, uow: UoW, actor: MemberWriter
) -> schemas.MemberAdminOut:
    """Replace the segment attributes the bank shares for this member (e.g. children, car owner)."""
    member = membership.set_attributes(
        uow, actor, membership.get_member(uow, member_id), body.attributes
    )
    return _members_admin_out(uow, [member])[0]


# -- relationship management -----------------------------------------------------------------


def _assignment_out(
    uow: UoW, assignments: Sequence[ManagerAssignment]
) -> list[schemas.AssignmentOut]:
    staff = people.users_by_ids(uow, {a.manager_id for a in assignments})
    return [
        schemas.AssignmentOut(
            manager=schemas.ManagerRef(
                id=staff[a.manager_id].public_id, name=staff[a.manager_id].name
            ),
            assigned_at=a.assigned_at,
            ended_at=a.ended_at,
        )
        for a in assignments
    ]


@router.put("/merchants/{merchant_id}/manager", response_model=schemas.AssignmentOut)
def assign_manager(
    merchant_id: str, body: schemas.ManagerIn, uow: UoW, actor: ManagerAssigner
) -> schemas.AssignmentOut:
    """Make a relationship manager responsible for the merchant (the previous one's term ends)."""
    merchant = get_merchant(uow, actor, merchant_id)
    assignment = relationships.assign_manager(uow, actor, merchant, body.manager_id)
    return _assignment_out(uow, [assignment])[0]


@router.delete("/merchants/{merchant_id}/manager", status_code=204)
def unassign_manager(
    merchant_id: str,
    uow: UoW,
    actor: ManagerAssigner,
    reason: Annotated[str, Query(min_length=1, max_length=2000)] = "unassigned",
) -> Response:
    relationships.end_assignment(uow, actor, get_merchant(uow, actor, merchant_id), reason)
    return Response(status_code=204)


@router.get("/merchants/{merchant_id}/managers", response_model=list[schemas.AssignmentOut])
def manager_history(
    merchant_id: str, uow: UoW, actor: RelationshipReader
) -> list[schemas.AssignmentOut]:
    """Every relationship manager the merchant has had, newest first."""
    merchant = get_merchant(uow, actor, merchant_id)
    return _assignment_out(uow, relationships.assignments(uow, merchant))


def _bank_today(uow: UoW, settings: Settings) -> date:
    """Today where the bank is: follow-ups fall due by the bank's calendar."""
    return uow.clock.now().astimezone(ZoneInfo(settings.default_timezone)).date()


def _interactions_out(
    uow: UoW, settings: Settings, interactions: Sequence[Interaction]
) -> list[schemas.InteractionOut]:
    today = _bank_today(uow, settings)
    staff = people.users_by_ids(uow, {i.manager_id for i in interactions})
    merchant_rows = {i.merchant_id: merchant_by_id(uow, i.merchant_id) for i in interactions}
    return [
        schemas.InteractionOut(
            id=i.public_id,
            merchant_id=merchant_rows[i.merchant_id].public_id,
            merchant_name=merchant_rows[i.merchant_id].trading_name,
            manager=schemas.ManagerRef(
                id=staff[i.manager_id].public_id, name=staff[i.manager_id].name
            ),
            kind=i.kind,
            occurred_at=i.occurred_at,
            notes=i.notes,
            next_action=i.next_action,
            next_action_on=i.next_action_on,
            follow_up_done_at=i.follow_up_done_at,
            overdue=relationships.is_overdue(i, today),
        )
        for i in interactions
    ]


@router.post(
    "/merchants/{merchant_id}/interactions", response_model=schemas.InteractionOut, status_code=201
)
def log_interaction(
    merchant_id: str,
    body: schemas.InteractionIn,
    uow: UoW,
    settings: SettingsDep,
    actor: RelationshipWriter,
) -> schemas.InteractionOut:
    """Log a visit, call, meeting or training salon, with the next action and its date."""
    interaction = relationships.log_interaction(
        uow, actor, get_merchant(uow, actor, merchant_id), body
    )
    return _interactions_out(uow, settings, [interaction])[0]


@router.get("/merchants/{merchant_id}/interactions", response_model=Page[schemas.InteractionOut])
def list_interactions(
    merchant_id: str,
    uow: UoW,
    settings: SettingsDep,
    actor: RelationshipReader,
    cursor: Cursor = None,
    limit: Limit = DEFAULT_LIMIT,
) -> Page[schemas.InteractionOut]:
    merchant = get_merchant(uow, actor, merchant_id)
    rows, next_cursor = relationships.list_interactions(uow, merchant, cursor=cursor, limit=limit)
    return Page(items=_interactions_out(uow, settings, rows), next_cursor=next_cursor)


@router.post("/interactions/{interaction_id}/follow-up-done", response_model=schemas.InteractionOut)
def complete_follow_up(
    interaction_id: str, uow: UoW, settings: SettingsDep, actor: RelationshipWriter
) -> schemas.InteractionOut:
    interaction = relationships.complete_follow_up(
        uow, actor, relationships.get_interaction(uow, actor, interaction_id)
    )
    return _interactions_out(uow, settings, [interaction])[0]


@router.get("/relationship/follow-ups", response_model=Page[schemas.InteractionOut])
def follow_ups(
    uow: UoW,
    settings: SettingsDep,
    actor: RelationshipReader,
    overdue: Annotated[bool, Query(description="Only those past their date")] = False,
    manager: Annotated[str | None, Query(description="One manager's (user id)")] = None,
    cursor: Cursor = None,
    limit: Limit = DEFAULT_LIMIT,
) -> Page[schemas.InteractionOut]:
    """Open follow-ups; a relationship manager sees their own, other staff everyone's."""
    rows, next_cursor = relationships.follow_ups(
        uow,
        actor,
        manager_id=_user_id(uow, manager, "query.manager") if manager else None,
        overdue=overdue,
        today=_bank_today(uow, settings),
        cursor=cursor,
        limit=limit,
    )
    return Page(items=_interactions_out(uow, settings, rows), next_cursor=next_cursor)


# -- mystery-shopper audit visits ------------------------------------------------------------


def _actions_out(
    uow: UoW, settings: Settings, actions: Sequence[CorrectiveAction]
) -> list[schemas.CorrectiveActionOut]:
    today = _bank_today(uow, settings)
    closers = people.users_by_ids(uow, {a.closed_by_id for a in actions if a.closed_by_id})
    merchant_rows = merchants_by_ids(uow, {a.merchant_id for a in actions})
    return [
        schemas.CorrectiveActionOut(
            id=a.public_id,
            visit_id=a.visit.public_id,
            merchant_id=merchant_rows[a.merchant_id].public_id,
            merchant_name=merchant_rows[a.merchant_id].trading_name,
            description=a.description,
            due_on=a.due_on,
            status=a.status,
            overdue=audits.is_overdue(a, today),
            opened_at=a.opened_at,
            closed_at=a.closed_at,
            closed_by=(
                schemas.ManagerRef(
                    id=closers[a.closed_by_id].public_id, name=closers[a.closed_by_id].name
                )
                if a.closed_by_id
                else None
            ),
            resolution=a.resolution,
        )
        for a in actions
    ]


def _visits_out(
    uow: UoW, actor: Principal, settings: Settings, visits: Sequence[AuditVisit]
) -> list[schemas.AuditVisitOut]:
    """A merchant is not told who its auditor was (a mystery shopper stays anonymous), nor given
    the auditor's own notes."""
    auditors = (
        {} if actor.is_org_bound else people.users_by_ids(uow, {v.auditor_id for v in visits})
    )
    merchant_rows = merchants_by_ids(uow, {v.merchant_id for v in visits})
    actions = _actions_out(
        uow, settings, [v.corrective_action for v in visits if v.corrective_action]
    )
    action_by_visit = {a.visit_id: a for a in actions}
    return [
        schemas.AuditVisitOut(
            id=v.public_id,
            merchant_id=merchant_rows[v.merchant_id].public_id,
            merchant_name=merchant_rows[v.merchant_id].trading_name,
            location_id=v.location.public_id,
            location_name=v.location.name,
            timezone=v.location.timezone,
            auditor=(
                schemas.ManagerRef(
                    id=auditors[v.auditor_id].public_id, name=auditors[v.auditor_id].name
                )
                if v.auditor_id in auditors
                else None
            ),
            mode=v.mode,
            visited_at=v.visited_at,
            staff_knew_programme=v.staff_knew_programme,
            card_accepted=v.card_accepted,
            signage_displayed=v.signage_displayed,
            outcome=v.outcome,
            items=[
                schemas.AuditItemOut(
                    description=i.description,
                    currency=i.currency,
                    public_price_minor=i.public_price_minor,
                    alliance_price_minor=i.alliance_price_minor,
                    benefit_honoured=i.benefit_honoured,
                    beats_public_price=audits.beats_public_price(i),
                )
                for i in v.items
            ],
            notes=None if actor.is_org_bound else v.notes,
            corrective_action=action_by_visit.get(v.public_id),
            recorded_at=v.created_at,
        )
        for v in visits
    ]


@router.post("/audit-visits", response_model=schemas.AuditVisitOut, status_code=201)
def record_visit(
    body: schemas.AuditVisitIn, uow: UoW, settings: SettingsDep, actor: VisitRecorder
) -> schemas.AuditVisitOut:
    """Record a mystery-shopper or announced visit once made; the outcome follows from what was
    found, and a visit that did not pass opens a corrective action."""
    visit = audits.record_visit(uow, actor, body)
    return _visits_out(uow, actor, settings, [visit])[0]


@router.get("/audit-visits", response_model=Page[schemas.AuditVisitOut])
def list_visits(
    uow: UoW,
    settings: SettingsDep,
    actor: VisitReader,
    merchant: Annotated[str | None, Query(description="One merchant's (merchant id)")] = None,
    outcome: VisitOutcome | None = None,
    mode: VisitMode | None = None,
    auditor: Annotated[str | None, Query(description="One auditor's (user id)")] = None,
    since: Annotated[AwareDatetime | None, Query(description="Visited at or after")] = None,
    until: Annotated[AwareDatetime | None, Query(description="Visited before")] = None,
    cursor: Cursor = None,
    limit: Limit = DEFAULT_LIMIT,
) -> Page[schemas.AuditVisitOut]:
    """Visits, latest recorded first; a merchant's own users see their merchant's only."""
    filters = audits.VisitFilter(
        merchant_id=get_merchant(uow, actor, merchant, field="query.merchant").id
        if merchant
        else None,
        outcome=outcome,
        mode=mode,
        auditor_id=_user_id(uow, auditor, "query.auditor") if auditor else None,
        since=since,
        until=until,
    )
    rows, next_cursor = audits.list_visits(uow, actor, filters, cursor=cursor, limit=limit)
    return Page(items=_visits_out(uow, actor, settings, rows), next_cursor=next_cursor)


@router.get("/audit-visits/{visit_id}", response_model=schemas.AuditVisitOut)
def read_visit(
    visit_id: str, uow: UoW, settings: SettingsDep, actor: VisitReader
) -> schemas.AuditVisitOut:
    return _visits_out(uow, actor, settings, [audits.get_visit(uow, actor, visit_id)])[0]


@router.get("/corrective-actions", response_model=Page[schemas.CorrectiveActionOut])
def list_actions(
    uow: UoW,
    settings: SettingsDep,
    actor: VisitReader,
    merchant: Annotated[str | None, Query(description="One merchant's (merchant id)")] = None,
    status: CorrectiveActionStatus | None = None,
    overdue: Annotated[bool, Query(description="Only open ones past their date")] = False,
    cursor: Cursor = None,
    limit: Limit = DEFAULT_LIMIT,
) -> Page[schemas.CorrectiveActionOut]:
    """Corrective actions opened by visits, oldest first; a merchant sees its own only."""
    rows, next_cursor = audits.list_actions(
        uow,
        actor,
        merchant_id=get_merchant(uow, actor, merchant, field="query.merchant").id
        if merchant
        else None,
        status=status,
        overdue=overdue,
        today=_bank_today(uow, settings),
        cursor=cursor,
        limit=limit,
    )
    return Page(items=_actions_out(uow, settings, rows), next_cursor=next_cursor)


@router.get("/corrective-actions/{action_id}", response_model=schemas.CorrectiveActionOut)
def read_action(
    action_id: str, uow: UoW, settings: SettingsDep, actor: VisitReader
) -> schemas.CorrectiveActionOut:
    return _actions_out(uow, settings, [audits.get_action(uow, actor, action_id)])[0]


@router.post("/corrective-actions/{action_id}/close", response_model=schemas.CorrectiveActionOut)
def close_action(
    action_id: str,
    body: schemas.CorrectiveActionIn,
    uow: UoW,
    settings: SettingsDep,
    actor: ActionCloser,
) -> schemas.CorrectiveActionOut:
    """The merchant's relationship manager closes the action, saying what was put right."""
    action = audits.close_action(
        uow, actor, audits.get_action(uow, actor, action_id), body.resolution
    )
    return _actions_out(uow, settings, [action])[0]
