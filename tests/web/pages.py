"""Helpers for page tests: signing in through the real form, CSRF tokens, reading pages."""

from __future__ import annotations

import re
from html import unescape
from typing import Any

from fastapi.testclient import TestClient
from httpx import Response

from beyondbank.core.authz import Role
from beyondbank.core.uow import UnitOfWork
from beyondbank.identity.models import User
from tests import factories as f


def csrf_from(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "page has no CSRF field"
    return match.group(1)


def sign_in(client: TestClient, user: User) -> None:
    """Sign in with the sign-in form, as a person would (CSRF token included)."""
    page = client.get("/login")
    response = client.post(
        "/login",
        data={"email": user.email, "password": f.PASSWORD, "csrf_token": csrf_from(page.text)},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text


def staff(uow: UnitOfWork, role: Role, **over: Any) -> User:
    return f.make_user(uow, role, **over)


def signed_in(client: TestClient, uow: UnitOfWork, role: Role, **over: Any) -> User:
    user = f.make_user(uow, role, **over)
    sign_in(client, user)
    return user


def submit(client: TestClient, page_path: str, action: str, data: dict[str, Any]) -> Response:
    """Post a form the way the browser would: the CSRF token read from the page that shows it."""
    page = client.get(page_path)
    assert page.status_code == 200, page.text
    return client.post(
        action, data={**data, "csrf_token": csrf_from(page.text)}, follow_redirects=False
    )


def text_of(html: str) -> str:
    """The page's text with tags removed and spaces collapsed, for assertions about wording."""
    without_tags = re.sub(r"<[^>]+>", " ", html)
    spaced = re.sub(r"\s+", " ", unescape(without_tags)).strip()
    return re.sub(r" ([:,.;!?])", r"\1", spaced)  # tags leave a space before punctuation


def field_error(html: str, field_id: str) -> str | None:
    """The error shown beside a field (by its element id), or None."""
    match = re.search(
        rf'<p class="field-error" id="{re.escape(field_id)}-error">(.*?)</p>', html, re.S
    )
    return text_of(match.group(1)).removeprefix("Error:").strip() if match else None
