"""The stock reservation's lifetime is the `shop_reservation_minutes` setting: validated, read
from the environment, and what both checkout paths and the API hold stock for."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError
from sqlalchemy import select

from beyondbank.commerce.models import Order, OrderStatus
from beyondbank.commerce.orders import service
from beyondbank.core.clock import FixedClock
from beyondbank.core.settings import Settings
from beyondbank.core.uow import UnitOfWork
from beyondbank.payments.bankcore import BankCoreGateway
from beyondbank.payments.gateway import AuthoriseRequest, PaymentResult
from tests import factories as f
from tests.commerce.orders.conftest import ADDRESS, Shop, checkout_in


class DiesAfterAuthorising:
    """A process that dies once the bank has authorised: the order stays `pending_payment`
    holding its stock, which is what the reservation's lifetime is about."""

    def __init__(self, bank: BankCoreGateway) -> None:
        self.bank = bank

    def authorise(self, request: AuthoriseRequest, **kw: Any) -> PaymentResult:
        self.bank.authorise(request, **kw)
        raise KeyboardInterrupt

    def __getattr__(self, name: str) -> Any:
        return getattr(self.bank, name)


def test_the_default_is_fifteen_minutes_and_the_environment_sets_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert Settings().shop_reservation_minutes == 15
    assert timedelta(minutes=15) == service.RESERVATION
    monkeypatch.setenv("BEYONDBANK_SHOP_RESERVATION_MINUTES", "5")
    assert Settings().shop_reservation_minutes == 5


@pytest.mark.parametrize("minutes", ["0", "-3", "121", "ten"])
def test_a_reservation_outside_one_minute_to_two_hours_is_refused_at_start(
    monkeypatch: pytest.MonkeyPatch, minutes: str
) -> None:
    monkeypatch.setenv("BEYONDBANK_SHOP_RESERVATION_MINUTES", minutes)
    with pytest.raises(ValidationError) as refused:
        Settings()
    assert refused.value.errors()[0]["loc"] == ("shop_reservation_minutes",)


def test_the_order_holds_its_stock_for_the_reservation_given(
    uow: UnitOfWork, bank: BankCoreGateway, shop: Shop, clock: FixedClock
) -> None:
    with pytest.raises(KeyboardInterrupt):
        service.checkout_order(
            uow,
            DiesAfterAuthorising(bank),  # type: ignore[arg-type]
            shop.buyer,
            checkout_in(shop, (shop.product, 1)),
            reservation=timedelta(minutes=3),
        )
    order = uow.session.scalars(select(Order)).one()
    assert order.reserved_until == clock.now() + timedelta(minutes=3)
    clock.advance(timedelta(minutes=2))
    assert service.expire_reservations(uow, bank) == []
    clock.advance(timedelta(minutes=1, seconds=1))
    assert service.expire_reservations(uow, bank) == [order.public_id]
    uow.session.refresh(order)
    assert order.status is OrderStatus.CANCELLED


def test_the_api_holds_stock_for_the_configured_minutes(
    client: TestClient,
    uow: UnitOfWork,
    settings: Settings,
    bank: BankCoreGateway,
    shop: Shop,
    clock: FixedClock,
) -> None:
    held: list[Any] = []

    class Watching:
        """The bank, noting how long the order waiting for it holds its stock."""

        def authorise(self, request: AuthoriseRequest, **kw: Any) -> PaymentResult:
            with uow.fresh() as look:
                held.append(look.session.scalar(select(Order.reserved_until)))
            return bank.authorise(request, **kw)

        def __getattr__(self, name: str) -> Any:
            return getattr(bank, name)

    settings.shop_reservation_minutes = 7
    client.app.state.payment_gateway = Watching()  # type: ignore[attr-defined]
    placed = client.post(
        "/api/v1/shop/checkout",
        json={
            "partner_id": shop.partner.public_id,
            "shipping_address": ADDRESS,
            "share_address_with_partner": True,
            "items": [{"product_id": shop.product.public_id, "quantity": 1}],
        },
        headers={**f.auth(settings, uow, shop.customer), "Idempotency-Key": "hold-7"},
    )
    assert placed.status_code == 201, placed.text
    assert held == [clock.now() + timedelta(minutes=7)]
