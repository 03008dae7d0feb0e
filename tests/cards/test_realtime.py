"""The real-time path: a JSON event or an ISO 8583 message is matched, recorded and posted in the
request, counts once ever (a clearing file's row for it is skipped), and bad input writes nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import iso8583
import pytest
from fastapi.testclient import TestClient
from iso8583.specs import default_ascii
from sqlalchemy import func, select

from beyondbank.cards import realtime, service
from beyondbank.cards.descriptors import acceptor_field
from beyondbank.cards.models import CardReward, CardTransaction
from beyondbank.core.authz import Role
from beyondbank.core.clock import FixedClock
from beyondbank.core.money import Money
from beyondbank.core.settings import Settings
from beyondbank.core.uow import UnitOfWork
from beyondbank.ledger import chart
from beyondbank.ledger import service as ledger
from tests import factories as f
from tests.cards import factories as cf

API = "/api/v1"
LINKED = datetime(2026, 11, 1, tzinfo=UTC)
AT = datetime(2026, 11, 22, 9, 41, 7, tzinfo=UTC)  # just before the test clock's 10:00


@pytest.fixture
def switch(uow: UnitOfWork, settings: Settings) -> dict[str, str]:
    """The bank's card switch: a partner system allowed to send card events."""
    return f.auth(settings, uow, f.make_client(uow, ["cards:ingest"]))


def _event(p: cf.Programme, txn_id: str, amount: int = 4_000, **over: Any) -> dict[str, Any]:
    row = cf.feed_row(p, txn_id, AT, amount)
    return {
        **row,
        "amount_minor": amount,
        "original_txn_id": row["original_txn_id"] or None,
        **over,
    }


def _seen(uow: UnitOfWork) -> int:
    return uow.session.scalar(select(func.count()).select_from(CardTransaction)) or 0


def test_an_event_earns_its_reward_within_the_request(
    client: TestClient, uow: UnitOfWork, switch: dict[str, str]
) -> None:
    p = cf.programme(uow, LINKED)

    response = client.post(f"{API}/cards/events", json=_event(p, "rt-1"), headers=switch)

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "rewarded"
    assert body["message"] == "You just earned £8.00 cashback at Harbour Noodle Bar."
    [reward] = body["rewards"]
    assert (reward["amount_minor"], reward["merchant_funded_minor"]) == (800, 480)
    assert reward["posted"] is True
    cashback = chart.member_cashback(uow, p.member.public_id, "GBP")
    assert ledger.balance(uow, cashback).posted == Money(800, "GBP")


def test_an_event_counts_once_ever(
    client: TestClient, uow: UnitOfWork, switch: dict[str, str], tmp_path: Path
) -> None:
    p = cf.programme(uow, LINKED)
    client.post(f"{API}/cards/events", json=_event(p, "rt-1"), headers=switch)

    again = client.post(f"{API}/cards/events", json=_event(p, "rt-1"), headers=switch)
    assert again.json()["status"] == "already_seen"
    # The clearing file that follows names it again: skipped as seen, not rewarded twice.
    feed = cf.write_csv(tmp_path / "clearing.csv", [cf.feed_row(p, "rt-1", AT, 4_000)])
    run = service.run_file(uow, feed, out_dir=tmp_path)
    assert (run.already_seen, run.rewards) == (1, 0)
    assert uow.session.scalar(select(func.count()).select_from(CardReward)) == 1


def test_a_card_without_a_member_is_seen_but_not_rewarded(
    client: TestClient, uow: UnitOfWork, switch: dict[str, str]
) -> None:
    p = cf.programme(uow, LINKED)
    response = client.post(
        f"{API}/cards/events", json=_event(p, "rt-2", card_token="tok_stranger"), headers=switch
    )
    assert response.json()["status"] == "no_reward"
    assert response.json()["message"] is None
    assert _seen(uow) == 1


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"currency": "XXY"}, "unknown currency"),
        ({"amount_minor": -5}, "amount_minor is negative"),
        ({"type": "purchase", "original_txn_id": "t-0"}, "purchase with an original_txn_id"),
        ({"txn_time": "2026-11-22 09:41"}, "txn_time"),
        ({"type": "refund", "original_txn_id": "never-seen"}, "refund without its original"),
    ],
)
def test_a_bad_event_is_refused_and_writes_nothing(
    client: TestClient,
    uow: UnitOfWork,
    switch: dict[str, str],
    change: dict[str, Any],
    reason: str,
) -> None:
    p = cf.programme(uow, LINKED)
    response = client.post(f"{API}/cards/events", json=_event(p, "rt-3", **change), headers=switch)
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    assert reason in response.json()["detail"]
    assert _seen(uow) == 0


def test_a_float_amount_is_refused(
    client: TestClient, uow: UnitOfWork, switch: dict[str, str]
) -> None:
    p = cf.programme(uow, LINKED)
    response = client.post(
        f"{API}/cards/events", json=_event(p, "rt-4", amount_minor=40.5), headers=switch
    )
    assert response.status_code == 422
    assert _seen(uow) == 0


# -- ISO 8583 ----------------------------------------------------------------------------------


def _iso(p: cf.Programme, rrn: str, **over: str) -> bytes:
    location = p.merchant.locations[0]
    message = {
        "t": "0100",
        "2": p.token,
        "3": "000000",
        "4": "000000004000",
        "7": AT.strftime("%m%d%H%M%S"),
        "11": "000123",
        "18": p.merchant.mcc,
        "37": rrn,
        "41": p.terminal.terminal_id or "",
        "42": p.terminal.acquirer_merchant_id.ljust(15),
        "43": acceptor_field(p.merchant.trading_name, location.city, "GB"),
        "49": "826",
        **over,
    }
    raw, _ = iso8583.encode({k: v for k, v in message.items() if v is not None}, default_ascii)
    return bytes(raw)


def test_an_iso8583_authorisation_earns_its_reward(
    client: TestClient, uow: UnitOfWork, switch: dict[str, str], clock: FixedClock
) -> None:
    p = cf.programme(uow, LINKED)

    response = client.post(
        f"{API}/cards/iso8583",
        content=_iso(p, "123456789012"),
        headers={**switch, "Content-Type": "application/octet-stream"},
    )

    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["txn_id"], body["status"]) == ("123456789012", "rewarded")
    assert body["rewards"][0]["amount_minor"] == 800
    assert body["rewards"][0]["txn_time"].startswith("2026-11-22T09:41:07")


@pytest.mark.parametrize(
    ("over", "element"),
    [
        ({"3": "200000"}, "3"),  # a refund: it comes with the clearing file
        ({"49": "000"}, "49"),
        ({"t": "0400"}, "t"),
    ],
)
def test_an_unusable_iso8583_message_names_its_data_element(
    client: TestClient, uow: UnitOfWork, switch: dict[str, str], over: dict[str, str], element: str
) -> None:
    p = cf.programme(uow, LINKED)
    response = client.post(
        f"{API}/cards/iso8583",
        content=_iso(p, "123456789013", **over),
        headers={**switch, "Content-Type": "application/octet-stream"},
    )
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == element
    assert _seen(uow) == 0


def test_garbage_is_not_a_message(
    client: TestClient, uow: UnitOfWork, switch: dict[str, str]
) -> None:
    response = client.post(
        f"{API}/cards/iso8583",
        content=b"\x00\x01hello",
        headers={**switch, "Content-Type": "application/octet-stream"},
    )
    assert response.status_code == 422
    assert "ISO 8583" in response.json()["detail"]


def test_the_event_path_rejects_a_merchant_bound_system(
    client: TestClient, uow: UnitOfWork, settings: Settings
) -> None:
    p = cf.programme(uow, LINKED)
    merchants_system = f.auth(settings, uow, f.make_client(uow, ["cards:ingest"], p.merchant))
    response = client.post(f"{API}/cards/events", json=_event(p, "rt-9"), headers=merchants_system)
    assert response.status_code == 403
    assert _seen(uow) == 0


def test_a_deactivated_switch_is_refused_once_its_check_is_due(
    client: TestClient, uow: UnitOfWork, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The event endpoints check a caller's account at most every Callers.TTL_SECONDS per process
    # (its token on every request): a deactivation takes effect within that time.
    p = cf.programme(uow, LINKED)
    system = f.make_client(uow, ["cards:ingest"])
    headers = f.auth(settings, uow, system)
    assert client.post(f"{API}/cards/events", json=_event(p, "rt-10"), headers=headers).is_success
    system.active = False
    uow.session.flush()
    within = client.post(f"{API}/cards/events", json=_event(p, "rt-11"), headers=headers)
    assert within.status_code == 200
    monkeypatch.setattr(realtime.Callers, "TTL_SECONDS", 0.0)
    after = client.post(f"{API}/cards/events", json=_event(p, "rt-12"), headers=headers)
    assert after.status_code == 401
    assert _seen(uow) == 2
    bad = client.post(
        f"{API}/cards/events", json=_event(p, "rt-13"), headers={"Authorization": "Bearer x.y.z"}
    )
    assert bad.status_code == 401


def test_a_token_verified_once_is_still_refused_once_it_expires(
    client: TestClient, uow: UnitOfWork, settings: Settings, clock: FixedClock
) -> None:
    # The event endpoints verify a token's signature the first time they see it and its expiry
    # every time: a token they remember is refused as expired like any other.
    p = cf.programme(uow, LINKED)
    headers = f.auth(settings, uow, f.make_client(uow, ["cards:ingest"]))
    assert client.post(f"{API}/cards/events", json=_event(p, "rt-20"), headers=headers).is_success
    clock.advance(timedelta(seconds=settings.access_token_ttl_seconds))
    expired = client.post(f"{API}/cards/events", json=_event(p, "rt-21"), headers=headers)
    assert expired.status_code == 401
    assert expired.headers["content-type"] == "application/problem+json"
    assert "expired" in expired.json()["detail"]
    assert _seen(uow) == 1


def test_the_days_run_counts_the_events_when_read_through_the_api(
    client: TestClient, uow: UnitOfWork, settings: Settings, switch: dict[str, str]
) -> None:
    # On PostgreSQL the batches count into tally rows, not the run's row: the API adds them.
    p = cf.programme(uow, LINKED)
    for txn_id in ("rt-30", "rt-31"):
        assert client.post(f"{API}/cards/events", json=_event(p, txn_id), headers=switch).is_success
    staff = f.auth(settings, uow, f.make_user(uow, Role.BANK_ADMIN))
    [listed] = client.get(f"{API}/cards/runs", headers=staff).json()["items"]
    one = client.get(f"{API}/cards/runs/{listed['id']}", headers=staff).json()
    for run in (listed, one):
        assert (run["rows_read"], run["accepted"], run["matched"], run["rewards"]) == (2, 2, 2, 2)
