"""The NPS survey after delivery: one answer per delivered order, and the score by partner and month.

NPS = % promoters (9–10) − % detractors (0–6), an integer from −100 to 100, computed in integers
and rounded half away from zero. Months are calendar months in the partner's time zone, as its
reports read.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError

from beyondbank.commerce import service as partners
from beyondbank.commerce.models import NpsResponse, Order, OrderStatus, Partner
from beyondbank.core.authz import Principal
from beyondbank.core.errors import (
    Conflict,
    FieldError,
    Forbidden,
    InvalidInput,
    InvalidTransition,
    NotFound,
)
from beyondbank.core.i18n import _
from beyondbank.core.uow import UnitOfWork

MAX_COMMENT = 1_000
# The survey is asked once the goods have arrived; a completed order has passed its return window.
SURVEYED = frozenset({OrderStatus.DELIVERED, OrderStatus.COMPLETED})


def category(score: int) -> str:
    if score >= 9:
        return "promoter"
    if score >= 7:
        return "passive"
    return "detractor"


def nps(promoters: int, detractors: int, responses: int) -> int | None:
    """100 × (promoters − detractors) / responses, rounded half away from zero; None if none."""
    if responses <= 0:
        return None
    numerator = 100 * (promoters - detractors)
    quotient, remainder = divmod(abs(numerator), responses)
    if 2 * remainder >= responses:
        quotient += 1
    return quotient if numerator >= 0 else -quotient


@dataclass(frozen=True, slots=True)
class Answer:
    response: NpsResponse
    order: Order
    partner: Partner


def answer(
    uow: UnitOfWork, actor: Principal, order_public_id: str, score: int, comment: str | None
) -> Answer:
    """The customer's answer for its own delivered order, once."""
    if actor.kind != "customer" or actor.customer_id is None:
        raise Forbidden(_("The survey is the customer's to answer."))
    errors = []
    if not 0 <= score <= 10:
        errors.append(FieldError("body.score", _("from 0 to 10")))
    text = (comment or "").strip() or None
    if text is not None and len(text) > MAX_COMMENT:
        errors.append(
            FieldError(
                "body.comment", _("at most %(max_comment)s characters", max_comment=MAX_COMMENT)
            )
        )
    if errors:
        raise InvalidInput(_("The answer cannot be recorded as it stands."), errors=errors)
    order = uow.session.scalars(
        select(Order).where(
            Order.public_id == order_public_id, Order.customer_id == actor.customer_id
        )
    ).one_or_none()
    if order is None:
        raise NotFound(_("No order %(public_id)r here.", public_id=order_public_id))
    if order.status not in SURVEYED:
        raise InvalidTransition(
            _(
                "The survey opens once the order is delivered; it is %(status)s.",
                status=order.status.value,
            ),
            extra={"current_status": order.status.value},
        )
    now = uow.clock.now()
    try:
        # The unique order_id decides between two answers at once, not a read before the write.
        with uow.session.begin_nested():
            new_id = uow.session.execute(
                insert(NpsResponse)
                .values(
                    order_id=order.id,
                    customer_id=actor.customer_id,
                    partner_id=order.partner_id,
                    score=score,
                    comment=text,
                    answered_at=now,
                )
                .returning(NpsResponse.id)
            ).scalar_one()
    except IntegrityError:
        raise Conflict(
            _("This order's survey is answered already."), extra={"order_id": order.public_id}
        ) from None
    uow.commit()
    response = uow.session.get_one(NpsResponse, new_id)
    return Answer(response, order, uow.session.get_one(Partner, order.partner_id))


@dataclass
class Tally:
    responses: int = 0
    promoters: int = 0
    passives: int = 0
    detractors: int = 0

    def add(self, score: int) -> None:
        self.responses += 1
        kind = category(score)
        if kind == "promoter":
            self.promoters += 1
        elif kind == "passive":
            self.passives += 1
        else:
            self.detractors += 1

    @property
    def score(self) -> int | None:
        return nps(self.promoters, self.detractors, self.responses)


@dataclass
class Summary:
    overall: Tally = field(default_factory=Tally)
    by_partner: dict[str, Tally] = field(default_factory=lambda: defaultdict(Tally))
    by_month: dict[str, Tally] = field(default_factory=lambda: defaultdict(Tally))
    names: dict[str, str] = field(default_factory=dict)  # partner id → name


def summary(
    uow: UnitOfWork,
    actor: Principal,
    *,
    since: date | None = None,
    until: date | None = None,
    partner_public_id: str | None = None,
) -> Summary:
    """Answers counted overall, per partner and per month (`since`..`until` inclusive, by the
    partner's calendar). The bank sees every partner; a partner only itself."""
    if actor.kind == "customer":
        raise Forbidden(_("The NPS summary is for the bank and its partners."))
    if actor.merchant_id is not None:
        raise Forbidden(_("The NPS summary is for the bank and its partners."))
    if since and until and since > until:
        raise InvalidInput(
            _("The period ends before it starts."),
            errors=(FieldError("query.until", _("on or after `since`")),),
        )
    stmt = select(NpsResponse.score, NpsResponse.answered_at, Partner).join(
        Partner, Partner.id == NpsResponse.partner_id
    )
    if actor.partner_id is not None:
        stmt = stmt.where(NpsResponse.partner_id == actor.partner_id)
    if partner_public_id is not None:
        wanted = partners.get_partner(uow, partner_public_id, field="query.partner_id")
        stmt = stmt.where(NpsResponse.partner_id == wanted.id)
    # A day's margin either side in UTC; the exact cut is by each partner's calendar below.
    if since is not None:
        stmt = stmt.where(NpsResponse.answered_at >= _utc_midnight(since) - timedelta(days=1))
    if until is not None:
        stmt = stmt.where(NpsResponse.answered_at < _utc_midnight(until) + timedelta(days=2))
    result = Summary()
    zones: dict[str, ZoneInfo] = {}
    for score, answered_at, partner in uow.session.execute(stmt):
        zone = zones.setdefault(partner.timezone, ZoneInfo(partner.timezone))
        local_day = _local(answered_at, zone)
        if (since and local_day < since) or (until and local_day > until):
            continue
        result.overall.add(score)
        result.by_partner[partner.public_id].add(score)
        result.by_month[local_day.strftime("%Y-%m")].add(score)
        result.names[partner.public_id] = partner.name
    return result


def _utc_midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def _local(at: datetime, zone: ZoneInfo) -> date:
    return at.astimezone(zone).date()
