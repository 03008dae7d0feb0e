"""Merchant pages: filters, a merchant's whole file (what each role may see of it), the lifecycle
form with its reason, verification, and assigning the relationship manager."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from beyondbank.alliance import relationships
from beyondbank.alliance import service as alliance
from beyondbank.alliance.models import KybStatus, MerchantStatus
from beyondbank.core.authz import Role
from beyondbank.core.uow import UnitOfWork
from tests import factories as f
from tests.web.conftest import World
from tests.web.pages import csrf_from, field_error, sign_in, submit, text_of


def _names(html: str) -> list[str]:
    return re.findall(r'<th scope="row"><a href="/console/merchants/[^"]+">([^<]+)</a>', html)


def test_merchant_list_filters(client: TestClient, world: World, uow: UnitOfWork) -> None:
    f.make_merchant(uow, sub_industry="supermarket", trading_name="Harbour Grocer")
    sign_in(client, world.rm)
    assert _names(client.get("/console/merchants").text) == [
        "Dockside Diner",
        "Wharf Bakery",
        "Harbour Grocer",
    ]
    assert _names(client.get("/console/merchants?status=under_review").text) == ["Wharf Bakery"]
    assert _names(client.get("/console/merchants?domain=shopping").text) == ["Harbour Grocer"]
    assert _names(client.get("/console/merchants?sub_industry=bakery_cafe").text) == [
        "Wharf Bakery"
    ]
    assert _names(client.get(f"/console/merchants?circle={world.circle.public_id}").text) == [
        "Dockside Diner"
    ]
    assert _names(client.get("/console/merchants?q=harb").text) == ["Harbour Grocer"]
    assert _names(client.get("/console/merchants?mine=1").text) == ["Dockside Diner"]
    # Blank filters are "any"; the chosen ones stay selected.
    page = client.get("/console/merchants?status=&domain=shopping&q=").text
    assert '<option value="shopping" selected>' in page
    # A tampered filter is named, not ignored.
    bad = client.get("/console/merchants?status=sleeping")
    assert bad.status_code == 422
    assert "not one of" in bad.text


def test_a_merchants_file_for_a_relationship_manager(
    client: TestClient, world: World, uow: UnitOfWork
) -> None:
    sign_in(client, world.rm)
    page = client.get(f"/console/merchants/{world.holder.public_id}")
    assert page.status_code == 200
    text = text_of(page.text)
    assert "Dockside Diner Ltd" in text
    # Locations and the terminals card transactions will carry.
    terminal = world.holder.locations[0].terminals[0]
    assert f"{terminal.acquirer_merchant_id} / {terminal.terminal_id}" in text
    assert "GB29NWBK60161331926819" in text  # the settlement account, for those who may read it
    assert "Canary Wharf: holds the Restaurants slot" in text
    assert "20% off dinner" in text
    assert "awaiting approval" not in text.split("Benefits")[0]
    assert "Relationship manager: Raj Manager" in text
    assert "Walked the floor with the owner." in text
    assert "Send the training salon dates" in text
    assert "Log an interaction" in text
    assert "Its audit trail" not in text  # relationship managers do not read the audit trail


def test_analysts_see_no_contacts_money_or_relationship_notes(
    client: TestClient, world: World
) -> None:
    sign_in(client, world.analyst)
    text = text_of(client.get(f"/console/merchants/{world.holder.public_id}").text)
    assert "Dockside Diner Ltd" in text
    assert "GB29NWBK60161331926819" not in text
    assert "Walked the floor" not in text
    assert "Change the status" not in text


def test_applications_on_the_file_show_each_checks_result_and_reason(
    client: TestClient, world: World
) -> None:
    sign_in(client, world.auditor)
    text = text_of(client.get(f"/console/merchants/{world.applicant.public_id}").text)
    assert "To Canary Wharf under review" in text
    assert "passed A minimum review score: review score 4.5 meets the minimum 4.0" in text
    assert "the bakery_cafe slot is free" in text
    assert "Its audit trail" in text


def test_changing_a_merchants_status_with_a_reason(
    client: TestClient, world: World, uow: UnitOfWork
) -> None:
    sign_in(client, world.rm)
    path = f"/console/merchants/{world.holder.public_id}"
    page = client.get(path).text
    # Only the statuses the lifecycle allows next are offered.
    options = re.findall(r'<select id="transition-to".*?</select>', page, re.S)[0]
    assert re.findall(r'<option value="(\w+)"', options) == ["exited", "suspended"]
    response = submit(
        client, path, f"{path}/transitions", {"to": "suspended", "reason": "Price complaint"}
    )
    assert response.status_code == 303
    text = text_of(client.get(path).text)
    assert "Dockside Diner moved from active to suspended." in text
    assert "Why: Price complaint" in text
    uow.session.expire_all()
    assert alliance.merchant_by_id(uow, world.holder.id).status == MerchantStatus.SUSPENDED


def test_a_status_change_needs_a_reason_and_an_illegal_one_is_explained(
    client: TestClient, world: World, uow: UnitOfWork
) -> None:
    sign_in(client, world.rm)
    path = f"/console/merchants/{world.holder.public_id}"
    missing = submit(client, path, f"{path}/transitions", {"to": "suspended", "reason": ""})
    assert missing.status_code == 422
    assert field_error(missing.text, "transition-reason") == "This is required."
    assert '<option value="suspended" selected>' in missing.text
    illegal = submit(client, path, f"{path}/transitions", {"to": "applied", "reason": "Oops"})
    assert illegal.status_code == 409
    assert "is active: it cannot become applied (from active it may become exited, suspended)" in (
        illegal.text
    )
    uow.session.expire_all()
    assert alliance.merchant_by_id(uow, world.holder.id).status == MerchantStatus.ACTIVE


def test_recording_kyb_and_the_licence_check(
    client: TestClient, world: World, uow: UnitOfWork
) -> None:
    sign_in(client, world.rm)
    path = f"/console/merchants/{world.applicant.public_id}"
    response = submit(client, path, f"{path}/kyb", {"result": "failed", "note": "Sanctions hit"})
    assert response.status_code == 303
    assert "KYB result recorded: failed." in client.get(path).text
    uow.session.expire_all()
    assert alliance.merchant_by_id(uow, world.applicant.id).kyb_status == KybStatus.FAILED
    bad = submit(client, path, f"{path}/licence", {"note": "Seen"})
    assert bad.status_code == 422
    assert field_error(bad.text, "licence-verified") == "This is required."


def test_bank_admin_assigns_a_relationship_manager(
    client: TestClient, world: World, uow: UnitOfWork
) -> None:
    other = f.make_user(uow, Role.RELATIONSHIP_MANAGER, name="Nia Newman")
    sign_in(client, world.admin)
    path = f"/console/merchants/{world.holder.public_id}"
    assert f'<option value="{other.public_id}">Nia Newman' in client.get(path).text
    response = submit(client, path, f"{path}/manager", {"manager_id": other.public_id})
    assert response.status_code == 303
    text = text_of(client.get(path).text)
    assert "Nia Newman now looks after Dockside Diner." in text
    assert "Earlier managers Raj Manager" in text
    current = relationships.current_assignment(uow, world.holder)
    assert current is not None
    assert current.manager_id == other.id
    # A relationship manager may not reassign merchants.
    client.cookies.clear()
    sign_in(client, world.rm)
    page = client.get(path).text
    assert "Assign a relationship manager" not in page
    refused = client.post(
        f"{path}/manager", data={"manager_id": world.rm.public_id, "csrf_token": csrf_from(page)}
    )
    assert refused.status_code == 403


def test_assigning_someone_who_is_not_a_manager_is_explained(
    client: TestClient, world: World
) -> None:
    sign_in(client, world.admin)
    path = f"/console/merchants/{world.holder.public_id}"
    response = submit(client, path, f"{path}/manager", {"manager_id": world.analyst.public_id})
    assert response.status_code == 422
    assert field_error(response.text, "manager-manager-id") == "not an active relationship manager"


def test_another_merchants_file_is_not_found_for_staff_typos(
    client: TestClient, world: World
) -> None:
    sign_in(client, world.rm)
    response = client.get("/console/merchants/mer_NOPE")
    assert response.status_code == 404
    assert "No merchant &#39;mer_NOPE&#39; here." in response.text
