"""Races on PostgreSQL, with real threads and real commits: draws on a pool, closers of one
period, and payout runs over the same periods."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TypeVar

import pytest
from sqlalchemy import Engine, func, select

from beyondbank.core.authz import SYSTEM
from beyondbank.core.clock import FixedClock
from beyondbank.core.errors import InsufficientBalance, InvalidTransition, Problem
from beyondbank.core.uow import UnitOfWork, make_session_factory
from beyondbank.ledger import verify
from beyondbank.ledger.chart import Kind
from beyondbank.ledger.models import LedgerTransaction, Posting
from beyondbank.settlement import payouts, periods, pools
from beyondbank.settlement.models import PayoutLine, PayoutLineStatus, SettlementStatement
from beyondbank.settlement.schemas import PoolIn
from tests import factories as f
from tests import races
from tests.settlement import factories as sf

T = TypeVar("T")
SEP = datetime(2026, 9, 10, 12, 0, tzinfo=UTC)


def _race(
    engine: Engine, clock: FixedClock, count: int, attempt: Callable[[UnitOfWork, int], T]
) -> list[T | Problem]:
    return races.in_units(engine, clock, count, attempt)


@pytest.mark.postgres
def test_twenty_draws_on_room_for_five(committing_engine: Engine, clock: FixedClock) -> None:
    """Twenty threads drawing on a pool with room for five draws: never below zero, exactly five
    succeed, fifteen are refused (409), and the ledger still verifies."""
    with UnitOfWork(make_session_factory(committing_engine), clock) as uow:
        merchant = f.make_merchant(uow)
        contract = sf.make_contract(uow, merchant.public_id)
        pool = pools.create_pool(uow, SYSTEM, PoolIn(contract_id=contract.public_id, name="Race"))
        pools.contribute(uow, SYSTEM, pool, amount_minor=500, key="fund", side="joint")
        uow.commit()
        pool_id = pool.public_id

    def attempt(uow: UnitOfWork, i: int) -> str:
        mine = pools.get_pool(uow, SYSTEM, pool_id)
        moved = pools.draw(uow, SYSTEM, mine, amount_minor=100, key=f"race-{i}", campaign_ref="c")
        return moved.transaction.public_id

    results = _race(committing_engine, clock, 20, attempt)
    wins = [r for r in results if isinstance(r, str)]
    refusals = Counter((r.status, r.slug) for r in results if isinstance(r, InsufficientBalance))
    assert len(wins) == 5
    assert len(set(wins)) == 5
    assert refusals == Counter({(409, "insufficient-balance"): 15})

    with UnitOfWork(make_session_factory(committing_engine), clock) as uow:
        pool = pools.get_pool(uow, SYSTEM, pool_id)
        assert pools.balance_minor(uow, pool) == 0
        account = pools.account_of(uow, pool)
        drawn = uow.session.scalar(
            select(func.sum(Posting.amount_minor)).where(
                Posting.account_id == account.id, Posting.amount_minor > 0
            )
        )
        assert drawn == 500
        report = verify.run(uow.session)
        assert report.ok, [v for c in report.checks for v in c.violations]


@pytest.mark.postgres
def test_closers_racing_on_one_period(committing_engine: Engine, clock: FixedClock) -> None:
    """Eight closers at once: one settles it; the others get the same statement or a 409 naming
    `closing`; one settlement posting, one statement."""
    with UnitOfWork(make_session_factory(committing_engine), clock) as uow:
        merchant = f.make_merchant(uow)
        contract = sf.make_contract(uow, merchant.public_id, minimum_monthly_fee_minor=1_000)
        september = sf.open_periods(uow, contract)[0]
        sf.sale(uow, contract, 50_000, at=SEP, member="mem_1")
        uow.commit()
        period_id = september.public_id

    def attempt(uow: UnitOfWork, i: int) -> str:
        return periods.close(uow, SYSTEM, period_id).statement.sha256

    results = _race(committing_engine, clock, 8, attempt)
    digests = {r for r in results if isinstance(r, str)}
    refused = [r for r in results if isinstance(r, Problem)]
    assert len(digests) == 1
    assert all(isinstance(r, InvalidTransition) for r in refused), refused
    assert all(r.extra["current_status"] == "closing" for r in refused)

    with UnitOfWork(make_session_factory(committing_engine), clock) as uow:
        postings = uow.session.scalar(
            select(func.count()).where(
                LedgerTransaction.idempotency_key == f"settlement:{period_id}"
            )
        )
        statements = uow.session.scalar(select(func.count()).select_from(SettlementStatement))
        assert (postings, statements) == (1, 1)
        # A closer arriving now gets the same statement.
        assert periods.close(uow, SYSTEM, period_id).statement.sha256 in digests
        assert verify.run(uow.session).ok


@pytest.mark.postgres
def test_payout_runs_racing_pay_each_period_once(
    committing_engine: Engine, clock: FixedClock
) -> None:
    with UnitOfWork(make_session_factory(committing_engine), clock) as uow:
        for amount in (10_000, 20_000, 30_000):
            merchant = f.make_merchant(uow)
            contract = sf.make_contract(uow, merchant.public_id, base_share_bps=0)
            september = sf.open_periods(uow, contract)[0]
            sf.sale(uow, contract, amount, at=SEP)
            periods.close(uow, SYSTEM, september.public_id)
        uow.commit()
    bank = payouts.check_debtor("Bank", payouts.DEFAULT_DEBTOR_IBAN, payouts.DEFAULT_DEBTOR_BIC)

    def attempt(uow: UnitOfWork, i: int) -> str:
        return payouts.create_run(uow, SYSTEM, currency="GBP", debtor=bank).public_id

    results = _race(committing_engine, clock, 6, attempt)
    assert any(isinstance(r, str) for r in results)
    assert all(isinstance(r, str) or r.status == 409 for r in results), results

    with UnitOfWork(make_session_factory(committing_engine), clock) as uow:
        paid = uow.session.scalars(
            select(PayoutLine.amount_minor).where(PayoutLine.status == PayoutLineStatus.PAID)
        ).all()
        assert sorted(paid) == [10_000, 20_000, 30_000]
        payouts_posted = uow.session.scalar(
            select(func.count()).where(LedgerTransaction.kind == Kind.PAYOUT.value)
        )
        assert payouts_posted == 3
        assert verify.run(uow.session).ok
