"""Tests for the synthetic card feed: determinism, shares, refunds of earlier purchases, faults the reader catches."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from beyondbank.cards import frames
from beyondbank.cards.feed import FeedSummary, read_feed
from beyondbank.cards.generate import (
    FAULTS,
    FeedMix,
    World,
    example_world,
    expected_reason,
    generate_feed,
    write_feed,
)

START = datetime(2026, 11, 2, tzinfo=UTC)
DAYS = 14
ROWS = 120_000
WORLD = example_world(seed=5, merchants=30, cards=3_000, linked_from=START - timedelta(days=60))


def feed(rows: int = ROWS, seed: int = 7, **options: object) -> pl.DataFrame:
    batches = generate_feed(
        WORLD, transactions=rows, seed=seed, start=START, days=DAYS, label_faults=True, **options
    )  # type: ignore[arg-type]
    return pl.concat(list(batches)).with_row_index("line", offset=2).cast({"line": pl.Int64})


@pytest.fixture(scope="module")
def generated() -> pl.DataFrame:
    return feed(batch_rows=50_000)


@pytest.fixture(scope="module")
def files(generated: pl.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("generated")
    batches = generated.drop("line").iter_slices(40_000)
    paths = {"csv": folder / "feed.csv", "parquet": folder / "feed.parquet"}
    assert write_feed(paths["csv"], batches) == ROWS
    assert write_feed(paths["parquet"], generated.drop("line").iter_slices(40_000)) == ROWS
    return paths


def good(generated: pl.DataFrame) -> pl.DataFrame:
    return generated.filter(pl.col("fault").is_null())


def test_same_seed_same_feed_and_another_seed_another(generated: pl.DataFrame) -> None:
    again = feed(batch_rows=50_000)
    assert again.equals(generated)
    other = feed(seed=8, batch_rows=50_000)
    assert not other.select(frames.FEED_COLUMNS).equals(generated.select(frames.FEED_COLUMNS))
    ids = good(generated)["txn_id"]
    assert set(good(other)["txn_id"]).isdisjoint(ids)


def test_batches_are_text_in_feed_columns_and_sum_to_the_count() -> None:
    batches = list(
        generate_feed(WORLD, transactions=25_001, seed=1, start=START, days=3, batch_rows=10_000)
    )
    assert [b.height for b in batches] == [10_000, 10_000, 5_001]
    assert all(b.columns == list(frames.FEED_COLUMNS) for b in batches)
    assert all(set(b.dtypes) == {pl.String} for b in batches)


def test_a_file_of_many_batches_is_in_time_order_as_one_batch_is() -> None:
    """Each batch is drawn over the whole window; the merge puts the file in time order, and
    every refund still comes after the purchase it names."""
    rows = pl.concat(
        generate_feed(
            WORLD,
            transactions=30_000,
            seed=4,
            start=START,
            days=3,
            batch_rows=7_000,
            label_faults=True,
        )
    ).with_row_index("position")
    times = rows.filter(pl.col("fault").is_null()).get_column("txn_time")
    assert times.is_sorted()
    assert times.str.slice(0, 10).n_unique() == 3
    firsts = rows.filter(pl.col("type") == "purchase").unique("txn_id", keep="first")
    refunds = rows.filter(pl.col("type").is_in(["refund", "chargeback"])).join(
        firsts.select(original_txn_id="txn_id", original_at="position"), on="original_txn_id"
    )
    assert refunds.height > 500
    assert (refunds["position"] > refunds["original_at"]).all()


def test_shares_of_refunds_chargebacks_members_and_alliance(generated: pl.DataFrame) -> None:
    rows = good(generated)
    types = rows["type"].value_counts().to_dict(as_series=False)
    share = dict(zip(types["type"], (n / rows.height for n in types["count"]), strict=True))
    assert 0.025 < share["refund"] < 0.035
    assert 0.0035 < share["chargeback"] < 0.0065

    members = set(WORLD.cards["card_token"])
    acquirers = set(WORLD.terminals["acquirer_merchant_id"])
    purchases = rows.filter(pl.col("type") == "purchase")
    at_alliance = pl.col("acquirer_merchant_id").is_in(acquirers) | pl.col(
        "terminal_id"
    ).str.starts_with("U")
    flags = purchases.select(
        member=pl.col("card_token").is_in(members),
        alliance=at_alliance,
    )
    member_at_alliance = (flags["member"] & flags["alliance"]).mean()
    assert isinstance(member_at_alliance, float)
    assert 0.15 < member_at_alliance < 0.25
    non_member_share = (~flags["member"]).mean()
    assert isinstance(non_member_share, float)
    assert non_member_share > 0.5


def test_times_are_in_the_window_and_restaurants_peak_at_meals(generated: pl.DataFrame) -> None:
    rows = good(generated).with_columns(
        time=pl.col("txn_time").str.to_datetime("%Y-%m-%dT%H:%M:%SZ", time_zone="UTC")
    )
    assert rows["time"].min() >= START
    assert rows["time"].max() < START + timedelta(days=DAYS)
    local_hour = rows.filter(pl.col("mcc") == "5812").select(
        pl.col("time").dt.convert_time_zone("Europe/London").dt.hour()
    )["time"]
    at_meals = local_hour.is_between(12, 14) | local_hour.is_between(18, 21)
    assert at_meals.mean() > 0.75


def test_amounts_are_positive_and_depend_on_the_category(generated: pl.DataFrame) -> None:
    rows = good(generated).with_columns(amount=pl.col("amount_minor").cast(pl.Int64))
    assert rows["amount"].min() >= 1
    medians = rows.group_by("mcc").agg(pl.col("amount").median()).rows()
    median = dict(medians)
    assert median["4111"] < median["5814"] < median["5812"] < median["7011"]


def test_every_refund_and_chargeback_names_an_earlier_purchase(generated: pl.DataFrame) -> None:
    rows = good(generated)
    purchases = rows.filter(pl.col("type") == "purchase").unique("txn_id", keep="first")
    returns = rows.filter(pl.col("type").is_in(["refund", "chargeback"]))
    assert returns.height > 3_000
    matched = returns.join(
        purchases.select(
            original_txn_id="txn_id",
            o_line="line",
            o_time="txn_time",
            o_card="card_token",
            o_acquirer="acquirer_merchant_id",
            o_amount=pl.col("amount_minor").cast(pl.Int64),
            o_ref="network_ref",
        ),
        on="original_txn_id",
        how="left",
    )
    assert matched["o_line"].null_count() == 0
    assert (matched["o_line"] < matched["line"]).all()
    assert (matched["o_time"] < matched["txn_time"]).all()  # ISO text sorts as time
    assert (matched["o_card"] == matched["card_token"]).all()
    assert (matched["o_acquirer"] == matched["acquirer_merchant_id"]).all()
    amounts = matched.with_columns(ratio=pl.col("amount_minor").cast(pl.Int64) / pl.col("o_amount"))
    refunds = amounts.filter(pl.col("type") == "refund")["ratio"]
    assert 0.6 < (refunds == 1.0).mean() < 0.9
    assert (refunds < 1.0).any()
    assert (refunds > 1.0).any()
    # A chargeback travels under its purchase's network reference.
    chargebacks = matched.filter(pl.col("type") == "chargeback")
    assert (chargebacks["network_ref"] == chargebacks["o_ref"]).all()


def test_ids_are_unique_except_exact_duplicate_lines(generated: pl.DataFrame) -> None:
    rows = good(generated)
    repeated = rows.filter(pl.col("txn_id").is_duplicated())
    assert 0 < repeated.height < rows.height * 0.001
    # A repeated txn_id is the very same line sent again.
    assert repeated.select(frames.FEED_COLUMNS).n_unique() == repeated["txn_id"].n_unique()
    assert rows["network_ref"].str.len_chars().is_in([12, 23]).all()
    assert rows["network_ref"].str.contains(r"^\d+$").all()


def test_unregistered_terminals_carry_noisy_descriptors(generated: pl.DataFrame) -> None:
    rows = good(generated)
    unregistered = rows.filter(pl.col("terminal_id").str.starts_with("U"))
    assert unregistered.height > 0.01 * rows.height
    assert unregistered["acceptor_name_location"].str.len_chars().max() <= 40
    assert unregistered["acceptor_name_location"].n_unique() > 40


def test_every_fault_is_quarantined_with_its_reason(
    generated: pl.DataFrame, files: dict[str, Path]
) -> None:
    faults = generated.filter(pl.col("fault").is_not_null()).select("line", "fault")
    assert set(faults["fault"]) == set(FAULTS)
    for kind, path in files.items():
        summary = FeedSummary()
        chunks = [summary.add(c) for c in read_feed(path, chunk_rows=30_000)]
        quarantined = pl.concat([c.quarantined for c in chunks])
        expected = faults.with_columns(
            reason=pl.col("fault").map_elements(
                lambda f, parquet=(kind == "parquet"): expected_reason(f, parquet=parquet),
                return_dtype=pl.String,
            )
        )
        got = quarantined.select("line", "reason")
        assert got.equals(expected.select("line", "reason")), kind
        assert summary.rows_read == ROWS == summary.accepted + summary.quarantined_total


def test_csv_and_parquet_of_one_feed_read_the_same(files: dict[str, Path]) -> None:
    from_csv = pl.concat([c.accepted for c in read_feed(files["csv"], chunk_rows=33_333)])
    from_parquet = pl.concat([c.accepted for c in read_feed(files["parquet"], chunk_rows=50_000)])
    assert from_csv.equals(from_parquet)
    assert from_csv.schema == frames.TRANSACTIONS


def test_no_bad_rows_when_the_share_is_zero(tmp_path: Path) -> None:
    path = tmp_path / "clean.csv"
    batches = generate_feed(WORLD, transactions=20_000, seed=3, start=START, days=2, bad_share=0)
    write_feed(path, batches)
    summary = FeedSummary()
    for chunk in read_feed(path):
        summary.add(chunk)
    assert (summary.rows_read, summary.accepted) == (20_000, 20_000)


def test_a_world_without_alliance_merchants_or_members_still_generates() -> None:
    empty = example_world(merchants=0, cards=0)
    rows = pl.concat(
        list(generate_feed(empty, transactions=2_000, seed=1, start=START, days=1, bad_share=0))
    )
    assert rows.height == 2_000
    assert rows["card_token"].str.contains(r"^tok_\d{20}$").all()  # non-members' cards only
    quiet = FeedMix(refund_share=0, chargeback_share=0, bad_share=0, duplicate_share=0)
    rows = pl.concat(
        list(generate_feed(WORLD, transactions=5_000, seed=1, start=START, days=1, mix=quiet))
    )
    assert set(rows["type"]) == {"purchase"}
    assert rows["txn_id"].is_unique().all()


def test_write_feed_refuses_other_suffixes(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"\.csv or \.parquet"):
        write_feed(tmp_path / "feed.txt", [])


def test_write_feed_with_a_progress_bar(tmp_path: Path) -> None:
    batches = generate_feed(
        WORLD, transactions=3_000, seed=2, start=START, days=1, batch_rows=1_000
    )
    assert write_feed(tmp_path / "feed.parquet", batches, progress=True, total=3_000) == 3_000
    assert pl.read_parquet(tmp_path / "feed.parquet").columns == list(frames.FEED_COLUMNS)


def test_a_world_takes_what_a_database_driver_returns() -> None:
    world = generate_world_from_driver_types()
    assert world.cards.schema["linked_at"] == frames.UTC_TIME
    assert world.cards["linked_at"][0] == datetime(2026, 1, 1, 9, tzinfo=UTC)
    assert world.merchants.schema["merchant_id"] == pl.Int64


def generate_world_from_driver_types() -> World:
    # SQLite hands back naive UTC datetimes and the driver may give 32-bit ids.
    return World(
        merchants=WORLD.merchants.cast({"merchant_id": pl.Int32, "location_id": pl.Int32}),
        terminals=WORLD.terminals.cast({"location_id": pl.Int32}),
        cards=pl.DataFrame(
            {"card_token": ["tok_1"], "linked_at": [datetime(2026, 1, 1, 9)]},
        ).cast({"linked_at": pl.Datetime("ns")}),
    )


def test_a_world_without_a_column_is_refused() -> None:
    with pytest.raises(ValueError, match="missing columns"):
        World(
            merchants=WORLD.merchants.drop("timezone"), terminals=WORLD.terminals, cards=WORLD.cards
        )


def test_a_start_after_midnight_keeps_every_time_in_the_window() -> None:
    start = datetime(2026, 3, 28, 15, 30, 7, tzinfo=UTC)  # the night before the clocks go forward
    rows = pl.concat(
        list(generate_feed(WORLD, transactions=20_000, seed=4, start=start, days=2, bad_share=0))
    ).with_columns(time=pl.col("txn_time").str.to_datetime("%Y-%m-%dT%H:%M:%SZ", time_zone="UTC"))
    assert rows["time"].min() >= start
    assert rows["time"].max() < start + timedelta(days=2)
    # Local hours still follow the categories: few purchases between 2 and 5 in the morning.
    local = rows["time"].dt.convert_time_zone("Europe/London").dt.hour()
    assert local.is_between(2, 4).mean() < 0.03
