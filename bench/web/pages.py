"""Server time per page with the demo data: each audience's main pages, rendered over and over in
both languages, timed inside the application (from the request arriving to the last byte of the
response), so the figure is the server's and not the client's.

`python -m bench.web.pages [--members 3000] [--rounds 40] [--reuse]`. The demo is built as
`beyondbank demo` builds it (in var/bench-web/), then served in-process.
"""

from __future__ import annotations

import argparse
import re
import statistics
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from beyondbank.api import create_app, freeze_startup_heap
from beyondbank.core.clock import SystemClock
from beyondbank.demo import setup as demo_setup
from beyondbank.demo.sso import issue_demo_sso_token

GOAL_P95_MS = 50.0
console = Console()

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


class ServerTimer:
    """Wraps the application: the time from a request's arrival to its response's last byte."""

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]]) -> None:
        self.app = app
        self.last_ms = 0.0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()

        async def timed_send(message: MutableMapping[str, Any]) -> None:
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body"):
                self.last_ms = (time.perf_counter() - started) * 1000

        await self.app(scope, receive, timed_send)


@dataclass(frozen=True)
class PagePlan:
    audience: str
    path: str


# Each audience's main pages; `{name}` is filled from the first link on the page that lists them.
MAIN_PAGES: dict[str, list[str]] = {
    "customer": [
        "/app",
        "/app/benefits",
        "/app/benefits/{benefit}",
        "/app/rewards",
        "/shop",
        "/shop/products/{product}",
        "/shop/group-buys",
        "/shop/group-buys/{campaign}",
        "/shop/cart",
        "/shop/orders",
        "/shop/orders/{order}",
        "/shop/support",
    ],
    "merchant": [
        "/merchant",
        "/merchant/redeem",
        "/merchant/benefits",
        "/merchant/redemptions",
        "/merchant/rewards",
        "/merchant/statements",
        "/merchant/reviews",
        "/merchant/audits",
    ],
    "console": [
        "/console",
        "/console/circles",
        "/console/circles/{circle}",
        "/console/merchants",
        "/console/merchants/{merchant}",
        "/console/applications",
        "/console/applications/{application}",
        "/console/benefits",
        "/console/card-runs",
        "/console/descriptors",
        "/console/settlement",
        "/console/settlement/{period}",
        "/console/users",
        "/console/audit",
        "/console/audits",
        "/console/audits/{visit}",
    ],
}
# Where the first link to a detail page is found: (list page, link pattern).
DETAIL_LINKS = {
    "benefit": ("/app/benefits", r'href="(/app/benefits/[\w-]+)"'),
    "product": ("/shop", r'href="(/shop/products/[\w-]+)"'),
    "order": ("/shop/orders", r'href="(/shop/orders/[\w-]+)"'),
    "campaign": ("/shop/group-buys", r'href="(/shop/group-buys/[\w-]+)"'),
    "period": ("/console/settlement", r'href="(/console/settlement/(?!runs)[\w-]+)"'),
    "circle": ("/console/circles", r'href="(/console/circles/(?!new)[\w-]+)"'),
    "merchant": ("/console/merchants", r'href="(/console/merchants/[\w-]+)"'),
    "visit": ("/console/audits", r'href="(/console/audits/(?!new)[\w-]+)"'),
    "application": (
        "/console/applications",
        r'href="(/console/applications/(?!waitlists|offers)[\w-]+)"',
    ),
}


def build(directory: Path, members: int, reuse: bool) -> demo_setup.Demo | None:
    settings = demo_setup.demo_settings(directory)
    if reuse and (directory / demo_setup.DEMO_DATABASE).exists():
        return None
    with console.status(f"building the demo with {members:,} members"):
        demo = demo_setup.build_demo(
            directory, settings=settings, clock=SystemClock(), members=members, seed=2026
        )
    console.print(f"demo built in {demo.seconds:.1f} s")
    return demo


def signed_in(app: Any, audience: str, settings: Any, demo: dict[str, str]) -> TestClient:
    client = TestClient(app, base_url="http://127.0.0.1")
    if audience == "customer":
        token = issue_demo_sso_token(
            settings, customer_ref=demo["customer_ref"], now=SystemClock().now()
        )
        assert client.get(f"/sso?token={token}").status_code == 200
        return client
    page = client.get("/login")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert csrf
    email = demo["merchant_email"] if audience == "merchant" else demo["admin_email"]
    response = client.post(
        "/login",
        data={"email": email, "password": demo["password"], "csrf_token": csrf.group(1)},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    return client


def resolve(client: TestClient, audience: str) -> tuple[list[str], list[str]]:
    """The audience's pages with real ids, and those that could not be opened."""
    found: dict[str, str] = {}
    paths: list[str] = []
    missing: list[str] = []
    for template in MAIN_PAGES[audience]:
        names = re.findall(r"\{(\w+)\}", template)
        path = template
        for name in names:
            if name not in found:
                listing, pattern = DETAIL_LINKS[name]
                match = re.search(pattern, client.get(listing).text)
                if match:
                    found[name] = match.group(1)
            if name not in found:
                path = ""
                break
            path = found[name]
        if path and client.get(path).status_code == 200:
            paths.append(path)
        else:
            missing.append(template)
    return paths, missing


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--members", type=int, default=demo_setup.DEFAULT_MEMBERS)
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--dir", type=Path, default=Path("var/bench-web"))
    parser.add_argument("--reuse", action="store_true", help="keep an existing demo database")
    args = parser.parse_args()

    directory: Path = args.dir
    built = build(directory, args.members, args.reuse)
    settings = demo_setup.demo_settings(directory)
    app = create_app(settings)
    # What the server's lifespan does at start (the test client here runs no lifespan).
    freeze_startup_heap(app)
    timer = ServerTimer(app)
    logins = demo_logins(built, directory)
    samples: dict[tuple[str, str], list[float]] = defaultdict(list)
    skipped: list[str] = []
    clients = {a: signed_in(timer, a, settings, logins) for a in MAIN_PAGES}
    plans: list[PagePlan] = []
    for audience, client in clients.items():
        paths, missing = resolve(client, audience)
        plans += [PagePlan(audience, p) for p in paths]
        skipped += missing
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("rendering pages", total=args.rounds * len(plans))
        for round_number in range(args.rounds):
            # Alternate the languages, so both catalogs and both number formats are measured.
            language = "zh-CN" if round_number % 2 else "en-GB"
            for plan in plans:
                response = clients[plan.audience].get(
                    plan.path, headers={"Accept-Language": language}
                )
                assert response.status_code == 200, (plan.path, response.status_code)
                # The first round warms caches (templates compiled, catalogs read): not counted.
                if round_number >= 2:
                    samples[(plan.audience, plan.path)].append(timer.last_ms)
                progress.advance(task)
    report(samples, skipped, args)


def demo_logins(built: demo_setup.Demo | None, directory: Path) -> dict[str, str]:
    """The demo's logins: from the build, or (reusing a database) the demo's fixed ones."""
    staff = {p.role: p.email for p in (*demo_setup.STAFF, *demo_setup.MERCHANT_USERS)}
    return {
        "customer_ref": built.customer_ref if built else demo_setup.DEMO_CUSTOMER_REF,
        "merchant_email": staff["merchant_admin"],
        "admin_email": staff["bank_admin"],
        "password": demo_setup.DEMO_PASSWORD,
    }


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def report(samples: dict[tuple[str, str], list[float]], skipped: list[str], args: Any) -> None:
    table = Table(title=f"Server time per page, ms ({args.rounds - 2} timed renders each)")
    for column in ("audience", "page", "p50", "p95", "max"):
        table.add_column(column, justify="left" if column in {"audience", "page"} else "right")
    worst = 0.0
    everything: list[float] = []
    for (audience, path), values in samples.items():
        p95 = percentile(values, 0.95)
        worst = max(worst, p95)
        everything += values
        table.add_row(
            audience,
            re.sub(r"/[\w-]{20,}", "/{id}", path),
            f"{statistics.median(values):.1f}",
            f"{p95:.1f}",
            f"{max(values):.1f}",
        )
    console.print(table)
    console.print(
        f"all pages: p50 {statistics.median(everything):.1f} ms, "
        f"p95 {percentile(everything, 0.95):.1f} ms; worst page p95 {worst:.1f} ms "
        f"(goal ≤ {GOAL_P95_MS:.0f} ms: {'met' if worst <= GOAL_P95_MS else 'NOT met'})"
    )
    if skipped:
        console.print(f"not measured (page missing or no link found): {', '.join(skipped)}")


if __name__ == "__main__":
    main()
