"""Voucher redemption at the point of sale: scan the member's code, check, record once, reverse.

A redemption is one transaction. Reads decide eligibility (schedule, spend, targeting,
new-to-merchant); the database then enforces everything that concurrent counters could
break, always in this order, so that racing transactions queue rather than deadlock:

1. the redemption row: the unique `(member_id, code_step)` makes a code single-use;
2. the member's usage row for the period: a conditional upsert keeps within `member_limit`;
3. the benefit row: a conditional UPDATE takes one of the quantity and the grant from the
   budget, never below zero.

Any refusal rolls the whole transaction back, and the `Idempotency-Key` claim is released.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from beyondbank.alliance import service as alliance
from beyondbank.alliance.models import Member, MemberStatus, Merchant, MerchantStatus
from beyondbank.benefits import lifecycle, postings, rules
from beyondbank.benefits.models import (
    Benefit,
    BenefitStatus,
    BenefitUsage,
    Channel,
    LimitPeriod,
    Redemption,
    RedemptionStatus,
)
from beyondbank.benefits.schemas import RedemptionIn
from beyondbank.benefits.service import get_benefit, terms_of
from beyondbank.core import audit, idempotency
from beyondbank.core.authz import Principal, ensure_visible
from beyondbank.core.errors import (
    Conflict,
    FieldError,
    Forbidden,
    InvalidTransition,
    LimitReached,
    NotEligible,
    NotFound,
    invalid,
)
from beyondbank.core.i18n import N_, _, ngettext
from beyondbank.core.ids import new_public_id
from beyondbank.core.money import Money
from beyondbank.core.pagination import paginate
from beyondbank.core.tokens import MemberCode, verify_member_code
from beyondbank.core.uow import UnitOfWork

# A conditional UPDATE that finds the budget partly spent retries this often at most; each
# retry means another redemption took from the same budget meanwhile.
MAX_BUDGET_ATTEMPTS = 20
_FIELD_FOR_REASON = {
    rules.Reason.MIN_SPEND: "body.purchase_amount_minor",
    rules.Reason.CURRENCY: "body.currency",
}
_PERIOD_WORDS = {
    LimitPeriod.DAY: N_("today"),
    LimitPeriod.WEEK: N_("this week"),
    LimitPeriod.MONTH: N_("this month"),
    LimitPeriod.CAMPAIGN: N_("in this campaign"),
}


@dataclass(frozen=True, slots=True)
class Outcome:
    """The HTTP answer to a redemption request: new, or replayed for a repeated key."""

    status_code: int
    body: dict[str, Any]
    replayed: bool


Render = Callable[[Redemption], dict[str, Any]]


def redeem(
    uow: UnitOfWork,
    actor: Principal,
    request: RedemptionIn,
    *,
    secret: str,
    idempotency_key: str,
    fingerprint: str,
    lock_seconds: int,
    render: Render,
) -> Outcome:
    """Redeem once per `Idempotency-Key`: the same key and body answer what the first answered.

    The claim is taken before the code is checked, so a counter retrying after a lost response
    gets the original answer even once the code has expired.
    """
    _may_redeem(actor)
    held = idempotency.claim(
        uow,
        scope=f"redemptions:{actor.kind}:{actor.public_id}",
        key=idempotency_key,
        fingerprint=fingerprint,
        lock_seconds=lock_seconds,
    )
    if isinstance(held, idempotency.Replay):
        return Outcome(held.status_code, held.response, replayed=True)
    try:
        redemption = _record(uow, actor, request, secret=secret)
        body = render(redemption)
        held.complete(uow, 201, body)
        uow.commit()
    except BaseException:
        uow.rollback()
        idempotency.release(uow, held)
        raise
    return Outcome(201, body, replayed=False)


def _may_redeem(actor: Principal) -> None:
    """Redemptions are made at a merchant: by its users or systems, or by the bank's staff."""
    if actor.merchant_id is None and not actor.is_staff and actor.kind != "system":
        raise Forbidden(
            _("Redemptions are made by a merchant's staff or its point-of-sale system.")
        )


@dataclass(frozen=True, slots=True)
class _Visit:
    """Everything the checks read before the database enforces the counters."""

    code: MemberCode
    member: Member
    benefit: Benefit
    merchant: Merchant
    location_id: int | None
    amount: int | None
    currency: str


def _record(uow: UnitOfWork, actor: Principal, request: RedemptionIn, *, secret: str) -> Redemption:
    visit = _read_visit(uow, actor, request, secret=secret)
    now = uow.clock.now()
    reward = _reward_now(uow, visit, now)
    benefit = visit.benefit
    key = rules.period_key_at(benefit.limit_period, now, benefit.timezone)
    redemption = _insert_redemption(uow, actor, visit, key, now)
    _count_use(uow, benefit, visit.member.id, key)
    grant = _take_stock(uow, benefit, reward)
    merchant_funded, bank_funded = rules.funding_split(grant, benefit.merchant_share_bps)
    redemption.reward_minor = grant
    redemption.merchant_funded_minor = merchant_funded
    redemption.bank_funded_minor = bank_funded
    redemption.commission_minor = rules.commission_minor(visit.amount, benefit.commission_bps)
    uow.session.flush()
    postings.post_redemption(uow, redemption, benefit, visit.merchant, visit.member)
    audit.record(
        uow.session,
        actor=actor,
        at=now,
        action="redemption.created",
        object_type="redemption",
        object_id=redemption.public_id,
        after=audit.snapshot(redemption),
    )
    return redemption


def _read_visit(uow: UnitOfWork, actor: Principal, request: RedemptionIn, *, secret: str) -> _Visit:
    code = verify_member_code(secret, request.code, now=uow.clock.now(), field="body.code")
    member = alliance.member_by_number(uow, code.member_number)
    if member is None:
        raise invalid("body.code", _("not a member's code"))
    if member.status != MemberStatus.ACTIVE:
        raise NotEligible(
            _("This membership is not active."),
            errors=(FieldError("body.code", _("the membership is not active")),),
        )
    benefit = get_benefit(uow, actor, request.benefit_id, field="body.benefit_id")
    merchant = alliance.merchant_by_id(uow, benefit.merchant_id)
    location_id = None
    if request.location_id is not None:
        location = alliance.get_location(
            uow, merchant, request.location_id, field="body.location_id"
        )
        if not location.active:
            raise invalid("body.location_id", _("this location is closed"))
        location_id = location.id
    _check_redeemable(benefit, merchant)
    if request.purchase_amount_minor is None and rules.needs_amount(
        benefit.kind, benefit.min_spend_minor
    ):
        raise invalid(
            "body.purchase_amount_minor",
            _("required for a %(kind)s benefit or a minimum spend", kind=benefit.kind.value),
        )
    return _Visit(
        code=code,
        member=member,
        benefit=benefit,
        merchant=merchant,
        location_id=location_id,
        amount=request.purchase_amount_minor,
        currency=request.currency or benefit.currency,
    )


def _check_redeemable(benefit: Benefit, merchant: Merchant) -> None:
    if Channel.VOUCHER.value not in benefit.channels:
        raise NotEligible(
            _(
                "This benefit is not redeemed at the counter (it is %(channels)s).",
                channels=", ".join(benefit.channels).replace("_", "-"),
            ),
            errors=(FieldError("body.benefit_id", _("not a voucher benefit")),),
        )
    if benefit.status != BenefitStatus.ACTIVE:
        raise Conflict(
            _(
                "The benefit is %(status)s; only an active benefit can be redeemed.",
                status=benefit.status.value,
            ),
            extra={"current_status": benefit.status.value},
        )
    if merchant.status != MerchantStatus.ACTIVE:
        raise Conflict(
            _(
                "The merchant is %(status)s; it cannot redeem benefits now.",
                status=merchant.status.value,
            )
        )


def _reward_now(uow: UnitOfWork, visit: _Visit, now: datetime) -> int:
    """Eligibility now (DESIGN rule 4), then the reward (rule 5)."""
    terms = terms_of(visit.benefit)
    purchase = rules.Purchase(
        at=now,
        currency=visit.currency,
        amount_minor=visit.amount,
        member_circle_ids=(
            frozenset(alliance.member_circle_ids(uow, visit.member))
            if terms.target_circle_ids
            else frozenset()
        ),
        last_purchase_at=(
            last_redemption_at(uow, visit.member.id, visit.merchant.id, before=now)
            if terms.new_to_merchant_days
            else None
        ),
    )
    failure = rules.ineligibility(terms, purchase)
    if failure is not None:
        field = _FIELD_FOR_REASON.get(failure.reason)
        raise NotEligible(
            failure.message,
            errors=(FieldError(field, failure.message),) if field else (),
            extra={"reason": failure.reason.value},
        )
    if not rules.is_cash(terms.reward.kind):
        return 0
    assert visit.amount is not None  # required for cash kinds
    reward = rules.reward_minor(terms.reward, visit.amount)
    if reward == 0:
        message = _(
            "This purchase earns nothing: %(reward)s.",
            reward=rules.describe_reward(terms.reward, terms.currency),
        )
        raise NotEligible(
            message,
            errors=(FieldError("body.purchase_amount_minor", message),),
            extra={"reason": "no_reward"},
        )
    return reward


def last_redemption_at(
    uow: UnitOfWork, member_id: int, merchant_id: int, *, before: datetime
) -> datetime | None:
    """The member's latest standing redemption at the merchant (reversed ones do not count)."""
    latest: datetime | None = uow.session.scalar(
        select(func.max(Redemption.redeemed_at)).where(
            Redemption.member_id == member_id,
            Redemption.merchant_id == merchant_id,
            Redemption.status == RedemptionStatus.REDEEMED,
            Redemption.redeemed_at <= before,
        )
    )
    return _as_utc(latest)


def _as_utc(value: datetime | None) -> datetime | None:
    # An aggregate bypasses the column type, so SQLite hands back a naive UTC value or a string.
    if value is None or (isinstance(value, datetime) and value.tzinfo is not None):
        return value
    parsed = datetime.fromisoformat(value) if isinstance(value, str) else value
    return parsed.replace(tzinfo=UTC)


# -- the counters, enforced by the database, in a fixed order --------------------------------------


def _insert_redemption(
    uow: UnitOfWork, actor: Principal, visit: _Visit, key: str, now: datetime
) -> Redemption:
    redemption = Redemption(
        public_id=new_public_id("red"),
        benefit_id=visit.benefit.id,
        member_id=visit.member.id,
        member_number=visit.member.member_number,
        merchant_id=visit.merchant.id,
        location_id=visit.location_id,
        redeemed_by_id=actor.id if actor.kind == "user" else None,
        redeemed_by_client_id=actor.id if actor.kind == "client" else None,
        status=RedemptionStatus.REDEEMED,
        currency=visit.currency,
        purchase_amount_minor=visit.amount,
        reward_minor=0,
        merchant_funded_minor=0,
        bank_funded_minor=0,
        commission_minor=0,
        period_key=key,
        code_step=visit.code.step,
        redeemed_at=now,
    )
    uow.session.add(redemption)
    try:
        uow.session.flush()
    except IntegrityError as exc:
        if "code_step" not in str(exc.orig):
            raise
        raise Conflict(
            _("This member code has been used already: ask the member to show a fresh one."),
            errors=(FieldError("body.code", _("used already")),),
        ) from None
    return redemption


def _count_use(uow: UnitOfWork, benefit: Benefit, member_id: int, key: str) -> None:
    """One more use this period, unless the member has reached the limit (a conditional upsert)."""
    dialect = postgresql if uow.session.get_bind().dialect.name == "postgresql" else sqlite
    table = BenefitUsage.__table__
    stmt = dialect.insert(table).values(
        benefit_id=benefit.id, member_id=member_id, period_key=key, uses=1
    )
    limit_ok = table.c.uses < benefit.member_limit if benefit.member_limit is not None else None
    stmt = stmt.on_conflict_do_update(
        index_elements=[table.c.benefit_id, table.c.member_id, table.c.period_key],
        set_={"uses": table.c.uses + 1},
        where=limit_ok,
    ).returning(table.c.uses)
    if uow.session.execute(stmt).first() is None:
        limit = benefit.member_limit or 0
        raise LimitReached(
            _(
                "The member has used this benefit %(times)s %(period)s, the most it allows.",
                times=ngettext("once", "%(num)d times", limit),
                period=_(_PERIOD_WORDS[benefit.limit_period]),
            ),
            extra={"limit": "member", "period_key": key},
        )


def _take_stock(uow: UnitOfWork, benefit: Benefit, reward: int) -> int:
    """Take one of the quantity and the grant from the budget; returns the grant.

    The grant is `min(reward, remaining budget)` (DESIGN rule 6). The whole reward is taken by
    `... WHERE budget_remaining_minor >= reward`; when that finds too little, the remainder is
    taken only if it is still exactly what was read, so nothing is ever taken twice.
    """
    if benefit.quantity is None and benefit.budget_minor is None:
        # Nothing to count: the benefit row is not touched, so unlimited benefits never queue
        # on it (its state was checked when it was read).
        return reward
    if _take(uow, benefit, reward, exact=False):
        return reward
    for _attempt in range(MAX_BUDGET_ATTEMPTS):
        left = _remaining(uow, benefit.id)
        _refuse_when_empty(benefit, left)
        budget_left = left[1]
        if budget_left is None or budget_left >= reward:
            if _take(uow, benefit, reward, exact=False):
                return reward
        elif _take(uow, benefit, budget_left, exact=True):
            return budget_left
    raise Conflict(_("The benefit is very busy right now; try again in a moment."))


def _take(uow: UnitOfWork, benefit: Benefit, grant: int, *, exact: bool) -> bool:
    conditions: list[ColumnElement[bool]] = [
        Benefit.id == benefit.id,
        Benefit.status == BenefitStatus.ACTIVE,
    ]
    values: dict[str, Any] = {}
    if benefit.quantity is not None:
        conditions.append(Benefit.quantity_remaining >= 1)
        values["quantity_remaining"] = Benefit.quantity_remaining - 1
    if benefit.budget_minor is not None:
        conditions.append(
            Benefit.budget_remaining_minor == grant
            if exact
            else Benefit.budget_remaining_minor >= grant
        )
        conditions.append(Benefit.budget_remaining_minor > 0)
        values["budget_remaining_minor"] = Benefit.budget_remaining_minor - grant
    result = uow.session.execute(
        update(Benefit)
        .where(*conditions)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    taken: bool = result.rowcount == 1  # type: ignore[attr-defined]
    return taken


def _remaining(uow: UnitOfWork, benefit_id: int) -> tuple[BenefitStatus, int | None, int | None]:
    row = uow.session.execute(
        select(Benefit.status, Benefit.budget_remaining_minor, Benefit.quantity_remaining).where(
            Benefit.id == benefit_id
        )
    ).one()
    status, budget, quantity = row
    return status, budget, quantity


def _refuse_when_empty(
    benefit: Benefit, left: tuple[BenefitStatus, int | None, int | None]
) -> None:
    status, budget, quantity = left
    if status != BenefitStatus.ACTIVE:
        raise Conflict(
            _(
                "The benefit is %(status)s; only an active benefit can be redeemed.",
                status=status.value,
            ),
            extra={"current_status": status.value},
        )
    if quantity is not None and quantity <= 0:
        raise LimitReached(
            _("All %(quantity)s of this benefit have been redeemed.", quantity=benefit.quantity),
            extra={"limit": "quantity"},
        )
    if budget is not None and budget <= 0:
        spent = Money(benefit.budget_minor or 0, benefit.currency).format()
        raise LimitReached(
            _("The benefit's budget (%(spent)s) has been spent.", spent=spent),
            extra={"limit": "budget"},
        )


# -- reversal --------------------------------------------------------------------------------------


def reverse(uow: UnitOfWork, actor: Principal, redemption: Redemption, reason: str) -> Redemption:
    """Undo a redemption: give back the budget, the quantity and the member's use for that period.

    The status moves by a conditional UPDATE, so two reversals racing restore the counters once.
    """
    target = lifecycle.redemption_next(redemption.status, "reverse")
    now = uow.clock.now()
    moved = uow.session.execute(
        update(Redemption)
        .where(Redemption.id == redemption.id, Redemption.status == RedemptionStatus.REDEEMED)
        .values(status=target, reversed_at=now, reversal_reason=reason)
        .execution_options(synchronize_session=False)
    )
    if moved.rowcount != 1:  # type: ignore[attr-defined]
        raise InvalidTransition(
            _("Cannot reverse a redemption that is reversed."), extra={"current_status": "reversed"}
        )
    _give_back(uow, redemption)
    uow.session.refresh(redemption)
    postings.reverse_redemption(uow, redemption, reason)
    audit.record(
        uow.session,
        actor=actor,
        at=now,
        action="redemption.reversed",
        object_type="redemption",
        object_id=redemption.public_id,
        before={"status": RedemptionStatus.REDEEMED.value},
        after={"status": target.value, "reversed_at": now.isoformat()},
        reason=reason,
    )
    uow.commit()
    return redemption


def _give_back(uow: UnitOfWork, redemption: Redemption) -> None:
    uow.session.execute(
        update(BenefitUsage)
        .where(
            BenefitUsage.benefit_id == redemption.benefit_id,
            BenefitUsage.member_id == redemption.member_id,
            BenefitUsage.period_key == redemption.period_key,
            BenefitUsage.uses > 0,
        )
        .values(uses=BenefitUsage.uses - 1)
        .execution_options(synchronize_session=False)
    )
    values: dict[str, Any] = {
        "quantity_remaining": Benefit.quantity_remaining + 1,  # NULL stays NULL: no quantity
        "budget_remaining_minor": Benefit.budget_remaining_minor + redemption.reward_minor,
    }
    uow.session.execute(
        update(Benefit)
        .where(Benefit.id == redemption.benefit_id)
        .values(**values)
        .execution_options(synchronize_session=False)
    )


# -- reads ------------------------------------------------------------------------------------------


def get_redemption(uow: UnitOfWork, actor: Principal, public_id: str) -> Redemption:
    redemption = uow.session.scalars(
        select(Redemption).where(Redemption.public_id == public_id)
    ).one_or_none()
    if redemption is None:
        raise NotFound(_("No redemption %(public_id)r here.", public_id=public_id))
    ensure_visible(actor, redemption.merchant_id, N_("redemption"), public_id)
    return redemption


@dataclass(frozen=True, slots=True)
class RedemptionFilters:
    benefit_id: str | None = None
    merchant_id: str | None = None
    location_id: str | None = None
    status: RedemptionStatus | None = None
    member_number: str | None = None
    redeemed_from: datetime | None = None
    redeemed_to: datetime | None = None


def list_redemptions(
    uow: UnitOfWork,
    actor: Principal,
    filters: RedemptionFilters,
    *,
    cursor: str | None,
    limit: int,
) -> tuple[Sequence[Redemption], str | None]:
    """Merchants see their own redemptions; the bank's staff see all."""
    if actor.kind == "customer":
        raise Forbidden(_("Members see their redemptions under /me/redemptions."))
    stmt = select(Redemption)
    if actor.merchant_id is not None:
        stmt = stmt.where(Redemption.merchant_id == actor.merchant_id)
    stmt = _filtered(uow, actor, stmt, filters)
    return paginate(uow.session, stmt, Redemption.id, cursor=cursor, limit=limit)


def _filtered(
    uow: UnitOfWork, actor: Principal, stmt: Select[Redemption], filters: RedemptionFilters
) -> Select[Redemption]:
    if filters.benefit_id is not None:
        benefit = get_benefit(uow, actor, filters.benefit_id, field="query.benefit_id")
        stmt = stmt.where(Redemption.benefit_id == benefit.id)
    merchant = None
    if filters.merchant_id is not None:
        merchant = alliance.get_merchant(uow, actor, filters.merchant_id, field="query.merchant_id")
        stmt = stmt.where(Redemption.merchant_id == merchant.id)
    if filters.location_id is not None:
        if merchant is None and actor.merchant_id is not None:
            merchant = alliance.merchant_by_id(uow, actor.merchant_id)
        if merchant is None:
            raise invalid("query.location_id", _("filter by merchant_id too"))
        location = alliance.get_location(
            uow, merchant, filters.location_id, field="query.location_id"
        )
        stmt = stmt.where(Redemption.location_id == location.id)
    if filters.status is not None:
        stmt = stmt.where(Redemption.status == filters.status)
    if filters.member_number is not None:
        stmt = stmt.where(Redemption.member_number == filters.member_number)
    if filters.redeemed_from is not None:
        stmt = stmt.where(Redemption.redeemed_at >= filters.redeemed_from)
    if filters.redeemed_to is not None:
        stmt = stmt.where(Redemption.redeemed_at < filters.redeemed_to)
    return stmt


def member_redemptions(
    uow: UnitOfWork, member: Member | None, *, cursor: str | None, limit: int
) -> tuple[Sequence[Redemption], str | None]:
    if member is None:
        return [], None
    stmt = select(Redemption).where(Redemption.member_id == member.id)
    return paginate(uow.session, stmt, Redemption.id, cursor=cursor, limit=limit)


def count_redemptions(uow: UnitOfWork, *, since: datetime, status: RedemptionStatus) -> int:
    """Redemptions made since `since` that are still in `status` (e.g. not reversed)."""
    return (
        uow.session.scalar(
            select(func.count()).where(Redemption.redeemed_at >= since, Redemption.status == status)
        )
        or 0
    )
