"""What a person does to arrive: staff and merchants sign in with the form, customers open
beyondbank from the (demo) bank app, which signs them on with a fresh SSO token."""

from __future__ import annotations

from playwright.sync_api import Page

from tests.browser.conftest import Served
from tests.browser.visits import Visit


def login_for(served: Served, role: str) -> str:
    return next(login.email for login in served.demo.logins if login.role == role)


def sign_in(visit: Visit, served: Served, role: str) -> Page:
    """The sign-in form, filled and sent with the keyboard (Enter submits it)."""
    page = visit.open("/login", "sign in")
    page.locator("#email").fill(login_for(served, role))
    page.locator("#password").fill(served.demo.password)
    with page.expect_navigation():
        page.locator("#password").press("Enter")
    return page


def arrive_from_bank_app(visit: Visit, served: Served, customer: int = 0) -> Page:
    """The bank's app (the demo's stand-in) opens beyondbank for one of its customers by SSO:
    the demo's own customer by default, else the n-th on the list."""
    page = visit.open("/demo/bank-app", "bank app")
    forms = page.locator('form[action="/demo/bank-app/open"]')
    form = (
        forms.filter(has=page.locator(f'input[value="{served.demo.customer_ref}"]'))
        if customer == 0
        else forms.nth(customer)
    )
    with page.expect_navigation(url="**/app"):
        form.locator("button[type=submit]").click()
    return page
