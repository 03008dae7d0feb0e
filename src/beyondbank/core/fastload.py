"""Loading many rows into a table fast: COPY on PostgreSQL, one executemany on SQLite."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

import polars as pl
from sqlalchemy import Connection


def load_rows(
    connection: Connection, table: str, columns: Sequence[str], rows: Iterable[tuple[Any, ...]]
) -> None:
    """Insert the rows inside the connection's transaction. `table` and `columns` are the
    caller's constants, never input: they are interpolated into the statement."""
    if connection.dialect.name == "postgresql":
        raw = connection.connection.driver_connection
        assert raw is not None
        statement = f"COPY {table} ({', '.join(columns)}) FROM STDIN"
        with raw.cursor() as cursor, cursor.copy(statement) as copy:
            for row in rows:
                copy.write_row(row)
        return
    values = [tuple(sqlite_value(value) for value in row) for row in rows]
    if not values:
        return
    raw_sqlite = connection.connection.driver_connection
    assert raw_sqlite is not None
    placeholders = ", ".join("?" for _ in columns)
    statement = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({placeholders})"  # noqa: S608
    raw_sqlite.executemany(statement, values)


def sqlite_value(value: Any) -> Any:
    """What SQLAlchemy binds for SQLite: UTC datetimes as fixed-width text, so they compare."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    return value


def load_frame(connection: Connection, table: str, frame: pl.DataFrame) -> None:
    """Insert a Polars frame's rows (its column names are the table's). On PostgreSQL the frame
    is written as CSV straight into COPY, with no Python object per value."""
    if not frame.height:
        return
    if connection.dialect.name != "postgresql":
        load_rows(connection, table, frame.columns, frame.iter_rows())
        return
    raw = connection.connection.driver_connection
    assert raw is not None
    text = frame.with_columns(
        pl.col(c).dt.to_string("%Y-%m-%dT%H:%M:%S%.f%z")
        for c, dtype in frame.schema.items()
        if isinstance(dtype, pl.Datetime)
    ).write_csv(include_header=False, null_value="")
    # CSV's unquoted empty field is NULL to COPY; an empty string would be quoted ("").
    statement = f"COPY {table} ({', '.join(frame.columns)}) FROM STDIN (FORMAT csv)"
    with raw.cursor() as cursor, cursor.copy(statement) as copy:
        copy.write(text)
