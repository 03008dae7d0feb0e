"""`beyondbank shop deliver-webhooks`: the worker sends what is due to a real receiver and says so."""

from __future__ import annotations

from sqlalchemy import Engine, select
from typer.testing import CliRunner

from beyondbank.cli import app
from beyondbank.commerce.models import DeliveryStatus, WebhookDelivery
from beyondbank.commerce.webhooks.outbox import emit
from beyondbank.core.clock import SystemClock
from beyondbank.core.uow import UnitOfWork, make_session_factory
from tests import factories as f
from tests.commerce.webhooks.receivers import Receiver, serving
from tests.commerce.webhooks.test_dispatcher import register


def test_one_pass_delivers_what_is_due_and_counts_it(cli_database: Engine) -> None:
    factory = make_session_factory(cli_database)
    with serving(Receiver(failures=1)) as receiver:
        with UnitOfWork(factory, SystemClock()) as uow:
            partner = f.make_partner(uow)
            receiver.secret = register(uow, partner, receiver.url)
            sent = [
                emit(uow, partner_id=partner.id, event_type="order.paid", data={"n": i}).public_id
                for i in range(3)
            ]
            uow.commit()
        result = CliRunner().invoke(app, ["shop", "deliver-webhooks", "--limit", "10"])
    assert result.exit_code == 0, result.output
    assert "webhooks" in result.output
    assert "0 still due" in result.output  # the failed one waits 5 s for its retry
    assert len(receiver.accepted) == 2
    assert set(receiver.accepted) < set(sent)
    with factory() as session:
        statuses = sorted(s.value for s in session.scalars(select(WebhookDelivery.status)))
    assert statuses == [DeliveryStatus.DELIVERED.value] * 2 + [DeliveryStatus.PENDING.value]
