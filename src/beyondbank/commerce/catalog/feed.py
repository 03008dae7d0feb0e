"""Reading a partner's catalog feed, CSV or JSON, one record at a time, into checked rows.

Nothing here touches the database: a feed is read as a stream of (line, record) pairs and each
record becomes either a `FeedRow` (every field valid, money in minor units) or a `RowProblem`
naming the line, the field and the reason. The import (service.py) decides what the rows do.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import IO, Any, Literal

from beyondbank.commerce.models import ProductStatus
from beyondbank.core.money import is_currency, minor_digits

FeedFormat = Literal["csv", "json"]

COLUMNS = (
    "sku",
    "title",
    "description",
    "category",
    "currency",
    "public_price",
    "client_price",
    "stock",
    "valid_from",
    "valid_to",
    "image_url",
    "status",
)
REQUIRED = ("sku", "title", "category", "public_price", "client_price", "stock")
# Lengths of the columns they land in (commerce/models.py): longer values are refused, not cut.
MAX_LENGTHS = {"sku": 64, "title": 300, "category": 100, "image_url": 500}
# A raw record longer than this is kept cut in the reject table: it is there to be recognised.
RAW_KEPT = 2_000
_READ_CHUNK = 64 * 1024


@dataclass(frozen=True, slots=True)
class Record:
    """One record as read: the line it starts on, its fields (None if unreadable), its text."""

    line: int
    fields: dict[str, Any] | None
    raw: str
    error: str | None = None  # why the record could not be read at all


@dataclass(frozen=True, slots=True)
class FeedRow:
    """A feed record with every field checked: what a product and its price should be."""

    line: int
    sku: str
    title: str
    description: str
    category: str
    currency: str
    public_minor: int
    client_minor: int
    stock: int
    valid_from: datetime | None
    valid_to: datetime | None
    image_url: str | None
    status: ProductStatus

    @property
    def fingerprint(self) -> str:
        """sha256 of the row's meaning (not its spelling, nor its line): the same product and
        price, from CSV or JSON, with `12.5` or `12.50`, has the same fingerprint."""
        data = asdict(self)
        del data["line"]
        canonical = json.dumps(data, sort_keys=True, default=_json_default, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class RowProblem:
    line: int
    field: str | None
    reason: str
    raw: str


def _json_default(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def _kept(raw: str) -> str:
    return raw if len(raw) <= RAW_KEPT else raw[:RAW_KEPT] + "…"


# -- reading ------------------------------------------------------------------------------------


def read_records(stream: IO[bytes], fmt: FeedFormat) -> Iterator[Record]:
    """The feed's records in order, read incrementally from a binary stream (UTF-8, BOM allowed)."""
    # Decoding is strict: a feed in another encoding stops at its first bad byte, not guessed.
    text = io.TextIOWrapper(stream, encoding="utf-8-sig", newline="")
    last = 0
    try:
        for record in _csv_records(text) if fmt == "csv" else _json_records(text):
            last = record.line
            yield record
    except UnicodeDecodeError as exc:
        yield Record(last + 1, None, "", f"not UTF-8 text from here on: {exc.reason}")
    finally:
        # The caller owns the byte stream: let go of it without closing it (unless it was
        # closed already, when a failed import's generator is collected late).
        with contextlib.suppress(ValueError):
            text.detach()


def _csv_records(text: IO[str]) -> Iterator[Record]:
    reader = csv.reader(text, strict=True)
    try:
        header = next(reader)
    except StopIteration:
        return
    except csv.Error as exc:
        yield Record(1, None, "", f"the header is not valid CSV: {exc}")
        return
    names = [h.strip().lower() for h in header]
    start = reader.line_num + 1
    while True:
        try:
            values = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            # The csv module cannot resynchronise after a broken quote: stop with the reason.
            yield Record(start, None, "", f"not valid CSV from here on: {exc}")
            return
        line, start = start, reader.line_num + 1
        raw = ",".join(values)
        if not values or all(not v.strip() for v in values):
            continue  # blank lines are not records
        if len(values) != len(names):
            yield Record(
                line, None, raw, f"has {len(values)} fields where the header has {len(names)}"
            )
            continue
        yield Record(line, dict(zip(names, values, strict=True)), raw)


def _json_records(text: IO[str]) -> Iterator[Record]:
    """JSON Lines (one object per line), or one JSON array of objects, told by the first character."""
    first, first_line = "", 1
    while not first:
        chunk = text.read(1)
        if not chunk:
            return
        if not chunk.isspace():
            first = chunk
        elif chunk == "\n":
            first_line += 1
    # Put the first character back in front of the rest of the stream.
    rest = _Prepended(first, text, first_line)
    if first == "[":
        yield from _json_array_records(rest)
    else:
        yield from _json_lines_records(rest)


class _Prepended:
    """A text stream with some characters pushed back in front of it."""

    def __init__(self, head: str, tail: IO[str], first_line: int) -> None:
        self._head = head
        self._tail = tail
        self.first_line = first_line  # the line the head is on

    def read(self, size: int) -> str:
        if self._head:
            head, self._head = self._head, ""
            return head + self._tail.read(max(0, size - len(head)))
        return self._tail.read(size)

    def __iter__(self) -> Iterator[str]:
        buffer = ""
        while True:
            chunk = self.read(_READ_CHUNK)
            if not chunk:
                break
            buffer += chunk
            *lines, buffer = buffer.split("\n")
            for line in lines:
                yield line + "\n"
        if buffer:
            yield buffer


def _json_lines_records(text: _Prepended) -> Iterator[Record]:
    for number, line in enumerate(text, start=text.first_line):
        stripped = line.strip()
        if not stripped:
            continue
        try:
            value = json.loads(stripped, parse_float=Decimal)
        except json.JSONDecodeError as exc:
            yield Record(number, None, stripped, f"not valid JSON: {exc.msg}")
            continue
        if not isinstance(value, dict):
            yield Record(number, None, stripped, "not a JSON object")
            continue
        yield Record(number, value, stripped)


def _json_array_records(text: _Prepended) -> Iterator[Record]:
    """The objects of one top-level JSON array, decoded one at a time as the text arrives."""
    decoder = json.JSONDecoder(parse_float=Decimal)  # money stays exact
    buffer = text.read(_READ_CHUNK)[1:]  # past the "["
    line = text.first_line
    eof = False
    while True:
        # Skip separators, counting the lines they span.
        i = 0
        while True:
            while i < len(buffer) and (buffer[i].isspace() or buffer[i] == ","):
                line += buffer[i] == "\n"
                i += 1
            if i < len(buffer) or eof:
                break
            more = text.read(_READ_CHUNK)
            eof = not more
            buffer, i = buffer[i:] + more, 0
        buffer = buffer[i:]
        if not buffer:
            yield Record(line, None, "", "the JSON array is not closed")
            return
        if buffer[0] == "]":
            return
        while True:
            try:
                value, end = decoder.raw_decode(buffer)
                break
            except json.JSONDecodeError as exc:
                more = "" if eof else text.read(_READ_CHUNK)
                if not more:
                    eof = True
                    # An element that does not parse leaves no way to find the next one.
                    yield Record(
                        line + exc.lineno - 1,
                        None,
                        _kept(buffer.split("\n", 1)[0]),
                        f"not valid JSON ({exc.msg}): the rest of the array cannot be read",
                    )
                    return
                buffer += more
        raw = buffer[:end]
        if isinstance(value, dict):
            yield Record(line, value, raw)
        else:
            yield Record(line, None, _kept(raw), "not a JSON object")
        line += raw.count("\n")
        buffer = buffer[end:]


# -- checking -------------------------------------------------------------------------------------


class _Bad(Exception):
    def __init__(self, field: str | None, reason: str) -> None:
        super().__init__(reason)
        self.field = field
        self.reason = reason


def _text(fields: Mapping[str, Any], name: str, *, required: bool) -> str:
    value = fields.get(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise _Bad(name, "missing")
        return ""
    if not isinstance(value, str | int) or isinstance(value, bool):
        raise _Bad(name, "must be a string")
    text = str(value).strip()
    limit = MAX_LENGTHS.get(name)
    if limit is not None and len(text) > limit:
        raise _Bad(name, f"longer than {limit} characters")
    return text


def parse_money(value: object, currency: str, name: str) -> int:
    """A decimal string (or JSON number written as one) in minor units; never through a float."""
    if isinstance(value, bool) or value is None:
        raise _Bad(name, "missing")
    if isinstance(value, float):
        # json.loads gives floats for numbers; take the shortest repr, which is what was written.
        value = repr(value)
    text = str(value).strip()
    if not text:
        raise _Bad(name, "missing")
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise _Bad(name, f"{text!r} is not a decimal amount") from None
    if not number.is_finite():
        raise _Bad(name, f"{text!r} is not a finite amount")
    digits = minor_digits(currency)
    exponent = number.as_tuple().exponent
    if isinstance(exponent, int) and -exponent > digits:
        raise _Bad(name, f"{text} has more than the {digits} decimal places {currency} has")
    minor = int(number.scaleb(digits))
    if minor <= 0:
        raise _Bad(name, f"{text} is not a positive amount")
    return minor


def _stock(value: object) -> int:
    if value is None or (isinstance(value, str) and not value.strip()):
        raise _Bad("stock", "missing")
    if isinstance(value, bool | float):
        raise _Bad("stock", f"{value!r} is not a whole number")
    try:
        stock = int(str(value).strip())
    except ValueError:
        raise _Bad("stock", f"{value!r} is not a whole number") from None
    if stock < 0:
        raise _Bad("stock", f"{stock} is negative")
    return stock


def _instant(value: object, name: str) -> datetime | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        at = datetime.fromisoformat(str(value).strip())
    except ValueError:
        raise _Bad(name, f"{value!r} is not an ISO 8601 date or date-time") from None
    # A date, or a time without an offset, is read as UTC: feeds name no time zone otherwise.
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def check(record: Record, default_currency: str) -> FeedRow | RowProblem:
    """The record as a checked row, or the first thing wrong with it."""
    if record.fields is None:
        return RowProblem(record.line, None, record.error or "unreadable", _kept(record.raw))
    fields = record.fields
    try:
        unknown = sorted(set(fields) - set(COLUMNS))
        if unknown:
            raise _Bad(unknown[0], f"not a feed field (expected some of: {', '.join(COLUMNS)})")
        sku = _text(fields, "sku", required=True)
        title = _text(fields, "title", required=True)
        category = _text(fields, "category", required=True).lower()
        currency = _text(fields, "currency", required=False).upper() or default_currency
        if not is_currency(currency):
            raise _Bad("currency", f"{currency!r} is not an ISO 4217 currency")
        if currency != default_currency:
            raise _Bad("currency", f"the partner sells in {default_currency}, not {currency}")
        public = parse_money(fields.get("public_price"), currency, "public_price")
        client = parse_money(fields.get("client_price"), currency, "client_price")
        if client >= public:
            raise _Bad(
                "client_price",
                f"the bank-client price must be below the public price "
                f"({fields.get('client_price')} is not below {fields.get('public_price')})",
            )
        stock = _stock(fields.get("stock"))
        valid_from = _instant(fields.get("valid_from"), "valid_from")
        valid_to = _instant(fields.get("valid_to"), "valid_to")
        if valid_to is not None and valid_to <= (valid_from or datetime.min.replace(tzinfo=UTC)):
            raise _Bad("valid_to", "must be after valid_from")
        status_text = _text(fields, "status", required=False).lower() or ProductStatus.ACTIVE.value
        try:
            status = ProductStatus(status_text)
        except ValueError:
            raise _Bad("status", f"{status_text!r} is not one of: active, withdrawn") from None
        return FeedRow(
            line=record.line,
            sku=sku,
            title=title,
            description=_text(fields, "description", required=False),
            category=category,
            currency=currency,
            public_minor=public,
            client_minor=client,
            stock=stock,
            valid_from=valid_from,
            valid_to=valid_to,
            image_url=_text(fields, "image_url", required=False) or None,
            status=status,
        )
    except _Bad as bad:
        return RowProblem(record.line, bad.field, bad.reason, _kept(record.raw))


def sniff_format(content_type: str | None, name: str | None = None) -> FeedFormat | None:
    """csv or json from a media type or a file name; None when neither says."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media in {"text/csv", "application/csv"}:
        return "csv"
    if media in {"application/json", "application/x-ndjson", "application/jsonl"}:
        return "json"
    lowered = (name or "").lower()
    if lowered.endswith(".csv"):
        return "csv"
    if lowered.endswith((".json", ".jsonl", ".ndjson")):
        return "json"
    return None


def sha256_of(stream: IO[bytes]) -> str:
    """The stream's sha256, read in chunks; the stream is left at its start."""
    digest = hashlib.sha256()
    stream.seek(0)
    for chunk in iter(lambda: stream.read(_READ_CHUNK), b""):
        digest.update(chunk)
    stream.seek(0)
    return digest.hexdigest()
