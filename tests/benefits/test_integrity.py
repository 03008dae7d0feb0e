"""Price integrity: a member benefit must be strictly better than what everyone gets."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from beyondbank.benefits.integrity import (
    PriceDeclaration,
    check_price_integrity,
    member_price,
    public_price,
)
from beyondbank.benefits.models import BenefitKind
from beyondbank.benefits.rules import RewardTerms

TEN_PERCENT = RewardTerms(BenefitKind.PERCENT_OFF, percent_bps=1000)


def test_the_seed_case_ten_percent_where_everyone_gets_ten_percent_is_rejected() -> None:
    verdict = check_price_integrity(
        TEN_PERCENT, "GBP", 0, PriceDeclaration(regular_price_minor=1000, public_discount_bps=1000)
    )
    assert not verdict.accepted
    assert verdict.reason.startswith(
        "Members would pay £9.00 on £10.00, the same as everyone (everyone gets 10% off)."
    )
    assert "strictly better" in verdict.reason
    assert verdict.fields == ("percent_bps", "max_reward_minor", "public_discount_bps")
    assert (verdict.member_price_minor, verdict.public_price_minor) == (900, 900)


def test_a_better_percentage_is_accepted_with_the_prices_in_words() -> None:
    verdict = check_price_integrity(
        RewardTerms(BenefitKind.PERCENT_OFF, percent_bps=1500),
        "GBP",
        0,
        PriceDeclaration(regular_price_minor=1000, public_discount_bps=1000),
    )
    assert verdict.accepted
    assert verdict.reason == "Members pay £8.50 on £10.00; everyone else pays £9.00."


def test_a_cap_that_bites_on_the_declared_goods_counts() -> None:
    capped = RewardTerms(BenefitKind.PERCENT_OFF, percent_bps=2000, max_reward_minor=100)
    verdict = check_price_integrity(
        capped, "GBP", 0, PriceDeclaration(regular_price_minor=1000, public_discount_bps=1000)
    )
    assert not verdict.accepted  # 20% capped at £1 is £9.00, as everyone pays


def test_a_worse_offer_says_members_would_pay_more() -> None:
    verdict = check_price_integrity(
        RewardTerms(BenefitKind.AMOUNT_OFF, fixed_minor=50),
        "GBP",
        0,
        PriceDeclaration(regular_price_minor=1000, public_price_minor=800),
    )
    assert not verdict.accepted
    assert "Members would pay £9.50 on £10.00, more than everyone (£8.00)" in verdict.reason
    assert "(the public price is £8.00)" in verdict.reason
    assert verdict.fields == ("fixed_minor", "public_price_minor")


def test_amount_off_against_no_public_offer_is_accepted() -> None:
    verdict = check_price_integrity(
        RewardTerms(BenefitKind.AMOUNT_OFF, fixed_minor=200),
        "GBP",
        0,
        PriceDeclaration(regular_price_minor=1000, public_discount_bps=0),
    )
    assert verdict.accepted
    assert verdict.public_price_minor == 1000


def test_the_lower_of_public_price_and_public_discount_is_what_everyone_pays() -> None:
    both = PriceDeclaration(
        regular_price_minor=1000, public_price_minor=880, public_discount_bps=1000
    )
    assert public_price(both) == (880, "public_price_minor")
    verdict = check_price_integrity(
        RewardTerms(BenefitKind.AMOUNT_OFF, fixed_minor=100), "GBP", 0, both
    )
    assert not verdict.accepted  # £9.00 for members, £8.80 for everyone


def test_spend_threshold_judged_on_the_declared_basket() -> None:
    spend_50_get_10 = RewardTerms(
        BenefitKind.SPEND_THRESHOLD, threshold_minor=5000, fixed_minor=1000
    )
    good = check_price_integrity(
        spend_50_get_10,
        "GBP",
        0,
        PriceDeclaration(regular_price_minor=5000, public_discount_bps=500),
    )
    assert good.accepted  # £40.00 for members, £47.50 for everyone
    small_basket = check_price_integrity(
        spend_50_get_10,
        "GBP",
        0,
        PriceDeclaration(regular_price_minor=3000, public_discount_bps=0),
    )
    assert not small_basket.accepted
    assert "do not reach the spend threshold (£50.00)" in small_basket.reason
    assert small_basket.fields == ("threshold_minor", "fixed_minor", "public_discount_bps")


def test_goods_below_the_minimum_spend_get_nothing() -> None:
    verdict = check_price_integrity(
        TEN_PERCENT,
        "GBP",
        2000,
        PriceDeclaration(regular_price_minor=1000, public_discount_bps=0),
    )
    assert not verdict.accepted
    assert "below the minimum spend (£20.00)" in verdict.reason


@pytest.mark.parametrize(
    ("declaration", "fields"),
    [
        (PriceDeclaration(public_discount_bps=1000), ("regular_price_minor",)),
        (
            PriceDeclaration(regular_price_minor=1000),
            ("public_price_minor", "public_discount_bps"),
        ),
        (
            PriceDeclaration(regular_price_minor=1000, public_price_minor=1200),
            ("public_price_minor",),
        ),
    ],
)
def test_price_kinds_need_a_sound_declaration(
    declaration: PriceDeclaration, fields: tuple[str, ...]
) -> None:
    verdict = check_price_integrity(TEN_PERCENT, "GBP", 0, declaration)
    assert not verdict.accepted
    assert verdict.fields == fields
    assert verdict.reason


@pytest.mark.parametrize(
    "kind",
    [BenefitKind.POINTS_MULTIPLIER, BenefitKind.GIFT, BenefitKind.FREE_TRIAL, BenefitKind.EVENT],
)
def test_non_price_kinds_must_be_exclusive_to_members(kind: BenefitKind) -> None:
    reward = RewardTerms(kind)
    exclusive = check_price_integrity(reward, "GBP", 0, PriceDeclaration(publicly_available=False))
    assert exclusive.accepted
    public = check_price_integrity(reward, "GBP", 0, PriceDeclaration(publicly_available=True))
    assert not public.accepted
    assert "Everyone can already get this" in public.reason
    assert public.fields == ("publicly_available",)
    undeclared = check_price_integrity(reward, "GBP", 0, PriceDeclaration())
    assert not undeclared.accepted
    assert undeclared.fields == ("publicly_available",)


@given(
    regular=st.integers(1, 10**7),
    rate=st.integers(1, 10_000),
    public_rate=st.integers(0, 10_000),
)
def test_a_percentage_passes_exactly_when_members_pay_strictly_less(
    regular: int, rate: int, public_rate: int
) -> None:
    reward = RewardTerms(BenefitKind.PERCENT_OFF, percent_bps=rate)
    declaration = PriceDeclaration(regular_price_minor=regular, public_discount_bps=public_rate)
    verdict = check_price_integrity(reward, "GBP", 0, declaration)
    members = member_price(reward, regular, 0)
    everyone = regular - regular * public_rate // 10_000
    assert verdict.accepted == (members < everyone)
    if rate <= public_rate:
        assert not verdict.accepted  # never better than an equal or bigger public discount
