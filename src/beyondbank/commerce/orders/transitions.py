"""The order state machine: an explicit transition table, and the one conditional UPDATE that moves
an order along it (so two concurrent moves cannot both succeed)."""

from __future__ import annotations

from sqlalchemy import update

from beyondbank.commerce.models import Order, OrderEvent, OrderStatus
from beyondbank.core.errors import InvalidTransition
from beyondbank.core.i18n import _
from beyondbank.core.uow import UnitOfWork

S = OrderStatus

# from → the states it may move to. `completed → returned` is a return the partner accepts after
# the window (faulty goods): the commission already accrued is then clawed back pro rata.
# `returned → delivered` is a partial return before completion, once its refund is made: the
# units kept are delivered goods again and complete after the return window (only
# `service.confirm_returned` takes it: see `NOT_THE_PARTNERS`).
TRANSITIONS: dict[OrderStatus, frozenset[OrderStatus]] = {
    S.PENDING_PAYMENT: frozenset({S.PAID, S.CANCELLED}),
    S.PAID: frozenset({S.FULFILLING, S.CANCELLED}),
    S.FULFILLING: frozenset({S.SHIPPED}),
    S.SHIPPED: frozenset({S.DELIVERED}),
    S.DELIVERED: frozenset({S.COMPLETED, S.RETURN_REQUESTED}),
    S.RETURN_REQUESTED: frozenset({S.RETURNED}),
    S.RETURNED: frozenset({S.REFUNDED, S.DELIVERED}),
    S.COMPLETED: frozenset({S.RETURNED}),
    S.CANCELLED: frozenset(),
    S.REFUNDED: frozenset(),
}
FINAL = frozenset(s for s, targets in TRANSITIONS.items() if not targets)
# Moves the orders service makes as the end of another (the refund of a partial return), never
# one that a partner asks for by its target.
NOT_THE_PARTNERS = frozenset({(S.RETURNED, S.DELIVERED)})


def allowed(current: OrderStatus, target: OrderStatus) -> bool:
    return target in TRANSITIONS[current]


def partner_may(current: OrderStatus, target: OrderStatus) -> bool:
    """Whether a partner may ask for `target` from `current` (the portal's buttons, the API's
    moves): what the table allows, less `NOT_THE_PARTNERS`."""
    return allowed(current, target) and (current, target) not in NOT_THE_PARTNERS


def refuse(current: OrderStatus, target: OrderStatus, order_id: str) -> InvalidTransition:
    """409 naming the current state and where it may go from there."""
    options = sorted(s.value for s in TRANSITIONS[current])
    hint = (
        " "
        + _(
            "From %(status)s it can go to: %(options)s.",
            status=current.value,
            options=", ".join(options),
        )
        if options
        else ""
    )
    return InvalidTransition(
        _(
            "Order %(order_id)s is %(current)s: it cannot become %(target)s.%(hint)s",
            order_id=order_id,
            current=current.value,
            target=target.value,
            hint=hint,
        ),
        extra={
            "current_status": current.value,
            "requested_status": target.value,
            "order_id": order_id,
        },
    )


def check(order: Order, target: OrderStatus) -> None:
    if not allowed(order.status, target):
        raise refuse(order.status, target, order.public_id)


def move(
    uow: UnitOfWork,
    order: Order,
    target: OrderStatus,
    *,
    actor: str,
    note: str | None = None,
    **values: object,
) -> None:
    """Move the order from the status it was read in to `target`, by a conditional UPDATE; a
    concurrent move that got there first makes this one a 409 naming the state it left."""
    check(order, target)
    now = uow.clock.now()
    before = order.status
    moved = uow.session.scalars(  # RETURNING refreshes the order: no second read
        update(Order)
        .where(Order.id == order.id, Order.status == before)
        .values(status=target, updated_at=now, **values)
        .returning(Order)
        .execution_options(synchronize_session=False, populate_existing=True)
    ).one_or_none()
    if moved is None:
        uow.session.refresh(order)
        raise refuse(order.status, target, order.public_id)
    uow.session.add(
        OrderEvent(
            order_id=order.id,
            from_status=before.value,
            to_status=target.value,
            at=now,
            actor=actor[:40],
            note=note,
        )
    )
