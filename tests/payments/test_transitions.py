"""The payment state machine: every state against every operation, as the table says."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import timedelta

import pytest

from beyondbank.core.clock import FixedClock
from beyondbank.core.errors import InvalidTransition
from beyondbank.core.uow import UnitOfWork
from beyondbank.payments.bankcore import BankCoreGateway
from beyondbank.payments.gateway import (
    FINAL,
    TRANSITIONS,
    OperationKind,
    PaymentStatus,
    states_allowing,
)
from tests.payments import factories as pf
from tests.payments.conftest import Shop

S, Op = PaymentStatus, OperationKind


def _in_state(bank: BankCoreGateway, shop: Shop, clock: FixedClock, state: PaymentStatus) -> str:
    """A payment of 2,000 brought to `state` through the gateway itself."""
    if state is S.DECLINED:
        result = bank.authorise(pf.request(shop.account, shop.merchant, 99_999), key="setup")
        assert not result.approved
        return result.payment.id
    pid = bank.authorise(pf.request(shop.account, shop.merchant, 2_000), key="setup").payment.id
    steps: dict[PaymentStatus, Callable[[], object]] = {
        S.AUTHORISED: lambda: None,
        S.CAPTURED: lambda: bank.capture(pid, key="setup-c"),
        S.PARTIALLY_REFUNDED: lambda: (
            bank.capture(pid, key="setup-c"),
            bank.refund(pid, key="setup-r", amount_minor=500),
        ),
        S.REFUNDED: lambda: (bank.capture(pid, key="setup-c"), bank.refund(pid, key="setup-r")),
        S.VOIDED: lambda: bank.void(pid, key="setup-v"),
        S.EXPIRED: lambda: _expire_now(bank, clock),
    }
    steps[state]()
    assert bank.payment(pid).status is state
    return pid


def _expire_now(bank: BankCoreGateway, clock: FixedClock) -> None:
    start = clock.now()
    clock.advance(timedelta(days=8))
    bank.expire_due()
    clock.set(start)


def _run(bank: BankCoreGateway, clock: FixedClock, pid: str, operation: OperationKind) -> None:
    if operation is Op.CAPTURE:
        bank.capture(pid, key="op")
    elif operation is Op.VOID:
        bank.void(pid, key="op")
    elif operation is Op.REFUND:
        bank.refund(pid, key="op", amount_minor=100)
    elif operation is Op.EXPIRE:
        clock.advance(timedelta(days=8))
        bank.expire_due()
    else:  # pragma: no cover
        raise AssertionError(operation)


OPERATIONS = [Op.CAPTURE, Op.VOID, Op.REFUND, Op.EXPIRE]


@pytest.mark.parametrize(
    ("state", "operation"),
    list(itertools.product(list(PaymentStatus), OPERATIONS)),
    ids=lambda v: v.value,
)
def test_every_state_against_every_operation(
    uow: UnitOfWork,
    bank: BankCoreGateway,
    shop: Shop,
    clock: FixedClock,
    state: PaymentStatus,
    operation: OperationKind,
) -> None:
    pid = _in_state(bank, shop, clock, state)
    before = bank.payment(pid)
    rows = pf.ledger_count(uow)
    allowed = TRANSITIONS.get((state, operation))

    if allowed is None and operation is not Op.EXPIRE:
        with pytest.raises(InvalidTransition) as refused:
            _run(bank, clock, pid, operation)
        assert refused.value.status == 409
        assert refused.value.extra["current_status"] == state.value
        assert f"is {state.value}" in refused.value.detail
        assert bank.payment(pid) == before
        assert pf.ledger_count(uow) == rows
        return

    _run(bank, clock, pid, operation)
    after = bank.payment(pid)
    if allowed is None:  # the expiry sweep passes over anything not authorised
        assert after == before
        return
    assert after.status in allowed
    if operation in (Op.CAPTURE, Op.REFUND):
        assert pf.ledger_count(uow) == rows + 1  # the sale, or the return
    else:
        assert pf.ledger_count(uow) == rows  # a released hold posts nothing


def test_the_table_has_one_way_in_and_four_ends() -> None:
    assert states_allowing(Op.CAPTURE) == {S.AUTHORISED}
    assert states_allowing(Op.VOID) == {S.AUTHORISED}
    assert states_allowing(Op.REFUND) == {S.CAPTURED, S.PARTIALLY_REFUNDED}
    assert {S.REFUNDED, S.VOIDED, S.EXPIRED, S.DECLINED} == FINAL
    assert all(targets for targets in TRANSITIONS.values())
