"""The PostgreSQL pool replaces a connection the database dropped before anyone uses it, and
spends no round trip on a connection that is fine."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, text

from beyondbank.core import db

pytestmark = pytest.mark.db


@pytest.fixture
def pooled(database_url: str) -> Iterator[Engine]:
    """An engine of one pooled connection on the test database (PostgreSQL only)."""
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite has no server to drop a connection")
    engine = db.make_engine(database_url, pool_size=1, max_overflow=0)
    yield engine
    engine.dispose()


def _backend(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())


def _terminate(database_url: str, pid: int) -> None:
    admin = db.make_engine(database_url)
    with admin.connect() as conn:
        assert conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}).scalar_one()
    admin.dispose()


def test_a_dropped_connection_is_replaced_before_it_is_used(
    pooled: Engine, database_url: str
) -> None:
    first = _backend(pooled)
    _terminate(database_url, first)
    time.sleep(0.2)  # the server's last message reaches the idle socket
    assert _backend(pooled) != first  # the request's query ran, on a new connection


def test_a_quiet_connection_is_used_without_a_ping(pooled: Engine) -> None:
    first = _backend(pooled)
    pings = 0
    ping = pooled.dialect.do_ping

    def counted(dbapi_connection: object) -> bool:
        nonlocal pings
        pings += 1
        return ping(dbapi_connection)

    pooled.dialect.do_ping = counted  # type: ignore[method-assign]
    assert _backend(pooled) == first
    assert pings == 0


def test_a_connection_idle_for_long_is_pinged(
    pooled: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = _backend(pooled)
    monkeypatch.setattr(db, "PING_AFTER_IDLE_SECONDS", 0.0)
    pings = 0
    ping = pooled.dialect.do_ping

    def counted(dbapi_connection: object) -> bool:
        nonlocal pings
        pings += 1
        return ping(dbapi_connection)

    pooled.dialect.do_ping = counted  # type: ignore[method-assign]
    assert _backend(pooled) == first
    assert pings == 1
