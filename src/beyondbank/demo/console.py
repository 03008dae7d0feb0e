"""What `beyondbank demo` prints: where the platform is, and how to sign in as each role."""

from __future__ import annotations

from rich.console import Console
from rich.panel import Panel
from rich.table import Table

from beyondbank.demo.setup import Demo

ROLE_NOTES = {
    "bank_admin": "programme manager: circles, admissions, benefit approvals, audit",
    "relationship_manager": "a book of merchants, the interaction log, overdue follow-ups",
    "auditor": "reads everything, incl. the audit trail; changes nothing",
    "analyst": "aggregated business data only",
    "merchant_admin": "its own merchant: profile, benefits, users, redemptions",
    "merchant_staff": "its own merchant: redeems member codes at the counter",
}


def print_welcome(console: Console, demo: Demo, *, host: str, port: int) -> None:
    url = f"http://{host}:{port}"
    counts = demo.counts
    console.print(
        Panel.fit(
            f"[bold]Thames & Harbour Bank[/] alliance demo at [link={url}]{url}[/link]\n"
            f"{counts.get('merchants', 0)} merchants in {counts.get('circles', 0)} circles, "
            f"{counts.get('members', 0):,} members, {counts.get('benefits', 0)} benefits, "
            f"{counts.get('redemptions', 0)} redemptions; created in {demo.seconds:.1f} s "
            f"({demo.database_url})",
            title="beyondbank demo",
        )
    )
    table = Table(title=f"Sign in at {url}/login  (password for everyone: {demo.password})")
    table.add_column("role")
    table.add_column("email")
    table.add_column("who")
    seen: set[str] = set()
    for login in demo.logins:
        note = ROLE_NOTES.get(login.role, "") if login.role not in seen else ""
        seen.add(login.role)
        who = f"{login.name}, {login.merchant}" if login.merchant else login.name
        table.add_row(login.role, login.email, f"{who}\n[dim]{note}[/]" if note else who)
    console.print(table)
    console.print(
        f"[bold]Customers[/] sign in from the bank's app: {url}/demo/bank-app "
        f"(signs in {demo.customer_name}, {demo.customer_ref}, by single sign-on)"
    )
    console.print(
        "  or get a sign-on token yourself: "
        f'[cyan]beyondbank sso token --customer {demo.customer_ref} --name "{demo.customer_name}"[/]'
        f"  and POST it to {url}/api/v1/sso/session"
    )
    console.print(
        f"[bold]The bank's app backend[/] (OAuth2 client credentials at {url}/api/v1/oauth/token):"
        f"\n  client_id [cyan]{demo.client_id}[/]  client_secret [cyan]{demo.client_secret}[/]"
    )
    console.print(
        f"API documents: {url}/api/docs   health: {url}/api/v1/health   Stop with Ctrl+C."
    )
