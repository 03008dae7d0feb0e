"""The Jinja2 environment for every page: autoescaping, translatable strings, locale-aware filters."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import jinja2
from babel.dates import format_date, format_datetime, format_time
from fastapi.templating import Jinja2Templates

from beyondbank.alliance.models import RequirementKind
from beyondbank.alliance.taxonomy import LifeDomain, taxonomy
from beyondbank.core.money import Money
from beyondbank.web.i18n import N_, _, format_locale, template_gettext, template_ngettext
from beyondbank.web.words import WORDS

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


def clock_time(
    value: datetime | None, timezone: str = "Europe/London", locale: str = "en_GB"
) -> str:
    """Just the time of day, for something that lasts seconds (a member code's expiry)."""
    if value is None:
        return "—"
    return str(format_time(value, "medium", tzinfo=ZoneInfo(timezone), locale=locale))


def day(value: date | None, locale: str = "en_GB") -> str:
    if value is None:
        return "—"
    return str(format_date(value, "medium", locale=locale))


def language(locale: str) -> str:
    """The taxonomy's name key for a page locale: `zh_CN` names for Chinese, English otherwise."""
    return "zh_CN" if locale.startswith("zh") else "en"


def sub_industry_name(code: str, locale: str | None = None) -> str:
    """A sub-industry's name in `locale`'s language (the viewer's when not given)."""
    sub = taxonomy().sub_industry(code)
    return sub.name(language(locale or format_locale())) if sub else code


def domain_name(code: str, locale: str | None = None) -> str:
    try:
        return taxonomy().domain(LifeDomain(code)).name(language(locale or format_locale()))
    except ValueError:
        return code


def domain_of(sub_industry: str) -> str:
    sub = taxonomy().sub_industry(sub_industry)
    return sub.domain.value if sub else ""


def percent(bps: int | None) -> str:
    """Basis points as a percentage a person reads: 1250 → "12.5%"."""
    if bps is None:
        return "—"
    return f"{bps / 100:g}%"


# How a status reads at a glance; the status is always written out too (never colour alone).
_TONES = {
    "ok": {"active", "approved", "admitted", "passed", "redeemed", "held"},
    "warn": {
        "applied",
        "under_review",
        "submitted",
        "waitlisted",
        "waiting",
        "offered",
        "paused",
        "suspended",
        "draft",
        "pending",
    },
    "bad": {
        "rejected",
        "exited",
        "failed",
        "withdrawn",
        "declined",
        "ended",
        "reversed",
        "overdue",
        "low",
    },
}


def tone(status: object) -> str:
    value = str(getattr(status, "value", status))
    return next((name for name, members in _TONES.items() if value in members), "")


def words(value: object) -> str:
    """An enum value or code as words in the viewer's language: `under_review` → "under review"."""
    code = str(getattr(value, "value", value))
    return _(WORDS[code]) if code in WORDS else code.replace("_", " ")


def weekdays(days: list[int] | None) -> str:
    """ISO weekdays in words: [1, 2, 3] → "Mon, Tue, Wed"; all seven → "every day"."""
    names = {1: _("Mon"), 2: _("Tue"), 3: _("Wed"), 4: _("Thu"), 5: _("Fri")}
    names.update({6: _("Sat"), 7: _("Sun")})
    chosen = sorted(set(days or []))
    if chosen == list(range(1, 8)):
        return _("every day")
    return ", ".join(names[d] for d in chosen if d in names)


_REQUIREMENT_NAMES: dict[RequirementKind, str] = {
    RequirementKind.LOCATION_IN_CIRCLE: N_("A location inside the circle"),
    RequirementKind.SLOT_FREE: N_("The sub-industry's slot is free"),
    RequirementKind.KYB_PASSED: N_("Know-your-business checks passed"),
    RequirementKind.LICENCE_VERIFIED: N_("Business licence verified"),
    RequirementKind.SETTLEMENT_ACCOUNT: N_("A valid settlement account (IBAN)"),
    RequirementKind.MIN_REVIEW_SCORE: N_("A minimum review score"),
    RequirementKind.MIN_REVIEW_COUNT: N_("A minimum number of reviews"),
    RequirementKind.MIN_YEARS_TRADING: N_("A minimum number of years trading"),
    RequirementKind.SUB_INDUSTRY_ALLOWED: N_("Only some life domains"),
    RequirementKind.MANUAL_CHECK: N_("A check the relationship manager confirms"),
}


def requirement_name(kind: object) -> str:
    """An admission requirement's kind in words: `kyb_passed` → "Know-your-business checks passed"."""
    try:
        return _(_REQUIREMENT_NAMES[RequirementKind(str(getattr(kind, "value", kind)))])
    except ValueError:
        return words(kind)


def capfirst(text: str) -> str:
    """The first letter in capitals, the rest as it is ("every day" → "Every day", "Mon, Tue")."""
    return text[:1].upper() + text[1:]


def hours(start: int, end: int) -> str:
    """Opening hours of a benefit in words: "all day", or "11:00 to 15:00" (the end excluded)."""
    if (start, end) == (0, 24):
        return _("all day")
    return _("%(start)02d:00 to %(end)02d:00", start=start, end=end)


def make_templates() -> Jinja2Templates:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        autoescape=jinja2.select_autoescape(default=True),
        extensions=["jinja2.ext.i18n"],
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    # The callables read the request's language, so one environment serves every viewer.
    env.install_gettext_callables(  # type: ignore[attr-defined]
        template_gettext, template_ngettext, newstyle=True
    )
    env.filters["money"] = money
    env.filters["when"] = when
    env.filters["day"] = day
    env.filters["clock_time"] = clock_time
    env.filters["sub_industry"] = sub_industry_name
    env.filters["domain"] = domain_name
    env.filters["domain_of"] = domain_of
    env.filters["percent"] = percent
    env.filters["tone"] = tone
    env.filters["words"] = words
    env.filters["weekdays"] = weekdays
    env.filters["requirement"] = requirement_name
    env.filters["capfirst"] = capfirst
    env.globals["hours"] = hours
    return Jinja2Templates(env=env)
