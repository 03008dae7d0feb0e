"""Any sequence of refunds: never more than captured in total, and the books always agree."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from beyondbank.alliance.models import Merchant
from beyondbank.core.errors import Conflict, InvalidTransition
from beyondbank.core.uow import UnitOfWork
from beyondbank.payments.bankcore import BankCoreGateway
from beyondbank.payments.gateway import PaymentStatus
from tests import factories as f
from tests.payments import factories as pf

OPENING = 50_000
_keys = itertools.count()

# A refund asks for an amount, or (None) for whatever is left.
refunds = st.lists(st.one_of(st.none(), st.integers(1, 12_000)), max_size=8)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    authorised=st.integers(1, 10_000),
    capture_share=st.floats(0.01, 1.0),
    asks=refunds,
)
def test_refund_sequences_never_exceed_the_capture(
    uow: UnitOfWork,
    bank: BankCoreGateway,
    authorised: int,
    capture_share: float,
    asks: list[int | None],
) -> None:
    merchant: Merchant = f.make_merchant(uow)
    account = pf.make_account(uow, opening=OPENING)
    captured = max(1, int(authorised * capture_share))
    run = next(_keys)
    pid = bank.authorise(pf.request(account, merchant, authorised), key=f"p{run}").payment.id
    bank.capture(pid, key=f"c{run}", amount_minor=captured)

    refunded = 0
    for i, ask in enumerate(asks):
        left = captured - refunded
        key = f"r{run}-{i}"
        if left == 0:
            with pytest.raises(InvalidTransition) as done:
                bank.refund(pid, key=key, amount_minor=ask)
            assert done.value.extra["current_status"] == "refunded"
        elif ask is not None and ask > left:
            with pytest.raises(Conflict) as beyond:
                bank.refund(pid, key=key, amount_minor=ask)
            assert type(beyond.value) is Conflict
            assert beyond.value.extra["refundable_minor"] == left
        else:
            taken = left if ask is None else ask
            result = bank.refund(pid, key=key, amount_minor=ask)
            assert result.operation.amount_minor == taken
            refunded += taken
        payment = bank.payment(pid)
        assert payment.refunded_minor == refunded <= payment.captured_minor == captured
        expected = (
            PaymentStatus.CAPTURED
            if refunded == 0
            else PaymentStatus.REFUNDED
            if refunded == captured
            else PaymentStatus.PARTIALLY_REFUNDED
        )
        assert payment.status is expected
        assert pf.deposit_figures(uow, account) == pf.Figures(
            OPENING - captured + refunded, 0, OPENING - captured + refunded
        )
        assert pf.payable_figures(uow, merchant.public_id).posted == captured - refunded
