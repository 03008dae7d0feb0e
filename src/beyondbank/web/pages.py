"""Rendering pages: the shared context (who is signed in, CSRF token, bank name) and error pages."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from beyondbank.core.authz import Principal
from beyondbank.core.errors import Problem
from beyondbank.web.i18n import LANGUAGE_NAMES, LANGUAGES, current_language, format_locale
from beyondbank.web.session import LoginRequired, csrf_token, pop_flashes


def render(
    request: Request,
    template: str,
    context: dict[str, Any] | None = None,
    *,
    principal: Principal | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    templates: Jinja2Templates = request.app.state.templates
    settings = request.app.state.settings
    page: dict[str, Any] = {
        "principal": principal,
        "csrf_token": csrf_token(request),
        "bank_name": settings.bank_name,
        "path": request.url.path,
        "query_string": request.url.query,
        "locale": format_locale(),
        "language": current_language(),
        # The switch offers every other language, each named in itself.
        "other_languages": [
            (code, LANGUAGE_NAMES[code]) for code in LANGUAGES if code != current_language()
        ],
        "timezone": settings.default_timezone,
        # What the viewer may do decides which links and forms a page shows.
        "perms": principal.permissions if principal else frozenset(),
        "flashes": pop_flashes(request),
        # A service's problem that no form on the page can show (e.g. the thing was decided).
        "page_problem": None,
    }
    page.update(context or {})
    return templates.TemplateResponse(request, template, page, status_code=status_code)


def wants_html(request: Request) -> bool:
    return not request.url.path.startswith("/api/") and request.url.path != "/openapi.json"


def problem_page(request: Request, problem: Problem) -> Response:
    return render(request, "error.html", {"problem": problem}, status_code=problem.status)


def login_redirect(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, LoginRequired)
    return RedirectResponse(f"/login?next={exc.next_path}", status_code=303)
