"""Staging a feed: whether the accepted rows fit in memory or spill to sorted runs merged a
slice at a time, the chunks hold the first row of each txn_id in (txn_time, txn_id) order."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from beyondbank.cards import frames, pipeline

T0 = datetime(2026, 11, 16, tzinfo=UTC)


def _row(txn_id: str, minutes: int, card: str = "tok_1", original: str = "") -> dict[str, str]:
    return {
        "txn_id": txn_id,
        "network_ref": "123456789012",
        "card_token": card,
        "type": "refund" if original else "purchase",
        "original_txn_id": original,
        "amount_minor": "1000",
        "currency": "GBP",
        "mcc": "5812",
        "acquirer_merchant_id": "MID1",
        "terminal_id": "T1",
        "acceptor_name_location": "HARBOUR NOODLE BAR",
        "txn_time": (T0 + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def _write(path: Path, rows: list[dict[str, str]]) -> Path:
    pl.DataFrame(rows, schema={c: pl.String() for c in frames.FEED_COLUMNS}).write_csv(path)
    return path


def _expected(rows: list[dict[str, str]]) -> list[tuple[int, str]]:
    """(line, txn_id) of the first row of each txn_id, by (time, txn_id)."""
    first: dict[str, tuple[str, int]] = {}
    for line, row in enumerate(rows, start=2):
        first.setdefault(row["txn_id"], (row["txn_time"], line))
    ordered = sorted(first.items(), key=lambda kv: (kv[1][0], kv[0]))
    return [(line, txn_id) for txn_id, (_, line) in ordered]


@settings(max_examples=60, deadline=None)
@given(
    feed=st.lists(st.tuples(st.integers(0, 40), st.integers(0, 30)), min_size=0, max_size=120),
    chunk_rows=st.integers(1, 50),
)
def test_chunks_hold_the_first_of_each_txn_id_in_time_order(
    tmp_path_factory: pytest.TempPathFactory, feed: list[tuple[int, int]], chunk_rows: int
) -> None:
    folder = tmp_path_factory.mktemp("stage")
    rows = [_row(f"t{n}", minutes) for n, minutes in feed]
    path = _write(folder / "feed.csv", rows)

    staged, counts = pipeline.stage(path, folder, folder / "q.csv", chunk_rows=chunk_rows)
    chunks = list(staged.chunks(chunk_rows))

    got = [(r["line"], r["txn_id"]) for c in chunks for r in c.iter_rows(named=True)]
    assert got == _expected(rows)
    assert all(0 < c.height <= chunk_rows for c in chunks)
    assert staged.rows == len(got) == counts.accepted
    assert counts.rows_read == len(rows) == counts.accepted + counts.duplicates
    assert (staged.frame is None) == (len(rows) > chunk_rows)


@settings(max_examples=60, deadline=None)
@given(
    feed=st.lists(
        st.tuples(st.integers(0, 40), st.integers(0, 30), st.integers(0, 3), st.booleans()),
        min_size=0,
        max_size=120,
    ),
    chunk_rows=st.integers(1, 50),
    parquet=st.booleans(),
)
def test_purchases_no_member_made_are_set_aside_and_nothing_is_lost(
    tmp_path_factory: pytest.TempPathFactory,
    feed: list[tuple[int, int, int, bool]],
    chunk_rows: int,
    parquet: bool,
) -> None:
    """Given the members' cards, staging hands the engine only what can earn (members'
    purchases, every refund) in order, sets the rest aside, and loses or doubles no row."""
    folder = tmp_path_factory.mktemp("stage")
    rows = [
        _row(f"t{n}", minutes, card=f"tok_{card}", original="t0" if refund else "")
        for n, minutes, card, refund in feed
    ]
    path = _write(folder / "feed.csv", rows)
    if parquet:
        path = folder / "feed.parquet"
        pl.read_csv(folder / "feed.csv", infer_schema=False).write_parquet(path)
    members = pipeline.token_hashes(pl.Series(["tok_0", "tok_1"]))

    staged, counts = pipeline.stage(
        path, folder, folder / "q.csv", chunk_rows=chunk_rows, members=members
    )
    earning = [
        (r["line"], r["txn_id"]) for c in staged.chunks(chunk_rows) for r in c.iter_rows(named=True)
    ]
    others = [
        (r["line"], r["txn_id"])
        for c in staged.other_chunks(chunk_rows)
        for r in c.iter_rows(named=True)
    ]

    first = _expected(rows)
    can_earn = {
        line
        for line, row in enumerate(rows, start=2)
        if row["type"] == "refund" or row["card_token"] in {"tok_0", "tok_1"}
    }
    assert earning == [(line, t) for line, t in first if line in can_earn]
    assert sorted(others) == sorted((line, t) for line, t in first if line not in can_earn)
    assert staged.other_rows == len(others)
    assert staged.rows == counts.accepted == len(first)
    assert counts.rows_read == len(rows) == counts.accepted + counts.duplicates
