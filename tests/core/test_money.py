"""Money: exact minor units, strict parsing, and splits whose parts always sum to the whole."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from beyondbank.core.money import Money, allocate, bps_of, pro_rata, split_bps

amounts = st.integers(min_value=0, max_value=10**15)


def test_parse_is_exact_and_refuses_extra_decimals() -> None:
    assert Money.parse("12.50", "GBP") == Money(1250, "GBP")
    assert Money.parse("1500", "JPY") == Money(1500, "JPY")
    with pytest.raises(ValueError, match="more decimal places"):
        Money.parse("12.505", "GBP")
    with pytest.raises(ValueError, match="decimal places"):
        Money.parse("1.5", "JPY")
    with pytest.raises(ValueError, match="not a decimal"):
        Money.parse("twelve", "GBP")


def test_unknown_currency_and_float_amount_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown currency"):
        Money(100, "XXY")
    with pytest.raises(TypeError):
        Money(1.5, "GBP")  # type: ignore[arg-type]


def test_currencies_do_not_mix() -> None:
    with pytest.raises(ValueError, match="cannot combine"):
        Money(1, "GBP") + Money(1, "EUR")
    assert Money(150, "GBP") - Money(50, "GBP") == Money(100, "GBP")
    assert Money(5, "PTS").format() == "5 pts"


def test_format_uses_the_locale() -> None:
    assert Money(123456, "GBP").format("en_GB") == "£1,234.56"
    assert Money(123456, "CNY").format("zh_CN") == "¥1,234.56"


@given(amounts, st.integers(min_value=0, max_value=10_000))
def test_split_bps_parts_sum_to_whole(amount: int, bps: int) -> None:
    share, rest = split_bps(amount, bps)
    assert share + rest == amount
    assert share == amount * bps // 10_000
    assert 0 <= share <= amount


@given(
    amounts, st.lists(st.integers(min_value=0, max_value=1000), min_size=1, max_size=8), st.data()
)
def test_allocate_rounds_down_and_gives_remainder_to_named_line(
    amount: int, weights: list[int], data: st.DataObject
) -> None:
    if sum(weights) == 0:
        weights = [*weights[:-1], 1]
    target = data.draw(st.integers(min_value=0, max_value=len(weights) - 1))
    parts = allocate(amount, weights, remainder_to=target)
    assert sum(parts) == amount
    for i, (part, weight) in enumerate(zip(parts, weights, strict=True)):
        floor = amount * weight // sum(weights)
        assert part == floor or i == target
        assert part >= floor


@given(amounts, st.integers(min_value=1, max_value=10**9), st.data())
def test_pro_rata_never_exceeds_the_whole(
    amount: int, denominator: int, data: st.DataObject
) -> None:
    numerator = data.draw(st.integers(min_value=0, max_value=denominator))
    part = pro_rata(amount, numerator, denominator)
    assert 0 <= part <= amount
    assert Decimal(part) <= Decimal(amount) * numerator / denominator


def test_bps_rejects_out_of_range() -> None:
    assert bps_of(999, 1000) == 99
    with pytest.raises(ValueError, match="basis points"):
        bps_of(100, 10_001)
    with pytest.raises(ValueError, match="non-negative"):
        split_bps(-1, 10)
