"""The README's pictures: each audience's main page with the demo data, taken in Debian's Chromium.

`.venv/bin/python scripts/readme_screenshots.py` builds a small demo in a temporary directory,
serves it, and writes docs/screenshots/{customer,merchant,console,console-zh}.png.
"""

from __future__ import annotations

import socket
import tempfile
import threading
import time
from pathlib import Path

import uvicorn
from playwright.sync_api import Page, sync_playwright

from beyondbank.api import create_app
from beyondbank.core.clock import SystemClock
from beyondbank.demo import setup as demo_setup

OUT = Path(__file__).resolve().parents[1] / "docs" / "screenshots"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def serve(directory: Path) -> tuple[str, demo_setup.Demo]:
    settings = demo_setup.demo_settings(directory)
    demo = demo_setup.build_demo(
        directory, settings=settings, clock=SystemClock(), members=300, seed=2026
    )
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
    )
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    return f"http://127.0.0.1:{port}", demo


def sign_in(page: Page, url: str, email: str, password: str) -> None:
    page.goto(f"{url}/login")
    page.locator("#email").fill(email)
    page.locator("#password").fill(password)
    with page.expect_navigation():
        page.locator("#password").press("Enter")


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as pw:
        url, demo = serve(Path(tmp))
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        email: dict[str, str] = {}
        for login in demo.logins:  # the first login of each role, as the README lists them
            email.setdefault(login.role, login.email)
        shots = [
            ("customer", "en-GB", {"width": 390, "height": 844}, None, "/app"),
            ("merchant", "en-GB", {"width": 1280, "height": 900}, "merchant_admin", "/merchant"),
            ("console", "en-GB", {"width": 1280, "height": 900}, "bank_admin", "/console/circles"),
            ("console-zh", "zh-CN", {"width": 1280, "height": 900}, "bank_admin", "/console"),
        ]
        for name, locale, viewport, role, path in shots:
            context = browser.new_context(viewport=viewport, locale=locale, device_scale_factor=1)
            page = context.new_page()
            if role is None:
                page.goto(f"{url}/demo/bank-app")
                form = page.locator('form[action="/demo/bank-app/open"]').first
                with page.expect_navigation():
                    form.locator("button[type=submit]").click()
            else:
                sign_in(page, url, email[role], demo.password)
            page.goto(f"{url}{path}")
            if page.locator("figure.plot").count():  # the circles on their map-like plot
                page.locator("figure.plot").scroll_into_view_if_needed()
            page.screenshot(path=str(OUT / f"{name}.png"))
            context.close()
            print(f"docs/screenshots/{name}.png")
        browser.close()


if __name__ == "__main__":
    main()
