"""Races on PostgreSQL with real threads: imports of one partner's feed at once, and stock set
while orders reserve units."""

from __future__ import annotations

import io

from sqlalchemy import Engine, func, select, update

from beyondbank.commerce.catalog import service
from beyondbank.commerce.models import CatalogImport, Partner, Product
from beyondbank.core.authz import SYSTEM
from beyondbank.core.clock import FixedClock
from beyondbank.core.errors import Conflict
from beyondbank.core.uow import UnitOfWork, make_session_factory
from tests.commerce.factories import make_product
from tests.factories import make_partner
from tests.races import in_units

SKUS = 600  # more than one chunk, so the imports interleave chunk by chunk
FEED = "sku,title,category,public_price,client_price,stock\n" + "".join(
    f"S{i:04d},Thing {i},home,2.00,1.80,{i % 7}\n" for i in range(SKUS)
)


def test_the_same_feed_imported_four_times_at_once(
    committing_engine: Engine, clock: FixedClock
) -> None:
    factory = make_session_factory(committing_engine)
    with UnitOfWork(factory, clock) as uow:
        partner = make_partner(uow)
        uow.commit()
    results = in_units(
        committing_engine,
        clock,
        4,
        lambda uow, i: (
            service.import_feed(
                uow,
                SYSTEM,
                uow.session.get_one(Partner, partner.id),
                io.BytesIO(FEED.encode()),
                "csv",
                source=f"race-{i}",
            ).public_id
        ),
    )
    assert all(isinstance(r, str) for r in results)
    with UnitOfWork(factory, clock) as uow:
        jobs = uow.session.scalars(select(CatalogImport)).all()
        assert [j.status.value for j in jobs] == ["completed"] * 4
        assert sum(j.created for j in jobs) == SKUS
        assert sum(j.unchanged for j in jobs) == 3 * SKUS
        assert sum(j.rejected + j.updated for j in jobs) == 0
        products = uow.session.scalar(
            select(func.count()).select_from(Product).where(Product.partner_id == partner.id)
        )
        assert products == SKUS


def test_stock_is_never_set_below_what_is_reserved(
    committing_engine: Engine, clock: FixedClock
) -> None:
    factory = make_session_factory(committing_engine)
    with UnitOfWork(factory, clock) as uow:
        product = make_product(uow, make_partner(uow), stock=20)
        uow.commit()

    def attempt(uow: UnitOfWork, i: int) -> str:
        if i % 2:
            # What the checkout does: reserve one unit only if one is free.
            done = uow.session.execute(
                update(Product)
                .where(
                    Product.id == product.id,
                    Product.stock_on_hand - Product.stock_reserved >= 1,
                )
                .values(stock_reserved=Product.stock_reserved + 1)
            )
            uow.commit()
            return "reserved" if done.rowcount else "sold out"  # type: ignore[attr-defined]
        try:
            service.set_stock(uow, SYSTEM, uow.session.get_one(Product, product.id), 8)
            return "set"
        except Conflict:
            return "refused"

    results = in_units(committing_engine, clock, 24, attempt)
    reserved = results.count("reserved")
    with UnitOfWork(factory, clock) as uow:
        on_hand, held = uow.session.execute(
            select(Product.stock_on_hand, Product.stock_reserved).where(Product.id == product.id)
        ).one()
    assert held == reserved
    assert held <= on_hand
    assert on_hand in (20, 8)
    # Every set that went through found at most 8 reserved; every refusal found more.
    if "refused" in results:
        assert held > 8
    assert results.count("set") + results.count("refused") == 12
