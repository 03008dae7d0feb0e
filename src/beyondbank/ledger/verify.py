"""`beyondbank ledger verify`: every ledger invariant, checked from the tables themselves.

Each check says what it looked at and lists each violation with the ids involved, so a finance
team can see both that the books were checked and exactly where they are wrong. The checks
are set-based queries: they read the whole ledger once per check, never row by row.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.orm import Session, aliased

from beyondbank.ledger.models import Account, LedgerTransaction, Posting, TransactionStatus

# How many violations each check lists at most; the count is always complete.
MAX_LISTED = 50


@dataclass(frozen=True, slots=True)
class Violation:
    message: str
    ids: tuple[str, ...]


@dataclass(slots=True)
class Check:
    name: str
    description: str
    checked: int = 0
    violations: list[Violation] = field(default_factory=list)
    violation_count: int = 0

    @property
    def ok(self) -> bool:
        return self.violation_count == 0


@dataclass(slots=True)
class Report:
    checks: list[Check]

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks)

    @property
    def violation_count(self) -> int:
        return sum(check.violation_count for check in self.checks)


def run(session: Session) -> Report:
    return Report([check(session) for check in CHECKS])


def _fill(
    check: Check, checked: int, rows: Sequence[Any], describe: Callable[[Any], Violation]
) -> Check:
    check.checked = checked
    check.violation_count = len(rows)
    check.violations = [describe(row) for row in rows[:MAX_LISTED]]
    return check


def _count(session: Session, model: Any) -> int:
    return int(session.scalar(select(func.count()).select_from(model)) or 0)


def transactions_balance(session: Session) -> Check:
    """Within every transaction, debits equal credits in each currency."""
    check = Check("transaction-balance", "debits equal credits per currency in every transaction")
    rows = session.execute(
        select(LedgerTransaction.public_id, Posting.currency, func.sum(Posting.amount_minor))
        .join(Posting, Posting.transaction_id == LedgerTransaction.id)
        .group_by(LedgerTransaction.public_id, Posting.currency)
        .having(func.sum(Posting.amount_minor) != 0)
        .order_by(LedgerTransaction.public_id)
    ).all()
    return _fill(
        check,
        _count(session, LedgerTransaction),
        rows,
        lambda r: Violation(f"{r[0]}: {r[1]} postings net to {r[2]}, not 0", (r[0],)),
    )


def transactions_have_two_postings(session: Session) -> Check:
    check = Check("two-postings", "every transaction has at least two postings")
    counts = (
        select(Posting.transaction_id, func.count().label("n"))
        .group_by(Posting.transaction_id)
        .subquery()
    )
    rows = session.execute(
        select(LedgerTransaction.public_id, func.coalesce(counts.c.n, 0))
        .outerjoin(counts, counts.c.transaction_id == LedgerTransaction.id)
        .where(func.coalesce(counts.c.n, 0) < 2)
        .order_by(LedgerTransaction.public_id)
    ).all()
    return _fill(
        check,
        _count(session, LedgerTransaction),
        rows,
        lambda r: Violation(f"{r[0]} has {r[1]} posting(s)", (r[0],)),
    )


def ledger_balances(session: Session) -> Check:
    """Across the whole ledger, posted debits equal posted credits in each currency."""
    check = Check("ledger-balance", "total posted debits equal credits per currency")
    rows = session.execute(
        select(Posting.currency, func.sum(Posting.amount_minor))
        .where(Posting.pending.is_(False))
        .group_by(Posting.currency)
    ).all()
    currencies = len(rows)
    bad = [r for r in rows if r[1] != 0]
    return _fill(
        check,
        currencies,
        bad,
        lambda r: Violation(f"{r[0]}: posted debits and credits differ by {r[1]}", (r[0],)),
    )


def stored_totals(session: Session) -> Check:
    """Each account's running totals equal the sums of its postings (posted, and pending
    holds that are still pending)."""
    check = Check(
        "account-totals",
        "stored debit/credit totals, posted and pending, equal the sums of the postings",
    )
    live_pending = and_(
        Posting.pending.is_(True), LedgerTransaction.status == TransactionStatus.PENDING
    )
    posted = Posting.pending.is_(False)
    sums = (
        select(
            Posting.account_id.label("account_id"),
            func.sum(
                case((and_(posted, Posting.amount_minor > 0), Posting.amount_minor), else_=0)
            ).label("dp"),
            func.sum(
                case((and_(posted, Posting.amount_minor < 0), -Posting.amount_minor), else_=0)
            ).label("cp"),
            func.sum(
                case((and_(live_pending, Posting.amount_minor > 0), Posting.amount_minor), else_=0)
            ).label("dq"),
            func.sum(
                case((and_(live_pending, Posting.amount_minor < 0), -Posting.amount_minor), else_=0)
            ).label("cq"),
        )
        .join(LedgerTransaction, LedgerTransaction.id == Posting.transaction_id)
        .group_by(Posting.account_id)
        .subquery()
    )
    dp, cp = func.coalesce(sums.c.dp, 0), func.coalesce(sums.c.cp, 0)
    dq, cq = func.coalesce(sums.c.dq, 0), func.coalesce(sums.c.cq, 0)
    rows = session.execute(
        select(
            Account.public_id,
            Account.code,
            Account.debits_posted,
            Account.credits_posted,
            Account.debits_pending,
            Account.credits_pending,
            dp,
            cp,
            dq,
            cq,
        )
        .outerjoin(sums, sums.c.account_id == Account.id)
        .where(
            or_(
                Account.debits_posted != dp,
                Account.credits_posted != cp,
                Account.debits_pending != dq,
                Account.credits_pending != cq,
            )
        )
        .order_by(Account.id)
    ).all()
    return _fill(
        check,
        _count(session, Account),
        rows,
        lambda r: Violation(
            f"{r[0]} ({r[1]}): stored debits/credits posted {r[2]}/{r[3]}, pending {r[4]}/{r[5]}; "
            f"postings say {r[6]}/{r[7]}, pending {r[8]}/{r[9]}",
            (r[0],),
        ),
    )


def keys_unique(session: Session) -> Check:
    check = Check("unique-keys", "no idempotency key is used by two transactions")
    rows = session.execute(
        select(LedgerTransaction.idempotency_key, func.count())
        .group_by(LedgerTransaction.idempotency_key)
        .having(func.count() > 1)
    ).all()
    return _fill(
        check,
        _count(session, LedgerTransaction),
        rows,
        lambda r: Violation(f"key {r[0]!r} is used {r[1]} times", (str(r[0]),)),
    )


def holds_resolved_once(session: Session) -> Check:
    """A hold is captured by exactly one posted transaction, or voided with none, or still
    pending with none; a capture never posts more than was held."""
    check = Check(
        "holds",
        "every hold is resolved at most once, consistently with its status, never over-captured",
    )
    resolver = aliased(LedgerTransaction)
    held = (
        select(Posting.transaction_id, func.sum(func.abs(Posting.amount_minor)).label("size"))
        .group_by(Posting.transaction_id)
        .subquery()
    )
    captured = aliased(held)
    resolvers = (
        select(resolver.resolves_id.label("hold_id"), func.count().label("n"))
        .where(resolver.resolves_id.is_not(None))
        .group_by(resolver.resolves_id)
        .subquery()
    )
    n = func.coalesce(resolvers.c.n, 0)
    holds = select(LedgerTransaction).where(
        LedgerTransaction.status.in_(
            [TransactionStatus.PENDING, TransactionStatus.CAPTURED, TransactionStatus.VOIDED]
        )
    )
    inconsistent = session.execute(
        select(LedgerTransaction.public_id, LedgerTransaction.status, n)
        .outerjoin(resolvers, resolvers.c.hold_id == LedgerTransaction.id)
        .where(
            LedgerTransaction.status.in_(
                [TransactionStatus.PENDING, TransactionStatus.CAPTURED, TransactionStatus.VOIDED]
            ),
            or_(
                and_(LedgerTransaction.status == TransactionStatus.CAPTURED, n != 1),
                and_(LedgerTransaction.status != TransactionStatus.CAPTURED, n != 0),
            ),
        )
        .order_by(LedgerTransaction.public_id)
    ).all()
    over = session.execute(
        select(LedgerTransaction.public_id, resolver.public_id, held.c.size, captured.c.size)
        .join(resolver, resolver.resolves_id == LedgerTransaction.id)
        .join(held, held.c.transaction_id == LedgerTransaction.id)
        .join(captured, captured.c.transaction_id == resolver.id)
        .where(captured.c.size > held.c.size)
    ).all()
    not_holds = session.execute(
        select(resolver.public_id, LedgerTransaction.public_id, LedgerTransaction.status)
        .join(LedgerTransaction, LedgerTransaction.id == resolver.resolves_id)
        .where(LedgerTransaction.status != TransactionStatus.CAPTURED)
    ).all()
    violations = [
        Violation(f"hold {r[0]} is {r[1].value} and resolved {r[2]} time(s)", (r[0],))
        for r in inconsistent
    ]
    violations += [
        Violation(
            f"capture {r[1]} posts {r[3] // 2} of hold {r[0]}, which held {r[2] // 2}", (r[0], r[1])
        )
        for r in over
    ]
    violations += [
        Violation(f"{r[0]} resolves {r[1]}, which is {r[2].value}, not captured", (r[0], r[1]))
        for r in not_holds
    ]
    checked = int(session.scalar(select(func.count()).select_from(holds.subquery())) or 0)
    return _fill(check, checked, violations, lambda v: v)


def floors_respected(session: Session) -> Check:
    check = Check("floors", "no constrained account is below its floor, counting pending holds")
    available = case(
        (
            Account.type.in_(["asset", "expense"]),
            Account.debits_posted - Account.credits_posted - Account.credits_pending,
        ),
        else_=Account.credits_posted - Account.debits_posted - Account.debits_pending,
    )
    constrained = Account.floor_minor.is_not(None)
    rows = session.execute(
        select(Account.public_id, Account.code, available, Account.floor_minor)
        .where(constrained, available < Account.floor_minor)
        .order_by(Account.id)
    ).all()
    checked = int(session.scalar(select(func.count()).select_from(Account).where(constrained)) or 0)
    return _fill(
        check,
        checked,
        rows,
        lambda r: Violation(
            f"{r[0]} ({r[1]}): available {r[2]} is below its floor {r[3]}", (r[0],)
        ),
    )


def corrections_bounded(session: Session) -> Check:
    """A correction references an earlier posted transaction and, with the others correcting
    it, never reverses more than that transaction posted."""
    check = Check("corrections", "corrections reference a posted transaction and never exceed it")
    size = (
        select(Posting.transaction_id, func.sum(func.abs(Posting.amount_minor)).label("size"))
        .group_by(Posting.transaction_id)
        .subquery()
    )
    correction = aliased(LedgerTransaction)
    correction_size = aliased(size)
    corrected = (
        select(
            correction.corrects_id.label("original_id"),
            func.sum(correction_size.c.size).label("total"),
        )
        .join(correction_size, correction_size.c.transaction_id == correction.id)
        .where(correction.corrects_id.is_not(None))
        .group_by(correction.corrects_id)
        .subquery()
    )
    rows = session.execute(
        select(
            LedgerTransaction.public_id, LedgerTransaction.status, size.c.size, corrected.c.total
        )
        .join(corrected, corrected.c.original_id == LedgerTransaction.id)
        .join(size, size.c.transaction_id == LedgerTransaction.id)
        .where(
            or_(
                corrected.c.total > size.c.size,
                LedgerTransaction.status != TransactionStatus.POSTED,
            )
        )
    ).all()
    checked = int(
        session.scalar(
            select(func.count())
            .select_from(LedgerTransaction)
            .where(LedgerTransaction.corrects_id.is_not(None))
        )
        or 0
    )
    return _fill(
        check,
        checked,
        rows,
        lambda r: Violation(
            f"{r[0]} ({r[1].value}) posted {r[2] // 2} and is corrected by {r[3] // 2}", (r[0],)
        ),
    )


def posting_flags(session: Session) -> Check:
    """Postings of a hold are pending, postings of anything else are not."""
    check = Check("posting-flags", "postings are pending exactly when their transaction is a hold")
    is_hold = LedgerTransaction.status != TransactionStatus.POSTED
    rows = session.execute(
        select(LedgerTransaction.public_id, Posting.id)
        .join(Posting, Posting.transaction_id == LedgerTransaction.id)
        .where(
            or_(
                and_(is_hold, Posting.pending.is_(False)), and_(~is_hold, Posting.pending.is_(True))
            )
        )
        .order_by(Posting.id)
    ).all()
    return _fill(
        check,
        _count(session, Posting),
        rows,
        lambda r: Violation(f"posting {r[1]} of {r[0]} has the wrong pending flag", (r[0],)),
    )


CHECKS: tuple[Callable[[Session], Check], ...] = (
    transactions_balance,
    transactions_have_two_postings,
    ledger_balances,
    stored_totals,
    keys_unique,
    holds_resolved_once,
    floors_respected,
    corrections_bounded,
    posting_flags,
)
