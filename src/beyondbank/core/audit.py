"""The audit trail: services record every change explicitly, inside the transaction that makes it."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

from sqlalchemy import inspect, select
from sqlalchemy.orm import Session

from beyondbank.core.authz import Principal
from beyondbank.core.models import AuditEvent
from beyondbank.core.pagination import paginate

# Never copied into the trail, whatever the table.
_SECRET_COLUMNS = frozenset({"password_hash", "secret_hash", "secret"})


def snapshot(obj: object, only: Iterable[str] | None = None) -> dict[str, Any]:
    """The column values of a model instance, as JSON-safe data."""
    mapper = inspect(type(obj))
    names = list(only) if only is not None else [c.key for c in mapper.column_attrs]
    return {
        name: _jsonable(getattr(obj, name))
        for name in names
        if name not in _SECRET_COLUMNS and name != "id"
    }


def changed(before: dict[str, Any], after: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Only the fields that differ, so the trail reads as what changed."""
    keys = [k for k in after if before.get(k) != after.get(k)]
    return {k: before.get(k) for k in keys}, {k: after[k] for k in keys}


def record(
    session: Session,
    *,
    actor: Principal,
    at: datetime,
    action: str,
    object_type: str,
    object_id: str,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    reason: str | None = None,
    request_id: str | None = None,
) -> AuditEvent:
    event = AuditEvent(
        occurred_at=at,
        actor_type=actor.kind,
        actor_id=actor.public_id,
        actor_label=actor.label,
        actor_role=actor.role.value if actor.role else None,
        action=action,
        object_type=object_type,
        object_id=object_id,
        before=before,
        after=after,
        reason=reason,
        request_id=request_id,
    )
    session.add(event)
    return event


def record_changes(
    session: Session,
    *,
    actor: Principal,
    at: datetime,
    action: str,
    object_type: str,
    object_id: str,
    before: dict[str, Any],
    after: dict[str, Any],
    reason: str | None = None,
) -> bool:
    """Record an update as the fields that differ between two snapshots; nothing if none do.
    True when something was recorded."""
    old, new = changed(before, after)
    if not new:
        return False
    record(
        session,
        actor=actor,
        at=at,
        action=action,
        object_type=object_type,
        object_id=object_id,
        before=old,
        after=new,
        reason=reason,
    )
    return True


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return value


@dataclass(frozen=True, slots=True)
class TrailFilter:
    actor_id: str | None = None
    actor_type: str | None = None
    object_type: str | None = None
    object_id: str | None = None
    action: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def trail(
    session: Session, filters: TrailFilter, *, cursor: str | None, limit: int
) -> tuple[Sequence[AuditEvent], str | None]:
    """One page of the audit trail matching the filters, newest first."""
    stmt = select(AuditEvent)
    for column, value in (
        (AuditEvent.actor_id, filters.actor_id),
        (AuditEvent.actor_type, filters.actor_type),
        (AuditEvent.object_type, filters.object_type),
        (AuditEvent.object_id, filters.object_id),
        (AuditEvent.action, filters.action),
    ):
        if value:
            stmt = stmt.where(column == value)
    if filters.since:
        stmt = stmt.where(AuditEvent.occurred_at >= filters.since)
    if filters.until:
        stmt = stmt.where(AuditEvent.occurred_at < filters.until)
    return paginate(session, stmt, AuditEvent.id, cursor=cursor, limit=limit, descending=True)


def object_types(session: Session) -> list[str]:
    """The kinds of object the trail holds changes to, for a filter's choices."""
    stmt = select(AuditEvent.object_type).distinct().order_by(AuditEvent.object_type)
    return list(session.scalars(stmt))
