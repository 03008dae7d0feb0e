"""`beyondbank shop deliver-webhooks`: the worker that sends partner webhooks from the outbox."""

from __future__ import annotations

import time
from typing import Annotated

import httpx
import typer
from rich.console import Console
from rich.table import Table

from beyondbank.commerce.webhooks import dispatcher
from beyondbank.core.clock import SystemClock
from beyondbank.core.db import make_engine
from beyondbank.core.settings import get_settings
from beyondbank.core.uow import make_session_factory

# Merged into `beyondbank shop` by cli.py, beside the other shop areas' commands.
app = typer.Typer(help="Partner webhooks.", no_args_is_help=True)
console = Console()


@app.command("deliver-webhooks")
def deliver_webhooks(
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="At most this many a pass.")] = 100,
    loop: Annotated[
        bool, typer.Option("--loop", help="Keep going: a pass, then a pause when idle.")
    ] = False,
    concurrency: Annotated[
        int, typer.Option(min=1, max=64, help="Deliveries sent at a time within a pass.")
    ] = 8,
    interval: Annotated[
        float, typer.Option(min=0.1, help="Seconds to wait when nothing was due (with --loop).")
    ] = 2.0,
) -> None:
    """Send the partner webhooks that are due, once (or forever with --loop; Ctrl+C stops).

    Several workers may run at once: each claims different deliveries."""
    engine = make_engine(get_settings().database_url)
    session_factory = make_session_factory(engine)
    clock = SystemClock()
    table = Table("claimed", "delivered", "retrying", "dead", "lost claims", title="webhooks")
    try:
        with httpx.Client() as client:
            while True:
                counts = dispatcher.deliver_due(
                    session_factory, clock, client=client, limit=limit, concurrency=concurrency
                )
                if counts.claimed or not loop:
                    table.add_row(
                        str(counts.claimed),
                        f"[green]{counts.delivered}[/green]",
                        f"[yellow]{counts.retrying}[/yellow]",
                        f"[red]{counts.dead}[/red]",
                        str(counts.lost_claims),
                    )
                if not loop:
                    console.print(table)
                    with session_factory() as session:
                        console.print(f"{dispatcher.due_count(session, clock.now())} still due")
                    break
                if counts.claimed:
                    console.print(table)
                    table = Table(
                        "claimed", "delivered", "retrying", "dead", "lost claims", title="webhooks"
                    )
                # A full pass means more may be waiting: go again at once.
                if counts.claimed < limit:
                    time.sleep(interval)
    except KeyboardInterrupt:
        console.print("stopped")
    finally:
        engine.dispose()
