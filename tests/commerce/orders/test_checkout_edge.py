"""`CheckoutEdge` answers a checkout in front of the router exactly as the route does: the same
status, headers and body for an order, a replay and every kind of problem."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Connection, Engine

from beyondbank.api import create_app
from beyondbank.commerce.orders import api as orders_api
from beyondbank.core.authz import Role
from beyondbank.core.clock import FixedClock
from beyondbank.core.settings import Settings
from beyondbank.core.uow import UnitOfWork
from tests import factories as f
from tests.commerce.orders.conftest import ADDRESS, Shop
from tests.payments import factories as pf

CHECKOUT = "/api/v1/shop/checkout"
# What differs between two checkouts that are otherwise the same: the new order's and payment's
# ids and the policy named after the order (the clock is fixed: every instant is the same).
NEW_IDS = {"order_id", "payment_id", "protection_policy_ref"}


@pytest.fixture
def routed(
    settings: Settings, engine: Engine, connection: Connection, clock: FixedClock
) -> Iterator[TestClient]:
    """The same application without the edge: every checkout goes through the router."""
    app: FastAPI = create_app(settings, engine=engine, session_bind=connection, clock=clock)
    app.user_middleware = [m for m in app.user_middleware if m.cls is not orders_api.CheckoutEdge]
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture
def edge_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The checkouts the edge answered itself (by their Idempotency-Key)."""
    calls: list[str] = []
    answer = orders_api._edge_checkout

    def counted(*args: Any) -> Any:
        calls.append(str(args[3]))
        return answer(*args)

    monkeypatch.setattr(orders_api, "_edge_checkout", counted)
    return calls


def _body(shop: Shop, **over: Any) -> dict[str, Any]:
    return {
        "partner_id": shop.partner.public_id,
        "shipping_address": ADDRESS,
        "share_address_with_partner": True,
        "items": [{"product_id": shop.product.public_id, "quantity": 2}],
        **over,
    }


def _seen(response: Any, *, same_ids: bool) -> tuple[int, dict[str, str], Any]:
    """Status, headers (but the request id, fresh each time) and body of an answer."""
    headers = {k: v for k, v in response.headers.items() if k != "x-request-id"}
    body = response.json()
    if not same_ids:
        body = {k: "<new>" if k in NEW_IDS else v for k, v in body.items()}
        headers.pop("content-length")  # the ids' lengths are the same; checked to be safe below
    return response.status_code, headers, body


def _same(
    client: TestClient,
    routed: TestClient,
    body: Any,
    headers: dict[str, str],
    *,
    same_ids: bool = False,
) -> tuple[int, dict[str, str], Any]:
    """The edge's answer and the route's to the same request (each with its own key unless the
    caller sends one), which must be the same; returns the edge's."""
    keyed = "Idempotency-Key" in headers and not same_ids
    edge_headers = (
        {**headers, "Idempotency-Key": headers["Idempotency-Key"] + "-e"} if keyed else headers
    )
    route_headers = (
        {**headers, "Idempotency-Key": headers["Idempotency-Key"] + "-r"} if keyed else headers
    )
    by_edge = client.post(CHECKOUT, json=body, headers=edge_headers)
    by_route = routed.post(CHECKOUT, json=body, headers=route_headers)
    seen = _seen(by_edge, same_ids=same_ids)
    assert seen == _seen(by_route, same_ids=same_ids), by_edge.text
    assert len(by_edge.content) == len(by_route.content)
    return seen


def test_an_order_and_its_replay_are_answered_alike(
    client: TestClient,
    routed: TestClient,
    uow: UnitOfWork,
    settings: Settings,
    shop: Shop,
    edge_calls: list[str],
) -> None:
    me = {**f.auth(settings, uow, shop.customer), "Idempotency-Key": "same"}
    status, headers, body = _same(client, routed, _body(shop), me)
    assert (status, body["status"], headers["content-type"]) == (201, "paid", "application/json")
    assert edge_calls == ["same-e"]
    # Each key again, through the other path: the first answer replayed, whichever path.
    for key in ("same-e", "same-r"):
        again = {**me, "Idempotency-Key": key}
        status, headers, _ = _same(client, routed, _body(shop), again, same_ids=True)
        assert (status, headers["idempotent-replayed"]) == (201, "true")
    # Two lines of one product, and instalments with device protection.
    other = _body(
        shop,
        items=[
            {"product_id": shop.product.public_id, "quantity": 1},
            {"product_id": shop.other.public_id, "quantity": 1},
            {"product_id": shop.product.public_id, "quantity": 1},
        ],
        instalment_months=3,
        device_protection=True,
    )
    status, _, body = _same(client, routed, other, {**me, "Idempotency-Key": "more"})
    assert (status, [line["quantity"] for line in body["lines"]]) == (201, [2, 1])


def test_every_kind_of_problem_is_answered_alike(
    client: TestClient,
    routed: TestClient,
    uow: UnitOfWork,
    settings: Settings,
    shop: Shop,
    edge_calls: list[str],
) -> None:
    poor = f.make_customer(uow)
    pf.make_account(uow, poor, opening=100)
    staff = f.make_user(uow, Role.PARTNER_ADMIN, partner=shop.partner)
    uow.commit()
    me = f.auth(settings, uow, shop.customer)
    sold_out = [{"product_id": shop.other.public_id, "quantity": 6}]
    cases: list[tuple[int, str, dict[str, Any], dict[str, str]]] = [
        (401, "unauthenticated", _body(shop), {"Idempotency-Key": "k1"}),
        (
            401,
            "unauthenticated",
            _body(shop),
            {"Authorization": "Basic abc", "Idempotency-Key": "k2"},
        ),
        (
            401,
            "unauthenticated",
            _body(shop),
            {"Authorization": "Bearer nope", "Idempotency-Key": "k3"},
        ),
        (403, "forbidden", _body(shop), {**f.auth(settings, uow, staff), "Idempotency-Key": "k4"}),
        (422, "invalid-input", _body(shop), me),  # no Idempotency-Key
        (422, "invalid-input", _body(shop), {**me, "Idempotency-Key": "x" * 400}),
        (422, "invalid-input", _body(shop, instalment_months=5), {**me, "Idempotency-Key": "k5"}),
        (
            422,
            "invalid-input",
            _body(shop, items=[{"product_id": "prd_NOPE", "quantity": 1}]),
            {**me, "Idempotency-Key": "k6"},
        ),
        (
            422,
            "invalid-input",
            _body(shop, share_address_with_partner=False),
            {**me, "Idempotency-Key": "k7"},
        ),
        (422, "invalid-input", _body(shop, partner_id="ptn_NOPE"), {**me, "Idempotency-Key": "k8"}),
        (409, "sold-out", _body(shop, items=sold_out), {**me, "Idempotency-Key": "k9"}),
        (409, "conflict", _body(shop, expected_total="19.99"), {**me, "Idempotency-Key": "k10"}),
        (
            402,
            "payment-declined",
            _body(shop),
            {**f.auth(settings, uow, poor), "Idempotency-Key": "k11"},
        ),
    ]
    for status, kind, body, headers in cases:
        seen = _same(client, routed, body, headers)
        assert (seen[0], seen[2]["type"]) == (status, f"/problems/{kind}"), seen
        assert seen[1]["content-type"] == "application/problem+json"
    # A key used before with another body, through either path.
    reused = {**me, "Idempotency-Key": "used"}
    assert client.post(CHECKOUT, json=_body(shop), headers=reused).status_code == 201
    seen = _same(client, routed, _body(shop, instalment_months=3), reused, same_ids=True)
    assert (seen[0], seen[2]["type"]) == (422, "/problems/idempotency-key-reused")
    # The edge answered each of them but the one whose body is not a CheckoutIn (5 months).
    assert "k5-e" not in edge_calls
    assert len(edge_calls) == len(cases) - 1 + 2  # and the reused key's two


def test_a_remembered_token_still_expires_and_staff_are_looked_up_each_time(
    client: TestClient,
    routed: TestClient,
    uow: UnitOfWork,
    settings: Settings,
    clock: FixedClock,
    shop: Shop,
    edge_calls: list[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    staff = f.make_user(uow, Role.PARTNER_ADMIN, partner=shop.partner)
    uow.commit()
    lookups: list[str] = []
    look_up = orders_api.identity.principal_for

    def counted(*args: Any, **kw: Any) -> Any:
        lookups.append(args[1])
        return look_up(*args, **kw)

    monkeypatch.setattr(orders_api.identity, "principal_for", counted)
    me = f.auth(settings, uow, shop.customer)
    for n in range(2):
        answer = client.post(CHECKOUT, json=_body(shop), headers={**me, "Idempotency-Key": f"t{n}"})
        assert answer.status_code == 201
    assert lookups == ["customer"]  # the second checkout's customer was remembered
    for n in range(2):
        headers = {**f.auth(settings, uow, staff), "Idempotency-Key": f"s{n}"}
        assert client.post(CHECKOUT, json=_body(shop), headers=headers).status_code == 403
    assert lookups == ["customer", "user", "user"]
    clock.advance(timedelta(hours=1))  # the token's hour is up
    expired = {**me, "Idempotency-Key": "late"}
    seen = _same(client, routed, _body(shop), expired)
    assert (seen[0], seen[2]["detail"]) == (401, "The bearer token has expired.")
