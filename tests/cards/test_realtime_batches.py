"""The real-time path's micro-batches: events that arrive together commit in one transaction and
each is answered as if alone; server processes racing on one budget and one member limit
(PostgreSQL, real commits) grant exactly what the caps allow, each txn_id once."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from beyondbank.benefits.models import Benefit, BenefitUsage, LimitPeriod
from beyondbank.cards import realtime, service, tallies
from beyondbank.cards.descriptors import acceptor_field
from beyondbank.cards.models import (
    CardGrant,
    CardReward,
    CardRun,
    CardRunTally,
    CardTransaction,
    DescriptorReview,
)
from beyondbank.core.authz import SYSTEM, Principal
from beyondbank.core.clock import Clock, FixedClock
from beyondbank.core.errors import InvalidInput
from beyondbank.core.money import Money
from beyondbank.core.uow import UnitOfWork, make_session_factory
from beyondbank.identity.service import principal_for_client
from beyondbank.ledger import chart
from beyondbank.ledger import service as ledger
from tests import factories as f
from tests.cards import factories as cf

LINKED = datetime(2026, 11, 1, tzinfo=UTC)
AT = datetime(2026, 11, 22, 9, 41, 7, tzinfo=UTC)


def _realtime_run(uow: UnitOfWork) -> CardRun:
    """The day's real-time run with its counters as they stand (its row plus its tallies)."""
    run = uow.session.scalars(select(CardRun).where(CardRun.source == "realtime")).one()
    [counted] = tallies.with_tallies(uow, [run])
    return counted


def _switch(uow: UnitOfWork) -> Principal:
    return principal_for_client(f.make_client(uow, ["cards:ingest"]))


def _together(
    cache: realtime.ResolverCache,
    factory: sessionmaker[Session],
    clock: Clock,
    actor: Principal,
    rows: list[dict[str, str]],
) -> list[realtime.EventResult | Exception]:
    """Send the events at once on one event loop (one server process): they share batches."""

    async def send() -> list[realtime.EventResult | BaseException]:
        return await asyncio.gather(
            *(realtime.process(cache, factory, clock, actor, row) for row in rows),
            return_exceptions=True,
        )

    # A loop of its own on a thread of its own: in this test process Playwright's sync API (the
    # browser tests) may already hold a running loop on the main thread.
    with ThreadPoolExecutor(max_workers=1) as pool:
        answers = pool.submit(asyncio.run, send()).result()
    assert not [a for a in answers if not isinstance(a, realtime.EventResult | Exception)]
    return [a for a in answers if isinstance(a, realtime.EventResult | Exception)]


def _count(uow: UnitOfWork, model: type[Any]) -> int:
    return uow.session.scalar(select(func.count()).select_from(model)) or 0


def test_events_sent_together_share_a_batch_and_each_gets_its_answer(
    uow: UnitOfWork, session_factory: sessionmaker[Session], clock: FixedClock
) -> None:
    p = cf.programme(uow, LINKED)
    actor = _switch(uow)
    uow.commit()
    cache = realtime.ResolverCache(60, None)
    rows = [
        cf.feed_row(p, "b-1", AT, 4_000),
        cf.feed_row(p, "b-2", AT + timedelta(minutes=1), 2_000),
        cf.feed_row(p, "b-1", AT, 4_000),  # the same txn_id again, in the same batch
        cf.feed_row(p, "b-3", AT, 4_000, token="tok_stranger"),
        cf.feed_row(p, "b-4", AT, 1_000, type="refund", original="b-2"),
        cf.feed_row(p, "b-5", AT, 1_000, type="refund", original="never-seen"),
    ]

    answers = _together(cache, session_factory, clock, actor, rows)

    first, second, again, stranger, refund, orphan = answers
    assert isinstance(first, realtime.EventResult)
    assert (first.status, first.message) == (
        "rewarded",
        "You just earned £8.00 cashback at Harbour Noodle Bar.",
    )
    assert isinstance(second, realtime.EventResult)
    assert second.rewards[0].row["amount_minor"] == 400
    assert isinstance(again, realtime.EventResult)
    assert again.status == "already_seen"
    assert isinstance(stranger, realtime.EventResult)
    assert stranger.status == "no_reward"
    # Half the purchase refunded claws back half its £4.00, in the same batch as the grant.
    assert isinstance(refund, realtime.EventResult)
    [clawback] = refund.rewards
    assert (clawback.row["kind"], clawback.row["amount_minor"]) == ("clawback", 200)
    assert isinstance(orphan, InvalidInput)
    assert "refund without its original" in str(orphan)

    assert _count(uow, CardTransaction) == 4  # b-1, b-2, b-3, b-4: the orphan wrote nothing
    grant = uow.session.scalars(select(CardGrant).where(CardGrant.txn_id == "b-2")).one()
    assert (grant.reward_minor, grant.clawed_back_minor, grant.refunded_minor) == (400, 200, 1000)
    cashback = chart.member_cashback(uow, p.member.public_id, "GBP")
    assert ledger.balance(uow, cashback).posted == Money(800 + 400 - 200, "GBP")
    run = _realtime_run(uow)
    assert (run.rows_read, run.accepted, run.matched, run.unresolved) == (4, 4, 4, 0)
    assert (run.rewards, run.clawbacks, run.posted) == (2, 1, 3)


def test_later_events_see_what_earlier_batches_granted(
    uow: UnitOfWork, session_factory: sessionmaker[Session], clock: FixedClock
) -> None:
    p = cf.programme(uow, LINKED, member_limit=1, limit_period=LimitPeriod.DAY)
    actor = _switch(uow)
    uow.commit()
    cache = realtime.ResolverCache(60, None)
    [first] = _together(cache, session_factory, clock, actor, [cf.feed_row(p, "d-1", AT, 4_000)])
    [second] = _together(
        cache,
        session_factory,
        clock,
        actor,
        [cf.feed_row(p, "d-2", AT + timedelta(hours=1), 4_000)],
    )
    [tomorrow] = _together(
        cache, session_factory, clock, actor, [cf.feed_row(p, "d-3", AT + timedelta(days=1), 4_000)]
    )
    statuses = [a.status for a in (first, second, tomorrow) if isinstance(a, realtime.EventResult)]
    assert statuses == ["rewarded", "no_reward", "rewarded"]


def test_an_unsure_descriptor_joins_the_review_queue(
    uow: UnitOfWork, session_factory: sessionmaker[Session], clock: FixedClock
) -> None:
    p = cf.programme(uow, LINKED)
    actor = _switch(uow)
    uow.commit()
    cache = realtime.ResolverCache(60, None)
    # An unregistered terminal whose descriptor is close to the merchant's name, but not enough.
    row = {
        **cf.feed_row(p, "u-1", AT, 4_000),
        "acquirer_merchant_id": "UNKNOWN-ACQ",
        "terminal_id": "",
        "acceptor_name_location": acceptor_field("Harbour Noodle House", "London", "GB"),
    }
    answers = _together(cache, session_factory, clock, actor, [row, {**row, "txn_id": "u-2"}, row])
    assert [a.status for a in answers if isinstance(a, realtime.EventResult)] == [
        "no_reward",
        "no_reward",
        "already_seen",
    ]
    reviews = uow.session.scalars(select(DescriptorReview)).all()
    assert [(r.candidate_merchant_id, r.transactions) for r in reviews] == [(p.merchant.id, 2)]
    run = _realtime_run(uow)
    assert run.unresolved == 2


# -- racing server processes (PostgreSQL) ---------------------------------------------------


def _race(
    engine: Engine, clock: FixedClock, actor: Principal, batches: list[list[dict[str, str]]]
) -> list[realtime.EventResult | Exception]:
    """Each list of events from a "server process" of its own (a thread with its own event
    loop, snapshot and collector), all started together."""
    factory = make_session_factory(engine)
    start = threading.Barrier(len(batches))
    answers: list[realtime.EventResult | Exception] = []
    lock = threading.Lock()

    def server(rows: list[dict[str, str]]) -> None:
        cache = realtime.ResolverCache(60, None)
        start.wait()
        got = _together(cache, factory, clock, actor, rows)
        with lock:
            answers.extend(got)

    threads = [threading.Thread(target=server, args=(rows,)) for rows in batches]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers


def _scene(engine: Engine, clock: FixedClock, **benefit: Any) -> tuple[cf.Programme, Principal]:
    with UnitOfWork(make_session_factory(engine), clock) as uow:
        p = cf.programme(uow, LINKED, **benefit)
        actor = _switch(uow)
        uow.commit()
        return p, actor


@pytest.mark.postgres
def test_four_processes_racing_on_a_budget_for_five_rewards(
    committing_engine: Engine, clock: FixedClock
) -> None:
    # 20% of £40.00 is £8.00: a £40.00 budget pays for exactly five.
    p, actor = _scene(committing_engine, clock, budget_minor=4_000)
    batches = [
        [cf.feed_row(p, f"r{s}-{i}", AT + timedelta(seconds=i), 4_000) for i in range(10)]
        for s in range(4)
    ]
    answers = _race(committing_engine, clock, actor, batches)

    statuses = Counter(
        a.status if isinstance(a, realtime.EventResult) else repr(a) for a in answers
    )
    assert statuses == Counter({"rewarded": 5, "no_reward": 35})
    with UnitOfWork(make_session_factory(committing_engine), clock) as uow:
        benefit = uow.session.get_one(Benefit, p.benefit.id)
        assert benefit.budget_remaining_minor == 0
        granted = uow.session.scalar(select(func.sum(CardReward.amount_minor))) or 0
        assert granted == 4_000
        cashback = chart.member_cashback(uow, p.member.public_id, "GBP")
        assert ledger.balance(uow, cashback).posted == Money(4_000, "GBP")
        run = _realtime_run(uow)
        assert (run.rows_read, run.rewards, run.posted) == (40, 5, 5)
        assert run.rows_read == run.accepted == run.matched  # conservation, summed
        # The batches counted into their connections' tallies, not into the run's row, and
        # reading the sums wrote nothing back to it.
        slots = uow.session.scalars(select(CardRunTally.slot)).all()
        assert len(slots) == len(set(slots)) >= 1
        assert not uow.session.dirty
        uow.session.expire_all()
        stored = uow.session.get_one(CardRun, run.id)
        assert (stored.rows_read, stored.rewards) == (0, 0)
        # Every reader of runs (API, console, CLI) goes through the service, which adds them.
        uow.session.expire_all()
        assert service.get_run(uow, SYSTEM, run.public_id).rows_read == 40
        [listed] = [r for r in service.list_runs(uow, SYSTEM)[0] if r.id == run.id]
        assert (listed.rows_read, listed.rewards) == (40, 5)


@pytest.mark.postgres
def test_a_writer_whose_connection_broke_writes_the_next_batch_on_a_new_one(
    committing_engine: Engine, clock: FixedClock
) -> None:
    # The writer keeps its connections between batches (no pool pre-ping before each): when the
    # database drops one, the next batch fails on it and is written again on a new one.
    p, actor = _scene(committing_engine, clock)
    factory = make_session_factory(committing_engine)
    cache = realtime.ResolverCache(60, None)
    [first] = _together(cache, factory, clock, actor, [cf.feed_row(p, "k-1", AT, 4_000)])
    assert isinstance(first, realtime.EventResult)
    with committing_engine.begin() as conn:
        # A tally's slot is the backend pid of the connection that wrote it: the writer's.
        [writer] = conn.scalars(select(CardRunTally.slot)).all()
        assert conn.scalar(select(func.pg_terminate_backend(writer)))
    [second] = _together(cache, factory, clock, actor, [cf.feed_row(p, "k-2", AT, 4_000)])
    assert isinstance(second, realtime.EventResult)
    assert second.status == "rewarded"
    with UnitOfWork(factory, clock) as uow:
        assert _count(uow, CardTransaction) == 2
        assert _realtime_run(uow).rows_read == 2


@pytest.mark.postgres
def test_processes_racing_on_a_member_limit_and_on_one_txn_id(
    committing_engine: Engine, clock: FixedClock
) -> None:
    p, actor = _scene(committing_engine, clock, member_limit=2, limit_period=LimitPeriod.DAY)
    # Every process sends the same eight purchases: each txn_id counts once, two are rewarded.
    rows = [cf.feed_row(p, f"m-{i}", AT + timedelta(seconds=i), 4_000) for i in range(8)]
    answers = _race(committing_engine, clock, actor, [list(rows) for _ in range(3)])

    statuses = Counter(
        a.status if isinstance(a, realtime.EventResult) else repr(a) for a in answers
    )
    assert statuses == Counter({"already_seen": 16, "rewarded": 2, "no_reward": 6})
    with UnitOfWork(make_session_factory(committing_engine), clock) as uow:
        assert _count(uow, CardTransaction) == 8
        assert _count(uow, CardReward) == 2
        uses = uow.session.scalars(select(BenefitUsage.uses)).all()
        assert uses == [2]
