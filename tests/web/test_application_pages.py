"""The merchant pipeline in the console: approving takes the seat; a second approval for the same
slot explains the uniqueness conflict and waitlists the application; manual checks, rejections,
unmet requirements, and the waitlist offers made to a relationship manager."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from beyondbank.alliance import admission, merchants, relationships
from beyondbank.alliance import service as alliance
from beyondbank.alliance.models import (
    ApplicationStatus,
    KybStatus,
    MerchantStatus,
    RequirementKind,
    WaitlistStatus,
)
from beyondbank.core.uow import UnitOfWork
from tests import factories as f
from tests.web.conftest import World, waitlisted
from tests.web.pages import csrf_from, field_error, sign_in, submit, text_of


def _page(world: World, application_id: str | None = None) -> str:
    return f"/console/applications/{application_id or world.application.public_id}"


def _status(uow: UnitOfWork, world: World, public_id: str) -> ApplicationStatus:
    uow.session.expire_all()
    return alliance.get_application(uow, f.principal(world.admin), public_id).status


def test_the_pipeline_lists_applications_by_status(client: TestClient, world: World) -> None:
    sign_in(client, world.rm)
    page = client.get("/console/applications")
    assert page.status_code == 200
    text = text_of(page.text)
    assert "Wharf Bakery Canary Wharf Bakeries and confectioners all met" in text
    assert 'aria-current="page">Under review' in page.text
    approved = text_of(client.get("/console/applications?status=approved").text)
    assert "Dockside Diner" in approved
    assert "Wharf Bakery" not in approved


def test_the_application_page_shows_each_requirement_with_its_reason(
    client: TestClient, world: World
) -> None:
    sign_in(client, world.auditor)
    text = text_of(client.get(_page(world)).text)
    assert (
        "A location inside the circle ✓ passed location 'Main shop' is 0 m from the centre" in text
    )
    assert "A minimum review score ✓ passed review score 4.5 meets the minimum 4.0" in text
    assert "Held by free" in text
    assert "Approve" not in text  # auditors read, they do not decide


def test_approving_through_the_console_takes_the_seat(
    client: TestClient, world: World, uow: UnitOfWork
) -> None:
    sign_in(client, world.rm)
    response = submit(
        client, _page(world), f"{_page(world)}/approve", {"reason": "Best bakery on the wharf"}
    )
    assert response.status_code == 303, response.text
    page = client.get(response.headers["location"])
    text = text_of(page.text)
    assert (
        "Approved: Wharf Bakery now holds the Bakeries and confectioners slot in Canary Wharf."
        in text
    )
    assert "Reason Best bakery on the wharf" in text
    seat = alliance.slot_holder(uow, world.circle.id, "bakery_cafe")
    assert seat is not None
    assert seat.merchant_id == world.applicant.id
    uow.session.expire_all()
    assert alliance.merchant_by_id(uow, world.applicant.id).status == MerchantStatus.ADMITTED
    # Decided: no more decision forms.
    assert "Approve and take the seat" not in page.text


def test_a_second_approval_for_the_slot_explains_the_conflict_and_waitlists(
    client: TestClient, world: World, uow: UnitOfWork
) -> None:
    rival = f.make_merchant(
        uow, sub_industry="bakery_cafe", status=MerchantStatus.UNDER_REVIEW, trading_name="Crumbs"
    )
    second = admission.submit(uow, f.principal(world.admin), rival, world.circle)
    sign_in(client, world.rm)
    first = submit(client, _page(world), f"{_page(world)}/approve", {"reason": "First in"})
    assert first.status_code == 303
    path = _page(world, second.public_id)
    response = submit(client, path, f"{path}/approve", {"reason": "Also great"})
    assert response.status_code == 409
    conflict = re.search(
        r'<div class="alert conflict" role="alert" id="conflict">(.*?)</div>', response.text, re.S
    )
    assert conflict is not None
    words = text_of(conflict.group(1))
    assert "The slot is taken: this application joined the waitlist" in words
    assert "one merchant per sub-industry" in words
    assert "The Bakeries and confectioners slot in Canary Wharf is held by Wharf Bakery." in words
    assert "Crumbs is now number 1 on the slot's waitlist." in words
    # The page itself shows the application as waitlisted, and its place in line.
    text = text_of(response.text)
    assert "Crumbs → Canary Wharf waitlisted" in text
    assert "On the waitlist waiting Number 1 in line for the slot." in text
    assert _status(uow, world, second.public_id) == ApplicationStatus.WAITLISTED
    holder = alliance.slot_holder(uow, world.circle.id, "bakery_cafe")
    assert holder is not None
    assert holder.merchant_id == world.applicant.id
    # A waiting application cannot jump the queue: no approve form until it is offered the slot.
    assert "Approve and take the seat" not in client.get(path).text


def test_a_decision_needs_a_reason_and_nothing_is_written_without_one(
    client: TestClient, world: World, uow: UnitOfWork
) -> None:
    sign_in(client, world.rm)
    response = submit(client, _page(world), f"{_page(world)}/approve", {"reason": "  "})
    assert response.status_code == 422
    assert field_error(response.text, "approve-reason") == "This is required."
    assert 'aria-describedby="approve-reason-error" aria-invalid="true"' in response.text
    assert alliance.slot_holder(uow, world.circle.id, "bakery_cafe") is None
    assert _status(uow, world, world.application.public_id) == ApplicationStatus.UNDER_REVIEW


def test_unmet_requirements_refuse_the_approval_in_words(
    client: TestClient, world: World, uow: UnitOfWork
) -> None:
    f.make_requirement(uow, world.circle, RequirementKind.MANUAL_CHECK, label="Premises visited")
    sign_in(client, world.rm)
    run = submit(client, _page(world), f"{_page(world)}/checks/run", {})
    assert run.status_code == 303
    page = client.get(_page(world)).text
    assert "The admission requirements were checked again." in page
    assert "awaits confirmation" in page
    response = submit(client, _page(world), f"{_page(world)}/approve", {"reason": "Go"})
    assert response.status_code == 409
    text = text_of(response.text)
    assert (
        "Not every admission requirement is met: Premises visited: awaits a relationship "
        "manager's confirmation." in text
    )
    assert 'value="Go"' not in response.text  # a textarea keeps it as its content
    assert ">Go</textarea>" in response.text
    assert alliance.slot_holder(uow, world.circle.id, "bakery_cafe") is None


def test_confirming_a_manual_check_then_approving(
    client: TestClient, world: World, uow: UnitOfWork
) -> None:
    f.make_requirement(uow, world.circle, RequirementKind.MANUAL_CHECK, label="Premises visited")
    application = admission.submit(
        uow,
        f.principal(world.admin),
        f.make_merchant(uow, sub_industry="florist", trading_name="Petals"),
        world.circle,
    )
    path = _page(world, application.public_id)
    check = next(c for c in application.checks if c.kind == RequirementKind.MANUAL_CHECK)
    sign_in(client, world.rm)
    action = f"{path}/checks/{check.public_id}/confirm"
    missing = submit(client, path, action, {"note": "Looked fine"})
    assert missing.status_code == 422
    assert field_error(missing.text, f"confirm-{check.public_id}-passed") == "This is required."
    assert 'value="Looked fine"' in missing.text
    confirmed = submit(client, path, action, {"passed": "true", "note": "Clean kitchen"})
    assert confirmed.status_code == 303
    text = text_of(client.get(path).text)
    assert "Check confirmed." in text
    assert "confirmed by raj@bank.test: Clean kitchen" in text
    approved = submit(client, path, f"{path}/approve", {"reason": "All good"})
    assert approved.status_code == 303


def test_rejecting_with_a_reason(client: TestClient, world: World, uow: UnitOfWork) -> None:
    sign_in(client, world.admin)
    response = submit(client, _page(world), f"{_page(world)}/reject", {"reason": "Too far"})
    assert response.status_code == 303
    text = text_of(client.get(_page(world)).text)
    assert "Application rejected" in text
    assert "Reason Too far" in text


def test_deciding_twice_is_explained_not_dumped(client: TestClient, world: World) -> None:
    sign_in(client, world.rm)
    page = client.get(_page(world))
    token = csrf_from(page.text)
    assert (
        client.post(
            f"{_page(world)}/reject",
            data={"reason": "No", "csrf_token": token},
            follow_redirects=False,
        ).status_code
        == 303
    )
    again = client.post(f"{_page(world)}/approve", data={"reason": "Yes", "csrf_token": token})
    assert again.status_code == 409
    assert "text/html" in again.headers["content-type"]
    assert "is rejected: it is decided." in again.text


def test_waitlists_per_slot(client: TestClient, world: World, uow: UnitOfWork) -> None:
    waitlisted(uow, world, f.make_merchant(uow, trading_name="Second Diner"))
    waitlisted(uow, world, f.make_merchant(uow, trading_name="Third Diner"))
    sign_in(client, world.auditor)
    text = text_of(client.get("/console/applications/waitlists").text)
    assert "Restaurants · Canary Wharf Held by Dockside Diner since 22 Nov 2026." in text
    assert text.index("Second Diner") < text.index("Third Diner")


def test_a_freed_slot_is_offered_to_the_manager_who_accepts_it(
    client: TestClient, world: World, uow: UnitOfWork
) -> None:
    waiting = f.make_merchant(uow, trading_name="Second Diner")
    application = waitlisted(uow, world, waiting)
    relationships.assign_manager(uow, f.principal(world.admin), waiting, world.rm.public_id)
    merchants.change_status(
        uow, f.principal(world.admin), world.holder, MerchantStatus.EXITED, "Closed the shop"
    )
    sign_in(client, world.rm)
    overview = text_of(client.get("/console").text)
    assert "Waitlist offers for me Second Diner: the Restaurants slot in Canary Wharf is free" in (
        overview
    )
    offers = client.get("/console/applications/offers")
    assert "Second Diner" in offers.text
    action = f"/console/applications/offers/{application.public_id}/accept"
    blank = client.post(action, data={"reason": "", "csrf_token": csrf_from(offers.text)})
    assert blank.status_code == 422
    assert field_error(blank.text, f"accept-{application.public_id}-reason") == "This is required."
    accepted = submit(client, "/console/applications/offers", action, {"reason": "Next in line"})
    assert accepted.status_code == 303
    text = text_of(client.get("/console/applications/offers").text)
    assert "Second Diner now holds its seat in Canary Wharf." in text
    assert "No offer is waiting for you." in text
    holder = alliance.slot_holder(uow, world.circle.id, "restaurant")
    assert holder is not None
    assert holder.merchant_id == waiting.id
    entry = admission.waitlist_entry(uow, application)
    assert entry is not None
    assert entry.status == WaitlistStatus.ADMITTED


def test_analysts_do_not_see_the_pipeline(client: TestClient, world: World) -> None:
    sign_in(client, world.analyst)
    assert client.get("/console/applications").status_code == 403
    assert client.get(_page(world)).status_code == 403


def test_the_approve_form_says_which_requirements_are_not_met_yet(
    client: TestClient, world: World, uow: UnitOfWork
) -> None:
    unverified = f.make_merchant(
        uow, sub_industry="florist", trading_name="Petals", kyb_status=KybStatus.PENDING
    )
    f.make_requirement(uow, world.circle, RequirementKind.KYB_PASSED)
    application = admission.submit(uow, f.principal(world.admin), unverified, world.circle)
    sign_in(client, world.rm)
    text = text_of(client.get(_page(world, application.public_id)).text)
    assert "Not met yet: Know-your-business checks passed. Approval is refused until they are" in (
        text
    )
    assert "Not met yet" not in text_of(client.get(_page(world)).text)
