"""Closing group buys: settle each campaign once, then refund through the bank, exactly once.

Two phases, so that no lock is ever held across a call to the payment gateway:

1. *Settle* (one transaction per campaign): lock the campaign row, count the units of its paid
   orders, fix the outcome (succeeded at or above the minimum, else failed; or cancelled) and
   the final tier, and write one `CampaignRefund` row per order (unique per campaign and order,
   so settling again finds the rows and adds none), the webhook event and the audit record.
2. *Refund* (after the commit, outside any lock): each pending refund row goes to the gateway
   with an idempotency key derived from the row, so a crash between the bank's answer and our
   commit is repaired by the next run replaying the same key: the customer is refunded once.
   A gateway error leaves the row pending with its `error`, and the run goes on to the next.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import OperationalError

from beyondbank.commerce.groupbuy import service
from beyondbank.commerce.groupbuy import tiers as pricing
from beyondbank.commerce.models import (
    CampaignRefund,
    CampaignStatus,
    GroupBuy,
    Order,
    OrderEvent,
    OrderLine,
    OrderStatus,
    Product,
)
from beyondbank.commerce.webhooks.outbox import emit
from beyondbank.core import audit
from beyondbank.core.authz import SYSTEM, Principal
from beyondbank.core.errors import Conflict, InvalidTransition, Problem
from beyondbank.core.i18n import _
from beyondbank.core.uow import UnitOfWork
from beyondbank.payments.gateway import PaymentGateway

S = CampaignStatus
O = OrderStatus  # noqa: E741
# Orders whose units count at the close: paid and not given back. A pending order's payment is
# not captured yet, a cancelled or returned one has been (or will be) refunded by the orders.
COUNTED = (O.PAID, O.FULFILLING, O.SHIPPED, O.DELIVERED, O.COMPLETED, O.RETURN_REQUESTED)
# A failed or cancelled campaign's orders that nobody has shipped yet are cancelled with it.
CANCELLABLE = (O.PAID, O.FULFILLING)

REASONS = {
    S.SUCCEEDED: "tier_difference",
    S.FAILED: "campaign_failed",
    S.CANCELLED: "campaign_cancelled",
}
ACTOR_LABEL = "system:group-buy"


@dataclass(frozen=True, slots=True)
class Settled:
    """What settling a campaign decided."""

    group_buy_id: str
    status: CampaignStatus
    units: int
    orders: int
    final_unit_minor: int | None
    refund_minor: int  # the total of its refund rows
    newly: bool  # False: it was settled before, and this is what that settled


@dataclass(slots=True)
class RefundRun:
    """What one pass over the pending refunds did."""

    refunded: int = 0
    refunded_minor: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class CloseRun:
    opened: int
    settled: list[Settled]
    refunds: RefundRun
    deferred: list[str] = field(default_factory=list)  # why a due campaign waits for a later run
    late: int = 0  # orders paid after their campaign failed or was cancelled, now refunded too


# -- the job -------------------------------------------------------------------------------------


def close_due(uow: UnitOfWork, gateway: PaymentGateway, actor: Principal = SYSTEM) -> CloseRun:
    """The scheduled job: record opened windows, settle every campaign past its close, refund
    whatever is pending (including what an earlier run could not). Safe to run any time, twice,
    or concurrently with itself."""
    opened = service.open_due(uow)
    now = uow.clock.now()
    due = uow.session.scalars(
        select(GroupBuy.id)
        .where(GroupBuy.status.in_(service.JOINABLE), GroupBuy.closes_at <= now)
        .order_by(GroupBuy.id)
    ).all()
    uow.commit()
    settled: list[Settled] = []
    deferred: list[str] = []
    for campaign_id in due:
        try:
            settled.append(settle(uow, campaign_id, actor, action="close"))
        except Problem as problem:  # this campaign waits; the others close
            uow.rollback()
            deferred.append(problem.detail)
    late = catch_up(uow)
    return CloseRun(opened, settled, refund_pending(uow, gateway), deferred, late)


def close_now(
    uow: UnitOfWork, gateway: PaymentGateway, actor: Principal, public_id: str
) -> tuple[Settled, RefundRun]:
    """Close one campaign whose window has ended (staff, from the API), then refund it. Closing a
    closed campaign settles nothing again and retries its pending refunds."""
    campaign = service.get_campaign(uow, actor, public_id)
    settled = settle(uow, campaign.id, actor, action="close")
    return settled, refund_pending(uow, gateway, campaign_id=campaign.id)


def cancel(
    uow: UnitOfWork, gateway: PaymentGateway, actor: Principal, public_id: str
) -> tuple[Settled, RefundRun]:
    """Withdraw a campaign before it closes: every paid order is refunded in full. Cancelling a
    cancelled campaign answers what the first cancel settled (and retries pending refunds);
    cancelling a closed one is a 409."""
    campaign = service.get_campaign(uow, actor, public_id)
    settled = settle(uow, campaign.id, actor, action="cancel")
    return settled, refund_pending(uow, gateway, campaign_id=campaign.id)


# -- phase 1: settle ----------------------------------------------------------------------------


def settle(uow: UnitOfWork, campaign_id: int, actor: Principal, *, action: str) -> Settled:
    """Decide a campaign's outcome and its refunds, once, and commit.

    Lock order: the campaign row, then its orders by id (the checkout touches the campaign row
    first too). A campaign settled before is answered from its refund rows, unchanged."""
    now = uow.clock.now()
    campaign = _lock(uow, campaign_id)
    if campaign.status in service.FINAL:
        if action == "cancel" and campaign.status is not S.CANCELLED:
            uow.rollback()
            service.next_status(campaign, "cancel")  # a closed campaign cannot be cancelled: 409
        settled = _settled_before(uow, campaign)
        uow.commit()
        return settled
    if action == "close" and campaign.closes_at > now:
        raise InvalidTransition(
            _(
                "Group buy %(public_id)s is open until %(closes_at)s: "
                "it cannot be closed before its window ends (cancel it instead).",
                public_id=campaign.public_id,
                closes_at=campaign.closes_at.isoformat(),
            ),
            extra={"current_status": service.effective_status(campaign, now).value},
        )
    if action == "close":
        _refuse_while_paying(uow, campaign)
    before = audit.snapshot(campaign, ("status", "final_unit_minor", "closed_at"))
    if action == "close" and campaign.status is S.SCHEDULED:
        campaign.status = service.next_status(campaign, "open")  # its window has passed
    orders = _counted_orders(uow, campaign)
    units = sum(o.quantity for o in orders)
    if action == "cancel":
        outcome = service.next_status(campaign, "cancel")
    else:
        met = units >= campaign.min_total_units
        outcome = service.next_status(campaign, "succeed" if met else "fail")
    tiers = service.tiers_of(uow, campaign.id)
    final = pricing.final_unit_minor(tiers, units) if outcome is S.SUCCEEDED else None
    amounts = [
        # Units already returned were refunded at the price paid for them: no difference on them.
        pricing.difference_refund(o.quantity - o.returned_quantity, o.unit_minor, final)
        if final is not None
        else o.captured_minor - o.refunded_minor
        for o in orders
    ]
    rows: list[dict[str, object]] = [
        {
            "campaign_id": campaign.id,
            "order_id": o.id,
            "amount_minor": amount,
            "reason": REASONS[outcome],
            "created_at": now,
            # Nothing to give back is done at once: the gateway is not asked to refund zero.
            "done_at": now if amount == 0 else None,
        }
        for o, amount in zip(orders, amounts, strict=True)
    ]
    if rows:
        _insert_refunds(uow, rows)
    cancelled: list[str] = []
    if outcome is not S.SUCCEEDED:
        cancelled = _cancel_orders(uow, campaign, [o.id for o in orders], outcome, now)
    campaign.status = outcome
    campaign.final_unit_minor = final
    campaign.closed_at = now
    campaign.updated_at = now
    refund_minor = sum(amounts)
    data = {
        "group_buy_id": campaign.public_id,
        "status": outcome.value,
        "units": units,
        "orders": len(orders),
        "currency": campaign.currency,
        "final_unit_minor": final,
        "refund_minor": refund_minor,
        "closed_at": now.isoformat(),
        "cancelled_orders": cancelled,
    }
    emit(
        uow,
        partner_id=campaign.partner_id,
        event_type="group_buy.cancelled" if outcome is S.CANCELLED else "group_buy.closed",
        data=data,
    )
    audit.record(
        uow.session,
        actor=actor,
        at=now,
        action="group_buy.cancelled" if outcome is S.CANCELLED else "group_buy.closed",
        object_type="group_buy",
        object_id=campaign.public_id,
        before=before,
        after={**audit.snapshot(campaign, ("status", "final_unit_minor", "closed_at")), **data},
    )
    uow.commit()
    return Settled(campaign.public_id, outcome, units, len(orders), final, refund_minor, newly=True)


def _refuse_while_paying(uow: UnitOfWork, campaign: GroupBuy) -> None:
    """An order still being paid would be counted by nobody: its payment may be captured after
    the close. The window is over, so no new one can start (joining needs the window), and the
    orders' own job cancels one whose reservation runs out; the campaign closes on a later run.
    Read under the campaign's lock, which a checkout's join holds until its order is written."""
    paying = int(
        uow.session.scalar(
            select(func.count(Order.id)).where(
                Order.campaign_id == campaign.id, Order.status == O.PENDING_PAYMENT
            )
        )
        or 0
    )
    if paying:
        uow.rollback()
        raise Conflict(
            _(
                "Group buy %(public_id)s still has %(paying)s order(s) being paid: it closes "
                "once they are paid or cancelled. Try again in a moment.",
                public_id=campaign.public_id,
                paying=paying,
            ),
            extra={"current_status": "closing", "orders_being_paid": paying},
        )


def catch_up(uow: UnitOfWork) -> int:
    """Refund in full, and cancel, an order paid after its campaign failed or was cancelled (a
    checkout that joined before and captured after): the settle's refund rows are written again
    for whatever order has none, which the unique (campaign, order) makes idempotent. How many
    such orders there were. A succeeded campaign needs none: it closes only with no order being
    paid."""
    late = uow.session.execute(
        select(GroupBuy.id)
        .join(Order, Order.campaign_id == GroupBuy.id)
        .outerjoin(
            CampaignRefund,
            (CampaignRefund.order_id == Order.id) & (CampaignRefund.campaign_id == GroupBuy.id),
        )
        .where(
            GroupBuy.status.in_((S.FAILED, S.CANCELLED)),
            Order.status.in_(COUNTED),
            CampaignRefund.id.is_(None),
        )
        .distinct()
    ).all()
    uow.commit()
    found = 0
    for (campaign_id,) in sorted(late):
        try:
            found += _catch_up_one(uow, campaign_id)
        except Problem:  # its orders are being changed: the next run catches it up
            uow.rollback()
    return found


def _catch_up_one(uow: UnitOfWork, campaign_id: int) -> int:
    now = uow.clock.now()
    campaign = _lock(uow, campaign_id)
    have = set(
        uow.session.scalars(
            select(CampaignRefund.order_id).where(CampaignRefund.campaign_id == campaign.id)
        )
    )
    orders = [o for o in _counted_orders(uow, campaign) if o.id not in have]
    if orders:
        _insert_refunds(
            uow,
            [
                {
                    "campaign_id": campaign.id,
                    "order_id": o.id,
                    "amount_minor": o.captured_minor - o.refunded_minor,
                    "reason": REASONS[campaign.status],
                    "created_at": now,
                    "done_at": now if o.captured_minor == o.refunded_minor else None,
                }
                for o in orders
            ],
        )
        _cancel_orders(uow, campaign, [o.id for o in orders], campaign.status, now)
    uow.commit()
    return len(orders)


@dataclass(frozen=True, slots=True)
class _Counted:
    id: int
    quantity: int
    unit_minor: int
    captured_minor: int
    refunded_minor: int
    returned_quantity: int  # units of it returned before the close


def _lock(uow: UnitOfWork, campaign_id: int) -> GroupBuy:
    campaign = uow.session.scalars(
        select(GroupBuy)
        .where(GroupBuy.id == campaign_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()
    return campaign


def _counted_orders(uow: UnitOfWork, campaign: GroupBuy) -> list[_Counted]:
    """The campaign's paid orders and their units of its product, locked in id order.

    NOWAIT: an order being changed right now (a customer cancelling it locks the order, then
    the campaign) would otherwise deadlock with us (campaign, then orders). We give way with a
    409 instead, and the campaign is settled on the next call."""
    stmt = (
        select(
            Order.id,
            OrderLine.quantity,
            OrderLine.unit_minor,
            Order.captured_minor,
            Order.refunded_minor,
            OrderLine.returned_quantity,
        )
        .join(
            OrderLine,
            (OrderLine.order_id == Order.id) & (OrderLine.product_id == campaign.product_id),
        )
        .where(Order.campaign_id == campaign.id, Order.status.in_(COUNTED))
        .order_by(Order.id)
        .with_for_update(of=Order, nowait=True)
    )
    try:
        rows = uow.session.execute(stmt).all()
    except OperationalError:
        uow.rollback()
        raise Conflict(
            _(
                "Orders of group buy %(public_id)s are being changed right now: "
                "try again in a moment.",
                public_id=campaign.public_id,
            ),
            extra={"current_status": service.effective_status(campaign, uow.clock.now()).value},
        ) from None
    return [_Counted(*(int(v) for v in row)) for row in rows]


def _insert_refunds(uow: UnitOfWork, rows: list[dict[str, object]]) -> None:
    """Insert the refund rows; one that exists already (a settle racing another) is left be."""
    dialect = postgresql if uow.session.get_bind().dialect.name == "postgresql" else sqlite
    uow.session.execute(
        dialect.insert(CampaignRefund)
        .values(rows)
        .on_conflict_do_nothing(index_elements=["campaign_id", "order_id"])
    )


def _cancel_orders(
    uow: UnitOfWork,
    campaign: GroupBuy,
    order_ids: list[int],
    outcome: CampaignStatus,
    now: datetime,
) -> list[str]:
    """A failed or cancelled campaign's unshipped orders are cancelled, so nobody ships them,
    and the stock they held is released; their money comes back through the refund rows. Only
    the order's `status`, its history and the product's reservation are touched. The public ids
    of the orders cancelled."""
    if not order_ids:
        return []
    moved = uow.session.execute(
        update(Order)
        .where(Order.id.in_(order_ids), Order.status.in_(CANCELLABLE))
        .values(status=O.CANCELLED, reserved_until=None, updated_at=now)
        .returning(Order.id, Order.public_id)
        .execution_options(synchronize_session=False)
    ).all()
    if not moved:
        return []
    ids = [row.id for row in moved]
    uow.session.execute(
        insert(OrderEvent),
        [
            {
                "order_id": order_id,
                # Only paid or fulfilling orders were moved; which one is not worth a read.
                "from_status": None,
                "to_status": O.CANCELLED.value,
                "at": now,
                "actor": ACTOR_LABEL,
                "note": f"group buy {campaign.public_id} {outcome.value}: refunded in full",
            }
            for order_id in ids
        ],
    )
    unshipped = uow.session.execute(
        select(
            OrderLine.product_id,
            func.sum(OrderLine.quantity - OrderLine.shipped_quantity).label("units"),
        )
        .where(OrderLine.order_id.in_(ids))
        .group_by(OrderLine.product_id)
        .order_by(OrderLine.product_id)  # products locked in id order, as the checkout does
    ).all()
    for product_id, units in unshipped:
        if units:
            uow.session.execute(
                update(Product)
                .where(Product.id == product_id, Product.stock_reserved >= units)
                .values(stock_reserved=Product.stock_reserved - units)
                .execution_options(synchronize_session=False)
            )
    return sorted(row.public_id for row in moved)


def _settled_before(uow: UnitOfWork, campaign: GroupBuy) -> Settled:
    row = uow.session.execute(
        select(
            func.count(CampaignRefund.id), func.coalesce(func.sum(CampaignRefund.amount_minor), 0)
        ).where(CampaignRefund.campaign_id == campaign.id)
    ).one()
    units = uow.session.scalar(
        select(func.coalesce(func.sum(OrderLine.quantity), 0))
        .join(CampaignRefund, CampaignRefund.order_id == OrderLine.order_id)
        .where(
            CampaignRefund.campaign_id == campaign.id,
            OrderLine.product_id == campaign.product_id,
        )
    )
    return Settled(
        campaign.public_id,
        campaign.status,
        int(units or 0),
        int(row[0]),
        campaign.final_unit_minor,
        int(row[1]),
        newly=False,
    )


# -- phase 2: refund -----------------------------------------------------------------------------


def refund_key(refund_id: int) -> str:
    """The gateway idempotency key of a refund row: the same on every run, so never two refunds."""
    return f"group-buy-refund:{refund_id}"


def refund_pending(
    uow: UnitOfWork,
    gateway: PaymentGateway,
    *,
    campaign_id: int | None = None,
    limit: int = 10_000,
) -> RefundRun:
    """Send every pending refund row to the gateway, one at a time, holding no transaction of
    ours while the bank runs; a row the bank refunds is marked done with its order's
    `refunded_minor`, in one commit."""
    stmt = (
        select(CampaignRefund.id, CampaignRefund.amount_minor, Order.payment_ref, Order.id)
        .join(Order, Order.id == CampaignRefund.order_id)
        .where(CampaignRefund.done_at.is_(None))
        .order_by(CampaignRefund.id)
        .limit(limit)
    )
    if campaign_id is not None:
        stmt = stmt.where(CampaignRefund.campaign_id == campaign_id)
    pending = uow.session.execute(stmt).all()
    uow.commit()  # end the read: nothing of ours stays open across the gateway calls
    run = RefundRun()
    for refund_id, amount, payment_ref, order_id in pending:
        if payment_ref is None:
            _failed(uow, run, refund_id, "the order has no payment to refund")
            continue
        try:
            result = gateway.refund(
                payment_ref, key=refund_key(refund_id), amount_minor=amount, actor=SYSTEM
            )
        except Exception as exc:  # one refund's failure, whatever it is, must not stop the others
            _failed(uow, run, refund_id, f"{type(exc).__name__}: {exc}")
            continue
        if not result.approved:
            _failed(uow, run, refund_id, f"declined: {result.decline_code}")
            continue
        if _mark_done(uow, refund_id, order_id, amount):
            run.refunded += 1
            run.refunded_minor += amount
    return run


def _mark_done(uow: UnitOfWork, refund_id: int, order_id: int, amount: int) -> bool:
    now = uow.clock.now()
    done = uow.session.execute(
        update(CampaignRefund)
        .where(CampaignRefund.id == refund_id, CampaignRefund.done_at.is_(None))
        .values(done_at=now, error=None)
        .returning(CampaignRefund.id)
        .execution_options(synchronize_session=False)
    ).first()
    if done is None:
        uow.rollback()  # another run marked it first, and counted the order's refund
        return False
    uow.session.execute(
        update(Order)
        .where(Order.id == order_id)
        .values(refunded_minor=Order.refunded_minor + amount, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    uow.commit()
    return True


def _failed(uow: UnitOfWork, run: RefundRun, refund_id: int, error: str) -> None:
    uow.session.execute(
        update(CampaignRefund)
        .where(CampaignRefund.id == refund_id, CampaignRefund.done_at.is_(None))
        .values(error=error[:2000])
        .execution_options(synchronize_session=False)
    )
    uow.commit()
    run.failed += 1
    run.errors.append(f"refund {refund_id}: {error}")
