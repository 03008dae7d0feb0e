"""`ledger verify` passes a sound ledger, and finds each broken invariant by the ids involved.

To break the books the tests write rows around the service, as a faulty job or a hand edit
would; where the database itself refuses that (the floor CHECK), the test lifts the
constraint inside its own rolled-back transaction.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Engine, insert, text, update
from typer.testing import CliRunner

from beyondbank.cli import app
from beyondbank.core.clock import FixedClock
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
from tests.ledger.factories import account, transfer


def _books(uow: UnitOfWork) -> tuple[Account, Account, Account]:
    cash = account(uow, "cash")
    pool = account(
        uow, "pool", type=AccountType.LIABILITY, owner_kind=OwnerKind.POOL, owner_ref="p", floor=0
    )
    spend = account(uow, "marketing", type=AccountType.EXPENSE)
    ledger.post(uow, transfer(cash, pool, 1_000, key="fund"))
    held = ledger.hold(uow, transfer(pool, spend, 300, key="hold"))
    ledger.capture(uow, held.transaction.id, key="capture", amount=200)
    ledger.void(uow, ledger.hold(uow, transfer(pool, spend, 100, key="hold-2")).transaction.id)
    ledger.hold(uow, transfer(pool, spend, 50, key="hold-3"))
    posted = ledger.post(uow, transfer(pool, spend, 100, key="draw"))
    ledger.reverse(uow, posted.transaction.id, key="undo", reason="test", amount=40)
    return cash, pool, spend


def _failing(report: verify.Report) -> dict[str, list[str]]:
    return {c.name: [v.message for v in c.violations] for c in report.checks if not c.ok}


def _smuggle(
    uow: UnitOfWork,
    key: str,
    lines: Sequence[tuple[Account, int]],
    *,
    status: TransactionStatus = TransactionStatus.POSTED,
    resolves: int | None = None,
    corrects: int | None = None,
) -> LedgerTransaction:
    """A transaction written straight into the tables, totals and all, bypassing every check."""
    now = uow.clock.now()
    row = LedgerTransaction(
        public_id=f"ltx_{key.upper()}",
        idempotency_key=key,
        fingerprint="0" * 64,
        kind="test",
        status=status,
        effective_at=now,
        created_at=now,
        created_by="test",
        resolves_id=resolves,
        corrects_id=corrects,
        details={},
    )
    uow.session.add(row)
    uow.session.flush()
    pending = status is TransactionStatus.PENDING
    uow.session.execute(
        insert(Posting),
        [
            {
                "transaction_id": row.id,
                "account_id": acc.id,
                "currency": acc.currency,
                "amount_minor": amount,
                "pending": pending,
                "effective_at": now,
            }
            for acc, amount in lines
        ],
    )
    debit, credit = (
        ("debits_pending", "credits_pending") if pending else ("debits_posted", "credits_posted")
    )
    for acc, amount in lines:
        column = debit if amount > 0 else credit
        uow.session.execute(
            update(Account)
            .where(Account.id == acc.id)
            .values({column: getattr(Account, column) + abs(amount)})
        )
    return row


def test_a_sound_ledger_passes_every_check(uow: UnitOfWork) -> None:
    _books(uow)
    report = verify.run(uow.session)
    assert report.ok, _failing(report)
    checked = {c.name: c.checked for c in report.checks}
    assert checked == {
        "transaction-balance": 7,
        "two-postings": 7,
        "ledger-balance": 1,
        "account-totals": 3,
        "unique-keys": 7,
        "holds": 3,
        "floors": 1,
        "corrections": 1,
        "posting-flags": 14,
    }


def test_stored_totals_that_drift_from_the_postings_are_named(uow: UnitOfWork) -> None:
    _cash, pool, _spend = _books(uow)
    uow.session.execute(
        update(Account)
        .where(Account.id == pool.id)
        .values(credits_posted=Account.credits_posted + 1)
    )
    failing = _failing(verify.run(uow.session))
    assert list(failing) == ["account-totals"]
    assert pool.public_id in failing["account-totals"][0]


def test_an_unbalanced_transaction_is_named(uow: UnitOfWork) -> None:
    cash, _pool, spend = _books(uow)
    _smuggle(uow, "lopsided", [(spend, 500), (cash, -400)])
    failing = _failing(verify.run(uow.session))
    assert set(failing) == {"transaction-balance", "ledger-balance"}
    assert failing["transaction-balance"] == ["ltx_LOPSIDED: GBP postings net to 100, not 0"]


def test_a_transaction_with_one_posting_is_named(uow: UnitOfWork, is_postgres: bool) -> None:
    cash, _pool, _spend = _books(uow)
    _smuggle(uow, "lonely", [(cash, 10), (cash, -10)])
    # Postings cannot be deleted: lift the trigger for this rolled-back transaction only.
    if is_postgres:
        uow.session.execute(text("DROP TRIGGER ledger_postings_immutable ON ledger_postings"))
    else:
        uow.session.execute(text("DROP TRIGGER ledger_postings_no_delete"))
    lonely = uow.session.scalar(
        text("SELECT id FROM ledger_transactions WHERE idempotency_key = 'lonely'")
    )
    uow.session.execute(
        text(
            "DELETE FROM ledger_postings WHERE id = (SELECT max(id) FROM ledger_postings WHERE transaction_id = :t)"
        ),
        {"t": lonely},
    )
    failing = _failing(verify.run(uow.session))
    assert failing["two-postings"] == ["ltx_LONELY has 1 posting(s)"]


def test_a_hold_resolved_while_still_pending_and_an_over_capture_are_named(uow: UnitOfWork) -> None:
    _cash, pool, spend = _books(uow)
    held = _smuggle(uow, "held", [(spend, 30), (pool, -30)], status=TransactionStatus.PENDING)
    _smuggle(uow, "grab", [(spend, 80), (pool, -80)], resolves=held.id)
    failing = _failing(verify.run(uow.session))
    assert "hold ltx_HELD is pending and resolved 1 time(s)" in failing["holds"]
    assert "capture ltx_GRAB posts 80 of hold ltx_HELD, which held 30" in failing["holds"]
    # The pending hold's totals are still counted as pending though it was "resolved":
    assert "account-totals" not in failing


def test_a_correction_larger_than_its_original_is_named(uow: UnitOfWork) -> None:
    _cash, pool, spend = _books(uow)
    draw = ledger.transaction_by_key(uow, "draw")
    assert draw is not None
    # 40 of the draw's 100 was reversed already; another 150 "correcting" it is too much.
    _smuggle(uow, "overdo", [(spend, 150), (pool, -150)], corrects=draw.id)
    failing = _failing(verify.run(uow.session))
    assert failing["corrections"] == [
        f"{draw.public_id} (posted) posted 100 and is corrected by 190"
    ]


def test_an_account_below_its_floor_is_named(uow: UnitOfWork, is_postgres: bool) -> None:
    cash, pool, _spend = _books(uow)
    # The CHECK constraint refuses this; lift it for this transaction only.
    if is_postgres:
        uow.session.execute(
            text("ALTER TABLE ledger_accounts DROP CONSTRAINT ck_ledger_accounts_floor")
        )
    else:
        uow.session.execute(text("PRAGMA ignore_check_constraints = ON"))
    try:
        available = ledger.balance(uow, pool).available.amount
        _smuggle(uow, "overdraw", [(pool, 5_000), (cash, -5_000)])
        failing = _failing(verify.run(uow.session))
    finally:
        if not is_postgres:
            uow.session.execute(text("PRAGMA ignore_check_constraints = OFF"))
    assert available == 690
    assert failing["floors"] == [
        f"{pool.public_id} ({pool.code}): available -4310 is below its floor 0"
    ]


def test_the_command_prints_every_check_and_exits_0_on_sound_books(
    cli_database: Engine, clock: FixedClock
) -> None:
    with UnitOfWork(make_session_factory(cli_database), clock) as uow:
        _books(uow)
        uow.commit()

    result = CliRunner().invoke(app, ["ledger", "verify"])

    assert result.exit_code == 0, result.output
    assert "9 checks" in result.output
    assert "transaction-balance" in result.output
    assert "floors" in result.output
    assert "the ledger is sound" in result.output


def test_the_command_names_each_violation_and_exits_1(
    cli_database: Engine, clock: FixedClock
) -> None:
    with UnitOfWork(make_session_factory(cli_database), clock) as uow:
        _cash, pool, _spend = _books(uow)
        uow.session.execute(
            update(Account)
            .where(Account.id == pool.id)
            .values(debits_posted=Account.debits_posted + 7)
        )
        uow.commit()

    result = CliRunner().invoke(app, ["ledger", "verify"])

    assert result.exit_code == 1
    assert f"account-totals: {pool.public_id}" in result.output
    assert "1 violation(s)" in result.output
