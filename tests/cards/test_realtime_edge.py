"""The event endpoints' edge (`cards.api.CardEventEdge`): it answers a well-formed event in front
of the router, with the same checks and answers as the routes (the caller's token and scope,
RFC 9457 problems, the request id and the security headers), and leaves the rest to the routes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from beyondbank.cards import api as cards_api
from beyondbank.core.settings import Settings
from beyondbank.core.uow import UnitOfWork
from tests import factories as f
from tests.cards import factories as cf

EVENTS = "/api/v1/cards/events"
LINKED = datetime(2026, 11, 1, tzinfo=UTC)
AT = datetime(2026, 11, 22, 9, 41, 7, tzinfo=UTC)


@pytest.fixture
def switch(uow: UnitOfWork, settings: Settings) -> dict[str, str]:
    return f.auth(settings, uow, f.make_client(uow, ["cards:ingest"]))


@pytest.fixture
def routes_unused(monkeypatch: pytest.MonkeyPatch) -> None:
    """The routes' own handler fails the test if it is reached."""

    async def reached(*_args: Any) -> None:
        raise AssertionError("the route answered, not the edge")

    monkeypatch.setattr(cards_api, "_process", reached)


def _event(p: cf.Programme, txn_id: str, **over: Any) -> dict[str, Any]:
    row = cf.feed_row(p, txn_id, AT, 4_000)
    return {**row, "amount_minor": 4_000, "original_txn_id": None, **over}


def _assert_edge_headers(response: Any) -> None:
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "same-origin"
    assert response.headers["X-Request-ID"]


@pytest.mark.usefixtures("routes_unused")
def test_the_edge_answers_an_event_with_the_usual_headers(
    client: TestClient, uow: UnitOfWork, switch: dict[str, str]
) -> None:
    p = cf.programme(uow, LINKED)
    response = client.post(
        EVENTS, json=_event(p, "edge-1"), headers={**switch, "X-Request-ID": "switch-42"}
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.headers["X-Request-ID"] == "switch-42"
    _assert_edge_headers(response)
    assert response.json()["status"] == "rewarded"


@pytest.mark.usefixtures("routes_unused")
@pytest.mark.parametrize(
    ("headers", "status", "slug"),
    [
        ({}, 401, "unauthenticated"),
        ({"Authorization": "Basic abc"}, 401, "unauthenticated"),
        ({"Authorization": "Bearer not.a.token"}, 401, "unauthenticated"),
    ],
)
def test_the_edge_refuses_an_unauthenticated_caller_with_a_problem(
    client: TestClient, uow: UnitOfWork, headers: dict[str, str], status: int, slug: str
) -> None:
    p = cf.programme(uow, LINKED)
    response = client.post(EVENTS, json=_event(p, "edge-2"), headers=headers)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["WWW-Authenticate"] == "Bearer"
    body = response.json()
    assert (body["type"], body["status"], body["instance"]) == (f"/problems/{slug}", status, EVENTS)
    _assert_edge_headers(response)


@pytest.mark.usefixtures("routes_unused")
def test_the_edge_checks_the_scope(client: TestClient, uow: UnitOfWork, settings: Settings) -> None:
    p = cf.programme(uow, LINKED)
    reader = f.auth(settings, uow, f.make_client(uow, ["cards:read"]))
    response = client.post(EVENTS, json=_event(p, "edge-3"), headers=reader)
    assert response.status_code == 403
    assert response.json()["type"] == "/problems/forbidden"
    assert "cards:ingest" in response.json()["detail"]
    _assert_edge_headers(response)


@pytest.mark.usefixtures("routes_unused")
def test_the_edge_answers_a_broken_rule_in_the_callers_language(
    client: TestClient, uow: UnitOfWork, switch: dict[str, str]
) -> None:
    p = cf.programme(uow, LINKED)
    response = client.post(
        EVENTS,
        json=_event(p, "edge-4", currency="XXY"),
        headers={**switch, "Accept-Language": "zh-CN"},
    )
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["title"] == "请求中有无效字段"
    _assert_edge_headers(response)


def test_a_body_that_is_not_an_event_gets_the_routes_answer(
    client: TestClient, uow: UnitOfWork, switch: dict[str, str]
) -> None:
    # Replayed to the route: FastAPI's validation names the fields, as before the edge.
    p = cf.programme(uow, LINKED)
    event = _event(p, "edge-5", amount_minor="forty")
    response = client.post(EVENTS, json=event, headers=switch)
    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == ["body.amount_minor"]
    not_json = client.post(
        EVENTS, content=b"{", headers={**switch, "Content-Type": "application/json"}
    )
    assert not_json.status_code == 422
    assert not_json.json()["type"] == "/problems/invalid-input"
    _assert_edge_headers(not_json)


def test_an_unauthenticated_bad_body_is_refused_for_the_caller_first(
    client: TestClient,
) -> None:
    response = client.post(EVENTS, json={"txn_id": ""})
    assert response.status_code == 401


def test_what_the_edge_does_not_answer_goes_to_the_routes(
    client: TestClient, uow: UnitOfWork, switch: dict[str, str]
) -> None:
    assert client.get(EVENTS, headers=switch).status_code == 405
    p = cf.programme(uow, LINKED)
    as_text = client.post(
        EVENTS,
        content=str(_event(p, "edge-6")).encode(),
        headers={**switch, "Content-Type": "text/plain"},
    )
    assert as_text.status_code == 422
    assert as_text.headers["content-type"] == "application/problem+json"
