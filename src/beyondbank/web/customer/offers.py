"""A benefit as the customer's lists and pages show it: the reward in words, whether any is
left, and why it does not apply right now, in the viewer's language."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from babel.dates import format_date, format_time

from beyondbank.alliance.taxonomy import taxonomy
from beyondbank.benefits import rules
from beyondbank.benefits import service as benefits
from beyondbank.web.i18n import _
from beyondbank.web.templating import hours, weekdays


def offer(view: benefits.MemberBenefit, now: datetime, locale: str) -> dict[str, Any]:
    b = view.benefit
    return {
        "view": view,
        "summary": rules.describe_reward(benefits.reward_of(b), b.currency),
        "sold_out": not rules.has_room(b.budget_remaining_minor, b.quantity_remaining),
        "domain": taxonomy().sub_industry(view.merchant.sub_industry),
        "why_not_now": why_not_now(view, now, locale),
    }


def why_not_now(view: benefits.MemberBenefit, now: datetime, locale: str) -> str | None:
    """Why the benefit does not apply at this moment, in words; None when it does."""
    failure = view.unavailable
    if failure is None:
        return None
    b = view.benefit
    local = rules.local_time(now, b.timezone)
    reason = failure.reason
    if reason == rules.Reason.NOT_STARTED:
        return _("It starts on %(day)s.", day=format_date(b.valid_from, "medium", locale=locale))
    if reason == rules.Reason.OVER:
        return _("It ended on %(day)s.", day=format_date(b.valid_to, "medium", locale=locale))
    if reason == rules.Reason.WEEKDAY:
        return _(
            "It applies on %(days)s, not on %(today)s.",
            days=weekdays(b.weekdays),
            today=format_date(local, "EEEE", locale=locale),
        )
    if reason == rules.Reason.HOURS:
        return _(
            "It applies %(hours)s, merchant's time; it is %(now)s there now.",
            hours=hours(b.hour_start, b.hour_end),
            now=format_time(local, "short", locale=locale),
        )
    return failure.message
