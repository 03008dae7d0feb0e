"""Benefits answer in the caller's language: a refused redemption, and the reward in words with
money written as a reader of that language expects it."""

from __future__ import annotations

import pytest
from babel.numbers import format_currency

from beyondbank.benefits import lifecycle, rules
from beyondbank.benefits.models import BenefitKind, RedemptionStatus
from beyondbank.core.errors import InvalidTransition
from tests.translated import chinese, speaking


def test_reversing_a_reversed_redemption_is_refused_in_chinese_and_in_english() -> None:
    with speaking("zh_CN"):
        with pytest.raises(InvalidTransition) as problem:
            lifecycle.redemption_next(RedemptionStatus.REVERSED, "reverse")
        body = problem.value.as_dict()  # as the request answers, in its language
    assert body["detail"] == chinese(
        "Cannot %(action)s a redemption that is %(current)s.", action="reverse", current="reversed"
    )
    assert body["title"] == chinese("Not allowed in the current state")

    with pytest.raises(InvalidTransition) as problem:
        lifecycle.redemption_next(RedemptionStatus.REVERSED, "reverse")
    assert problem.value.detail == "Cannot reverse a redemption that is reversed."
    assert problem.value.as_dict()["title"] == "Not allowed in the current state"


def test_the_reward_in_words_is_in_the_viewers_language_and_money_format() -> None:
    reward = rules.RewardTerms(BenefitKind.PERCENT_OFF, percent_bps=2000, max_reward_minor=1000)
    with speaking("zh_CN"):
        words = rules.describe_reward(reward, "GBP")
    most = format_currency(10, "GBP", locale="zh_Hans_CN")
    assert words == chinese("%(percent)s off, up to %(most)s", percent="20%", most=most)

    assert rules.describe_reward(reward, "GBP") == "20% off, up to £10.00"
