"""Messages in the reader's language: the en and zh_CN catalogs, the language of the request or
command at hand, and `_()` for every area's messages (a service's problem details too).

Code marks strings with `_()`; `N_()` marks a module-level constant, translated with `_()`
where it is shown. Strings kept in the database (reasons, notes) are never translated: they are
records, written in the language they were written in. The catalogs are the `.po` files under
`web/locale/` (`beyondbank translations update` extracts new strings into them); they are
compiled in memory when first used, so no binary `.mo` file is kept in the tree.
"""

from __future__ import annotations

import gettext as stdlib_gettext
from contextvars import ContextVar
from functools import cache
from io import BytesIO
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

LOCALE_DIR = Path(__file__).resolve().parents[1] / "web" / "locale"
DOMAIN = "messages"
LANGUAGES = ("en", "zh_CN")
DEFAULT_LANGUAGE = "en"
# Money, dates and numbers are written as a reader of that language expects them.
FORMAT_LOCALES = {"en": "en_GB", "zh_CN": "zh_Hans_CN"}

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
