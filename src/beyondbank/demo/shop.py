"""The demo's partner shop: its catalog (an excerpt of a real retailer's, shipped with the package),
its people, and the weeks of orders, group buys, support and survey answers since launch.

Everything goes through the shop's own services on the story's clock: customers check out (the
bank core authorises), the partner ships (captures) and delivers, customers return, the nightly
jobs complete orders (commission accrues) and close group buys (refunds of the tier difference).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from beyondbank.commerce import service as commerce
from beyondbank.commerce.catalog import service as catalog
from beyondbank.commerce.groupbuy import closing
from beyondbank.commerce.groupbuy import service as groupbuy
from beyondbank.commerce.models import OrderStatus
from beyondbank.commerce.orders import service as orders
from beyondbank.commerce.orders.checkout import Wanted
from beyondbank.commerce.support import nps
from beyondbank.commerce.support import service as support
from beyondbank.core.authz import SYSTEM, Principal, Role
from beyondbank.core.clock import FixedClock
from beyondbank.core.errors import Problem
from beyondbank.core.uow import UnitOfWork
from beyondbank.identity import service as identity
from beyondbank.payments.bankcore import BankCoreGateway
from beyondbank.program.writer import Progress

CATALOG_FILE = Path(__file__).parent / "data" / "harbour_catalog.csv"
PARTNER_PEOPLE = (
    (Role.PARTNER_ADMIN, "priya.shah@harbour-home.example", "Priya Shah"),
    (Role.PARTNER_STAFF, "tom.reed@harbour-home.example", "Tom Reed"),
)
ADDRESSES = (
    ("12 Narrow Street", "London", "E14 8DJ"),
    ("4 Albion Road", "London", "N16 9PS"),
    ("88 Lordship Lane", "London", "SE22 8HF"),
    ("31 Ferndale Road", "London", "SW4 7RJ"),
    ("7 Chalk Farm Road", "London", "NW1 8AG"),
)
COMPLAINTS = (
    ("Parcel arrived damaged", "The box was crushed and one of the mugs is chipped."),
    ("Where is my order?", "It said dispatched four days ago but the tracking has not moved."),
    ("Wrong colour sent", "I ordered the red one and received blue. Can you swap it?"),
)


@dataclass(frozen=True, slots=True)
class ShopCounts:
    products: int
    orders: int
    completed: int
    returned: int
    group_buys: int
    tickets: int
    nps_answers: int


@dataclass(frozen=True, slots=True)
class _Cast:
    partner_id: str
    admin: Principal
    customers: list[Principal]


def populate_shop(
    factory: sessionmaker[Session],
    at: FixedClock,
    rng: random.Random,
    *,
    partner_id: str,
    customer_ids: list[str],
    password: str,
    launch: datetime,
    now: datetime,
    progress: Progress,
) -> tuple[ShopCounts, list[tuple[Role, str, str]]]:
    """The partner's catalog, people and history; returns the counts and the partner's logins."""
    at.set(launch)
    cast = _cast(factory, at, partner_id, customer_ids, password)
    with UnitOfWork(factory, at) as uow, CATALOG_FILE.open("rb") as feed:
        partner = commerce.get_partner(uow, partner_id)
        imported = catalog.import_feed(uow, SYSTEM, partner, feed, "csv", source=CATALOG_FILE.name)
    gateway = BankCoreGateway(factory, at)
    products = _product_ids(factory, at)
    placed = _orders(factory, at, gateway, rng, cast, products, launch, now, progress)
    campaigns = _group_buys(factory, at, gateway, rng, cast, products, now)
    at.set(now)
    with UnitOfWork(factory, at) as uow:
        completed = len(orders.complete_orders(uow))
    tickets, answers = _after_sales(factory, at, rng, cast, placed, now)
    counts = ShopCounts(
        products=imported.created,
        orders=len(placed),
        completed=completed,
        returned=sum(1 for _, _, returned in placed if returned),
        group_buys=campaigns,
        tickets=tickets,
        nps_answers=answers,
    )
    logins = [(role, email, name) for role, email, name in PARTNER_PEOPLE]
    return counts, logins


def _cast(
    factory: sessionmaker[Session],
    at: FixedClock,
    partner_id: str,
    customer_ids: list[str],
    password: str,
) -> _Cast:
    with UnitOfWork(factory, at) as uow:
        partner = commerce.get_partner(uow, partner_id)
        users = [
            identity.create_user(
                uow,
                SYSTEM,
                email=email,
                name=name,
                role=role,
                merchant_id=None,
                partner_id=partner.id,
                password=password,
            )
            for role, email, name in PARTNER_PEOPLE
        ]
        shoppers = [identity.principal_for(uow, "customer", c) for c in customer_ids]
        return _Cast(partner_id, identity.principal_for_user(users[0]), shoppers)


def _product_ids(factory: sessionmaker[Session], at: FixedClock) -> list[str]:
    with UnitOfWork(factory, at) as uow:
        offers, _next = catalog.search_offers(uow, at.now(), in_stock=True, limit=500)
        return [o.product.public_id for o in offers]


def _address(rng: random.Random, customer: Principal) -> dict[str, str]:
    street, city, postcode = rng.choice(ADDRESSES)
    return {
        "recipient": customer.label,
        "line1": street,
        "city": city,
        "postcode": postcode,
        "country": "GB",
    }


def _checkout(
    factory: sessionmaker[Session],
    at: FixedClock,
    gateway: BankCoreGateway,
    rng: random.Random,
    cast: _Cast,
    customer: Principal,
    items: list[Wanted],
    key: str,
) -> str | None:
    """The customer's checkout; None if the bank declined or the goods were gone."""
    data = orders.CheckoutIn(
        partner_id=cast.partner_id,
        shipping_address=_address(rng, customer),
        share_address_with_partner=True,
        instalment_months=rng.choice((None, None, None, 3, 6, 12)),
        device_protection=rng.random() < 0.15,
        items=items,
    )
    try:
        with UnitOfWork(factory, at) as uow:
            done = orders.checkout_order(uow, gateway, customer, data, key=key, fingerprint=key)
    except Problem:
        return None
    return done.order.public_id if done.order.status is OrderStatus.PAID else None


def _orders(
    factory: sessionmaker[Session],
    at: FixedClock,
    gateway: BankCoreGateway,
    rng: random.Random,
    cast: _Cast,
    products: list[str],
    launch: datetime,
    now: datetime,
    progress: Progress,
) -> list[tuple[str, Principal, bool]]:
    """Orders spread over the weeks since launch, each taken as far as its age allows:
    dispatched within two days, delivered two to four days later, a few returned."""
    span = (now - launch).total_seconds()
    moments = sorted(launch + timedelta(seconds=rng.uniform(0, span)) for _ in range(160))
    progress.start("shop orders", len(moments))
    placed: list[tuple[str, Principal, bool]] = []
    for i, ordered_at in enumerate(moments):
        progress.advance("shop orders")
        at.set(ordered_at)
        customer = rng.choice(cast.customers)
        items = [
            Wanted(p, rng.choice((1, 1, 2, 3))) for p in rng.sample(products, rng.randint(1, 3))
        ]
        order_id = _checkout(factory, at, gateway, rng, cast, customer, items, f"demo-shop-{i}")
        if order_id is None:
            continue
        returned = _fulfil(factory, at, gateway, rng, cast, customer, order_id, now)
        placed.append((order_id, customer, returned))
    return placed


def _fulfil(
    factory: sessionmaker[Session],
    at: FixedClock,
    gateway: BankCoreGateway,
    rng: random.Random,
    cast: _Cast,
    customer: Principal,
    order_id: str,
    now: datetime,
) -> bool:
    """Take the order through the partner's hands; True if the customer sent it back."""
    started = at.now()
    steps = (
        (timedelta(hours=rng.uniform(2, 20)), "fulfil"),
        (timedelta(hours=rng.uniform(22, 48)), "ship"),
        (timedelta(days=rng.uniform(2, 4)), "deliver"),
    )
    for after, step in steps:
        if started + after > now:
            return False
        at.set(started + after)
        with UnitOfWork(factory, at) as uow:
            if step == "fulfil":
                orders.fulfil(uow, cast.admin, order_id)
            elif step == "ship":
                orders.ship(uow, gateway, cast.admin, order_id, carrier="Royal Mail")
            else:
                orders.deliver(uow, cast.admin, order_id)
    returned_at = at.now() + timedelta(days=rng.uniform(1, 10))
    if rng.random() >= 0.07 or returned_at > now:
        return False
    at.set(returned_at)
    with UnitOfWork(factory, at) as uow:
        orders.request_return(uow, customer, order_id, "Not as pictured")
    at.set(returned_at + timedelta(days=3))
    if at.now() > now:
        return False
    with UnitOfWork(factory, at) as uow:
        orders.confirm_returned(uow, gateway, cast.admin, order_id)
    return True


def _group_buys(
    factory: sessionmaker[Session],
    at: FixedClock,
    gateway: BankCoreGateway,
    rng: random.Random,
    cast: _Cast,
    products: list[str],
    now: datetime,
) -> int:
    """One campaign that closed three weeks ago (orders repriced to the tier reached and the
    difference refunded), and one open now, part-way to its next tier."""
    made = 0
    for opened, closes, product, joiners in (
        (now - timedelta(days=35), now - timedelta(days=21), products[3], 26),
        (now - timedelta(days=4), now + timedelta(days=6), products[7], 14),
    ):
        at.set(opened)
        with UnitOfWork(factory, at) as uow:
            item = catalog.product_for(uow, SYSTEM, product, None)
            public, _client = catalog.price_now(uow, item, opened)
            campaign = groupbuy.create_campaign(
                uow,
                cast.admin,
                groupbuy.CampaignIn(
                    product_id=product,
                    title="Bulk buy: the more neighbours join, the less it costs",
                    opens_at=opened,
                    closes_at=closes,
                    tiers=[
                        groupbuy.TierIn(1, unit_minor=public * 90 // 100),
                        groupbuy.TierIn(20, unit_minor=public * 80 // 100),
                        groupbuy.TierIn(40, unit_minor=public * 70 // 100),
                    ],
                    min_total_units=15,
                    per_customer_limit=4,
                ),
            )
            campaign_id = campaign.public_id
        made += 1
        for i in range(joiners):
            at.set(opened + timedelta(hours=3 + i * 5))
            customer = cast.customers[i % len(cast.customers)]
            items = [Wanted(product, rng.choice((1, 1, 2)), campaign_id)]
            _checkout(
                factory, at, gateway, rng, cast, customer, items, f"demo-gb-{campaign_id}-{i}"
            )
        if closes <= now:
            at.set(closes + timedelta(hours=1))
            with UnitOfWork(factory, at) as uow:
                closing.close_due(uow, gateway)
    return made


def _after_sales(
    factory: sessionmaker[Session],
    at: FixedClock,
    rng: random.Random,
    cast: _Cast,
    placed: list[tuple[str, Principal, bool]],
    now: datetime,
) -> tuple[int, int]:
    """Survey answers on delivered orders, and a few tickets: one answered, one overdue."""
    answers = tickets = 0
    with UnitOfWork(factory, at) as uow:
        done = [
            (order_id, customer)
            for order_id, customer, returned in placed
            if not returned
            and orders.partner_order(uow, cast.admin, order_id).status
            in (OrderStatus.DELIVERED, OrderStatus.COMPLETED)
        ]
    for order_id, customer in done:
        if rng.random() > 0.45:
            continue
        score = rng.choices(range(11), weights=(1, 1, 1, 1, 2, 2, 4, 8, 14, 16, 14))[0]
        comment = rng.choice((None, None, "Quick delivery.", "Good value with the bank price."))
        with UnitOfWork(factory, at) as uow:
            nps.answer(uow, customer, order_id, score, comment)
        answers += 1
    for (subject, message), (order_id, customer), hours_ago in zip(
        COMPLAINTS, done[-3:], (30, 70, 5), strict=False
    ):
        at.set(now - timedelta(hours=hours_ago))
        with UnitOfWork(factory, at) as uow:
            ticket = support.open_ticket(
                uow, customer, support.TicketIn(subject, message, order_id=order_id)
            )
        tickets += 1
        if hours_ago == 70:  # answered; the others wait (one of them past its target)
            at.set(now - timedelta(hours=60))
            with UnitOfWork(factory, at) as uow:
                support.post_message(
                    uow,
                    cast.admin,
                    ticket.public_id,
                    "Sorry about that: a replacement is on its way.",
                )
    at.set(now)
    return tickets, answers
