"""Program import fixtures: the shipped example, and running an import on the test's connection."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import Connection, func, select

from beyondbank import schema
from beyondbank.core.clock import FixedClock
from beyondbank.program.service import ImportResult, import_program
from beyondbank.program.source import Document

EXAMPLE = Path(__file__).parents[2] / "docs" / "examples" / "program.yaml"

Run = Callable[[Document], ImportResult]


@pytest.fixture
def example_path() -> Path:
    return EXAMPLE


@pytest.fixture
def run(connection: Connection, clock: FixedClock) -> Run:
    """Import a document in a savepoint of the test's connection (rolled back after the test)."""

    def _run(document: Document) -> ImportResult:
        return import_program(connection, document, clock=clock, default_currency="GBP")

    return _run


def row_counts(connection: Connection) -> dict[str, int]:
    """Rows in every table: what "nothing was written" means."""
    return {
        table.name: connection.scalar(select(func.count()).select_from(table)) or 0
        for table in schema.metadata.sorted_tables
    }
