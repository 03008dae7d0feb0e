"""The viewer's language: the en and zh_CN catalogs, which one a request reads, and `_()` for code.

Pages and code mark strings with `_()` (templates too); `N_()` marks a module-level constant,
translated with `_()` where it is shown. The catalogs are the `.po` files under `locale/`
(`beyondbank translations update` extracts new strings into them); they are compiled in memory
when first used, so no binary `.mo` file is kept in the tree.
"""

from __future__ import annotations

import gettext as stdlib_gettext
from collections.abc import Awaitable, Callable, MutableMapping
from contextvars import ContextVar
from functools import cache
from io import BytesIO
from pathlib import Path
from typing import Any

from babel.core import parse_locale
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

LOCALE_DIR = Path(__file__).with_name("locale")
DOMAIN = "messages"
LANGUAGES = ("en", "zh_CN")
DEFAULT_LANGUAGE = "en"
# Each language's own name, as the language switch shows it (in that language, never translated).
LANGUAGE_NAMES = {"en": "English", "zh_CN": "简体中文"}
# Money, dates and numbers are written as a reader of that language expects them.
FORMAT_LOCALES = {"en": "en_GB", "zh_CN": "zh_Hans_CN"}
SESSION_KEY = "lang"

_language: ContextVar[str] = ContextVar("language", default=DEFAULT_LANGUAGE)


@cache
def catalog(language: str) -> stdlib_gettext.NullTranslations:
    """The compiled catalog of a language (English reads its msgids when a msgstr is empty)."""
    path = LOCALE_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.po"
    if not path.exists():
        return stdlib_gettext.NullTranslations()
    with path.open("rb") as po:
        messages = read_po(po, locale=language)
    compiled = BytesIO()
    write_mo(compiled, messages)
    compiled.seek(0)
    return Translations(compiled, domain=DOMAIN)


def current_language() -> str:
    return _language.get()


def format_locale(language: str | None = None) -> str:
    """The Babel locale for money, dates and numbers in the viewer's language."""
    return FORMAT_LOCALES[language or current_language()]


def use_language(language: str) -> None:
    """Set the language for the rest of this request (or command)."""
    _language.set(language if language in LANGUAGES else DEFAULT_LANGUAGE)


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


def gettext(message: str, **params: object) -> str:
    """The message in the viewer's language, with `%(name)s` placeholders filled in."""
    text = catalog(current_language()).gettext(message)
    return text % params if params else text


_ = gettext


def ngettext(singular: str, plural: str, n: int, **params: object) -> str:
    """The singular or plural form for `n`, as the viewer's language counts (`%(num)d` is n)."""
    text = catalog(current_language()).ngettext(singular, plural, n)
    return text % {"num": n, **params}


def gettext_noop(message: str) -> str:
    """Marks a string for the catalogs where it is defined; it is translated where it is shown."""
    return message


N_ = gettext_noop


def template_gettext(message: str) -> str:
    """For Jinja's newstyle gettext, which fills the placeholders itself."""
    return catalog(current_language()).gettext(message)


def template_ngettext(singular: str, plural: str, n: int) -> str:
    return catalog(current_language()).ngettext(singular, plural, n)


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
