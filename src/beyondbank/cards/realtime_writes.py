"""A real-time batch's writes after judging, as one statement on PostgreSQL: its grants and reward
rows, what it takes from budgets, its members' counters, the review queue and its tally row.

Each of these was a statement (a round trip) of its own, and a rewarded batch's benefits and
counters stayed locked across all the round trips after them. Here they are data-modifying CTEs
of one statement, fed with JSON arrays; the conditions stay the database's: a budget or a
quantity is taken only while enough is left, a member's counter moves only within the
benefit's limit, and the statement says how many rows each condition let through, so the
caller can refuse (and retry) the batch as the separate statements did. Benefits are locked in
id order before they are updated, and counters and reviews are written in key order, so
concurrent batches queue rather than deadlock. (SQLite, whose writers take turns anyway, runs
the separate statements: `realtime._Batch`.)
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, text

from beyondbank.cards import frames, tallies

_GRANT_COLUMNS = (*frames.GRANTS.names(), "run_id", "granted_at")
_REWARD_COLUMNS = (*frames.REWARDS.names(), "run_id", "posted_at")
_REVIEW_COLUMNS = (
    "public_id",
    "descriptor_key",
    "mcc",
    "example",
    "city",
    "candidate_merchant_id",
    "candidate_location_id",
    "score",
    "transactions",
    "status",
    "first_seen_at",
    "last_seen_at",
)


def _columns(names: Sequence[str]) -> str:
    return ", ".join(names)


_TALLY_SET = ", ".join(
    f"{name} = card_run_tallies.{name} + excluded.{name}" for name in tallies.COUNTERS
)
# Every name interpolated here is a constant of this module or of the tables' schemas.
_WRITE = text(
    f"""
WITH grants AS (
    INSERT INTO card_grants ({_columns(_GRANT_COLUMNS)})
    SELECT {_columns(_GRANT_COLUMNS)}
    FROM jsonb_populate_recordset(NULL::card_grants, CAST(:grants AS JSONB))
), rewards AS (
    INSERT INTO card_rewards ({_columns(_REWARD_COLUMNS)})
    SELECT {_columns(_REWARD_COLUMNS)}
    FROM jsonb_populate_recordset(NULL::card_rewards, CAST(:rewards AS JSONB))
), wanted AS MATERIALIZED (
    SELECT b.id, x.budget, x.quantity
    FROM benefits AS b
    JOIN jsonb_to_recordset(CAST(:consumed AS JSONB)) AS x(id bigint, budget bigint, quantity bigint)
        ON b.id = x.id
    ORDER BY b.id
    FOR UPDATE OF b
), consumed AS (
    UPDATE benefits AS b SET
        budget_remaining_minor = b.budget_remaining_minor - w.budget,
        quantity_remaining = b.quantity_remaining - w.quantity
    FROM wanted AS w
    WHERE b.id = w.id
        AND (w.budget = 0 OR b.budget_remaining_minor IS NULL
             OR b.budget_remaining_minor >= w.budget)
        AND (w.quantity = 0 OR b.quantity_remaining IS NULL
             OR b.quantity_remaining >= w.quantity)
    RETURNING b.id
), limits AS (
    SELECT * FROM jsonb_to_recordset(CAST(:limits AS JSONB)) AS l(benefit_id bigint, most bigint)
), uses AS (
    INSERT INTO benefit_usages (benefit_id, member_id, period_key, uses)
    SELECT x.benefit_id, x.member_id, x.period_key, x.uses
    FROM jsonb_to_recordset(CAST(:uses AS JSONB))
        AS x(benefit_id bigint, member_id bigint, period_key varchar, uses integer)
    ORDER BY x.benefit_id, x.member_id, x.period_key
    ON CONFLICT (benefit_id, member_id, period_key) DO UPDATE
    SET uses = benefit_usages.uses + excluded.uses
    WHERE (SELECT l.most FROM limits AS l WHERE l.benefit_id = excluded.benefit_id) IS NULL
        OR benefit_usages.uses + excluded.uses
            <= (SELECT l.most FROM limits AS l WHERE l.benefit_id = excluded.benefit_id)
    RETURNING benefit_id, member_id, period_key
), reviews AS (
    INSERT INTO descriptor_reviews ({_columns(_REVIEW_COLUMNS)})
    SELECT {_columns(_REVIEW_COLUMNS)}
    FROM jsonb_populate_recordset(NULL::descriptor_reviews, CAST(:reviews AS JSONB))
    ORDER BY descriptor_key, mcc
    ON CONFLICT (descriptor_key, mcc) DO UPDATE
    SET transactions = descriptor_reviews.transactions + 1,
        last_seen_at = excluded.last_seen_at
), tally AS (
    INSERT INTO card_run_tallies (run_id, slot, {_columns(tallies.COUNTERS)})
    SELECT :run_id, pg_backend_pid(), {_columns([f"t.{n}" for n in tallies.COUNTERS])}
    FROM jsonb_to_record(CAST(:counts AS JSONB))
        AS t({", ".join(f"{n} bigint" for n in tallies.COUNTERS)})
    WHERE :count
    ON CONFLICT (run_id, slot) DO UPDATE SET {_TALLY_SET}
)
SELECT ARRAY(SELECT id FROM consumed),
    ARRAY(SELECT benefit_id::text || ' ' || member_id::text || ' ' || period_key FROM uses)
"""  # noqa: S608
)


@dataclass
class Writes:
    """What a batch writes after judging, gathered by its steps, then written at once."""

    grants: list[dict[str, Any]] = field(default_factory=list)
    rewards: list[dict[str, Any]] = field(default_factory=list)
    # (benefit id, budget, quantity) taken; only rows that take something
    consumed: list[tuple[int, int, int]] = field(default_factory=list)
    uses: Mapping[tuple[int, int, str], int] = field(default_factory=dict)
    limits: Mapping[int, int | None] = field(default_factory=dict)
    reviews: list[dict[str, Any]] = field(default_factory=list)
    counts: dict[str, int] | None = None  # the tally's, if the batch wrote any event


def _json(rows: Any) -> str:
    return json.dumps(rows, default=_time)


def _time(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON")


def write(connection: Connection, run_id: int, writes: Writes) -> tuple[int | None, int | None]:
    """Write it all in one round trip. The benefit whose budget or quantity was short, and the
    one whose member limit a counter would have passed, if any (the caller then refuses the
    batch, and its transaction is rolled back)."""
    consumed = [(b, budget, n) for b, budget, n in writes.consumed if budget or n]
    used = sorted(writes.uses.items())
    taken, counted = connection.execute(
        _WRITE,
        {
            "grants": _json(writes.grants),
            "rewards": _json(writes.rewards),
            "consumed": _json([{"id": b, "budget": c, "quantity": n} for b, c, n in consumed]),
            "limits": _json(
                [{"benefit_id": b, "most": most} for b, most in sorted(writes.limits.items())]
            ),
            "uses": _json(
                [
                    {"benefit_id": b, "member_id": m, "period_key": k, "uses": n}
                    for (b, m, k), n in used
                ]
            ),
            "reviews": _json(writes.reviews),
            "run_id": run_id,
            "counts": _json(writes.counts or {}),
            "count": writes.counts is not None,
        },
    ).one()
    short = next((b for b, _budget, _n in consumed if b not in set(taken)), None)
    over = next((b for (b, m, k), _n in used if f"{b} {m} {k}" not in set(counted)), None)
    return short, over
