"""Every split rounds down per line and gives the remainder to its documented party, and the parts
always add up to the whole: commission by category, tier bonuses, joint pool contributions,
monthly amounts shared over periods (pro rata by days), and the settlement posting itself."""

from __future__ import annotations

from datetime import date, timedelta
from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

from beyondbank.settlement import schedule, statements
from beyondbank.settlement.models import Frequency
from beyondbank.settlement.pools import joint_split
from beyondbank.settlement.schedule import Schedule

amounts = st.integers(min_value=0, max_value=10**12)
signed = st.integers(min_value=-(10**12), max_value=10**12)
bps = st.integers(min_value=0, max_value=10_000)


@given(signed, bps)
def test_commission_line_parts_sum_to_the_net_and_round_toward_zero(net: int, rate: int) -> None:
    commission, kept = statements.commission_split(net, rate)
    assert commission + kept == net
    exact = Fraction(net * rate, 10_000)
    # Rounded toward zero: a charge in the party's favour, a refund in the bank's.
    assert abs(commission) <= abs(exact) < abs(commission) + 1
    assert (commission >= 0) == (net >= 0) or commission == 0


@given(st.lists(st.tuples(signed, bps), min_size=1, max_size=12))
def test_commission_by_category_sums_to_its_lines_and_loses_under_one_unit_each(
    lines: list[tuple[int, int]],
) -> None:
    parts = [statements.commission_split(net, rate) for net, rate in lines]
    assert sum(c for c, _ in parts) + sum(k for _, k in parts) == sum(net for net, _ in lines)
    exact = sum(Fraction(net * rate, 10_000) for net, rate in lines)
    # Each line rounds toward zero: together they are off by less than one unit per line.
    assert abs(exact - sum(c for c, _ in parts)) < len(lines)


@st.composite
def tiers(draw: st.DrawFn) -> tuple[list[int], list[int]]:
    starts = sorted(draw(st.sets(st.integers(0, 10**9), min_size=1, max_size=8)))
    rates = draw(st.lists(bps, min_size=len(starts), max_size=len(starts)))
    return starts, rates


@given(signed, tiers())
def test_tier_bands_slice_net_sales_exactly_and_round_each_band_down(
    net: int, tier: tuple[list[int], list[int]]
) -> None:
    thresholds, rates = tier
    bands = statements.tier_bands(net, thresholds, rates)
    assert sum(b.slice_minor for b in bands) == max(max(net, 0) - thresholds[0], 0)
    for band in bands:
        assert band.bonus_minor + band.kept_minor == band.slice_minor
        assert band.bonus_minor == band.slice_minor * band.bonus_bps // 10_000
        assert band.slice_minor >= 0
        if band.to_minor is not None:
            assert band.slice_minor <= band.to_minor - band.from_minor


@given(amounts, bps)
def test_joint_contribution_party_rounds_down_bank_takes_the_remainder(
    amount: int, share: int
) -> None:
    party, bank = joint_split(amount, share)
    assert party + bank == amount
    assert party == amount * share // 10_000
    assert 0 <= bank - (amount - Fraction(amount * share, 10_000)) < 1


@st.composite
def schedules(draw: st.DrawFn) -> Schedule:
    frequency = draw(st.sampled_from(list(Frequency)))
    starts_on = date(2024, 1, 1) + timedelta(days=draw(st.integers(0, 1100)))
    days = draw(st.integers(1, 70)) if frequency is Frequency.DAYS else None
    return Schedule(starts_on=starts_on, frequency=frequency, period_days=days)


@settings(max_examples=300)
@given(schedules(), amounts, st.integers(0, 30))
def test_a_months_periods_share_a_monthly_amount_exactly(
    plan: Schedule, amount: int, months_later: int
) -> None:
    """Pro rata by days: each period's part rounded down, the remainder to the period holding
    the month's last day; days before the contract are allocated but never billed."""
    month = schedule.first_of_month(plan.starts_on)
    for _ in range(months_later):
        month = schedule.next_month(month)
    parts = schedule.month_allocation(amount, plan, month)
    assert sum(part for _, part in parts) == amount
    days = (schedule.next_month(month) - month).days
    weights = {key: 0 for key, _ in parts}
    cursor = month
    while cursor < schedule.next_month(month):
        key = None if cursor < plan.starts_on else schedule.period_containing(plan, cursor)[0]
        weights[key] += 1
        cursor += timedelta(days=1)
    last = parts[-1][0]
    assert last is not None  # the remainder goes to a real period: the month's last
    for key, part in parts:
        floor = amount * weights[key] // days
        if key == last:
            assert part >= floor
        else:
            assert part == floor
    # And read period by period, the shares of the month's periods add up the same way.
    if plan.starts_on <= month:
        periods = {k for k, _ in parts}
        total = 0
        for start in periods:
            assert start is not None
            _, end = schedule.period_containing(plan, start)
            share = schedule.period_share(amount, plan, start, end)
            # A period spilling into the neighbouring month also holds a part of that month.
            own = sum(p for k, p in parts if k == start)
            assert share >= own
            total += own
        assert total == amount


@given(amounts, amounts, st.integers(-(10**12), 10**12), st.integers(0, 10**12))
def test_settlement_postings_balance_and_leave_the_net_on_one_account(
    payable: int, receivable: int, commission: int, fees: int
) -> None:
    legs = statements.settlement_legs(payable, receivable, commission, fees)
    assert sum(legs.values()) == 0
    net = payable - receivable - commission - fees
    # After the posting: the payable holds a positive net, the receivable a negative one.
    left_on_payable = payable - legs.get("payable", 0)
    left_on_receivable = receivable + legs.get("receivable", 0)
    assert left_on_payable - left_on_receivable == net
    if net >= 0:
        assert (left_on_payable, left_on_receivable) == (net, 0)
    else:
        assert (left_on_payable, left_on_receivable) == (0, -net)
