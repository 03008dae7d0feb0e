"""Creating campaigns (checked tiers, window and limits; a partner only for its own products),
the campaign's transition table, and live progress as customers see it."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import event, func, select

from beyondbank.commerce.groupbuy import service
from beyondbank.commerce.models import CampaignStatus, GroupBuy, Partner, Product
from beyondbank.core.authz import Role
from beyondbank.core.clock import FixedClock
from beyondbank.core.errors import InvalidTransition
from beyondbank.core.models import AuditEvent
from beyondbank.core.settings import Settings
from beyondbank.core.uow import UnitOfWork
from tests import factories as f
from tests.commerce.factories import make_product
from tests.commerce.groupbuy.factories import make_campaign
from tests.conftest import T0

API = "/api/v1/shop/group-buys"


@pytest.fixture
def partner(uow: UnitOfWork) -> Partner:
    return f.make_partner(uow)


@pytest.fixture
def product(uow: UnitOfWork, partner: Partner) -> Product:
    return make_product(uow, partner, public_minor=1_500, client_minor=1_300)


@pytest.fixture
def admin(uow: UnitOfWork, settings: Settings, partner: Partner) -> dict[str, str]:
    return f.auth(settings, uow, f.make_user(uow, Role.PARTNER_ADMIN, partner=partner))


def _body(product: Product, **over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "product_id": product.public_id,
        "title": "Espresso machines, together",
        "opens_at": (T0 + timedelta(hours=1)).isoformat(),
        "closes_at": (T0 + timedelta(days=7)).isoformat(),
        "tiers": [
            {"min_units": 1, "unit_price": "13.99"},
            {"min_units": 10, "unit_price": "12.50"},
            {"min_units": 50, "unit_minor": 1_100},
        ],
        "min_total_units": 10,
        "per_customer_limit": 2,
        "max_total_units": 200,
    }
    body.update(over)
    return body


def _fields(response: Any) -> set[str]:
    return {e["field"] for e in response.json().get("errors", [])}


def _campaigns(uow: UnitOfWork) -> int:
    return int(uow.session.scalar(select(func.count(GroupBuy.id))) or 0)


def test_a_partner_creates_a_campaign_for_its_product(
    client: TestClient, uow: UnitOfWork, admin: dict[str, str], product: Product
) -> None:
    response = client.post(API, json=_body(product), headers=admin)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["status"] == "scheduled"
    assert [(t["min_units"], t["unit_minor"]) for t in body["tiers"]] == [
        (1, 1_399),
        (10, 1_250),
        (50, 1_100),
    ]
    assert body["entry_unit_minor"] == 1_399
    assert body["units"] == 0
    assert body["tier_reached"] is None
    assert body["next_tier"] == {"min_units": 1, "unit_minor": 1_399}
    assert body["your_units"] is None  # a partner is no customer
    audit = uow.session.scalars(
        select(AuditEvent).where(AuditEvent.action == "group_buy.created")
    ).one()
    assert audit.object_id == body["id"]
    assert audit.after is not None
    assert audit.after["tiers"] == [[1, 1_399], [10, 1_250], [50, 1_100]]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (
            {
                "tiers": [
                    {"min_units": 1, "unit_minor": 1_300},
                    {"min_units": 1, "unit_minor": 1_200},
                ]
            },
            "body.tiers.1.min_units",
        ),
        (
            {
                "tiers": [
                    {"min_units": 1, "unit_minor": 1_300},
                    {"min_units": 5, "unit_minor": 1_300},
                ]
            },
            "body.tiers.1.unit_price",
        ),
        ({"tiers": [{"min_units": 1, "unit_price": "15.01"}]}, "body.tiers.0.unit_price"),
        ({"tiers": [{"min_units": 1, "unit_price": "9.999"}]}, "body.tiers.0.unit_price"),
        ({"tiers": [{"min_units": 3, "unit_minor": 900}]}, "body.tiers.0.min_units"),
        ({"tiers": [{"min_units": 1}]}, "body.tiers.0.unit_price"),
        ({"tiers": [{"min_units": -1, "unit_minor": 900}]}, "body.tiers.0.min_units"),
        ({"opens_at": (T0 - timedelta(days=1)).isoformat()}, "body.opens_at"),
        ({"closes_at": (T0 - timedelta(hours=1)).isoformat()}, "body.closes_at"),
        ({"closes_at": (T0 + timedelta(minutes=30)).isoformat()}, "body.closes_at"),
        ({"closes_at": "2026-12-01T12:00:00"}, "body.closes_at"),  # no time zone
        ({"min_total_units": -5}, "body.min_total_units"),
        ({"per_customer_limit": 0}, "body.per_customer_limit"),
        ({"max_total_units": 5}, "body.max_total_units"),  # below the minimum
        ({"product_id": "prd_nothing"}, "body.product_id"),
    ],
)
def test_bad_input_is_a_problem_with_field_errors_and_writes_nothing(
    client: TestClient,
    uow: UnitOfWork,
    admin: dict[str, str],
    product: Product,
    change: dict[str, Any],
    field: str,
) -> None:
    before = _campaigns(uow)
    response = client.post(API, json=_body(product, **change), headers=admin)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert field in _fields(response)
    assert _campaigns(uow) == before


def test_every_problem_is_named_at_once(
    client: TestClient, admin: dict[str, str], product: Product
) -> None:
    response = client.post(
        API,
        json=_body(
            product,
            opens_at=(T0 - timedelta(days=1)).isoformat(),
            tiers=[{"min_units": 1, "unit_minor": 2_000}, {"min_units": 1, "unit_minor": 2_100}],
        ),
        headers=admin,
    )
    assert _fields(response) == {
        "body.opens_at",
        "body.tiers.0.unit_price",
        "body.tiers.1.unit_price",
        "body.tiers.1.min_units",
    }


def test_another_partners_product_is_no_product(
    client: TestClient, uow: UnitOfWork, settings: Settings, product: Product
) -> None:
    stranger = f.auth(settings, uow, f.make_user(uow, Role.PARTNER_ADMIN))
    response = client.post(API, json=_body(product), headers=stranger)
    assert response.status_code == 422
    assert _fields(response) == {"body.product_id"}


def test_a_withdrawn_or_unpriced_product_cannot_have_a_campaign(
    client: TestClient, uow: UnitOfWork, admin: dict[str, str], partner: Partner
) -> None:
    future = make_product(uow, partner, valid_from=T0 + timedelta(days=30))
    response = client.post(API, json=_body(future), headers=admin)
    assert response.status_code == 422
    assert _fields(response) == {"body.product_id"}


def test_a_customer_follows_the_progress_with_its_own_units(
    client: TestClient, uow: UnitOfWork, settings: Settings, partner: Partner, product: Product
) -> None:
    campaign = make_campaign(
        uow,
        partner,
        product,
        tiers=((1, 1_200), (5, 1_100), (10, 1_000)),
        min_total_units=8,
        per_customer_limit=3,
        max_total_units=20,
    )
    me, someone = f.make_customer(uow), f.make_customer(uow)
    service.join(uow, campaign_id=campaign.id, customer_id=me.id, quantity=2)
    service.join(uow, campaign_id=campaign.id, customer_id=someone.id, quantity=3)
    uow.commit()
    response = client.get(f"{API}/{campaign.public_id}", headers=f.auth(settings, uow, me))
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "open"
    assert body["units"] == 5
    assert body["tier_reached"] == {"min_units": 5, "unit_minor": 1_100}
    assert body["next_tier"] == {"min_units": 10, "unit_minor": 1_000}
    assert body["units_to_next_tier"] == 5
    assert body["minimum_met"] is False
    assert body["min_total_units"] == 8
    assert body["units_left"] == 15
    assert body["your_units"] == 2
    assert body["your_units_left"] == 1
    assert body["seconds_left"] == int(timedelta(days=2, hours=-1).total_seconds())
    listed = client.get(API, params={"status": "open"}, headers=f.auth(settings, uow, someone))
    (item,) = [i for i in listed.json()["items"] if i["id"] == campaign.public_id]
    assert item["your_units"] == 3
    assert item["your_units_left"] == 0


def test_the_list_pages_and_filters_by_the_status_customers_see(
    client: TestClient,
    uow: UnitOfWork,
    settings: Settings,
    clock: FixedClock,
    partner: Partner,
    product: Product,
) -> None:
    shown = [make_campaign(uow, partner, product).public_id for _ in range(3)]
    later = make_campaign(uow, partner, product, opens_in=timedelta(days=1)).public_id
    uow.commit()
    headers = f.auth(settings, uow, f.make_customer(uow))
    first = client.get(API, params={"status": "open", "limit": 2}, headers=headers).json()
    second = client.get(
        API, params={"status": "open", "limit": 2, "cursor": first["next_cursor"]}, headers=headers
    ).json()
    assert [i["id"] for i in first["items"] + second["items"]] == shown[::-1]
    assert second["next_cursor"] is None
    scheduled = client.get(API, params={"status": "scheduled"}, headers=headers).json()
    assert [i["id"] for i in scheduled["items"]] == [later]


def test_progress_is_read_in_one_query(uow: UnitOfWork, partner: Partner, product: Product) -> None:
    campaign = make_campaign(uow, partner, product)
    customer = f.make_customer(uow)
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(args[2])

    bind = uow.session.connection()
    event.listen(bind, "before_cursor_execute", count)
    try:
        progress = service.progress(uow, f.principal(customer), campaign.public_id)
    finally:
        event.remove(bind, "before_cursor_execute", count)
    assert progress.units == 0
    assert len(statements) == 1


@given(st.lists(st.sampled_from(["open", "cancel", "succeed", "fail"]), max_size=6))
def test_the_transition_table_has_the_last_word(actions: list[str]) -> None:
    campaign = GroupBuy(public_id="gbc_TEST", status=CampaignStatus.SCHEDULED)
    for action in actions:
        target = service.TRANSITIONS.get((campaign.status, action))
        if target is None:
            with pytest.raises(InvalidTransition) as refused:
                service.next_status(campaign, action)
            assert refused.value.extra["current_status"] == campaign.status.value
        else:
            assert service.next_status(campaign, action) is target
            campaign.status = target
    if campaign.status in service.FINAL:
        assert not any(state is campaign.status for state, _ in service.TRANSITIONS)
