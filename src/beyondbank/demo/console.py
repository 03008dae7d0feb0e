"""What `beyondbank demo` prints: where the platform is, and how to sign in as each role."""

from __future__ import annotations

from rich import box
from rich.console import Console
from rich.panel import Panel
from rich.table import Table

from beyondbank.demo.setup import Demo


def print_welcome(console: Console, demo: Demo, *, host: str, port: int) -> None:
    url = f"http://{host}:{port}"
    counts = demo.counts
    console.print(
        Panel.fit(
            f"[bold]Thames & Harbour Bank[/] alliance demo at [link={url}]{url}[/link]\n"
            f"{counts.get('merchants', 0)} merchants in {counts.get('circles', 0)} circles, "
            f"{counts.get('members', 0):,} members, {counts.get('benefits', 0)} benefits, "
            f"{counts.get('redemptions', 0)} redemptions; created in {demo.seconds:.1f} s",
            title="beyondbank demo",
        )
    )
    table = Table(box=box.SIMPLE_HEAD, title_justify="left", pad_edge=False)
    table.title = f"Sign in at {url}/login with the password {demo.password}"
    table.add_column("role", no_wrap=True)
    # Emails are what people copy: never cut or wrapped, whatever the terminal's width.
    table.add_column("email", no_wrap=True, min_width=max(len(x.email) for x in demo.logins))
    table.add_column("who")
    for login in demo.logins:
        who = f"{login.name}, {login.merchant}" if login.merchant else login.name
        if login.role.startswith("partner_"):
            who += " (API only: POST /api/v1/auth/token)"
        table.add_row(login.role, login.email, who)
    console.print(table)
    lines = (
        f"Customers: {url}/demo/bank-app stands in for the bank's app and signs in "
        f"{demo.customer_name} ({demo.customer_ref}) by single sign-on.",
        f"  A sign-on token of your own: beyondbank sso token --customer {demo.customer_ref} "
        f'--name "{demo.customer_name}"  (POST it as {{"token": ...}} to {url}/api/v1/sso/session)',
        f"The bank's app backend, OAuth2 client credentials at {url}/api/v1/oauth/token:",
        f"  client_id {demo.client_id}",
        f"  client_secret {demo.client_secret}",
        f"The partner shop: {url}/shop for customers (after signing in from the bank app); "
        "partner staff use the API (orders at /api/v1/shop/partner/orders, docs/shop.md).",
        f"API: {url}/openapi.json (guide: docs/api.md)  health: {url}/api/v1/health  database: {demo.database_url}",
        "Stop with Ctrl+C.",
    )
    for line in lines:
        # Soft-wrapped: commands and secrets stay whole for copying.
        console.print(line, soft_wrap=True, markup=False, highlight=False)
