"""What a statement reads from the ledger: the transactions a period settles, and new customers.

Aggregate queries over the ledger's tables, which they only read (the one write is to settlement's
own table of settled items). The ledger service offers no aggregate read
by counterparty and period yet, and paging through transactions one by one would not scale to a
partner's month; these belong in `ledger.service` once it grows one (see docs/settlement.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Integer, case, func, literal, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import aliased

from beyondbank.core.uow import UnitOfWork
from beyondbank.ledger.chart import Kind
from beyondbank.ledger.models import LedgerTransaction, Posting, TransactionStatus
from beyondbank.settlement.models import SettlementItem
from beyondbank.settlement.statements import Activity

# Not the party's business in the period: the settlement itself, and payouts of earlier periods.
EXCLUDED_KINDS = (Kind.SETTLEMENT.value, Kind.PAYOUT.value)


def _in_currency(currency: str) -> Any:
    """The transaction moves money in the currency (a posting of its own says so)."""
    leg = aliased(Posting)
    return (
        select(leg.id)
        .where(leg.transaction_id == LedgerTransaction.id, leg.currency == currency)
        .correlate(LedgerTransaction)
        .exists()
    )


def settle_items(
    uow: UnitOfWork,
    *,
    period_id: int,
    party_ref: str,
    currency: str,
    since: datetime,
    end: datetime,
) -> None:
    """Mark as settled by this period every posted transaction of the party effective in
    `[since, end)` that no statement has settled yet: the period's own, and any posted late into
    an earlier period after it closed. A transaction is settled once, ever (a unique key)."""
    settled = select(SettlementItem.id).where(SettlementItem.transaction_id == LedgerTransaction.id)
    candidates = select(literal(period_id), LedgerTransaction.id).where(
        LedgerTransaction.counterparty_ref == party_ref,
        LedgerTransaction.status == TransactionStatus.POSTED,
        LedgerTransaction.effective_at >= since,
        LedgerTransaction.effective_at < end,
        LedgerTransaction.kind.not_in(EXCLUDED_KINDS),
        _in_currency(currency),
        ~settled.exists(),
    )
    dialect = uow.session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    uow.session.execute(
        insert(SettlementItem)
        .from_select(["period_id", "transaction_id"], candidates)
        .on_conflict_do_nothing(index_elements=["transaction_id"])
    )


@dataclass(frozen=True, slots=True)
class Late:
    """Transactions settled now that were effective before the period: posted after their own
    period had closed."""

    count: int
    amount_minor: int  # their effect on the party (+: the bank owes more)


def activity(
    uow: UnitOfWork,
    *,
    period_id: int,
    payable_id: int,
    receivable_id: int,
    start: datetime,
) -> tuple[tuple[Activity, ...], Late]:
    """The transactions the period settles, summed by kind and category: their effect on the
    party's payable (credits +) and receivable (debits +), and merchant-funded rewards; and how
    many of them were late."""
    session = uow.session
    mine = select(SettlementItem.transaction_id).where(SettlementItem.period_id == period_id)
    on_payable = case((Posting.account_id == payable_id, -Posting.amount_minor), else_=0)
    on_receivable = case((Posting.account_id == receivable_id, Posting.amount_minor), else_=0)
    effects = session.execute(
        select(
            LedgerTransaction.kind,
            LedgerTransaction.category,
            func.coalesce(func.sum(on_payable), 0),
            func.coalesce(func.sum(on_receivable), 0),
        )
        .join(Posting, Posting.transaction_id == LedgerTransaction.id)
        .where(LedgerTransaction.id.in_(mine))
        .group_by(LedgerTransaction.kind, LedgerTransaction.category)
    ).all()
    funded = LedgerTransaction.details["merchant_funded_minor"].as_integer()
    counts = session.execute(
        select(
            LedgerTransaction.kind,
            LedgerTransaction.category,
            func.count(LedgerTransaction.id),
            func.coalesce(func.sum(func.coalesce(funded, 0)), 0).cast(Integer),
        )
        .where(LedgerTransaction.id.in_(mine))
        .group_by(LedgerTransaction.kind, LedgerTransaction.category)
    ).all()
    counted = {(kind, category): (int(n), int(f)) for kind, category, n, f in counts}
    rows = []
    for kind, category, payable, receivable in effects:
        count, merchant_funded = counted.get((kind, category), (0, 0))
        rows.append(
            Activity(
                kind=kind,
                category=category,
                count=count,
                payable_minor=int(payable),
                receivable_minor=int(receivable),
                merchant_funded_minor=merchant_funded if kind.startswith("reward") else 0,
            )
        )
    late_count, late_amount = session.execute(
        select(
            func.count(func.distinct(LedgerTransaction.id)),
            func.coalesce(func.sum(on_payable - on_receivable), 0),
        )
        .join(Posting, Posting.transaction_id == LedgerTransaction.id)
        .where(LedgerTransaction.id.in_(mine), LedgerTransaction.effective_at < start)
    ).one()
    activity_rows = tuple(sorted(rows, key=lambda a: (a.kind, a.category or "")))
    return activity_rows, Late(int(late_count), int(late_amount))


def new_customers(
    uow: UnitOfWork, *, party_ref: str, currency: str, start: datetime, end: datetime
) -> int:
    """Members whose first-ever sale with the party (in the currency) falls in `[start, end)`."""
    first_sale = (
        select(
            LedgerTransaction.member_ref.label("member"),
            func.min(LedgerTransaction.effective_at).label("first_at"),
        )
        .where(
            LedgerTransaction.counterparty_ref == party_ref,
            LedgerTransaction.kind == Kind.SALE.value,
            LedgerTransaction.status == TransactionStatus.POSTED,
            LedgerTransaction.member_ref.is_not(None),
            _in_currency(currency),
        )
        .group_by(LedgerTransaction.member_ref)
        .subquery()
    )
    count = uow.session.scalar(
        select(func.count()).where(first_sale.c.first_at >= start, first_sale.c.first_at < end)
    )
    return int(count or 0)


def pool_movements(
    uow: UnitOfWork, *, pool_ref: str, start: datetime, end: datetime
) -> tuple[int, int, int]:
    """(party contributions, bank contributions, draws) into and out of a pool in the period."""
    party = LedgerTransaction.details["party_minor"].as_integer()
    bank = LedgerTransaction.details["bank_minor"].as_integer()
    amount = LedgerTransaction.details["amount_minor"].as_integer()
    base = [
        LedgerTransaction.reference == pool_ref,
        LedgerTransaction.status == TransactionStatus.POSTED,
        LedgerTransaction.effective_at >= start,
        LedgerTransaction.effective_at < end,
    ]
    contributed = uow.session.execute(
        select(
            func.coalesce(func.sum(func.coalesce(party, 0)), 0),
            func.coalesce(func.sum(func.coalesce(bank, 0)), 0),
        ).where(*base, LedgerTransaction.kind == Kind.POOL_CONTRIBUTION.value)
    ).one()
    drawn = uow.session.scalar(
        select(func.coalesce(func.sum(func.coalesce(amount, 0)), 0)).where(
            *base, LedgerTransaction.kind == Kind.POOL_DRAW.value
        )
    )
    return int(contributed[0]), int(contributed[1]), int(drawn or 0)
