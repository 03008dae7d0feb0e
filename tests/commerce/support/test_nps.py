"""The NPS survey: once per delivered order, its customer's only; the score by partner and month."""

from __future__ import annotations

from datetime import timedelta
from fractions import Fraction

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import func, select

from beyondbank.commerce.models import NpsResponse, OrderStatus
from beyondbank.commerce.support import nps
from beyondbank.core.clock import FixedClock
from beyondbank.core.uow import UnitOfWork
from tests import factories as f
from tests.commerce.support.conftest import API, Shop
from tests.commerce.support.factories import make_order


def answer(client: TestClient, shop: Shop, order_id: str, score: int, **body: object) -> Response:
    return client.post(
        f"{API}/orders/{order_id}/nps", json={"score": score, **body}, headers=shop.h["customer"]
    )


def responses(uow: UnitOfWork) -> int:
    uow.session.expire_all()
    return int(uow.session.scalar(select(func.count()).select_from(NpsResponse)) or 0)


def test_a_customer_answers_once_for_a_delivered_order(
    client: TestClient, uow: UnitOfWork, shop: Shop
) -> None:
    first = answer(client, shop, shop.order.public_id, 9, comment="  Quick and easy.  ")
    assert first.status_code == 201, first.text
    assert first.json()["category"] == "promoter"
    assert first.json()["comment"] == "Quick and easy."
    assert first.json()["partner_id"] == shop.partner.public_id
    again = answer(client, shop, shop.order.public_id, 3)
    assert again.status_code == 409
    assert again.json()["type"] == "/problems/conflict"
    assert responses(uow) == 1


def test_a_completed_order_may_be_answered_and_an_undelivered_one_not_yet(
    client: TestClient, uow: UnitOfWork, shop: Shop
) -> None:
    completed = make_order(uow, shop.customer, shop.partner, status=OrderStatus.COMPLETED)
    shipped = make_order(uow, shop.customer, shop.partner, status=OrderStatus.SHIPPED)
    uow.commit()
    assert answer(client, shop, completed.public_id, 7).json()["category"] == "passive"
    early = answer(client, shop, shipped.public_id, 10)
    assert early.status_code == 409
    assert early.json()["type"] == "/problems/invalid-transition"
    assert early.json()["current_status"] == "shipped"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"score": 11}, "body.score"),
        ({"score": -1}, "body.score"),
        ({"score": "ten"}, "body.score"),
        ({"score": 5, "comment": "x" * 1_001}, "body.comment"),
        ({}, "body.score"),
    ],
)
def test_bad_answers_are_refused_and_write_nothing(
    client: TestClient, uow: UnitOfWork, shop: Shop, body: dict[str, object], field: str
) -> None:
    response = client.post(
        f"{API}/orders/{shop.order.public_id}/nps", json=body, headers=shop.h["customer"]
    )
    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == [field]
    assert responses(uow) == 0


def test_only_the_orders_customer_answers_and_others_see_no_such_order(
    client: TestClient, uow: UnitOfWork, shop: Shop
) -> None:
    assert answer(client, shop, shop.other_order.public_id, 8).status_code == 404
    assert answer(client, shop, "ord_01HZZZZZZZZZZZZZZZZZZZZZZZ", 8).status_code == 404
    for who in ("partner_admin", "bank_admin"):
        response = client.post(
            f"{API}/orders/{shop.order.public_id}/nps", json={"score": 8}, headers=shop.h[who]
        )
        assert response.status_code == 403, who
    assert responses(uow) == 0


def test_the_summary_by_partner_and_month(
    client: TestClient, uow: UnitOfWork, shop: Shop, clock: FixedClock
) -> None:
    # November (the clock's month): 3 promoters, 1 passive, 1 detractor with the partner;
    # December: 1 detractor with it, 1 promoter with the other partner.
    scores = [10, 9, 9, 8, 2]
    for score in scores:
        order = make_order(uow, shop.customer, shop.partner)
        uow.commit()
        assert answer(client, shop, order.public_id, score).status_code == 201
    clock.advance(timedelta(days=20))
    for partner, score in ((shop.partner, 0), (shop.other_partner, 10)):
        order = make_order(uow, shop.customer, partner)
        uow.commit()
        assert answer(client, shop, order.public_id, score).status_code == 201

    bank = client.get(f"{API}/nps/summary", headers=shop.h["analyst"]).json()
    assert bank["overall"] == {
        "responses": 7,
        "promoters": 4,
        "passives": 1,
        "detractors": 2,
        "nps": 29,  # (4 - 2) / 7 = 28.57 %
    }
    by_partner = {p["partner_id"]: (p["responses"], p["nps"]) for p in bank["by_partner"]}
    assert by_partner == {shop.partner.public_id: (6, 17), shop.other_partner.public_id: (1, 100)}
    assert [(m["month"], m["responses"], m["nps"]) for m in bank["by_month"]] == [
        ("2026-11", 5, 40),
        ("2026-12", 2, 0),
    ]

    own = client.get(f"{API}/nps/summary", headers=shop.h["partner_staff"]).json()
    assert [p["partner_id"] for p in own["by_partner"]] == [shop.partner.public_id]
    assert own["overall"]["responses"] == 6
    december = client.get(
        f"{API}/nps/summary?since=2026-12-01&until=2026-12-31", headers=shop.h["auditor"]
    ).json()
    assert december["overall"]["responses"] == 2
    filtered = client.get(
        f"{API}/nps/summary?partner_id={shop.other_partner.public_id}", headers=shop.h["bank_admin"]
    ).json()
    assert filtered["overall"]["nps"] == 100
    assert client.get(f"{API}/nps/summary", headers=shop.h["customer"]).status_code == 403


def test_months_follow_the_partners_calendar(
    client: TestClient, uow: UnitOfWork, shop: Shop, clock: FixedClock
) -> None:
    """23:30 UTC on 30 November is already December in Tokyo."""
    tokyo = f.make_partner(uow, timezone="Asia/Tokyo")
    order = make_order(uow, shop.customer, tokyo)
    uow.commit()
    clock.set(clock.now().replace(day=30, hour=23, minute=30))
    assert answer(client, shop, order.public_id, 10).status_code == 201
    summary = client.get(f"{API}/nps/summary", headers=shop.h["bank_admin"]).json()
    assert [m["month"] for m in summary["by_month"]] == ["2026-12"]


def test_an_empty_summary_has_no_score(client: TestClient, shop: Shop) -> None:
    summary = client.get(f"{API}/nps/summary", headers=shop.h["bank_admin"]).json()
    assert summary["overall"]["nps"] is None
    assert summary["by_partner"] == []


@given(
    promoters=st.integers(0, 10_000),
    passives=st.integers(0, 10_000),
    detractors=st.integers(0, 10_000),
)
def test_the_score_is_the_exact_percentage_rounded_half_away_from_zero(
    promoters: int, passives: int, detractors: int
) -> None:
    total = promoters + passives + detractors
    score = nps.nps(promoters, detractors, total)
    if total == 0:
        assert score is None
        return
    exact = Fraction(100 * (promoters - detractors), total)
    assert score is not None
    assert -100 <= score <= 100
    assert abs(score - exact) <= Fraction(1, 2)
    if abs(score - exact) == Fraction(1, 2):  # a tie goes away from zero
        assert abs(score) > abs(exact)
