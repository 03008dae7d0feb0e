"""Tests of the card-linked matching engine and its oracle.

The engine against the oracle on generated inputs, each rule on hand-made examples with exact
figures, and the chunking property that lets the service feed the engine in chunks.
"""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta
from unittest.mock import patch

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from beyondbank.cards import engine, frames, oracle
from beyondbank.cards.frames import Outcome, Programme, State
from tests.cards import strategies as s

OUTPUTS = ("rewards", "usage_added", "consumed", "grants", "purchases", "duplicates")
SCHEMAS = {
    "rewards": frames.REWARDS,
    "usage_added": frames.USAGE_ADDED,
    "consumed": frames.CONSUMED,
    "grants": frames.GRANTS,
    "purchases": frames.PRIOR_PURCHASES,
    "duplicates": frames.DUPLICATES,
}
# A Monday, 10:00 in London (GMT).
MONDAY = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


def both(feed: pl.DataFrame, programme: Programme, state: State | None = None) -> Outcome:
    """The oracle's outcome, after checking that the engine's is identical."""
    state = state or State()
    expected = oracle.match(feed, programme, state)
    actual = engine.match(feed, programme, state)
    for name in OUTPUTS:
        assert getattr(expected, name).schema == SCHEMAS[name], name
        assert_frame_equal(getattr(actual, name), getattr(expected, name))
    return expected


def cards(*links: tuple[str, int]) -> pl.DataFrame:
    return s.frame(
        [{"card_token": t, "member_id": m, "valid_from": None, "valid_to": None} for t, m in links],
        frames.CARDS,
    )


def programme(*benefit_rows: dict[str, object], **parts: pl.DataFrame) -> Programme:
    return Programme(
        cards=parts.get("cards", cards(("c1", 1), ("c2", 2))),
        benefits=s.benefits(benefit_rows),
        member_circles=parts.get("member_circles", s.frame([], frames.MEMBER_CIRCLES)),
        benefit_targets=parts.get("benefit_targets", s.frame([], frames.BENEFIT_TARGETS)),
    )


def buy(txn_id: str, amount: int, at: datetime = MONDAY, **row: object) -> dict[str, object]:
    return {
        "txn_id": txn_id,
        "card_token": "c1",
        "merchant_id": 10,
        "amount_minor": amount,
        "txn_time": at,
        **row,
    }


def refund(
    txn_id: str, original: str, amount: int, at: datetime, **row: object
) -> dict[str, object]:
    return buy(txn_id, amount, at, **{"type": frames.REFUND, "original_txn_id": original, **row})


def ten_percent(benefit_id: int = 1, **row: object) -> dict[str, object]:
    return {"benefit_id": benefit_id, "merchant_id": 10, "percent_bps": 1000, **row}


def rewarded(outcome: Outcome) -> list[tuple[str, int | None, int]]:
    """(txn_id, cash benefit, amount) of each reward row."""
    rows = outcome.rewards.filter(pl.col("kind") == frames.REWARD)
    return list(rows.select("txn_id", "benefit_id", "amount_minor").iter_rows())


# -- the engine equals the oracle ----------------------------------------------------------------


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(s.scenarios())
def test_engine_equals_oracle(scenario: tuple[pl.DataFrame, Programme, State]) -> None:
    both(*scenario)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(s.scenarios(), st.sampled_from([engine.US_PER_HOUR * 6, engine.US_PER_DAY]))
def test_local_times_are_exact_when_offset_buckets_hold_a_transition(
    scenario: tuple[pl.DataFrame, Programme, State], bucket: int
) -> None:
    # Coarse buckets put DST changes inside them: those rows take the row-by-row conversion.
    with patch.object(engine, "OFFSET_BUCKET_US", bucket):
        both(*scenario)


def test_local_times_beyond_the_offset_table_are_converted_row_by_row() -> None:
    feed = s.feed(
        [
            buy("old", 1000, datetime(2026, 10, 25, 0, 30, tzinfo=UTC)),
            # 34 years later: more 15-minute buckets than the offset table holds.
            buy("new", 1000, datetime(2060, 1, 15, 1, 30, tzinfo=UTC)),
        ]
    )
    benefit = ten_percent(hour_start=1, hour_end=2, valid_to=None)
    assert rewarded(both(feed, programme(benefit))) == [("old", 1, 100), ("new", 1, 100)]


# -- rule 1: duplicates ----------------------------------------------------------------------------


def test_a_repeated_txn_id_counts_once_from_its_lowest_line() -> None:
    feed = s.feed(
        [
            buy("p1", 1000, line=5),
            buy("p1", 2000, line=3),  # later in the input, but the lower line
            buy("p2", 1000, line=4),
            buy("p1", 3000, line=9),
        ]
    )
    outcome = both(feed, programme(ten_percent()))
    assert rewarded(outcome) == [("p1", 1, 200), ("p2", 1, 100)]
    assert outcome.duplicates.rows() == [(5, "p1"), (9, "p1")]


# -- rules 2 and 3: merchant and member ------------------------------------------------------------


def test_the_member_is_the_card_link_valid_at_the_transaction_time() -> None:
    links = s.frame(
        [
            {"card_token": "c1", "member_id": 1, "valid_to": MONDAY},  # ends just before
            {"card_token": "c1", "member_id": 2, "valid_from": MONDAY},
            {"card_token": "c2", "member_id": 3, "valid_from": MONDAY + timedelta(hours=1)},
        ],
        frames.CARDS,
    )
    feed = s.feed(
        [
            buy("a", 1000),
            buy("b", 1000, MONDAY - timedelta(seconds=1)),
            buy("c", 1000, card_token="c2"),  # not linked yet
            buy("d", 1000, card_token="zz"),  # unknown card
            buy("e", 1000, merchant_id=None),  # unresolved merchant
            buy("f", 1000, merchant_id=11),  # a merchant without benefits
        ]
    )
    outcome = both(feed, programme(ten_percent(), cards=links))
    assert outcome.rewards.select("txn_id", "member_id").rows() == [("b", 1), ("a", 2)]
    assert outcome.purchases.select("txn_id", "member_id", "merchant_id").rows() == [
        ("b", 1, 10),
        ("a", 2, 10),
        ("f", 2, 11),
    ]


def test_overlapping_links_go_to_the_latest_start_then_the_lowest_member() -> None:
    links = s.frame(
        [
            {"card_token": "c1", "member_id": 1},
            {"card_token": "c1", "member_id": 3, "valid_from": MONDAY - timedelta(days=1)},
            {"card_token": "c1", "member_id": 2, "valid_from": MONDAY - timedelta(days=1)},
        ],
        frames.CARDS,
    )
    outcome = both(s.feed([buy("a", 1000)]), programme(ten_percent(), cards=links))
    assert outcome.rewards.get_column("member_id").to_list() == [2]


# -- rule 3: processing order ----------------------------------------------------------------------


def test_purchases_take_a_budget_in_time_then_txn_id_order_whatever_the_input_order() -> None:
    feed = s.feed(
        [
            buy("b", 1000),
            buy("0", 1000, MONDAY + timedelta(minutes=1)),
            buy("a", 1000),
        ]
    )
    outcome = both(feed, programme(ten_percent(budget_remaining_minor=150)))
    # "a" gets its 100 in full; "b" gets the 50 left; "0" comes later and finds nothing.
    assert rewarded(outcome) == [("a", 1, 100), ("b", 1, 50)]
    assert outcome.consumed.rows() == [(1, 150, 2)]


# -- rule 4: eligibility ---------------------------------------------------------------------------


def test_the_schedule_is_read_in_the_benefits_time_zone() -> None:
    benefit = ten_percent(timezone="Asia/Shanghai", weekdays=[1], hour_start=8, hour_end=9)
    feed = s.feed(
        [
            buy("mon-0830", 1000, datetime(2026, 11, 23, 0, 30, tzinfo=UTC)),
            buy("sun-0830", 1000, datetime(2026, 11, 22, 0, 30, tzinfo=UTC)),
            buy("mon-0900", 1000, datetime(2026, 11, 23, 1, 0, tzinfo=UTC)),
        ]
    )
    assert rewarded(both(feed, programme(benefit))) == [("mon-0830", 1, 100)]


def test_a_repeated_wall_clock_hour_counts_by_its_local_hour_both_times() -> None:
    # London falls back on 25 Oct 2026: 01:30 local happens at 00:30 and 01:30 UTC.
    benefit = ten_percent(hour_start=1, hour_end=2)
    feed = s.feed(
        [
            buy("bst", 1000, datetime(2026, 10, 25, 0, 30, tzinfo=UTC)),
            buy("gmt", 1000, datetime(2026, 10, 25, 1, 30, tzinfo=UTC)),
            buy("after", 1000, datetime(2026, 10, 25, 2, 30, tzinfo=UTC)),
        ]
    )
    assert rewarded(both(feed, programme(benefit))) == [("bst", 1, 100), ("gmt", 1, 100)]


def test_dates_are_inclusive_local_dates() -> None:
    # 2026-11-30 23:30 in New York is 2026-12-01 04:30 UTC.
    benefit = ten_percent(
        timezone="America/New_York", valid_from=date(2026, 11, 30), valid_to=date(2026, 11, 30)
    )
    feed = s.feed(
        [
            buy("last-minute", 1000, datetime(2026, 12, 1, 4, 30, tzinfo=UTC)),
            buy("next-day", 1000, datetime(2026, 12, 1, 5, 0, tzinfo=UTC)),
            buy("day-before", 1000, datetime(2026, 11, 30, 4, 30, tzinfo=UTC)),
        ]
    )
    assert rewarded(both(feed, programme(benefit))) == [("last-minute", 1, 100)]


def test_currency_and_minimum_spend() -> None:
    feed = s.feed([buy("low", 999), buy("enough", 1000), buy("euros", 5000, currency="EUR")])
    outcome = both(feed, programme(ten_percent(min_spend_minor=1000)))
    assert rewarded(outcome) == [("enough", 1, 100)]


def test_targeted_benefits_reach_only_members_of_their_circles() -> None:
    feed = s.feed([buy("one", 1000), buy("two", 1000, card_token="c2")])
    outcome = both(
        feed,
        programme(
            ten_percent(),
            member_circles=s.frame(
                [{"member_id": 1, "circle_id": 7}, {"member_id": 2, "circle_id": 8}],
                frames.MEMBER_CIRCLES,
            ),
            benefit_targets=s.frame(
                [{"benefit_id": 1, "circle_id": 7}, {"benefit_id": 1, "circle_id": 9}],
                frames.BENEFIT_TARGETS,
            ),
        ),
    )
    assert rewarded(outcome) == [("one", 1, 100)]


def test_new_to_merchant_looks_back_n_days_over_earlier_runs_and_this_chunk() -> None:
    prior = s.frame(
        [
            # Exactly 30 days before "one": not new. A microsecond more: new.
            {
                "txn_id": "h1",
                "member_id": 1,
                "merchant_id": 10,
                "txn_time": MONDAY - timedelta(days=30),
            },
            {
                "txn_id": "h2",
                "member_id": 2,
                "merchant_id": 10,
                "txn_time": MONDAY - timedelta(days=30, microseconds=1),
            },
            # Elsewhere, or later than the purchase: no effect.
            {"txn_id": "h3", "member_id": 2, "merchant_id": 11, "txn_time": MONDAY},
            {
                "txn_id": "h4",
                "member_id": 2,
                "merchant_id": 10,
                "txn_time": MONDAY + timedelta(days=9),
            },
        ],
        frames.PRIOR_PURCHASES,
    )
    feed = s.feed(
        [
            buy("one", 1000),
            buy("two", 1000, card_token="c2"),
            buy("two-again", 1000, MONDAY + timedelta(hours=1), card_token="c2"),
        ]
    )
    outcome = both(
        feed, programme(ten_percent(new_to_merchant_days=30)), State(prior_purchases=prior)
    )
    assert rewarded(outcome) == [("two", 1, 100)]


# -- rule 5: caps and selection --------------------------------------------------------------------


def test_the_member_limit_counts_per_local_period_with_earlier_uses() -> None:
    # Auckland is 13 hours ahead in November: 10:00 UTC Monday is 23:00 Monday there.
    benefit = ten_percent(timezone="Pacific/Auckland", member_limit=1, limit_period="day")
    feed = s.feed(
        [
            buy("mon", 1000),
            buy("tue", 1000, MONDAY + timedelta(minutes=90)),
            buy("tue-again", 1000, MONDAY + timedelta(minutes=105)),
            buy("other-member", 1000, card_token="c2"),
        ]
    )
    usage = s.frame(
        [{"benefit_id": 1, "member_id": 2, "period_key": "2026-11-23", "uses": 1}], frames.USAGE
    )
    outcome = both(feed, programme(benefit), State(usage=usage))
    assert rewarded(outcome) == [("mon", 1, 100), ("tue", 1, 100)]
    assert outcome.usage_added.rows() == [(1, 1, "2026-11-23", 1), (1, 1, "2026-11-24", 1)]


def test_earlier_uses_of_one_key_add_up() -> None:
    usage = s.frame(
        [{"benefit_id": 1, "member_id": 1, "period_key": "campaign", "uses": 1}] * 2, frames.USAGE
    )
    feed = s.feed([buy("one", 1000), buy("two", 1000, card_token="c2")])
    outcome = both(feed, programme(ten_percent(member_limit=2)), State(usage=usage))
    assert rewarded(outcome) == [("two", 1, 100)]


def test_week_and_month_limits_use_iso_weeks_and_calendar_months() -> None:
    weekly = ten_percent(1, member_limit=1, limit_period="week")
    monthly = {
        "benefit_id": 2,
        "merchant_id": 10,
        "fixed_minor": 100,
        "kind": "amount_off",
        "member_limit": 1,
        "limit_period": "month",
    }
    feed = s.feed(
        [
            buy("sun", 1000, datetime(2026, 11, 29, 12, tzinfo=UTC)),
            buy("mon", 1000, datetime(2026, 11, 30, 12, tzinfo=UTC)),
            buy("tue", 1000, datetime(2026, 12, 1, 12, tzinfo=UTC)),
            buy("wed", 1000, datetime(2026, 12, 2, 12, tzinfo=UTC)),
        ]
    )
    outcome = both(feed, programme(weekly, monthly))
    # Ties go to the lower id; once the week's use is gone the monthly one steps in.
    assert rewarded(outcome) == [("sun", 1, 100), ("mon", 1, 100), ("tue", 2, 100)]
    assert outcome.usage_added.rows() == [
        (1, 1, "2026-W48", 1),
        (1, 1, "2026-W49", 1),
        (2, 1, "2026-12", 1),
    ]


def test_selection_is_by_grant_after_the_budget_and_ties_go_to_the_lowest_id() -> None:
    feed = s.feed([buy("a", 2000), buy("b", 2000, MONDAY + timedelta(minutes=1))])
    outcome = both(
        feed,
        programme(
            ten_percent(1, budget_remaining_minor=250),  # 200, then only 50 left
            {"benefit_id": 3, "merchant_id": 10, "kind": "amount_off", "fixed_minor": 150},
            {
                "benefit_id": 2,
                "merchant_id": 10,
                "kind": "spend_threshold",
                "threshold_minor": 2000,
                "fixed_minor": 150,
            },
        ),
    )
    assert rewarded(outcome) == [("a", 1, 200), ("b", 2, 150)]


def test_a_benefit_without_budget_or_quantity_left_is_not_eligible() -> None:
    feed = s.feed([buy(f"p{i}", 1000, MONDAY + timedelta(minutes=i)) for i in range(3)])
    outcome = both(
        feed,
        programme(
            ten_percent(1, quantity_remaining=1),
            {
                "benefit_id": 2,
                "merchant_id": 10,
                "kind": "amount_off",
                "fixed_minor": 50,
                "budget_remaining_minor": 60,
            },
            ten_percent(3, budget_remaining_minor=0),
        ),
    )
    assert rewarded(outcome) == [("p0", 1, 100), ("p1", 2, 50), ("p2", 2, 10)]
    assert outcome.consumed.rows() == [(1, 100, 1), (2, 60, 2)]


# -- rules 6 and 7: points, funding, commission ----------------------------------------------------


def test_a_purchase_gets_one_cash_grant_and_one_points_award() -> None:
    points = {"kind": "points_multiplier", "merchant_id": 10, "commission_bps": 500}
    feed = s.feed(
        [buy("gbp", 2599), buy("jpy", 2599, MONDAY + timedelta(minutes=1), currency="JPY")]
    )
    outcome = both(
        feed,
        programme(
            ten_percent(1, merchant_share_bps=3333, commission_bps=250),
            {**points, "benefit_id": 2, "points_multiplier": 2},
            {**points, "benefit_id": 3, "points_multiplier": 3, "quantity_remaining": 5},
            {
                **points,
                "benefit_id": 4,
                "points_multiplier": 3,
                "currency": "JPY",
                "member_limit": 1,
            },
            {**points, "benefit_id": 5, "points_multiplier": 3, "currency": "JPY"},
        ),
    )
    rows = outcome.rewards.select(
        "txn_id",
        "benefit_id",
        "amount_minor",
        "merchant_funded_minor",
        "bank_funded_minor",
        "commission_minor",
        "points_benefit_id",
        "points",
    ).rows()
    assert rows == [
        # 10% of 25.99 is 2.59; the merchant funds floor(259 × 33.33%) = 86; 2.5% commission.
        ("gbp", 1, 259, 86, 173, 64, 3, 75),
        # Points only (yen have no minor unit): the commission is the points benefit's 5%.
        ("jpy", None, 0, 0, 0, 129, 4, 7797),
    ]
    assert outcome.consumed.rows() == [(1, 259, 1), (3, 0, 1), (4, 0, 1)]


# -- rule 8: refunds and chargebacks ---------------------------------------------------------------


def test_refunds_claw_back_pro_rata_up_to_what_was_granted() -> None:
    benefits = programme(
        ten_percent(1, merchant_share_bps=3333, commission_bps=100),
        {"benefit_id": 2, "merchant_id": 10, "kind": "points_multiplier", "points_multiplier": 1},
    )
    later = MONDAY + timedelta(days=1)
    feed = s.feed(
        [
            refund(
                "r0", "p", 3000, MONDAY - timedelta(hours=1)
            ),  # before its purchase: still counts
            buy("p", 10_000),
            refund("r1", "p", 9000, later, type=frames.CHARGEBACK),
            refund("r2", "p", 100, later + timedelta(hours=1)),  # nothing left to claw back
            refund("r3", "p", 5000, later, currency="EUR"),  # another currency: ignored
            refund("r4", "nope", 5000, later),
        ]
    )
    outcome = both(feed, benefits)
    rows = outcome.rewards.select(
        "kind",
        "txn_id",
        "original_txn_id",
        "txn_amount_minor",
        "amount_minor",
        "merchant_funded_minor",
        "bank_funded_minor",
        "commission_minor",
        "points",
    ).rows()
    assert rows == [
        ("reward", "p", None, 10_000, 1000, 333, 667, 100, 100),
        ("clawback", "r0", "p", 3000, 300, 99, 201, 30, 30),
        # min(900, 700) left; the merchant's part brings its total to exactly 333.
        ("clawback", "r1", "p", 9000, 700, 234, 466, 70, 70),
    ]
    assert outcome.grants.select(
        "txn_id",
        "refunded_minor",
        "clawed_back_minor",
        "merchant_clawed_back_minor",
        "commission_clawed_back_minor",
        "points_clawed_back",
    ).rows() == [("p", 12_100, 1000, 333, 100, 100)]


def test_refunds_of_earlier_runs_grants_update_those_grants() -> None:
    prior = s.grants(
        [
            {
                "txn_id": "g1",
                "member_id": 1,
                "merchant_id": 10,
                "purchase_amount_minor": 3333,
                "benefit_id": 1,
                "reward_minor": 333,
                "merchant_funded_minor": 100,
                "commission_minor": 33,
                "refunded_minor": 1111,
                "clawed_back_minor": 111,
                "merchant_clawed_back_minor": 33,
                "commission_clawed_back_minor": 11,
            },
            {
                "txn_id": "g2",
                "member_id": 1,
                "merchant_id": 10,
                "purchase_amount_minor": 1000,
                "benefit_id": 1,
                "reward_minor": 100,
            },
        ]
    )
    feed = s.feed([refund("r1", "g1", 2222, MONDAY), buy("p", 1000)])
    outcome = both(feed, programme(ten_percent()), State(grants=prior))
    assert outcome.rewards.filter(pl.col("kind") == frames.CLAWBACK).select(
        "txn_id",
        "purchase_amount_minor",
        "amount_minor",
        "merchant_funded_minor",
        "commission_minor",
        "benefit_id",
    ).rows() == [("r1", 3333, 222, 67, 22, 1)]
    assert outcome.grants.select(
        "txn_id", "refunded_minor", "clawed_back_minor", "merchant_clawed_back_minor"
    ).rows() == [
        ("p", 0, 0, 0),  # this chunk's grants first, then the earlier ones it changed
        ("g1", 3333, 333, 100),
    ]


# -- chunking ---------------------------------------------------------------------------------------


def _runnable_in_chunks(feed: pl.DataFrame) -> pl.DataFrame:
    """The feed as the service sends it: no repeated txn_id, sorted, no refund before its purchase."""
    feed = feed.sort("line").unique("txn_id", keep="first").sort(["txn_time", "txn_id"])
    order = {txn_id: i for i, txn_id in enumerate(feed.get_column("txn_id").to_list())}
    keep = [
        original is None or order.get(original, -1) < order[txn_id]
        for txn_id, original in feed.select("txn_id", "original_txn_id").iter_rows()
    ]
    return feed.filter(pl.Series(keep))


def _sorted_state(programme: Programme, state: State) -> tuple[pl.DataFrame, ...]:
    return (
        programme.benefits.sort("benefit_id"),
        state.usage.sort(["benefit_id", "member_id", "period_key"]),
        state.prior_purchases.sort("txn_id"),
        state.grants.sort("txn_id"),
    )


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(s.scenarios(), st.lists(st.integers(0, 40), max_size=4))
def test_chunks_threaded_through_advance_give_the_same_rewards_and_state(
    scenario: tuple[pl.DataFrame, Programme, State], cuts: list[int]
) -> None:
    raw, programme_, state = scenario
    feed = _runnable_in_chunks(raw)
    whole = engine.match(feed, programme_, state)
    expected_state = _sorted_state(*engine.advance(programme_, state, whole))

    bounds = sorted({0, feed.height, *(min(c, feed.height) for c in cuts)})
    rewards = []
    for start, end in itertools.pairwise(bounds):
        outcome = engine.match(feed.slice(start, end - start), programme_, state)
        rewards.append(outcome.rewards)
        programme_, state = engine.advance(programme_, state, outcome)

    key = ["kind", "txn_time", "txn_id"]
    assert_frame_equal(
        pl.concat([whole.rewards.clear(), *rewards]).sort(key), whole.rewards.sort(key)
    )
    for actual, expected in zip(_sorted_state(programme_, state), expected_state, strict=True):
        assert_frame_equal(actual, expected)


def test_advance_applies_an_outcome_to_the_programme_and_state() -> None:
    benefits = programme(
        ten_percent(1, budget_remaining_minor=1000, quantity_remaining=10, member_limit=5),
        ten_percent(2, merchant_id=11),
    )
    usage = s.frame(
        [{"benefit_id": 1, "member_id": 1, "period_key": "campaign", "uses": 2}], frames.USAGE
    )
    outcome = engine.match(s.feed([buy("p", 1000)]), benefits, State(usage=usage))
    after, state = engine.advance(benefits, State(usage=usage), outcome)
    assert after.benefits.select(
        "benefit_id", "budget_remaining_minor", "quantity_remaining"
    ).rows() == [
        (1, 900, 9),
        (2, None, None),
    ]
    assert state.usage.rows() == [(1, 1, "campaign", 3)]
    assert state.prior_purchases.get_column("txn_id").to_list() == ["p"]
    assert state.grants.get_column("txn_id").to_list() == ["p"]


@pytest.mark.parametrize("name", OUTPUTS)
def test_an_empty_chunk_gives_empty_frames_of_the_contract(name: str) -> None:
    outcome = both(s.feed([]), programme(ten_percent()))
    assert getattr(outcome, name).is_empty()
