"""Group-buy use cases: joining and leaving (the checkout's contract), creating and cancelling
campaigns, and reading their live progress.

`join` and `leave` run inside the caller's transaction (the checkout's) and never commit; every
other use case here is the only place that commits its own change.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite

from beyondbank.commerce.models import (
    CampaignStatus,
    GroupBuy,
    GroupBuyParticipant,
    GroupBuyTier,
)
from beyondbank.core.errors import (
    Conflict,
    FieldError,
    InvalidTransition,
    LimitReached,
    NotFound,
    Problem,
    invalid,
)
from beyondbank.core.uow import UnitOfWork

# Statuses in which a campaign takes joins, provided the clock is inside its window: a
# scheduled campaign is open from `opens_at` on whether or not the close job has moved it yet.
JOINABLE = frozenset({CampaignStatus.SCHEDULED, CampaignStatus.OPEN})


class _Refused(Exception):
    """Raised inside a savepoint to roll it back; `what` says which condition refused."""

    def __init__(self, what: str) -> None:
        super().__init__(what)
        self.what = what


# -- the checkout's contract ---------------------------------------------------------------------


def join(uow: UnitOfWork, *, campaign_id: int, customer_id: int, quantity: int) -> int:
    """Add `quantity` units to the customer's share of an open campaign; the entry unit price.

    Runs in the caller's transaction and does not commit. Both counters move by conditional
    statements, so concurrent joins can exceed neither the per-customer limit nor the cap; a
    refused join writes nothing (its savepoint is rolled back). The campaign row is updated
    before the participant row: one lock order for every path.
    """
    if quantity <= 0:
        raise invalid("quantity", "must be at least 1")
    now = uow.clock.now()
    campaign = uow.session.get(GroupBuy, campaign_id)
    if campaign is None:
        raise NotFound(f"No group buy {campaign_id} here.")
    entry = entry_unit_minor(uow, campaign_id)
    if quantity > campaign.per_customer_limit:
        raise _limit(campaign, quantity, campaign.per_customer_limit)
    try:
        # A savepoint, so that a refusal leaves the caller's transaction as it found it.
        with uow.session.begin_nested():
            counted = uow.session.execute(
                update(GroupBuy)
                .where(
                    GroupBuy.id == campaign_id,
                    GroupBuy.status.in_(JOINABLE),
                    GroupBuy.opens_at <= now,
                    GroupBuy.closes_at > now,
                    GroupBuy.max_total_units.is_(None)
                    | (GroupBuy.units_joined + quantity <= GroupBuy.max_total_units),
                )
                .values(units_joined=GroupBuy.units_joined + quantity, updated_at=now)
                .returning(GroupBuy.id)
                .execution_options(synchronize_session=False)
            ).first()
            if counted is None:
                raise _Refused("campaign")
            if not _add_units(uow, campaign, customer_id, quantity, now):
                raise _Refused("customer")
    except _Refused as refused:
        if refused.what == "campaign":
            raise _why_not_joined(uow, campaign_id, quantity) from None
        held = _units_held(uow, campaign_id, customer_id)
        raise _limit(campaign, quantity, campaign.per_customer_limit - held) from None
    _expire(uow, GroupBuy, campaign_id)
    return entry


def leave(uow: UnitOfWork, *, campaign_id: int, customer_id: int, quantity: int) -> None:
    """Give back `quantity` of the customer's units (a cancelled or compensated order).

    Runs in the caller's transaction and does not commit; campaign row first, as in `join`.
    Giving back more than the customer holds is a 409 and changes nothing."""
    if quantity <= 0:
        raise invalid("quantity", "must be at least 1")
    now = uow.clock.now()
    try:
        with uow.session.begin_nested():
            counted = uow.session.execute(
                update(GroupBuy)
                .where(GroupBuy.id == campaign_id, GroupBuy.units_joined >= quantity)
                .values(units_joined=GroupBuy.units_joined - quantity, updated_at=now)
                .returning(GroupBuy.id)
                .execution_options(synchronize_session=False)
            ).first()
            held = uow.session.execute(
                update(GroupBuyParticipant)
                .where(
                    GroupBuyParticipant.campaign_id == campaign_id,
                    GroupBuyParticipant.customer_id == customer_id,
                    GroupBuyParticipant.units >= quantity,
                )
                .values(units=GroupBuyParticipant.units - quantity)
                .returning(GroupBuyParticipant.id)
                .execution_options(synchronize_session=False)
            ).first()
            if counted is None or held is None:
                raise _Refused("customer")
    except _Refused:
        if uow.session.get(GroupBuy, campaign_id) is None:
            raise NotFound(f"No group buy {campaign_id} here.") from None
        raise Conflict(
            f"The customer holds {_units_held(uow, campaign_id, customer_id)} units in this "
            f"group buy: {quantity} cannot be given back.",
            extra={"campaign_id": campaign_id},
        ) from None
    _expire(uow, GroupBuy, campaign_id)


def entry_unit_minor(uow: UnitOfWork, campaign_id: int) -> int:
    """The price a customer pays to join: the tier with the fewest units."""
    price = uow.session.scalar(
        select(GroupBuyTier.unit_minor)
        .where(GroupBuyTier.campaign_id == campaign_id)
        .order_by(GroupBuyTier.min_units)
        .limit(1)
    )
    if price is None:
        raise Conflict(f"Group buy {campaign_id} has no price tiers.")
    return price


def _add_units(
    uow: UnitOfWork, campaign: GroupBuy, customer_id: int, quantity: int, now: datetime
) -> bool:
    """Insert the customer's row or add to it, only while it stays within the limit."""
    dialect = postgresql if uow.session.get_bind().dialect.name == "postgresql" else sqlite
    table = GroupBuyParticipant.__table__
    stmt = dialect.insert(table).values(
        campaign_id=campaign.id,
        customer_id=customer_id,
        units=quantity,
        unit_limit=campaign.per_customer_limit,
        joined_at=now,
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=[table.c.campaign_id, table.c.customer_id],
        set_={"units": table.c.units + quantity},
        # The CHECK would refuse it too, but as an error that aborts a PostgreSQL transaction;
        # the condition makes a refusal an empty answer instead.
        where=table.c.units + quantity <= table.c.unit_limit,
    ).returning(table.c.units)
    return uow.session.execute(stmt).first() is not None


def _units_held(uow: UnitOfWork, campaign_id: int, customer_id: int) -> int:
    held = uow.session.scalar(
        select(GroupBuyParticipant.units).where(
            GroupBuyParticipant.campaign_id == campaign_id,
            GroupBuyParticipant.customer_id == customer_id,
        )
    )
    return int(held or 0)


def _limit(campaign: GroupBuy, quantity: int, left: int) -> LimitReached:
    left = max(left, 0)
    return LimitReached(
        f"At most {campaign.per_customer_limit} units per customer in this group buy: "
        f"{left} left for you, {quantity} asked.",
        errors=(FieldError("quantity", f"at most {left} more for this customer"),),
        extra={"limit": "per_customer", "units_left": left},
    )


def _why_not_joined(uow: UnitOfWork, campaign_id: int, quantity: int) -> Problem:
    """Why the conditional update found nothing: the campaign's state or window, or the cap."""
    _expire(uow, GroupBuy, campaign_id)
    campaign = uow.session.get(GroupBuy, campaign_id)
    if campaign is None:
        return NotFound(f"No group buy {campaign_id} here.")
    now = uow.clock.now()
    word = _status_word(campaign, now)
    if word != CampaignStatus.OPEN.value:
        when = ""
        if word == CampaignStatus.SCHEDULED.value:
            when = f" It opens at {campaign.opens_at.isoformat()}."
        elif word == "closing":
            when = f" It closed at {campaign.closes_at.isoformat()}."
        return InvalidTransition(
            f"Group buy {campaign.public_id} is {word}: it cannot be joined.{when}",
            extra={"current_status": word},
        )
    left = (campaign.max_total_units or 0) - campaign.units_joined
    return Conflict(
        f"Group buy {campaign.public_id} is sold out: {max(left, 0)} units left, {quantity} asked.",
        extra={"units_left": max(left, 0)},
    )


def effective_status(campaign: GroupBuy, now: datetime) -> CampaignStatus:
    """The campaign's status at `now`: a scheduled campaign whose window has begun is open,
    whether or not the close job has recorded it yet. Closed states are final."""
    if campaign.status in JOINABLE:
        return CampaignStatus.OPEN if campaign.opens_at <= now else CampaignStatus.SCHEDULED
    return campaign.status


def _status_word(campaign: GroupBuy, now: datetime) -> str:
    state = effective_status(campaign, now)
    if state is CampaignStatus.OPEN and campaign.closes_at <= now:
        return "closing"  # past its window, waiting for the close job
    return state.value


def _expire(uow: UnitOfWork, model: type[GroupBuy], ident: int) -> None:
    """Forget a stale copy after a bulk UPDATE, so the next read sees the database's row."""
    obj = uow.session.get(model, ident)
    if obj is not None:
        uow.session.expire(obj)
