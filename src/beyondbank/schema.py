"""The whole database schema: every area's models in one metadata, and its Alembic migrations."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import Connection, Engine, MetaData

# Each area's tables join the metadata when its models module is imported; importing them here,
# explicitly, is how Alembic and the tests see the full schema.
from beyondbank.alliance import models as alliance_models
from beyondbank.benefits import models as benefits_models
from beyondbank.cards import models as cards_models
from beyondbank.commerce import models as commerce_models
from beyondbank.core import models as core_models
from beyondbank.core.db import Base
from beyondbank.identity import models as identity_models
from beyondbank.ledger import models as ledger_models
from beyondbank.payments import models as payments_models
from beyondbank.settlement import models as settlement_models

AREAS = (
    core_models,
    identity_models,
    alliance_models,
    benefits_models,
    ledger_models,
    commerce_models,
    payments_models,
    settlement_models,
    cards_models,
)
metadata: MetaData = Base.metadata


def migrations_dir() -> Path:
    """`migrations/` beside the package in a checkout, or packed inside an installed wheel."""
    packaged = Path(__file__).with_name("_migrations")
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[2] / "migrations"


def alembic_config(url: str | None = None, connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    if url:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def upgrade(bind: Engine | Connection, revision: str = "head") -> None:
    if isinstance(bind, Engine):
        with bind.begin() as connection:
            command.upgrade(alembic_config(connection=connection), revision)
    else:
        command.upgrade(alembic_config(connection=bind), revision)


def current_revision(bind: Engine | Connection) -> str | None:
    def _read(connection: Connection) -> str | None:
        return MigrationContext.configure(connection).get_current_revision()

    if isinstance(bind, Engine):
        with bind.connect() as connection:
            return _read(connection)
    return _read(bind)


def drift(connection: Connection) -> list[Any]:
    """Differences between the models and a migrated database: empty when they agree."""
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, metadata))
