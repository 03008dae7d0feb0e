"""How the customer's pages put distances and durations into words, in the viewer's locale."""

from __future__ import annotations

from babel.numbers import format_decimal
from babel.units import format_unit

from beyondbank.web.i18n import _, ngettext


def distance(metres: float | None, locale: str = "en_GB") -> str:
    """A walking-scale distance: "350 m" (to the nearest 10 m), "1.2 km", "12 km"."""
    if metres is None:
        return "—"
    if metres < 995:
        rounded = max(10, round(metres / 10.0) * 10)
        return str(format_unit(rounded, "length-meter", length="short", locale=locale))
    kilometres = metres / 1000
    pattern = "#,##0.#" if kilometres < 9.95 else "#,##0"
    return str(
        format_unit(kilometres, "length-kilometer", length="short", locale=locale, format=pattern)
    )


def duration(seconds: int, locale: str = "en_GB") -> str:
    """A time span a person reads at a glance: "2 days 3 hours", "5 hours 10 minutes", "1 minute"."""
    days, rest = divmod(max(0, seconds), 86_400)
    hours, minutes = rest // 3_600, rest % 3_600 // 60

    def n(value: int) -> str:
        return str(format_decimal(value, locale=locale))

    parts = []
    if days:
        parts.append(ngettext("%(count)s day", "%(count)s days", days, count=n(days)))
    if hours:
        parts.append(ngettext("%(count)s hour", "%(count)s hours", hours, count=n(hours)))
    if not days and (minutes or not hours):
        minutes = max(minutes, 1)
        parts.append(ngettext("%(count)s minute", "%(count)s minutes", minutes, count=n(minutes)))
    return " ".join(parts)


def time_left(seconds: int, locale: str = "en_GB") -> str:
    """How long a window stays open, or "closed" once it is over."""
    if seconds <= 0:
        return _("closed")
    return _("%(duration)s left", duration=duration(seconds, locale))
