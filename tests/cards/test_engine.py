"""The matching engine against its oracle on generated inputs, each rule on hand-made examples
with exact figures, and the chunking property that lets the service feed it in chunks."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

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
    return buy(txn_id, amount, at, type=frames.REFUND, original_txn_id=original, **row)


def ten_percent(benefit_id: int = 1, **row: object) -> dict[str, object]:
    return {"benefit_id": benefit_id, "merchant_id": 10, "percent_bps": 1000, **row}


def rewarded(outcome: Outcome) -> list[tuple[str, int | None, int]]:
    """(txn_id, cash benefit, amount) of each reward row."""
    rows = outcome.rewards.filter(pl.col("kind") == frames.REWARD)
    return list(rows.select("txn_id", "benefit_id", "amount_minor").iter_rows())


# -- the engine equals the oracle ----------------------------------------------------------------


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(s.scenarios())
def test_engine_equals_oracle(scenario: tuple[pl.DataFrame, Programme, State]) -> None:
    both(*scenario)
