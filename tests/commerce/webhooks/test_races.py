"""Workers racing on PostgreSQL: SKIP LOCKED gives each due delivery to exactly one of them."""

from __future__ import annotations

import httpx
from sqlalchemy import Engine, select

from beyondbank.commerce.models import DeliveryStatus, WebhookDelivery
from beyondbank.commerce.webhooks import dispatcher
from beyondbank.core.clock import FixedClock
from beyondbank.core.uow import UnitOfWork, make_session_factory
from tests import factories as f
from tests.commerce.webhooks.receivers import Receiver, serving
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
