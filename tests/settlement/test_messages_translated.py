"""Settlement's refusals reach the caller in the caller's language (zh_CN from the catalog), and
in English exactly as before."""

from __future__ import annotations

import pytest

from beyondbank.core.errors import InvalidTransition
from beyondbank.core.i18n import catalog, use_language
from beyondbank.settlement import schedule
from beyondbank.settlement.models import PeriodStatus
from beyondbank.settlement.periods import PeriodAction, next_status

REFUSED = "Cannot %(action)s a period that is %(current)s.%(hint)s"
ONLY = "From %(status)s only: %(allowed)s."
UNKNOWN_ZONE = "unknown time zone %(name)r: use an IANA name such as Europe/London"


def test_a_period_that_cannot_finish_is_refused_in_chinese() -> None:
    use_language("zh_CN")
    try:
        with pytest.raises(InvalidTransition) as refused:
            next_status(PeriodStatus.OPEN, PeriodAction.FINISH)
        with pytest.raises(ValueError, match=r".") as bad_zone:
            schedule.zone("Mars/Olympus")
    finally:
        use_language("en")

    zh = catalog("zh_CN")
    hint = " " + zh.gettext(ONLY) % {"status": "open", "allowed": "close"}
    assert refused.value.detail == zh.gettext(REFUSED) % {
        "action": "finish",
        "current": "open",
        "hint": hint,
    }
    assert str(bad_zone.value) == zh.gettext(UNKNOWN_ZONE) % {"name": "Mars/Olympus"}
    assert str(bad_zone.value) != UNKNOWN_ZONE % {"name": "Mars/Olympus"}


def test_the_same_refusal_in_english_is_unchanged() -> None:
    with pytest.raises(InvalidTransition) as refused:
        next_status(PeriodStatus.OPEN, PeriodAction.FINISH)

    assert refused.value.detail == "Cannot finish a period that is open. From open only: close."
