"""A state machine drives the ledger through random operations and checks every invariant after
each step, on SQLite and on PostgreSQL.

The operations: post, hold, capture (in full or in part), void, reverse (in full or in part),
retry a request with the same key (the original comes back, nothing is written), retry it with a
changed body (refused, nothing written), and draws racing for a floored account. A simple model
predicts the outcome of each: which succeed, which are refused and why, and every account's
totals. After each step the tables are checked on their own (`ledger verify` and the checks
below), and against the model; balances at past times and statements against the model's
history.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import Connection, and_, case, func, or_, select
from sqlalchemy.orm import Session

from beyondbank.core.clock import FixedClock
from beyondbank.core.errors import (
    Conflict,
    IdempotencyKeyReused,
    InsufficientBalance,
    InvalidInput,
    InvalidTransition,
    Problem,
)
from beyondbank.core.money import POINTS, Money
from beyondbank.core.uow import UnitOfWork, make_session_factory
from beyondbank.ledger import service as ledger
from beyondbank.ledger import verify
from beyondbank.ledger.models import (
    Account,
    AccountType,
    LedgerTransaction,
    OwnerKind,
    Posting,
    TransactionStatus,
)
from tests.conftest import T0

A, L, E = AccountType.ASSET, AccountType.LIABILITY, AccountType.EXPENSE

# name: (type, currency, floor)
ACCOUNTS: dict[str, tuple[AccountType, str, int | None]] = {
    "cash": (A, "GBP", None),
    "pool_a": (L, "GBP", 0),
    "pool_b": (L, "GBP", 0),
    "cashback": (L, "GBP", None),
    "deposit": (L, "GBP", -500),  # an overdraft of £5.00
    "marketing": (E, "GBP", None),
    "points_issued": (E, POINTS, None),
    "points": (L, POINTS, 0),
}
PAIRS = [(d, c) for d in ACCOUNTS for c in ACCOUNTS if d != c and ACCOUNTS[d][1] == ACCOUNTS[c][1]]
POOLS = ["pool_a", "pool_b", "points"]
CHANGED_AT = T0 - timedelta(days=365)  # a different effective time: a different request

Leg = tuple[str, int]  # (account name, signed amount: + debit, − credit)


@dataclass
class Totals:
    debits_posted: int = 0
    credits_posted: int = 0
    debits_pending: int = 0
    credits_pending: int = 0

    def as_tuple(self) -> tuple[int, int, int, int]:
        return (self.debits_posted, self.credits_posted, self.debits_pending, self.credits_pending)


@dataclass
class Tx:
    """What the model knows of a transaction the ledger wrote."""

    id: int
    kind: str  # post, hold, capture, reverse
    legs: list[Leg]
    status: TransactionStatus
    redo: Callable[[], Any]  # the same request again
    changed: Callable[[], Any]  # the same key with a different body
    other_operation: Callable[[], Any] | None = None  # the same draft, posted instead of held…
    corrected: int = 0  # size of the corrections posted against it

    @property
    def size(self) -> int:
        return sum(abs(amount) for _, amount in self.legs)


@dataclass
class Model:
    totals: dict[str, Totals] = field(default_factory=lambda: {name: Totals() for name in ACCOUNTS})
    transactions: list[Tx] = field(default_factory=list)
    postings: int = 0

    def available(self, name: str) -> int:
        t = self.totals[name]
        type_, _, _ = ACCOUNTS[name]
        if type_.debit_normal:
            return t.debits_posted - t.credits_posted - t.credits_pending
        return t.credits_posted - t.debits_posted - t.debits_pending

    def posted_balance(self, name: str) -> int:
        t = self.totals[name]
        net = t.debits_posted - t.credits_posted
        return net if ACCOUNTS[name][0].debit_normal else -net

    def apply(self, legs: list[Leg], *, pending: bool, sign: int = 1) -> None:
        for name, amount in legs:
            t = self.totals[name]
            if pending:
                if amount > 0:
                    t.debits_pending += sign * amount
                else:
                    t.credits_pending += sign * -amount
            elif amount > 0:
                t.debits_posted += sign * amount
            else:
                t.credits_posted += sign * -amount

    def breaches(self, legs: list[Leg], *, pending: bool) -> bool:
        """Would these legs take a floored account below its floor (holds counted)?"""
        self.apply(legs, pending=pending)
        try:
            return any(
                floor is not None and self.available(name) < floor
                for name, (_, _, floor) in ACCOUNTS.items()
            )
        finally:
            self.apply(legs, pending=pending, sign=-1)


class LedgerMachine(RuleBasedStateMachine):
    connection: Connection

    def __init__(self) -> None:
        super().__init__()
        self.outer = self.connection.begin_nested()
        self.clock = FixedClock(T0)
        self.uow = UnitOfWork(make_session_factory(self.connection), self.clock).__enter__()
        self.model = Model()
        self.keys = 0
        self.history: dict[datetime, dict[str, int]] = {}
        self.accounts: dict[str, Account] = {}
        for name, (type_, currency, floor) in ACCOUNTS.items():
            self.accounts[name] = ledger.open_account(
                self.uow,
                owner_kind=OwnerKind.POOL if name in POOLS else OwnerKind.BANK,
                owner_ref=name if name in POOLS else None,
                purpose=name,
                type=type_,
                currency=currency,
                floor=floor,
            )
        self.ids = {name: acc.id for name, acc in self.accounts.items()}
        self.names = {acc_id: name for name, acc_id in self.ids.items()}
        # Money in the pools to draw on.
        for pool, source, amount in (
            ("pool_a", "cash", 1_000),
            ("pool_b", "marketing", 300),
            ("points", "points_issued", 500),
        ):
            self._post([(source, amount), (pool, -amount)])
        self._record()

    def teardown(self) -> None:
        self.uow.__exit__(None, None, None)
        self.outer.rollback()

    # -- helpers ---------------------------------------------------------------------------------

    @property
    def session(self) -> Session:
        return self.uow.session

    def _key(self, what: str) -> str:
        self.keys += 1
        return f"{what}-{self.keys}"

    def _draft(self, key: str, legs: list[Leg], kind: str) -> ledger.Draft:
        return ledger.Draft(
            key=key,
            kind=kind,
            legs=tuple(
                ledger.Leg(
                    self.ids[name],
                    ledger.Side.DEBIT if amount > 0 else ledger.Side.CREDIT,
                    Money(abs(amount), ACCOUNTS[name][1]),
                )
                for name, amount in legs
            ),
        )

    def _attempt(self, call: Callable[[], Any]) -> Any:
        """Run one operation in its own savepoint: a refusal leaves everything as it was."""
        savepoint = self.session.begin_nested()
        try:
            result = call()
        except Problem as problem:
            savepoint.rollback()
            return problem
        savepoint.commit()
        return result

    def _post(self, legs: list[Leg]) -> ledger.Posted:
        draft = self._draft(self._key("post"), legs, "test")
        posted = ledger.post(self.uow, draft)
        self._posted(
            "post",
            posted,
            legs,
            lambda: ledger.post(self.uow, draft),
            lambda: ledger.post(self.uow, replace(draft, description="changed")),
            lambda: ledger.hold(self.uow, draft),
        )
        return posted

    def _posted(
        self,
        kind: str,
        posted: ledger.Posted,
        legs: list[Leg],
        redo: Callable[[], Any],
        changed: Callable[[], Any],
        other: Callable[[], Any] | None = None,
    ) -> Tx:
        assert isinstance(posted, ledger.Posted), posted
        assert posted.created
        status = TransactionStatus.PENDING if kind == "hold" else TransactionStatus.POSTED
        tx = Tx(posted.transaction.id, kind, legs, status, redo, changed, other)
        self.model.transactions.append(tx)
        self.model.postings += len(legs)
        self.model.apply(legs, pending=kind == "hold")
        return tx

    def _record(self) -> None:
        self.history[self.clock.now()] = {n: self.model.posted_balance(n) for n in ACCOUNTS}

    def _counts(self) -> tuple[int, int]:
        return (
            self.session.scalar(select(func.count()).select_from(LedgerTransaction)) or 0,
            self.session.scalar(select(func.count()).select_from(Posting)) or 0,
        )

    def _balance_before(self, when: datetime) -> dict[str, int]:
        earlier = [t for t in self.history if t < when]
        return self.history[max(earlier)] if earlier else {n: 0 for n in ACCOUNTS}

    # -- rules -----------------------------------------------------------------------------------

    @rule(pair=st.sampled_from(PAIRS), amount=st.integers(1, 400))
    def post(self, pair: tuple[str, str], amount: int) -> None:
        debit, credit = pair
        legs = [(debit, amount), (credit, -amount)]
        expected_breach = self.model.breaches(legs, pending=False)
        draft = self._draft(self._key("post"), legs, "test")
        outcome = self._attempt(lambda: ledger.post(self.uow, draft))
        if expected_breach:
            assert isinstance(outcome, InsufficientBalance), outcome
        else:
            self._posted(
                "post",
                outcome,
                legs,
                lambda: ledger.post(self.uow, draft),
                lambda: ledger.post(self.uow, replace(draft, legs=draft.legs[::-1], kind="other")),
                lambda: ledger.hold(self.uow, draft),
            )
        self._record()

    @rule(pair=st.sampled_from(PAIRS), amount=st.integers(1, 400))
    def hold(self, pair: tuple[str, str], amount: int) -> None:
        debit, credit = pair
        legs = [(debit, amount), (credit, -amount)]
        expected_breach = self.model.breaches(legs, pending=True)
        draft = self._draft(self._key("hold"), legs, "test")
        outcome = self._attempt(lambda: ledger.hold(self.uow, draft))
        if expected_breach:
            assert isinstance(outcome, InsufficientBalance), outcome
        else:
            self._posted(
                "hold",
                outcome,
                legs,
                lambda: ledger.hold(self.uow, draft),
                lambda: ledger.hold(self.uow, replace(draft, description="changed")),
                lambda: ledger.post(self.uow, draft),
            )
        self._record()

    def _holds(self) -> list[Tx]:
        return [t for t in self.model.transactions if t.kind == "hold"]

    @precondition(lambda self: any(t.kind == "hold" for t in self.model.transactions))
    @rule(data=st.data(), part=st.sampled_from(["full", "part", "too much"]))
    def capture(self, data: st.DataObject, part: str) -> None:
        held = data.draw(st.sampled_from(self._holds()))
        size = held.legs[0][1] if held.legs[0][1] > 0 else -held.legs[0][1]
        amount = {"full": None, "part": data.draw(st.integers(1, size)), "too much": size + 1}[part]
        key = self._key("capture")
        outcome = self._attempt(lambda: ledger.capture(self.uow, held.id, key=key, amount=amount))
        if part == "too much":
            assert isinstance(outcome, InvalidInput), outcome
        elif held.status is not TransactionStatus.PENDING:
            assert isinstance(outcome, InvalidTransition), outcome
            assert outcome.extra == {"current_status": held.status.value}
        else:
            self.model.apply(held.legs, pending=True, sign=-1)
            held.status = TransactionStatus.CAPTURED
            taken = amount or size
            legs = [(name, taken if value > 0 else -taken) for name, value in held.legs]
            self._posted(
                "capture",
                outcome,
                legs,
                lambda: ledger.capture(self.uow, held.id, key=key, amount=amount),
                lambda: ledger.capture(
                    self.uow, held.id, key=key, amount=amount, effective_at=CHANGED_AT
                ),
            )
        self._record()

    @precondition(lambda self: any(t.kind == "hold" for t in self.model.transactions))
    @rule(data=st.data())
    def void(self, data: st.DataObject) -> None:
        held = data.draw(st.sampled_from(self._holds()))
        before = self._counts()
        outcome = self._attempt(lambda: ledger.void(self.uow, held.id))
        if held.status is TransactionStatus.CAPTURED:
            assert isinstance(outcome, InvalidTransition), outcome
        else:
            assert isinstance(outcome, LedgerTransaction), outcome
            assert outcome.status is TransactionStatus.VOIDED
            if held.status is TransactionStatus.PENDING:
                self.model.apply(held.legs, pending=True, sign=-1)
                held.status = TransactionStatus.VOIDED
        assert self._counts() == before
        self._record()

    @precondition(
        lambda self: any(t.status is TransactionStatus.POSTED for t in self.model.transactions)
    )
    @rule(data=st.data(), part=st.sampled_from(["full", "part", "too much"]))
    def reverse(self, data: st.DataObject, part: str) -> None:
        original = data.draw(
            st.sampled_from(
                [t for t in self.model.transactions if t.status is TransactionStatus.POSTED]
            )
        )
        size = abs(original.legs[0][1])
        amount = {"full": None, "part": data.draw(st.integers(1, size)), "too much": size + 1}[part]
        taken = amount or size
        legs = [(name, -taken if value > 0 else taken) for name, value in original.legs]
        key = self._key("reverse")

        def call(reason: str = "correction") -> Any:
            return ledger.reverse(self.uow, original.id, key=key, reason=reason, amount=amount)

        outcome = self._attempt(call)
        if part == "too much":
            assert isinstance(outcome, InvalidInput), outcome
        elif original.corrected + 2 * taken > original.size:
            assert isinstance(outcome, Conflict), outcome
            assert not isinstance(outcome, InsufficientBalance)
        elif self.model.breaches(legs, pending=False):
            assert isinstance(outcome, InsufficientBalance), outcome
        else:
            original.corrected += 2 * taken
            self._posted("reverse", outcome, legs, call, lambda: call("another reason"))
        self._record()

    @precondition(lambda self: bool(self.model.transactions))
    @rule(data=st.data())
    def retry_with_the_same_key(self, data: st.DataObject) -> None:
        tx = data.draw(st.sampled_from(self.model.transactions))
        before = self._counts()
        outcome = self._attempt(tx.redo)
        assert isinstance(outcome, ledger.Posted), outcome
        assert (outcome.created, outcome.transaction.id) == (False, tx.id)
        assert self._counts() == before

    @precondition(lambda self: bool(self.model.transactions))
    @rule(data=st.data(), as_other_operation=st.booleans())
    def retry_with_a_changed_body(self, data: st.DataObject, as_other_operation: bool) -> None:
        tx = data.draw(st.sampled_from(self.model.transactions))
        before = self._counts()
        call = tx.other_operation if as_other_operation and tx.other_operation else tx.changed
        outcome = self._attempt(call)
        assert isinstance(outcome, IdempotencyKeyReused), outcome
        assert (
            outcome.extra["transaction_id"]
            == self.session.get_one(LedgerTransaction, tx.id).public_id
        )
        assert self._counts() == before

    @rule(pool=st.sampled_from(POOLS), amount=st.integers(1, 300), racers=st.integers(2, 6))
    def concurrent_draws(self, pool: str, amount: int, racers: int) -> None:
        """Draws racing for one pool, simulated on one connection: every racer reads the balance
        first (all see room), then each tries to draw. A check-then-act ledger would let them
        all through; this one lets through exactly those that fit, holds counted."""
        sink = "cashback" if ACCOUNTS[pool][1] == "GBP" else "points_issued"
        legs = [(pool, amount), (sink, -amount)]
        seen = [ledger.balance(self.uow, self.accounts[pool]).available for _ in range(racers)]
        assert len(set(seen)) == 1
        drafts = [
            (i % 2 == 1, self._draft(self._key("race"), legs, "pool.draw")) for i in range(racers)
        ]
        for as_hold, draft in drafts:
            expected_breach = self.model.breaches(legs, pending=as_hold)
            operation = ledger.hold if as_hold else ledger.post
            outcome = self._attempt(lambda op=operation, d=draft: op(self.uow, d))
            if expected_breach:
                assert isinstance(outcome, InsufficientBalance), outcome
            else:
                self._posted(
                    "hold" if as_hold else "post",
                    outcome,
                    legs,
                    lambda op=operation, d=draft: op(self.uow, d),
                    lambda op=operation, d=draft: op(self.uow, replace(d, description="x")),
                )
        assert self.model.available(pool) >= (ACCOUNTS[pool][2] or 0)
        self._record()

    @rule(seconds=st.integers(1, 7_200))
    def tick(self, seconds: int) -> None:
        self.clock.advance(timedelta(seconds=seconds))
        self._record()

    @precondition(lambda self: len(self.history) > 1)
    @rule(data=st.data(), name=st.sampled_from(sorted(ACCOUNTS)))
    def balances_and_statements_from_history(self, data: st.DataObject, name: str) -> None:
        times = sorted(self.history)
        start, end = sorted(
            data.draw(st.lists(st.sampled_from(times), min_size=2, max_size=2, unique=True))
        )
        account = self.accounts[name]
        currency = ACCOUNTS[name][1]
        at = ledger.balance(self.uow, account, start)
        assert at.posted == Money(self.history[start][name], currency)
        statement = ledger.statement(self.uow, account, start, end)
        assert statement.opening.amount == self._balance_before(start)[name]
        assert statement.closing.amount == self._balance_before(end)[name]
        running = statement.opening.amount
        sign = 1 if ACCOUNTS[name][0].debit_normal else -1
        for line in statement.lines:
            running += sign * (line.debit - line.credit)
            assert line.balance == running
        assert running == statement.closing.amount

    # -- invariants ------------------------------------------------------------------------------

    @invariant()
    def the_books_verify(self) -> None:
        report = verify.run(self.session)
        failing = {c.name: [v.message for v in c.violations] for c in report.checks if not c.ok}
        assert failing == {}

    @invariant()
    def the_tables_hold_every_invariant(self) -> None:
        assert table_problems(self.session) == []

    @invariant()
    def the_tables_agree_with_the_model(self) -> None:
        stored = {
            self.names[row.id]: (
                row.debits_posted,
                row.credits_posted,
                row.debits_pending,
                row.credits_pending,
            )
            for row in self.session.execute(
                select(
                    Account.id,
                    Account.debits_posted,
                    Account.credits_posted,
                    Account.debits_pending,
                    Account.credits_pending,
                )
            )
        }
        assert stored == {name: t.as_tuple() for name, t in self.model.totals.items()}
        statuses = dict(
            self.session.execute(select(LedgerTransaction.id, LedgerTransaction.status)).all()
        )
        assert statuses == {t.id: t.status for t in self.model.transactions}
        assert self._counts() == (len(self.model.transactions), self.model.postings)
        for name in POOLS:
            assert self.model.available(name) >= 0


def table_problems(session: Session) -> list[str]:
    """Every ledger invariant, computed from the tables alone (independently of `verify`)."""
    problems: list[str] = []
    for tx_id, currency, net in session.execute(
        select(Posting.transaction_id, Posting.currency, func.sum(Posting.amount_minor))
        .group_by(Posting.transaction_id, Posting.currency)
        .having(func.sum(Posting.amount_minor) != 0)
    ):
        problems.append(f"transaction {tx_id} is off by {net} {currency}")
    for tx_id, n in session.execute(
        select(LedgerTransaction.id, func.count(Posting.id))
        .outerjoin(Posting, Posting.transaction_id == LedgerTransaction.id)
        .group_by(LedgerTransaction.id)
        .having(func.count(Posting.id) < 2)
    ):
        problems.append(f"transaction {tx_id} has {n} postings")
    live = and_(Posting.pending.is_(True), LedgerTransaction.status == TransactionStatus.PENDING)
    sums: dict[int, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for account_id, dp, cp, dq, cq in session.execute(
        select(
            Posting.account_id,
            func.sum(
                case(
                    (
                        and_(Posting.pending.is_(False), Posting.amount_minor > 0),
                        Posting.amount_minor,
                    ),
                    else_=0,
                )
            ),
            func.sum(
                case(
                    (
                        and_(Posting.pending.is_(False), Posting.amount_minor < 0),
                        -Posting.amount_minor,
                    ),
                    else_=0,
                )
            ),
            func.sum(case((and_(live, Posting.amount_minor > 0), Posting.amount_minor), else_=0)),
            func.sum(case((and_(live, Posting.amount_minor < 0), -Posting.amount_minor), else_=0)),
        )
        .join(LedgerTransaction, LedgerTransaction.id == Posting.transaction_id)
        .group_by(Posting.account_id)
    ):
        sums[account_id] = [int(dp), int(cp), int(dq), int(cq)]
    for account in session.execute(select(Account.__table__)).mappings():
        stored = [
            account["debits_posted"],
            account["credits_posted"],
            account["debits_pending"],
            account["credits_pending"],
        ]
        if stored != sums[account["id"]]:
            problems.append(
                f"account {account['code']} stores {stored}, postings say {sums[account['id']]}"
            )
        floor = account["floor_minor"]
        debit_normal = account["type"] in ("asset", "expense")
        available = (
            stored[0] - stored[1] - stored[3] if debit_normal else stored[1] - stored[0] - stored[2]
        )
        if floor is not None and available < floor:
            problems.append(f"account {account['code']} is at {available}, below {floor}")
    resolver = LedgerTransaction.__table__.alias("resolver")
    for hold_id, status, n in session.execute(
        select(LedgerTransaction.id, LedgerTransaction.status, func.count(resolver.c.id))
        .outerjoin(resolver, resolver.c.resolves_id == LedgerTransaction.id)
        .where(LedgerTransaction.status != TransactionStatus.POSTED)
        .group_by(LedgerTransaction.id, LedgerTransaction.status)
    ):
        if n != (1 if status is TransactionStatus.CAPTURED else 0):
            problems.append(f"hold {hold_id} is {status.value} and resolved {n} times")
    resolving_non_holds = session.scalar(
        select(func.count())
        .select_from(resolver)
        .join(LedgerTransaction, LedgerTransaction.id == resolver.c.resolves_id)
        .where(LedgerTransaction.status != TransactionStatus.CAPTURED)
    )
    if resolving_non_holds:
        problems.append(f"{resolving_non_holds} captures resolve what is not a captured hold")
    keys, distinct = session.execute(
        select(func.count(), func.count(func.distinct(LedgerTransaction.idempotency_key)))
    ).one()
    if keys != distinct:
        problems.append(f"{keys} transactions share {distinct} keys")
    flags = session.scalar(
        select(func.count())
        .select_from(Posting)
        .join(LedgerTransaction, LedgerTransaction.id == Posting.transaction_id)
        .where(
            or_(
                and_(
                    Posting.pending.is_(True),
                    LedgerTransaction.status == TransactionStatus.POSTED,
                ),
                and_(
                    Posting.pending.is_(False),
                    LedgerTransaction.status != TransactionStatus.POSTED,
                ),
            )
        )
    )
    if flags:
        problems.append(f"{flags} postings have the wrong pending flag")
    return problems


# 60 runs of up to 25 steps in all, in shards that parallel test workers share out.
SHARDS = 3


@pytest.mark.parametrize("shard", range(SHARDS))
def test_the_ledger_keeps_every_invariant_under_random_operations(
    connection: Connection, shard: int
) -> None:
    LedgerMachine.connection = connection
    run_state_machine_as_test(
        LedgerMachine,
        settings=settings(
            max_examples=60 // SHARDS,
            stateful_step_count=25,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
