"""The bank core under concurrency, on PostgreSQL with real threads: the database decides."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from beyondbank.core.authz import SYSTEM
from beyondbank.core.clock import FixedClock
from beyondbank.core.errors import Problem
from beyondbank.core.uow import UnitOfWork, make_session_factory
from beyondbank.ledger import chart
from beyondbank.ledger.models import Account, LedgerTransaction, OwnerKind
from beyondbank.payments import bankcore, service
from beyondbank.payments.bankcore import BankCoreGateway
from beyondbank.payments.gateway import OperationKind, PaymentResult, PaymentStatus
from beyondbank.payments.models import DailyUsage, Payment, PaymentOperation
from tests import factories as f
from tests import races
from tests.payments import factories as pf

THREADS = 20
pytestmark = pytest.mark.postgres


@dataclass
class Scene:
    bank: BankCoreGateway
    account_id: str
    account_pk: int
    ledger_account_pk: int
    merchant_id: str


def _scene(engine: Engine, clock: FixedClock, **account: Any) -> Scene:
    factory = make_session_factory(engine)
    with UnitOfWork(factory, clock) as uow:
        made = pf.make_account(uow, **account)
        merchant = f.make_merchant(uow)
        uow.commit()
        return Scene(
            BankCoreGateway(factory, clock),
            made.public_id,
            made.id,
            made.ledger_account_id,
            merchant.public_id,
        )


def _race(count: int, attempt: Callable[[int], PaymentResult]) -> list[PaymentResult | Problem]:
    return races.together(count, attempt)


def _read(engine: Engine, clock: FixedClock, query: Callable[[UnitOfWork], Any]) -> Any:
    with UnitOfWork(make_session_factory(engine), clock) as uow:
        return query(uow)


def _deposit(engine: Engine, clock: FixedClock, scene: Scene) -> tuple[int, int, int, int]:
    def read(uow: UnitOfWork) -> tuple[int, int, int, int]:
        book = uow.session.get_one(Account, scene.ledger_account_pk)
        return book.balance_minor, book.pending_minor, book.available_minor, book.floor_minor or 0

    result: tuple[int, int, int, int] = _read(engine, clock, read)
    return result


def test_twenty_authorisations_against_room_for_five(
    committing_engine: Engine, clock: FixedClock
) -> None:
    scene = _scene(committing_engine, clock, opening=5_000)
    results = _race(
        THREADS,
        lambda i: scene.bank.authorise(
            pf.request(scene.account_id, scene.merchant_id, 1_000), key=f"race-{i}"
        ),
    )
    assert not [r for r in results if isinstance(r, Problem)]
    outcomes = Counter(
        r.decline_code.value if r.decline_code else "approved"
        for r in results
        if isinstance(r, PaymentResult)
    )
    assert outcomes == Counter({"approved": 5, "insufficient_funds": 15})
    posted, pending, available, floor = _deposit(committing_engine, clock, scene)
    assert (posted, pending, available) == (5_000, 5_000, 0)
    assert available >= floor
    statuses = _read(
        committing_engine,
        clock,
        lambda uow: Counter(uow.session.scalars(select(Payment.status))),
    )
    assert statuses == Counter({PaymentStatus.AUTHORISED: 5, PaymentStatus.DECLINED: 15})
    holds = _read(
        committing_engine,
        clock,
        lambda uow: uow.session.scalar(
            select(func.count()).where(LedgerTransaction.kind == "sale")
        ),
    )
    assert holds == 5


def test_an_overdraft_is_the_floor_under_a_race(
    committing_engine: Engine, clock: FixedClock
) -> None:
    scene = _scene(committing_engine, clock, opening=2_000, overdraft=3_000)
    results = _race(
        THREADS,
        lambda i: scene.bank.authorise(
            pf.request(scene.account_id, scene.merchant_id, 1_000), key=f"od-{i}"
        ),
    )
    approved = [r for r in results if isinstance(r, PaymentResult) and r.approved]
    assert len(approved) == 5
    posted, pending, available, floor = _deposit(committing_engine, clock, scene)
    assert (posted, pending, available, floor) == (2_000, 5_000, -3_000, -3_000)


def test_twenty_authorisations_against_a_daily_limit_for_five(
    committing_engine: Engine, clock: FixedClock
) -> None:
    scene = _scene(committing_engine, clock, opening=100_000, daily=5_000)
    results = _race(
        THREADS,
        lambda i: scene.bank.authorise(
            pf.request(scene.account_id, scene.merchant_id, 1_000), key=f"day-{i}"
        ),
    )
    outcomes = Counter(
        r.decline_code.value if r.decline_code else "approved"
        for r in results
        if isinstance(r, PaymentResult)
    )
    assert outcomes == Counter({"approved": 5, "daily_limit": 15})
    used = _read(
        committing_engine,
        clock,
        lambda uow: uow.session.scalars(
            select(DailyUsage.used_minor).where(DailyUsage.deposit_account_id == scene.account_pk)
        ).one(),
    )
    assert used == 5_000
    assert _deposit(committing_engine, clock, scene)[1] == 5_000


def test_concurrent_captures_of_one_payment_take_it_once(
    committing_engine: Engine, clock: FixedClock
) -> None:
    scene = _scene(committing_engine, clock, opening=10_000)
    pid = scene.bank.authorise(
        pf.request(scene.account_id, scene.merchant_id, 4_000), key="to-capture"
    ).payment.id
    results = _race(THREADS, lambda i: scene.bank.capture(pid, key=f"capture-{i}"))
    captured = [r for r in results if isinstance(r, PaymentResult)]
    refused = Counter(
        (r.status, r.extra.get("current_status")) for r in results if isinstance(r, Problem)
    )
    assert len(captured) == 1
    assert refused == Counter({(409, "captured"): THREADS - 1})
    assert _deposit(committing_engine, clock, scene)[:3] == (6_000, 0, 6_000)
    operations = _read(
        committing_engine,
        clock,
        lambda uow: Counter(
            kind.value for kind in uow.session.scalars(select(PaymentOperation.kind))
        ),
    )
    assert operations == Counter({"authorise": 1, "capture": 1})


def test_concurrent_refunds_never_exceed_the_capture(
    committing_engine: Engine, clock: FixedClock
) -> None:
    scene = _scene(committing_engine, clock, opening=10_000)
    pid = scene.bank.authorise(
        pf.request(scene.account_id, scene.merchant_id, 7_000), key="to-refund"
    ).payment.id
    scene.bank.capture(pid, key="captured")
    results = _race(
        THREADS, lambda i: scene.bank.refund(pid, key=f"refund-{i}", amount_minor=1_000)
    )
    refunded = [r for r in results if isinstance(r, PaymentResult)]
    refused = [r for r in results if isinstance(r, Problem)]
    assert len(refunded) == 7
    assert {r.status for r in refused} == {409}
    payment = scene.bank.payment(pid)
    assert (payment.status, payment.refunded_minor) == (PaymentStatus.REFUNDED, 7_000)
    assert _deposit(committing_engine, clock, scene)[:3] == (10_000, 0, 10_000)
    returns = _read(
        committing_engine,
        clock,
        lambda uow: uow.session.scalar(
            select(func.count()).where(LedgerTransaction.kind == "return")
        ),
    )
    assert returns == 7


def test_one_key_sent_twenty_times_at_once_pays_once(
    committing_engine: Engine, clock: FixedClock
) -> None:
    scene = _scene(committing_engine, clock, opening=10_000)
    request = pf.request(scene.account_id, scene.merchant_id, 1_000)
    results = _race(THREADS, lambda i: scene.bank.authorise(request, key="the-one-key"))
    answers = [r for r in results if isinstance(r, PaymentResult)]
    assert len(answers) == THREADS, [r for r in results if isinstance(r, Problem)]
    assert len({r.payment.id for r in answers}) == 1
    assert sum(1 for r in answers if not r.replayed) == 1
    assert _deposit(committing_engine, clock, scene)[:3] == (10_000, 1_000, 9_000)


def test_one_declining_key_sent_twenty_times_at_once_declines_once(
    committing_engine: Engine, clock: FixedClock
) -> None:
    scene = _scene(committing_engine, clock, opening=500)
    request = pf.request(scene.account_id, scene.merchant_id, 1_000)
    results = _race(THREADS, lambda i: scene.bank.authorise(request, key="no-funds"))
    answers = [r for r in results if isinstance(r, PaymentResult)]
    assert len(answers) == THREADS, [r for r in results if isinstance(r, Problem)]
    assert {r.payment.id for r in answers} == {answers[0].payment.id}
    assert {r.approved for r in answers} == {False}
    payments = _read(
        committing_engine, clock, lambda uow: uow.session.scalar(select(func.count(Payment.id)))
    )
    assert payments == 1


def test_accounts_opened_at_once_get_distinct_sequential_numbers(
    committing_engine: Engine, clock: FixedClock
) -> None:
    factory = make_session_factory(committing_engine)
    with UnitOfWork(factory, clock) as uow:
        customers = [f.make_customer(uow).public_id for _ in range(10)]
        uow.commit()
    barrier = threading.Barrier(len(customers))
    opened: list[tuple[int, str] | Exception] = []

    def run(customer_id: str) -> None:
        barrier.wait()
        try:
            with UnitOfWork(factory, clock) as uow:
                account = service.open_account(
                    uow,
                    SYSTEM,
                    service.OpenAccount(customer_id, "GBP", opening_balance_minor=100),
                )
                opened.append((account.account_number, account.iban))
        except Exception as exc:
            opened.append(exc)

    threads = [threading.Thread(target=run, args=(c,)) for c in customers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert all(isinstance(o, tuple) for o in opened), opened
    numbers = sorted(o[0] for o in opened if isinstance(o, tuple))
    assert numbers == list(range(1, 11))
    assert len({o[1] for o in opened if isinstance(o, tuple)}) == 10


def test_authorisations_captures_and_voids_of_one_account_at_once_never_deadlock(
    committing_engine: Engine, clock: FixedClock
) -> None:
    """An authorisation takes the day's usage row and then the ledger's accounts; a capture or
    a void gives back usage and moves the same accounts. They take the locks in one order, so
    however they interleave, none dies in a deadlock: every call is answered."""
    scene = _scene(committing_engine, clock, opening=1_000_000)
    held = [
        scene.bank.authorise(
            pf.request(scene.account_id, scene.merchant_id, 1_000), key=f"held-{i}"
        )
        for i in range(12)
    ]
    assert all(h.approved for h in held)

    def attempt(i: int) -> PaymentResult:
        if i % 3 == 0:
            return scene.bank.authorise(
                pf.request(scene.account_id, scene.merchant_id, 1_000), key=f"new-{i}"
            )
        payment = held[i % len(held)].payment.id
        if i % 3 == 1:
            return scene.bank.capture(payment, amount_minor=600, key=f"capture-{i}")
        return scene.bank.void(payment, key=f"void-{i}")

    for _ in range(3):
        results = _race(THREADS, attempt)
        # Refusals (a payment already captured or voided) are answers; a deadlock would have
        # been raised as a database error and failed the race.
        assert all(isinstance(r, PaymentResult | Problem) for r in results)
        held = [
            scene.bank.authorise(
                pf.request(scene.account_id, scene.merchant_id, 1_000), key=f"again-{_}-{i}"
            )
            for i in range(12)
        ]
    usage = _read(
        committing_engine,
        clock,
        lambda uow: uow.session.scalars(select(DailyUsage.used_minor)).all(),
    )
    captured = _read(
        committing_engine,
        clock,
        lambda uow: uow.session.scalars(
            select(Payment.captured_minor).where(Payment.status == PaymentStatus.CAPTURED)
        ).all(),
    )
    authorised = _read(
        committing_engine,
        clock,
        lambda uow: uow.session.scalars(
            select(Payment.amount_minor).where(Payment.status == PaymentStatus.AUTHORISED)
        ).all(),
    )
    # The day's usage is what is still held plus what was taken: nothing given back twice.
    assert usage == [sum(authorised) + sum(captured)]


def test_authorisations_to_one_payee_in_one_batch_each_as_alone(
    committing_engine: Engine, clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Eleven accounts pay one merchant at once; their holds go in one batch (the first batch,
    of the first call, is held until the others wait behind it). One account cannot cover its
    payment: that hold alone is undone in the batch, and its general path declines it."""
    factory = make_session_factory(committing_engine)
    with UnitOfWork(factory, clock) as uow:
        merchant = f.make_merchant(uow).public_id
        accounts = [pf.make_account(uow, opening=500 if i == 7 else 5_000) for i in range(11)]
        uow.commit()
    bank = BankCoreGateway(factory, clock)
    # The first payment opens the merchant's payable account (the general path does that).
    bank.authorise(pf.request(accounts[0].public_id, merchant, 1_000), key="opens-payable")
    sizes: list[int] = []
    holds = bankcore._holds

    def held(connection: Any, items: list[dict[str, Any]]) -> list[Any]:
        if not sizes:
            batches = bankcore._batches[connection.engine]
            deadline = time.monotonic() + 20
            while len(batches._waiting) < len(accounts) - 1 and time.monotonic() < deadline:
                time.sleep(0.005)
        sizes.append(len(items))
        return holds(connection, items)

    monkeypatch.setattr(bankcore, "_holds", held)
    results = _race(
        len(accounts),
        lambda i: bank.authorise(
            pf.request(accounts[i].public_id, merchant, 1_000), key=f"batched-{i}"
        ),
    )
    assert sizes[:2] == [1, len(accounts) - 1]
    outcomes = Counter(
        r.decline_code.value if r.decline_code else "approved"
        for r in results
        if isinstance(r, PaymentResult)
    )
    assert outcomes == Counter({"approved": 10, "insufficient_funds": 1})

    def books(uow: UnitOfWork) -> tuple[int, list[int], int]:
        payable = chart.payable(uow, OwnerKind.MERCHANT, merchant, "GBP")
        deposits = [uow.session.get_one(Account, a.ledger_account_id) for a in accounts]
        return (
            payable.credits_pending,
            [d.debits_pending for d in deposits],
            int(uow.session.scalar(select(func.count()).select_from(PaymentOperation)) or 0),
        )

    pending, held_by_account, operations = _read(committing_engine, clock, books)
    assert pending == 11_000  # the first payment's and the ten approved in the batch
    assert held_by_account == [2_000] + [1_000] * 6 + [0] + [1_000] * 3
    assert operations == 12  # each call once, the decline recorded by its general path


def test_a_key_in_flight_on_the_general_path_is_claimed_after_the_payees_account(
    committing_engine: Engine, clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fast-path batch locks the payee's payable account and then claims its calls' keys. A
    general-path authorisation reusing one of those keys must not hold the key while it waits
    for that account, or each waits for the other (PostgreSQL would abort one). Here a
    transaction plays the batch: it locks the payable account, lets the general path run into
    it, then claims the key; it must get the key at once."""
    factory = make_session_factory(committing_engine)
    with UnitOfWork(factory, clock) as uow:
        merchant = f.make_merchant(uow).public_id
        payer, other = pf.make_account(uow), pf.make_account(uow)
        uow.commit()
    bank = BankCoreGateway(factory, clock)
    opened = bank.authorise(pf.request(other.public_id, merchant, 1_000), key="opens-payable")
    monkeypatch.setattr(BankCoreGateway, "_authorise_on_server", lambda *a, **k: None)
    answers: list[PaymentResult | BaseException] = []

    def general_path() -> None:
        try:
            answers.append(bank.authorise(pf.request(payer.public_id, merchant, 700), key="K"))
        except BaseException as exc:  # a deadlock would surface here or in the batch
            answers.append(exc)

    with UnitOfWork(factory, clock) as batch:
        payable = chart.payable(batch, OwnerKind.MERCHANT, merchant, "GBP")
        batch.session.scalars(select(Account).where(Account.id == payable.id).with_for_update())
        caller = threading.Thread(target=general_path)
        caller.start()
        time.sleep(1.0)  # the general path has reached the payable account and waits on it
        payment = batch.session.scalars(
            select(Payment).where(Payment.public_id == opened.payment.id)
        ).one()
        started = time.monotonic()
        batch.session.add(
            bankcore._new_operation(
                payment, OperationKind.AUTHORISE, "K", "fp", SYSTEM, clock.now()
            )
        )
        batch.session.flush()  # before the fix: waits on the general path's key, a deadlock
        claimed_in = time.monotonic() - started
        batch.rollback()  # the batch's hold for this key is undone; the general path goes on
    caller.join(timeout=30)

    assert claimed_in < 0.5
    assert len(answers) == 1
    answer = answers[0]
    assert isinstance(answer, PaymentResult), answer
    assert answer.approved
