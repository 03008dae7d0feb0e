"""The Jinja2 environment for every page: autoescaping, translatable strings, locale-aware filters."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import jinja2
from babel.dates import format_date, format_datetime
from fastapi.templating import Jinja2Templates

from beyondbank.core.money import Money

TEMPLATES_DIR = Path(__file__).with_name("templates")
STATIC_DIR = Path(__file__).with_name("static")


def money(amount_minor: int | None, currency: str, locale: str = "en_GB") -> str:
    if amount_minor is None:
        return "—"
    return Money(amount_minor, currency).format(locale)


def when(value: datetime | None, timezone: str = "Europe/London", locale: str = "en_GB") -> str:
    if value is None:
        return "—"
    return str(format_datetime(value, "medium", tzinfo=ZoneInfo(timezone), locale=locale))


def day(value: date | None, locale: str = "en_GB") -> str:
    if value is None:
        return "—"
    return str(format_date(value, "medium", locale=locale))


def make_templates() -> Jinja2Templates:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        autoescape=jinja2.select_autoescape(default=True),
        extensions=["jinja2.ext.i18n"],
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    # Strings are marked with _() now; the en and zh_CN catalogs replace these null translations.
    env.install_null_translations(newstyle=True)  # type: ignore[attr-defined]
    env.filters["money"] = money
    env.filters["when"] = when
    env.filters["day"] = day
    return Jinja2Templates(env=env)
