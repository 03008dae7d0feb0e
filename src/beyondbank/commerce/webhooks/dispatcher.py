"""Sending due webhook deliveries: claim under row locks, post outside any transaction, record.

One pass (`deliver_due`) runs three steps, each in its own short transaction or none:

1. **Claim.** Pending deliveries whose `next_attempt_at` has come are locked with
   `FOR UPDATE SKIP LOCKED` (PostgreSQL; SQLite has one writer and no row locks), oldest event
   first. Each claimed row counts the attempt and pushes `next_attempt_at` out by a lease that
   covers the whole pass at its worst (`lease_for`), then the transaction commits. Several
   workers never take the same row, and a worker that dies mid-pass leaves rows that come due
   again when the lease runs out.
2. **Send.** Each claimed delivery is POSTed with fresh Standard Webhooks headers, with no
   transaction open and a short timeout, `concurrency` at a time: a receiver that never answers
   costs one timeout.
3. **Record.** A 2xx marks it delivered. Anything else (a status, a timeout, a refused
   connection) schedules the next attempt on the retry schedule, with jitter, or marks it dead
   after the last one. The update is conditional on the row still being the claim this worker
   made (same attempt count, still pending), so a late answer never overwrites a newer claim.

Delivery is at least once: a receiver may see an event again (its answer lost, a lease that
ran out) and dedupes on `webhook-id`. Events are claimed in event order but are not held back
behind a failing one, so a retried event can arrive after later ones: each carries its
`timestamp` and the object's current state.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

import httpx
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from beyondbank.commerce.models import (
    DeliveryStatus,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
)
from beyondbank.commerce.webhooks import signing
from beyondbank.core.clock import Clock

# The Standard Webhooks retry schedule, after the first attempt: 5 s, 5 min, 30 min, 2 h, 5 h,
# 10 h, 10 h. Eight attempts over about a day and a quarter, then the delivery is dead.
RETRY_SCHEDULE: tuple[timedelta, ...] = (
    timedelta(seconds=5),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=5),
    timedelta(hours=10),
    timedelta(hours=10),
)
MAX_ATTEMPTS = len(RETRY_SCHEDULE) + 1
JITTER = (
    0.1  # up to 10% later than scheduled, so receivers that fail together are not retried together
)
TIMEOUT_SECONDS = 5.0
# A claimed row comes due again after this, plus the pass's worst-case sending time, if its
# worker never records an outcome (it died).
CLAIM_LEASE = timedelta(seconds=60)
ERROR_LIMIT = 500  # characters of a failure kept on the delivery

M = TypeVar("M", WebhookEndpoint, WebhookEvent)


@dataclass(frozen=True, slots=True)
class DispatchCounts:
    claimed: int = 0
    delivered: int = 0
    retrying: int = 0  # failed, another attempt scheduled
    dead: int = 0  # failed the last attempt
    lost_claims: int = 0  # outcome not recorded: the row was claimed again meanwhile


@dataclass(frozen=True, slots=True)
class _Claim:
    delivery_id: int
    attempt: int  # the attempt number this claim counted
    url: str
    secrets: tuple[str, ...]  # the current secret, and the one it replaced during its grace
    msg_id: str
    body: bytes


@dataclass(frozen=True, slots=True)
class _Outcome:
    status_code: int | None
    error: str | None

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def body_of(payload: dict[str, Any]) -> bytes:
    """The JSON body sent for an event: compact, the same bytes on every attempt."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


def backoff(attempts: int, rng: Callable[[], float] = random.random) -> timedelta:
    """How long after failed attempt number `attempts` (1-based) to try again, with jitter."""
    base = RETRY_SCHEDULE[min(attempts, len(RETRY_SCHEDULE)) - 1]
    return base + base * JITTER * rng()


def lease_for(claimed: int, concurrency: int) -> timedelta:
    """How long a pass holds its claims: the whole pass, every send taking its worst case (connect,
    write and read each up to the timeout, with room to spare), so that no claim comes due again
    (and goes to another worker) while this one is still to send it."""
    rounds = -(-claimed // max(1, concurrency))
    return CLAIM_LEASE + timedelta(seconds=TIMEOUT_SECONDS * 4 * rounds)


def deliver_due(
    session_factory: sessionmaker[Session],
    clock: Clock,
    *,
    client: httpx.Client,
    limit: int = 100,
    concurrency: int = 1,
    rng: Callable[[], float] = random.random,
) -> DispatchCounts:
    """Send up to `limit` due deliveries once each and record what happened.

    With `concurrency` > 1 that many are sent at a time, each recorded in a session of its own
    (the session factory must then be bound to an engine, not to one connection)."""
    claims = _claim(session_factory, clock, limit, concurrency)

    def attempt(claim: _Claim) -> DeliveryStatus | None:
        return _record(session_factory, clock, claim, _send(client, claim, clock), rng)

    if concurrency > 1 and len(claims) > 1:
        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            outcomes = list(pool.map(attempt, claims))
    else:
        outcomes = [attempt(claim) for claim in claims]
    delivered = retrying = dead = lost = 0
    for recorded in outcomes:
        if recorded is None:
            lost += 1
        elif recorded == DeliveryStatus.DELIVERED:
            delivered += 1
        elif recorded == DeliveryStatus.DEAD:
            dead += 1
        else:
            retrying += 1
    return DispatchCounts(
        claimed=len(claims), delivered=delivered, retrying=retrying, dead=dead, lost_claims=lost
    )


def _claim(
    session_factory: sessionmaker[Session], clock: Clock, limit: int, concurrency: int = 1
) -> list[_Claim]:
    now = clock.now()
    with session_factory() as session, session.begin():
        rows = session.scalars(
            select(WebhookDelivery)
            .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
            .where(
                WebhookDelivery.status == DeliveryStatus.PENDING,
                WebhookDelivery.next_attempt_at <= now,
                WebhookEndpoint.active.is_(True),
            )
            .order_by(WebhookDelivery.event_id, WebhookDelivery.id)
            .limit(limit)
            .with_for_update(of=WebhookDelivery, skip_locked=True)
        ).all()
        if not rows:
            return []
        endpoints = _by_id(session, WebhookEndpoint, {r.endpoint_id for r in rows})
        events = _by_id(session, WebhookEvent, {r.event_id for r in rows})
        lease = lease_for(len(rows), concurrency)
        claims = []
        for row in rows:
            row.attempts += 1
            row.next_attempt_at = now + lease
            endpoint, event = endpoints[row.endpoint_id], events[row.event_id]
            claims.append(
                _Claim(
                    delivery_id=row.id,
                    attempt=row.attempts,
                    url=endpoint.url,
                    secrets=signing_secrets(endpoint, now),
                    msg_id=event.public_id,
                    body=body_of(event.payload),
                )
            )
    return claims


def signing_secrets(endpoint: WebhookEndpoint, now: datetime) -> tuple[str, ...]:
    """What a message to the endpoint is signed with now: its secret, and the secret a rotation
    replaced while its grace period lasts."""
    until = endpoint.previous_secret_until
    if endpoint.previous_secret and until is not None and now < until:
        return (endpoint.secret, endpoint.previous_secret)
    return (endpoint.secret,)


def _by_id(session: Session, model: type[M], ids: set[int]) -> dict[int, M]:
    return {row.id: row for row in session.scalars(select(model).where(model.id.in_(ids)))}


def _send(client: httpx.Client, claim: _Claim, clock: Clock) -> _Outcome:
    timestamp = int(clock.now().timestamp())
    request_headers = {
        "content-type": "application/json",
        "user-agent": "beyondbank-webhooks/1",
        **signing.headers(claim.secrets, claim.msg_id, timestamp, claim.body),
    }
    try:
        response = client.post(
            claim.url,
            content=claim.body,
            headers=request_headers,
            timeout=httpx.Timeout(TIMEOUT_SECONDS),
            follow_redirects=False,  # a redirect is a failure: the partner registers the real URL
        )
    except httpx.TimeoutException as exc:
        return _Outcome(None, f"timed out after {TIMEOUT_SECONDS:g} s ({type(exc).__name__})")
    except httpx.HTTPError as exc:
        return _Outcome(None, f"{type(exc).__name__}: {exc}"[:ERROR_LIMIT])
    if 200 <= response.status_code < 300:
        return _Outcome(response.status_code, None)
    return _Outcome(
        response.status_code, f"HTTP {response.status_code}: {response.text[:200]}"[:ERROR_LIMIT]
    )


def _record(
    session_factory: sessionmaker[Session],
    clock: Clock,
    claim: _Claim,
    outcome: _Outcome,
    rng: Callable[[], float],
) -> DeliveryStatus | None:
    """Store the outcome if the row is still this worker's claim; the status it got, or None."""
    now = clock.now()
    values: dict[str, Any] = {"last_status_code": outcome.status_code, "last_error": outcome.error}
    if outcome.ok:
        status = DeliveryStatus.DELIVERED
        values.update(status=status, delivered_at=now)
    elif claim.attempt >= MAX_ATTEMPTS:
        status = DeliveryStatus.DEAD
        values.update(status=status)
    else:
        status = DeliveryStatus.PENDING
        values.update(next_attempt_at=now + backoff(claim.attempt, rng))
    with session_factory() as session, session.begin():
        result = session.execute(
            update(WebhookDelivery)
            .where(
                WebhookDelivery.id == claim.delivery_id,
                WebhookDelivery.status == DeliveryStatus.PENDING,
                WebhookDelivery.attempts == claim.attempt,
            )
            .values(**values)
        )
        return status if _rowcount(result) == 1 else None


def _rowcount(result: Any) -> int:
    return int(result.rowcount)


def due_count(session: Session, now: datetime) -> int:
    """How many deliveries are due now (for the command's summary)."""
    count = session.scalar(
        select(func.count()).where(
            WebhookDelivery.status == DeliveryStatus.PENDING,
            WebhookDelivery.next_attempt_at <= now,
        )
    )
    return int(count or 0)
