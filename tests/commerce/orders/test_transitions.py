"""The order state machine: random sequences of transitions against the table."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.orm.attributes import set_committed_value

from beyondbank.commerce.models import Order, OrderEvent, OrderStatus
from beyondbank.commerce.orders import transitions as machine
from beyondbank.core.errors import InvalidTransition
from beyondbank.core.ids import new_public_id
from beyondbank.core.uow import UnitOfWork
from tests import factories as f

S = OrderStatus


def test_the_table_is_the_documented_lifecycle() -> None:
    happy = [S.PENDING_PAYMENT, S.PAID, S.FULFILLING, S.SHIPPED, S.DELIVERED, S.COMPLETED]
    assert all(machine.allowed(a, b) for a, b in itertools.pairwise(happy))
    returns = [S.DELIVERED, S.RETURN_REQUESTED, S.RETURNED, S.REFUNDED]
    assert all(machine.allowed(a, b) for a, b in itertools.pairwise(returns))
    assert {s for s in S if machine.allowed(s, S.CANCELLED)} == {S.PENDING_PAYMENT, S.PAID}
    assert {S.CANCELLED, S.REFUNDED} == machine.FINAL
    assert not machine.allowed(S.SHIPPED, S.CANCELLED)


def _order(uow: UnitOfWork) -> Order:
    partner = f.make_partner(uow)
    customer = f.make_customer(uow)
    now = uow.clock.now()
    order = Order(
        public_id=new_public_id("ord"),
        customer_id=customer.id,
        partner_id=partner.id,
        status=S.PENDING_PAYMENT,
        currency="GBP",
        goods_minor=1_000,
        saving_minor=0,
        total_minor=1_000,
        placed_at=now,
        updated_at=now,
    )
    uow.session.add(order)
    uow.session.flush()
    return order


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(st.lists(st.sampled_from(list(S)), max_size=12))
def test_only_legal_transitions_succeed(uow: UnitOfWork, targets: list[OrderStatus]) -> None:
    order = _order(uow)
    expected = S.PENDING_PAYMENT
    moves = 0
    for target in targets:
        if machine.allowed(expected, target):
            machine.move(uow, order, target, actor="test")
            expected = target
            moves += 1
        else:
            with pytest.raises(InvalidTransition) as refused:
                machine.move(uow, order, target, actor="test")
            assert refused.value.status == 409
            assert refused.value.extra["current_status"] == expected.value
            assert f"is {expected.value}" in refused.value.detail
        uow.session.refresh(order)
        assert order.status is expected
    events = uow.session.query(OrderEvent).filter(OrderEvent.order_id == order.id).count()
    assert events == moves


def test_a_stale_order_cannot_move_twice(uow: UnitOfWork) -> None:
    """Two movers read the order pending; the second one's conditional UPDATE finds it paid."""
    order = _order(uow)
    machine.move(uow, order, S.PAID, actor="first")
    # What the second mover read, in memory only (not written back).
    set_committed_value(order, "status", S.PENDING_PAYMENT)
    with pytest.raises(InvalidTransition) as refused:
        machine.move(uow, order, S.CANCELLED, actor="second")
    assert refused.value.extra["current_status"] == "paid"
