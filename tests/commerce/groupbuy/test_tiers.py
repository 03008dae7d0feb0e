"""Tier pricing as properties: the final price is the highest tier the total reaches, each order
gets back exactly its units times the difference, and what customers pay net is the total at
the final price."""

from __future__ import annotations

from itertools import pairwise

from hypothesis import given
from hypothesis import strategies as st

from beyondbank.commerce.groupbuy import tiers as pricing
from beyondbank.commerce.groupbuy.tiers import Tier


@st.composite
def tier_lists(draw: st.DrawFn) -> list[Tier]:
    """Valid tiers: from 1 unit, strictly more units and strictly lower prices each step."""
    count = draw(st.integers(1, 6))
    steps = draw(st.lists(st.integers(1, 50), min_size=count - 1, max_size=count - 1))
    cuts = draw(st.lists(st.integers(1, 500), min_size=count - 1, max_size=count - 1))
    start = draw(st.integers(sum(cuts) + 1, sum(cuts) + 100_000))
    result = [Tier(1, start)]
    for step, cut in zip(steps, cuts, strict=True):
        last = result[-1]
        result.append(Tier(last.min_units + step, last.unit_minor - cut))
    return result


@given(tier_lists(), st.integers(0, 400))
def test_the_final_price_is_the_highest_tier_the_total_reaches(
    tiers: list[Tier], total: int
) -> None:
    final = pricing.final_unit_minor(tiers, total)
    reached = [t for t in tiers if t.min_units <= total]
    expected = (
        max(reached, key=lambda t: t.min_units).unit_minor if reached else tiers[0].unit_minor
    )
    assert final == expected
    # the more units, never the higher price
    assert pricing.final_unit_minor(tiers, total + 1) <= final


@given(tier_lists())
def test_the_boundaries_of_every_tier(tiers: list[Tier]) -> None:
    for lower, upper in pairwise(tiers):
        assert pricing.final_unit_minor(tiers, upper.min_units - 1) == lower.unit_minor
        assert pricing.final_unit_minor(tiers, upper.min_units) == upper.unit_minor
        assert pricing.following(tiers, upper.min_units - 1) == upper
        assert pricing.reached(tiers, upper.min_units) == upper


@given(tier_lists(), st.lists(st.integers(1, 10), min_size=1, max_size=40))
def test_refunds_leave_exactly_the_total_at_the_final_price(
    tiers: list[Tier], quantities: list[int]
) -> None:
    entry = pricing.entry(tiers).unit_minor
    total = sum(quantities)
    final = pricing.final_unit_minor(tiers, total)
    captured = [q * entry for q in quantities]
    refunds = [pricing.difference_refund(q, entry, final) for q in quantities]
    assert refunds == [q * (entry - final) for q in quantities]
    assert all(0 <= r <= c for r, c in zip(refunds, captured, strict=True))
    assert sum(captured) - sum(refunds) == total * final


@given(tier_lists(), st.integers(0, 400))
def test_units_to_the_next_tier(tiers: list[Tier], total: int) -> None:
    following = pricing.following(tiers, total)
    if following is None:
        assert total >= tiers[-1].min_units
    else:
        assert following.min_units > total
        assert all(t.min_units <= total for t in tiers if t.min_units < following.min_units)


@given(tier_lists(), st.integers(1, 10**6))
def test_valid_tiers_below_the_public_price_pass_the_check(tiers: list[Tier], margin: int) -> None:
    assert pricing.check(tiers, tiers[0].unit_minor + margin) == []


def test_the_check_names_each_broken_rule() -> None:
    errors = pricing.check([Tier(2, 900), Tier(2, 950), Tier(10, 1_300)], public_minor=1_000)
    assert {(e.field, e.message.split(" ")[0]) for e in errors} == {
        ("body.tiers.0.min_units", "the"),
        ("body.tiers.1.min_units", "must"),
        ("body.tiers.1.unit_price", "must"),
        ("body.tiers.2.unit_price", "must"),
    }
    assert pricing.check([], public_minor=1_000)[0].field == "body.tiers"
    at_public = pricing.check([Tier(1, 1_000)], public_minor=1_000)
    assert at_public[0].field == "body.tiers.0.unit_price"
    assert "below the product's public price" in at_public[0].message
