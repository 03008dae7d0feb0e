"""The served app freezes its start-up heap (no 300 ms full collections walking it); a test
suite's apps do not, or each would stay in memory for good. Its PostgreSQL pool and its
request threads are as large as the settings say."""

from __future__ import annotations

import gc
from pathlib import Path

from anyio import to_thread
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.pool import QueuePool

from beyondbank.api import create_app
from beyondbank.core.settings import Settings


def test_a_served_app_freezes_its_start_up_heap(settings: Settings, engine: Engine) -> None:
    gc.unfreeze()
    thresholds = gc.get_threshold()
    served = create_app(settings.model_copy(update={"environment": "demo"}), engine=engine)
    try:
        with TestClient(served):
            assert gc.get_freeze_count() > 0
            assert gc.get_threshold()[0] == 10_000
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)


def test_a_test_suites_app_does_not(settings: Settings, engine: Engine) -> None:
    gc.unfreeze()
    with TestClient(create_app(settings, engine=engine)):
        assert gc.get_freeze_count() == 0


def test_requests_are_served_by_as_many_threads_as_the_pool_has_connections(
    settings: Settings, engine: Engine
) -> None:
    """A thread beyond the pool's connections would only wait for one, holding nothing."""
    sized = settings.model_copy(update={"database_pool_size": 7, "database_max_overflow": 3})
    with TestClient(create_app(sized, engine=engine)) as client:
        tokens = client.portal.call(  # type: ignore[union-attr]
            lambda: to_thread.current_default_thread_limiter().total_tokens
        )
    assert tokens == 10


def test_a_served_apps_pool_has_the_settings_size(settings: Settings, tmp_path: Path) -> None:
    on_sqlite = settings.model_copy(
        update={
            "database_url": f"sqlite:///{tmp_path}/sized.db",
            "database_pool_size": 4,
            "database_max_overflow": 2,
        }
    )
    pool = create_app(on_sqlite).state.engine.pool
    assert isinstance(pool, QueuePool)
    assert pool.size() == 4
    assert pool._max_overflow == 2
    pool.dispose()

    sized = settings.model_copy(
        update={
            "database_url": "postgresql+psycopg://nobody@127.0.0.1:1/none",
            "database_pool_size": 7,
            "database_max_overflow": 3,
        }
    )
    # The engine connects on first use, which this test never makes.
    app = create_app(sized)
    pool = app.state.engine.pool
    assert isinstance(pool, QueuePool)
    assert pool.size() == 7
    assert pool.overflow() == -7  # nothing checked out: -size, up to max_overflow more
    assert pool._max_overflow == 3


def test_an_in_memory_database_takes_no_pool_size() -> None:
    """SQLite in memory keeps a connection a thread: a size would be refused, so it is not given."""
    from beyondbank.core.db import make_engine

    engine = make_engine("sqlite://", pool_size=4, max_overflow=2)
    assert not isinstance(engine.pool, QueuePool)
    engine.dispose()
