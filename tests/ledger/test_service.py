"""The ledger service: accounts, posting, holds, corrections, balances and statements, and every
refusal (each of which writes nothing)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from beyondbank.core.authz import Principal
from beyondbank.core.clock import FixedClock
from beyondbank.core.errors import (
    Conflict,
    IdempotencyKeyReused,
    InsufficientBalance,
    InvalidInput,
    InvalidTransition,
    NotFound,
)
from beyondbank.core.models import AuditEvent
from beyondbank.core.money import POINTS, Money
from beyondbank.core.uow import UnitOfWork
from beyondbank.ledger import chart
from beyondbank.ledger import service as ledger
from beyondbank.ledger.models import (
    Account,
    AccountStatus,
    AccountType,
    LedgerTransaction,
    OwnerKind,
    Posting,
    TransactionStatus,
)
from tests.ledger.factories import (
    account,
    credit,
    debit,
    draft,
    pool,
    row_counts,
    totals,
    transfer,
)

STAFF = Principal(kind="user", id=7, public_id="usr_FINANCE", label="Finance")


def _fields(problem: InvalidInput) -> list[str]:
    return [e.field for e in problem.errors]


def _messages(problem: InvalidInput) -> str:
    return " | ".join(e.message for e in problem.errors)


@pytest.fixture
def cash(uow: UnitOfWork) -> Account:
    return account(uow, "cash")


@pytest.fixture
def expense(uow: UnitOfWork) -> Account:
    return account(uow, "marketing", type=AccountType.EXPENSE)


@pytest.fixture
def cashback(uow: UnitOfWork) -> Account:
    """Where pool draws go: what the bank owes a member."""
    return chart.member_cashback(uow, "mem_1", "GBP")


@pytest.fixture
def funded_pool(uow: UnitOfWork, cash: Account) -> Account:
    """A co-funding pool (floor 0) holding £5.00."""
    the_pool = pool(uow)
    ledger.post(uow, transfer(cash, the_pool, 500, key="fund-pool"))
    return the_pool


# -- accounts ------------------------------------------------------------------------------------


def test_an_account_opens_once_by_its_code_and_is_audited(uow: UnitOfWork) -> None:
    opened = ledger.open_account(
        uow,
        owner_kind=OwnerKind.MERCHANT,
        owner_ref="mer_1",
        purpose="prepaid_budget",
        type=AccountType.LIABILITY,
        currency="GBP",
        floor=0,
        actor=STAFF,
    )
    assert opened.code == "merchant:mer_1:prepaid_budget:GBP"
    assert opened.public_id.startswith("acc_")
    assert opened.status is AccountStatus.OPEN
    assert (opened.balance_minor, opened.pending_minor, opened.available_minor) == (0, 0, 0)
    again = ledger.open_account(
        uow,
        owner_kind=OwnerKind.MERCHANT,
        owner_ref="mer_1",
        purpose="prepaid_budget",
        type=AccountType.LIABILITY,
        currency="GBP",
        floor=0,
    )
    assert again.id == opened.id
    events = uow.session.scalars(
        select(AuditEvent).where(AuditEvent.object_id == opened.public_id)
    ).all()
    assert [(e.action, e.actor_id) for e in events] == [("ledger.account.opened", "usr_FINANCE")]


@pytest.mark.parametrize(
    ("type_", "floor"), [(AccountType.ASSET, 0), (AccountType.LIABILITY, None)]
)
def test_reopening_with_another_type_or_floor_is_a_conflict(
    uow: UnitOfWork, type_: AccountType, floor: int | None
) -> None:
    pool(uow, "p-conflict")
    with pytest.raises(Conflict, match="exists as liability with floor 0"):
        account(
            uow,
            "pool",
            type=type_,
            owner_kind=OwnerKind.POOL,
            owner_ref="p-conflict",
            floor=floor,
        )


def test_an_unknown_currency_opens_nothing(uow: UnitOfWork) -> None:
    before = row_counts(uow)
    with pytest.raises(ValueError, match="unknown currency 'XYZ'"):
        account(uow, "cash", currency="XYZ")
    assert row_counts(uow) == before


def test_accounts_are_found_by_public_id_or_code(uow: UnitOfWork, cash: Account) -> None:
    assert ledger.account_by_public_id(uow, cash.public_id).id == cash.id
    assert ledger.account_by_public_id(uow, cash.code).id == cash.id
    with pytest.raises(NotFound):
        ledger.account_by_public_id(uow, "acc_NOPE")
    with pytest.raises(NotFound):
        ledger.get_account(uow, 10**9)


def test_accounts_are_listed_by_owner_and_currency_a_page_at_a_time(uow: UnitOfWork) -> None:
    for i in range(5):
        pool(uow, f"p{i}")
    pool(uow, "p0", currency="EUR")
    account(uow, "cash")
    pools, cursor = ledger.list_accounts(uow, owner_kind=OwnerKind.POOL, limit=3)
    assert len(pools) == 3
    assert cursor is not None
    rest, end = ledger.list_accounts(uow, owner_kind=OwnerKind.POOL, cursor=cursor, limit=3)
    assert len(rest) == 3
    assert end is None
    assert len({a.id for a in [*pools, *rest]}) == 6
    p0, _ = ledger.list_accounts(uow, owner_ref="p0")
    assert sorted(a.currency for a in p0) == ["EUR", "GBP"]
    euros, _ = ledger.list_accounts(uow, currency="EUR")
    assert [a.code for a in euros] == ["pool:p0:pool:EUR"]


def test_an_empty_account_closes_and_then_takes_no_postings(
    uow: UnitOfWork, cash: Account, expense: Account
) -> None:
    closed = ledger.close_account(uow, expense.id, actor=STAFF)
    assert closed.status is AccountStatus.CLOSED
    assert closed.closed_at == uow.clock.now()
    before = row_counts(uow)
    with pytest.raises(InvalidInput) as refused:
        ledger.post(uow, transfer(expense, cash, 100))
    assert _fields(refused.value) == ["postings.0.account"]
    assert f"account {expense.public_id} is closed" in _messages(refused.value)
    with pytest.raises(InvalidInput):
        ledger.hold(uow, transfer(cash, expense, 100))
    assert row_counts(uow) == before
    assert totals(uow, cash, expense) == [(0, 0, 0, 0), (0, 0, 0, 0)]
    with pytest.raises(InvalidTransition, match="already closed") as again:
        ledger.close_account(uow, expense.id, actor=STAFF)
    assert again.value.extra["current_status"] == "closed"
    actions = uow.session.scalars(
        select(AuditEvent.action).where(AuditEvent.object_id == expense.public_id)
    ).all()
    assert actions == ["ledger.account.opened", "ledger.account.closed"]


def test_an_account_with_a_balance_or_a_hold_does_not_close(
    uow: UnitOfWork, cash: Account, funded_pool: Account, expense: Account
) -> None:
    with pytest.raises(Conflict, match="still holds 500"):
        ledger.close_account(uow, funded_pool.id, actor=STAFF)
    ledger.post(uow, transfer(funded_pool, cash, 500))
    held = ledger.hold(uow, transfer(expense, cash, 100))
    with pytest.raises(Conflict, match="100 in pending holds"):
        ledger.close_account(uow, expense.id, actor=STAFF)
    ledger.void(uow, held.transaction.id)
    assert ledger.close_account(uow, funded_pool.id, actor=STAFF).status is AccountStatus.CLOSED
    assert ledger.close_account(uow, expense.id, actor=STAFF).status is AccountStatus.CLOSED


# -- posting ---------------------------------------------------------------------------------------


def test_a_balanced_transaction_posts_and_moves_the_running_totals(
    uow: UnitOfWork, cash: Account, expense: Account
) -> None:
    posted = ledger.post(
        uow, transfer(expense, cash, 1250, key="k1", kind="adjustment"), actor=STAFF
    )
    assert posted.created
    tx = posted.transaction
    assert tx.status is TransactionStatus.POSTED
    assert tx.public_id.startswith("ltx_")
    assert (tx.idempotency_key, tx.kind, tx.created_by) == ("k1", "adjustment", "usr_FINANCE")
    assert tx.effective_at == tx.created_at == uow.clock.now()
    lines = ledger.postings_of(uow, tx)
    assert [(a.id, p.amount_minor, p.pending) for a, p in lines] == [
        (expense.id, 1250, False),
        (cash.id, -1250, False),
    ]
    assert totals(uow, expense, cash) == [(1250, 0, 0, 0), (0, 1250, 0, 0)]
    # Balances read on each account's normal side: an expense up, an asset down.
    assert ledger.balance(uow, expense).posted == Money(1250, "GBP")
    assert ledger.balance(uow, cash).posted == Money(-1250, "GBP")


def test_the_same_key_and_content_returns_the_original_and_writes_nothing(
    uow: UnitOfWork, cash: Account, expense: Account
) -> None:
    first = ledger.post(uow, transfer(expense, cash, 100, key="same"))
    before = row_counts(uow)
    # The legs in another order are the same content.
    again = ledger.post(uow, draft(credit(cash, 100), debit(expense, 100), key="same"))
    assert not again.created
    assert again.transaction.id == first.transaction.id
    assert row_counts(uow) == before
    assert totals(uow, expense) == [(100, 0, 0, 0)]


@pytest.mark.parametrize(
    "change",
    [
        {"amount": 101},
        {"kind": "other"},
        {"description": "something else"},
        {"reference": "ref-2"},
        {"swap": True},
    ],
)
def test_the_same_key_with_other_content_is_refused_and_writes_nothing(
    uow: UnitOfWork, cash: Account, expense: Account, change: dict[str, object]
) -> None:
    original = ledger.post(uow, draft(debit(expense, 100), credit(cash, 100), key="reused"))
    before = row_counts(uow)
    amount = int(change.get("amount", 100))  # type: ignore[call-overload]
    legs = (
        (debit(cash, amount), credit(expense, amount))
        if change.get("swap")
        else (debit(expense, amount), credit(cash, amount))
    )
    over = {k: v for k, v in change.items() if k in ("kind", "description", "reference")}
    with pytest.raises(IdempotencyKeyReused) as refused:
        ledger.post(uow, draft(*legs, key="reused", **over))  # type: ignore[arg-type]
    assert refused.value.status == 422
    assert refused.value.extra["transaction_id"] == original.transaction.public_id
    assert row_counts(uow) == before


def test_a_key_used_by_a_posting_cannot_be_replayed_as_a_hold_or_back(
    uow: UnitOfWork, cash: Account, expense: Account
) -> None:
    """Same content under one key, but a different operation: a hold is not a posting."""
    ledger.post(uow, transfer(expense, cash, 100, key="posted-once"))
    ledger.hold(uow, transfer(expense, cash, 100, key="held-once"))
    before = row_counts(uow)
    with pytest.raises(IdempotencyKeyReused):
        ledger.hold(uow, transfer(expense, cash, 100, key="posted-once"))
    with pytest.raises(IdempotencyKeyReused):
        ledger.post(uow, transfer(expense, cash, 100, key="held-once"))
    assert row_counts(uow) == before
    assert ledger.hold(uow, transfer(expense, cash, 100, key="held-once")).created is False


def test_fewer_than_two_postings_are_refused(uow: UnitOfWork, cash: Account) -> None:
    with pytest.raises(InvalidInput) as refused:
        ledger.post(uow, draft(debit(cash, 100)))
    assert "a transaction has at least two postings" in _messages(refused.value)
    with pytest.raises(InvalidInput):
        ledger.post(uow, draft())


@pytest.mark.parametrize("amount", [0, -100])
def test_zero_and_negative_amounts_are_refused(
    uow: UnitOfWork, cash: Account, expense: Account, amount: int
) -> None:
    before = row_counts(uow)
    with pytest.raises(InvalidInput) as refused:
        ledger.post(uow, draft(debit(expense, amount), credit(cash, amount)))
    assert _fields(refused.value)[:2] == ["postings.0.amount", "postings.1.amount"]
    assert "must be greater than zero" in _messages(refused.value)
    assert row_counts(uow) == before


def test_an_unbalanced_transaction_is_refused_naming_the_difference(
    uow: UnitOfWork, cash: Account, expense: Account
) -> None:
    before = row_counts(uow)
    with pytest.raises(InvalidInput) as refused:
        ledger.post(uow, draft(debit(expense, 1250), credit(cash, 1200)))
    assert _fields(refused.value) == ["postings"]
    assert "debits and credits in GBP differ by 0.50 GBP" in _messages(refused.value)
    assert row_counts(uow) == before
    assert totals(uow, cash, expense) == [(0, 0, 0, 0), (0, 0, 0, 0)]


def test_a_multi_currency_transaction_balances_in_each_currency(uow: UnitOfWork) -> None:
    gbp_cash, eur_cash = account(uow, "cash"), account(uow, "cash", currency="EUR")
    gbp_fx, eur_fx = (
        account(uow, "fx", type=AccountType.LIABILITY),
        account(uow, "fx", type=AccountType.LIABILITY, currency="EUR"),
    )
    # Debits equal credits overall (2000 = 2000) but not per currency: refused for both.
    before = row_counts(uow)
    with pytest.raises(InvalidInput) as refused:
        ledger.post(
            uow,
            draft(
                debit(gbp_cash, 1000),
                credit(gbp_fx, 900),
                debit(eur_cash, 1000),
                credit(eur_fx, 1100),
            ),
        )
    assert _messages(refused.value) == (
        "debits and credits in EUR differ by 1.00 EUR | debits and credits in GBP differ by 1.00 GBP"
    )
    assert row_counts(uow) == before
    posted = ledger.post(
        uow,
        draft(
            debit(gbp_cash, 1000), credit(gbp_fx, 1000), debit(eur_cash, 1170), credit(eur_fx, 1170)
        ),
    )
    assert len(ledger.postings_of(uow, posted.transaction)) == 4
    assert ledger.balance(uow, eur_fx).posted == Money(1170, "EUR")


def test_a_posting_in_a_currency_the_account_does_not_keep_is_refused(
    uow: UnitOfWork, cash: Account
) -> None:
    euros = account(uow, "fx", type=AccountType.LIABILITY, currency="EUR")
    before = row_counts(uow)
    with pytest.raises(InvalidInput) as refused:
        ledger.post(uow, draft(debit(cash, 100, "EUR"), credit(euros, 100)))
    assert _fields(refused.value) == ["postings.0.currency"]
    assert f"account {cash.public_id} keeps GBP, not EUR" in _messages(refused.value)
    with pytest.raises(InvalidInput) as unknown:
        ledger.post(uow, draft(debit(10**9, 100, "GBP"), credit(cash, 100)))  # type: ignore[arg-type]
    assert _fields(unknown.value) == ["postings.0.account"]
    assert row_counts(uow) == before


def test_every_problem_with_a_draft_is_reported_at_once(uow: UnitOfWork, cash: Account) -> None:
    naive = uow.clock.now().replace(tzinfo=None)
    bad = ledger.Draft(key="", kind="", legs=(debit(cash, 0),), effective_at=naive)
    with pytest.raises(InvalidInput) as refused:
        ledger.post(uow, bad)
    assert _fields(refused.value) == [
        "key",
        "kind",
        "postings",
        "postings.0.amount",
        "effective_at",
    ]
    with pytest.raises(InvalidInput):
        ledger.post(uow, transfer(cash, cash, 1, key="k" * 256))
    with pytest.raises(InvalidInput):
        ledger.post(uow, transfer(cash, cash, 1, key="tab\tkey"))


def test_the_fingerprint_ignores_the_order_of_the_legs(cash: Account, expense: Account) -> None:
    one = draft(debit(expense, 5), credit(cash, 5), key="k")
    two = draft(credit(cash, 5), debit(expense, 5), key="k")
    assert ledger.fingerprint_of(one) == ledger.fingerprint_of(two)
    assert ledger.fingerprint_of(one) != ledger.fingerprint_of(
        draft(debit(expense, 6), credit(cash, 6), key="k")
    )


def test_a_refused_post_leaves_the_callers_transaction_as_it_was(
    uow: UnitOfWork, cash: Account, funded_pool: Account, cashback: Account
) -> None:
    ledger.post(uow, transfer(funded_pool, cashback, 200, key="first"))
    with pytest.raises(InsufficientBalance):
        ledger.post(uow, transfer(funded_pool, cashback, 10_000))
    # The earlier work in the same unit of work is still there.
    assert ledger.balance(uow, funded_pool).posted == Money(300, "GBP")
    assert (
        uow.session.scalar(
            select(func.count())
            .select_from(LedgerTransaction)
            .where(LedgerTransaction.idempotency_key == "first")
        )
        == 1
    )


# -- floors ----------------------------------------------------------------------------------------


def test_a_pool_never_goes_below_zero(
    uow: UnitOfWork, funded_pool: Account, cashback: Account
) -> None:
    ledger.post(uow, transfer(funded_pool, cashback, 500))  # draw it all: exactly zero is fine
    assert ledger.balance(uow, funded_pool).posted == Money(0, "GBP")
    before = row_counts(uow)
    with pytest.raises(InsufficientBalance) as refused:
        ledger.post(uow, transfer(funded_pool, cashback, 1))
    problem = refused.value
    assert problem.status == 409
    assert problem.slug == "insufficient-balance"
    assert problem.extra == {
        "account_id": funded_pool.public_id,
        "available_minor": 0,
        "floor_minor": 0,
    }
    assert row_counts(uow) == before
    assert totals(uow, funded_pool, cashback) == [(500, 500, 0, 0), (0, 500, 0, 0)]


def test_holds_count_against_the_floor(
    uow: UnitOfWork, cash: Account, funded_pool: Account, cashback: Account
) -> None:
    ledger.hold(uow, transfer(funded_pool, cashback, 300))
    b = ledger.balance(uow, funded_pool)
    assert (b.posted.amount, b.pending.amount, b.available.amount) == (500, 300, 200)
    with pytest.raises(InsufficientBalance, match=r"has 2\.00 GBP available above its floor"):
        ledger.post(uow, transfer(funded_pool, cashback, 201))
    with pytest.raises(InsufficientBalance):
        ledger.hold(uow, transfer(funded_pool, cashback, 201))
    ledger.post(uow, transfer(funded_pool, cashback, 200))
    assert ledger.balance(uow, funded_pool).available == Money(0, "GBP")
    # Money coming in while pending does not count until it posts.
    ledger.hold(uow, transfer(cash, funded_pool, 1000))
    with pytest.raises(InsufficientBalance):
        ledger.post(uow, transfer(funded_pool, cashback, 1))


def test_an_overdraft_floor_allows_a_negative_balance_down_to_it(
    uow: UnitOfWork, cash: Account
) -> None:
    deposit = chart.customer_deposit(uow, "cus_1", "GBP", overdraft=1000)
    assert deposit.floor_minor == -1000
    ledger.post(uow, transfer(deposit, cash, 1000))
    assert ledger.balance(uow, deposit).posted == Money(-1000, "GBP")
    with pytest.raises(InsufficientBalance):
        ledger.post(uow, transfer(deposit, cash, 1))


def test_a_floor_on_a_debit_normal_account(uow: UnitOfWork) -> None:
    """On an asset the balance is debits less credits; credits lower it."""
    receivable = account(uow, "nostro", floor=0)
    income = account(uow, "income", type=AccountType.REVENUE)
    ledger.post(uow, transfer(receivable, income, 300))
    ledger.hold(uow, transfer(income, receivable, 200))
    with pytest.raises(InsufficientBalance):
        ledger.post(uow, transfer(income, receivable, 101))
    ledger.post(uow, transfer(income, receivable, 100))
    assert ledger.balance(uow, receivable).available == Money(0, "GBP")


def test_money_coming_in_never_trips_a_floor(uow: UnitOfWork, cash: Account) -> None:
    """An account already below its floor (a floor raised by hand) can still be topped up."""
    deposit = chart.customer_deposit(uow, "cus_2", "GBP", overdraft=500)
    ledger.post(uow, transfer(deposit, cash, 400))
    ledger.post(uow, transfer(cash, deposit, 100))
    assert ledger.balance(uow, deposit).posted == Money(-300, "GBP")


# -- holds ---------------------------------------------------------------------------------------


def test_a_hold_is_pending_not_in_the_balance(
    uow: UnitOfWork, funded_pool: Account, cashback: Account
) -> None:
    held = ledger.hold(uow, transfer(funded_pool, cashback, 300, key="h"))
    tx = held.transaction
    assert tx.status is TransactionStatus.PENDING
    assert all(p.pending for _, p in ledger.postings_of(uow, tx))
    assert totals(uow, funded_pool, cashback) == [(0, 500, 300, 0), (0, 0, 0, 300)]
    assert ledger.balance(uow, cashback).posted == Money(0, "GBP")
    # Money held on its way in is not the receiving account's to spend, nor an outflow.
    assert ledger.balance(uow, cashback).pending == Money(0, "GBP")
    assert ledger.balance(uow, cashback).available == Money(0, "GBP")
    assert ledger.hold(uow, transfer(funded_pool, cashback, 300, key="h")).created is False


def test_a_hold_neither_corrects_nor_resolves(
    uow: UnitOfWork, funded_pool: Account, cashback: Account
) -> None:
    first = ledger.post(uow, transfer(funded_pool, cashback, 100))
    with pytest.raises(InvalidInput):
        ledger.hold(
            uow, draft(debit(funded_pool, 1), credit(cashback, 1), corrects=first.transaction.id)
        )


def test_a_hold_captured_in_full(
    uow: UnitOfWork, clock: FixedClock, funded_pool: Account, cashback: Account
) -> None:
    held = ledger.hold(uow, transfer(funded_pool, cashback, 300, kind="pool.draw"))
    clock.advance(timedelta(hours=1))
    captured = ledger.capture(uow, held.transaction.id, key="cap", actor=STAFF)
    assert captured.created
    capture_tx = captured.transaction
    assert capture_tx.status is TransactionStatus.POSTED
    assert capture_tx.resolves_id == held.transaction.id
    assert capture_tx.kind == "pool.draw"
    assert capture_tx.effective_at == clock.now()
    uow.session.refresh(held.transaction)
    assert held.transaction.status is TransactionStatus.CAPTURED
    assert held.transaction.resolved_at == clock.now()
    assert totals(uow, funded_pool, cashback) == [(300, 500, 0, 0), (0, 300, 0, 0)]
    b = ledger.balance(uow, funded_pool)
    assert (b.posted.amount, b.pending.amount, b.available.amount) == (200, 0, 200)


def test_a_two_posting_hold_captured_in_part_releases_the_rest(
    uow: UnitOfWork, funded_pool: Account, cashback: Account
) -> None:
    held = ledger.hold(uow, transfer(funded_pool, cashback, 300))
    captured = ledger.capture(uow, held.transaction.id, key="part", amount=120)
    assert [p.amount_minor for _, p in ledger.postings_of(uow, captured.transaction)] == [120, -120]
    assert totals(uow, funded_pool) == [(120, 500, 0, 0)]
    assert ledger.balance(uow, funded_pool).available == Money(380, "GBP")
    # The hold's own postings are untouched.
    assert [p.amount_minor for _, p in ledger.postings_of(uow, held.transaction)] == [300, -300]


@pytest.mark.parametrize("amount", [0, -1, 301])
def test_a_partial_capture_stays_within_the_hold(
    uow: UnitOfWork, funded_pool: Account, cashback: Account, amount: int
) -> None:
    held = ledger.hold(uow, transfer(funded_pool, cashback, 300))
    before = row_counts(uow)
    with pytest.raises(InvalidInput, match=r"within 1\.\.300"):
        ledger.capture(uow, held.transaction.id, key="bad", amount=amount)
    assert row_counts(uow) == before
    uow.session.refresh(held.transaction)
    assert held.transaction.status is TransactionStatus.PENDING


def test_an_n_posting_hold_is_captured_only_in_full(
    uow: UnitOfWork, cash: Account, funded_pool: Account, cashback: Account
) -> None:
    fees = account(uow, "fees", type=AccountType.REVENUE)
    held = ledger.hold(uow, draft(debit(funded_pool, 300), credit(cashback, 250), credit(fees, 50)))
    with pytest.raises(InvalidInput, match="only a two-posting hold can be captured in part"):
        ledger.capture(uow, held.transaction.id, key="n-part", amount=100)
    captured = ledger.capture(uow, held.transaction.id, key="n-full")
    assert len(ledger.postings_of(uow, captured.transaction)) == 3
    assert ledger.balance(uow, fees).posted == Money(50, "GBP")


def test_a_hold_is_captured_at_most_once(
    uow: UnitOfWork, funded_pool: Account, cashback: Account
) -> None:
    held = ledger.hold(uow, transfer(funded_pool, cashback, 300))
    first = ledger.capture(uow, held.transaction.id, key="once", amount=100)
    before = row_counts(uow)
    # A retry with the same key is the original capture.
    again = ledger.capture(uow, held.transaction.id, key="once", amount=100)
    assert (again.created, again.transaction.id) == (False, first.transaction.id)
    # The same key with another amount is a different request.
    with pytest.raises(IdempotencyKeyReused):
        ledger.capture(uow, held.transaction.id, key="once", amount=101)
    # A second capture with a new key is refused, naming the hold's status.
    with pytest.raises(InvalidTransition, match="is captured") as twice:
        ledger.capture(uow, held.transaction.id, key="twice")
    assert twice.value.status == 409
    assert twice.value.extra == {"current_status": "captured"}
    with pytest.raises(InvalidTransition, match="is captured"):
        ledger.void(uow, held.transaction.id)
    assert row_counts(uow) == before
    assert totals(uow, funded_pool) == [(100, 500, 0, 0)]


def test_a_voided_hold_releases_its_amounts_once(
    uow: UnitOfWork, funded_pool: Account, cashback: Account
) -> None:
    held = ledger.hold(uow, transfer(funded_pool, cashback, 300))
    voided = ledger.void(uow, held.transaction.id)
    assert voided.status is TransactionStatus.VOIDED
    assert voided.resolved_at == uow.clock.now()
    assert totals(uow, funded_pool, cashback) == [(0, 500, 0, 0), (0, 0, 0, 0)]
    # Voiding again changes nothing; capturing a voided hold is refused.
    assert ledger.void(uow, held.transaction.id).status is TransactionStatus.VOIDED
    assert totals(uow, funded_pool) == [(0, 500, 0, 0)]
    before = row_counts(uow)
    with pytest.raises(InvalidTransition, match="is voided") as refused:
        ledger.capture(uow, held.transaction.id, key="late")
    assert refused.value.extra == {"current_status": "voided"}
    assert row_counts(uow) == before


def test_only_a_hold_is_captured_or_voided(
    uow: UnitOfWork, funded_pool: Account, cashback: Account
) -> None:
    posted = ledger.post(uow, transfer(funded_pool, cashback, 100))
    with pytest.raises(InvalidTransition, match="is posted"):
        ledger.capture(uow, posted.transaction.id, key="not-a-hold")
    with pytest.raises(InvalidTransition, match="is posted"):
        ledger.void(uow, posted.transaction.id)
    with pytest.raises(NotFound):
        ledger.void(uow, 10**9)
    with pytest.raises(NotFound):
        ledger.capture(uow, 10**9, key="nothing")


# -- corrections -----------------------------------------------------------------------------------


def test_a_full_reversal_references_the_original_and_restores_the_balances(
    uow: UnitOfWork, funded_pool: Account, cashback: Account
) -> None:
    original = ledger.post(uow, transfer(funded_pool, cashback, 200, kind="pool.draw"))
    reversal = ledger.reverse(
        uow, original.transaction.id, key="undo", reason="Wrong campaign", actor=STAFF
    )
    tx = reversal.transaction
    assert (tx.corrects_id, tx.kind, tx.description) == (
        original.transaction.id,
        "pool.draw.reversal",
        "Wrong campaign",
    )
    assert [p.amount_minor for _, p in ledger.postings_of(uow, tx)] == [-200, 200]
    assert ledger.balance(uow, funded_pool).posted == Money(500, "GBP")
    assert ledger.balance(uow, cashback).posted == Money(0, "GBP")
    # The original stays exactly as it was.
    uow.session.refresh(original.transaction)
    assert original.transaction.status is TransactionStatus.POSTED
    again = ledger.reverse(uow, original.transaction.id, key="undo", reason="Wrong campaign")
    assert (again.created, again.transaction.id) == (False, tx.id)
    with pytest.raises(IdempotencyKeyReused):
        ledger.reverse(uow, original.transaction.id, key="undo", reason="Another reason")
    with pytest.raises(Conflict, match="already been corrected by 200 of 200"):
        ledger.reverse(uow, original.transaction.id, key="undo-2", reason="Twice")


def test_reversals_in_parts_never_exceed_the_original(
    uow: UnitOfWork, funded_pool: Account, cashback: Account
) -> None:
    original = ledger.post(uow, transfer(funded_pool, cashback, 100)).transaction
    for i, part in enumerate((30, 30, 40)):
        ledger.reverse(uow, original.id, key=f"part-{i}", reason="refund", amount=part)
    assert ledger.balance(uow, cashback).posted == Money(0, "GBP")
    before = row_counts(uow)
    with pytest.raises(Conflict, match="corrected by 100 of 100"):
        ledger.reverse(uow, original.id, key="part-3", reason="refund", amount=1)
    assert row_counts(uow) == before

    second = ledger.post(uow, transfer(funded_pool, cashback, 100)).transaction
    ledger.reverse(uow, second.id, key="second-part", reason="refund", amount=60)
    with pytest.raises(Conflict, match="corrected by 60 of 100"):
        ledger.reverse(uow, second.id, key="second-full", reason="all of it")
    with pytest.raises(Conflict):
        ledger.reverse(uow, second.id, key="second-over", reason="refund", amount=41)
    ledger.reverse(uow, second.id, key="second-rest", reason="refund", amount=40)


@pytest.mark.parametrize("amount", [0, 101])
def test_a_partial_reversal_stays_within_the_original(
    uow: UnitOfWork, funded_pool: Account, cashback: Account, amount: int
) -> None:
    original = ledger.post(uow, transfer(funded_pool, cashback, 100)).transaction
    with pytest.raises(InvalidInput, match=r"within 1\.\.100"):
        ledger.reverse(uow, original.id, key="x", reason="r", amount=amount)


def test_only_a_posted_transaction_is_reversed_and_n_legs_only_in_full(
    uow: UnitOfWork, funded_pool: Account, cashback: Account
) -> None:
    fees = account(uow, "fees", type=AccountType.REVENUE)
    held = ledger.hold(uow, transfer(funded_pool, cashback, 100))
    with pytest.raises(InvalidTransition, match="is pending") as refused:
        ledger.reverse(uow, held.transaction.id, key="r-hold", reason="no")
    assert refused.value.extra == {"current_status": "pending"}
    three = ledger.post(uow, draft(debit(funded_pool, 100), credit(cashback, 90), credit(fees, 10)))
    with pytest.raises(InvalidInput, match="only a two-posting transaction"):
        ledger.reverse(uow, three.transaction.id, key="r-part", reason="no", amount=50)
    full = ledger.reverse(uow, three.transaction.id, key="r-full", reason="yes")
    assert len(ledger.postings_of(uow, full.transaction)) == 3
    assert ledger.balance(uow, fees).posted == Money(0, "GBP")


def test_a_reversal_respects_floors(
    uow: UnitOfWork, cash: Account, funded_pool: Account, cashback: Account
) -> None:
    """Undoing the pool's funding after it was spent would take it below zero."""
    funding = uow.session.scalars(
        select(LedgerTransaction).where(LedgerTransaction.idempotency_key == "fund-pool")
    ).one()
    ledger.post(uow, transfer(funded_pool, cashback, 400))
    before = row_counts(uow)
    with pytest.raises(InsufficientBalance):
        ledger.reverse(uow, funding.id, key="unfund", reason="mistake")
    assert row_counts(uow) == before
    ledger.reverse(uow, funding.id, key="unfund-part", reason="mistake", amount=100)
    assert ledger.balance(uow, funded_pool).posted == Money(0, "GBP")


def test_a_correction_of_a_correction(
    uow: UnitOfWork, funded_pool: Account, cashback: Account
) -> None:
    original = ledger.post(uow, transfer(funded_pool, cashback, 100)).transaction
    undo = ledger.reverse(uow, original.id, key="undo", reason="mistake").transaction
    redo = ledger.reverse(uow, undo.id, key="redo", reason="it was right")
    assert redo.transaction.kind == "test.reversal.reversal"
    assert ledger.balance(uow, cashback).posted == Money(100, "GBP")


def test_a_correction_posted_by_hand_is_bounded_like_a_reversal(
    uow: UnitOfWork, funded_pool: Account, cashback: Account
) -> None:
    """A manual entry that `corrects` a transaction (a reclassification, say) counts against
    the same bound as reversals: never more than the original posted."""
    other = chart.member_cashback(uow, "mem_2", "GBP")
    original = ledger.post(uow, transfer(funded_pool, cashback, 100)).transaction
    ledger.reverse(uow, original.id, key="half", reason="half back", amount=50)
    moved = draft(debit(cashback, 50), credit(other, 50), key="reclass", corrects=original.id)
    assert ledger.post(uow, moved).created
    assert ledger.post(uow, moved).created is False  # a retry, even with the bound reached
    before = row_counts(uow)
    with pytest.raises(Conflict, match="corrected by 100 of 100"):
        ledger.post(uow, draft(debit(cashback, 1), credit(other, 1), corrects=original.id))
    held = ledger.hold(uow, transfer(funded_pool, cashback, 10)).transaction
    with pytest.raises(InvalidTransition, match="is pending") as refused:
        ledger.post(uow, draft(debit(cashback, 1), credit(other, 1), corrects=held.id))
    assert refused.value.extra == {"current_status": "pending"}
    assert row_counts(uow) == before | {
        "transactions": before["transactions"] + 1,
        "postings": before["postings"] + 2,
    }
    assert ledger.balance(uow, other).posted == Money(50, "GBP")


# -- balances and statements -----------------------------------------------------------------------


def test_the_balance_at_a_point_in_time(
    uow: UnitOfWork, clock: FixedClock, cash: Account, expense: Account
) -> None:
    t0 = clock.now()
    ledger.post(uow, transfer(expense, cash, 100))
    clock.advance(timedelta(days=1))
    t1 = clock.now()
    ledger.post(uow, transfer(expense, cash, 250))
    ledger.hold(uow, transfer(expense, cash, 999))  # holds are never in a balance at a time
    clock.advance(timedelta(days=1))
    # Back-dated: effective before it was recorded.
    ledger.post(
        uow, draft(debit(expense, 5), credit(cash, 5), effective_at=t0 + timedelta(hours=12))
    )

    def at(when: object) -> int:
        return ledger.balance(uow, expense, when).posted.amount  # type: ignore[arg-type]

    assert at(t0 - timedelta(seconds=1)) == 0
    assert at(t0) == 100  # inclusive
    assert at(t0 + timedelta(hours=12)) == 105
    assert at(t1 - timedelta(microseconds=1)) == 105
    assert at(t1) == 355
    assert at(clock.now()) == 355
    assert ledger.balance(uow, cash, t1).posted == Money(-355, "GBP")
    historic = ledger.balance(uow, expense, t1)
    assert (historic.at, historic.pending, historic.available) == (
        t1,
        Money(0, "GBP"),
        Money(355, "GBP"),
    )
    now = ledger.balance(uow, expense)
    assert (now.at, now.posted.amount) == (None, 355)


def test_a_statement_has_an_opening_balance_lines_and_a_closing_balance(
    uow: UnitOfWork, clock: FixedClock, cash: Account, funded_pool: Account, cashback: Account
) -> None:
    start = clock.now() + timedelta(hours=1)
    clock.set(start)
    ledger.post(
        uow,
        draft(debit(funded_pool, 120), credit(cashback, 120), kind="pool.draw", reference="cmp-1"),
    )
    clock.advance(timedelta(hours=1))
    ledger.post(uow, transfer(cash, funded_pool, 1000, kind="pool.contribution"))
    held = ledger.hold(uow, transfer(funded_pool, cashback, 50))
    clock.advance(timedelta(hours=1))
    ledger.capture(uow, held.transaction.id, key="cap-50", amount=30)
    end = clock.now() + timedelta(hours=1)
    clock.set(end)
    ledger.post(uow, transfer(funded_pool, cashback, 7))  # at `end`: the next statement's

    st = ledger.statement(uow, funded_pool, start, end)
    assert st.opening == Money(500, "GBP")
    assert [(line.kind, line.debit, line.credit, line.balance) for line in st.lines] == [
        ("pool.draw", 120, 0, 380),
        ("pool.contribution", 0, 1000, 1380),
        ("test", 30, 0, 1350),
    ]
    assert st.lines[0].reference == "cmp-1"
    assert st.closing == Money(1350, "GBP")
    assert (st.total_debits, st.total_credits) == (150, 1000)
    assert st.opening.amount - st.total_debits + st.total_credits == st.closing.amount
    # Consecutive statements join up, and agree with the balance at a point in time.
    later = ledger.statement(uow, funded_pool, end, end + timedelta(days=1))
    assert later.opening == st.closing
    assert later.closing == Money(1343, "GBP")
    assert ledger.balance(uow, funded_pool, end - timedelta(microseconds=1)).posted == st.closing

    # On a debit-normal account the running balance goes up with debits.
    bank = ledger.statement(uow, cash, start, end)
    assert bank.opening == Money(500, "GBP")
    assert [(line.debit, line.credit, line.balance) for line in bank.lines] == [(1000, 0, 1500)]
    with pytest.raises(InvalidInput):
        ledger.statement(uow, funded_pool, end, start)


# -- points ------------------------------------------------------------------------------------


def test_points_accounts_post_hold_and_capture_in_whole_points(uow: UnitOfWork) -> None:
    issued = chart.points_issued(uow)
    points = chart.member_points(uow, "mem_1")
    assert (issued.currency, points.currency, points.floor_minor) == (POINTS, POINTS, 0)
    ledger.post(uow, transfer(issued, points, 1_500, kind=chart.Kind.POINTS))
    # Spending points: a hold that is captured in part.
    spent = account(uow, "points_redeemed", type=AccountType.REVENUE, currency=POINTS)
    held = ledger.hold(uow, transfer(points, spent, 1_000))
    with pytest.raises(InsufficientBalance, match="500 PTS available"):
        ledger.post(uow, transfer(points, spent, 501))
    ledger.capture(uow, held.transaction.id, key="pts-cap", amount=800)
    b = ledger.balance(uow, points)
    assert (b.posted, b.pending, b.available) == (
        Money(700, POINTS),
        Money(0, POINTS),
        Money(700, POINTS),
    )
    assert Money.parse("700", POINTS) == b.posted
    with pytest.raises(ValueError, match="more decimal places"):
        Money.parse("1.5", POINTS)
    # Points never mix with money in one balance.
    with pytest.raises(InvalidInput):
        ledger.post(uow, draft(debit(points, 10, "GBP"), credit(spent, 10, "GBP")))


# -- reads -----------------------------------------------------------------------------------------


def test_transactions_are_listed_newest_first_by_account_counterparty_kind_and_status(
    uow: UnitOfWork, cash: Account, funded_pool: Account, cashback: Account
) -> None:
    ledger.post(
        uow,
        draft(debit(funded_pool, 1), credit(cashback, 1), kind="pool.draw", counterparty="mer_A"),
    )
    ledger.post(
        uow,
        draft(debit(funded_pool, 2), credit(cashback, 2), kind="pool.draw", counterparty="mer_B"),
    )
    held = ledger.hold(
        uow,
        draft(debit(funded_pool, 3), credit(cashback, 3), kind="pool.draw", counterparty="mer_A"),
    )

    rows, _ = ledger.list_transactions(uow, account_id=cashback.id)
    assert [t.id for t in rows] == sorted((t.id for t in rows), reverse=True)
    assert len(rows) == 3
    rows, _ = ledger.list_transactions(uow, account_id=cash.id)
    assert [t.idempotency_key for t in rows] == ["fund-pool"]
    rows, _ = ledger.list_transactions(uow, counterparty="mer_A")
    assert len(rows) == 2
    rows, _ = ledger.list_transactions(uow, status=TransactionStatus.PENDING)
    assert [t.id for t in rows] == [held.transaction.id]
    rows, _ = ledger.list_transactions(uow, kind="pool.draw", counterparty="mer_B")
    assert len(rows) == 1
    page, cursor = ledger.list_transactions(uow, limit=2)
    rest, end = ledger.list_transactions(uow, limit=2, cursor=cursor)
    assert (len(page), len(rest), end) == (2, 2, None)
    assert ledger.get_transaction(uow, held.transaction.public_id).id == held.transaction.id
    with pytest.raises(NotFound):
        ledger.get_transaction(uow, "ltx_NOPE")


def test_the_chart_names_each_account_once_whoever_asks(uow: UnitOfWork) -> None:
    assert chart.pool(uow, "cmp_1", "GBP").id == chart.pool(uow, "cmp_1", "GBP").id
    budget = chart.prepaid_budget(uow, "mer_9", "GBP")
    assert (budget.type, budget.floor_minor, budget.owner_kind) == (
        AccountType.LIABILITY,
        0,
        OwnerKind.MERCHANT,
    )
    assert chart.bank_cash(uow, "GBP").code == "bank:-:cash:GBP"
    assert chart.points_issued(uow).type is AccountType.EXPENSE
    count = uow.session.scalar(select(func.count()).select_from(Posting))
    assert count == 0
