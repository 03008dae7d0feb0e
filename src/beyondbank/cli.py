"""The `beyondbank` command: database, serving, demo, program import, and operator tools."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
import uvicorn
from rich.console import Console

from beyondbank import schema
from beyondbank.cards import cli as cards_cli
from beyondbank.commerce.catalog import cli as catalog_cli
from beyondbank.commerce.groupbuy import cli as groupbuy_cli
from beyondbank.commerce.orders import cli as orders_cli
from beyondbank.commerce.webhooks import cli as webhooks_cli
from beyondbank.core.authz import SYSTEM, Role
from beyondbank.core.clock import SystemClock
from beyondbank.core.db import is_sqlite, make_engine
from beyondbank.core.settings import get_settings
from beyondbank.core.uow import UnitOfWork, make_session_factory
from beyondbank.ledger import cli as ledger_cli
from beyondbank.payments import cli as payments_cli
from beyondbank.settlement import cli as settlement_cli

app = typer.Typer(help="beyondbank: a bank's partner ecosystem platform.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
sso_app = typer.Typer(help="Single sign-on from the bank's app.", no_args_is_help=True)
users_app = typer.Typer(help="Staff and merchant users.", no_args_is_help=True)
translations_app = typer.Typer(help="The pages' en and zh_CN catalogs.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(sso_app, name="sso")
app.add_typer(users_app, name="users")
app.add_typer(translations_app, name="translations")
app.add_typer(ledger_cli.app, name="ledger")
app.add_typer(payments_cli.app, name="payments")
app.add_typer(settlement_cli.app, name="settlement")
app.add_typer(cards_cli.app, name="cards")


def _shop_group() -> typer.Typer:
    """The `shop` group (the last one registered, which is the one Typer serves): the shop's
    areas each merge their commands into it rather than register a `shop` of their own."""
    for group in reversed(app.registered_groups):
        if group.name == "shop" and group.typer_instance is not None:
            return group.typer_instance
    shop = typer.Typer(help="The partner shop.", no_args_is_help=True)
    app.add_typer(shop, name="shop")
    return shop


_shop_group().add_typer(catalog_cli.app)
_shop_group().add_typer(groupbuy_cli.app)
_shop_group().add_typer(orders_cli.app)
_shop_group().add_typer(webhooks_cli.app)

console = Console()
err = Console(stderr=True)

Host = Annotated[str, typer.Option(help="Interface to listen on.")]
Port = Annotated[int, typer.Option(help="Port to listen on.")]


def _ensure_sqlite_dir(url: str) -> None:
    if is_sqlite(url) and ":memory:" not in url:
        Path(url.split("///", 1)[1]).parent.mkdir(parents=True, exist_ok=True)


@db_app.command("upgrade")
def db_upgrade(revision: str = "head") -> None:
    """Migrate the database named by BEYONDBANK_DATABASE_URL to the newest schema."""
    settings = get_settings()
    _ensure_sqlite_dir(settings.database_url)
    engine = make_engine(settings.database_url)
    before = schema.current_revision(engine)
    schema.upgrade(engine, revision)
    after = schema.current_revision(engine)
    console.print(
        f"database {engine.url.render_as_string(hide_password=True)}: {before or 'empty'} → {after}"
    )
    engine.dispose()


@db_app.command("check")
def db_check() -> None:
    """Exit 1 if the database's schema differs from the models (migrations missing or not applied)."""
    engine = make_engine(get_settings().database_url)
    with engine.connect() as connection:
        differences = schema.drift(connection)
    engine.dispose()
    if differences:
        for difference in differences:
            err.print(f"drift: {difference}")
        raise typer.Exit(1)
    console.print("models and database agree")


@app.command()
def serve(host: Host = "127.0.0.1", port: Port = 8000) -> None:
    """Serve the API and the web pages (the database must be migrated)."""
    from beyondbank.api import create_app

    uvicorn.run(create_app(), host=host, port=port, log_level="info")


@app.command()
def demo(
    host: Host = "127.0.0.1",
    port: Port = 8000,
    members: Annotated[int, typer.Option(min=1, help="How many members to create.")] = 3000,
    seed: Annotated[int, typer.Option(help="Seed of the generated data.")] = 2026,
) -> None:
    """Create (or recreate) the demo in ./var/demo.db, print each role's login, and serve it."""
    from beyondbank.api import create_app
    from beyondbank.demo import console as demo_console
    from beyondbank.demo import setup as demo_setup
    from beyondbank.program.console import RichProgress, progress_bar

    directory = Path.cwd() / "var"
    settings = demo_setup.demo_settings(directory)
    with progress_bar(console) as bar:
        reporter = RichProgress(bar, bar.add_task("creating the database", total=None))
        built = demo_setup.build_demo(
            directory,
            settings=settings,
            clock=SystemClock(),
            members=members,
            seed=seed,
            progress=reporter,
        )
    demo_console.print_welcome(console, built, host=host, port=port)
    uvicorn.run(create_app(settings), host=host, port=port, log_level="info")


@app.command("import")
def import_file(
    file: Annotated[Path, typer.Argument(help="The program file: YAML (.yaml, .yml) or JSON.")],
    check: Annotated[
        bool, typer.Option("--check", help="Validate the file only; write nothing.")
    ] = False,
) -> None:
    """Import a programme (branches, circles, merchants, members, benefits) from one file:
    all of it, or nothing. The format is docs/import-format.md."""
    from beyondbank.program import console as program_console

    settings = get_settings()
    _ensure_sqlite_dir(settings.database_url)
    engine = make_engine(settings.database_url)
    try:
        if schema.current_revision(engine) is None:
            err.print("The database is not migrated yet: run `beyondbank db upgrade` first.")
            raise typer.Exit(1)
        ok = program_console.run_import(
            engine,
            file,
            settings=settings,
            clock=SystemClock(),
            check_only=check,
            out=console,
            err=err,
        )
    finally:
        engine.dispose()
    if not ok:
        raise typer.Exit(1)


@sso_app.command("token")
def sso_token(
    customer: Annotated[str, typer.Option(help="The bank's customer reference.")],
    name: Annotated[str | None, typer.Option(help="Display name.")] = None,
    minutes: Annotated[int, typer.Option(help="Lifetime in minutes.")] = 5,
) -> None:
    """Issue a sign-on token for a customer, signed with the demo bank app's key."""
    from datetime import timedelta

    from beyondbank.demo.sso import issue_demo_sso_token

    token = issue_demo_sso_token(
        get_settings(),
        customer_ref=customer,
        name=name,
        now=SystemClock().now(),
        lifetime=timedelta(minutes=minutes),
    )
    console.print(token, soft_wrap=True)


@users_app.command("create")
def users_create(
    email: str,
    role: Role,
    name: Annotated[str, typer.Option(help="Full name.")],
    password: Annotated[str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True)],
) -> None:
    """Create a bank staff user (the first bank_admin, typically)."""
    from beyondbank.identity import service as identity

    settings = get_settings()
    engine = make_engine(settings.database_url)
    with UnitOfWork(make_session_factory(engine), SystemClock()) as uow:
        user = identity.create_user(
            uow, SYSTEM, email=email, name=name, role=role, merchant_id=None, password=password
        )
        console.print(f"created {user.role.value} {user.email} ({user.public_id})")
    engine.dispose()


if __name__ == "__main__":
    app()


@translations_app.command("update")
def translations_update() -> None:
    """Extract every marked string into the catalogs (English filled in as it is written)."""
    from beyondbank.web import translations

    missing = translations.update()
    for language, count in missing.items():
        console.print(f"{language}: {count} string(s) to translate")


@translations_app.command("check")
def translations_check() -> None:
    """Fail when a catalog lacks a string the pages show, or mangles its placeholders."""
    from beyondbank.web import translations

    gaps = translations.check()
    for gap in gaps[:50]:
        err.print(f"{gap.language}: {gap.msgid!r}: {gap.reason}")
    if gaps:
        err.print(f"{len(gaps)} gap(s) in the catalogs; run `beyondbank translations update`")
        raise typer.Exit(1)
    console.print("Every catalog is complete.")
