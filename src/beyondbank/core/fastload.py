"""Loading many rows into a table fast: COPY on PostgreSQL, one executemany on SQLite."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

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
