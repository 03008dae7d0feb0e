"""Keeping the en and zh_CN catalogs complete: extract every marked string, merge it into the
`.po` files, and report what is untranslated or translated with the wrong placeholders."""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from pathlib import Path

from babel.messages.catalog import Catalog, Message
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po, write_po

from beyondbank.web.i18n import DOMAIN, LANGUAGES, LOCALE_DIR

PACKAGE_DIR = Path(__file__).resolve().parent.parent
KEYWORDS = {"_": None, "gettext": None, "N_": None, "ngettext": (1, 2)}
# Python everywhere in the package (pages and the strings they show); Jinja in the templates.
METHODS = [
    ("web/templates/**.html", "jinja2"),
    ("**.py", "python"),
]
TEMPLATE_OPTIONS = {
    "web/templates/**.html": {
        "extensions": "jinja2.ext.i18n",
        "trim_blocks": "True",
        "lstrip_blocks": "True",
    }
}
# Both `%(name)s` (Python, Jinja newstyle) and a bare `%s`; `%%` is a literal percent sign.
_PLACEHOLDER = re.compile(r"%%|%(?:\((\w+)\))?[#0 +-]*\d*(?:\.\d+)?[sdifr]")


@dataclass(frozen=True)
class Gap:
    language: str
    msgid: str
    reason: str


def extract() -> Catalog:
    """Every marked string in the package, with where it is used."""
    template = Catalog(domain=DOMAIN, project="beyondbank", charset="utf-8")
    found = extract_from_dir(
        PACKAGE_DIR,
        METHODS,
        options_map=TEMPLATE_OPTIONS,
        keywords=KEYWORDS,
        strip_comment_tags=True,
    )
    for filename, lineno, message, comments, context in found:
        template.add(
            message,
            None,
            [(f"src/beyondbank/{filename}", lineno)],
            auto_comments=comments,
            context=context,
        )
    return template


def po_path(language: str) -> Path:
    return LOCALE_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.po"


def load(language: str) -> Catalog:
    path = po_path(language)
    if not path.exists():
        return Catalog(locale=language, domain=DOMAIN, project="beyondbank")
    with path.open("rb") as po:
        return read_po(po, locale=language)


def update() -> dict[str, int]:
    """Merge the extracted strings into each catalog (English reads as its msgids); returns how
    many strings each language still lacks."""
    template = extract()
    missing: dict[str, int] = {}
    for language in LANGUAGES:
        catalog = load(language)
        # update() adopts the template's message objects; each catalog gets its own copies.
        catalog.update(copy.deepcopy(template), no_fuzzy_matching=True)
        catalog.obsolete.clear()
        if language == "en":
            for message in catalog:
                if message.id and not message.string:
                    message.string = message.id
        path = po_path(language)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as po:
            write_po(po, catalog, width=100, sort_output=True, include_previous=False)
        missing[language] = len(gaps(language, catalog, template))
    return missing


def placeholders(text: str) -> set[str]:
    """The placeholders a message fills in (`%%`, a literal percent sign, is not one)."""
    found = (m.group(1) or m.group(0) for m in _PLACEHOLDER.finditer(text))
    return {p for p in found if p != "%%"}


def gaps(language: str, catalog: Catalog, template: Catalog) -> list[Gap]:
    """What a reader of the catalog's language would see wrong: a string missing from the
    catalog, left untranslated or fuzzy, or with placeholders unlike the original's."""
    found: list[Gap] = []
    for wanted in template:
        if not wanted.id:
            continue
        message = catalog.get(wanted.id, wanted.context)
        if message is None:
            found.append(Gap(language, _text(wanted), "not in the catalog"))
            continue
        found.extend(_message_gaps(language, message))
    return found


def _message_gaps(language: str, message: Message) -> list[Gap]:
    ids = [str(i) for i in _as_list(message.id)]
    strings = [str(s or "") for s in _as_list(message.string)]
    if message.fuzzy or not all(strings):
        return [Gap(language, ids[0], "not translated")]
    # A plural's forms may drop the count (`%(num)d`), never another placeholder or add one.
    wanted = placeholders(ids[-1]) | placeholders(ids[0])
    for text in strings:
        found = placeholders(text)
        if found - wanted or (placeholders(ids[0]) - found) - {"num"}:
            return [Gap(language, ids[0], f"placeholders differ: {text!r}")]
    return []


def _as_list(value: object) -> list[object]:
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _text(message: Message) -> str:
    return str(_as_list(message.id)[0])


def check() -> list[Gap]:
    """Every gap in every catalog against the strings the code marks today."""
    template = extract()
    return [gap for language in LANGUAGES for gap in gaps(language, load(language), template)]
