"""Smoke: the sign-in page and the console overview in the browser."""

from __future__ import annotations

from tests.browser.conftest import Served
from tests.browser.visits import Visit


def test_admin_signs_in_and_sees_the_overview(visit: Visit, served: Served) -> None:
    page = visit.open("/login", "sign in")
    admin = next(login for login in served.demo.logins if login.role == "bank_admin")
    page.get_by_label("Email").fill(admin.email)
    page.get_by_label("Password").fill(served.demo.password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/console")
    visit.check("overview")
