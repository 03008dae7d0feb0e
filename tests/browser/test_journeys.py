"""The main journeys in a real browser, each on a phone in English and on a desktop in
Simplified Chinese, every page checked by `Visit` (axe-core, no other host, fits, language)."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from playwright.sync_api import Browser, Page, expect

from tests.browser import actions, api
from tests.browser.conftest import Served, new_context
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


LONDON = ZoneInfo("Europe/London")

# A spot in Canary Wharf: the demo's alliance merchants around it are the nearest.
CANARY_WHARF = {"latitude": 51.5054, "longitude": -0.0235}


def test_customer_finds_a_benefit_joins_a_group_buy_pays_in_instalments_and_answers_nps(
    visit: Visit, served: Served
) -> None:
    context = visit.page.context
    context.grant_permissions(["geolocation"])
    context.set_geolocation(CANARY_WHARF)
    # A different bank customer for each run, so each run's group-buy allowance is its own.
    page = actions.arrive_from_bank_app(visit, served, customer=1 if visit.language == "en" else 2)
    visit.check("my card")

    # Benefits near me: the browser tells where I am, the nearest come first.
    with page.expect_navigation(url="**lat=*"):
        page.locator('a[href="/app/benefits"]').first.click()
    expect(page.locator("#whereabouts")).to_have_attribute("data-source", "device")
    distances = page.locator(".distance").all_inner_texts()
    assert distances, "no benefit near me"
    visit.check("benefits near me")
    page.locator('label[for="domain-dining"]').click()
    with page.expect_navigation():
        page.locator("#domain-filter button[type=submit]").click()
    visit.check("dining near me")
    with page.expect_navigation():
        page.locator("main h3 a").first.click()
    expect(page.locator("main h1")).to_be_visible()
    visit.check("a benefit")

    # The group buy: join with one unit at the entry tier's price.
    visit.open("/shop/group-buys", "group buys")
    with page.expect_navigation():
        page.locator("main a[href^='/shop/group-buys/']").first.click()
    visit.check("group buy")
    join = page.locator('form[action="/shop/cart/items"]')
    join.locator("input[name=quantity]").fill("1")
    with page.expect_navigation(url="**/shop/cart"):
        join.locator("button[type=submit]").click()
    visit.check("cart")

    # Checkout with 0% instalments over 3 months, sharing the address with the partner.
    checkout = page.locator('form[action="/shop/checkout"]').first
    for field, value in {
        "shipping_address.recipient": "Mei Chen",
        "shipping_address.line1": "1 Canada Square",
        "shipping_address.city": "London",
        "shipping_address.postcode": "E14 5AB",
        "shipping_address.country": "GB",
    }.items():
        checkout.locator(f'[name="{field}"]').fill(value)
    checkout.locator('[name="share_address_with_partner"]').check()
    checkout.locator('input[name="instalment_months"][value="3"]').check()
    with page.expect_navigation(url="**/shop/orders/*"):
        checkout.locator("button[type=submit]").last.click()
    order_id = page.url.split("/shop/orders/")[1].split("#")[0].split("?")[0]
    expect(page.locator("main")).to_contain_text("3")
    visit.check("order placed")

    # The partner ships and delivers through its API; then the survey is offered.
    partner = api.staff_client(served, "partner_admin")
    for step, body in (("fulfil", None), ("shipments", {"carrier": "DPD", "tracking": "1Z999"})):
        answer = partner.post(f"/shop/partner/orders/{order_id}/{step}", json=body)
        assert answer.status_code in {200, 201}, answer.text
    assert partner.post(f"/shop/partner/orders/{order_id}/deliver").status_code == 200

    visit.open(f"/shop/orders/{order_id}", "delivered order")
    survey = page.locator(f'form[action="/shop/orders/{order_id}/nps"]')
    survey.locator('input[name="score"][value="9"]').check()
    survey.locator('[name="comment"]').fill("Quick delivery, good price.")
    with page.expect_navigation():
        survey.locator("button[type=submit]").click()
    expect(page.locator(f'form[action="/shop/orders/{order_id}/nps"]')).to_have_count(0)
    expect(page.locator("main")).to_contain_text("9")
    visit.check("survey answered")


def test_counter_staff_scan_a_members_qr_code_and_a_second_scan_is_refused(
    visit: Visit, served: Served, browser: Browser
) -> None:
    # The member opens the card on their own phone; the counter photographs the QR code on it.
    member_phone = new_context(browser, served, device="phone", language=visit.language)
    member = Visit(
        member_phone.new_page(),
        served.url,
        name=f"{visit.name}-member",
        device="phone",
        language=visit.language,
    )
    try:
        actions.arrive_from_bank_app(member, served, customer=5 if visit.language == "en" else 6)
        member.check("my member code")
        photo = member.page.locator("#member-code-qr").screenshot()
    finally:
        member_phone.close()
    member.assert_clean()

    benefit_id = api.every_day_benefit(served, f"15% off any day ({visit.language})")
    page = actions.sign_in(visit, served, "merchant_staff")
    visit.open("/merchant/redeem", "redeem")
    scan(page, benefit_id, photo)
    expect(page.locator("section.redeemed")).to_be_visible()
    visit.check("redeemed")

    visit.open("/merchant/redeem", "redeem again")
    scan(page, benefit_id, photo)
    form = page.locator("form.redeem-form")
    # Refused, with the reason beside the photo field, and nothing typed lost.
    refusal = page.locator("[id$='photo-error']")
    expect(refusal).to_be_visible()
    expect(form.locator('input[name="purchase_amount"]')).to_have_value("40.00")
    visit.check("second scan refused")


def scan(page: Page, benefit_id: str, photo: bytes) -> None:
    """Choose a benefit, type the bill, and photograph the member's code: the form goes at once."""
    form = page.locator("form.redeem-form")
    form.locator(f"input[name='benefit_id'][value='{benefit_id}']").check()
    form.locator("input[name='purchase_amount']").fill("40.00")
    with page.expect_navigation():
        form.locator("input[name='photo']").set_input_files(
            {"name": "member-code.png", "mimeType": "image/png", "buffer": photo}
        )


def test_the_consoles_charts_render_with_the_demo_data(visit: Visit, served: Served) -> None:
    """The analyst's overview: five monthly charts drawn, each with columns standing on the
    demo's months, and each chart's table for screen readers beside it; the circles' plot."""
    page = actions.sign_in(visit, served, "analyst")
    visit.open("/console", "overview")
    charts = page.locator("svg.columns-chart")
    expect(charts).to_have_count(5)
    for index in range(5):
        heights = (
            charts.nth(index)
            .locator("rect")
            .evaluate_all("rects => rects.map(r => r.getBBox().height)")
        )
        assert len(heights) == 12, heights  # one column a month, for a year
        assert max(heights) > 0, f"chart {index} draws nothing"
        # The chart is drawn and sized: the phone and the desktop both show it.
        box = charts.nth(index).bounding_box()
        assert box is not None
        assert box["width"] > 200
    visit.open("/console/circles", "circles")
    plot = page.locator("svg.circle-plot")
    expect(plot).to_be_visible()
    assert plot.locator("circle.area").count() >= 7  # the demo's seven geographic circles


def test_auditor_records_a_failed_visit_and_the_merchants_manager_closes_its_action(
    visit: Visit, served: Served
) -> None:
    # Dockside Kitchen's location, and the relationship manager who looks after it.
    staff = api.staff_client(served)
    kitchen = next(
        m
        for m in staff.get("/merchants", params={"q": "Dockside Kitchen"}).json()["items"]
        if m["trading_name"] == "Dockside Kitchen"
    )
    manager_id = staff.get(f"/merchants/{kitchen['id']}/managers").json()[0]["manager"]["id"]
    managers = staff.get("/users", params={"role": "relationship_manager"}).json()["items"]
    manager = next(u["email"] for u in managers if u["id"] == manager_id)
    yesterday = (datetime.now(LONDON) - timedelta(days=1)).strftime("%Y-%m-%dT12:30")

    page = actions.sign_in(visit, served, "auditor")
    visit.open("/console/audits", "audit visits")
    with page.expect_navigation():
        page.locator('main a[href="/console/audits/new"]').click()
    form = page.locator('form[action="/console/audits"]')
    location = page.locator('optgroup[label="Dockside Kitchen"] option').first.get_attribute(
        "value"
    )
    form.locator("#visit-location-id").select_option(location)
    form.locator("#visit-visited-at").fill(yesterday)
    for observation in ("staff-knew-programme", "card-accepted", "signage-displayed"):
        form.locator(f'input[name="{observation.replace("-", "_")}"][value="true"]').check()
    form.locator("#visit-items-0-description").fill("Set lunch for one")
    form.locator("#visit-items-0-public-price").fill("16.50")
    form.locator("#visit-items-0-alliance-price").fill("16.50")  # no member price at all
    with page.expect_navigation():
        form.locator("button[type=submit]").click()
    # The fail needs its corrective action: said beside the field, everything typed kept.
    expect(page.locator("#visit-corrective-action-error")).to_be_visible()
    expect(page.locator("#visit-items-0-alliance-price")).to_have_value("16.50")
    visit.check("corrective action needed")
    page.locator("#visit-corrective-action").fill("Charge members the agreed lunch price.")
    with page.expect_navigation(url="**/console/audits/aud_*"):
        page.locator('form[action="/console/audits"] button[type=submit]').click()
    expect(page.locator("main h1 .badge.bad")).to_be_visible()
    visit_path = page.url.removeprefix(served.url)
    visit.check("visit recorded")

    # The merchant's relationship manager closes the action once put right.
    page.context.clear_cookies()
    visit.open("/login", "sign in as the manager")
    page.locator("#email").fill(manager)
    page.locator("#password").fill(served.demo.password)
    with page.expect_navigation():
        page.locator("#password").press("Enter")
    visit.open(visit_path, "the visit, for its manager")
    page.locator("#close-resolution").fill("Menu board and till prices corrected; staff briefed.")
    with page.expect_navigation():
        page.locator(f'form[action="{visit_path}/close"] button[type=submit]').click()
    expect(page.locator(".flash.ok")).to_be_visible()
    expect(page.locator(f'form[action="{visit_path}/close"]')).to_have_count(0)
    visit.check("action closed")
