"""`Idempotency-Key` semantics (IETF httpapi draft), enforced by a unique constraint.

A request claims its key in a short transaction of its own. The operation then runs and
completes the claim *inside its own transaction*, storing the response, so that the response
is remembered exactly when the work is committed. Outcomes for a later request with the key:
same body and completed → the original response; different body → 422; still in flight → 409.
A claim whose work failed is released, so the caller may retry; one whose process died is
taken over once its lock expires.

`claim_within` is the one-transaction variant for work that is a single transaction up to its
first answer (the shop's checkout): the claim is the transaction's first write, already holding
that answer, so it commits with the work or vanishes with it, and no separate claim or release
transaction is needed. A later request with the key sees the same outcomes; one that arrives
while the first is still in that transaction waits on the unique index for the first to commit
(milliseconds) and then replays its answer, instead of a 409.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError

from beyondbank.core.errors import (
    FieldError,
    IdempotencyInFlight,
    IdempotencyKeyReused,
    InvalidInput,
)
from beyondbank.core.i18n import _
from beyondbank.core.models import IdempotencyRecord
from beyondbank.core.uow import UnitOfWork

MAX_KEY_LENGTH = 255


def fingerprint(method: str, path: str, body: Any) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(f"{method} {path}\n{canonical}".encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Replay:
    status_code: int
    response: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Claim:
    record_id: int

    def complete(self, uow: UnitOfWork, status_code: int, response: dict[str, Any]) -> None:
        """Store the response in the caller's transaction: it commits with the work or not at all."""
        uow.session.execute(
            update(IdempotencyRecord)
            .where(IdempotencyRecord.id == self.record_id)
            .values(
                state="completed",
                status_code=status_code,
                response=response,
                completed_at=uow.clock.now(),
            )
        )


def check_key(key: str) -> str:
    if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise InvalidInput(
            _("The Idempotency-Key header is not usable."),
            errors=(
                FieldError(
                    "header.Idempotency-Key",
                    _("1 to %(max)s printable characters", max=MAX_KEY_LENGTH),
                ),
            ),
        )
    return key


def claim(
    uow: UnitOfWork, *, scope: str, key: str, fingerprint: str, lock_seconds: int
) -> Claim | Replay:
    """Claim the key for this request, or say what an earlier request with it already answered.

    A claim comes before the request writes anything; what the caller has read so far is
    committed first, so that the request never holds one pooled connection while it waits for
    a second (under load, requests doing that take every connection and wait for each other).
    """
    check_key(key)
    _end_reads(uow)
    now = uow.clock.now()
    with uow.fresh() as own:
        session = own.session
        record = IdempotencyRecord(
            scope=scope,
            key=key,
            fingerprint=fingerprint,
            state="in_flight",
            locked_until=now + timedelta(seconds=lock_seconds),
            created_at=now,
        )
        session.add(record)
        try:
            session.flush()
        except IntegrityError:
            session.rollback()
        else:
            own.commit()
            return Claim(record.id)

        existing = session.scalars(
            select(IdempotencyRecord).where(
                IdempotencyRecord.scope == scope, IdempotencyRecord.key == key
            )
        ).one()
        if existing.fingerprint != fingerprint:
            raise IdempotencyKeyReused(
                _("This Idempotency-Key was used for a different request; use a new key.")
            )
        if existing.state == "completed":
            return Replay(existing.status_code or 200, existing.response or {})
        # In flight: take it over only if its holder's lock has run out (the holder died).
        taken = session.execute(
            update(IdempotencyRecord)
            .where(
                IdempotencyRecord.id == existing.id,
                IdempotencyRecord.state == "in_flight",
                IdempotencyRecord.locked_until < now,
            )
            .values(locked_until=now + timedelta(seconds=lock_seconds))
        )
        own.commit()
        if taken.rowcount == 1:  # type: ignore[attr-defined]
            return Claim(existing.id)
        raise IdempotencyInFlight(
            _("The first request with this Idempotency-Key is still in progress.")
        )


def claim_within(
    uow: UnitOfWork,
    *,
    scope: str,
    key: str,
    fingerprint: str,
    lock_seconds: int,
    status_code: int,
    response: dict[str, Any],
) -> Claim | Replay:
    """Claim the key in the caller's transaction, recorded as answered `status_code`/`response`
    (what the work about to be done in this transaction answers). Call it before the transaction
    writes anything else. One statement when the key is new (INSERT ... ON CONFLICT DO NOTHING
    RETURNING); a key already claimed is a Replay, a 422 (another body) or a 409 (in flight)."""
    check_key(key)
    now = uow.clock.now()
    session = uow.session
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    record_id = session.execute(
        insert(IdempotencyRecord)
        .values(
            scope=scope,
            key=key,
            fingerprint=fingerprint,
            state="completed",
            locked_until=now + timedelta(seconds=lock_seconds),
            status_code=status_code,
            response=response,
            created_at=now,
            completed_at=now,
        )
        .on_conflict_do_nothing(index_elements=["scope", "key"])
        .returning(IdempotencyRecord.id)
    ).scalar_one_or_none()
    if record_id is not None:
        return Claim(record_id)
    # Taken: by a committed request (a concurrent one has committed by now: the insert waited).
    existing = session.execute(
        select(
            IdempotencyRecord.id,
            IdempotencyRecord.fingerprint,
            IdempotencyRecord.state,
            IdempotencyRecord.status_code,
            IdempotencyRecord.response,
        ).where(IdempotencyRecord.scope == scope, IdempotencyRecord.key == key)
    ).one_or_none()
    if existing is None:  # released between the insert and the read: the caller may retry
        raise IdempotencyInFlight(_("A request with this Idempotency-Key just ended; try again."))
    if existing.fingerprint != fingerprint:
        raise IdempotencyKeyReused(
            _("This Idempotency-Key was used for a different request; use a new key.")
        )
    if existing.state == "completed":
        return Replay(existing.status_code or 200, existing.response or {})
    # In flight (claimed by `claim`): take it over only if its holder's lock has run out.
    taken = session.execute(
        update(IdempotencyRecord)
        .where(
            IdempotencyRecord.id == existing.id,
            IdempotencyRecord.state == "in_flight",
            IdempotencyRecord.locked_until < now,
        )
        .values(
            state="completed",
            locked_until=now + timedelta(seconds=lock_seconds),
            status_code=status_code,
            response=response,
            completed_at=now,
        )
    )
    if taken.rowcount == 1:  # type: ignore[attr-defined]
        return Claim(existing.id)
    raise IdempotencyInFlight(
        _("The first request with this Idempotency-Key is still in progress.")
    )


def _end_reads(uow: UnitOfWork) -> None:
    session = uow.session
    if session.new or session.dirty or session.deleted:
        raise RuntimeError("an Idempotency-Key is claimed before the request writes anything")
    if session.in_transaction():
        session.commit()  # nothing to write: it only ends the transaction and frees the connection


def release(uow: UnitOfWork, held: Claim) -> None:
    """Forget a claim whose work failed and wrote nothing, so the caller can try again."""
    with uow.fresh() as own:
        own.session.execute(
            delete(IdempotencyRecord).where(
                IdempotencyRecord.id == held.record_id, IdempotencyRecord.state == "in_flight"
            )
        )
        own.commit()
