"""Delivery from the outbox to a real local receiver: retries with backoff, every event once to
the receiver's application, nothing for a rolled-back change, nothing lost to a silent receiver."""

from __future__ import annotations

import time
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from beyondbank.commerce.models import (
    DeliveryStatus,
    Partner,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
)
from beyondbank.commerce.webhooks import dispatcher, service
from beyondbank.commerce.webhooks.outbox import emit
from beyondbank.core.authz import SYSTEM
from beyondbank.core.clock import FixedClock
from beyondbank.core.uow import UnitOfWork
from tests import factories as f
from tests.commerce.webhooks.receivers import Receiver, serving, silent


def register(uow: UnitOfWork, partner: Partner, url: str, types: list[str] | None = None) -> str:
    """An endpoint for the partner; its secret."""
    created = service.create_endpoint(
        uow,
        SYSTEM,
        service.EndpointIn(url=url, event_types=types or [], partner_id=partner.public_id),
        production=False,
    )
    return created.secret


def emit_orders(uow: UnitOfWork, partner: Partner, count: int) -> list[str]:
    ids = []
    for i in range(count):
        event = emit(
            uow,
            partner_id=partner.id,
            event_type="order.paid",
            data={"order_id": f"ord_{i}", "total_minor": 1_000 + i},
        )
        ids.append(event.public_id)
    uow.commit()
    return ids


def deliveries(uow: UnitOfWork) -> list[WebhookDelivery]:
    uow.session.expire_all()
    return list(uow.session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id)))


@pytest.fixture
def http() -> httpx.Client:
    with httpx.Client() as client:
        yield client  # type: ignore[misc]


def test_a_receiver_that_fails_then_recovers_gets_every_event_once(
    uow: UnitOfWork, session_factory: sessionmaker[Session], clock: FixedClock, http: httpx.Client
) -> None:
    partner = f.make_partner(uow)
    with serving(Receiver(failures=7)) as receiver:
        receiver.secret = register(uow, partner, receiver.url)
        sent = emit_orders(uow, partner, 5)
        passes = 0
        while any(d.status == DeliveryStatus.PENDING for d in deliveries(uow)):
            dispatcher.deliver_due(session_factory, clock, client=http, limit=2)
            clock.advance(timedelta(hours=11))  # past the longest backoff with its jitter
            passes += 1
            assert passes < 20
    assert sorted(receiver.accepted) == sorted(sent)
    assert set(receiver.accepted.values()) == {1}  # answered 200 once per event: no resend
    # Applied once each; not necessarily in order: a retried event may follow later ones.
    assert sorted(m["data"]["order_id"] for m in receiver.applied) == [f"ord_{i}" for i in range(5)]
    assert receiver.bad_signatures == 0
    rows = deliveries(uow)
    assert {d.status for d in rows} == {DeliveryStatus.DELIVERED}
    assert sum(d.attempts for d in rows) == 5 + 7  # each failure cost one more attempt
    assert all(d.last_status_code == 200 and d.last_error is None for d in rows)


def test_a_failed_attempt_is_retried_on_the_schedule_and_not_before(
    uow: UnitOfWork, session_factory: sessionmaker[Session], clock: FixedClock, http: httpx.Client
) -> None:
    partner = f.make_partner(uow)
    with serving(Receiver(failures=3)) as receiver:
        receiver.secret = register(uow, partner, receiver.url)
        emit_orders(uow, partner, 1)
        start = clock.now()
        counts = dispatcher.deliver_due(session_factory, clock, client=http, rng=lambda: 0.0)
        assert (counts.claimed, counts.retrying) == (1, 1)
        (row,) = deliveries(uow)
        assert (row.attempts, row.last_status_code) == (1, 500)
        assert row.last_error is not None
        assert row.last_error.startswith("HTTP 500")
        assert row.next_attempt_at == start + timedelta(seconds=5)
        clock.advance(timedelta(seconds=4))
        assert dispatcher.deliver_due(session_factory, clock, client=http).claimed == 0
        clock.advance(timedelta(seconds=1))
        dispatcher.deliver_due(session_factory, clock, client=http, rng=lambda: 0.0)
        (row,) = deliveries(uow)
        assert row.next_attempt_at == clock.now() + timedelta(minutes=5)
        assert receiver.requests == 2


def test_the_backoff_follows_the_standard_schedule_with_at_most_ten_percent_jitter() -> None:
    expected = [5, 300, 1_800, 7_200, 18_000, 36_000, 36_000]
    assert [dispatcher.backoff(n, lambda: 0.0).total_seconds() for n in range(1, 8)] == expected
    assert [dispatcher.backoff(n, lambda: 1.0).total_seconds() for n in range(1, 8)] == [
        s * 11 / 10 for s in expected
    ]
    assert dispatcher.backoff(50, lambda: 0.0) == timedelta(hours=10)  # capped


def test_after_the_last_attempt_the_delivery_is_dead_and_a_replay_sends_it_again(
    uow: UnitOfWork, session_factory: sessionmaker[Session], clock: FixedClock, http: httpx.Client
) -> None:
    partner = f.make_partner(uow)
    with serving(Receiver(failures=dispatcher.MAX_ATTEMPTS)) as receiver:
        receiver.secret = register(uow, partner, receiver.url)
        (event_id,) = emit_orders(uow, partner, 1)
        for _ in range(dispatcher.MAX_ATTEMPTS + 2):
            dispatcher.deliver_due(session_factory, clock, client=http)
            clock.advance(timedelta(hours=11))
        (row,) = deliveries(uow)
        assert (row.status, row.attempts) == (DeliveryStatus.DEAD, dispatcher.MAX_ATTEMPTS)
        assert receiver.requests == dispatcher.MAX_ATTEMPTS
        service.replay_delivery(uow, SYSTEM, row.id)
        counts = dispatcher.deliver_due(session_factory, clock, client=http)
    assert counts.delivered == 1
    assert list(receiver.accepted) == [event_id]
    (row,) = deliveries(uow)
    assert (row.status, row.attempts) == (DeliveryStatus.DELIVERED, 1)


def test_a_rolled_back_change_leaves_no_event_and_sends_nothing(
    uow: UnitOfWork, session_factory: sessionmaker[Session], clock: FixedClock, http: httpx.Client
) -> None:
    partner = f.make_partner(uow)
    with serving(Receiver(failures=0)) as receiver:
        receiver.secret = register(uow, partner, receiver.url)
        emit(uow, partner_id=partner.id, event_type="order.paid", data={"order_id": "ord_gone"})
        uow.session.flush()
        uow.rollback()  # the change it reported failed
        (kept,) = emit_orders(uow, partner, 1)
        counts = dispatcher.deliver_due(session_factory, clock, client=http)
    assert counts.delivered == 1
    assert list(receiver.accepted) == [kept]
    assert uow.session.scalar(select(func.count()).select_from(WebhookEvent)) == 1


def test_a_receiver_that_never_answers_times_out_and_loses_nothing(
    uow: UnitOfWork,
    session_factory: sessionmaker[Session],
    clock: FixedClock,
    http: httpx.Client,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(dispatcher, "TIMEOUT_SECONDS", 1.0)
    partner = f.make_partner(uow)
    with silent() as url:
        register(uow, partner, url)
        emit_orders(uow, partner, 1)
        started = time.monotonic()
        counts = dispatcher.deliver_due(session_factory, clock, client=http)
        elapsed = time.monotonic() - started
    assert elapsed < 3.0  # one timeout, not a hung worker
    assert (counts.claimed, counts.retrying) == (1, 1)
    (row,) = deliveries(uow)
    assert row.status == DeliveryStatus.PENDING
    assert row.attempts == 1
    assert row.last_status_code is None
    assert row.last_error is not None
    assert row.last_error.startswith("timed out after 1 s")
    assert row.next_attempt_at > clock.now()


def test_a_refused_connection_is_a_failed_attempt_with_its_error(
    uow: UnitOfWork, session_factory: sessionmaker[Session], clock: FixedClock, http: httpx.Client
) -> None:
    partner = f.make_partner(uow)
    with silent() as url:
        pass  # the port is closed again: nothing listens
    register(uow, partner, url)
    emit_orders(uow, partner, 1)
    counts = dispatcher.deliver_due(session_factory, clock, client=http)
    assert counts.retrying == 1
    (row,) = deliveries(uow)
    assert row.status == DeliveryStatus.PENDING
    assert row.last_error is not None
    assert "ConnectError" in row.last_error


def test_an_endpoint_gets_only_the_event_types_it_asked_for(
    uow: UnitOfWork, session_factory: sessionmaker[Session], clock: FixedClock, http: httpx.Client
) -> None:
    partner = f.make_partner(uow)
    other = f.make_partner(uow)
    with serving(Receiver(failures=0)) as tickets, serving(Receiver(failures=0)) as everything:
        tickets.secret = register(uow, partner, tickets.url, ["ticket.opened"])
        everything.secret = register(uow, partner, everything.url)
        opened = emit(uow, partner_id=partner.id, event_type="ticket.opened", data={})
        paid = emit(uow, partner_id=partner.id, event_type="order.paid", data={})
        emit(uow, partner_id=other.id, event_type="order.paid", data={})  # not this partner's
        uow.commit()
        dispatcher.deliver_due(session_factory, clock, client=http)
    assert list(tickets.accepted) == [opened.public_id]
    assert sorted(everything.accepted) == sorted([opened.public_id, paid.public_id])


def test_a_late_outcome_never_overwrites_a_newer_claim(
    uow: UnitOfWork, session_factory: sessionmaker[Session], clock: FixedClock, http: httpx.Client
) -> None:
    """A worker whose lease ran out (another worker claimed the row again) records nothing."""
    partner = f.make_partner(uow)
    with serving(Receiver(failures=0)) as receiver:
        receiver.secret = register(uow, partner, receiver.url)
        emit_orders(uow, partner, 1)
        (stale,) = dispatcher._claim(session_factory, clock, 10)
        clock.advance(dispatcher.lease_for(1, 1) + timedelta(seconds=1))
        counts = dispatcher.deliver_due(session_factory, clock, client=http)  # claims it again
        assert counts.delivered == 1
        outcome = dispatcher._send(http, stale, clock)
        assert dispatcher._record(session_factory, clock, stale, outcome, lambda: 0.0) is None
    (row,) = deliveries(uow)
    assert (row.status, row.attempts) == (DeliveryStatus.DELIVERED, 2)
    assert list(receiver.accepted.values()) == [2]  # at least once: the receiver deduped it


def test_a_deactivated_endpoint_is_sent_nothing_more(
    uow: UnitOfWork, session_factory: sessionmaker[Session], clock: FixedClock, http: httpx.Client
) -> None:
    partner = f.make_partner(uow)
    with serving(Receiver(failures=0)) as receiver:
        receiver.secret = register(uow, partner, receiver.url)
        emit_orders(uow, partner, 2)
        endpoint = uow.session.scalars(select(WebhookEndpoint)).one()
        service.deactivate_endpoint(uow, SYSTEM, endpoint.public_id)
        emit_orders(uow, partner, 1)  # no active endpoint: an event, no delivery
        counts = dispatcher.deliver_due(session_factory, clock, client=http)
    assert counts.claimed == 0
    assert receiver.requests == 0
    rows = deliveries(uow)
    assert [(d.status, d.last_error) for d in rows] == [
        (DeliveryStatus.DEAD, "endpoint deactivated")
    ] * 2


def test_a_pass_holds_its_claims_until_every_send_could_have_timed_out(
    uow: UnitOfWork, session_factory: sessionmaker[Session], clock: FixedClock
) -> None:
    """Ten claims sent one at a time may take ten timeouts: none goes to another worker before."""
    partner = f.make_partner(uow)
    register(uow, partner, "https://partner.example/hooks")
    emit_orders(uow, partner, 10)
    start = clock.now()
    assert len(dispatcher._claim(session_factory, clock, 10, 1)) == 10
    lease = dispatcher.lease_for(10, 1)
    assert lease >= timedelta(seconds=10 * 2 * dispatcher.TIMEOUT_SECONDS)
    assert {d.next_attempt_at for d in deliveries(uow)} == {start + lease}
    clock.advance(lease - timedelta(seconds=1))
    assert dispatcher._claim(session_factory, clock, 10, 1) == []
    assert dispatcher.lease_for(10, 5) < lease  # sent five at a time: a shorter pass
