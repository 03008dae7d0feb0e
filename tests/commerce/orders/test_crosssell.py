"""The bank's checkout offers: instalment plans that sum exactly, protection premiums by band."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from beyondbank.commerce.orders import crosssell


@given(
    st.integers(min_value=1, max_value=10**9),
    st.sampled_from(crosssell.INSTALMENT_MONTHS),
    st.dates(min_value=date(2020, 1, 1), max_value=date(2040, 12, 31)),
)
def test_a_plan_sums_to_the_total_with_the_remainder_first(
    total: int, months: int, placed: date
) -> None:
    plan = crosssell.instalment_plan(total, months, placed)
    amounts = [i.amount_minor for i in plan]
    assert sum(amounts) == total
    assert len(plan) == months
    assert amounts[1:] == [total // months] * (months - 1)
    assert amounts[0] == total // months + total % months
    dues = [i.due for i in plan]
    assert dues == sorted(dues)
    assert all(d.day <= placed.day for d in dues)  # same day, or the month's last
    assert (dues[0].year * 12 + dues[0].month) - (placed.year * 12 + placed.month) == 1


def test_month_ends_are_clamped() -> None:
    plan = crosssell.instalment_plan(300, 3, date(2027, 1, 31))
    assert [i.due for i in plan] == [date(2027, 2, 28), date(2027, 3, 31), date(2027, 4, 30)]


@pytest.mark.parametrize("months", [0, 1, 5, 24])
def test_only_3_6_or_12_months(months: int) -> None:
    with pytest.raises(ValueError, match="months"):
        crosssell.instalment_plan(1_000, months, date(2026, 11, 22))


@pytest.mark.parametrize(
    ("unit", "premium"),
    [(1, 299), (5_000, 299), (5_001, 799), (20_000, 799), (50_000, 1_499), (100_000, 5_000)],
)
def test_premium_bands(unit: int, premium: int) -> None:
    assert crosssell.protection_premium(unit) == premium


def test_premium_for_lines() -> None:
    assert crosssell.protection_for([(1_000, 3), (25_000, 1)]) == 3 * 299 + 1_499
