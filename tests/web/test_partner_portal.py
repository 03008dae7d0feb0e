"""The partner portal: a shop partner's people sign in and land on it (no more 403); each role
opens only its pages, another partner's order, campaign or statement is a 404, and nobody else
gets in; orders move along the transition table where the partner may; stock, group buys with the
purchase order, support tickets with the overdue ones first, and the commission statements."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from beyondbank.commerce.models import CampaignStatus, GroupBuy, Partner, PartnerKind
from beyondbank.commerce.orders import checkout
from beyondbank.commerce.orders import service as orders
from beyondbank.commerce.orders.checkout import Wanted
from beyondbank.commerce.support import service as support
from beyondbank.core.authz import SYSTEM, Role
from beyondbank.core.clock import FixedClock
from beyondbank.core.settings import Settings
from beyondbank.core.uow import UnitOfWork
from beyondbank.demo.sso import issue_demo_sso_token
from beyondbank.identity.models import Customer, User
from beyondbank.payments.bankcore import BankCoreGateway
from beyondbank.settlement import periods
from beyondbank.settlement.models import PartyKind
from tests import factories as f
from tests.commerce.factories import make_product
from tests.commerce.groupbuy.factories import make_campaign
from tests.payments import factories as pf
from tests.settlement import factories as sf
from tests.web.pages import csrf_from, sign_in, text_of

ADDRESS = {
    "recipient": "Amelia Clarke",
    "line1": "12 Elm Road",
    "city": "London",
    "postcode": "SW4 7AB",
    "country": "GB",
}


@dataclass
class Portal:
    partner: Partner
    admin: User
    staff: User
    other_admin: User  # another partner's admin
    customer: Customer
    order: str  # paid, with the partner
    other_order: str  # paid, with the other partner
    campaign: GroupBuy  # the partner's, succeeded
    other_campaign: GroupBuy  # the other partner's, succeeded
    period: str  # the partner's closed settlement period
    other_period: str


@pytest.fixture
def bank(app: Any, clock: FixedClock) -> BankCoreGateway:
    return BankCoreGateway(app.state.session_factory, clock, timezone="Europe/London")


def _paid(uow: UnitOfWork, bank: BankCoreGateway, customer: Customer, partner: Partner) -> str:
    product = make_product(uow, partner, public_minor=1_250, client_minor=1_000, stock=10)
    uow.commit()
    data = orders.CheckoutIn(
        partner_id=partner.public_id,
        shipping_address=dict(ADDRESS),
        share_address_with_partner=True,
        items=[Wanted(product.public_id, 1)],
    )
    return orders.checkout_order(uow, bank, f.principal(customer), data).order.public_id


def _succeeded(uow: UnitOfWork, partner: Partner) -> GroupBuy:
    product = make_product(uow, partner, public_minor=30_000, client_minor=25_000, stock=5)
    campaign = make_campaign(uow, partner, product)
    campaign.status = CampaignStatus.SUCCEEDED
    campaign.final_unit_minor = 24_000
    campaign.closed_at = uow.clock.now()
    uow.commit()
    return campaign


def _closed_period(uow: UnitOfWork, clock: FixedClock, partner: Partner) -> str:
    contract = sf.make_contract(
        uow, partner.public_id, kind=PartyKind.PARTNER, starts_on=date(2026, 10, 1)
    )
    uow.commit()
    october = sf.open_periods(uow, contract)[0]
    return periods.close(uow, SYSTEM, october.public_id).period.public_id


@pytest.fixture
def portal(uow: UnitOfWork, bank: BankCoreGateway, clock: FixedClock) -> Portal:
    partner = f.make_partner(uow, name="Harbour Home")
    other = f.make_partner(uow, name="Elsewhere Ltd")
    f.make_partner(uow, name="Harbour Mutual Insurance", kind=PartnerKind.INSURER)
    customer = f.make_customer(uow, bank_ref="CUST-PORTAL")
    pf.make_account(uow, customer, opening=100_000)
    admin = f.make_user(uow, Role.PARTNER_ADMIN, partner=partner, email="priya@home.test")
    staff = f.make_user(uow, Role.PARTNER_STAFF, partner=partner, email="tom@home.test")
    other_admin = f.make_user(uow, Role.PARTNER_ADMIN, partner=other, email="eve@else.test")
    uow.commit()
    return Portal(
        partner=partner,
        admin=admin,
        staff=staff,
        other_admin=other_admin,
        customer=customer,
        order=_paid(uow, bank, customer, partner),
        other_order=_paid(uow, bank, customer, other),
        campaign=_succeeded(uow, partner),
        other_campaign=_succeeded(uow, other),
        period=_closed_period(uow, clock, partner),
        other_period=_closed_period(uow, clock, other),
    )


STAFF_PAGES = ["/partner", "/partner/orders", "/partner/orders/{order}", "/partner/stock",
               "/partner/group-buys", "/partner/support", "/partner/orders?status=paid",
               "/partner/stock?low=1", "/partner/support?status=open"]  # fmt: skip
ADMIN_ONLY = [
    "/partner/statements",
    "/partner/statements/{period}.csv",
    "/partner/statements/{period}.pdf",
    "/partner/group-buys/{campaign}/purchase-order.csv",
]


def _path(template: str, portal: Portal) -> str:
    return template.format(
        order=portal.order, period=portal.period, campaign=portal.campaign.public_id
    )


@pytest.mark.parametrize("role", ["admin", "staff"])
def test_partner_people_land_on_the_portal_and_open_exactly_their_pages(
    client: TestClient, portal: Portal, role: str
) -> None:
    sign_in(client, getattr(portal, role))
    assert client.get("/", follow_redirects=False).headers["location"] == "/partner"
    for template in STAFF_PAGES:
        response = client.get(_path(template, portal))
        assert response.status_code == 200, (template, response.text[:300])
    for template in ADMIN_ONLY:
        response = client.get(_path(template, portal))
        assert response.status_code == (200 if role == "admin" else 403), template
    nav = client.get("/partner").text
    assert ('href="/partner/statements"' in nav) is (role == "admin")
    for page in ("/console", "/merchant", "/app"):
        assert client.get(page, follow_redirects=False).status_code in (401, 403), page


def test_another_partners_order_campaign_and_statement_are_not_found(
    client: TestClient, portal: Portal
) -> None:
    sign_in(client, portal.admin)
    for page in (
        f"/partner/orders/{portal.other_order}",
        f"/partner/statements/{portal.other_period}.csv",
        f"/partner/group-buys/{portal.other_campaign.public_id}/purchase-order.csv",
    ):
        assert client.get(page).status_code == 404, page
    listed = text_of(client.get("/partner/orders").text)
    assert portal.order in listed
    assert portal.other_order not in listed
    statements = client.get("/partner/statements").text
    assert portal.period in statements
    assert portal.other_period not in statements
    shown = client.get("/partner/orders/" + portal.other_order, follow_redirects=False)
    moved = client.post(
        f"/partner/orders/{portal.other_order}/fulfil",
        data={"csrf_token": csrf_from(client.get("/partner").text)},
    )
    assert (shown.status_code, moved.status_code) == (404, 404)


def test_nobody_else_gets_in(
    client: TestClient, portal: Portal, uow: UnitOfWork, settings: Settings
) -> None:
    assert client.get("/partner", follow_redirects=False).status_code == 303  # to sign in
    for role in (Role.BANK_ADMIN, Role.MERCHANT_ADMIN):
        user = f.make_user(uow, role, merchant=f.make_merchant(uow)) if role is Role.MERCHANT_ADMIN else f.make_user(uow, role)  # fmt: skip
        uow.commit()
        sign_in(client, user)
        for template in STAFF_PAGES + ADMIN_ONLY:
            assert client.get(_path(template, portal)).status_code == 403, (role, template)
        client.post("/logout", data={"csrf_token": csrf_from(client.get("/login").text)})
        client.cookies.clear()
    token = issue_demo_sso_token(settings, customer_ref="CUST-PORTAL", now=uow.clock.now())
    client.get(f"/sso?token={token}")
    assert client.get("/partner").status_code == 403


def _move(client: TestClient, order: str, action: str, **data: str) -> Any:
    page = client.get(f"/partner/orders/{order}")
    return client.post(
        f"/partner/orders/{order}/{action}",
        data={**data, "csrf_token": csrf_from(page.text)},
        follow_redirects=False,
    )


def test_staff_move_an_order_along_the_table_and_a_refused_move_says_why(
    client: TestClient, portal: Portal
) -> None:
    sign_in(client, portal.staff)
    page = text_of(client.get(f"/partner/orders/{portal.order}").text)
    assert "Start fulfilling" in page
    assert "Mark delivered" not in page
    assert "Amelia Clarke, 12 Elm Road" in page  # the address shared, nothing else
    assert _move(client, portal.order, "fulfil").status_code == 303
    page = text_of(client.get(f"/partner/orders/{portal.order}").text)
    assert "Order " + portal.order + " is updated." in page
    assert "Ship everything left" in page
    assert _move(client, portal.order, "ship", carrier="Royal Mail", tracking="RM1", key="k1").status_code == 303  # fmt: skip
    assert _move(client, portal.order, "ship", key="k1").status_code == 303  # replayed: once
    page = text_of(client.get(f"/partner/orders/{portal.order}").text)
    assert page.count("Royal Mail") == 1
    assert "Mark delivered" in page
    # Moving again from a state that forbids it: the order page with the reason, nothing done.
    refused = _move(client, portal.order, "fulfil")
    assert refused.status_code == 303
    assert "it cannot become fulfilling" in text_of(client.get(refused.headers["location"]).text)
    assert _move(client, portal.order, "deliver").status_code == 303
    page = text_of(client.get(f"/partner/orders/{portal.order}").text)
    assert "Returns accepted until" in page


def test_overdue_tickets_come_first_and_stand_out(
    client: TestClient, portal: Portal, uow: UnitOfWork, clock: FixedClock
) -> None:
    customer = f.principal(portal.customer)
    late = support.open_ticket(
        uow,
        customer,
        support.TicketIn(
            subject="Where is it?", message="Late", partner_id=portal.partner.public_id
        ),
    )
    clock.advance(timedelta(hours=25))  # past the 24-hour first response target
    support.open_ticket(
        uow,
        customer,
        support.TicketIn(subject="Colour?", message="Blue?", partner_id=portal.partner.public_id),
    )
    sign_in(client, portal.staff)
    html = client.get("/partner/support").text
    text = text_of(html)
    assert "1 ticket(s) past a response-time target, shown first." in text
    assert text.index("Where is it?") < text.index("Colour?")
    assert html.count('class="overdue"') == 1
    assert late.subject in text


def test_stock_group_buys_and_the_purchase_order(client: TestClient, portal: Portal) -> None:
    sign_in(client, portal.admin)
    stock = text_of(client.get("/partner/stock").text)
    assert "On hand Held by orders Left to sell" in stock
    low = text_of(client.get("/partner/stock?low=1").text)
    assert "Only products" not in low
    assert "Show every product" in low
    buys = client.get("/partner/group-buys").text
    assert f"/partner/group-buys/{portal.campaign.public_id}/purchase-order.csv" in buys
    csv = client.get(f"/partner/group-buys/{portal.campaign.public_id}/purchase-order.csv")
    assert csv.status_code == 200
    assert csv.headers["content-type"].startswith("text/csv")


def test_the_portal_in_chinese(client: TestClient, portal: Portal) -> None:
    sign_in(client, portal.admin)
    page = text_of(client.get("/partner", headers={"Accept-Language": "zh-CN"}).text)
    assert "合作伙伴门户" in page
    assert "佣金对账单" in page


def test_through_the_api_a_partner_admin_reads_its_own_settlement_only(
    client: TestClient, portal: Portal, uow: UnitOfWork, settings: Settings
) -> None:
    headers = f.auth(settings, uow, portal.admin)
    listed = client.get("/api/v1/settlement/periods", headers=headers)
    assert listed.status_code == 200, listed.text
    contracts = client.get("/api/v1/settlement/contracts", headers=headers).json()["items"]
    assert [c["party_id"] for c in contracts] == [portal.partner.public_id]
    seen = {p["id"] for p in listed.json()["items"]}
    assert portal.period in seen
    assert portal.other_period not in seen
    assert {p["contract_id"] for p in listed.json()["items"]} == {contracts[0]["id"]}
    other = client.get(f"/api/v1/settlement/periods/{portal.other_period}", headers=headers)
    assert other.status_code == 404
    assert client.get("/api/v1/settlement/payout-runs", headers=headers).status_code == 403


def _paid_units(
    uow: UnitOfWork, bank: BankCoreGateway, portal: Portal, *quantities: int
) -> tuple[str, list[str]]:
    """An order with the partner of one line per quantity (10.00 a unit), fulfilling; its skus."""
    products = [
        make_product(uow, portal.partner, public_minor=1_250, client_minor=1_000, stock=10)
        for _q in quantities
    ]
    uow.commit()
    data = orders.CheckoutIn(
        partner_id=portal.partner.public_id,
        shipping_address=dict(ADDRESS),
        share_address_with_partner=True,
        items=[Wanted(p.public_id, q) for p, q in zip(products, quantities, strict=True)],
    )
    order = orders.checkout_order(uow, bank, f.principal(portal.customer), data).order
    orders.fulfil(uow, f.principal(portal.staff), order.public_id)
    return order.public_id, [p.sku for p in products]


def _ship_part(client: TestClient, order: str, **data: str) -> Any:
    page = client.get(f"/partner/orders/{order}")
    return client.post(
        f"/partner/orders/{order}/ship-part",
        data={**data, "csrf_token": csrf_from(page.text)},
        follow_redirects=False,
    )


def _shipped(uow: UnitOfWork, portal: Portal, order: str) -> tuple[str, int, list[int]]:
    uow.session.expire_all()
    found = orders.partner_order(uow, f.principal(portal.staff), order)
    lines = checkout.lines_of(uow, found)
    return found.status.value, found.captured_minor, [line.shipped_quantity for line in lines]


def test_staff_ship_chosen_lines_and_quantities_each_shipment_capturing_its_share(
    client: TestClient, portal: Portal, uow: UnitOfWork, bank: BankCoreGateway
) -> None:
    order, skus = _paid_units(uow, bank, portal, 3, 2)
    sign_in(client, portal.staff)
    page = text_of(client.get(f"/partner/orders/{order}").text)
    assert "Ship part of the order" in page
    assert f"{skus[0]}: units to ship (3 left)" in page
    sent = _ship_part(
        client, order, **{"lines.0.quantity": "2", "lines.1.quantity": "", "carrier": "DPD"}
    )
    assert sent.status_code == 303, sent.text
    assert _shipped(uow, portal, order) == ("fulfilling", 2_000, [2, 0])
    page = text_of(client.get(sent.headers["location"]).text)
    assert "the chosen units are shipped" in page
    assert f"{skus[0]}: units to ship (1 left)" in page
    # The same form posted twice (its key): one shipment, captured once.
    form = client.get(f"/partner/orders/{order}").text
    body = {"lines.1.quantity": "1", "key": "part-k1", "csrf_token": csrf_from(form)}
    for _twice in range(2):
        again = client.post(f"/partner/orders/{order}/ship-part", data=body, follow_redirects=False)
        assert again.status_code == 303
    assert _shipped(uow, portal, order) == ("fulfilling", 3_000, [2, 1])
    last = _ship_part(client, order, **{"lines.0.quantity": "1", "lines.1.quantity": "1"})
    assert last.status_code == 303
    assert _shipped(uow, portal, order) == ("shipped", 5_000, [3, 2])
    # Through the payment gateway, as the API's partial shipments: the first captured from the
    # order's authorisation, each later one paid by a capture of its own.
    shipments = orders.shipments_of(
        uow, orders.partner_order(uow, f.principal(portal.staff), order)
    )
    assert [s.amount_minor for s in shipments] == [2_000, 1_000, 2_000]
    assert "Ship part of the order" not in text_of(client.get(f"/partner/orders/{order}").text)


@pytest.mark.parametrize(
    ("typed", "error"),
    [
        ({"lines.0.quantity": "4"}, "must be within 1..3"),
        ({"lines.0.quantity": "two"}, "A whole number, in digits."),
        ({"lines.0.quantity": "-1"}, "A whole number, in digits."),
        ({"lines.0.quantity": "0", "lines.1.quantity": ""}, "Choose at least one unit to ship."),
        ({"lines.0.quantity": "1", "carrier": "x" * 101}, "At most 100 characters."),
    ],
)
def test_a_refused_partial_shipment_says_why_beside_the_line_and_writes_nothing(
    client: TestClient,
    portal: Portal,
    uow: UnitOfWork,
    bank: BankCoreGateway,
    typed: dict[str, str],
    error: str,
) -> None:
    order, _skus = _paid_units(uow, bank, portal, 3, 2)
    sign_in(client, portal.staff)
    refused = _ship_part(client, order, **typed)
    assert refused.status_code == 422
    assert error in text_of(refused.text)
    assert "This could not be saved" in text_of(refused.text)
    for value in typed.values():
        assert f'value="{value}"' in refused.text  # what was typed is kept
    assert _shipped(uow, portal, order) == ("fulfilling", 0, [0, 0])
    assert (
        orders.shipments_of(uow, orders.partner_order(uow, f.principal(portal.staff), order)) == []
    )


def test_another_partners_order_cannot_be_shipped_in_part(
    client: TestClient, portal: Portal, uow: UnitOfWork
) -> None:
    orders.fulfil(uow, SYSTEM, portal.other_order)
    sign_in(client, portal.staff)
    refused = client.post(
        f"/partner/orders/{portal.other_order}/ship-part",
        data={"lines.0.quantity": "1", "csrf_token": csrf_from(client.get("/partner").text)},
    )
    assert refused.status_code == 404
    found = orders.partner_order(uow, SYSTEM, portal.other_order)
    uow.session.refresh(found)
    assert (found.status.value, found.captured_minor) == ("fulfilling", 0)


def _ticket(uow: UnitOfWork, portal: Portal, partner: Partner, order: str | None) -> str:
    return support.open_ticket(
        uow,
        f.principal(portal.customer),
        support.TicketIn(
            subject="Where is my parcel?",
            message="It has not come yet.",
            partner_id=partner.public_id,
            order_id=order,
        ),
    ).public_id


def test_staff_answer_a_ticket_the_customer_and_the_bank_see_it_and_the_target_is_met(
    client: TestClient,
    portal: Portal,
    uow: UnitOfWork,
    clock: FixedClock,
    settings: Settings,
) -> None:
    ticket = _ticket(uow, portal, portal.partner, portal.order)
    clock.advance(timedelta(hours=25))  # past the first-response target
    sign_in(client, portal.staff)
    listed = client.get("/partner/support").text
    assert f'href="/partner/support/{ticket}"' in listed
    page = text_of(client.get(f"/partner/support/{ticket}").text)
    assert "It has not come yet." in page
    assert "The customer" in page
    assert "CUST-PORTAL" not in page  # never who the customer is
    assert "overdue" in page
    assert f"Order {portal.order}" in page
    form = client.get(f"/partner/support/{ticket}").text
    sent = client.post(
        f"/partner/support/{ticket}/messages",
        data={"body": "  Sent today with DPD.  ", "csrf_token": csrf_from(form)},
        follow_redirects=False,
    )
    assert sent.status_code == 303
    page = text_of(client.get(sent.headers["location"]).text)
    assert "Your answer is sent." in page
    assert "Sent today with DPD." in page
    assert "First answer given" in page
    uow.session.expire_all()
    answered = support.get_ticket(uow, SYSTEM, ticket)
    assert (answered.status.value, answered.first_responded_at) == ("answered", clock.now())
    # Answered: no longer late for its first response (the resolution target is days away).
    assert ticket not in {o.ticket.public_id for o in support.overdue(uow, SYSTEM, limit=100)}
    assert 'class="overdue"' not in client.get("/partner/support").text
    # The customer and the bank read the answer, through the API.
    for who in (portal.customer, f.make_user(uow, Role.BANK_ADMIN)):
        uow.commit()
        headers = f.auth(settings, uow, who)
        read = client.get(f"/api/v1/shop/support/tickets/{ticket}", headers=headers)
        assert read.status_code == 200, read.text
        assert [(m["author"], m["body"]) for m in read.json()["messages"]] == [
            ("customer", "It has not come yet."),
            ("partner", "Sent today with DPD."),
        ]


def test_a_refused_answer_writes_nothing_and_another_partners_ticket_is_not_found(
    client: TestClient, portal: Portal, uow: UnitOfWork
) -> None:
    ticket = _ticket(uow, portal, portal.partner, None)
    other = _ticket(uow, portal, uow.session.get_one(Partner, _partner_of(uow, portal)), None)
    sign_in(client, portal.staff)
    form = client.get(f"/partner/support/{ticket}").text
    blank = client.post(
        f"/partner/support/{ticket}/messages",
        data={"body": "   ", "csrf_token": csrf_from(form)},
        follow_redirects=False,
    )
    assert blank.status_code == 422
    assert "This could not be saved" in text_of(blank.text)
    long = "x" * 5_001
    too_long = client.post(
        f"/partner/support/{ticket}/messages",
        data={"body": long, "csrf_token": csrf_from(form)},
        follow_redirects=False,
    )
    assert too_long.status_code == 422
    assert long in too_long.text  # kept
    uow.session.expire_all()
    kept = support.get_ticket(uow, SYSTEM, ticket)
    assert (kept.status.value, kept.first_responded_at) == ("open", None)
    assert len(support.messages_of(uow, kept)) == 1
    assert client.get(f"/partner/support/{other}").status_code == 404
    refused = client.post(
        f"/partner/support/{other}/messages",
        data={"body": "Hello", "csrf_token": csrf_from(form)},
        follow_redirects=False,
    )
    assert refused.status_code == 404
    assert len(support.messages_of(uow, support.get_ticket(uow, SYSTEM, other))) == 1


def _partner_of(uow: UnitOfWork, portal: Portal) -> int:
    """The other partner (the one `other_order` was placed with)."""
    return orders.partner_order(uow, SYSTEM, portal.other_order).partner_id


def test_the_partial_shipment_and_the_answer_in_chinese(
    client: TestClient, portal: Portal, uow: UnitOfWork, bank: BankCoreGateway
) -> None:
    order, _skus = _paid_units(uow, bank, portal, 2)
    ticket = _ticket(uow, portal, portal.partner, None)
    sign_in(client, portal.staff)
    zh = {"Accept-Language": "zh-CN"}
    assert "部分发货" in text_of(client.get(f"/partner/orders/{order}", headers=zh).text)
    page = text_of(client.get(f"/partner/support/{ticket}", headers=zh).text)
    assert "您的答复" in page
    assert "首次答复" in page
