"""Catalog use cases: pricing a product now, looking products up (for the checkout), feeds, stock."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import ColumnElement, or_, select

from beyondbank.commerce.models import Product, ProductPrice, ProductStatus
from beyondbank.core.errors import Conflict
from beyondbank.core.uow import UnitOfWork


class NotForSale(Conflict):
    """The product cannot be bought now: withdrawn, or no price period covers the instant (409:
    it is the product's current state, not the request, that is in the way)."""

    slug = "not-for-sale"
    title = "The product is not for sale"


def _price_covering(at: datetime) -> ColumnElement[bool]:
    return (ProductPrice.valid_from <= at) & or_(
        ProductPrice.valid_to.is_(None), ProductPrice.valid_to > at
    )


def price_now(uow: UnitOfWork, product: Product, at: datetime) -> tuple[int, int]:
    """(public_minor, client_minor) of the product at `at`; NotForSale if withdrawn or unpriced."""
    if product.status != ProductStatus.ACTIVE:
        raise NotForSale(
            f"Product {product.public_id!r} is {product.status.value}: not for sale.",
            extra={"product_id": product.public_id, "reason": "withdrawn"},
        )
    row = uow.session.execute(
        select(ProductPrice.public_minor, ProductPrice.client_minor)
        .where(ProductPrice.product_id == product.id, _price_covering(at))
        # Periods of one product do not overlap when written through this service; should a
        # hand-made one overlap, the latest start wins, as the newest decision.
        .order_by(ProductPrice.valid_from.desc())
        .limit(1)
    ).first()
    if row is None:
        raise NotForSale(
            f"Product {product.public_id!r} has no price valid at {at.isoformat()}.",
            extra={"product_id": product.public_id, "reason": "no_price"},
        )
    return int(row.public_minor), int(row.client_minor)


def prices_now(
    uow: UnitOfWork, product_ids: Iterable[int], at: datetime
) -> dict[int, tuple[int, int]]:
    """(public_minor, client_minor) at `at` for each product id that has a price then, in one query.

    Withdrawn products are not filtered here: callers check `status` (or use `price_now`).
    """
    ids = set(product_ids)
    if not ids:
        return {}
    rows = uow.session.execute(
        select(
            ProductPrice.product_id,
            ProductPrice.public_minor,
            ProductPrice.client_minor,
        )
        .where(ProductPrice.product_id.in_(ids), _price_covering(at))
        .order_by(ProductPrice.product_id, ProductPrice.valid_from)
    ).all()
    # Ordered by start, so the latest covering period of each product is the one kept.
    return {int(r.product_id): (int(r.public_minor), int(r.client_minor)) for r in rows}


def products_by_ids(uow: UnitOfWork, ids: Iterable[int]) -> dict[int, Product]:
    """The products with these internal ids, keyed by id; ids that name no product are absent."""
    wanted = set(ids)
    if not wanted:
        return {}
    rows = uow.session.scalars(select(Product).where(Product.id.in_(wanted))).all()
    return {p.id: p for p in rows}
