"""The main journeys in a real browser, each on a phone in English and on a desktop in
Simplified Chinese, every page checked by `Visit` (axe-core, no other host, fits, language)."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.browser import actions, api
from tests.browser.conftest import Served
from tests.browser.visits import Visit


def test_admin_admits_a_merchant_and_sees_the_conflict_for_a_second_of_its_kind(
    visit: Visit, served: Served
) -> None:
    # Two businesses of one sub-industry apply to the same circle (each run its own kind).
    kind = {"en": "florist", "zh_CN": "pet_shop"}[visit.language]
    staff = api.staff_client(served)
    circle = api.circle_named(staff, "Camden life circle")
    first = api.apply(staff, circle, trading_name=f"Primrose {kind} one", sub_industry=kind, n=1)
    second = api.apply(staff, circle, trading_name=f"Chalk Farm {kind} two", sub_industry=kind, n=2)

    page = actions.sign_in(visit, served, "bank_admin")
    visit.open(f"/console/applications/{first.application_id}", "first application")
    approve = page.locator('form[action$="/approve"]')
    approve.locator("textarea[name=reason]").fill("Every requirement met; a strong local florist.")
    with page.expect_navigation():
        approve.locator("button[type=submit]").click()
    expect(page.locator(".flash.ok")).to_contain_text(first.trading_name)
    visit.check("first admitted")

    visit.open(f"/console/applications/{second.application_id}", "second application")
    approve = page.locator('form[action$="/approve"]')
    approve.locator("textarea[name=reason]").fill("Also meets every requirement.")
    with page.expect_navigation():
        approve.locator("button[type=submit]").click()
    conflict = page.locator("#conflict")
    expect(conflict).to_be_visible()
    # The explanation names who holds the slot, and says the applicant now waits for it.
    expect(conflict).to_contain_text(first.trading_name)
    expect(conflict).to_contain_text(second.trading_name)
    visit.check("conflict explained")
