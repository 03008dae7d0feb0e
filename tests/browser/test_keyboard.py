"""Keyboard only: the skip link comes first and lands in the content, every control on the way
shows where the focus is, and a person signs in without touching the mouse."""

from __future__ import annotations

from playwright.sync_api import Page

from tests.browser.actions import login_for
from tests.browser.conftest import Served
from tests.browser.visits import Visit


def focused(page: Page) -> dict[str, str]:
    return page.evaluate(
        """() => {
            const e = document.activeElement;
            const style = getComputedStyle(e);
            return {tag: e.tagName.toLowerCase(), id: e.id, name: e.getAttribute('name') || '',
                    cls: e.className || '', outline: style.outlineStyle,
                    outlineWidth: style.outlineWidth, shadow: style.boxShadow};
        }"""
    )


def shows_focus(state: dict[str, str]) -> bool:
    return (state["outline"] not in {"none", ""} and state["outlineWidth"] != "0px") or (
        state["shadow"] not in {"none", ""}
    )


def test_sign_in_with_the_keyboard_alone(visit: Visit, served: Served) -> None:
    page = visit.open("/login", "sign in")
    page.keyboard.press("Tab")
    skip = focused(page)
    assert "skip" in skip["cls"], skip
    assert shows_focus(skip), skip
    page.keyboard.press("Enter")
    assert focused(page)["id"] == "main"  # the skip link lands in the content

    # From the content on: the language switch is in the header, so Tab reaches the form fields.
    order: list[dict[str, str]] = []
    for _step in range(6):
        page.keyboard.press("Tab")
        state = focused(page)
        order.append(state)
        assert shows_focus(state), f"no visible focus on {state}"
        if state["id"] == "email":
            page.keyboard.type(login_for(served, "relationship_manager"))
        if state["id"] == "password":
            page.keyboard.type(served.demo.password)
            with page.expect_navigation():
                page.keyboard.press("Enter")
            break
    assert [s["id"] for s in order if s["id"]][:2] == ["email", "password"], order
    assert page.url.endswith("/console")
    visit.check("signed in by keyboard")
