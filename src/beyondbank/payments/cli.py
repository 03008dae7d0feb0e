"""`beyondbank payments …`: operator commands for the bank core adapter."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from beyondbank.core.clock import SystemClock
from beyondbank.core.db import make_engine
from beyondbank.core.settings import get_settings
from beyondbank.core.uow import make_session_factory
from beyondbank.payments.bankcore import BankCoreGateway

app = typer.Typer(help="Payments through the bank core.", no_args_is_help=True)
console = Console()


@app.command("expire")
def expire(
    limit: Annotated[int, typer.Option(min=1, help="At most this many per run.")] = 1000,
) -> None:
    """Expire authorisations not captured in time, releasing their holds (run it on a schedule)."""
    settings = get_settings()
    engine = make_engine(settings.database_url)
    try:
        gateway = BankCoreGateway(
            make_session_factory(engine), SystemClock(), timezone=settings.default_timezone
        )
        expired = gateway.expire_due(limit=limit)
    finally:
        engine.dispose()
    for payment_id in expired:
        console.print(f"expired {payment_id}")
    console.print(f"{len(expired)} authorisation(s) expired")
