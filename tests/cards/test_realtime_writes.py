"""A real-time batch's writes after judging in one statement on PostgreSQL (`realtime_writes`):
everything lands, and a budget that is short or a member limit that would be passed is named
rather than overspent."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select

from beyondbank.benefits.models import BenefitUsage
from beyondbank.cards import realtime, realtime_writes, tallies
from beyondbank.cards.models import CardGrant, CardReward, CardRunTally, DescriptorReview
from beyondbank.core.uow import UnitOfWork
from tests.cards import factories as cf
from tests.cards.strategies import GRANT_DEFAULTS

pytestmark = pytest.mark.postgres

AT = datetime(2026, 11, 22, 9, 41, 7, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _on_postgresql(is_postgres: bool) -> None:
    if not is_postgres:
        pytest.skip("PostgreSQL's statement: SQLite's batches write each part on its own")


def _grant(p: cf.Programme, txn_id: str, run_id: int) -> dict[str, Any]:
    return {
        **GRANT_DEFAULTS,
        "txn_id": txn_id,
        "member_id": p.member.id,
        "merchant_id": p.merchant.id,
        "purchase_amount_minor": 4_000,
        "benefit_id": p.benefit.id,
        "reward_minor": 800,
        "merchant_funded_minor": 480,
        "commission_minor": 100,
        "run_id": run_id,
        "granted_at": AT,
    }


def _reward(p: cf.Programme, txn_id: str, run_id: int) -> dict[str, Any]:
    return cf.reward_fields(p, AT, txn_id=txn_id, run_id=run_id, posted_at=AT)


def _scene(uow: UnitOfWork, **benefit: Any) -> tuple[cf.Programme, int]:
    p = cf.programme(uow, AT, **benefit)
    return p, realtime._todays_run(uow, "run_realtime_20261122")


def test_every_write_lands_in_one_statement(uow: UnitOfWork) -> None:
    p, run_id = _scene(uow, budget_minor=10_000)
    review = {
        "public_id": "dsc_TEST",
        "descriptor_key": "harbour noodle",
        "mcc": "5812",
        "example": "HARBOUR NOODLE 123 LONDON GB",
        "city": "london",
        "candidate_merchant_id": p.merchant.id,
        "candidate_location_id": None,
        "score": 0.81,
        "transactions": 2,
        "status": "open",
        "first_seen_at": AT,
        "last_seen_at": AT,
    }
    counts = dict.fromkeys(tallies.COUNTERS, 1)
    writes = realtime_writes.Writes(
        grants=[_grant(p, "w-1", run_id)],
        rewards=[_reward(p, "w-1", run_id)],
        consumed=[(p.benefit.id, 800, 0)],
        uses={(p.benefit.id, p.member.id, "2026-11"): 1},
        limits={p.benefit.id: 3},
        reviews=[review],
        counts=counts,
    )

    assert realtime_writes.write(uow.session.connection(), run_id, writes) == (None, None)
    # Written again (as a later batch would): the counters and the review count on.
    writes.grants, writes.rewards = [_grant(p, "w-2", run_id)], [_reward(p, "w-2", run_id)]
    assert realtime_writes.write(uow.session.connection(), run_id, writes) == (None, None)

    uow.session.expire_all()
    assert uow.session.scalars(select(CardGrant.txn_id).order_by(CardGrant.txn_id)).all() == [
        "w-1",
        "w-2",
    ]
    rewards = uow.session.scalars(select(CardReward)).all()
    assert sorted((r.txn_id, r.amount_minor, r.txn_time) for r in rewards) == [
        ("w-1", 800, AT),
        ("w-2", 800, AT),
    ]
    uow.session.refresh(p.benefit)
    assert p.benefit.budget_remaining_minor == 10_000 - 1_600
    assert uow.session.scalars(select(BenefitUsage.uses)).all() == [2]
    stored = uow.session.scalars(select(DescriptorReview)).one()
    assert (stored.transactions, stored.score, stored.example) == (3, 0.81, review["example"])
    tally = uow.session.scalars(select(CardRunTally)).one()
    assert (tally.rows_read, tally.posted) == (2, 2)


def test_a_short_budget_is_named_and_not_taken(uow: UnitOfWork) -> None:
    p, run_id = _scene(uow, budget_minor=500)
    writes = realtime_writes.Writes(consumed=[(p.benefit.id, 800, 0)])

    assert realtime_writes.write(uow.session.connection(), run_id, writes) == (p.benefit.id, None)
    uow.session.refresh(p.benefit)
    assert p.benefit.budget_remaining_minor == 500


def test_a_counter_past_the_member_limit_is_named_and_not_moved(uow: UnitOfWork) -> None:
    p, run_id = _scene(uow)
    key = (p.benefit.id, p.member.id, "2026-11")
    first = realtime_writes.Writes(uses={key: 2}, limits={p.benefit.id: 2})
    assert realtime_writes.write(uow.session.connection(), run_id, first) == (None, None)

    again = realtime_writes.Writes(uses={key: 1}, limits={p.benefit.id: 2})
    assert realtime_writes.write(uow.session.connection(), run_id, again) == (None, p.benefit.id)
    unlimited = realtime_writes.Writes(uses={key: 5}, limits={p.benefit.id: None})
    assert realtime_writes.write(uow.session.connection(), run_id, unlimited) == (None, None)
    assert uow.session.scalars(select(BenefitUsage.uses)).all() == [7]
