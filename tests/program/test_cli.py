"""`beyondbank import FILE`: exit 0 and a summary, or exit 1 naming every problem and its line."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner

from beyondbank.cli import app
from beyondbank.core.db import make_engine
from beyondbank.core.settings import get_settings
from tests.program.conftest import EXAMPLE, row_counts
from tests.program.test_rejections import BAD, EXPECTED, line_of

runner = CliRunner()


@pytest.fixture
def database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    """An SQLite file of the test's own, named the way operators name it: the environment."""
    monkeypatch.setenv("BEYONDBANK_DATABASE_URL", f"sqlite:///{tmp_path}/cli.db")
    get_settings.cache_clear()
    engine = make_engine(get_settings().database_url)
    yield engine
    engine.dispose()
    get_settings.cache_clear()


def counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as connection:
        return row_counts(connection)


def test_import_refuses_a_database_that_is_not_migrated(database: Engine) -> None:
    result = runner.invoke(app, ["import", str(EXAMPLE)])

    assert result.exit_code == 1
    assert "run `beyondbank db upgrade` first" in result.output


def test_import_writes_the_file_and_says_what_it_created(database: Engine) -> None:
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0

    result = runner.invoke(app, ["import", str(EXAMPLE)])

    assert result.exit_code == 0, result.output
    assert "program.yaml imported" in result.output
    assert "merchants by status" in result.output
    assert counts(database)["merchants"] == 7
    assert counts(database)["card_links"] == 3


def test_check_validates_and_writes_nothing(database: Engine) -> None:
    runner.invoke(app, ["db", "upgrade"])
    before = counts(database)

    result = runner.invoke(app, ["import", "--check", str(EXAMPLE)])

    assert result.exit_code == 0, result.output
    assert "is valid; nothing written (--check)" in result.output
    assert counts(database) == before


def test_a_bad_file_exits_1_naming_each_problem_and_writes_nothing(
    database: Engine, tmp_path: Path
) -> None:
    runner.invoke(app, ["db", "upgrade"])
    bad = tmp_path / "bad.yaml"
    bad.write_text(BAD)
    before = counts(database)

    result = runner.invoke(app, ["import", str(bad)])

    assert result.exit_code == 1
    assert f"bad.yaml: {len(EXPECTED)} problems; nothing was written." in result.stderr
    for marker, (path, words) in EXPECTED.items():
        assert f"bad.yaml:{line_of(BAD, marker)}: {path}: " in result.stderr, marker
        assert words in result.stderr
    assert counts(database) == before


def test_an_unreadable_file_exits_1(database: Engine, tmp_path: Path) -> None:
    runner.invoke(app, ["db", "upgrade"])
    missing = tmp_path / "missing.yaml"

    result = runner.invoke(app, ["import", str(missing)])

    assert result.exit_code == 1
    assert "cannot read" in result.stderr
