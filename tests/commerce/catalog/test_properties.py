"""Properties: feed money is exact to the minor unit, and price periods never overlap whatever
sequence of prices is set."""

from __future__ import annotations

import itertools
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from beyondbank.commerce.catalog import service
from beyondbank.commerce.catalog.feed import _Bad, parse_money
from beyondbank.core.authz import SYSTEM
from beyondbank.core.uow import UnitOfWork
from tests.commerce.factories import make_product
from tests.factories import make_partner


@given(st.integers(min_value=1, max_value=10**12))
def test_gbp_amounts_round_trip_exactly(minor: int) -> None:
    text = f"{minor // 100}.{minor % 100:02d}"
    assert parse_money(text, "GBP", "public_price") == minor
    assert parse_money(text.rstrip("0").rstrip("."), "GBP", "public_price") == minor


@given(st.integers(min_value=0, max_value=10**9), st.integers(min_value=1, max_value=9))
def test_a_third_decimal_is_refused_never_rounded(pounds: int, thousandth: int) -> None:
    with pytest.raises(_Bad):
        parse_money(f"{pounds}.00{thousandth}", "GBP", "public_price")


@given(st.integers(min_value=1, max_value=10**6))
def test_yen_has_no_decimals(minor: int) -> None:
    assert parse_money(str(minor), "JPY", "public_price") == minor
    with pytest.raises(_Bad):
        parse_money(f"{minor}.5", "JPY", "public_price")


# A price change: start (hours from now), length in hours (None: open), and the public price.
changes = st.lists(
    st.tuples(
        st.integers(min_value=-48, max_value=96),
        st.one_of(st.none(), st.integers(min_value=1, max_value=72)),
        st.integers(min_value=2, max_value=5_000),
    ),
    min_size=1,
    max_size=8,
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(changes)
def test_price_periods_never_overlap_and_the_last_change_holds(
    uow: UnitOfWork, steps: list[tuple[int, int | None, int]]
) -> None:
    now = uow.clock.now()
    product = make_product(uow, make_partner(uow), valid_from=now - timedelta(days=3))
    for start_h, length_h, public in steps:
        start = now + timedelta(hours=start_h)
        end = start + timedelta(hours=length_h) if length_h else None
        price = service.PriceIn(public, public - 1, start, end)
        service.add_price(uow, SYSTEM, product, price)
    periods = service.price_periods(uow, product.id)
    for earlier, later in itertools.pairwise(periods):
        assert earlier.valid_to is not None
        assert earlier.valid_to <= later.valid_from
    start_h, _, public = steps[-1]
    # The last change applies at its start, unless a period already starting later cut it
    # to nothing (it never starts before its own start).
    at = now + timedelta(hours=start_h)
    assert service.price_now(uow, product, at) == (public, public - 1)
