"""Importing a program document: validate it whole, then write it in one transaction, or nothing."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import Connection, Engine

from beyondbank.core.authz import Principal
from beyondbank.core.clock import Clock
from beyondbank.core.uow import UnitOfWork, make_session_factory
from beyondbank.program.source import Document, Issue
from beyondbank.program.validation import ImportRejected, Plan, validate
from beyondbank.program.writer import NoProgress, Progress, Summary, Writer, summarise

__all__ = ["ImportRejected", "ImportResult", "import_program", "importer"]


@dataclass(frozen=True, slots=True)
class ImportResult:
    summary: Summary
    written: bool  # False for a check (`--check`): validated, nothing written
    warnings: list[Issue]  # worth a look, but imported anyway (an unknown manager's email)


def importer(name: str) -> Principal:
    """Who the audit trail says made every change: the import, naming the file."""
    return Principal(kind="system", id=0, public_id="import", label=f"program import {name}")


@contextmanager
def _one_transaction(bind: Engine | Connection, *, keep: bool) -> Iterator[Connection]:
    """One database transaction for the whole import. The services commit as they go; bound to
    this connection their commits release savepoints, and only the end decides: everything
    stays, or (on any failure, or for a check) nothing does. On a connection already in a
    transaction (a test's), the import runs in a savepoint of it."""
    if isinstance(bind, Engine):
        with bind.connect() as connection, _one_transaction(connection, keep=keep) as inner:
            yield inner
        return
    transaction = bind.begin_nested() if bind.in_transaction() else bind.begin()
    try:
        yield bind
    except BaseException:
        transaction.rollback()
        raise
    if keep:
        transaction.commit()
    else:
        transaction.rollback()


def import_program(
    bind: Engine | Connection,
    document: Document,
    *,
    clock: Clock,
    default_currency: str,
    actor: Principal | None = None,
    progress: Progress | None = None,
    check_only: bool = False,
) -> ImportResult:
    """Validate the document as a whole and, unless `check_only`, write all of it.

    Raises `ImportRejected` naming every problem (with its path and line) when the document is
    not valid, or naming the entry a use case refused while writing; either way nothing is
    written.
    """
    with (
        _one_transaction(bind, keep=not check_only) as connection,
        UnitOfWork(make_session_factory(connection), clock) as uow,
    ):
        plan: Plan = validate(uow, document, default_currency=default_currency, now=clock.now())
        if not check_only:
            Writer(
                uow,
                plan,
                actor or importer(document.name),
                default_currency=default_currency,
                progress=progress or NoProgress(),
            ).write()
            uow.commit()
    return ImportResult(summarise(plan), written=not check_only, warnings=plan.warnings)
