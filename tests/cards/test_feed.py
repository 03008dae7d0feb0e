"""Tests for the card feed reader: validation rules, line numbers, conservation, CSV/Parquet parity, chunking."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from beyondbank.cards import feed, frames
from beyondbank.cards.feed import FeedFormatError, FeedSummary, read_feed, write_quarantine

HEADER = ",".join(frames.FEED_COLUMNS)
GOOD = {
    "txn_id": "t{n}",
    "network_ref": "123456789012",
    "card_token": "tok_{n}",
    "type": "purchase",
    "original_txn_id": "",
    "amount_minor": "1250",
    "currency": "GBP",
    "mcc": "5812",
    "acquirer_merchant_id": "123456789012345",
    "terminal_id": "T0000001",
    "acceptor_name_location": "PRET A MANGER            LONDON       GB",
    "txn_time": "2026-11-20T14:03:11Z",
}


def row(n: int, **changes: str) -> str:
    values = {**GOOD, **changes}
    return ",".join(values[c].format(n=n) for c in frames.FEED_COLUMNS)


# (line text, expected reason or None) — line 1 is the header, so these are lines 2, 3, ...
CASES: list[tuple[str, str | None]] = [
    (row(1), None),
    (row(2, type="refund", original_txn_id="t1", amount_minor="600"), None),
    (row(3, terminal_id="", txn_time="2026-11-20T14:03:11.123456+00:00"), None),
    (row(4, acceptor_name_location='"CAFE, ""NERO"" 12"'), None),
    (row(5, card_token=""), feed.missing("card_token")),
    (row(6, txn_id=""), feed.missing("txn_id")),
    (row(7, acceptor_name_location=""), feed.missing("acceptor_name_location")),
    (row(8, currency="XYZ"), feed.UNKNOWN_CURRENCY),
    (row(9, currency="PTS"), feed.POINTS_CURRENCY),
    (row(10, currency="gbp"), feed.UNKNOWN_CURRENCY),
    (row(11, amount_minor="-1250"), feed.AMOUNT_NEGATIVE),
    (row(12, amount_minor="0"), feed.AMOUNT_ZERO),
    (row(13, amount_minor="12.50"), feed.AMOUNT_DECIMAL),
    (row(14, amount_minor="12a"), feed.AMOUNT_NOT_A_NUMBER),
    (row(15, amount_minor="99999999999999999999"), feed.AMOUNT_TOO_LARGE),
    (row(16, amount_minor="+12"), feed.AMOUNT_NOT_A_NUMBER),
    (row(17, type="payment"), feed.UNKNOWN_TYPE),
    (row(18, type="refund"), feed.REFUND_WITHOUT_ORIGINAL),
    (row(19, type="chargeback"), feed.CHARGEBACK_WITHOUT_ORIGINAL),
    (row(20, original_txn_id="t1"), feed.PURCHASE_WITH_ORIGINAL),
    (row(21, mcc="581"), feed.BAD_MCC),
    (row(22, mcc="58A2"), feed.BAD_MCC),
    (row(23, acquirer_merchant_id="1234567890123456"), feed.too_long("acquirer_merchant_id")),
    (row(24, terminal_id="T00000001"), feed.too_long("terminal_id")),
    (row(25, acceptor_name_location="X" * 41), feed.too_long("acceptor_name_location")),
    (row(26, txn_time="2026-11-20 14:03:11"), feed.TIME_MALFORMED),
    (row(27, txn_time="2026-11-20T14:03:11"), feed.TIME_NAIVE),
    (row(28, txn_time="2026-11-20T14:03:11+01:00"), feed.TIME_NOT_UTC),
    (row(29, txn_time="2026-02-30T14:03:11Z"), feed.TIME_INVALID),
    (row(30, txn_time="yesterday"), feed.TIME_MALFORMED),
    (row(31) + ",extra", feed.wrong_field_count(13)),
    (row(32).rsplit(",", 1)[0], feed.wrong_field_count(11)),
    ("", feed.EMPTY_LINE),
    (row(34, acceptor_name_location='"OPEN QUOTE'), feed.BAD_QUOTING),
    (row(35, acceptor_name_location="CAF\udcc3 NERO"), feed.NOT_UTF8),  # a lone 0xC3 byte
    (row(36, acceptor_name_location="CAFÉ NÉRO"), None),
    (row(37, acceptor_name_location='CAFE "NERO"'), feed.BAD_QUOTING),
    (row(38), None),
    (row(39, txn_time="2026-11-20T14:03:11Z\udce2"), feed.NOT_UTF8),  # a cut sequence, then \n
    (row(40), None),
    (row(101, currency="XXX"), feed.NOT_MONEY_CURRENCY),
    (row(102, currency="XAU"), feed.NOT_MONEY_CURRENCY),
]


def write_csv(path: Path, lines: list[str], *, newline: str = "\n", final: bool = True) -> Path:
    text = newline.join([HEADER, *lines]) + (newline if final else "")
    path.write_bytes(text.encode("utf-8", "surrogateescape"))
    return path


def read_all(path: Path, **options: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    chunks = list(read_feed(path, **options))
    accepted = (
        pl.concat([c.accepted for c in chunks]) if chunks else frames.empty(frames.TRANSACTIONS)
    )
    quarantined = (
        pl.concat([c.quarantined for c in chunks]) if chunks else frames.empty(frames.QUARANTINE)
    )
    return accepted, quarantined


def test_every_bad_row_is_quarantined_with_its_line_and_reason(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "feed.csv", [text for text, _ in CASES])
    accepted, quarantined = read_all(path)

    expected_bad = {line: reason for line, (_, reason) in enumerate(CASES, start=2) if reason}
    assert dict(zip(quarantined["line"], quarantined["reason"], strict=True)) == expected_bad
    good_lines = [line for line, (_, reason) in enumerate(CASES, start=2) if reason is None]
    assert accepted["line"].to_list() == good_lines
    assert accepted.height + quarantined.height == len(CASES)  # conservation


def test_raw_text_is_the_line_as_read(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "feed.csv", [text for text, _ in CASES])
    _, quarantined = read_all(path)
    raw = dict(zip(quarantined["line"], quarantined["raw"], strict=True))
    assert raw[6] == CASES[4][0]
    assert raw[32] == CASES[30][0]
    assert raw[36] == CASES[34][0].replace(
        "\udcc3", "\ufffd"
    )  # lossy: the bad byte shows as U+FFFD


def test_accepted_rows_are_typed_and_unquoted(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "feed.csv", [text for text, _ in CASES])
    accepted, _ = read_all(path)
    assert accepted.schema == frames.TRANSACTIONS
    by_line = {r["line"]: r for r in accepted.iter_rows(named=True)}
    assert by_line[2]["amount_minor"] == 1250
    assert by_line[2]["txn_time"] == datetime(2026, 11, 20, 14, 3, 11, tzinfo=UTC)
    assert by_line[2]["original_txn_id"] is None
    assert by_line[3]["original_txn_id"] == "t1"
    assert by_line[4]["terminal_id"] is None
    assert by_line[4]["txn_time"] == datetime(2026, 11, 20, 14, 3, 11, 123456, tzinfo=UTC)
    assert by_line[5]["acceptor_name_location"] == 'CAFE, "NERO" 12'
    assert by_line[37]["acceptor_name_location"] == "CAFÉ NÉRO"


def test_crlf_line_ends_and_a_missing_final_newline(tmp_path: Path) -> None:
    lines = [text for text, _ in CASES]
    plain, plain_bad = read_all(write_csv(tmp_path / "a.csv", lines))
    crlf, crlf_bad = read_all(write_csv(tmp_path / "b.csv", lines, newline="\r\n", final=False))
    assert crlf.equals(plain)
    assert crlf_bad.select("line", "reason").equals(plain_bad.select("line", "reason"))


def test_a_quoted_line_break_is_rejected_line_by_line(tmp_path: Path) -> None:
    # Both halves of the record are quarantined at their own lines; the next row is unharmed.
    lines = [row(1, acceptor_name_location='"TWO'), 'LINES",2026-11-20T14:03:11Z', row(3)]
    accepted, quarantined = read_all(write_csv(tmp_path / "feed.csv", lines))
    assert quarantined.select("line", "reason").rows() == [
        (2, feed.BAD_QUOTING),
        (3, feed.BAD_QUOTING),
    ]
    assert accepted["line"].to_list() == [4]


def test_fractional_seconds_beyond_microseconds_are_truncated(tmp_path: Path) -> None:
    lines = [row(1, txn_time="2026-11-20T14:03:11.1234567Z")]
    accepted, _ = read_all(write_csv(tmp_path / "feed.csv", lines))
    assert accepted["txn_time"][0] == datetime(2026, 11, 20, 14, 3, 11, 123456, tzinfo=UTC)


@pytest.mark.parametrize("workers", [1, 2, 3])
@pytest.mark.parametrize(("chunk_rows", "block_bytes"), [(1, 64), (3, 200), (7, 1000), (1000, 50)])
def test_chunk_and_block_boundaries_do_not_change_results(
    tmp_path: Path, chunk_rows: int, block_bytes: int, workers: int
) -> None:
    """Nor does reading blocks on several threads: the line numbers and order hold."""
    path = write_csv(tmp_path / "feed.csv", [text for text, _ in CASES])
    whole_accepted, whole_bad = read_all(path)
    chunks = list(read_feed(path, chunk_rows=chunk_rows, block_bytes=block_bytes, workers=workers))
    assert all(c.rows <= chunk_rows for c in chunks)
    assert pl.concat([c.accepted for c in chunks]).equals(whole_accepted)
    assert pl.concat([c.quarantined for c in chunks]).equals(whole_bad)


@given(
    picks=st.lists(st.integers(0, len(CASES) - 1), min_size=1, max_size=60),
    chunk_rows=st.integers(1, 50),
    block_bytes=st.integers(16, 4000),
    workers=st.integers(1, 3),
)
@settings(max_examples=40, deadline=None)
def test_conservation_and_order_for_any_mix_and_chunking(
    tmp_path_factory: pytest.TempPathFactory,
    picks: list[int],
    chunk_rows: int,
    block_bytes: int,
    workers: int,
) -> None:
    path = write_csv(tmp_path_factory.mktemp("feed") / "feed.csv", [CASES[i][0] for i in picks])
    summary = FeedSummary()
    lines: list[int] = []
    for chunk in read_feed(path, chunk_rows=chunk_rows, block_bytes=block_bytes, workers=workers):
        summary.add(chunk)
        lines += sorted([*chunk.accepted["line"], *chunk.quarantined["line"]])
        reasons = dict(zip(chunk.quarantined["line"], chunk.quarantined["reason"], strict=True))
        for line, reason in reasons.items():
            assert reason == CASES[picks[line - 2]][1]
    assert lines == list(range(2, len(picks) + 2))
    assert summary.rows_read == len(picks) == summary.accepted + summary.quarantined_total


def to_parquet(csv_path: Path, parquet_path: Path) -> Path:
    # The same rows as text columns (the CSV's empty fields are nulls in Parquet).
    text = pl.read_csv(
        csv_path, infer_schema=False, encoding="utf8-lossy", truncate_ragged_lines=True
    )
    text.write_parquet(parquet_path)
    return parquet_path


def test_csv_and_parquet_give_identical_results(tmp_path: Path) -> None:
    # Rows whose faults a Parquet file cannot hold (field counts, quoting) are left out.
    lines = [
        text
        for text, reason in CASES
        if reason is None or not reason.startswith(("wrong", "malformed", "empty"))
    ]
    csv_path = write_csv(tmp_path / "feed.csv", lines)
    parquet_path = to_parquet(csv_path, tmp_path / "feed.parquet")
    csv_accepted, csv_bad = read_all(csv_path)
    parquet_accepted, parquet_bad = read_all(parquet_path, chunk_rows=4)
    assert parquet_accepted.equals(csv_accepted)
    assert parquet_bad.select("line", "reason").equals(csv_bad.select("line", "reason"))
    on_threads = read_all(parquet_path, chunk_rows=3, workers=2)
    assert on_threads[0].equals(parquet_accepted)
    assert on_threads[1].equals(parquet_bad)


def test_parquet_with_typed_columns(tmp_path: Path) -> None:
    typed = pl.DataFrame(
        {
            **{c: [GOOD[c].format(n=1)] for c in frames.FEED_COLUMNS},
            "amount_minor": [1250],
            "txn_time": [datetime(2026, 11, 20, 14, 3, 11, tzinfo=UTC)],
            "original_txn_id": [None],
        }
    ).select(frames.FEED_COLUMNS)
    typed.write_parquet(tmp_path / "typed.parquet")
    accepted, quarantined = read_all(tmp_path / "typed.parquet")
    assert quarantined.height == 0
    assert accepted.row(0, named=True)["txn_time"] == datetime(2026, 11, 20, 14, 3, 11, tzinfo=UTC)
    naive = typed.with_columns(pl.col("txn_time").dt.replace_time_zone(None))
    naive.write_parquet(tmp_path / "naive.parquet")
    _, quarantined = read_all(tmp_path / "naive.parquet")
    assert quarantined["reason"].to_list() == [feed.TIME_NAIVE]


def test_parquet_raw_is_rebuilt_as_a_csv_line(tmp_path: Path) -> None:
    lines = [row(1, acceptor_name_location='"CAFE, ""NERO"""', amount_minor="-1")]
    parquet_path = to_parquet(write_csv(tmp_path / "feed.csv", lines), tmp_path / "feed.parquet")
    _, quarantined = read_all(parquet_path)
    assert quarantined["raw"].to_list() == lines


def test_parquet_must_have_the_feed_columns(tmp_path: Path) -> None:
    pl.DataFrame({"txn_id": ["t1"]}).write_parquet(tmp_path / "bad.parquet")
    with pytest.raises(FeedFormatError, match="missing"):
        list(read_feed(tmp_path / "bad.parquet"))


@pytest.mark.parametrize("first", ["", "txn_id,amount", HEADER.upper()])
def test_a_wrong_header_rejects_the_file(tmp_path: Path, first: str) -> None:
    path = tmp_path / "feed.csv"
    path.write_text(first + ("\n" + row(1) if first else ""))
    with pytest.raises(FeedFormatError, match="header"):
        list(read_feed(path))


def test_header_only_and_bom(tmp_path: Path) -> None:
    path = tmp_path / "feed.csv"
    path.write_text(HEADER + "\n")
    assert list(read_feed(path)) == []
    path.write_bytes(b"\xef\xbb\xbf" + (HEADER + "\n" + row(1) + "\n").encode())
    accepted, _ = read_all(path)
    assert accepted["line"].to_list() == [2]


def test_summary_and_quarantine_file(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "feed.csv", [text for text, _ in CASES])
    summary = FeedSummary()
    chunks = [summary.add(c) for c in read_feed(path, chunk_rows=5)]
    bad = [reason for _, reason in CASES if reason]
    assert summary.rows_read == len(CASES)
    assert summary.accepted == len(CASES) - len(bad)
    assert summary.quarantined[feed.BAD_MCC] == 2
    assert summary.quarantined_total == len(bad)

    out = tmp_path / "quarantine.csv"
    assert write_quarantine(out, (c.quarantined for c in chunks)) == len(bad)
    back = pl.read_csv(out, schema=frames.QUARANTINE)
    assert back.equals(pl.concat([c.quarantined for c in chunks]))
