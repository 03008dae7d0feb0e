"""`beyondbank settlement …` on an SQLite file, as an operator runs month end."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from pathlib import Path

from sqlalchemy import Engine
from typer.testing import CliRunner

from beyondbank.core.clock import SystemClock
from beyondbank.core.uow import UnitOfWork, make_session_factory
from beyondbank.settlement import exports
from beyondbank.settlement.cli import app
from tests import factories as f
from tests.settlement import factories as sf

runner = CliRunner()


def test_month_end_from_the_command_line(cli_database: Engine, tmp_path: Path) -> None:
    # A contract from the first of the month before last: two ended periods and a running one.
    today = datetime.now(UTC).date()
    start = date(today.year - (1 if today.month <= 2 else 0), (today.month - 3) % 12 + 1, 1)
    with UnitOfWork(make_session_factory(cli_database), SystemClock()) as uow:
        merchant = f.make_merchant(uow)
        contract = sf.make_contract(uow, merchant.public_id, starts_on=start, base_share_bps=1_000)
        sf.sale(uow, contract, 10_000, at=datetime.combine(start.replace(day=10), time(12), UTC))
        uow.commit()

    opened = runner.invoke(app, ["open-due"])
    assert opened.exit_code == 0, opened.output
    assert "3 period(s) opened" in opened.output
    closed = runner.invoke(app, ["close-due"])
    assert closed.exit_code == 0, closed.output
    assert "2 period(s) to close" in closed.output
    assert "9000" in closed.output  # 10,000 less 10% commission

    out = tmp_path / "payout.xml"
    paid = runner.invoke(app, ["payout", "GBP", "--out", str(out)])
    assert paid.exit_code == 0, paid.output
    assert "1 transfer(s), 90.00 GBP" in paid.output
    assert exports.pain001_problems(out.read_bytes()) == []
    again = runner.invoke(app, ["payout", "GBP", "--out", str(tmp_path / "again.xml")])
    assert again.exit_code == 1
    assert "Nothing to pay in GBP" in again.output
    unknown = runner.invoke(app, ["close", "stp_nothing"])
    assert unknown.exit_code == 1
