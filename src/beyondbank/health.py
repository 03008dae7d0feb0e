"""`GET /api/v1/health`: is the database reachable, and is its schema at the code's revision."""

from __future__ import annotations

import time
from functools import cache
from typing import Any

from alembic.script import ScriptDirectory
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from beyondbank import __version__, schema

router = APIRouter(tags=["operations"])


@cache
def head_revision() -> str | None:
    """The newest migration this code ships. Reading the scripts costs ~50 ms of CPU, and they
    are part of the installed code: once per process, not once per probe."""
    return ScriptDirectory.from_config(schema.alembic_config()).get_current_head()


def database_state(session_factory: sessionmaker[Session]) -> dict[str, Any]:
    started = time.perf_counter()
    dialect = "unknown"
    try:
        with session_factory() as session:
            connection = session.connection()
            dialect = connection.dialect.name
            connection.execute(text("SELECT 1"))
            revision = schema.current_revision(connection)
    except SQLAlchemyError as exc:
        return {"status": "unavailable", "dialect": dialect, "error": type(exc).__name__}
    head = head_revision()
    return {
        "status": "ok" if revision == head else "migrations_pending",
        "dialect": dialect,
        "revision": revision,
        "head": head,
        "latency_ms": round((time.perf_counter() - started) * 1000, 2),
    }


@router.get("/health", summary="Liveness and the database's state")
def health(request: Request) -> JSONResponse:
    database = database_state(request.app.state.session_factory)
    healthy = database["status"] == "ok"
    return JSONResponse(
        {"status": "ok" if healthy else "degraded", "version": __version__, "database": database},
        status_code=200 if database["status"] != "unavailable" else 503,
    )
