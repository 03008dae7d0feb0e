"""Models and migrations agree, and the migrations run down and up again."""

from __future__ import annotations

import importlib.util
from types import ModuleType

import pytest
from alembic import command
from sqlalchemy import Connection, Engine, text

from beyondbank import schema
from beyondbank.health import head_revision


def _migration(file: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(file, schema.migrations_dir() / "versions" / file)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


plans = _migration("20261207_0013_plans_kept_per_session.py")


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


def _languages(connection: Connection) -> dict[str, str]:
    rows = connection.execute(
        text(
            "SELECT p.proname, l.lanname FROM pg_proc AS p JOIN pg_language AS l "
            "ON l.oid = p.prolang WHERE p.proname IN ('shop_webhook_emit', 'bank_authorise_open') "
            "AND p.pronamespace = current_schema()::regnamespace"
        )
    )
    return {name: language for name, language in rows}


def _settings(connection: Connection, names: tuple[str, ...]) -> dict[str, list[str] | None]:
    rows = connection.execute(
        text(
            "SELECT proname, proconfig FROM pg_proc WHERE proname = ANY (:names) "
            "AND pronamespace = current_schema()::regnamespace"
        ),
        {"names": list(names)},
    )
    return {name: config for name, config in rows}


def _definition(connection: Connection, name: str) -> str:
    return str(
        connection.execute(
            text(
                "SELECT pg_get_functiondef(oid) FROM pg_proc WHERE proname = :name "
                "AND pronamespace = current_schema()::regnamespace"
            ),
            {"name": name},
        ).scalar_one()
    )


@pytest.mark.postgres
def test_the_checkouts_functions_keep_their_plans_and_migrate_down_and_up(
    connection: Connection,
) -> None:
    """Migration 0013: PL/pgSQL with generic plans, products and accounts found by key; and back."""
    if connection.dialect.name != "postgresql":
        pytest.skip("the server's functions exist on PostgreSQL only")
    assert _languages(connection) == {
        "shop_webhook_emit": "plpgsql",
        "bank_authorise_open": "plpgsql",
    }
    generic = ["plan_cache_mode=force_generic_plan"]
    assert _settings(connection, plans.GENERIC_PLANS) == dict.fromkeys(plans.GENERIC_PLANS, generic)
    assert "unnest(p_products)" in _definition(connection, "shop_checkout_open")
    assert "id = ANY (ARRAY(" in _definition(connection, "bank_authorise_holds")
    command.downgrade(schema.alembic_config(connection=connection), "0012")
    assert set(_languages(connection).values()) == {"sql"}
    assert "public_id = ANY (p_products)" in _definition(connection, "shop_checkout_open")
    assert "WHERE id IN (" in _definition(connection, "bank_authorise_holds")
    assert _settings(connection, plans.GENERIC_PLANS) == dict.fromkeys(plans.GENERIC_PLANS, None)
    schema.upgrade(connection)
    assert set(_languages(connection).values()) == {"plpgsql"}
    assert _settings(connection, plans.GENERIC_PLANS) == dict.fromkeys(plans.GENERIC_PLANS, generic)
    assert "unnest(p_products)" in _definition(connection, "shop_checkout_open")
    assert "id = ANY (ARRAY(" in _definition(connection, "bank_authorise_holds")
    assert schema.current_revision(connection) == head_revision()
