"""A feed matched in memory: streamed in time order, it earns exactly what staging it whole
earns and what the reference implementation earns, and it loses and doubles nothing."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from beyondbank.cards import engine, feed, frames, generate, oracle, pipeline, stream
from beyondbank.cards.frames import Programme, State
from beyondbank.cards.resolution import Resolver

START = datetime(2026, 11, 16, tzinfo=UTC)
WORLD = generate.example_world(
    seed=3, merchants=12, cards=400, linked_from=START - timedelta(days=60)
)
KEY = ["kind", "txn_id"]


def _programme() -> Programme:
    """Benefits whose outcome depends on the order of purchases: member limits per day and
    week, budgets and quantities that run out, new-to-merchant, points beside cash."""
    merchants = WORLD.merchants.get_column("merchant_id").unique().sort().to_list()
    rows = []
    for n, merchant in enumerate(merchants):
        kind = ("percent_off", "amount_off", "spend_threshold", "points_multiplier")[n % 4]
        rows.append(
            {
                "benefit_id": n + 1,
                "merchant_id": merchant,
                "kind": kind,
                "active": True,
                "currency": "GBP",
                "valid_from": date(2026, 1, 1),
                "valid_to": date(2026, 12, 31),
                "weekdays": [1, 2, 3, 4, 5, 6, 7] if n % 5 else [1, 2, 3, 4, 5],
                "hour_start": 0 if n % 6 else 9,
                "hour_end": 24 if n % 6 else 20,
                "timezone": "Europe/London" if n % 7 else "Asia/Shanghai",
                "min_spend_minor": (0, 500, 2000)[n % 3],
                "percent_bps": 1000 if kind == "percent_off" else None,
                "max_reward_minor": 800 if kind == "percent_off" else None,
                "fixed_minor": 300 if kind in ("amount_off", "spend_threshold") else None,
                "threshold_minor": 1500 if kind == "spend_threshold" else None,
                "points_multiplier": 2 if kind == "points_multiplier" else None,
                "member_limit": (None, 1, 2)[n % 3],
                "limit_period": ("day", "week", "month", "campaign")[n % 4],
                "budget_remaining_minor": (None, 40_000, 3_000)[n % 3],
                "quantity_remaining": (None, 60)[n % 2],
                "merchant_share_bps": 5000,
                "commission_bps": 200,
                "new_to_merchant_days": 30 if n % 4 == 1 else None,
            }
        )
    cards = WORLD.cards.select(
        "card_token",
        member_id=pl.int_range(1, pl.len() + 1) % 150 + 1,
        valid_from=pl.col("linked_at"),
        valid_to=pl.lit(None, frames.UTC_TIME),
    )
    return Programme(
        cards=frames.conform(cards, frames.CARDS, "cards"),
        benefits=frames.conform(pl.DataFrame(rows, schema=frames.BENEFITS), frames.BENEFITS, "b"),
    )


def _resolver() -> Resolver:
    terminals = WORLD.terminals.join(
        WORLD.merchants.select("location_id", "merchant_id"), on="location_id"
    ).select("acquirer_merchant_id", "terminal_id", "location_id", "merchant_id")
    merchants = WORLD.merchants.select(
        "merchant_id", "location_id", pl.col("trading_name").alias("name"), "mcc", "city", "country"
    )
    mappings = pl.DataFrame(
        schema={"descriptor_key": pl.String(), "merchant_id": pl.Int64(), "location_id": pl.Int64()}
    )
    return Resolver(terminals=terminals, mappings=mappings, merchants=merchants)


def _feed(rows: int, seed: int) -> pl.DataFrame:
    return pl.concat(
        generate.generate_feed(WORLD, transactions=rows, seed=seed, start=START, days=3)
    )


def _run(
    path: Path, chunk_rows: int, folder: Path, batch_rows: int | None = None
) -> tuple[stream.Result, pl.DataFrame]:
    folder.mkdir()
    result = stream.run(
        path,
        folder,
        folder / "quarantine.csv",
        (folder / "rewards.parquet", folder / "rewards.csv"),
        programme=_programme(),
        resolver=_resolver(),
        chunk_rows=chunk_rows,
        batch_rows=batch_rows,
    )
    return result, pl.read_parquet(folder / "rewards.parquet")


def _same_counts(a: pipeline.Counts, b: pipeline.Counts) -> None:
    assert (a.rows_read, a.accepted, a.quarantined, a.duplicates, a.reasons) == (
        b.rows_read,
        b.accepted,
        b.quarantined,
        b.duplicates,
        b.reasons,
    )
    assert a.rows_read == a.accepted + a.quarantined + a.duplicates


def test_a_feed_in_time_order_streams_and_earns_what_the_whole_file_staged_earns(
    tmp_path: Path,
) -> None:
    rows = _feed(6_000, seed=7)
    parquet, csv = tmp_path / "feed.parquet", tmp_path / "feed.csv"
    rows.write_parquet(parquet)
    rows.write_csv(csv)

    streamed, earned = _run(parquet, 700, tmp_path / "streamed")
    staged, expected = _run(csv, 700, tmp_path / "staged")  # CSV: no prescan, staged whole

    assert streamed.streamed
    assert not staged.streamed
    assert streamed.batches > 5
    _same_counts(streamed.counts, staged.counts)
    assert streamed.counts.quarantined > 0
    assert streamed.counts.duplicates > 0
    assert streamed.set_aside == staged.set_aside > 0
    assert streamed.matched == staged.matched
    assert earned.height == streamed.rewards > 0
    assert earned.filter(pl.col("kind") == frames.CLAWBACK).height > 0
    assert earned.sort(KEY).equals(expected.sort(KEY))
    # The same lines for the same reasons (a Parquet row's raw text is rebuilt as CSV).
    assert (
        pl.read_csv(tmp_path / "streamed" / "quarantine.csv")
        .select("line", "reason")
        .equals(pl.read_csv(tmp_path / "staged" / "quarantine.csv").select("line", "reason"))
    )


def test_what_a_streamed_feed_earns_is_what_the_reference_earns_on_the_whole_file(
    tmp_path: Path,
) -> None:
    rows = _feed(3_000, seed=9)
    path = tmp_path / "feed.parquet"
    rows.write_parquet(path)

    # Small chunks: many batches, so remembered frames are also merged along the way.
    result, earned = _run(path, 80, tmp_path / "run", batch_rows=1)

    members = pipeline.token_hashes(_programme().cards.get_column("card_token"))
    staged, _ = pipeline.stage(path, tmp_path, tmp_path / "q.csv", members=members)
    assert staged.frame is not None
    whole = _resolver().resolve(staged.frame).resolved
    reference = oracle.match(whole, _programme(), State())
    assert result.batches > stream._MAX_PARTS
    assert earned.sort(KEY).equals(reference.rewards.sort(KEY))
    # What the run remembers is where the next file starts: every grant with what was clawed
    # back, and the counters of the benefits with a member limit.
    assert result.state().grants.sort("txn_id").equals(reference.grants.sort("txn_id"))
    limited = _programme().benefits.filter(pl.col("member_limit").is_not_null())["benefit_id"]
    counters = reference.usage_added.filter(pl.col("benefit_id").is_in(limited.implode()))
    assert result.state().usage.sort(engine.USAGE_KEY).equals(counters.sort(engine.USAGE_KEY))


def test_a_feed_far_out_of_time_order_is_staged_whole_and_earns_the_same(tmp_path: Path) -> None:
    rows = _feed(4_000, seed=11)
    ordered, backwards = tmp_path / "ordered.parquet", tmp_path / "backwards.parquet"
    rows.write_parquet(ordered)
    rows.reverse().write_parquet(backwards)
    csv = tmp_path / "backwards.csv"
    rows.reverse().write_csv(csv)

    result, earned = _run(backwards, 500, tmp_path / "backwards")
    staged, expected = _run(csv, 500, tmp_path / "csv")

    in_order = stream.prescan(ordered, 500)
    assert in_order is not None
    assert in_order.streamable
    assert not result.streamed
    _same_counts(result.counts, staged.counts)
    assert earned.sort(KEY).equals(expected.sort(KEY))


@settings(max_examples=4, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    chunk_rows=st.integers(150, 900),
    window=st.integers(1, 400),
)
def test_rows_out_of_order_within_a_window_stream_and_earn_the_same(
    tmp_path_factory: pytest.TempPathFactory, seed: int, chunk_rows: int, window: int
) -> None:
    """Clearing files are nearly in time order: rows shuffled within windows are held until
    no later chunk can come before them, and the result is the whole file's."""
    folder = tmp_path_factory.mktemp("window")
    rows = _feed(1_000, seed=seed)
    order = list(range(rows.height))
    shuffle = random.Random(seed)
    for start in range(0, len(order), window):
        part = order[start : start + window]
        shuffle.shuffle(part)
        order[start : start + window] = part
    shuffled = rows[order]
    parquet, csv = folder / "feed.parquet", folder / "feed.csv"
    shuffled.write_parquet(parquet)
    shuffled.write_csv(csv)

    streamed, earned = _run(parquet, chunk_rows, folder / "streamed")
    staged, expected = _run(csv, chunk_rows, folder / "staged")

    scan = stream.prescan(parquet, chunk_rows)
    assert scan is not None
    assert streamed.streamed == scan.streamable
    _same_counts(streamed.counts, staged.counts)
    assert streamed.matched == staged.matched
    assert earned.sort(KEY).equals(expected.sort(KEY))


def _feed_rows(times: list[str], ids: list[str]) -> pl.DataFrame:
    n = len(times)
    return pl.DataFrame(
        {
            "txn_id": ids,
            "network_ref": ["123456789012"] * n,
            "card_token": ["tok_1"] * n,
            "type": ["purchase"] * n,
            "original_txn_id": [""] * n,
            "amount_minor": ["1000"] * n,
            "currency": ["GBP"] * n,
            "mcc": ["5812"] * n,
            "acquirer_merchant_id": ["MID1"] * n,
            "terminal_id": ["T1"] * n,
            "acceptor_name_location": ["HARBOUR NOODLE BAR"] * n,
            "txn_time": times,
        }
    )


def test_the_floors_ignore_times_that_the_time_rule_quarantines(tmp_path: Path) -> None:
    times = [
        "2026-11-16T10:00:00Z",
        "2026-11-16T11:00:00Z",
        "2026-02-30T09:00:00Z",  # no such day
        "2026-11-16T12:00:05.250Z",
        "garbage",
        "",
        "2026-11-16T13:00:00+00:00",
        "2026-11-16T14:00:00Z",
    ]
    path = tmp_path / "feed.parquet"
    _feed_rows(times, [f"t{i}" for i in range(len(times))]).write_parquet(path)

    scan = stream.prescan(path, 2)

    assert scan is not None
    assert scan.streamable
    at = datetime(2026, 11, 16, tzinfo=UTC)
    # Chunks of two: the day that does not exist and the garbage never lower a floor, and a
    # fraction of a second is cut to its whole second.
    assert scan.floors == [
        at.replace(hour=12, second=5),
        at.replace(hour=13),
        at.replace(hour=13),
        None,
    ]
    assert stream.prescan(tmp_path / "feed.csv", 2) is None


def test_duplicates_in_later_chunks_are_found_by_their_txn_ids(tmp_path: Path) -> None:
    times = [f"2026-11-16T10:00:{s:02d}Z" for s in range(8)]
    ids = ["a", "b", "c", "a", "d", "b", "e", "a"]
    path = tmp_path / "feed.parquet"
    _feed_rows(times, ids).write_parquet(path)

    scan = stream.prescan(path, 3)
    assert scan is not None
    assert len(scan.suspects) == 2

    result, _ = _run(path, 3, tmp_path / "run")

    assert result.streamed
    assert (result.counts.rows_read, result.counts.accepted, result.counts.duplicates) == (8, 5, 3)


@pytest.mark.parametrize("suffix", ["parquet", "csv"])
def test_a_feed_with_no_rows_writes_empty_files(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"feed.{suffix}"
    empty = _feed_rows([], [])
    if suffix == "csv":
        empty.write_csv(path)
    else:
        empty.write_parquet(path)

    result, earned = _run(path, 100, tmp_path / "run")

    assert (result.counts.rows_read, result.matched, result.batches) == (0, 0, 0)
    assert earned.is_empty()
    assert earned.schema == frames.REWARDS
    assert pl.read_csv(tmp_path / "run" / "rewards.csv").columns == frames.REWARDS.names()


def test_a_parquet_file_that_is_no_feed_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "feed.parquet"
    pl.DataFrame({"txn_id": ["a"], "when": ["2026-11-16T10:00:00Z"]}).write_parquet(path)
    with pytest.raises(feed.FeedFormatError, match="missing"):
        _run(path, 100, tmp_path / "run")
