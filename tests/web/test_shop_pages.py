"""The partner shop's customer pages: catalog, product and group-buy progress, cart and checkout
(consent, instalments, one order per form), orders (cancel, NPS), support, and embedding."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Connection, Engine, func, select

from beyondbank.api import create_app
from beyondbank.commerce.models import (
    GroupBuy,
    Order,
    Partner,
    PartnerKind,
    PartnerStatus,
    Product,
)
from beyondbank.commerce.orders import service as orders
from beyondbank.core.authz import SYSTEM, Principal, Role
from beyondbank.core.clock import FixedClock
from beyondbank.core.settings import Settings
from beyondbank.core.uow import UnitOfWork
from beyondbank.demo.sso import issue_demo_sso_token
from beyondbank.identity.models import Customer
from beyondbank.payments import service as payments
from beyondbank.payments.bankcore import BankCoreGateway
from beyondbank.payments.models import DepositAccount
from tests import factories as f
from tests.commerce.factories import make_product
from tests.commerce.groupbuy.factories import make_campaign
from tests.payments import factories as pf
from tests.web.pages import csrf_from, field_error, text_of

BANK_APP = "https://app.thames-harbour.example"
ADDRESS = {
    "shipping_address.recipient": "Amelia Clarke",
    "shipping_address.line1": "12 Elm Road",
    "shipping_address.city": "London",
    "shipping_address.postcode": "SW4 7AB",
    "shipping_address.country": "GB",
}


@dataclass
class Shop:
    partner: Partner
    mug: Product  # 12.50 public, 10.00 for the bank's customers, 10 in stock
    phone: Product  # 300.00 public, 250.00, 5 in stock, with an open group buy
    campaign: GroupBuy
    customer: Customer
    partner_admin: Principal


@pytest.fixture
def shop(uow: UnitOfWork) -> Shop:
    partner = f.make_partner(uow, name="Harbour Home", return_window_days=14)
    f.make_partner(uow, name="Harbour Mutual Insurance", kind=PartnerKind.INSURER)
    customer = f.make_customer(uow, bank_ref="CUST-SHOP", name="Amelia Clarke")
    pf.make_account(uow, customer, opening=100_000)
    admin = f.make_user(uow, Role.PARTNER_ADMIN, partner=partner)
    mug = make_product(
        uow,
        partner,
        title="Enamel mug",
        description="A blue enamel mug",
        category="kitchen",
        public_minor=1_250,
        client_minor=1_000,
        stock=10,
    )
    phone = make_product(
        uow, partner, title="Harbour phone", category="phones", public_minor=30_000,
        client_minor=25_000, stock=5,
    )  # fmt: skip
    campaign = make_campaign(
        uow, partner, phone, tiers=((1, 24_000), (3, 22_000), (10, 20_000)), min_total_units=3
    )
    made = Shop(partner, mug, phone, campaign, customer, f.principal(admin))
    uow.commit()  # the services roll back on failure: what the test set up must survive it
    return made


@pytest.fixture
def bank(app: Any, clock: FixedClock) -> BankCoreGateway:
    return BankCoreGateway(app.state.session_factory, clock, timezone="Europe/London")


def arrive(client: TestClient, settings: Settings, uow: UnitOfWork, bank_ref: str) -> None:
    """Signed in by the bank's app (single sign-on), as a customer always is."""
    token = issue_demo_sso_token(settings, customer_ref=bank_ref, now=uow.clock.now())
    assert client.get(f"/sso?token={token}", follow_redirects=False).status_code == 303


@pytest.fixture
def customer(client: TestClient, settings: Settings, uow: UnitOfWork, shop: Shop) -> TestClient:
    arrive(client, settings, uow, shop.customer.bank_ref)
    return client


def post(client: TestClient, page: str, action: str, data: dict[str, Any]) -> Any:
    shown = client.get(page)
    assert shown.status_code == 200, shown.text
    return client.post(
        action, data={**data, "csrf_token": csrf_from(shown.text)}, follow_redirects=False
    )


def add_to_cart(client: TestClient, product: Product, quantity: int = 1, **extra: str) -> None:
    page = f"/shop/products/{product.public_id}"
    data = {"product_id": product.public_id, "quantity": str(quantity), **extra}
    response = post(client, page, "/shop/cart/items", data)
    assert response.status_code == 303, response.text
    assert response.headers["location"] == "/shop/cart"


def checkout_fields(html: str, partner: Partner) -> dict[str, str]:
    """The hidden fields of the partner's checkout form as rendered (key, expected totals)."""
    form = re.search(r'<form class="form checkout".*?</form>', html, re.S)
    assert form is not None, "the cart shows no checkout form"
    hidden = dict(re.findall(r'type="hidden" name="([^"]+)" value="([^"]*)"', form.group(0)))
    assert hidden["partner_id"] == partner.public_id
    return hidden


def order_count(uow: UnitOfWork) -> int:
    return int(uow.session.scalar(select(func.count()).select_from(Order)) or 0)


def checkout(client: TestClient, shop: Shop, **over: str) -> Any:
    cart = client.get("/shop/cart")
    data = {**checkout_fields(cart.text, shop.partner), **ADDRESS}
    data.update({"share_address_with_partner": "true", "csrf_token": csrf_from(cart.text)})
    data.update(over)
    return client.post("/shop/checkout", data=data, follow_redirects=False)


# -- the catalog and products --------------------------------------------------------------------


def test_the_catalog_lists_searches_and_filters(customer: TestClient, shop: Shop) -> None:
    page = customer.get("/shop")
    assert page.status_code == 200
    text = text_of(page.text)
    assert "Enamel mug Harbour Home · Kitchen" in text
    assert "Public price £12.50 Your price as the bank's customer £10.00 You save £2.50" in text
    assert '<del class="public-price">£12.50</del>' in page.text
    assert "in stock" in text
    assert "Kitchen (1)" in text
    assert "Phones (1)" in text
    found = text_of(customer.get("/shop?q=ENAMEL").text)
    assert "Enamel mug" in found
    assert "Harbour phone" not in found
    phones = text_of(customer.get("/shop?category=phones").text)
    assert "Harbour phone" in phones
    assert "Enamel mug" not in phones
    assert "No product matches" in text_of(customer.get("/shop?q=teapot").text)


def test_the_product_page_shows_prices_and_the_group_buys_progress(
    customer: TestClient, shop: Shop, uow: UnitOfWork
) -> None:
    page = customer.get(f"/shop/products/{shop.phone.public_id}")
    assert page.status_code == 200
    text = text_of(page.text)
    assert "£300.00" in text
    assert "£250.00 You save £50.00" in text
    assert "0 units joined so far" in text
    assert "1 more unit to the next tier: £240.00 each" in text
    assert "Needs 3 units in total to go ahead: not yet" in text
    assert "No price tier reached yet." in text
    assert "1 day 23 hours left · closes at 24 Nov 2026, 09:00:00" in text
    bar = re.search(r"<progress [^>]*>", page.text)
    assert bar is not None
    assert 'max="10"' in bar.group(0)
    assert 'value="0"' in bar.group(0)
    assert re.search(r'<label for="bar-[^"]+">0 units joined so far</label>', page.text)
    # Joining puts the units in the cart at the campaign's entry price.
    add_to_cart(customer, shop.phone, 2, campaign_id=shop.campaign.public_id)
    cart = text_of(customer.get("/shop/cart").text)
    assert "Harbour phone group buy" in cart
    assert "2 × £240.00 = £480.00" in cart


def test_a_quantity_that_is_not_a_number_is_shown_beside_the_field(
    customer: TestClient, shop: Shop
) -> None:
    page = f"/shop/products/{shop.mug.public_id}"
    response = post(
        customer, page, "/shop/cart/items", {"product_id": shop.mug.public_id, "quantity": "two"}
    )
    assert response.status_code == 422
    assert field_error(response.text, "cart-quantity") == "Enter a whole number from 1 to 10000."
    assert 'value="two"' in response.text


def test_group_buys_list_and_page(customer: TestClient, shop: Shop) -> None:
    listing = text_of(customer.get("/shop/group-buys").text)
    assert f"Group buy of {shop.phone.title}" in listing
    assert "1 day 23 hours left" in listing
    page = customer.get(f"/shop/group-buys/{shop.campaign.public_id}")
    assert page.status_code == 200
    assert "Price tiers" in text_of(page.text)
    assert "Join the group buy" in text_of(page.text)


def test_a_group_buy_shows_units_tier_and_time_left_as_it_fills_and_closes(
    customer: TestClient, shop: Shop, uow: UnitOfWork, clock: FixedClock
) -> None:
    add_to_cart(customer, shop.phone, 2, campaign_id=shop.campaign.public_id)
    assert checkout(customer, shop).status_code == 303
    clock.advance(timedelta(hours=23, minutes=30))
    page = f"/shop/group-buys/{shop.campaign.public_id}"
    text = text_of(customer.get(page).text)
    assert "2 units joined so far" in text
    assert "Tier reached: from 1 units, £240.00 each" in text
    assert "1 more unit to the next tier: £220.00 each" in text
    assert "23 hours 30 minutes left · closes at 24 Nov 2026, 09:00:00" in text
    assert "You joined with 2 units; 3 more allowed." in text
    clock.advance(timedelta(days=1))
    closed = customer.get(page)
    assert closed.status_code == 200
    text = text_of(closed.text)
    assert "Closed · the window ended at 24 Nov 2026, 09:00:00" in text
    assert 'class="time-left closed"' in closed.text
    assert "Join the group buy" not in text


# -- cart and checkout ---------------------------------------------------------------------------


def test_checkout_with_instalments_pays_and_the_order_shows_its_schedule(
    customer: TestClient, shop: Shop, uow: UnitOfWork
) -> None:
    add_to_cart(customer, shop.mug, 3)
    cart = customer.get("/shop/cart")
    text = text_of(cart.text)
    assert "3 × £10.00 = £30.00" in text
    assert "3 months at 0%: £10.00 first" in text
    assert "22 Dec 2026: £10.00" in text  # the first of three, a month after today
    assert "Add device protection from Harbour Mutual Insurance for £8.97" in text
    response = checkout(customer, shop, instalment_months="3")
    assert response.status_code == 303, response.text
    order_page = customer.get(response.headers["location"])
    text = text_of(order_page.text)
    assert "Thank you: your order is placed and paid." in text
    assert "paid" in text
    assert "Total £30.00" in text
    assert "Your 0% instalments over 3 months" in text
    assert "22 Dec 2026: £10.00 22 Jan 2027: £10.00 22 Feb 2027: £10.00" in text
    assert "Cancel this order" in text
    assert order_count(uow) == 1


def test_checkout_without_consent_keeps_the_address_and_writes_nothing(
    customer: TestClient, shop: Shop, uow: UnitOfWork
) -> None:
    add_to_cart(customer, shop.mug, 1)
    response = checkout(customer, shop, share_address_with_partner="")
    assert response.status_code == 422
    form_id = f"checkout-{shop.partner.public_id}"
    assert field_error(response.text, f"{form_id}-share-address-with-partner") == (
        "Tick the box to let the partner have this address: it cannot send the order without it."
    )
    assert 'value="12 Elm Road"' in response.text
    assert 'value="SW4 7AB"' in response.text
    assert order_count(uow) == 0
    assert "Enamel mug" in text_of(customer.get("/shop/cart").text)  # the cart is still there


def test_a_missing_address_field_is_named_beside_it(
    customer: TestClient, shop: Shop, uow: UnitOfWork
) -> None:
    add_to_cart(customer, shop.mug, 1)
    response = checkout(customer, shop, **{"shipping_address.city": " "})
    assert response.status_code == 422
    form_id = f"checkout-{shop.partner.public_id}"
    assert field_error(response.text, f"{form_id}-shipping-address-city") == "This is required."
    assert order_count(uow) == 0


def test_a_double_submit_of_one_form_places_one_order(
    customer: TestClient, shop: Shop, uow: UnitOfWork
) -> None:
    add_to_cart(customer, shop.mug, 2)
    cart = customer.get("/shop/cart")
    data = {**checkout_fields(cart.text, shop.partner), **ADDRESS}
    data.update({"share_address_with_partner": "true", "csrf_token": csrf_from(cart.text)})
    first = customer.post("/shop/checkout", data=data, follow_redirects=False)
    second = customer.post("/shop/checkout", data=data, follow_redirects=False)
    assert first.status_code == second.status_code == 303
    assert first.headers["location"] == second.headers["location"]
    assert order_count(uow) == 1
    replayed = text_of(customer.get(second.headers["location"]).text)
    assert "This order was placed already; here it is." in replayed


def test_a_declined_payment_shows_the_banks_reason(
    client: TestClient, settings: Settings, shop: Shop, uow: UnitOfWork
) -> None:
    poor = f.make_customer(uow, bank_ref="CUST-POOR")
    pf.make_account(uow, poor, opening=500)
    uow.commit()
    arrive(client, settings, uow, "CUST-POOR")
    add_to_cart(client, shop.mug, 1)
    response = checkout(client, shop)
    assert response.status_code == 402
    problem = re.search(r'id="page-problem">(.*?)</div>', response.text, re.S)
    assert problem is not None
    assert "The bank declined the payment:" in text_of(problem.group(1))
    assert order_count(uow) == 1  # the order is kept, cancelled, with the decline in its history


def test_update_and_remove_cart_lines(customer: TestClient, shop: Shop) -> None:
    add_to_cart(customer, shop.mug, 1)
    changed = post(
        customer,
        "/shop/cart",
        f"/shop/cart/items/{shop.mug.public_id}/quantity",
        {"quantity": "4"},
    )
    assert changed.status_code == 303
    assert "4 × £10.00 = £40.00" in text_of(customer.get("/shop/cart").text)
    removed = post(customer, "/shop/cart", f"/shop/cart/items/{shop.mug.public_id}/remove", {})
    assert removed.status_code == 303
    assert "Your cart is empty." in text_of(customer.get("/shop/cart").text)


# -- orders --------------------------------------------------------------------------------------


def _placed(customer: TestClient, shop: Shop) -> str:
    add_to_cart(customer, shop.mug, 1)
    response = checkout(customer, shop)
    assert response.status_code == 303, response.text
    return str(response.headers["location"]).rsplit("/", 1)[1]


def test_without_an_insurer_the_cart_offers_no_protection(
    customer: TestClient, shop: Shop, uow: UnitOfWork
) -> None:
    insurer = uow.session.scalars(select(Partner).where(Partner.kind == PartnerKind.INSURER)).one()
    insurer.status = PartnerStatus.TERMINATED
    uow.commit()
    add_to_cart(customer, shop.mug, 1)
    text = text_of(customer.get("/shop/cart").text)
    assert "Device protection" not in text
    assert "Total to pay: £10.00" in text


def test_an_order_the_bank_would_not_hold_again_says_so_to_its_customer(
    customer: TestClient, shop: Shop, uow: UnitOfWork, bank: BankCoreGateway, clock: FixedClock
) -> None:
    renewed_id, refused_id = _placed(customer, shop), _placed(customer, shop)
    clock.advance(timedelta(days=6, hours=12))
    assert orders.reauthorise_orders(uow, bank, ahead=timedelta(days=1)).renewed == [
        renewed_id,
        refused_id,
    ]
    assert "The bank renewed the hold on your payment." in text_of(
        customer.get(f"/shop/orders/{renewed_id}").text
    )
    account = uow.session.scalars(select(DepositAccount)).one()
    payments.block(uow, SYSTEM, account, "suspected fraud")
    uow.commit()
    clock.advance(timedelta(days=6, hours=12))
    assert orders.reauthorise_orders(uow, bank, ahead=timedelta(days=1)).cancelled == [
        renewed_id,
        refused_id,
    ]
    text = text_of(customer.get(f"/shop/orders/{refused_id}").text)
    assert (
        "This order was cancelled: the hold on your payment ran out before it shipped and the "
        "bank would not renew it (account blocked). Nothing was taken from your account" in text
    )
    assert "The bank would not renew the hold on your payment." in text
    chinese = customer.get(f"/shop/orders/{refused_id}", headers={"Accept-Language": "zh-CN"})
    assert "银行未同意续期" in text_of(chinese.text)


def test_the_customer_cancels_an_order_before_shipment(
    customer: TestClient, shop: Shop, uow: UnitOfWork
) -> None:
    order_id = _placed(customer, shop)
    page = f"/shop/orders/{order_id}"
    response = post(customer, page, f"{page}/cancel", {})
    assert response.status_code == 303
    text = text_of(customer.get(page).text)
    assert "Your order is cancelled" in text
    assert "History 22 Nov 2026, 10:00:00 pending payment 22 Nov 2026, 10:00:00 paid" in text
    assert "10:00:00 cancelled cancelled by the customer" in text
    assert "Cancel this order" not in text
    assert "Order " + order_id in text_of(customer.get("/shop/orders").text)


def test_the_survey_after_delivery_is_answered_once(
    customer: TestClient, shop: Shop, uow: UnitOfWork, bank: BankCoreGateway
) -> None:
    order_id = _placed(customer, shop)
    page = f"/shop/orders/{order_id}"
    assert "How did it go?" not in text_of(customer.get(page).text)
    orders.fulfil(uow, shop.partner_admin, order_id)
    orders.ship(uow, bank, shop.partner_admin, order_id, carrier="Royal Mail", tracking="RM1")
    orders.deliver(uow, shop.partner_admin, order_id)
    shown = customer.get(page)
    assert "How likely are you to recommend Harbour Home" in text_of(shown.text)
    assert "Royal Mail · tracking RM1" in text_of(shown.text)
    assert "Request a return" in text_of(shown.text)
    data = {"score": "9", "comment": "Quick delivery", "csrf_token": csrf_from(shown.text)}
    answered = customer.post(f"{page}/nps", data=data, follow_redirects=False)
    assert answered.status_code == 303
    text = text_of(customer.get(page).text)
    assert "Thank you for your answer." in text
    assert "You answered 9 out of 10." in text
    again = customer.post(f"{page}/nps", data=data, follow_redirects=False)
    assert again.status_code == 409
    assert "This order's survey is answered already." in text_of(again.text)


def test_a_ticket_about_an_order_and_a_reply(customer: TestClient, shop: Shop) -> None:
    order_id = _placed(customer, shop)
    page = f"/shop/orders/{order_id}"
    opened = post(
        customer,
        page,
        "/shop/support",
        {"order_id": order_id, "subject": "Colour", "message": "Is it dark blue?"},
    )
    assert opened.status_code == 303
    ticket_page = opened.headers["location"]
    text = text_of(customer.get(ticket_page).text)
    assert "Colour" in text
    assert "You" in text
    assert "Is it dark blue?" in text
    empty = post(customer, ticket_page, f"{ticket_page}/messages", {"body": "  "})
    assert empty.status_code == 422
    assert field_error(empty.text, "reply-body") == "must not be empty"
    sent = post(customer, ticket_page, f"{ticket_page}/messages", {"body": "Or light blue?"})
    assert sent.status_code == 303
    assert "Or light blue?" in text_of(customer.get(ticket_page).text)
    assert "Colour" in text_of(customer.get("/shop/support").text)


def test_another_customers_order_and_ticket_are_not_found(
    client: TestClient, settings: Settings, shop: Shop, uow: UnitOfWork
) -> None:
    arrive(client, settings, uow, shop.customer.bank_ref)
    order_id = _placed(client, shop)
    ticket = post(
        client,
        f"/shop/orders/{order_id}",
        "/shop/support",
        {"order_id": order_id, "subject": "Hello", "message": "A question"},
    ).headers["location"]
    other = f.make_customer(uow, bank_ref="CUST-OTHER")
    uow.commit()
    client.cookies.clear()
    arrive(client, settings, uow, other.bank_ref)
    assert client.get(f"/shop/orders/{order_id}").status_code == 404
    assert client.get(ticket).status_code == 404
    token = csrf_from(client.get("/shop").text)
    refused = client.post(f"/shop/orders/{order_id}/cancel", data={"csrf_token": token})
    assert refused.status_code == 404


def test_an_anonymous_visitor_is_sent_to_the_banks_app(client: TestClient, shop: Shop) -> None:
    page = client.get("/shop")
    assert page.status_code == 401
    assert "Open beyondbank from the bank's app" in text_of(page.text)


# -- embedding and assets ------------------------------------------------------------------------


def test_every_shop_page_may_be_framed_by_the_bank_app_and_loads_nothing_foreign(
    settings: Settings,
    engine: Engine,
    connection: Connection,
    clock: FixedClock,
    shop: Shop,
    uow: UnitOfWork,
) -> None:
    configured = settings.model_copy(update={"embed_origins": [BANK_APP]})
    app = create_app(configured, engine=engine, session_bind=connection, clock=clock)
    with TestClient(app, raise_server_exceptions=False, base_url="https://testserver") as client:
        arrive(client, configured, uow, shop.customer.bank_ref)
        order_id = _placed(client, shop)
        ticket = post(
            client,
            f"/shop/orders/{order_id}",
            "/shop/support",
            {"order_id": order_id, "subject": "Hi", "message": "A question"},
        ).headers["location"]
        add_to_cart(client, shop.mug, 1)
        pages = [
            "/shop",
            f"/shop/products/{shop.phone.public_id}",
            "/shop/group-buys",
            f"/shop/group-buys/{shop.campaign.public_id}",
            "/shop/cart",
            "/shop/orders",
            f"/shop/orders/{order_id}",
            "/shop/support",
            ticket,
        ]
        for path in pages:
            page = client.get(path)
            assert page.status_code == 200, (path, page.text)
            assert f"frame-ancestors {BANK_APP}" in page.headers["content-security-policy"]
            # Everything loaded comes from this host, and nothing is inline.
            for ref in re.findall(r'(?:src|href)="([^"#]+)"', page.text):
                assert ref.startswith(("/", "?", "data:")), (path, ref)
            assert "<script>" not in page.text
            assert " style=" not in page.text
            for asset in re.findall(r'<(?:link|script)[^>]+(?:href|src)="(/[^"]+)"', page.text):
                assert client.get(asset).status_code == 200, asset


def test_a_group_buy_checks_out_at_its_entry_price(
    customer: TestClient, shop: Shop, uow: UnitOfWork
) -> None:
    add_to_cart(customer, shop.phone, 2, campaign_id=shop.campaign.public_id)
    cart = customer.get("/shop/cart")
    assert checkout_fields(cart.text, shop.partner)["expected_total"] == "480.00"
    response = checkout(customer, shop, instalment_months="6")
    assert response.status_code == 303, response.text
    text = text_of(customer.get(response.headers["location"]).text)
    assert "2 × Harbour phone at £240.00" in text
    assert "Total £480.00" in text
    assert "22 Dec 2026: £80.00" in text
    progress = text_of(customer.get(f"/shop/group-buys/{shop.campaign.public_id}").text)
    assert "2 units joined so far" in progress
    assert "You joined with 2 units; 3 more allowed." in progress


def test_a_return_is_requested_within_the_window(
    customer: TestClient, shop: Shop, uow: UnitOfWork, bank: BankCoreGateway
) -> None:
    order_id = _placed(customer, shop)
    orders.fulfil(uow, shop.partner_admin, order_id)
    orders.ship(uow, bank, shop.partner_admin, order_id)
    orders.deliver(uow, shop.partner_admin, order_id)
    page = f"/shop/orders/{order_id}"
    response = post(customer, page, f"{page}/return", {"reason": "Too small"})
    assert response.status_code == 303
    text = text_of(customer.get(page).text)
    assert "Your return is requested" in text
    assert "return requested Too small" in text
    assert "Request a return" not in text
