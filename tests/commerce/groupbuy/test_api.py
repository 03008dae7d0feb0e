"""Closing, cancelling and the purchase order over HTTP, and the `close-group-buys` command."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from typer.testing import CliRunner

from beyondbank.cli import app as cli
from beyondbank.commerce.models import GroupBuy, Partner, Product
from beyondbank.core.authz import Role
from beyondbank.core.clock import FixedClock, SystemClock
from beyondbank.core.settings import Settings
from beyondbank.core.uow import UnitOfWork, make_session_factory
from beyondbank.payments.bankcore import BankCoreGateway
from tests import factories as f
from tests.commerce.factories import make_product
from tests.commerce.groupbuy.factories import make_campaign, make_paid_order

API = "/api/v1/shop/group-buys"


@pytest.fixture
def partner(uow: UnitOfWork) -> Partner:
    return f.make_partner(uow, name="Harbour Home")


@pytest.fixture
def product(uow: UnitOfWork, partner: Partner) -> Product:
    return make_product(
        uow, partner, public_minor=1_500, client_minor=1_300, sku="=CMD", title="Kettle"
    )


@pytest.fixture
def campaign(uow: UnitOfWork, partner: Partner, product: Product) -> GroupBuy:
    made = make_campaign(uow, partner, product, tiers=((1, 1_200), (4, 1_000)), min_total_units=4)
    uow.commit()
    return made


def test_staff_close_a_due_campaign_and_the_partner_downloads_its_purchase_order(
    client: TestClient,
    uow: UnitOfWork,
    settings: Settings,
    clock: FixedClock,
    bank: BankCoreGateway,
    partner: Partner,
    campaign: GroupBuy,
) -> None:
    for quantity in (1, 2, 2):
        make_paid_order(uow, bank, campaign, quantity=quantity)
    staff_user = f.make_user(uow, Role.BANK_ADMIN)
    owner_user = f.make_user(uow, Role.PARTNER_ADMIN, partner=partner)
    staff, owner = f.auth(settings, uow, staff_user), f.auth(settings, uow, owner_user)

    early = client.post(f"{API}/{campaign.public_id}/close", headers=staff)
    assert early.status_code == 409
    assert early.json()["current_status"] == "open"
    not_yet = client.get(f"{API}/{campaign.public_id}/purchase-order", headers=owner)
    assert not_yet.status_code == 409

    clock.advance(timedelta(days=3))
    staff, owner = f.auth(settings, uow, staff_user), f.auth(settings, uow, owner_user)
    closed = client.post(f"{API}/{campaign.public_id}/close", headers=staff)
    assert closed.status_code == 200, closed.text
    body = closed.json()
    assert body["settlement"] == {
        "status": "succeeded",
        "units": 5,
        "orders": 3,
        "final_unit_minor": 1_000,
        "refund_minor": 5 * 200,
        "newly": True,
    }
    assert body["refunds"] == {"refunded": 3, "refunded_minor": 1_000, "failed": 0}
    assert body["group_buy"]["status"] == "succeeded"
    again = client.post(f"{API}/{campaign.public_id}/close", headers=staff).json()
    assert again["settlement"]["newly"] is False
    assert again["refunds"]["refunded"] == 0

    order = client.get(f"{API}/{campaign.public_id}/purchase-order", headers=owner)
    assert order.status_code == 200
    assert order.json() | {"opens_at": None, "closes_at": None, "closed_at": None} == {
        "group_buy_id": campaign.public_id,
        "title": campaign.title,
        "partner_id": partner.public_id,
        "partner_name": "Harbour Home",
        "sku": "=CMD",
        "product_title": "Kettle",
        "currency": "GBP",
        "units": 5,
        "unit_minor": 1_000,
        "total_minor": 5_000,
        "orders": 3,
        "opens_at": None,
        "closes_at": None,
        "closed_at": None,
    }
    as_csv = client.get(
        f"{API}/{campaign.public_id}/purchase-order", params={"format": "csv"}, headers=owner
    )
    assert as_csv.headers["content-type"].startswith("text/csv")
    assert "attachment" in as_csv.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert len(rows) == 1
    assert rows[0]["sku"] == "'=CMD"  # never a formula in the supplier's spreadsheet
    assert rows[0]["units"] == "5"
    assert rows[0]["unit_price"] == "10.00"
    assert rows[0]["total"] == "50.00"
    assert rows[0]["orders"] == "3"
    by_accept = client.get(
        f"{API}/{campaign.public_id}/purchase-order", headers={**owner, "Accept": "text/csv"}
    )
    assert by_accept.text == as_csv.text


def test_a_partner_cancels_its_campaign_and_every_order_is_refunded(
    client: TestClient,
    uow: UnitOfWork,
    settings: Settings,
    bank: BankCoreGateway,
    partner: Partner,
    campaign: GroupBuy,
) -> None:
    paid = make_paid_order(uow, bank, campaign, quantity=2)
    owner = f.auth(settings, uow, f.make_user(uow, Role.PARTNER_ADMIN, partner=partner))
    response = client.post(f"{API}/{campaign.public_id}/cancel", headers=owner)
    assert response.status_code == 200, response.text
    assert response.json()["settlement"]["status"] == "cancelled"
    assert response.json()["refunds"]["refunded_minor"] == 2_400
    assert bank.payment(paid.payment_id).refunded_minor == 2_400
    gone = client.get(f"{API}/{campaign.public_id}/purchase-order", headers=owner)
    assert gone.status_code == 409
    assert gone.json()["current_status"] == "cancelled"


def test_the_close_command_closes_what_is_due(cli_database: Engine) -> None:
    factory = make_session_factory(cli_database)
    last_week = FixedClock(SystemClock().now() - timedelta(days=7))
    with UnitOfWork(factory, last_week) as uow:
        partner = f.make_partner(uow)
        product = make_product(uow, partner, public_minor=1_500, client_minor=1_300)
        campaign = make_campaign(uow, partner, product, tiers=((1, 1_200), (2, 1_100)))
        uow.commit()
        make_paid_order(uow, BankCoreGateway(factory, last_week), campaign, quantity=2)
        uow.commit()

    result = CliRunner().invoke(cli, ["shop", "close-group-buys"])

    assert result.exit_code == 0, result.output
    assert f"{campaign.public_id} failed: 2 units in 1 order(s)" in result.output
    assert "1 refund(s) made (2400 minor units)" in result.output
    again = CliRunner().invoke(cli, ["shop", "close-group-buys"])
    assert "0 closed, 0 refund(s) made" in again.output
