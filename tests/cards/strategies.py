"""Hypothesis strategies and frame builders for the card-linked matching tests.

Small programmes, card feeds and prior state that crowd the rules' edges: period boundaries,
DST changes, ties, exhausted budgets, refunds larger than the purchase, duplicates.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

import polars as pl
from hypothesis import strategies as st

from beyondbank.benefits import rules
from beyondbank.benefits.models import LimitPeriod
from beyondbank.cards import frames
from beyondbank.cards.frames import Programme, State

Row = dict[str, Any]

ZONES = ("Europe/London", "Asia/Shanghai", "America/New_York", "Pacific/Auckland")
# Feeds cluster around instants where local dates, weeks, months or offsets change somewhere.
ANCHORS = (
    datetime(2026, 3, 29, 0, 30, tzinfo=UTC),  # London springs forward at 01:00 UTC
    datetime(2026, 10, 25, 0, 30, tzinfo=UTC),  # London falls back at 01:00 UTC
    datetime(2026, 3, 8, 6, 30, tzinfo=UTC),  # New York springs forward at 07:00 UTC
    datetime(2026, 4, 4, 13, 30, tzinfo=UTC),  # Auckland falls back at 14:00 UTC
    datetime(2026, 9, 26, 13, 30, tzinfo=UTC),  # Auckland springs forward at 14:00 UTC
    datetime(2026, 12, 31, 15, 0, tzinfo=UTC),  # new year (and ISO week) in Shanghai at 16:00
    datetime(2027, 1, 3, 23, 0, tzinfo=UTC),  # Sunday to Monday in London; Monday in Auckland
    datetime(2026, 11, 30, 10, 0, tzinfo=UTC),  # month end in Auckland, not in New York
)
MERCHANTS = (1, 2, 3)
MEMBERS = (1, 2, 3, 4)
TOKENS = ("c1", "c2", "c3", "c4", "c5")
CIRCLES = (1, 2, 3)
PRIOR_GRANT_IDS = ("g1", "g2", "g3")

FEED_DEFAULTS: Row = {
    "network_ref": "ref",
    "type": frames.PURCHASE,
    "original_txn_id": None,
    "currency": "GBP",
    "mcc": "5812",
    "acquirer_merchant_id": "ACQ",
    "terminal_id": None,
    "acceptor_name_location": "SHOP",
    "location_id": None,
    "resolved_by": "terminal",
    "confidence": 1.0,
}
BENEFIT_DEFAULTS: Row = {
    "kind": "percent_off",
    "active": True,
    "currency": "GBP",
    "valid_from": date(2025, 1, 1),
    "valid_to": date(2027, 12, 31),
    "weekdays": [1, 2, 3, 4, 5, 6, 7],
    "hour_start": 0,
    "hour_end": 24,
    "timezone": "Europe/London",
    "min_spend_minor": 0,
    "percent_bps": None,
    "max_reward_minor": None,
    "fixed_minor": None,
    "threshold_minor": None,
    "points_multiplier": None,
    "member_limit": None,
    "limit_period": "campaign",
    "budget_remaining_minor": None,
    "quantity_remaining": None,
    "merchant_share_bps": 0,
    "commission_bps": 0,
    "new_to_merchant_days": None,
}
GRANT_DEFAULTS: Row = {
    "currency": "GBP",
    "benefit_id": None,
    "reward_minor": 0,
    "merchant_funded_minor": 0,
    "commission_minor": 0,
    "points_benefit_id": None,
    "points": 0,
    "refunded_minor": 0,
    "clawed_back_minor": 0,
    "merchant_clawed_back_minor": 0,
    "commission_clawed_back_minor": 0,
    "points_clawed_back": 0,
}


# -- builders --------------------------------------------------------------------------------------


def frame(rows: Sequence[Row], schema: pl.Schema) -> pl.DataFrame:
    if not rows:
        return frames.empty(schema)
    return pl.DataFrame([{c: row.get(c) for c in schema.names()} for row in rows], schema=schema)


def feed(rows: Sequence[Row]) -> pl.DataFrame:
    """A resolved feed; lines default to the row's position (the header is line 1)."""
    return frame(
        [{**FEED_DEFAULTS, "line": i + 2, **row} for i, row in enumerate(rows)], frames.RESOLVED
    )


def benefits(rows: Sequence[Row]) -> pl.DataFrame:
    return frame([{**BENEFIT_DEFAULTS, **row} for row in rows], frames.BENEFITS)


def grants(rows: Sequence[Row]) -> pl.DataFrame:
    return frame([{**GRANT_DEFAULTS, **row} for row in rows], frames.GRANTS)


# -- strategies ------------------------------------------------------------------------------------


def _local_dates() -> st.SearchStrategy[date]:
    return st.builds(
        lambda anchor, zone, days: rules.local_time(anchor, zone).date() + timedelta(days=days),
        st.sampled_from(ANCHORS),
        st.sampled_from(ZONES),
        st.integers(-1, 1),
    )


@st.composite
def benefit_rows(draw: st.DrawFn, benefit_id: int) -> Row:
    kind = draw(
        st.sampled_from(["percent_off", "amount_off", "spend_threshold", "points_multiplier"])
    )
    start = draw(st.integers(0, 23))
    end = draw(st.integers(start + 1, 24))
    hours = draw(st.sampled_from([(0, 24), (0, 24), (0, 24), (start, end)]))
    weekdays = draw(
        st.sampled_from(
            [
                [1, 2, 3, 4, 5, 6, 7],
                [1, 2, 3, 4, 5, 6, 7],
                None,
                sorted(draw(st.sets(st.integers(1, 7), max_size=7))),
            ]
        )
    )
    row: Row = {
        "benefit_id": benefit_id,
        "merchant_id": draw(st.sampled_from(MERCHANTS)),
        "kind": kind,
        "active": draw(st.sampled_from([True] * 5 + [False])),
        "currency": draw(st.sampled_from(["GBP"] * 5 + ["JPY"])),
        "valid_from": draw(st.sampled_from([date(2025, 1, 1), None, draw(_local_dates())])),
        "valid_to": draw(st.sampled_from([date(2027, 12, 31), None, draw(_local_dates())])),
        "weekdays": weekdays,
        "hour_start": hours[0],
        "hour_end": hours[1],
        "timezone": draw(st.sampled_from(ZONES)),
        "min_spend_minor": draw(st.sampled_from([0, 0, 500, 1000])),
        "member_limit": draw(st.sampled_from([None, None, 1, 2])),
        "limit_period": draw(st.sampled_from([p.value for p in LimitPeriod])),
        "budget_remaining_minor": draw(st.one_of(st.none(), st.integers(-50, 600))),
        "quantity_remaining": draw(st.one_of(st.none(), st.none(), st.integers(0, 4))),
        "merchant_share_bps": draw(st.sampled_from([0, 3333, 5000, 10_000])),
        "commission_bps": draw(st.sampled_from([0, 100, 250])),
        "new_to_merchant_days": draw(st.sampled_from([None, None, 0, 1, 2])),
    }
    if kind == "percent_off":
        row["percent_bps"] = draw(st.sampled_from([500, 1000, 2000]))
        row["max_reward_minor"] = draw(st.sampled_from([None, 100, 150]))
    elif kind == "amount_off":
        row["fixed_minor"] = draw(st.sampled_from([100, 150, 200, 2000]))
    elif kind == "spend_threshold":
        row["threshold_minor"] = draw(st.sampled_from([1000, 2000]))
        row["fixed_minor"] = draw(st.sampled_from([100, 150, 200]))
    else:
        row["points_multiplier"] = draw(st.sampled_from([1, 2, 3]))
    return row


def _instants(anchor: datetime) -> st.SearchStrategy[datetime]:
    # Half-hour steps make equal times likely; ±2 days spans day, week and DST boundaries.
    steps = st.one_of(st.integers(-4, 4), st.integers(-96, 96))
    return steps.map(lambda step: anchor + timedelta(minutes=30 * step))


@st.composite
def programmes(draw: st.DrawFn, anchor: datetime) -> Programme:
    count = draw(st.integers(1, 7))
    benefit_list = [draw(benefit_rows(benefit_id)) for benefit_id in range(1, count + 1)]
    # Most tokens are linked for the whole feed; some links start or end inside it or overlap.
    links = [
        {
            "card_token": token,
            "member_id": draw(st.sampled_from(MEMBERS)),
            "valid_from": draw(st.sampled_from([None, anchor - timedelta(days=30)])),
            "valid_to": None,
        }
        for token in TOKENS[:-1]
        if draw(st.integers(0, 5))
    ] + draw(
        st.lists(
            st.fixed_dictionaries(
                {
                    "card_token": st.sampled_from(TOKENS),
                    "member_id": st.sampled_from(MEMBERS),
                    "valid_from": st.one_of(st.none(), _instants(anchor)),
                    "valid_to": st.one_of(st.none(), _instants(anchor)),
                }
            ),
            max_size=3,
        )
    )
    circles = draw(st.sets(st.tuples(st.sampled_from(MEMBERS), st.sampled_from(CIRCLES))))
    targets = draw(st.sets(st.tuples(st.integers(1, count), st.sampled_from(CIRCLES)), max_size=4))
    return Programme(
        cards=frame(links, frames.CARDS),
        member_circles=frame(
            [{"member_id": m, "circle_id": c} for m, c in sorted(circles)], frames.MEMBER_CIRCLES
        ),
        benefits=benefits(benefit_list),
        benefit_targets=frame(
            [{"benefit_id": b, "circle_id": c} for b, c in sorted(targets)],
            frames.BENEFIT_TARGETS,
        ),
    )


@st.composite
def feeds(draw: st.DrawFn, anchor: datetime) -> pl.DataFrame:
    purchases = [
        {"txn_id": f"t{i:02d}", **row}
        for i, row in enumerate(
            draw(
                st.lists(
                    st.fixed_dictionaries(
                        {
                            "card_token": st.sampled_from([*TOKENS, *TOKENS, "unknown", None]),
                            "merchant_id": st.sampled_from([*MERCHANTS] * 3 + [None, 99]),
                            "amount_minor": st.sampled_from(
                                [100, 500, 999, 1000, 1500, 2000, 12_345]
                            ),
                            "currency": st.sampled_from(["GBP"] * 6 + ["JPY", "EUR"]),
                            "txn_time": _instants(anchor),
                        }
                    ),
                    min_size=4,
                    max_size=30,
                )
            )
        )
    ]
    originals = [p["txn_id"] for p in purchases]
    refunds = [
        {"txn_id": f"r{i:02d}", **row}
        for i, row in enumerate(
            draw(
                st.lists(
                    st.fixed_dictionaries(
                        {
                            "type": st.sampled_from([frames.REFUND, frames.CHARGEBACK]),
                            "original_txn_id": st.sampled_from(
                                originals * 3 + [*PRIOR_GRANT_IDS, "missing", None]
                            ),
                            "card_token": st.sampled_from(TOKENS),
                            "merchant_id": st.sampled_from([*MERCHANTS, None]),
                            "amount_minor": st.sampled_from([50, 100, 500, 1000, 3000, 20_000]),
                            "currency": st.sampled_from(["GBP"] * 5 + ["JPY"]),
                            "txn_time": _instants(anchor),
                        }
                    ),
                    max_size=10,
                )
            )
        )
    ]
    rows = purchases + refunds
    # Repeats of a txn_id, possibly with other content: only the lowest line may count.
    repeats = draw(st.lists(st.sampled_from(rows), max_size=3))
    changes = st.fixed_dictionaries({"amount_minor": st.sampled_from([100, 2000])})
    rows += [{**row, **draw(changes)} for row in repeats]
    lines = draw(st.permutations(range(2, len(rows) + 2)))
    return feed([{**row, "line": line} for row, line in zip(rows, lines, strict=True)])


@st.composite
def states(draw: st.DrawFn, anchor: datetime) -> State:
    keys = st.builds(
        lambda period, zone, at: rules.period_key_at(period, at, zone),
        st.sampled_from(list(LimitPeriod)),
        st.sampled_from(ZONES),
        _instants(anchor),
    )
    usage = draw(
        st.lists(
            st.fixed_dictionaries(
                {
                    "benefit_id": st.integers(1, 7),
                    "member_id": st.sampled_from(MEMBERS),
                    "period_key": keys,
                    "uses": st.integers(0, 2),
                }
            ),
            max_size=6,
        )
    )
    prior = draw(
        st.lists(
            st.fixed_dictionaries(
                {
                    "member_id": st.sampled_from(MEMBERS),
                    "merchant_id": st.sampled_from(MERCHANTS),
                    "txn_time": _instants(anchor - timedelta(days=1)),
                }
            ),
            max_size=6,
        )
    )
    grant_rows = []
    for txn_id in PRIOR_GRANT_IDS[: draw(st.integers(0, len(PRIOR_GRANT_IDS)))]:
        purchase = draw(st.sampled_from([1000, 2000, 3333]))
        reward = draw(st.sampled_from([0, 100, 333, 1000]))
        funded = draw(st.integers(0, reward))
        clawed = draw(st.integers(0, reward))
        commission = draw(st.sampled_from([0, 25, 99]))
        points = draw(st.sampled_from([0, 20, 66]))
        grant_rows.append(
            {
                "txn_id": txn_id,
                "member_id": draw(st.sampled_from(MEMBERS)),
                "merchant_id": draw(st.sampled_from(MERCHANTS)),
                "purchase_amount_minor": purchase,
                "benefit_id": 1 if reward else None,
                "reward_minor": reward,
                "merchant_funded_minor": funded,
                "commission_minor": commission,
                "points_benefit_id": 2 if points else None,
                "points": points,
                "refunded_minor": draw(st.sampled_from([0, 100])),
                "clawed_back_minor": clawed,
                # What the cumulative pro-rata rule would have clawed from the merchant so far.
                "merchant_clawed_back_minor": funded * clawed // reward if reward else 0,
                "commission_clawed_back_minor": draw(st.integers(0, commission)),
                "points_clawed_back": draw(st.integers(0, points)),
            }
        )
    return State(
        usage=frame(usage, frames.USAGE),
        prior_purchases=frame(
            [{"txn_id": f"h{i}", **row} for i, row in enumerate(prior)], frames.PRIOR_PURCHASES
        ),
        grants=grants(grant_rows),
    )


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[pl.DataFrame, Programme, State]:
    """A feed chunk, the programme and the prior state, all around one anchor instant."""
    anchor = draw(st.sampled_from(ANCHORS))
    return draw(feeds(anchor)), draw(programmes(anchor)), draw(states(anchor))
