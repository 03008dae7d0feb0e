"""Database plumbing: the declarative base, column types, engines for SQLite and PostgreSQL."""

from __future__ import annotations

import select
import time
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Date,
    DateTime,
    Dialect,
    Engine,
    Integer,
    MetaData,
    String,
    create_engine,
    event,
)
from sqlalchemy import (
    Enum as SAEnum,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.pool import ConnectionPoolEntry
from sqlalchemy.types import TypeDecorator

# Stable constraint names, so migrations can name (and later drop) what they create.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Stores instants in UTC; refuses naive datetimes; always returns aware UTC values.

    SQLite keeps no time zone, so the value is normalised to UTC before it is written.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: store timezone-aware UTC instants")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


JSONType = JSON().with_variant(JSONB(), "postgresql")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime(),
        date: Date(),
        # SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL gets 64-bit keys.
        int: BigInteger().with_variant(Integer(), "sqlite"),
        dict[str, Any]: JSONType,
        list[Any]: JSONType,
        list[str]: JSONType,
        list[int]: JSONType,
    }


def str_enum(cls: type[StrEnum]) -> SAEnum:
    """A Python StrEnum stored as its string value, with a CHECK constraint on both databases."""
    return SAEnum(
        cls,
        native_enum=False,
        create_constraint=True,
        length=32,
        name=cls.__name__.lower(),
        values_callable=lambda members: [m.value for m in members],
        validate_strings=True,
    )


class IdMixin:
    """Internal integer key for joins and ordering; `public_id` is what the outside world sees."""

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    public_id: Mapped[str] = mapped_column(String(40), unique=True)


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def _in_memory(url: str) -> bool:
    return is_sqlite(url) and make_url(url).database in (None, "", ":memory:")


def make_engine(
    url: str,
    *,
    echo: bool = False,
    pool_size: int | None = None,
    max_overflow: int | None = None,
    **kwargs: Any,
) -> Engine:
    """An engine for `url`; `pool_size` and `max_overflow` size its pool of connections (an
    in-memory SQLite database has one connection a thread, whatever they say)."""
    if pool_size is not None and not _in_memory(url):
        kwargs["pool_size"] = pool_size
    if max_overflow is not None and not _in_memory(url):
        kwargs["max_overflow"] = max_overflow
    if is_sqlite(url):
        engine = create_engine(
            url, echo=echo, connect_args={"timeout": 30, "check_same_thread": False}, **kwargs
        )
        _configure_sqlite(engine)
        return engine
    engine = create_engine(url, echo=echo, **kwargs)
    _check_on_checkout(engine)
    return engine


# A pooled connection idle longer than this is pinged before it is used again.
PING_AFTER_IDLE_SECONDS = 10.0


def _check_on_checkout(engine: Engine) -> None:
    """A pooled connection the database has dropped is replaced before a request uses it, as
    `pool_pre_ping` does, without a round trip on every checkout (a checkout took four).

    A connection back in the pool a short while ago is checked on its socket alone, which costs
    no round trip: when PostgreSQL ends a session (a restart, `pg_terminate_backend`, an idle
    timeout) it sends its last message and closes the socket, so an idle connection's socket
    that has anything to read, or that is closed, is pinged (and replaced if the ping fails).
    One idle longer than `PING_AFTER_IDLE_SECONDS` is always pinged: a network that dropped it
    without a word is not seen on the socket. Raising `DisconnectionError` here makes the pool
    discard the connection and check out another (SQLAlchemy's "pessimistic" recipe)."""

    @event.listens_for(engine, "checkin")
    def _on_checkin(_dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        record.info["checked_in"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _on_checkout(dbapi_connection: Any, record: ConnectionPoolEntry, _proxy: Any) -> None:
        since = record.info.pop("checked_in", None)
        if since is None:
            return  # a new connection
        idle = time.monotonic() - since
        if idle <= PING_AFTER_IDLE_SECONDS and _socket_quiet(dbapi_connection):
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except Exception as exc:
            raise DisconnectionError(f"a pooled connection was dropped: {exc}") from exc


def _socket_quiet(dbapi_connection: Any) -> bool:
    """Whether an idle connection's socket is open with nothing to read (no round trip)."""
    try:
        if dbapi_connection.closed:
            return False
        readable, _, _ = select.select([dbapi_connection.fileno()], [], [], 0)
    except (OSError, ValueError, AttributeError):
        return False
    return not readable


def _configure_sqlite(engine: Engine) -> None:
    """Make SQLite behave: foreign keys on, WAL, and every transaction `BEGIN IMMEDIATE`.

    pysqlite's own transaction handling defers `BEGIN` and breaks SAVEPOINT; we take over
    (the recipe in SQLAlchemy's SQLite notes). Taking the write lock at `BEGIN` serialises
    writers up front, so a read-then-write transaction never fails half-way with "database
    is locked": the embedded database trades write concurrency for correctness.
    """

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        if engine.url.database not in (None, "", ":memory:"):
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")
