"""Browser fixtures: the demo served on a free port (SQLite, or a schema of its own on PostgreSQL),
Debian's Chromium driven by Playwright, and a `Visit` that checks every page it opens.

Chromium is /usr/bin/chromium (scripts/run-tests installs Debian's package when it is missing);
Playwright never downloads a browser. Screenshots go to test-artifacts/screenshots/.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import uvicorn
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, sync_playwright
from sqlalchemy import Engine, text

from beyondbank import schema
from beyondbank.api import create_app
from beyondbank.core.clock import SystemClock
from beyondbank.core.db import make_engine
from beyondbank.core.settings import Settings
from beyondbank.demo import setup as demo_setup
from beyondbank.demo.setup import Demo
from tests.browser.visits import ARTIFACTS, AXE_REPORT, Visit
from tests.conftest import POSTGRES_URL, _worker

CHROMIUM = Path("/usr/bin/chromium")
# Enough members for every page to look alive, few enough to build in seconds.
DEMO_MEMBERS = 200
# Headless, as root in a container, on a machine that reaches no outside host: Chromium must
# not try to phone home (each refused connection costs time and log noise).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1366, "height": 900}


# First: pytest-xdist turns the group marks into node ids in its own hook, which must see them.
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        node = item.nodeid.replace(os.sep, "/")
        if "tests/browser/" not in node:
            continue
        # One test process runs them all: one demo server, one browser.
        item.add_marker(pytest.mark.xdist_group("browser"))
        # The journeys write through every layer, so they run on PostgreSQL too; the crawl of
        # every page checks rendering alone, the same on either database, so SQLite's pass has it.
        if "test_every_page.py" not in node:
            item.add_marker(pytest.mark.db)


@dataclass
class Served:
    url: str
    demo: Demo
    settings: Settings


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _demo_engine(directory: Path, settings: Settings) -> tuple[Engine, str | None]:
    """SQLite as `beyondbank demo` makes it, or on PostgreSQL a schema of this process's own."""
    if not POSTGRES_URL:
        demo_setup.fresh_database(directory)
        return make_engine(settings.database_url), None
    name = f"bb_browser_{_worker()}_{os.getpid()}"
    admin = make_engine(POSTGRES_URL)
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))
        conn.execute(text(f'CREATE SCHEMA "{name}"'))
    admin.dispose()
    engine = make_engine(POSTGRES_URL, connect_args={"options": f"-csearch_path={name}"})
    return engine, name


@pytest.fixture(scope="session")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    directory = tmp_path_factory.mktemp("browser-demo")
    settings = demo_setup.demo_settings(directory)
    engine, pg_schema = _demo_engine(directory, settings)
    clock = SystemClock()
    schema.upgrade(engine)
    demo = demo_setup.populate(
        engine, settings=settings, clock=clock, members=DEMO_MEMBERS, seed=2026
    )
    demo_setup.populate_cards(
        engine, directory, clock=clock, seed=2026, currency=settings.default_currency
    )
    port = _free_port()
    app = create_app(settings, engine=engine, clock=clock)
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, name="demo-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the demo server did not start")
        time.sleep(0.05)
    try:
        yield Served(f"http://127.0.0.1:{port}", demo, settings)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        engine.dispose()
        if pg_schema:
            admin = make_engine(POSTGRES_URL)
            with admin.begin() as conn:
                conn.execute(text(f'DROP SCHEMA IF EXISTS "{pg_schema}" CASCADE'))
            admin.dispose()


def chromium_available() -> bool:
    return CHROMIUM.exists() and os.access(CHROMIUM, os.X_OK)


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    if not chromium_available():
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail(
                f"{CHROMIUM} is missing: `apt-get install chromium` (scripts/run-tests does)"
            )
        pytest.skip(f"{CHROMIUM} is missing: `apt-get install chromium` to run the browser tests")
    with sync_playwright() as pw:
        yield pw


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    launched = playwright.chromium.launch(
        executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
    )
    yield launched
    launched.close()


@pytest.fixture(scope="session", autouse=True)
def _fresh_artifacts() -> None:
    """Only this run's screenshots and reports (all browser tests run in one process)."""
    for directory in (ARTIFACTS, AXE_REPORT):
        shutil.rmtree(directory, ignore_errors=True)
        directory.mkdir(parents=True, exist_ok=True)


def new_context(browser: Browser, served: Served, *, device: str, language: str) -> BrowserContext:
    """A fresh browser profile: a phone (390 px, touch) or a desktop, reading `language`."""
    phone = device == "phone"
    context = browser.new_context(
        base_url=served.url,
        viewport=PHONE if phone else DESKTOP,
        is_mobile=phone,
        has_touch=phone,
        device_scale_factor=2 if phone else 1,
        # Chromium sends this as Accept-Language: the pages pick the language from it.
        locale="zh-CN" if language == "zh_CN" else "en-GB",
        timezone_id="Europe/London",
    )
    context.set_default_timeout(15_000)
    return context


@pytest.fixture(params=[("phone", "en"), ("desktop", "zh_CN")], ids=["phone-en", "desktop-zh"])
def visit(request: pytest.FixtureRequest, browser: Browser, served: Served) -> Iterator[Visit]:
    """A journey's browser: the phone in English and the desktop in Simplified Chinese, so that
    every page a journey opens is checked at both sizes and in both languages."""
    device, language = request.param
    context = new_context(browser, served, device=device, language=language)
    page: Page = context.new_page()
    name = request.node.name.replace("[", "-").replace("]", "")
    tracker = Visit(page, served.url, name=name, device=device, language=language)
    try:
        yield tracker
    finally:
        context.close()
    tracker.assert_clean()
