"""A page visit that checks what every page must do: load nothing from another host, raise no
script or CSP error, fit a 390 px phone, read in the chosen language, and pass axe-core's WCAG
2.1 AA rules with no serious or critical violation. Each step leaves a screenshot."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import ConsoleMessage, Page, Request, Response

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
AXE_REPORT = ARTIFACTS.parent / "axe"
WCAG_AA = {"runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]}}
BLOCKING = {"serious", "critical"}
_AXE = Axe()


@dataclass
class Visit:
    page: Page
    base_url: str
    name: str
    device: str
    language: str
    foreign: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    checked: list[str] = field(default_factory=list)
    steps: int = 0

    def __post_init__(self) -> None:
        own = urlsplit(self.base_url).netloc
        self.page.on("request", lambda request: self._request(request, own))
        self.page.on("console", self._console)
        self.page.on("response", self._response)
        self.page.on("pageerror", lambda error: self.errors.append(f"script error: {error}"))

    def _request(self, request: Request, own: str) -> None:
        parts = urlsplit(request.url)
        if parts.scheme in {"data", "blob", "about"}:
            return
        if parts.netloc != own:
            self.foreign.append(request.url)

    def _response(self, response: Response) -> None:
        # A page may answer 4xx (a refused form); what it loads (styles, scripts, images) may not.
        if response.status >= 400 and response.request.resource_type != "document":
            self.errors.append(f"{response.status} for {response.url}")

    def _console(self, message: ConsoleMessage) -> None:
        # A CSP refusal, a failed script or a missing file shows as a console error.
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            self.errors.append(f"{self.page.url}: {message.text}")

    def url(self, path: str) -> str:
        return path if path.startswith("http") else f"{self.base_url}{path}"

    def open(self, path: str, label: str | None = None) -> Page:
        response = self.page.goto(self.url(path))
        assert response is not None, f"{path}: no response"
        assert response.ok, f"{path}: {response.status}"
        self.check(label or path)
        return self.page

    def check(self, label: str) -> None:
        """Check the page as it is now and keep a screenshot of it."""
        self.page.wait_for_load_state("load")
        self.steps += 1
        slug = re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-") or "page"
        where = f"{self.name} step {self.steps} ({label}, {self.page.url})"
        self._check_language(where)
        if self.device == "phone":
            self._check_fits_phone(where)
        self._check_axe(where, slug)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(
            path=str(ARTIFACTS / f"{self.name}-{self.steps:02d}-{slug}.png"), full_page=True
        )
        self.checked.append(self.page.url)

    def _check_language(self, where: str) -> None:
        lang = self.page.evaluate("document.documentElement.lang")
        wanted = "zh-CN" if self.language == "zh_CN" else "en"
        assert lang == wanted, f"{where}: the page reads {lang!r}, not {wanted!r}"

    def _check_fits_phone(self, where: str) -> None:
        # Wide tables scroll inside their own box; the page itself never scrolls sideways.
        width = self.page.evaluate("document.scrollingElement.scrollWidth")
        viewport = self.page.viewport_size
        assert viewport is not None
        assert width <= viewport["width"] + 1, f"{where}: {width} px wide on a 390 px phone"

    def _check_axe(self, where: str, slug: str) -> None:
        results = _AXE.run(self.page, options={**WCAG_AA, "resultTypes": ["violations"]})
        violations: list[dict[str, Any]] = results.response["violations"]
        AXE_REPORT.mkdir(parents=True, exist_ok=True)
        report = AXE_REPORT / f"{self.name}-{self.steps:02d}-{slug}.json"
        report.write_text(json.dumps(violations, indent=1, ensure_ascii=False))
        for violation in violations:
            if violation["impact"] in BLOCKING:
                targets = [node["target"] for node in violation["nodes"]][:5]
                self.violations.append(
                    f"{where}: {violation['id']} ({violation['impact']}): "
                    f"{violation['help']} at {targets}"
                )

    def assert_clean(self) -> None:
        assert not self.foreign, f"{self.name} loaded from other hosts: {self.foreign}"
        assert not self.errors, f"{self.name} had errors: {self.errors}"
        assert not self.violations, "axe-core:\n" + "\n".join(self.violations)
