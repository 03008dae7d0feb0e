"""`beyondbank payments expire`: the sweep an operator schedules releases stale holds."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import Engine
from typer.testing import CliRunner

from beyondbank.cli import app
from beyondbank.core.clock import FixedClock, SystemClock
from beyondbank.core.uow import UnitOfWork, make_session_factory
from beyondbank.payments.bankcore import BankCoreGateway
from beyondbank.payments.models import Payment
from tests import factories as f
from tests.payments import factories as pf


def test_expire_releases_authorisations_past_their_time(cli_database: Engine) -> None:
    factory = make_session_factory(cli_database)
    long_ago = FixedClock(SystemClock().now() - timedelta(days=8))
    with UnitOfWork(factory, long_ago) as uow:
        account = pf.make_account(uow, opening=5_000)
        merchant = f.make_merchant(uow)
        uow.commit()
    gateway = BankCoreGateway(factory, long_ago)
    stale = gateway.authorise(pf.request(account, merchant, 1_200), key="stale")
    gateway_now = BankCoreGateway(factory, SystemClock())
    fresh = gateway_now.authorise(pf.request(account, merchant, 800), key="fresh")

    result = CliRunner().invoke(app, ["payments", "expire"])

    assert result.exit_code == 0, result.output
    assert f"expired {stale.payment.id}" in result.output
    assert "1 authorisation(s) expired" in result.output
    with UnitOfWork(factory, SystemClock()) as uow:
        statuses = dict(uow.session.query(Payment.public_id, Payment.status).all())
        assert statuses[stale.payment.id].value == "expired"
        assert statuses[fresh.payment.id].value == "authorised"
        assert pf.deposit_figures(uow, account).available == 5_000 - 800
