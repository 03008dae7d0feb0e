"""price_now and products_by_ids: what the checkout relies on."""

from __future__ import annotations

from datetime import timedelta

import pytest

from beyondbank.commerce.catalog.service import (
    NotForSale,
    price_now,
    prices_now,
    products_by_ids,
)
from beyondbank.commerce.models import ProductPrice, ProductStatus
from beyondbank.core.ids import new_public_id
from beyondbank.core.uow import UnitOfWork
from tests.commerce.factories import make_product
from tests.factories import make_partner


def test_the_price_valid_now_is_public_and_client(uow: UnitOfWork) -> None:
    product = make_product(uow, make_partner(uow), public_minor=1_999, client_minor=1_799)
    assert price_now(uow, product, uow.clock.now()) == (1_999, 1_799)


def test_a_later_period_takes_over_at_its_start(uow: UnitOfWork) -> None:
    now = uow.clock.now()
    product = make_product(uow, make_partner(uow), public_minor=1_000, client_minor=900)
    first = uow.session.query(ProductPrice).filter_by(product_id=product.id).one()
    first.valid_to = now + timedelta(days=1)
    uow.session.add(
        ProductPrice(
            public_id=new_public_id("prc"),
            product_id=product.id,
            public_minor=800,
            client_minor=700,
            valid_from=now + timedelta(days=1),
            valid_to=None,
            created_at=now,
        )
    )
    uow.session.flush()
    assert price_now(uow, product, now) == (1_000, 900)
    assert price_now(uow, product, now + timedelta(days=1)) == (800, 700)
    assert prices_now(uow, [product.id], now + timedelta(days=2)) == {product.id: (800, 700)}


def test_no_price_yet_is_not_for_sale(uow: UnitOfWork) -> None:
    now = uow.clock.now()
    product = make_product(uow, make_partner(uow), valid_from=now + timedelta(hours=1))
    with pytest.raises(NotForSale) as caught:
        price_now(uow, product, now)
    assert caught.value.extra["reason"] == "no_price"
    assert prices_now(uow, [product.id], now) == {}


def test_a_withdrawn_product_is_not_for_sale(uow: UnitOfWork) -> None:
    product = make_product(uow, make_partner(uow), status=ProductStatus.WITHDRAWN)
    with pytest.raises(NotForSale) as caught:
        price_now(uow, product, uow.clock.now())
    assert caught.value.status == 409
    assert caught.value.extra["reason"] == "withdrawn"


def test_products_by_ids_finds_those_that_exist(uow: UnitOfWork) -> None:
    partner = make_partner(uow)
    a, b = make_product(uow, partner), make_product(uow, partner)
    found = products_by_ids(uow, [a.id, b.id, 987_654])
    assert set(found) == {a.id, b.id}
    assert found[a.id].sku == a.sku
    assert products_by_ids(uow, []) == {}
