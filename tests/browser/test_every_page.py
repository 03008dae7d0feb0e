"""Every page each audience can reach from its home page, opened on a phone in English and on a
desktop in Simplified Chinese: each fits, loads nothing from another host, raises no error and
has no serious or critical axe-core violation (the checks of `Visit`)."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from playwright.sync_api import Page

from tests.browser import actions
from tests.browser.conftest import Served
from tests.browser.visits import Visit

# Links that are not pages to check: downloads, sign-out, the code refresh, the SSO hand-over.
NOT_PAGES = re.compile(
    r"\.(csv|pdf|json|parquet|xml|001)$|/pain|^/(logout|sso|demo|static|brand|api)|member-code"
)
# Long ids in a path stand for one kind of page: open one of each.
ID_SEGMENT = re.compile(r"/[A-Za-z0-9_-]{16,}")
MOST_PAGES = 45

Arrive = Callable[[Visit, Served], Page]
# The role of each audience that reaches the most pages: counter staff see a subset of their
# admin's pages (a partner's staff its admin's), relationship managers and analysts a subset of the bank admin's and the
# auditor's (which pages each role may open is tested page by page in tests/web).
AUDIENCES: dict[str, Arrive] = {
    "customer": actions.arrive_from_bank_app,
    "merchant_admin": lambda v, s: actions.sign_in(v, s, "merchant_admin"),
    "partner_admin": lambda v, s: actions.sign_in(v, s, "partner_admin"),
    "bank_admin": lambda v, s: actions.sign_in(v, s, "bank_admin"),
    "auditor": lambda v, s: actions.sign_in(v, s, "auditor"),
}
# Pages the crawl must reach for an audience (it stops after MOST_PAGES kinds).
MUST_REACH: dict[str, set[str]] = {
    "merchant_admin": {"/merchant/audits"},
    "partner_admin": {
        "/partner/orders",
        "/partner/orders/{id}",
        "/partner/stock",
        "/partner/group-buys",
        "/partner/support",
        "/partner/statements",
    },
    "bank_admin": {"/console/audits", "/console/audits/new", "/console/audits/{id}"},
    "auditor": {"/console/audits", "/console/audits/new", "/console/audits/{id}"},
}


def kind_of(path: str) -> str:
    return ID_SEGMENT.sub("/{id}", path.split("?")[0].split("#")[0])


def links(page: Page) -> list[str]:
    hrefs: list[str] = page.eval_on_selector_all(
        "a[href^='/']", "elements => elements.map(e => e.getAttribute('href'))"
    )
    return [h for h in hrefs if not NOT_PAGES.search(h.split("?")[0])]


@pytest.mark.parametrize("audience", list(AUDIENCES))
def test_every_reachable_page_passes_the_checks(
    visit: Visit, served: Served, audience: str
) -> None:
    page = AUDIENCES[audience](visit, served)
    home = kind_of(page.url.removeprefix(served.url))
    visit.check(f"{audience} home")
    seen = {home}
    queue = [h for h in links(page) if kind_of(h) not in seen]
    while queue and len(seen) < MOST_PAGES:
        href = queue.pop(0)
        if kind_of(href) in seen:
            continue
        seen.add(kind_of(href))
        visit.open(href, kind_of(href))
        queue += [h for h in links(page) if kind_of(h) not in seen]
    # Each audience has more than a home page, and every page kind was opened once.
    assert len(visit.checked) >= 4, visit.checked
    assert MUST_REACH.get(audience, set()) <= seen, sorted(seen)
