"""The customer's benefits near me (nearest first, by life domain, from where they are or their
first circle) and a benefit's page (what, where, when, the uses left, the member code); the
customer navigation; who may open these pages."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Connection, Engine, event

from beyondbank.alliance.models import Circle, CircleKind, Member, Merchant
from beyondbank.api import create_app
from beyondbank.benefits import service as benefits
from beyondbank.benefits.models import Benefit, BenefitStatus, Channel, LimitPeriod
from beyondbank.core.authz import Role
from beyondbank.core.clock import FixedClock
from beyondbank.core.settings import Settings
from beyondbank.core.tokens import code_step, member_code
from beyondbank.core.uow import UnitOfWork
from beyondbank.demo.sso import issue_demo_sso_token
from beyondbank.web.customer.display import distance, duration, time_left
from tests import factories as f
from tests.benefits import factories as bf
from tests.web.pages import signed_in, text_of

# About 350 m and 1.2 km north of Canary Wharf (a degree of latitude is ~111.2 km).
CANARY = f.CANARY_WHARF
NEAR = (CANARY[0] + 0.00315, CANARY[1])
FAR = (CANARY[0] + 0.0108, CANARY[1])
ELSEWHERE = (51.5416, -0.1426)  # Camden, ~10 km away


@dataclass
class Town:
    circle: Circle
    member: Member
    diner: Merchant  # 350 m north, dining
    grocer: Merchant  # 1.2 km north, shopping
    diner_deal: Benefit
    grocer_deal: Benefit
    untargeted: Benefit  # at the far grocer too, for every member


def arrive(client: TestClient, settings: Settings, uow: UnitOfWork, bank_ref: str) -> None:
    token = issue_demo_sso_token(settings, customer_ref=bank_ref, now=uow.clock.now())
    assert client.get(f"/sso?token={token}", follow_redirects=False).status_code == 303


@pytest.fixture
def town(uow: UnitOfWork) -> Town:
    circle = f.make_circle(uow, name="Canary Wharf", code="cw")
    member = f.make_member(uow, f.make_customer(uow, bank_ref="CUST-NEAR"), home=CANARY)
    diner = f.make_merchant(uow, trading_name="Dockside Diner", at=NEAR)
    grocer = f.make_merchant(uow, trading_name="Wharf Grocer", sub_industry="supermarket", at=FAR)
    diner_deal = bf.make_benefit(
        uow,
        diner,
        title="20% off dinner",
        targets=[circle],
        member_limit=2,
        limit_period=LimitPeriod.WEEK,
        weekdays=[1, 2, 3, 4, 5, 6, 7],
        hour_start=17,
        hour_end=23,
        min_spend_minor=1500,
    )
    grocer_deal = bf.make_benefit(uow, grocer, title="£5 off groceries", targets=[circle])
    untargeted = bf.make_benefit(uow, grocer, title="Free tote bag", quantity=100)
    return Town(circle, member, diner, grocer, diner_deal, grocer_deal, untargeted)


@pytest.fixture
def customer(client: TestClient, settings: Settings, uow: UnitOfWork, town: Town) -> TestClient:
    arrive(client, settings, uow, "CUST-NEAR")
    return client


def titles(html: str) -> list[str]:
    return re.findall(r'<h3><a href="/app/benefits/[^"]+">([^<]+)</a></h3>', html)


# -- benefits near me ----------------------------------------------------------------------------


def test_benefits_are_sorted_from_where_i_am(customer: TestClient, town: Town) -> None:
    # Standing at the grocer, the grocer's benefits come first, the diner's after.
    page = customer.get(f"/app/benefits?lat={FAR[0]}&lon={FAR[1]}")
    assert page.status_code == 200
    assert titles(page.text) == ["Free tote bag", "£5 off groceries", "20% off dinner"]
    text = text_of(page.text)
    assert "Nearest first, from where you are now." in text
    assert "3 benefits open to you" in text
    assert "850 m" in text  # the diner, from the grocer
    # The chosen point is kept by the links and the filter form.
    kept = f"lat={FAR[0]:.5f}&amp;lon={FAR[1]:.5f}"
    assert f'href="/app/benefits/{town.diner_deal.public_id}?{kept}"' in page.text
    assert f'name="lat" value="{FAR[0]:.5f}"' in page.text


def test_without_my_position_the_centre_of_my_first_circle_is_used(
    customer: TestClient, town: Town
) -> None:
    page = customer.get("/app/benefits")
    assert page.status_code == 200
    assert titles(page.text) == ["20% off dinner", "Free tote bag", "£5 off groceries"]
    text = text_of(page.text)
    assert "Nearest first, from the centre of Canary Wharf, your first circle." in text
    assert "350 m · " in text
    assert "1.2 km · " in text
    assert "20% off 20% off, up to £10.00" not in text  # the reward once, in words
    assert "Dockside Diner · Dining" in text
    assert "2 left for you this week" in text
    # The script that asks the browser where the customer is: a file, loaded with defer.
    assert '<script src="/static/customer-location.js" defer></script>' in page.text
    assert customer.get("/static/customer-location.js").status_code == 200
    # A position that is not one on Earth is not used.
    wrong = text_of(customer.get("/app/benefits?lat=123&lon=abc").text)
    assert "from the centre of Canary Wharf" in wrong


def test_a_member_in_no_circle_sees_the_newest_first_and_is_told_why(
    client: TestClient, settings: Settings, uow: UnitOfWork, town: Town
) -> None:
    f.make_member(uow, f.make_customer(uow, bank_ref="CUST-NOWHERE"), home=ELSEWHERE)
    arrive(client, settings, uow, "CUST-NOWHERE")
    page = client.get("/app/benefits")
    assert titles(page.text) == ["Free tote bag"]  # the circle's benefits are not for them
    assert "We do not know where you are, so the newest benefits come first." in text_of(page.text)


def test_the_life_domain_filter_is_a_form(customer: TestClient, town: Town) -> None:
    page = customer.get(f"/app/benefits?domain=shopping&lat={NEAR[0]}&lon={NEAR[1]}")
    assert titles(page.text) == ["Free tote bag", "£5 off groceries"]
    text = text_of(page.text)
    assert "Shopping: 2 benefits open to you" in text
    form = re.search(r'<form class="domain-filter" method="get" action="/app/benefits".*?</form>',
                     page.text, re.S)  # fmt: skip
    assert form is not None
    assert '<input type="radio" name="domain" value="shopping" id="domain-shopping" checked>' in (
        form.group(0)
    )
    assert '<label for="domain-dining">Dining</label>' in form.group(0)
    assert '<button type="submit">Show</button>' in form.group(0)
    dining = customer.get("/app/benefits?domain=dining")
    assert titles(dining.text) == ["20% off dinner"]
    travel = text_of(customer.get("/app/benefits?domain=travel").text)
    assert "No benefit in this life domain is open to you right now." in travel
    # An unknown domain in a hand-typed link shows every domain.
    assert len(titles(customer.get("/app/benefits?domain=nonsense").text)) == 3


def test_the_list_is_paged(
    customer: TestClient, town: Town, uow: UnitOfWork, monkeypatch: pytest.MonkeyPatch
) -> None:
    from beyondbank.web.customer import benefits as page_module

    monkeypatch.setattr(page_module, "PAGE_SIZE", 2)
    first = customer.get("/app/benefits")
    assert titles(first.text) == ["20% off dinner", "Free tote bag"]
    assert "Page 1 of 2" in text_of(first.text)
    assert 'href="/app/benefits?page=2"' in first.text
    second = customer.get("/app/benefits?page=2")
    assert titles(second.text) == ["£5 off groceries"]
    assert 'href="/app/benefits"' in second.text


@contextmanager
def counted(engine: Engine) -> Iterator[list[str]]:
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(str(args[2]))

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", count)


def test_the_list_reads_a_fixed_number_of_queries(
    customer: TestClient, town: Town, uow: UnitOfWork, engine: Engine
) -> None:
    with counted(engine) as few:
        assert customer.get("/app/benefits").status_code == 200
    for i in range(8):
        merchant = f.make_merchant(uow, trading_name=f"Shop {i}", at=NEAR)
        bf.make_benefit(uow, merchant, title=f"Deal {i}", member_limit=1)
    with counted(engine) as many:
        page = customer.get("/app/benefits")
    assert len(titles(page.text)) == 11
    assert len(many) == len(few)


# -- a benefit's page ----------------------------------------------------------------------------


def test_a_benefits_page_says_what_where_when_and_what_is_left_for_me(
    customer: TestClient, town: Town, uow: UnitOfWork, settings: Settings
) -> None:
    key = f"{uow.clock.now().isocalendar().year}-W{uow.clock.now().isocalendar().week:02d}"
    benefits.add_usage(uow, [(town.diner_deal.id, town.member.id, key, 1)])
    page = customer.get(f"/app/benefits/{town.diner_deal.public_id}")
    assert page.status_code == 200
    assert page.headers["cache-control"] == "no-store"
    text = text_of(page.text)
    assert "20% off dinner 20% off, up to £10.00" in text
    # 10:00 on a Sunday; it runs 17:00 to 23:00.
    assert (
        "not right now It applies 17:00 to 23:00, merchant's time; it is 10:00 there now." in text
    )
    assert "Days Every day Hours 17:00 to 23:00 Valid from 1 Nov 2026 to 31 Dec 2026" in text
    assert "merchant's local time (Europe/London)" in text
    assert "1 of 2 uses left for you this week." in text
    assert "Minimum spend £15.00." in text
    assert "Dockside Diner · Dining (Restaurants)" in text
    location = town.diner.locations[0]
    assert f"Main shop: {location.address_line}, London E14 5AB · 350 m" in text
    assert "Distances from the centre of Canary Wharf, your first circle." in text
    # How to use it: my member code for the counter, and my card.
    assert "Show your member code at the counter" in text
    assert "Pay with a card you linked to your membership" in text
    code = member_code(
        settings.secret_key.get_secret_value(),
        town.member.member_number,
        code_step(uow.clock.now()),
    )
    assert " ".join(code[i : i + 6] for i in range(0, len(code), 6)) in text
    assert f"Member number {town.member.member_number}" in text


def test_why_a_benefit_does_not_apply_today_is_said_in_words(
    customer: TestClient, town: Town, uow: UnitOfWork
) -> None:
    town.grocer_deal.weekdays = [1, 2, 3, 4, 5]
    uow.session.flush()
    text = text_of(customer.get("/app/benefits").text)
    assert "not right now It applies on Mon, Tue, Wed, Thu, Fri, not on Sunday." in text


def test_a_sold_out_benefit_says_so(customer: TestClient, town: Town, uow: UnitOfWork) -> None:
    town.untargeted.quantity_remaining = 0
    uow.session.flush()
    text = text_of(customer.get(f"/app/benefits/{town.untargeted.public_id}").text)
    assert "all taken" in text
    assert "Everything the merchant set aside for this benefit has been taken." in text
    assert "No limit on how often you use it." in text
    town.untargeted.quantity_remaining = 40
    uow.session.flush()
    text = text_of(customer.get(f"/app/benefits/{town.untargeted.public_id}").text)
    assert "40 of 100 still available to all members." in text


def test_a_card_linked_benefit_shows_no_code_and_from_my_position(
    customer: TestClient, town: Town, uow: UnitOfWork
) -> None:
    town.grocer_deal.channels = [Channel.CARD_LINKED.value]
    uow.session.flush()
    page = customer.get(f"/app/benefits/{town.grocer_deal.public_id}?lat={NEAR[0]}&lon={NEAR[1]}")
    text = text_of(page.text)
    assert "member-code-qr" not in page.text
    assert "Pay with a card you linked to your membership" in text
    assert "850 m" in text
    assert "Distances from where you are now." in text
    assert f'href="/app/benefits?lat={NEAR[0]:.5f}&amp;lon={NEAR[1]:.5f}"' in page.text


def test_a_benefit_not_open_to_me_is_not_found(
    customer: TestClient, town: Town, uow: UnitOfWork
) -> None:
    other_circle = f.make_circle(uow, name="Camden", code="camden", center=ELSEWHERE)
    elsewhere = bf.make_benefit(uow, town.diner, title="Camden only", targets=[other_circle])
    paused = bf.make_benefit(uow, town.diner, title="Paused", status=BenefitStatus.PAUSED)
    draft = bf.make_benefit(uow, town.diner, title="Draft", status=BenefitStatus.DRAFT)
    for hidden in (elsewhere, paused, draft):
        assert customer.get(f"/app/benefits/{hidden.public_id}").status_code == 404
        assert hidden.title not in customer.get("/app/benefits").text
    assert customer.get("/app/benefits/ben_nope").status_code == 404


def test_a_segment_circles_benefit_is_open_to_its_members(
    customer: TestClient, town: Town, uow: UnitOfWork
) -> None:
    parents = f.make_circle(
        uow,
        kind=CircleKind.SEGMENT,
        name="Parents",
        segment_rule={"all": [{"attr": "children", "op": "gte", "value": 1}]},
    )
    family = bf.make_benefit(uow, town.grocer, title="Kids eat free", targets=[parents])
    assert customer.get(f"/app/benefits/{family.public_id}").status_code == 404
    town.member.attributes = {"children": 2}
    uow.session.flush()
    assert customer.get(f"/app/benefits/{family.public_id}").status_code == 200


# -- navigation and access -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "current"),
    [
        ("/app", "Card"),
        ("/app/benefits", "Benefits"),
        ("/app/rewards", "Rewards"),
        ("/shop", "Shop"),
        ("/shop/orders", "Orders"),
        ("/shop/support", "Support"),
    ],
)
def test_the_customer_navigation_marks_the_current_page(
    customer: TestClient, path: str, current: str
) -> None:
    page = customer.get(path)
    assert page.status_code == 200, page.text
    nav = re.search(r'<nav class="tabbar".*?</nav>', page.text, re.S)
    assert nav is not None
    marked = re.findall(r'aria-current="page"><span[^>]*></span><span class="tab-label">([^<]+)',
                        nav.group(0))  # fmt: skip
    assert marked == [current]
    labels = re.findall(r'class="tab-label">([^<]+)', nav.group(0))
    assert labels == ["Card", "Benefits", "Rewards", "Shop", "Orders", "Support"]
    assert '<link rel="stylesheet" href="/static/customer.css">' in page.text
    assert 'target="_blank"' not in page.text
    assert " style=" not in page.text


def test_a_benefits_page_marks_its_section_in_the_navigation(
    customer: TestClient, town: Town
) -> None:
    page = customer.get(f"/app/benefits/{town.grocer_deal.public_id}")
    assert 'class="tab tab-benefits" aria-current="true"' in page.text


def test_only_signed_in_customers_open_the_benefit_pages(
    client: TestClient, town: Town, uow: UnitOfWork, settings: Settings
) -> None:
    paths = ["/app/benefits", f"/app/benefits/{town.diner_deal.public_id}"]
    for path in paths:
        assert client.get(path).status_code == 401
    signed_in(client, uow, Role.BANK_ADMIN)
    for path in paths:
        assert client.get(path).status_code == 403
    client.cookies.clear()
    arrive(client, settings, uow, "CUST-NEAR")
    for path in paths:
        assert client.get(path).status_code == 200


def test_a_customer_who_has_not_joined_sees_what_members_get(
    client: TestClient, town: Town, uow: UnitOfWork, settings: Settings
) -> None:
    arrive(client, settings, uow, "CUST-NOT-YET")
    page = client.get("/app/benefits")
    assert titles(page.text) == ["Free tote bag"]
    assert "Join the alliance on your card page" in text_of(page.text)
    detail = text_of(client.get(f"/app/benefits/{town.untargeted.public_id}").text)
    assert "Join the alliance on your card page to get your member code." in detail
    assert client.get(f"/app/benefits/{town.diner_deal.public_id}").status_code == 404


# -- words ------------------------------------------------------------------------------------


def test_distances_and_durations_in_words() -> None:
    assert distance(348.0) == "350 m"
    assert distance(3.0) == "10 m"
    assert distance(1_234.0) == "1.2 km"
    assert distance(12_345.0) == "12 km"
    assert distance(1_234.0, "de_DE") == "1,2 km"
    assert distance(None) == "—"
    assert duration(2 * 86_400 + 3 * 3_600 + 59) == "2 days 3 hours"
    assert duration(86_400) == "1 day"
    assert duration(3_600 + 60) == "1 hour 1 minute"
    assert duration(20) == "1 minute"
    assert time_left(5 * 3_600) == "5 hours left"
    assert time_left(0) == "closed"


def test_the_customer_pages_may_be_framed_by_the_bank_app_and_load_nothing_foreign(
    settings: Settings,
    engine: Engine,
    connection: Connection,
    clock: FixedClock,
    town: Town,
    uow: UnitOfWork,
) -> None:
    bank_app = "https://app.thames-harbour.example"
    configured = settings.model_copy(update={"embed_origins": [bank_app]})
    app = create_app(configured, engine=engine, session_bind=connection, clock=clock)
    with TestClient(app, raise_server_exceptions=False, base_url="https://testserver") as client:
        arrive(client, configured, uow, "CUST-NEAR")
        pages = [
            "/app",
            "/app/benefits",
            "/app/benefits?domain=dining",
            f"/app/benefits/{town.diner_deal.public_id}",
            "/app/rewards",
        ]
        for path in pages:
            page = client.get(path)
            assert page.status_code == 200, (path, page.text)
            assert f"frame-ancestors {bank_app}" in page.headers["content-security-policy"]
            for ref in re.findall(r'(?:src|href|action)="([^"#]+)"', page.text):
                assert ref.startswith(("/", "?", "data:")), (path, ref)
            assert "<script>" not in page.text
            assert " style=" not in page.text
            assert "target=" not in page.text  # nothing opens a window or breaks out of the frame
            for asset in re.findall(r'<(?:link|script)[^>]+(?:href|src)="(/[^"]+)"', page.text):
                assert client.get(asset).status_code == 200, asset
