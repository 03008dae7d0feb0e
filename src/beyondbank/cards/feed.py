"""Reads card clearing feeds (CSV or Parquet) in streamed chunks, validates them in columns and quarantines bad rows.

A feed row is one physical line of the file (docs/card-feed.md): the header is line 1, the
first transaction line 2. A quoted field may hold commas and doubled quotes but never a line
break; a line whose quotes do not close is quarantined on its own, so one stray quote costs
one row, never the rest of the file. Parquet rows are numbered as if the file were CSV
(row number + 1), so the same feed gives the same `line` in both formats.

Every row read ends up in exactly one of `FeedChunk.accepted` (frames.TRANSACTIONS) or
`FeedChunk.quarantined` (frames.QUARANTINE) with the first rule it breaks, in the order the
rules are listed in docs/card-feed.md. Duplicate txn_ids are not the reader's business: the
matching engine counts them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import polars as pl

from beyondbank.cards import frames
from beyondbank.core import threads
from beyondbank.core.money import POINTS, is_currency

FIELD_COUNT = len(frames.FEED_COLUMNS)
HEADER = ",".join(frames.FEED_COLUMNS)
OPTIONAL = frozenset({"original_txn_id", "terminal_id"})
REQUIRED = tuple(c for c in frames.FEED_COLUMNS if c not in OPTIONAL)
MAX_LENGTH = {"acquirer_merchant_id": 15, "terminal_id": 8, "acceptor_name_location": 40}
DATA_ELEMENT = {
    "acquirer_merchant_id": "DE 42",
    "terminal_id": "DE 41",
    "acceptor_name_location": "DE 43",
}

# -- quarantine reasons: stable texts (they are counted and grepped), no row values in them ----

NOT_UTF8 = "not valid UTF-8"
BAD_QUOTING = (
    "malformed quoting: a quote does not close on its line (quoted line breaks are not accepted)"
)
EMPTY_LINE = "empty line"
UNKNOWN_TYPE = "unknown type: expected purchase, refund or chargeback"
AMOUNT_NEGATIVE = "amount_minor is negative"
AMOUNT_ZERO = "amount_minor is zero"
AMOUNT_DECIMAL = "amount_minor has a decimal point: expected an integer of minor units"
AMOUNT_TOO_LARGE = "amount_minor is too large"
AMOUNT_NOT_A_NUMBER = "amount_minor is not a number"
POINTS_CURRENCY = "currency PTS is loyalty points, not a card currency"
NOT_MONEY_CURRENCY = (
    "currency is an ISO 4217 code for no money (metals, bond units, SDR, testing, none): "
    "not a card currency"
)
# ISO 4217 codes that name no money a card can spend; XAF, XOF, XCD and XPF are real money.
NOT_MONEY = frozenset(
    {"XAG", "XAU", "XPD", "XPT", "XBA", "XBB", "XBC", "XBD", "XDR", "XSU", "XUA", "XTS", "XXX"}
)
UNKNOWN_CURRENCY = "unknown currency: expected an ISO 4217 code"
BAD_MCC = "mcc is not four digits"
REFUND_WITHOUT_ORIGINAL = "refund without original_txn_id"
CHARGEBACK_WITHOUT_ORIGINAL = "chargeback without original_txn_id"
PURCHASE_WITH_ORIGINAL = "purchase with an original_txn_id"
TIME_NAIVE = "txn_time has no UTC designator (naive): expected a trailing Z or +00:00"
TIME_NOT_UTC = "txn_time is not UTC: expected a trailing Z or +00:00"
TIME_MALFORMED = "txn_time is not ISO 8601: expected YYYY-MM-DDTHH:MM:SS[.fraction]Z"
TIME_INVALID = "txn_time is not a real date and time"


def missing(column: str) -> str:
    return f"missing field {column}"


def too_long(column: str) -> str:
    return f"{column} ({DATA_ELEMENT[column]}) longer than {MAX_LENGTH[column]} characters"


def wrong_field_count(got: int) -> str:
    return f"wrong number of fields: expected {FIELD_COUNT}, got {got}"


_REPLACEMENT = "\ufffd"
# The accepted instants: seconds, optional fraction (up to nanoseconds, kept to microseconds),
# and UTC written as Z or +00:00. Anything else is named precisely in the reason.
_TIME_SHAPE = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|\+00:00)$"
_TIME_NAIVE = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?$"
_TIME_OFFSET = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?[+-]\d{2}:?\d{2}$"
_QUOTED_RECORD = r'^(?:"(?:[^"]|"")*"|[^,"]*)(?:,(?:"(?:[^"]|"")*"|[^,"]*))*$'
_QUOTED_FIELD = r'"(?:[^"]|"")*"'
_DEFAULT_BLOCK_BYTES = 64 << 20


class FeedFormatError(ValueError):
    """The file as a whole is not a feed (no or wrong header, missing Parquet columns)."""


@dataclass(frozen=True)
class FeedChunk:
    """Consecutive rows of a feed: the ones that passed (TRANSACTIONS) and the ones that did not."""

    accepted: pl.DataFrame
    quarantined: pl.DataFrame

    @property
    def rows(self) -> int:
        return self.accepted.height + self.quarantined.height


@dataclass
class FeedSummary:
    """Counts over a whole feed; rows_read == accepted + sum(quarantined.values()) always."""

    rows_read: int = 0
    accepted: int = 0
    quarantined: Counter[str] = field(default_factory=Counter)

    def add(self, chunk: FeedChunk) -> FeedChunk:
        """Count a chunk and hand it back, so a streaming loop can count as it goes."""
        self.rows_read += chunk.rows
        self.accepted += chunk.accepted.height
        if chunk.quarantined.height:
            counts = chunk.quarantined.group_by("reason").len()
            for reason, n in counts.iter_rows():
                self.quarantined[reason] += n
        return chunk

    @property
    def quarantined_total(self) -> int:
        return sum(self.quarantined.values())


def read_feed(
    path: str | Path,
    *,
    chunk_rows: int = 1_000_000,
    block_bytes: int | None = None,
    workers: int = 1,
) -> Iterator[FeedChunk]:
    """Stream a feed file in chunks of at most `chunk_rows` rows, in file order.

    CSV is read `block_bytes` at a time (cut at a line end), so memory stays bounded whatever
    the file's size; Parquet is read a slice of rows at a time. With `workers` > 1, that many
    slices or blocks are read and validated at once on worker threads (and held at once).
    """
    if chunk_rows < 1 or workers < 1:
        raise ValueError("chunk_rows and workers must be positive")
    source = Path(path)
    if source.suffix.lower() == ".parquet":
        yield from _read_parquet(source, chunk_rows, workers)
    else:
        block = block_bytes or min(max(chunk_rows * 160, 1 << 20), 256 << 20)
        yield from _read_csv(source, chunk_rows, block, workers)


def validate_rows(rows: Sequence[Mapping[str, str]], *, first_line: int = 1) -> FeedChunk:
    """Feed rows that arrive one at a time (the real-time path), as text keyed by column name,
    judged by exactly the rules a file's rows are; absent columns count as empty."""
    text = pl.DataFrame(
        {c: [row.get(c, "") or "" for row in rows] for c in frames.FEED_COLUMNS},
        schema={c: pl.String() for c in frames.FEED_COLUMNS},
    )
    return _validate_parquet_part(text, text.schema, first_line=first_line)


def write_quarantine(path: str | Path, quarantined: Iterable[pl.DataFrame]) -> int:
    """Write QUARANTINE frames to one CSV file (line, reason, raw); returns the rows written."""
    written = 0
    with open(path, "wb") as out:
        out.write(b"line,reason,raw\n")
        for frame in quarantined:
            rows = frames.conform(frame, frames.QUARANTINE, "quarantine")
            rows.write_csv(out, include_header=False)
            written += rows.height
    return written


# -- CSV ----------------------------------------------------------------------------------------


def _read_csv(path: Path, chunk_rows: int, block_bytes: int, workers: int) -> Iterator[FeedChunk]:
    with open(path, "rb") as source:
        _check_header(path, source)
        blocks = _numbered(_blocks(source, block_bytes), first_line=2)
        if workers == 1:
            for block, first_line in blocks:
                yield from _csv_chunks(block, first_line, chunk_rows)
            return
        for chunks in threads.ordered_map(
            lambda numbered: list(_csv_chunks(*numbered, chunk_rows)), blocks, workers, "validate"
        ):
            yield from chunks


def _numbered(blocks: Iterator[bytes], first_line: int) -> Iterator[tuple[bytes, int]]:
    """Each block with the line number of its first line (blocks hold whole lines)."""
    for block in blocks:
        yield block, first_line
        first_line += block.count(b"\n") + (0 if block.endswith(b"\n") else 1)


def _csv_chunks(block: bytes, first_line: int, chunk_rows: int) -> Iterator[FeedChunk]:
    table = _csv_table(block, first_line)
    # The table holds all the rules need: the bytes can go before the next block comes.
    del block
    for start in range(0, table.height, chunk_rows):
        yield _validate(table.slice(start, chunk_rows), _STRUCTURAL, _structure_reason())


def _check_header(path: Path, source: BinaryIO) -> None:
    header = source.readline(64 * 1024)  # a file of garbage has no line end to stop at
    text = header.decode("utf-8", "replace").removeprefix("\ufeff").rstrip("\r\n")
    if text != HEADER:
        shown = text[:200] or "an empty file"
        raise FeedFormatError(
            f"{path}: the first line must be the header {HEADER!r}, got {shown!r}"
        )


def _blocks(source: BinaryIO, block_bytes: int) -> Iterator[bytes]:
    """Whole lines, about block_bytes at a time; the last line may lack its newline."""
    carry = b""
    while True:
        data = source.read(block_bytes)
        if not data:
            break
        data = carry + data
        cut = data.rfind(b"\n")
        if cut < 0:
            carry = data  # one line longer than a block: keep reading until it ends
            continue
        carry = data[cut + 1 :]
        block = data[: cut + 1]
        del data  # not held while the caller works on the block
        yield block
        del block
    if carry:
        yield carry


def _raw_lines(block: bytes) -> pl.Series:
    # Read as one column with no quoting and a separator that text never contains, so each
    # physical line is one row; invalid UTF-8 becomes U+FFFD and is caught by the first rule.
    # A NUL byte would end the column early: such a line's raw text is cut at the NUL.
    lines = pl.read_csv(
        block,
        has_header=False,
        quote_char=None,
        separator="\x00",
        new_columns=["raw"],
        schema={"raw": pl.String()},
        encoding="utf8-lossy",
        truncate_ragged_lines=True,
        empty_string_is_null=False,
    )
    return lines.to_series()


def _parse_fields(text: bytes) -> pl.DataFrame:
    return pl.read_csv(
        text,
        has_header=False,
        schema={c: pl.String() for c in frames.FEED_COLUMNS},
        missing_columns="insert",
        extra_columns="ignore",
        encoding="utf8-lossy",
        truncate_ragged_lines=True,
        empty_string_is_null=False,
    )


# A line's shape is wrong: bytes that are not UTF-8, a broken quote, not twelve fields (an
# empty line has one).
_STRUCTURAL = pl.col("not_utf8") | pl.col("broken") | (pl.col("fields") != FIELD_COUNT)


def _csv_table(block: bytes, first_line: int) -> pl.DataFrame:
    """The block's lines: raw text, structure (quotes, field count, encoding), the twelve fields."""
    raw = _raw_lines(block)
    quoted = raw.str.contains('"', literal=True)
    broken = _broken_quotes(raw, quoted)
    if broken.any():
        # Only whole, well-quoted lines go to the CSV parser: a broken quote must not make it
        # join lines and shift every later row.
        kept = raw.filter(~broken)
        text = ("\n".join(kept.to_list()) + "\n").encode() if len(kept) else b""
        fields = _scatter_rows(_parse_fields(text) if text else None, ~broken, len(raw))
    else:
        fields = _parse_fields(block)
    if fields.height != len(raw):
        raise AssertionError(f"parsed {fields.height} rows from {len(raw)} lines")
    table = pl.concat(
        [pl.DataFrame({"raw": raw, "broken": broken, "quoted": quoted}), fields], how="horizontal"
    )
    return table.with_columns(
        line=pl.int_range(first_line, first_line + pl.len(), dtype=pl.Int64()),
        fields=_field_counts(table),
        not_utf8=pl.col("raw").str.contains(_REPLACEMENT, literal=True),
    )


def _broken_quotes(raw: pl.Series, quoted: pl.Series) -> pl.Series:
    """Lines with a quote that is not RFC 4180 (checked only on the few lines that have quotes)."""
    broken = pl.repeat(False, len(raw), dtype=pl.Boolean(), eager=True).rename("broken")
    if not quoted.any():
        return broken
    positions = quoted.arg_true()
    bad = ~raw.gather(positions).str.contains(_QUOTED_RECORD)
    return broken.scatter(positions, bad)


def _field_counts(table: pl.DataFrame) -> pl.Series:
    """How many fields each line has. An unquoted line of twelve fields is as long as its fields
    and eleven commas, which costs no scan of the text; only the other lines are counted."""
    sizes = pl.sum_horizontal(pl.col(c).str.len_bytes() for c in frames.FEED_COLUMNS)
    exact = ~pl.col("quoted") & (pl.col("raw").str.len_bytes() == sizes + (FIELD_COUNT - 1))
    suspects = table.with_row_index("position").filter(~exact).select("position", "raw", "quoted")
    counts = pl.repeat(FIELD_COUNT, table.height, dtype=pl.Int64(), eager=True).rename("fields")
    if suspects.height == 0:
        return counts
    # Commas inside quoted fields are data, not separators.
    unquoted = (
        pl.when("quoted").then(pl.col("raw").str.replace_all(_QUOTED_FIELD, "")).otherwise("raw")
    )
    counted = suspects.select(unquoted.str.count_matches(",", literal=True) + 1).to_series()
    return counts.scatter(suspects.get_column("position"), counted.cast(pl.Int64()))


def _structure_reason() -> pl.Expr:
    """A line's structural fault (encoding, quoting, field count), null when it has none."""
    raw = pl.col("raw")
    return (
        pl.when(pl.col("not_utf8"))
        .then(pl.lit(NOT_UTF8))
        .when(pl.col("broken"))
        .then(pl.lit(BAD_QUOTING))
        .when(raw.str.len_bytes() == 0)
        .then(pl.lit(EMPTY_LINE))
        .when(pl.col("fields") != FIELD_COUNT)
        .then(
            pl.format("wrong number of fields: expected {}, got {}", pl.lit(FIELD_COUNT), "fields")
        )
        .otherwise(pl.lit(None, pl.String()))
    )


def _scatter_rows(parsed: pl.DataFrame | None, kept: pl.Series, height: int) -> pl.DataFrame:
    """Put parsed rows back at the kept positions; the other positions get null fields."""
    positions = pl.DataFrame({"kept": kept}).with_row_index("pos").filter(pl.col("kept"))
    empty = pl.DataFrame(schema={c: pl.String() for c in frames.FEED_COLUMNS})
    rows = pl.concat(
        [positions.select("pos"), parsed if parsed is not None else empty], how="horizontal"
    )
    base = pl.DataFrame({"pos": pl.int_range(0, height, dtype=pl.UInt32(), eager=True)})
    return base.join(rows, on="pos", how="left", maintain_order="left").drop("pos")


# -- Parquet ------------------------------------------------------------------------------------


def _read_parquet(path: Path, chunk_rows: int, workers: int) -> Iterator[FeedChunk]:
    scan = pl.scan_parquet(path)
    schema = scan.collect_schema()
    absent = [c for c in frames.FEED_COLUMNS if c not in schema]
    extra = [c for c in schema.names() if c not in frames.FEED_COLUMNS]
    if absent or extra:
        raise FeedFormatError(
            f"{path}: a Parquet feed has exactly the columns {list(frames.FEED_COLUMNS)}; "
            f"missing {absent}, unexpected {extra}"
        )
    total = scan.select(pl.len()).collect().item()

    def part(offset: int) -> FeedChunk:
        rows = scan.slice(offset, chunk_rows).collect()
        return _validate_parquet_part(rows, schema, first_line=offset + 2)

    offsets = range(0, total, chunk_rows)
    if workers == 1:
        yield from map(part, offsets)
    else:
        yield from threads.ordered_map(part, offsets, workers, "validate")


def as_text(column: str, dtype: pl.DataType) -> pl.Expr:
    """A Parquet column as the text a CSV feed would hold (the rules read text)."""
    value = pl.col(column)
    if isinstance(dtype, pl.Datetime):
        if dtype.time_zone is None:
            # Naive instants keep no designator, so the time rule quarantines them as naive.
            return value.dt.to_string("%Y-%m-%dT%H:%M:%S%.f")
        return value.dt.convert_time_zone("UTC").dt.to_string("%Y-%m-%dT%H:%M:%S%.fZ")
    if dtype == pl.String:
        return value
    return value.cast(pl.String())


def _validate_parquet_part(part: pl.DataFrame, schema: pl.Schema, first_line: int) -> FeedChunk:
    fields = part.select(as_text(c, schema[c]).alias(c) for c in frames.FEED_COLUMNS)
    table = fields.with_columns(
        line=pl.int_range(first_line, first_line + pl.len(), dtype=pl.Int64()),
        # A Parquet row has no text of its own: quarantined rows get theirs rebuilt as CSV.
        raw=pl.lit(None, pl.String()),
        # Parquet strings are UTF-8 by definition; U+FFFD is the mark of an upstream lossy decode.
        not_utf8=_replaced(fields),
    )
    return _validate(table, pl.col("not_utf8"), pl.when("not_utf8").then(pl.lit(NOT_UTF8)))


def _replaced(fields: pl.DataFrame) -> pl.Series:
    """Rows with U+FFFD in any field. Only text beyond ASCII can hold one, and a feed's text is
    nearly all ASCII: counting characters is several times cheaper than searching, so the
    search runs only on the rows whose byte and character counts differ."""
    beyond_ascii = fields.select(
        pl.any_horizontal(
            pl.col(c).str.len_bytes() != pl.col(c).str.len_chars() for c in frames.FEED_COLUMNS
        ).fill_null(False)
    ).to_series()
    if not beyond_ascii.any():
        return beyond_ascii
    positions = beyond_ascii.arg_true()
    found = (
        fields[positions]
        .select(
            pl.any_horizontal(
                pl.col(c).str.contains(_REPLACEMENT, literal=True) for c in frames.FEED_COLUMNS
            ).fill_null(False)
        )
        .to_series()
    )
    return beyond_ascii.scatter(positions, found)


def _csv_line(columns: Iterable[str]) -> pl.Expr:
    """The RFC 4180 text of a row, for quarantined Parquet rows (which have no raw text)."""
    quoted = []
    for column in columns:
        value = pl.col(column).fill_null("")
        needs = value.str.contains(r'[",\r\n]')
        quoted.append(
            pl.when(needs)
            .then(pl.format('"{}"', value.str.replace_all('"', '""', literal=True)))
            .otherwise(value)
        )
    return pl.concat_str(quoted, separator=",")


# -- the rules ----------------------------------------------------------------------------------


def _validate(table: pl.DataFrame, structural: pl.Expr, structure_reason: pl.Expr) -> FeedChunk:
    """Split a table (line, raw, the feed columns as text) into accepted and quarantined rows.

    `structural` flags rows whose shape is wrong (encoding, quoting, field count) and
    `structure_reason` names it; the reason is evaluated only on the rows that are bad.
    """
    rules = _rules(_card_currencies(table.get_column("currency")))
    parsed = table.with_columns(
        amount=pl.col("amount_minor").str.to_integer(strict=False, dtype=pl.Int64()),
        instant=_parse_times(table.get_column("txn_time")),
    )
    flagged = parsed.with_columns(bad=pl.any_horizontal(structural, *(c for c, _ in rules)))
    accepted = (
        flagged.filter(~pl.col("bad"))
        .with_columns(
            # Only the optional fields can be empty in an accepted row; empty means null.
            *(pl.when(_blank(c)).then(None).otherwise(pl.col(c)).alias(c) for c in OPTIONAL),
            amount_minor=pl.col("amount"),
            txn_time=pl.col("instant"),
        )
        .select(frames.TRANSACTIONS.names())
    )
    # Reasons are worked out only for the few bad rows, so the detailed ones cost nothing.
    reason = pl.coalesce(structure_reason, *(pl.when(broken).then(text) for broken, text in rules))
    raw = pl.coalesce("raw", _csv_line(frames.FEED_COLUMNS))
    quarantined = flagged.filter(pl.col("bad")).select("line", reason=reason, raw=raw)
    return FeedChunk(
        accepted=frames.conform(accepted, frames.TRANSACTIONS, "accepted"),
        quarantined=frames.conform(quarantined, frames.QUARANTINE, "quarantined"),
    )


def _blank(column: str) -> pl.Expr:
    """An empty CSV field or a Parquet null: the field is missing."""
    return (pl.col(column).str.len_bytes() == 0).fill_null(True)


def _card_currencies(codes: pl.Series) -> list[str]:
    # Few distinct codes per file: ask core.money about each once, not once per row.
    return [
        c
        for c in codes.unique().drop_nulls().to_list()
        if c != POINTS and c not in NOT_MONEY and is_currency(c)
    ]


def _parse_times(text: pl.Series) -> pl.Series:
    """The accepted txn_time forms as UTC instants, null for anything else.

    Most feeds write whole seconds and Z, which parses with a fixed format at a fraction of the
    cost of the general one; fractions and +00:00 take the general parse, row by row subset.
    """
    shaped = text.str.contains(_TIME_SHAPE).fill_null(False)
    instants = text.str.strptime(frames.UTC_TIME, "%Y-%m-%dT%H:%M:%SZ", strict=False)
    others = shaped & instants.is_null()
    if others.any():
        positions = others.arg_true()
        general = text.gather(positions).str.replace(r"\+00:00$", "Z")
        parsed = general.str.strptime(frames.UTC_TIME, "%Y-%m-%dT%H:%M:%S%.fZ", strict=False)
        instants = instants.scatter(positions, parsed)
    return pl.select(pl.when(pl.lit(shaped)).then(pl.lit(instants))).to_series().rename("instant")


def _rules(currencies: list[str]) -> list[tuple[pl.Expr, pl.Expr]]:
    """(breaks the rule, reason) in the order the reasons are reported; null fields are missing."""
    col = pl.col
    amount_text = col("amount_minor")
    kind = col("type")
    original = _blank("original_txn_id")  # true when there is none
    rules: list[tuple[pl.Expr, pl.Expr]] = [(_blank(c), pl.lit(missing(c))) for c in REQUIRED]
    rules += [
        (~kind.is_in(frames.TXN_TYPES), pl.lit(UNKNOWN_TYPE)),
        (
            col("amount").is_null() | (col("amount") <= 0) | amount_text.str.starts_with("+"),
            _amount_reason(amount_text),
        ),
        (
            ~col("currency").is_in(currencies),
            pl.when(col("currency") == POINTS)
            .then(pl.lit(POINTS_CURRENCY))
            .when(col("currency").is_in(sorted(NOT_MONEY)))
            .then(pl.lit(NOT_MONEY_CURRENCY))
            .otherwise(pl.lit(UNKNOWN_CURRENCY)),
        ),
        (~col("mcc").str.contains(r"^[0-9]{4}$"), pl.lit(BAD_MCC)),
    ]
    rules += [
        (col(c).str.len_chars() > limit, pl.lit(too_long(c))) for c, limit in MAX_LENGTH.items()
    ]
    rules += [
        ((kind == frames.REFUND) & original, pl.lit(REFUND_WITHOUT_ORIGINAL)),
        ((kind == frames.CHARGEBACK) & original, pl.lit(CHARGEBACK_WITHOUT_ORIGINAL)),
        ((kind == frames.PURCHASE) & ~original, pl.lit(PURCHASE_WITH_ORIGINAL)),
        (col("instant").is_null(), _time_reason(col("txn_time"))),
    ]
    # A null field breaks only the "missing field" rule, never a later one.
    return [(condition.fill_null(False), reason) for condition, reason in rules]


def _amount_reason(text: pl.Expr) -> pl.Expr:
    return (
        pl.when(text.str.contains(r"^-\d+(\.\d*)?$"))
        .then(pl.lit(AMOUNT_NEGATIVE))
        .when(text.str.contains(r"^\d*\.\d*$") & text.str.contains(r"\d"))
        .then(pl.lit(AMOUNT_DECIMAL))
        .when(text.str.contains(r"^0+$"))
        .then(pl.lit(AMOUNT_ZERO))
        .when(text.str.contains(r"^\d+$"))
        .then(pl.lit(AMOUNT_TOO_LARGE))
        .otherwise(pl.lit(AMOUNT_NOT_A_NUMBER))
    )


def _time_reason(text: pl.Expr) -> pl.Expr:
    return (
        pl.when(text.str.contains(_TIME_SHAPE))
        .then(pl.lit(TIME_INVALID))
        .when(text.str.contains(_TIME_NAIVE))
        .then(pl.lit(TIME_NAIVE))
        .when(text.str.contains(_TIME_OFFSET))
        .then(pl.lit(TIME_NOT_UTC))
        .otherwise(pl.lit(TIME_MALFORMED))
    )
