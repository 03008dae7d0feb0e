"""Group-buy use cases: joining and leaving (the checkout's contract), creating and cancelling
campaigns, and reading their live progress.

`join` and `leave` run inside the caller's transaction (the checkout's) and never commit; every
other use case here is the only place that commits its own change.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import Select, and_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from beyondbank.commerce.catalog import service as catalog
from beyondbank.commerce.groupbuy import tiers as pricing
from beyondbank.commerce.groupbuy.tiers import Tier
from beyondbank.commerce.models import (
    CampaignStatus,
    GroupBuy,
    GroupBuyParticipant,
    GroupBuyTier,
    Product,
)
from beyondbank.core import audit
from beyondbank.core.authz import Principal, ensure_partner_visible
from beyondbank.core.errors import (
    Conflict,
    FieldError,
    InvalidInput,
    InvalidTransition,
    LimitReached,
    NotFound,
    Problem,
    invalid,
)
from beyondbank.core.i18n import N_, _
from beyondbank.core.ids import new_public_id
from beyondbank.core.money import Money
from beyondbank.core.pagination import MAX_LIMIT, decode_cursor, encode_cursor
from beyondbank.core.uow import UnitOfWork

MAX_TIERS = 10

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
        raise invalid("quantity", _("must be at least 1"))
    now = uow.clock.now()
    campaign = uow.session.get(GroupBuy, campaign_id)
    if campaign is None:
        raise NotFound(_("No group buy %(campaign_id)s here.", campaign_id=campaign_id))
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
        raise invalid("quantity", _("must be at least 1"))
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
            raise NotFound(
                _("No group buy %(campaign_id)s here.", campaign_id=campaign_id)
            ) from None
        raise Conflict(
            _(
                "The customer holds %(units_held)s units in this "
                "group buy: %(quantity)s cannot be given back.",
                units_held=_units_held(uow, campaign_id, customer_id),
                quantity=quantity,
            ),
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
        raise Conflict(_("Group buy %(campaign_id)s has no price tiers.", campaign_id=campaign_id))
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
        _(
            "At most %(per_customer_limit)s units per customer in this group buy: "
            "%(left)s left for you, %(quantity)s asked.",
            per_customer_limit=campaign.per_customer_limit,
            left=left,
            quantity=quantity,
        ),
        errors=(FieldError("quantity", _("at most %(left)s more for this customer", left=left)),),
        extra={"limit": "per_customer", "units_left": left},
    )


def _why_not_joined(uow: UnitOfWork, campaign_id: int, quantity: int) -> Problem:
    """Why the conditional update found nothing: the campaign's state or window, or the cap."""
    _expire(uow, GroupBuy, campaign_id)
    campaign = uow.session.get(GroupBuy, campaign_id)
    if campaign is None:
        return NotFound(_("No group buy %(campaign_id)s here.", campaign_id=campaign_id))
    now = uow.clock.now()
    word = _status_word(campaign, now)
    if word != CampaignStatus.OPEN.value:
        if word == CampaignStatus.SCHEDULED.value:
            detail = _(
                "Group buy %(public_id)s is %(status)s: it cannot be joined. It opens at %(opens_at)s.",
                public_id=campaign.public_id,
                status=word,
                opens_at=campaign.opens_at.isoformat(),
            )
        elif word == "closing":
            detail = _(
                "Group buy %(public_id)s is %(status)s: it cannot be joined. It closed at %(closes_at)s.",
                public_id=campaign.public_id,
                status=word,
                closes_at=campaign.closes_at.isoformat(),
            )
        else:
            detail = _(
                "Group buy %(public_id)s is %(status)s: it cannot be joined.",
                public_id=campaign.public_id,
                status=word,
            )
        return InvalidTransition(
            detail,
            extra={"current_status": word},
        )
    left = (campaign.max_total_units or 0) - campaign.units_joined
    return Conflict(
        _(
            "Group buy %(public_id)s is sold out: %(left)s units left, %(quantity)s asked.",
            public_id=campaign.public_id,
            left=max(left, 0),
            quantity=quantity,
        ),
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


# -- the campaign's state machine ----------------------------------------------------------------

S = CampaignStatus
# (status, action) → the status it leads to. `open` is recorded by the close job (the window
# itself decides whether a campaign takes joins); `succeed`/`fail` only by closing.
TRANSITIONS: dict[tuple[CampaignStatus, str], CampaignStatus] = {
    (S.SCHEDULED, "open"): S.OPEN,
    (S.SCHEDULED, "cancel"): S.CANCELLED,
    (S.OPEN, "cancel"): S.CANCELLED,
    (S.OPEN, "succeed"): S.SUCCEEDED,
    (S.OPEN, "fail"): S.FAILED,
}
FINAL = frozenset({S.SUCCEEDED, S.FAILED, S.CANCELLED})
_PAST = {
    "open": N_("opened"),
    "cancel": N_("cancelled"),
    "succeed": N_("closed"),
    "fail": N_("closed"),
}


def next_status(campaign: GroupBuy, action: str) -> CampaignStatus:
    """The status `action` leads to from the campaign's status; 409 naming it otherwise."""
    target = TRANSITIONS.get((campaign.status, action))
    if target is None:
        allowed = sorted(a for (state, a) in TRANSITIONS if state == campaign.status)
        hint = (
            " "
            + _(
                "From %(status)s it can be: %(allowed)s.",
                status=campaign.status.value,
                allowed=", ".join(allowed),
            )
            if allowed
            else ""
        )
        raise InvalidTransition(
            _(
                "Group buy %(public_id)s is %(status)s: it cannot be %(past)s.%(hint)s",
                public_id=campaign.public_id,
                status=campaign.status.value,
                past=_(_PAST[action]),
                hint=hint,
            ),
            extra={"current_status": campaign.status.value, "group_buy_id": campaign.public_id},
        )
    return target


def open_due(uow: UnitOfWork) -> int:
    """Record `open` for scheduled campaigns whose window has begun; how many. Commits."""
    now = uow.clock.now()
    opened = uow.session.execute(
        update(GroupBuy)
        .where(GroupBuy.status == S.SCHEDULED, GroupBuy.opens_at <= now)
        .values(status=S.OPEN, updated_at=now)
        .returning(GroupBuy.id)
        .execution_options(synchronize_session=False)
    ).all()
    uow.commit()
    return len(opened)


# -- creating campaigns --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TierIn:
    """A tier as asked for: its price either in minor units or as a decimal string."""

    min_units: int
    unit_minor: int | None = None
    unit_price: str | None = None


@dataclass(frozen=True, slots=True)
class CampaignIn:
    product_id: str  # the product's public id
    title: str
    closes_at: datetime
    tiers: Sequence[TierIn]
    min_total_units: int
    per_customer_limit: int
    opens_at: datetime | None = None  # None: now
    max_total_units: int | None = None


def create_campaign(uow: UnitOfWork, actor: Principal, data: CampaignIn) -> GroupBuy:
    """Create a campaign for one of the actor's products (any product for the bank's staff).

    Every problem with the request is reported at once, with its field, and nothing is written
    unless all is well. Tiers must be priced below the product's public price now."""
    now = uow.clock.now()
    errors: list[FieldError] = []
    product = _product_for(uow, actor, data.product_id)
    if product is None:
        errors.append(
            FieldError(
                "body.product_id", _("no product %(product_id)r", product_id=data.product_id)
            )
        )
    opens_at = data.opens_at or now
    if opens_at < now:
        errors.append(FieldError("body.opens_at", _("must not be in the past")))
    if data.closes_at <= now:
        errors.append(FieldError("body.closes_at", _("must be in the future")))
    if data.closes_at <= opens_at:
        errors.append(FieldError("body.closes_at", _("must be after opens_at")))
    for name in ("min_total_units", "per_customer_limit"):
        if getattr(data, name) < 1:
            errors.append(FieldError(f"body.{name}", _("must be at least 1")))
    if data.max_total_units is not None:
        if data.max_total_units < 1:
            errors.append(FieldError("body.max_total_units", _("must be at least 1")))
        elif data.max_total_units < data.min_total_units:
            errors.append(
                FieldError("body.max_total_units", _("must not be below min_total_units"))
            )
    if len(data.tiers) > MAX_TIERS:
        errors.append(
            FieldError("body.tiers", _("at most %(max_tiers)s tiers", max_tiers=MAX_TIERS))
        )
    public_minor: int | None = None
    if product is not None:
        try:
            public_minor, _client = catalog.price_now(uow, product, now)
        except catalog.NotForSale as exc:
            errors.append(FieldError("body.product_id", exc.detail))
    tiers = _parse_tiers(data.tiers, product.currency if product else None, errors)
    if tiers is not None and public_minor is not None:
        errors.extend(pricing.check(tiers, public_minor))
    if errors or product is None or tiers is None:
        raise InvalidInput(_("The group buy cannot be created as it stands."), errors=errors)
    campaign = GroupBuy(
        public_id=new_public_id("gbc"),
        partner_id=product.partner_id,
        product_id=product.id,
        title=data.title,
        currency=product.currency,
        opens_at=opens_at,
        closes_at=data.closes_at,
        min_total_units=data.min_total_units,
        max_total_units=data.max_total_units,
        per_customer_limit=data.per_customer_limit,
        units_joined=0,
        status=S.OPEN if opens_at <= now else S.SCHEDULED,
        final_unit_minor=None,
        closed_at=None,
        created_at=now,
        updated_at=now,
    )
    uow.session.add(campaign)
    uow.session.flush()
    uow.session.add_all(
        GroupBuyTier(campaign_id=campaign.id, min_units=t.min_units, unit_minor=t.unit_minor)
        for t in tiers
    )
    audit.record(
        uow.session,
        actor=actor,
        at=now,
        action="group_buy.created",
        object_type="group_buy",
        object_id=campaign.public_id,
        after={
            **audit.snapshot(campaign, _AUDITED),
            "product_id": product.public_id,
            "tiers": [[t.min_units, t.unit_minor] for t in tiers],
        },
    )
    uow.commit()
    return campaign


_AUDITED = (
    "title",
    "currency",
    "opens_at",
    "closes_at",
    "min_total_units",
    "max_total_units",
    "per_customer_limit",
    "status",
)


def _product_for(uow: UnitOfWork, actor: Principal, public_id: str) -> Product | None:
    """The product, if the actor may run a campaign for it: a partner only its own."""
    product = uow.session.scalars(
        select(Product).where(Product.public_id == public_id)
    ).one_or_none()
    if product is None:
        return None
    if actor.partner_id is not None and actor.partner_id != product.partner_id:
        return None  # another partner's product reads as no product at all
    if actor.merchant_id is not None:
        return None
    return product


def _parse_tiers(
    given: Sequence[TierIn], currency: str | None, errors: list[FieldError]
) -> list[Tier] | None:
    """The tiers in minor units; a price with more decimals than the currency has is an error."""
    parsed: list[Tier] = []
    ok = True
    for i, tier in enumerate(given):
        path = f"body.tiers.{i}"
        if (tier.unit_minor is None) == (tier.unit_price is None):
            errors.append(FieldError(f"{path}.unit_price", _("give unit_price or unit_minor")))
            ok = False
            continue
        if tier.unit_minor is not None:
            parsed.append(Tier(tier.min_units, tier.unit_minor))
            continue
        if currency is None:
            ok = False  # the product is unknown, so the price's currency is too
            continue
        try:
            money = Money.parse(Decimal(str(tier.unit_price)), currency)
        except (ValueError, ArithmeticError) as exc:
            errors.append(FieldError(f"{path}.unit_price", str(exc)))
            ok = False
            continue
        parsed.append(Tier(tier.min_units, money.amount))
    return parsed if ok else None


# -- reading a campaign ----------------------------------------------------------------------------


def get_campaign(uow: UnitOfWork, actor: Principal, public_id: str) -> GroupBuy:
    """The campaign, if the actor may see it; another partner's answers 404."""
    campaign = uow.session.scalars(
        select(GroupBuy).where(GroupBuy.public_id == public_id)
    ).one_or_none()
    if campaign is None:
        raise NotFound(_("No group buy %(public_id)r here.", public_id=public_id))
    ensure_partner_visible(actor, campaign.partner_id, "group buy", public_id)
    return campaign


def tiers_of(uow: UnitOfWork, campaign_id: int) -> list[Tier]:
    rows = uow.session.execute(
        select(GroupBuyTier.min_units, GroupBuyTier.unit_minor)
        .where(GroupBuyTier.campaign_id == campaign_id)
        .order_by(GroupBuyTier.min_units)
    ).all()
    return [Tier(int(r.min_units), int(r.unit_minor)) for r in rows]


@dataclass(frozen=True, slots=True)
class Progress:
    """A campaign as a customer follows it: where the total stands against the tiers."""

    campaign: GroupBuy
    product_id: str
    product_sku: str
    product_title: str
    tiers: list[Tier]
    status: str  # scheduled | open | closing (past its window, not yet closed) | final states
    units: int
    reached: Tier | None
    next: Tier | None
    seconds_left: int
    your_units: int | None  # None: the caller is not a customer
    your_units_left: int | None

    @property
    def units_to_next(self) -> int | None:
        return self.next.min_units - self.units if self.next else None

    @property
    def minimum_met(self) -> bool:
        return self.units >= self.campaign.min_total_units

    @property
    def entry(self) -> Tier:
        return pricing.entry(self.tiers)


def progress(uow: UnitOfWork, actor: Principal, public_id: str) -> Progress:
    """Live progress of one campaign, in one query (the campaign, its product, tiers, and the
    calling customer's units)."""
    found = _progress(
        uow, actor, _visible(actor, select(GroupBuy.id)).where(GroupBuy.public_id == public_id)
    )
    if not found:
        raise NotFound(_("No group buy %(public_id)r here.", public_id=public_id))
    return found[0]


def list_progress(
    uow: UnitOfWork,
    actor: Principal,
    *,
    status: CampaignStatus | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> tuple[list[Progress], str | None]:
    """A page of campaigns (newest first) with their live progress, in one query.

    `status` filters by the status a customer sees: `open` is a campaign taking joins now,
    `scheduled` one whose window has not begun."""
    limit = max(1, min(limit, MAX_LIMIT))
    now = uow.clock.now()
    ids = _visible(actor, select(GroupBuy.id))
    if status is S.OPEN:
        ids = ids.where(
            GroupBuy.status.in_(JOINABLE), GroupBuy.opens_at <= now, GroupBuy.closes_at > now
        )
    elif status is S.SCHEDULED:
        ids = ids.where(GroupBuy.status.in_(JOINABLE), GroupBuy.opens_at > now)
    elif status is not None:
        ids = ids.where(GroupBuy.status == status)
    if cursor:
        ids = ids.where(GroupBuy.id < decode_cursor(cursor))
    ids = ids.order_by(GroupBuy.id.desc()).limit(limit + 1)
    found = _progress(uow, actor, ids)
    found.sort(key=lambda p: p.campaign.id, reverse=True)
    if len(found) <= limit:
        return found, None
    page = found[:limit]
    return page, encode_cursor(page[-1].campaign.id)


def _visible(actor: Principal, stmt: Select[tuple[int]]) -> Select[tuple[int]]:
    """Scope a selection of campaigns to what the actor sees: a partner, its own."""
    if actor.partner_id is not None:
        return stmt.where(GroupBuy.partner_id == actor.partner_id)
    if actor.merchant_id is not None:
        return stmt.where(GroupBuy.id.is_(None))  # a merchant sees no partner's campaigns
    return stmt


def _progress(uow: UnitOfWork, actor: Principal, ids: Select[tuple[int]]) -> list[Progress]:
    now = uow.clock.now()
    customer_id = actor.customer_id
    stmt = (
        select(
            GroupBuy,
            Product.public_id,
            Product.sku,
            Product.title,
            GroupBuyTier.min_units,
            GroupBuyTier.unit_minor,
            GroupBuyParticipant.units,
        )
        .join(Product, Product.id == GroupBuy.product_id)
        .join(GroupBuyTier, GroupBuyTier.campaign_id == GroupBuy.id)
        .outerjoin(
            GroupBuyParticipant,
            and_(
                GroupBuyParticipant.campaign_id == GroupBuy.id,
                # -1 matches nobody: a caller who is not a customer has no units.
                GroupBuyParticipant.customer_id == (customer_id if customer_id else -1),
            ),
        )
        .where(GroupBuy.id.in_(ids))
        .order_by(GroupBuy.id, GroupBuyTier.min_units)
    )
    folded: dict[int, tuple[GroupBuy, str, str, str, list[Tier], int | None]] = {}
    for row in uow.session.execute(stmt):
        campaign: GroupBuy = row[0]
        entry = folded.setdefault(campaign.id, (campaign, row[1], row[2], row[3], [], row[6]))
        entry[4].append(Tier(int(row[4]), int(row[5])))
    result: list[Progress] = []
    for campaign, product_id, sku, title, tiers, held in folded.values():
        units = campaign.units_joined
        mine = None if customer_id is None else int(held or 0)
        result.append(
            Progress(
                campaign=campaign,
                product_id=product_id,
                product_sku=sku,
                product_title=title,
                tiers=tiers,
                status=_status_word(campaign, now),
                units=units,
                reached=pricing.reached(tiers, units),
                next=pricing.following(tiers, units),
                seconds_left=max(int((campaign.closes_at - now).total_seconds()), 0)
                if campaign.status in JOINABLE
                else 0,
                your_units=mine,
                your_units_left=None
                if mine is None
                else max(campaign.per_customer_limit - mine, 0),
            )
        )
    return result
