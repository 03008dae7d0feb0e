"""Admission: each requirement's check and its reason, decisions, seats, and waitlists in order."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from beyondbank.alliance import admission, merchants, relationships
from beyondbank.alliance.models import (
    Application,
    ApplicationStatus,
    Circle,
    CircleKind,
    CircleStatus,
    KybStatus,
    Merchant,
    MerchantStatus,
    RequirementKind,
    Seat,
    WaitlistEntry,
    WaitlistStatus,
)
from beyondbank.core.authz import Principal, Role
from beyondbank.core.clock import FixedClock
from beyondbank.core.errors import Conflict, Forbidden, InvalidTransition, SlotTaken
from beyondbank.core.models import AuditEvent
from beyondbank.core.settings import Settings
from beyondbank.core.uow import UnitOfWork
from beyondbank.identity.models import User
from tests import factories as f

API = "/api/v1"
K = RequirementKind
FAR = (51.5554, -0.0235)  # about 5.6 km north of the circle's centre


def _checked(uow: UnitOfWork, actor: Principal, circle: Circle, merchant: Merchant) -> Application:
    return admission.submit(uow, actor, merchant, circle)


# -- each requirement, passing and failing, with its reason ----------------------------------

CASES: list[tuple[str, RequirementKind, dict[str, Any], dict[str, Any], bool | None, str]] = [
    ("inside", K.LOCATION_IN_CIRCLE, {}, {}, True, "from the centre, inside the circle's 3,000 m"),
    (
        "outside",
        K.LOCATION_IN_CIRCLE,
        {},
        {"at": FAR},
        False,
        "no location is inside the circle's 3,000 m",
    ),
    (
        "score ok",
        K.MIN_REVIEW_SCORE,
        {"min": 4.0},
        {"review_score": Decimal("4.50")},
        True,
        "review score 4.5 meets the minimum 4.0",
    ),
    (
        "score low",
        K.MIN_REVIEW_SCORE,
        {"min": 4.0},
        {"review_score": Decimal("3.90")},
        False,
        "review score 3.9 is below the circle's minimum 4.0",
    ),
    (
        "no score",
        K.MIN_REVIEW_SCORE,
        {"min": 4.0},
        {"review_score": None},
        False,
        "no review score on file",
    ),
    (
        "enough reviews",
        K.MIN_REVIEW_COUNT,
        {"min": 20},
        {"review_count": 20},
        True,
        "20 reviews, at least the 20 required",
    ),
    (
        "few reviews",
        K.MIN_REVIEW_COUNT,
        {"min": 20},
        {"review_count": 12},
        False,
        "12 reviews, fewer than the 20 the circle requires",
    ),
    ("licence", K.LICENCE_VERIFIED, {}, {}, True, "verified on 2026-11-22"),
    (
        "licence unverified",
        K.LICENCE_VERIFIED,
        {},
        {"licence_verified_at": None},
        False,
        "has not been verified",
    ),
    (
        "no licence",
        K.LICENCE_VERIFIED,
        {},
        {"licence_number": None, "licence_verified_at": None},
        False,
        "no business licence on file",
    ),
    ("kyb", K.KYB_PASSED, {}, {}, True, "KYB passed on 2026-11-22"),
    (
        "kyb pending",
        K.KYB_PASSED,
        {},
        {"kyb_status": KybStatus.PENDING, "kyb_checked_at": None},
        False,
        "KYB has not been completed",
    ),
    (
        "kyb failed",
        K.KYB_PASSED,
        {},
        {"kyb_status": KybStatus.FAILED},
        False,
        "KYB failed on 2026-11-22",
    ),
    ("slot free", K.SLOT_FREE, {}, {}, True, "the restaurant slot is free"),
    ("account", K.SETTLEMENT_ACCOUNT, {}, {}, True, "settlement IBAN ending 6819 is valid"),
    (
        "no account",
        K.SETTLEMENT_ACCOUNT,
        {},
        {"settlement_iban": None},
        False,
        "no settlement account on file",
    ),
    (
        "bad account",
        K.SETTLEMENT_ACCOUNT,
        {},
        {"settlement_iban": "GB00NWBK60161331926819"},
        False,
        "not valid",
    ),
    (
        "years ok",
        K.MIN_YEARS_TRADING,
        {"years": 2},
        {"founded_on": date(2015, 4, 1)},
        True,
        "trading since 2015-04-01 (11.6 years)",
    ),
    (
        "years few",
        K.MIN_YEARS_TRADING,
        {"years": 2},
        {"founded_on": date(2026, 1, 5)},
        False,
        "less than the 2.0 years required",
    ),
    ("years unknown", K.MIN_YEARS_TRADING, {"years": 2}, {}, False, "no founding date on file"),
    (
        "domain allowed",
        K.SUB_INDUSTRY_ALLOWED,
        {"domains": ["dining"]},
        {},
        True,
        "restaurant (dining) is allowed",
    ),
    (
        "code not allowed",
        K.SUB_INDUSTRY_ALLOWED,
        {"codes": ["cinema"]},
        {},
        False,
        "restaurant (dining) is not among the circle's allowed",
    ),
    ("manual", K.MANUAL_CHECK, {}, {}, None, "awaits a relationship manager's confirmation"),
]


@pytest.mark.parametrize(
    ("kind", "params", "merchant", "passed", "reason"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_requirement_check_result_and_reason(
    uow: UnitOfWork,
    rm: Principal,
    kind: RequirementKind,
    params: dict[str, Any],
    merchant: dict[str, Any],
    passed: bool | None,
    reason: str,
) -> None:
    circle = f.make_circle(uow)
    f.make_requirement(uow, circle, kind, params, label="Visited" if kind == K.MANUAL_CHECK else "")
    applicant = f.make_merchant(uow, status=MerchantStatus.UNDER_REVIEW, **merchant)
    application = _checked(uow, rm, circle, applicant)
    [check] = application.checks
    assert check.kind == kind
    assert check.passed is passed
    assert reason in check.reason
    assert application.status == ApplicationStatus.UNDER_REVIEW
    assert application.checked_at == uow.clock.now()


def test_slot_check_names_the_holder(uow: UnitOfWork, rm: Principal) -> None:
    circle = f.make_circle(uow)
    f.make_requirement(uow, circle, K.SLOT_FREE)
    f.make_seat(uow, circle, f.make_merchant(uow, trading_name="Dim Sum House"))
    application = _checked(
        uow, rm, circle, f.make_merchant(uow, status=MerchantStatus.UNDER_REVIEW)
    )
    [check] = application.checks
    assert check.passed is False
    assert check.reason == "the restaurant slot is held by Dim Sum House since 2026-11-22"


def test_location_check_on_a_segment_circle_fails(uow: UnitOfWork, rm: Principal) -> None:
    circle = f.make_circle(
        uow, kind=CircleKind.SEGMENT, segment_rule={"attr": "car_owner", "op": "eq", "value": True}
    )
    f.make_requirement(uow, circle, K.LOCATION_IN_CIRCLE)
    [check] = _checked(
        uow, rm, circle, f.make_merchant(uow, status=MerchantStatus.UNDER_REVIEW)
    ).checks
    assert check.passed is False
    assert check.reason == "the circle has no area to be inside"


# -- submitting ------------------------------------------------------------------------------


def test_first_application_starts_the_merchants_review(uow: UnitOfWork, rm: Principal) -> None:
    merchant = f.make_merchant(uow, status=MerchantStatus.APPLIED)
    application = _checked(uow, rm, f.make_circle(uow), merchant)
    assert merchant.status == MerchantStatus.UNDER_REVIEW
    assert application.sub_industry == "restaurant"
    actions = uow.session.scalars(
        select(AuditEvent.action)
        .where(AuditEvent.object_id == application.public_id)
        .order_by(AuditEvent.id)
    ).all()
    assert actions == ["application.submitted", "application.checked", "application.under_review"]


def test_one_open_application_per_merchant_and_circle(uow: UnitOfWork, rm: Principal) -> None:
    circle, merchant = f.make_circle(uow), f.make_merchant(uow, status=MerchantStatus.UNDER_REVIEW)
    _checked(uow, rm, circle, merchant)
    with pytest.raises(Conflict, match="already has an open application"):
        _checked(uow, rm, circle, merchant)


@pytest.mark.parametrize(
    "status", [MerchantStatus.REJECTED, MerchantStatus.SUSPENDED, MerchantStatus.EXITED]
)
def test_merchants_out_of_the_running_cannot_apply(
    uow: UnitOfWork, rm: Principal, status: MerchantStatus
) -> None:
    with pytest.raises(InvalidTransition, match=f"is {status.value}"):
        _checked(uow, rm, f.make_circle(uow), f.make_merchant(uow, status=status))


def test_no_application_to_an_archived_circle_or_for_a_seat_already_held(
    uow: UnitOfWork, rm: Principal
) -> None:
    circle, merchant = f.make_circle(uow), f.make_merchant(uow)
    f.make_seat(uow, circle, merchant)
    with pytest.raises(Conflict, match="already holds its seat"):
        _checked(uow, rm, circle, merchant)
    archived = f.make_circle(uow)
    archived.status = CircleStatus.ARCHIVED
    with pytest.raises(InvalidTransition, match="archived"):
        _checked(uow, rm, archived, merchant)


# -- deciding ----------------------------------------------------------------------------------


def test_approval_takes_the_seat_and_admits_the_merchant(uow: UnitOfWork, rm: Principal) -> None:
    circle = f.make_circle(uow)
    for kind in (K.LOCATION_IN_CIRCLE, K.KYB_PASSED, K.SLOT_FREE):
        f.make_requirement(uow, circle, kind)
    merchant = f.make_merchant(uow, status=MerchantStatus.UNDER_REVIEW)
    application = _checked(uow, rm, circle, merchant)
    admission.approve(uow, rm, application, "strong local favourite")
    assert application.status == ApplicationStatus.APPROVED
    assert application.decision_reason == "strong local favourite"
    assert application.decided_by_id == rm.id
    assert merchant.status == MerchantStatus.ADMITTED
    seat = uow.session.scalars(select(Seat).where(Seat.application_id == application.id)).one()
    assert (seat.circle_id, seat.sub_industry, seat.released_at) == (circle.id, "restaurant", None)
    assert (
        uow.session.scalars(select(AuditEvent).where(AuditEvent.action == "seat.taken"))
        .one()
        .object_id
        == circle.public_id
    )


def test_approval_needs_every_requirement_met(uow: UnitOfWork, rm: Principal) -> None:
    circle = f.make_circle(uow)
    f.make_requirement(uow, circle, K.MIN_REVIEW_SCORE, {"min": 4.0})
    f.make_requirement(uow, circle, K.KYB_PASSED)
    merchant = f.make_merchant(
        uow, status=MerchantStatus.UNDER_REVIEW, review_score=Decimal("3.90")
    )
    application = _checked(uow, rm, circle, merchant)
    with pytest.raises(Conflict) as refused:
        admission.approve(uow, rm, application, "looks fine")
    assert "review score 3.9 is below the circle's minimum 4.0" in refused.value.detail
    assert [c["kind"] for c in refused.value.extra["unmet_checks"]] == ["min_review_score"]
    assert application.status == ApplicationStatus.UNDER_REVIEW
    assert uow.session.scalars(select(Seat)).all() == []

    merchant.review_score = Decimal("4.20")  # new reviews came in; the approval re-checks
    admission.approve(uow, rm, application, "reviews improved")
    assert application.status == ApplicationStatus.APPROVED


def test_manual_checks_are_confirmed_by_a_manager_before_approval(
    uow: UnitOfWork, rm: Principal
) -> None:
    circle = f.make_circle(uow)
    f.make_requirement(
        uow, circle, K.MANUAL_CHECK, label="Premises visited and hygiene rating seen"
    )
    f.make_requirement(uow, circle, K.KYB_PASSED)
    application = _checked(
        uow, rm, circle, f.make_merchant(uow, status=MerchantStatus.UNDER_REVIEW)
    )
    manual, kyb = application.checks
    with pytest.raises(Conflict, match="awaits a relationship manager"):
        admission.approve(uow, rm, application, "go")
    with pytest.raises(Conflict, match="checked automatically"):
        admission.confirm_check(uow, rm, application, kyb.public_id, passed=True, note="fine")
    admission.confirm_check(
        uow, rm, application, manual.public_id, passed=True, note="5-star rating on the door"
    )
    assert manual.passed is True
    assert manual.confirmed_by_id == rm.id
    assert manual.reason == f"confirmed by {rm.label}: 5-star rating on the door"
    admission.recheck(uow, rm, application)  # a confirmation survives re-checking
    assert manual.passed is True
    assert manual.public_id == application.checks[0].public_id
    admission.approve(uow, rm, application, "visited")
    assert application.status == ApplicationStatus.APPROVED


def test_rejection_and_withdrawal_close_the_application(uow: UnitOfWork, rm: Principal) -> None:
    circle = f.make_circle(uow)
    first = _checked(uow, rm, circle, f.make_merchant(uow, status=MerchantStatus.UNDER_REVIEW))
    admission.reject(uow, rm, first, "too close to an existing partner")
    assert (first.status, first.decision_reason) == (
        ApplicationStatus.REJECTED,
        "too close to an existing partner",
    )
    with pytest.raises(InvalidTransition, match="is rejected"):
        admission.approve(uow, rm, first, "changed my mind")
    second = _checked(uow, rm, circle, f.make_merchant(uow, status=MerchantStatus.UNDER_REVIEW))
    admission.withdraw(uow, rm, second, "merchant is relocating")
    assert second.status == ApplicationStatus.WITHDRAWN


def test_a_merchant_cannot_be_admitted_while_suspended(uow: UnitOfWork, rm: Principal) -> None:
    merchant = f.make_merchant(uow, status=MerchantStatus.ACTIVE)
    application = _checked(uow, rm, f.make_circle(uow), merchant)
    merchants.change_status(uow, rm, merchant, MerchantStatus.SUSPENDED, "complaint")
    with pytest.raises(InvalidTransition, match="is suspended"):
        admission.approve(uow, rm, application, "go")


# -- the uniqueness principle and the waitlist ------------------------------------------------


def _waiting_applicants(
    uow: UnitOfWork, rm: Principal, clock: FixedClock, circle: Circle, count: int
) -> list[Application]:
    applications = []
    for _ in range(count):
        clock.advance(timedelta(minutes=1))
        application = _checked(
            uow, rm, circle, f.make_merchant(uow, status=MerchantStatus.UNDER_REVIEW)
        )
        with pytest.raises(SlotTaken):
            admission.approve(uow, rm, application, "good candidate")
        applications.append(application)
    return applications


def test_a_taken_slot_waitlists_the_application_and_names_the_holder(
    uow: UnitOfWork, rm: Principal
) -> None:
    circle = f.make_circle(uow)
    f.make_seat(uow, circle, f.make_merchant(uow, trading_name="Dim Sum House"))
    application = _checked(
        uow, rm, circle, f.make_merchant(uow, status=MerchantStatus.UNDER_REVIEW)
    )
    with pytest.raises(SlotTaken) as taken:
        admission.approve(uow, rm, application, "great food")
    assert "held by Dim Sum House" in taken.value.detail
    assert taken.value.extra["holder"]["name"] == "Dim Sum House"
    assert taken.value.extra["waitlist_position"] == 1
    assert application.status == ApplicationStatus.WAITLISTED
    entry = admission.waitlist_entry(uow, application)
    assert entry is not None
    assert entry.status == WaitlistStatus.WAITING
    assert len(uow.session.scalars(select(Seat).where(Seat.released_at.is_(None))).all()) == 1
    with pytest.raises(InvalidTransition, match="its turn has not come"):
        admission.approve(uow, rm, application, "again")


def test_exit_offers_the_slot_in_order_and_decline_offers_the_next(
    uow: UnitOfWork, rm: Principal, admin: Principal, clock: FixedClock
) -> None:
    circle = f.make_circle(uow)
    incumbent = f.make_merchant(uow, status=MerchantStatus.ACTIVE)
    f.make_seat(uow, circle, incumbent)
    first, second, third = _waiting_applicants(uow, rm, clock, circle, 3)
    other_rm = f.principal(f.make_user(uow, Role.RELATIONSHIP_MANAGER))
    relationships.assign_manager(uow, admin, first.merchant, other_rm.public_id)

    merchants.change_status(uow, rm, incumbent, MerchantStatus.EXITED, "closing the restaurant")
    seat = uow.session.scalars(select(Seat).where(Seat.merchant_id == incumbent.id)).one()
    assert seat.released_at is not None
    assert "closing the restaurant" in (seat.release_reason or "")
    offered = admission.offers_for(uow, other_rm)
    assert [e.application_id for e in offered] == [first.id]  # offered to its own manager
    assert admission.offers_for(uow, rm) == []

    with pytest.raises(Forbidden):
        admission.approve(uow, rm, first, "not my offer to take")
    admission.reject(uow, other_rm, first, "merchant no longer interested")
    assert first.status == ApplicationStatus.REJECTED
    assert admission.waitlist_entry(uow, first).status == WaitlistStatus.DECLINED  # type: ignore[union-attr]
    # The second has no manager: the offer goes to a bank admin.
    [offer] = admission.offers_for(uow, admin)
    assert offer.application_id == second.id
    admission.approve(uow, admin, second, "next in line")
    assert second.status == ApplicationStatus.APPROVED
    assert admission.waitlist_entry(uow, second).status == WaitlistStatus.ADMITTED  # type: ignore[union-attr]
    third_entry = admission.waitlist_entry(uow, third)
    assert third_entry is not None
    assert third_entry.status == WaitlistStatus.WAITING
    assert admission.positions(uow, [third_entry]) == {third_entry.id: 1}


def test_a_freed_slot_goes_to_the_waitlist_before_a_new_applicant(
    uow: UnitOfWork, rm: Principal, admin: Principal, clock: FixedClock
) -> None:
    circle = f.make_circle(uow)
    incumbent = f.make_merchant(uow, status=MerchantStatus.ACTIVE)
    f.make_seat(uow, circle, incumbent)
    [waiting] = _waiting_applicants(uow, rm, clock, circle, 1)
    newcomer = _checked(uow, rm, circle, f.make_merchant(uow, status=MerchantStatus.UNDER_REVIEW))
    merchants.change_status(uow, rm, incumbent, MerchantStatus.EXITED, "retiring")
    with pytest.raises(SlotTaken, match="being offered to"):
        admission.approve(uow, rm, newcomer, "free now")
    assert newcomer.status == ApplicationStatus.WAITLISTED
    admission.withdraw(uow, admin, waiting, "found another bank")
    [offer] = admission.offers_for(uow, admin)
    assert offer.application_id == newcomer.id


def test_exit_withdraws_the_leavers_own_applications_and_passes_its_offer_on(
    uow: UnitOfWork, rm: Principal, admin: Principal, clock: FixedClock
) -> None:
    circle = f.make_circle(uow)
    incumbent = f.make_merchant(uow, status=MerchantStatus.ACTIVE)
    f.make_seat(uow, circle, incumbent)
    first, second = _waiting_applicants(uow, rm, clock, circle, 2)
    merchants.change_status(uow, rm, incumbent, MerchantStatus.EXITED, "sold the business")
    assert [e.application_id for e in admission.offers_for(uow, admin)] == [first.id]
    first.merchant.status = MerchantStatus.ADMITTED
    merchants.change_status(
        uow, rm, first.merchant, MerchantStatus.EXITED, "withdrew from the alliance"
    )
    assert first.status == ApplicationStatus.WITHDRAWN
    assert [e.application_id for e in admission.offers_for(uow, admin)] == [second.id]


# -- over the API ------------------------------------------------------------------------------


def test_admission_over_the_api(
    client: TestClient, uow: UnitOfWork, settings: Settings, rm_user: User, clock: FixedClock
) -> None:
    circle = f.make_circle(uow)
    f.make_requirement(uow, circle, K.MIN_REVIEW_SCORE, {"min": 4.0})
    holder = f.make_merchant(uow, sub_industry="restaurant", trading_name="Dim Sum House")
    f.make_seat(uow, circle, holder)
    applicant = f.make_merchant(uow, status=MerchantStatus.APPLIED)
    merchant_admin = f.make_user(uow, Role.MERCHANT_ADMIN, applicant)
    submitted = client.post(
        f"{API}/applications",
        json={"merchant_id": applicant.public_id, "circle_id": circle.public_id},
        headers=f.auth(settings, uow, merchant_admin),
    )
    assert submitted.status_code == 201, submitted.text
    application = submitted.json()
    assert application["status"] == "under_review"
    assert application["checks"][0]["reason"] == "review score 4.5 meets the minimum 4.0"

    headers = f.auth(settings, uow, rm_user)
    approve = client.post(
        f"{API}/applications/{application['id']}/approve", json={"reason": "great"}, headers=headers
    )
    assert approve.status_code == 409
    problem = approve.json()
    assert problem["type"] == "/problems/slot-taken"
    assert problem["holder"] == {"merchant_id": holder.public_id, "name": "Dim Sum House"}
    after = client.get(f"{API}/applications/{application['id']}", headers=headers).json()
    assert after["status"] == "waitlisted"
    assert after["waitlist"]["position"] == 1
    assert after["waitlist"]["status"] == "waiting"
    waitlist = client.get(
        f"{API}/circles/{circle.public_id}/waitlist?sub_industry=restaurant", headers=headers
    )
    assert [e["application_id"] for e in waitlist.json()] == [application["id"]]

    relationships.assign_manager(
        uow, f.principal(f.make_user(uow, Role.BANK_ADMIN)), applicant, rm_user.public_id
    )
    exit_ = client.post(
        f"{API}/merchants/{holder.public_id}/transitions",
        json={"to": "exited", "reason": "closed"},
        headers=headers,
    )
    assert exit_.status_code == 200, exit_.text
    offers = client.get(f"{API}/waitlist/offers", headers=headers).json()
    assert [(o["application_id"], o["offered_to"]) for o in offers] == [
        (application["id"], rm_user.public_id)
    ]
    accepted = client.post(
        f"{API}/waitlist/offers/{application['id']}/accept",
        json={"reason": "next in line"},
        headers=headers,
    )
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["status"] == "approved"
    assert accepted.json()["decided_by"] == rm_user.public_id
    detail = client.get(f"{API}/circles/{circle.public_id}", headers=headers).json()
    assert [(s["sub_industry"], s["merchant_id"]) for s in detail["seats"]] == [
        ("restaurant", applicant.public_id)
    ]


def test_applications_of_another_merchant_do_not_exist(
    client: TestClient, uow: UnitOfWork, settings: Settings, rm: Principal
) -> None:
    circle = f.make_circle(uow)
    own = f.make_merchant(uow, status=MerchantStatus.UNDER_REVIEW)
    other = f.make_merchant(uow, status=MerchantStatus.UNDER_REVIEW, sub_industry="cinema")
    mine = _checked(uow, rm, circle, own)
    theirs = _checked(uow, rm, circle, other)
    headers = f.auth(settings, uow, f.make_user(uow, Role.MERCHANT_ADMIN, own))
    assert client.get(f"{API}/applications/{theirs.public_id}", headers=headers).status_code == 404
    assert [
        a["id"] for a in client.get(f"{API}/applications", headers=headers).json()["items"]
    ] == [mine.public_id]
    for_other = client.post(
        f"{API}/applications",
        json={"merchant_id": other.public_id, "circle_id": circle.public_id},
        headers=headers,
    )
    assert for_other.status_code == 404
    withdraw_theirs = client.post(
        f"{API}/applications/{theirs.public_id}/withdraw", json={"reason": "x"}, headers=headers
    )
    assert withdraw_theirs.status_code == 404
    decide_own = client.post(
        f"{API}/applications/{mine.public_id}/approve", json={"reason": "x"}, headers=headers
    )
    assert decide_own.status_code == 403
    waitlist = client.get(f"{API}/circles/{circle.public_id}/waitlist", headers=headers)
    assert waitlist.status_code == 200


def test_unknown_circle_in_an_application_names_the_field(
    client: TestClient, uow: UnitOfWork, settings: Settings, rm_user: User
) -> None:
    merchant = f.make_merchant(uow)
    response = client.post(
        f"{API}/applications",
        json={"merchant_id": merchant.public_id, "circle_id": "cir_nope"},
        headers=f.auth(settings, uow, rm_user),
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "body.circle_id"
    assert uow.session.scalars(select(Application)).all() == []


def test_offers_list_only_open_offers_in_order(
    uow: UnitOfWork, admin: Principal, rm: Principal, clock: FixedClock
) -> None:
    circles = [f.make_circle(uow) for _ in range(2)]
    for circle in circles:
        f.make_seat(uow, circle, f.make_merchant(uow, status=MerchantStatus.ACTIVE))
        _waiting_applicants(uow, rm, clock, circle, 1)
    for circle in reversed(circles):
        clock.advance(timedelta(minutes=5))
        holder = uow.session.scalars(select(Seat).where(Seat.circle_id == circle.id)).one().merchant
        merchants.change_status(uow, rm, holder, MerchantStatus.EXITED, "left")
    offers = admission.offers_for(uow, admin)
    assert [o.circle_id for o in offers] == [circles[1].id, circles[0].id]
    assert all(
        o.offered_at is not None and o.offered_at > datetime(2026, 11, 22, tzinfo=UTC)
        for o in offers
    )
    open_offers = uow.session.scalars(
        select(WaitlistEntry).where(WaitlistEntry.status == WaitlistStatus.OFFERED)
    ).all()
    assert {o.id for o in open_offers} == {o.id for o in offers}
