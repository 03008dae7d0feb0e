"""The viewer's language on the web: chosen from the session (the language switch) or the
browser's Accept-Language, set for each request by `LanguageMiddleware`; the catalogs and `_()`
are core's (beyondbank.core.i18n), re-exported here for the pages."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from babel.core import parse_locale

from beyondbank.core.i18n import DEFAULT_LANGUAGE as DEFAULT_LANGUAGE
from beyondbank.core.i18n import DOMAIN as DOMAIN
from beyondbank.core.i18n import LANGUAGES as LANGUAGES
from beyondbank.core.i18n import LOCALE_DIR as LOCALE_DIR
from beyondbank.core.i18n import N_ as N_
from beyondbank.core.i18n import _ as _
from beyondbank.core.i18n import catalog as catalog
from beyondbank.core.i18n import current_language as current_language
from beyondbank.core.i18n import format_locale as format_locale
from beyondbank.core.i18n import gettext as gettext
from beyondbank.core.i18n import ngettext as ngettext
from beyondbank.core.i18n import template_gettext as template_gettext
from beyondbank.core.i18n import template_ngettext as template_ngettext
from beyondbank.core.i18n import use_language as use_language

# Each language's own name, as the language switch shows it (in that language, never translated).
LANGUAGE_NAMES = {"en": "English", "zh_CN": "简体中文"}
SESSION_KEY = "lang"


def supported(value: str | None) -> str | None:
    """A requested language as one of ours: `zh-CN`, `zh_Hans_CN` and `zh` all mean zh_CN."""
    if not value:
        return None
    try:
        # Only the tag's parts: no locale data is looked up, so any well-formed tag is safe.
        language, territory, script, *_rest = parse_locale(value.replace("-", "_"))
    except ValueError:
        return None
    if language == "zh":
        # Simplified Chinese only: a Traditional Chinese reader is better served by English.
        traditional = script == "Hant" or (script is None and territory in {"TW", "HK", "MO"})
        return None if traditional else "zh_CN"
    return "en" if language == "en" else None


def from_accept_language(header: str | None) -> str | None:
    """The first language of ours in an Accept-Language header, by the viewer's preference."""
    if not header:
        return None
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate(header.split(",")):
        tag, _sep, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                continue
        ranked.append((-quality, position, tag.strip()))
    for _quality, _position, tag in sorted(ranked):
        language = supported(tag) if tag != "*" else None
        if language:
            return language
    return None


Scope = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]], Any]


class LanguageMiddleware:
    """Chooses each request's language: the viewer's choice in the session, else the browser's
    Accept-Language, else English. Runs inside the session middleware."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(
        self,
        scope: Scope,
        receive: Callable[[], Awaitable[Any]],
        send: Callable[[Any], Awaitable[None]],
    ) -> None:
        if scope["type"] == "http":
            use_language(request_language(scope))
        await self.app(scope, receive, send)


def request_language(scope: Scope) -> str:
    chosen = supported((scope.get("session") or {}).get(SESSION_KEY))
    if chosen:
        return chosen
    for name, value in scope.get("headers", ()):
        if name == b"accept-language":
            return from_accept_language(value.decode("latin-1")) or DEFAULT_LANGUAGE
    return DEFAULT_LANGUAGE
