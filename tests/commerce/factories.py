"""Shop builders shared by the commerce tests: products with their prices and stock."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from beyondbank.commerce.models import Order, Partner, Product, ProductPrice, ProductStatus
from beyondbank.core.ids import new_public_id
from beyondbank.core.uow import UnitOfWork
from beyondbank.ledger.models import LedgerTransaction

_seq = itertools.count(1)


def make_product(
    uow: UnitOfWork,
    partner: Partner,
    *,
    public_minor: int = 1_250,
    client_minor: int = 1_000,
    stock: int = 100,
    valid_from: datetime | None = None,
    **over: Any,
) -> Product:
    """An active product with `stock` on hand and one open-ended price from `valid_from`
    (default: a day before the clock's now)."""
    i = next(_seq)
    now = uow.clock.now()
    product = Product(
        public_id=new_public_id("prd"),
        partner_id=partner.id,
        sku=over.pop("sku", f"SKU{i:05d}"),
        title=over.pop("title", f"Product {i}"),
        description=over.pop("description", ""),
        category=over.pop("category", "home"),
        currency=over.pop("currency", partner.currency),
        image_url=over.pop("image_url", None),
        status=over.pop("status", ProductStatus.ACTIVE),
        stock_on_hand=stock,
        stock_reserved=over.pop("stock_reserved", 0),
        created_at=now,
        updated_at=now,
        **over,
    )
    uow.session.add(product)
    uow.session.flush()
    uow.session.add(
        ProductPrice(
            public_id=new_public_id("prc"),
            product_id=product.id,
            public_minor=public_minor,
            client_minor=client_minor,
            valid_from=valid_from or now - timedelta(days=1),
            valid_to=None,
            created_at=now,
        )
    )
    uow.session.flush()
    return product


def ledger_kinds(uow: UnitOfWork, order: Order) -> list[str]:
    """The kinds of the ledger transactions that name the order, in the order they were posted."""
    return list(
        uow.session.scalars(
            select(LedgerTransaction.kind)
            .where(LedgerTransaction.reference == order.public_id)
            .order_by(LedgerTransaction.id)
        )
    )
