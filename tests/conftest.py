"""Test fixtures: a migrated database (SQLite by default, PostgreSQL when
BEYONDBANK_TEST_DATABASE_URL names one), each test in a transaction that is rolled back,
and a committing engine for the tests that race real threads.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Connection, Engine, text
from sqlalchemy.orm import Session, sessionmaker
from starlette.middleware import Middleware

from beyondbank import schema
from beyondbank.api import app_state, create_app
from beyondbank.core.clock import FixedClock
from beyondbank.core.db import make_engine
from beyondbank.core.settings import Settings, get_settings
from beyondbank.core.uow import UnitOfWork, make_session_factory

POSTGRES_URL = os.environ.get("BEYONDBANK_TEST_DATABASE_URL", "")
SHARED_DATA = Path(
    os.environ.get("BEYONDBANK_DATA_DIR", Path(__file__).parents[1] / ".." / "shared" / "data")
)
# A Sunday late morning in London, in the middle of the demo programme.
T0 = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)

DB_FIXTURES = {
    "engine",
    "connection",
    "uow",
    "client",
    "app",
    "committing_engine",
    "session_factory",
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        if fixtures & DB_FIXTURES:
            item.add_marker(pytest.mark.db)


def _worker() -> str:
    return re.sub(r"\W", "", os.environ.get("PYTEST_XDIST_WORKER", "main")) or "main"


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    if POSTGRES_URL:
        yield POSTGRES_URL
        return
    with tempfile.TemporaryDirectory(prefix="beyondbank-test-") as tmp:
        yield f"sqlite:///{tmp}/test-{_worker()}.db"


@pytest.fixture(scope="session")
def engine(database_url: str) -> Iterator[Engine]:
    """A freshly migrated database: a file on SQLite, a schema per test worker on PostgreSQL."""
    if database_url.startswith("postgresql"):
        # One schema per test process, so that parallel runs never share tables.
        schema_name = f"bb_test_{_worker()}_{os.getpid()}"
        admin = make_engine(database_url)
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema_name}" CASCADE'))
            conn.execute(text(f'CREATE SCHEMA "{schema_name}"'))
        admin.dispose()
        eng = make_engine(
            database_url,
            connect_args={"options": f"-csearch_path={schema_name}"},
            pool_size=30,
            max_overflow=30,
        )
    else:
        eng = make_engine(database_url, pool_size=30, max_overflow=30)
    schema.upgrade(eng)
    yield eng
    eng.dispose()
    if database_url.startswith("postgresql"):
        admin = make_engine(database_url)
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema_name}" CASCADE'))
        admin.dispose()


@pytest.fixture
def is_postgres(engine: Engine) -> bool:
    return engine.dialect.name == "postgresql"


@pytest.fixture
def connection(engine: Engine) -> Iterator[Connection]:
    """One connection per test whose outer transaction is always rolled back."""
    conn = engine.connect()
    outer = conn.begin()
    try:
        yield conn
    finally:
        outer.rollback()
        conn.close()


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(T0)


@pytest.fixture
def session_factory(connection: Connection) -> sessionmaker[Session]:
    return make_session_factory(connection)


@pytest.fixture
def uow(session_factory: sessionmaker[Session], clock: FixedClock) -> Iterator[UnitOfWork]:
    with UnitOfWork(session_factory, clock) as unit:
        yield unit


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(environment="test", database_url=database_url, data_dir=SHARED_DATA)


@dataclass
class _Built:
    app: FastAPI
    settings: Settings
    middleware: list[Middleware]


@pytest.fixture(scope="session")
def _built_apps() -> list[_Built]:
    """The apps this test process has built, one per distinct settings."""
    return []


@pytest.fixture
def app(
    settings: Settings,
    engine: Engine,
    connection: Connection,
    clock: FixedClock,
    _built_apps: list[_Built],
) -> FastAPI:
    """The app over this test's connection and clock.

    Building one costs about half a second of CPU (FastAPI analyses the dependencies of every
    route), and some 900 tests take one, on each database. So an app built earlier in this
    process for equal settings serves again, with everything a test can change put back: new
    state (session, clock, the card switch's caches; the compiled templates are kept), the
    middleware list as built, and a middleware stack built afresh on the next request (the
    edges in front of the router keep caches per instance)."""
    built = next((b for b in _built_apps if b.settings == settings), None)
    if built is None:
        fresh = create_app(settings, engine=engine, session_bind=connection, clock=clock)
        _built_apps.append(_Built(fresh, settings, list(fresh.user_middleware)))
        return fresh
    reused = built.app
    reused.state = app_state(
        settings,
        engine=engine,
        session_bind=connection,
        clock=clock,
        templates=reused.state.templates,
    )
    reused.user_middleware = list(built.middleware)
    reused.middleware_stack = None
    return reused


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture
def committing_engine(engine: Engine) -> Iterator[Engine]:
    """For races and whole-database runs: work really commits, so threads on separate
    connections see it.
    Every table is emptied afterwards. Races only mean something on PostgreSQL."""
    if engine.dialect.name != "postgresql":
        pytest.skip("runs on PostgreSQL with real commits (the second pass of `make test`)")
    try:
        yield engine
    finally:
        tables = ", ".join(f'"{t.name}"' for t in schema.metadata.sorted_tables)
        with engine.begin() as conn:
            conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))


@pytest.fixture
def cli_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    """A migrated SQLite file of the test's own, named the way operators name it (the
    environment), for the `beyondbank` commands."""
    monkeypatch.setenv("BEYONDBANK_DATABASE_URL", f"sqlite:///{tmp_path}/cli.db")
    get_settings.cache_clear()
    engine = make_engine(get_settings().database_url)
    schema.upgrade(engine)
    yield engine
    engine.dispose()
    get_settings.cache_clear()


@pytest.fixture
def shared_data() -> Path:
    """The shared public data sets; tests that need them skip with the reason when absent."""
    if not (SHARED_DATA / "mcc_codes.csv").exists():
        pytest.skip(f"shared data not found in {SHARED_DATA} (set BEYONDBANK_DATA_DIR)")
    return SHARED_DATA
