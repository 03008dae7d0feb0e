"""Workers racing on PostgreSQL: SKIP LOCKED gives each due delivery to exactly one of them."""

from __future__ import annotations

import time

import httpx
import pytest
from sqlalchemy import Engine, select

from beyondbank.commerce.models import DeliveryStatus, WebhookDelivery
from beyondbank.commerce.webhooks import dispatcher
from beyondbank.core.clock import FixedClock
from beyondbank.core.uow import UnitOfWork, make_session_factory
from tests import factories as f
from tests.commerce.webhooks.receivers import Receiver, serving, silent
from tests.commerce.webhooks.test_dispatcher import emit_orders, register
from tests.conftest import T0
from tests.races import together

WORKERS = 6
EVENTS = 60


def test_concurrent_workers_send_each_delivery_once(committing_engine: Engine) -> None:
    clock = FixedClock(T0)
    session_factory = make_session_factory(committing_engine)
    with serving(Receiver(failures=0)) as receiver:
        with UnitOfWork(session_factory, clock) as uow:
            partner = f.make_partner(uow)
            receiver.secret = register(uow, partner, receiver.url)
            sent = emit_orders(uow, partner, EVENTS)

        def work(_: int) -> int:
            with httpx.Client() as client:
                return dispatcher.deliver_due(
                    session_factory, clock, client=client, limit=7
                ).claimed

        claimed = 0
        while claimed < EVENTS:
            results = together(WORKERS, work)
            assert all(isinstance(r, int) for r in results)
            round_claimed = sum(r for r in results if isinstance(r, int))
            assert round_claimed > 0
            claimed += round_claimed
    assert claimed == EVENTS  # no row claimed by two workers
    assert sorted(receiver.accepted) == sorted(sent)
    assert set(receiver.accepted.values()) == {1}
    assert receiver.requests == EVENTS
    with session_factory() as session:
        statuses = session.scalars(select(WebhookDelivery.status)).all()
    assert statuses == [DeliveryStatus.DELIVERED] * EVENTS


def test_a_pass_sends_concurrently_so_silent_receivers_cost_one_timeout(
    committing_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dispatcher, "TIMEOUT_SECONDS", 1.0)
    clock = FixedClock(T0)
    session_factory = make_session_factory(committing_engine)
    with silent() as url:
        with UnitOfWork(session_factory, clock) as uow:
            partner = f.make_partner(uow)
            register(uow, partner, url)
            emit_orders(uow, partner, 8)
        started = time.monotonic()
        with httpx.Client() as client:
            counts = dispatcher.deliver_due(
                session_factory, clock, client=client, limit=8, concurrency=8
            )
        elapsed = time.monotonic() - started
    assert (counts.claimed, counts.retrying) == (8, 8)
    assert elapsed < 4.0  # eight timeouts at once, not one after another (8 s)
    with session_factory() as session:
        errors = set(session.scalars(select(WebhookDelivery.last_error)))
    assert errors == {"timed out after 1 s (ReadTimeout)"}
