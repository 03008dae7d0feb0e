"""Catalog feed imports: idempotent re-imports, updates, and every kind of bad row rejected."""

from __future__ import annotations

import io
import json
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from beyondbank.commerce.catalog import service
from beyondbank.commerce.models import (
    CatalogImport,
    CatalogReject,
    Partner,
    Product,
    ProductPrice,
    ProductStatus,
)
from beyondbank.core.authz import SYSTEM
from beyondbank.core.clock import FixedClock
from beyondbank.core.uow import UnitOfWork
from tests.factories import make_partner

HEADER = "sku,title,description,category,public_price,client_price,stock\n"
FEED = (
    HEADER
    + "MUG-1,Enamel mug,A blue mug,Kitchen,12.50,11.25,40\n"
    + "BAG-2,Jute tote bag,,bags,8.00,7.20,0\n"
    + 'LAMP-3,"Lamp, brass","Brass, 40 cm",home decor,45,39.99,3\n'
)


def run(
    uow: UnitOfWork, partner: Partner, text: str, fmt: service.FeedFormat = "csv"
) -> CatalogImport:
    return service.import_feed(uow, SYSTEM, partner, io.BytesIO(text.encode()), fmt, source="test")


def conserved(job: CatalogImport) -> bool:
    return job.rows_read == job.created + job.updated + job.unchanged + job.rejected


def rejects(uow: UnitOfWork, job: CatalogImport) -> list[tuple[int, str | None, str]]:
    rows = uow.session.scalars(
        select(CatalogReject).where(CatalogReject.import_id == job.id).order_by(CatalogReject.id)
    )
    return [(r.line, r.field, r.reason) for r in rows]


def product(uow: UnitOfWork, partner: Partner, sku: str) -> Product:
    return uow.session.scalars(
        select(Product).where(Product.partner_id == partner.id, Product.sku == sku)
    ).one()


def test_a_feed_creates_products_with_prices_and_stock(uow: UnitOfWork) -> None:
    partner = make_partner(uow)
    job = run(uow, partner, FEED)
    assert (job.rows_read, job.created, job.updated, job.unchanged, job.rejected) == (3, 3, 0, 0, 0)
    assert job.status == "completed"
    mug = product(uow, partner, "MUG-1")
    assert (mug.title, mug.category, mug.stock_on_hand) == ("Enamel mug", "kitchen", 40)
    assert service.price_now(uow, mug, uow.clock.now()) == (1_250, 1_125)
    lamp = product(uow, partner, "LAMP-3")
    assert (lamp.title, lamp.description) == ("Lamp, brass", "Brass, 40 cm")
    assert service.price_now(uow, lamp, uow.clock.now()) == (4_500, 3_999)


def test_the_same_feed_twice_changes_nothing(uow: UnitOfWork, clock: FixedClock) -> None:
    partner = make_partner(uow)
    run(uow, partner, FEED)
    before = {
        p.sku: (p.updated_at, p.feed_fingerprint, p.stock_on_hand)
        for p in uow.session.scalars(select(Product).where(Product.partner_id == partner.id))
    }
    prices_before = uow.session.scalar(select(func.count()).select_from(ProductPrice))
    clock.advance(timedelta(hours=1))
    again = run(uow, partner, FEED)
    assert (again.rows_read, again.unchanged, again.created, again.updated) == (3, 3, 0, 0)
    uow.session.expire_all()
    after = {
        p.sku: (p.updated_at, p.feed_fingerprint, p.stock_on_hand)
        for p in uow.session.scalars(select(Product).where(Product.partner_id == partner.id))
    }
    assert after == before
    assert uow.session.scalar(select(func.count()).select_from(ProductPrice)) == prices_before


def test_the_same_products_as_json_are_unchanged(uow: UnitOfWork) -> None:
    partner = make_partner(uow)
    run(uow, partner, FEED)
    lines = [
        {
            "sku": "MUG-1",
            "title": "Enamel mug",
            "description": "A blue mug",
            "category": "kitchen",
            "public_price": "12.5",
            "client_price": 11.25,
            "stock": 40,
        },
    ]
    job = run(uow, partner, "\n".join(json.dumps(line) for line in lines), "json")
    assert (job.rows_read, job.unchanged) == (1, 1)


def test_a_changed_price_closes_the_period_and_opens_another(
    uow: UnitOfWork, clock: FixedClock
) -> None:
    partner = make_partner(uow)
    run(uow, partner, FEED)
    first = clock.now()
    clock.advance(timedelta(days=2))
    job = run(uow, partner, FEED.replace("12.50,11.25,40", "13.00,11.50,35"))
    assert (job.updated, job.unchanged) == (1, 2)
    mug = product(uow, partner, "MUG-1")
    periods = service.price_periods(uow, mug.id)
    assert [(p.public_minor, p.client_minor, p.valid_from, p.valid_to) for p in periods] == [
        (1_250, 1_125, first, clock.now()),
        (1_300, 1_150, clock.now(), None),
    ]
    assert mug.stock_on_hand == 35
    assert service.price_now(uow, mug, first) == (1_250, 1_125)


def test_a_changed_stock_alone_updates_stock_and_keeps_the_price(uow: UnitOfWork) -> None:
    partner = make_partner(uow)
    run(uow, partner, FEED)
    job = run(uow, partner, FEED.replace("8.00,7.20,0", "8.00,7.20,25"))
    assert (job.updated, job.unchanged) == (1, 2)
    bag = product(uow, partner, "BAG-2")
    assert bag.stock_on_hand == 25
    assert len(service.price_periods(uow, bag.id)) == 1


def test_stock_below_what_is_reserved_is_rejected(uow: UnitOfWork) -> None:
    partner = make_partner(uow)
    run(uow, partner, FEED)
    mug = product(uow, partner, "MUG-1")
    mug.stock_reserved = 10
    uow.commit()
    job = run(uow, partner, FEED.replace("12.50,11.25,40", "12.50,11.25,5"))
    assert (job.rejected, job.unchanged) == (1, 2)
    assert rejects(uow, job) == [(2, "stock", "5 is below the 10 unit(s) reserved by orders")]
    uow.session.refresh(mug)
    assert mug.stock_on_hand == 40


def test_products_absent_from_a_feed_stay_as_they_were(uow: UnitOfWork) -> None:
    partner = make_partner(uow)
    run(uow, partner, FEED)
    job = run(uow, partner, HEADER + "MUG-1,Enamel mug,A blue mug,Kitchen,12.50,11.25,40\n")
    assert (job.rows_read, job.unchanged) == (1, 1)
    bag = product(uow, partner, "BAG-2")
    assert bag.status == ProductStatus.ACTIVE


def test_a_withdrawn_status_withdraws_the_product(uow: UnitOfWork) -> None:
    partner = make_partner(uow)
    run(uow, partner, FEED)
    feed = "sku,title,category,public_price,client_price,stock,status\n"
    job = run(uow, partner, feed + "BAG-2,Jute tote bag,bags,8.00,7.20,0,withdrawn\n")
    assert job.updated == 1
    bag = product(uow, partner, "BAG-2")
    assert bag.status == ProductStatus.WITHDRAWN
    with pytest.raises(service.NotForSale):
        service.price_now(uow, bag, uow.clock.now())


BAD_CSV = [
    ("X1,,,kitchen,1.00,0.90,1", "title", "missing"),
    (
        "X2,Mug,,kitchen,1.005,0.90,1",
        "public_price",
        "1.005 has more than the 2 decimal places GBP has",
    ),
    ("X3,Mug,,kitchen,abc,0.90,1", "public_price", "'abc' is not a decimal amount"),
    ("X4,Mug,,kitchen,1.00,0.90,-3", "stock", "-3 is negative"),
    (
        "X5,Mug,,kitchen,1.00,1.00,1",
        "client_price",
        "the bank-client price must be below the public price (1.00 is not below 1.00)",
    ),
    (
        "X6,Mug,,kitchen,1.00,1.10,1",
        "client_price",
        "the bank-client price must be below the public price (1.10 is not below 1.00)",
    ),
    ("X7,Mug,,kitchen,1.00,0.90,2.5", "stock", "'2.5' is not a whole number"),
    ("X8,Mug,,kitchen,0,0,1", "public_price", "0 is not a positive amount"),
    ("X9,Mug,,,1.00,0.90,1", "category", "missing"),
    ("X10,Mug,,kitchen,1.00,0.90", None, "has 6 fields where the header has 7"),
]


def test_every_bad_csv_row_is_rejected_with_line_field_and_reason(uow: UnitOfWork) -> None:
    partner = make_partner(uow)
    text = (
        HEADER + "OK-1,Good mug,,kitchen,2.00,1.80,5\n" + "".join(r + "\n" for r, _, _ in BAD_CSV)
    )
    job = run(uow, partner, text)
    assert (job.rows_read, job.created, job.rejected) == (1 + len(BAD_CSV), 1, len(BAD_CSV))
    assert conserved(job)
    assert rejects(uow, job) == [
        (line, field, reason) for line, (_, field, reason) in enumerate(BAD_CSV, start=3)
    ]
    assert (
        uow.session.scalar(
            select(func.count()).select_from(Product).where(Product.partner_id == partner.id)
        )
        == 1
    )


def test_currency_must_be_iso_and_the_partners(uow: UnitOfWork) -> None:
    partner = make_partner(uow)
    feed = "sku,title,category,currency,public_price,client_price,stock\n"
    job = run(
        uow,
        partner,
        feed
        + "A,Mug,kitchen,ZZZ,1.00,0.90,1\nB,Mug,kitchen,EUR,1.00,0.90,1\n"
        + "C,Mug,kitchen,gbp,1.00,0.90,1\n",
    )
    assert rejects(uow, job) == [
        (2, "currency", "'ZZZ' is not an ISO 4217 currency"),
        (3, "currency", "the partner sells in GBP, not EUR"),
    ]
    assert job.created == 1


def test_a_duplicate_sku_keeps_the_first_row(uow: UnitOfWork) -> None:
    partner = make_partner(uow)
    job = run(uow, partner, FEED + "MUG-1,Another mug,,kitchen,3.00,2.00,1\n")
    assert (job.created, job.rejected) == (3, 1)
    assert rejects(uow, job) == [(5, "sku", "duplicate sku in this feed (first on line 2)")]
    assert product(uow, partner, "MUG-1").title == "Enamel mug"


def test_bad_json_lines_are_rejected_and_the_rest_imported(uow: UnitOfWork) -> None:
    partner = make_partner(uow)
    good = {
        "sku": "J1",
        "title": "Mug",
        "category": "kitchen",
        "public_price": "2.00",
        "client_price": "1.50",
        "stock": 3,
    }
    text = "\n".join(
        [
            json.dumps(good),
            '{"sku": "J2", "title": ',  # cut short
            "[1, 2]",
            json.dumps({**good, "sku": "J3", "client_price": "1.505"}),
            json.dumps({**good, "sku": "J4", "colour": "red"}),
            "",
            json.dumps({**good, "sku": "J5", "public_price": 2.5, "client_price": 2.25}),
        ]
    )
    job = run(uow, partner, text, "json")
    assert conserved(job)
    assert (job.rows_read, job.created, job.rejected) == (6, 2, 4)
    found = rejects(uow, job)
    assert [(line, field) for line, field, _ in found] == [
        (2, None),
        (3, None),
        (4, "client_price"),
        (5, "colour"),
    ]
    assert found[0][2].startswith("not valid JSON")
    assert found[1][2] == "not a JSON object"
    assert service.price_now(uow, product(uow, partner, "J5"), uow.clock.now()) == (250, 225)


def test_a_json_array_is_read_object_by_object(uow: UnitOfWork) -> None:
    partner = make_partner(uow)
    item = {
        "sku": "A1",
        "title": "Mug",
        "category": "kitchen",
        "public_price": "2.00",
        "client_price": "1.50",
        "stock": 3,
    }
    text = "[\n" + json.dumps(item) + ",\n" + json.dumps({**item, "sku": "A2", "stock": -1}) + "\n]"
    job = run(uow, partner, text, "json")
    assert (job.rows_read, job.created, job.rejected) == (2, 1, 1)
    assert rejects(uow, job) == [(3, "stock", "-1 is negative")]


def test_a_broken_json_array_stops_with_the_reason(uow: UnitOfWork) -> None:
    partner = make_partner(uow)
    item = {
        "sku": "A1",
        "title": "Mug",
        "category": "kitchen",
        "public_price": "2.00",
        "client_price": "1.50",
        "stock": 3,
    }
    text = "[" + json.dumps(item) + ',\n{"sku": oops}, ' + json.dumps(item) + "]"
    job = run(uow, partner, text, "json")
    assert (job.rows_read, job.created, job.rejected) == (2, 1, 1)
    line, field, reason = rejects(uow, job)[0]
    assert (line, field) == (2, None)
    assert "the rest of the array cannot be read" in reason


def test_a_price_period_from_the_feed(uow: UnitOfWork, clock: FixedClock) -> None:
    partner = make_partner(uow)
    start = clock.now() + timedelta(days=7)
    feed = "sku,title,category,public_price,client_price,stock,valid_from,valid_to\n"
    job = run(
        uow,
        partner,
        feed
        + f"P1,Mug,kitchen,5.00,4.00,1,{start.isoformat()},\n"
        + "P2,Mug,kitchen,5.00,4.00,1,2026-01-01,2025-12-31\n",
    )
    assert rejects(uow, job) == [(3, "valid_to", "must be after valid_from")]
    p1 = product(uow, partner, "P1")
    with pytest.raises(service.NotForSale):
        service.price_now(uow, p1, clock.now())
    assert service.price_now(uow, p1, start) == (500, 400)
