"""Models and migrations agree, and the migrations run down and up again."""

from __future__ import annotations

from alembic import command
from sqlalchemy import Engine

from beyondbank import schema
from beyondbank.health import head_revision


def test_models_and_migrations_do_not_drift(engine: Engine) -> None:
    with engine.connect() as connection:
        assert schema.drift(connection) == []
        assert schema.current_revision(connection) == head_revision()


def test_migrations_downgrade_and_upgrade_cleanly(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from beyondbank.core.db import make_engine

    eng = make_engine(f"sqlite:///{tmp_path}/roundtrip.db")
    schema.upgrade(eng)
    with eng.begin() as connection:
        command.downgrade(schema.alembic_config(connection=connection), "base")
    assert schema.current_revision(eng) is None
    schema.upgrade(eng)
    with eng.connect() as connection:
        assert schema.drift(connection) == []
    eng.dispose()
