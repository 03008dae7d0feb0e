"""Benefit use cases: create and edit, the approval lifecycle, live changes, reads, member codes."""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import segno
from sqlalchemy import ColumnElement, Select, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from beyondbank.alliance import service as alliance
from beyondbank.alliance.models import Member, Merchant, MerchantLocation, MerchantStatus
from beyondbank.benefits import lifecycle, rules
from beyondbank.benefits.integrity import PriceDeclaration, Verdict, check_price_integrity
from beyondbank.benefits.lifecycle import BenefitAction
from beyondbank.benefits.models import (
    Benefit,
    BenefitKind,
    BenefitStatus,
    BenefitTarget,
    BenefitUsage,
    Channel,
    Redemption,
)
from beyondbank.benefits.schemas import (
    BANK_TERMS,
    ApproveIn,
    BenefitIn,
    BenefitTermsIn,
    ExtendIn,
    validate_terms,
)
from beyondbank.core import audit
from beyondbank.core.authz import Principal
from beyondbank.core.errors import (
    Conflict,
    FieldError,
    Forbidden,
    NotFound,
    Problem,
    invalid,
)
from beyondbank.core.geo import distance_m
from beyondbank.core.i18n import N_, _
from beyondbank.core.ids import new_public_id
from beyondbank.core.pagination import paginate
from beyondbank.core.tokens import CODE_STEP_SECONDS, code_expires_at, code_step, member_code
from beyondbank.core.uow import UnitOfWork

DEFAULT_MERCHANT_SHARE_BPS = 10_000  # merchant-funded unless the bank agrees to co-fund
DEFAULT_COMMISSION_BPS = 0


class PriceIntegrity(Problem):
    status = 422
    slug = "price-integrity"
    title = N_("Not better than what everyone gets")


# -- plain terms for the rules ----------------------------------------------------------------


def schedule_of(benefit: Benefit) -> rules.Schedule:
    return rules.Schedule(
        valid_from=benefit.valid_from,
        valid_to=benefit.valid_to,
        weekdays=frozenset(benefit.weekdays),
        hour_start=benefit.hour_start,
        hour_end=benefit.hour_end,
        timezone=benefit.timezone,
    )


def reward_of(benefit: Benefit | BenefitTermsIn) -> rules.RewardTerms:
    return rules.RewardTerms(
        kind=benefit.kind,
        percent_bps=benefit.percent_bps,
        max_reward_minor=benefit.max_reward_minor,
        fixed_minor=benefit.fixed_minor,
        threshold_minor=benefit.threshold_minor,
    )


def terms_of(benefit: Benefit) -> rules.BenefitTerms:
    return rules.BenefitTerms(
        id=benefit.id,
        active=benefit.status == BenefitStatus.ACTIVE,
        currency=benefit.currency,
        schedule=schedule_of(benefit),
        reward=reward_of(benefit),
        min_spend_minor=benefit.min_spend_minor,
        target_circle_ids=frozenset(t.circle_id for t in benefit.targets),
        new_to_merchant_days=benefit.new_to_merchant_days,
        member_limit=benefit.member_limit,
        limit_period=benefit.limit_period,
    )


def declaration_of(benefit: Benefit | BenefitTermsIn) -> PriceDeclaration:
    return PriceDeclaration(
        regular_price_minor=benefit.regular_price_minor,
        public_price_minor=benefit.public_price_minor,
        public_discount_bps=benefit.public_discount_bps,
        publicly_available=benefit.publicly_available,
    )


def price_verdict(benefit: Benefit) -> Verdict:
    return check_price_integrity(
        reward_of(benefit), benefit.currency, benefit.min_spend_minor, declaration_of(benefit)
    )


def local_today(benefit: Benefit, now: datetime) -> date:
    return rules.local_time(now, benefit.timezone).date()


# -- reads --------------------------------------------------------------------------------------


def get_benefit(
    uow: UnitOfWork, actor: Principal, public_id: str, *, field: str | None = None
) -> Benefit:
    """A benefit the actor may see; another merchant's answers 404, exactly like a missing one."""
    benefit = uow.session.scalars(
        select(Benefit).where(Benefit.public_id == public_id)
    ).one_or_none()
    if benefit is None or not visible_to(actor, benefit.merchant_id):
        errors = (FieldError(field, _("no such benefit")),) if field else ()
        raise NotFound(_("No benefit %(public_id)r here.", public_id=public_id), errors=errors)
    return benefit


def visible_to(actor: Principal, merchant_id: int) -> bool:
    """A principal bound to a merchant sees only that merchant's objects."""
    return actor.merchant_id is None or actor.merchant_id == merchant_id


def benefit_by_id(uow: UnitOfWork, benefit_id: int) -> Benefit:
    return uow.session.get_one(Benefit, benefit_id)


def benefits_by_ids(uow: UnitOfWork, ids: set[int]) -> dict[int, Benefit]:
    if not ids:
        return {}
    return {b.id: b for b in uow.session.scalars(select(Benefit).where(Benefit.id.in_(ids)))}


def list_benefits(
    uow: UnitOfWork,
    actor: Principal,
    *,
    merchant_id: str | None = None,
    status: BenefitStatus | None = None,
    kind: BenefitKind | None = None,
    cursor: str | None = None,
    limit: int,
) -> tuple[Sequence[Benefit], str | None]:
    """Merchants see their own benefits; the bank's staff and unbound partner systems see all."""
    refuse_customers(actor)
    stmt = select(Benefit)
    if actor.merchant_id is not None:
        stmt = stmt.where(Benefit.merchant_id == actor.merchant_id)
    if merchant_id is not None:
        merchant = alliance.get_merchant(uow, actor, merchant_id, field="query.merchant_id")
        stmt = stmt.where(Benefit.merchant_id == merchant.id)
    if status is not None:
        stmt = stmt.where(Benefit.status == status)
    if kind is not None:
        stmt = stmt.where(Benefit.kind == kind)
    return paginate(uow.session, stmt, Benefit.id, cursor=cursor, limit=limit)


def target_refs(uow: UnitOfWork, benefits: Sequence[Benefit]) -> dict[int, str]:
    """Public ids of the circles the benefits target."""
    return alliance.circle_public_ids(uow, {t.circle_id for b in benefits for t in b.targets})


def refuse_customers(actor: Principal) -> None:
    if actor.kind == "customer":
        raise Forbidden(_("Members see benefits under /me/benefits."))


# -- create and edit ----------------------------------------------------------------------------


def create_benefit(
    uow: UnitOfWork, actor: Principal, data: BenefitIn, *, default_currency: str
) -> Benefit:
    """A draft benefit for the actor's merchant (or, for the bank, the named merchant)."""
    benefit = add_benefit(uow, actor, data, default_currency=default_currency)
    uow.commit()
    return benefit


def add_benefit(
    uow: UnitOfWork, actor: Principal, data: BenefitIn, *, default_currency: str
) -> Benefit:
    """Check and add a draft benefit without committing, so that a program import can add many
    and commit them together (or none). Raises the same problems as `create_benefit`."""
    merchant = _merchant_for(uow, actor, data.merchant_id)
    _refuse_bank_terms(actor, data.model_fields_set)
    circle_ids = alliance.circle_ids_for(
        uow, data.target_circle_ids, field="body.target_circle_ids"
    )
    now = uow.clock.now()
    benefit = Benefit(
        public_id=new_public_id("ben"),
        merchant_id=merchant.id,
        status=BenefitStatus.DRAFT,
        merchant_share_bps=DEFAULT_MERCHANT_SHARE_BPS,
        commission_bps=DEFAULT_COMMISSION_BPS,
        created_at=now,
        updated_at=now,
    )
    _apply_terms(benefit, data, merchant, default_currency)
    benefit.targets = [BenefitTarget(circle_id=cid) for cid in circle_ids]
    _check_dates_ahead(benefit, now)
    _ensure_price_integrity(benefit)
    uow.session.add(benefit)
    uow.session.flush()
    audit.record(
        uow.session,
        actor=actor,
        at=now,
        action="benefit.created",
        object_type="benefit",
        object_id=benefit.public_id,
        after=_snapshot(uow, benefit),
    )
    return benefit


def update_benefit(
    uow: UnitOfWork, actor: Principal, benefit: Benefit, changes: dict[str, Any]
) -> Benefit:
    """Edit a draft or rejected benefit; the edited terms are checked as a whole."""
    lifecycle.benefit_next(benefit.status, BenefitAction.EDIT)
    _refuse_bank_terms(actor, set(changes))
    merged = _merge(_as_terms(uow, benefit), changes)
    data = validate_terms(merged)
    circle_ids = alliance.circle_ids_for(
        uow, data.target_circle_ids, field="body.target_circle_ids"
    )
    before = _snapshot(uow, benefit)
    merchant = alliance.merchant_by_id(uow, benefit.merchant_id)
    _apply_terms(benefit, data, merchant, benefit.currency)
    if {t.circle_id for t in benefit.targets} != set(circle_ids):
        benefit.targets = [BenefitTarget(circle_id=cid) for cid in circle_ids]
    now = uow.clock.now()
    _check_dates_ahead(benefit, now)
    _ensure_price_integrity(benefit)
    uow.session.flush()
    if audit.record_changes(
        uow.session,
        actor=actor,
        at=now,
        action="benefit.updated",
        object_type="benefit",
        object_id=benefit.public_id,
        before=before,
        after=_snapshot(uow, benefit),
    ):
        benefit.updated_at = now
    uow.commit()
    return benefit


def _merchant_for(uow: UnitOfWork, actor: Principal, public_id: str | None) -> Merchant:
    if public_id is not None:
        return alliance.get_merchant(uow, actor, public_id, field="body.merchant_id")
    if actor.merchant_id is None:
        raise invalid("body.merchant_id", _("name the merchant the benefit belongs to"))
    return alliance.merchant_by_id(uow, actor.merchant_id)


def _refuse_bank_terms(actor: Principal, fields: set[str]) -> None:
    """Funding and commission are the bank's terms: a merchant cannot set its own."""
    if actor.merchant_id is None:
        return
    errors = tuple(
        FieldError(f"body.{name}", _("set by the bank's program manager when it approves"))
        for name in BANK_TERMS
        if name in fields
    )
    if errors:
        raise Forbidden(_("Funding and commission are set by the bank."), errors=errors)


def _apply_terms(
    benefit: Benefit, data: BenefitTermsIn, merchant: Merchant, default_currency: str
) -> None:
    """Copy validated terms onto the benefit; a new budget or quantity starts full."""
    benefit.title = data.title
    benefit.description = data.description
    benefit.kind = data.kind
    benefit.channels = [c.value for c in data.channels]
    benefit.currency = data.currency or benefit.currency or default_currency
    benefit.valid_from = data.valid_from
    benefit.valid_to = data.valid_to
    benefit.weekdays = list(data.weekdays)
    benefit.hour_start = data.hour_start
    benefit.hour_end = data.hour_end
    benefit.timezone = data.timezone or merchant.timezone
    for name in (
        "min_spend_minor",
        "percent_bps",
        "max_reward_minor",
        "threshold_minor",
        "fixed_minor",
        "points_multiplier",
        "offer_details",
        "member_limit",
        "limit_period",
        "new_to_merchant_days",
        "stacking",
        "regular_price_minor",
        "public_price_minor",
        "public_discount_bps",
    ):
        setattr(benefit, name, getattr(data, name))
    benefit.publicly_available = bool(data.publicly_available)
    benefit.budget_minor = benefit.budget_remaining_minor = data.budget_minor
    benefit.quantity = benefit.quantity_remaining = data.quantity
    if data.merchant_share_bps is not None:
        benefit.merchant_share_bps = data.merchant_share_bps
    if data.commission_bps is not None:
        benefit.commission_bps = data.commission_bps


def _as_terms(uow: UnitOfWork, benefit: Benefit) -> dict[str, Any]:
    """The stored benefit in the request's shape, so an edit can be checked as a whole."""
    fields = set(BenefitTermsIn.model_fields) - {"target_circle_ids", "publicly_available"}
    terms = {name: getattr(benefit, name) for name in fields}
    terms["target_circle_ids"] = sorted(target_refs(uow, [benefit]).values())
    # Only non-price kinds declare availability; price kinds keep it unset.
    terms["publicly_available"] = (
        None if rules.is_cash(benefit.kind) else benefit.publicly_available
    )
    return terms


def _merge(current: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """Apply changes; a change of kind drops the old kind's terms the edit does not restate."""
    merged = dict(current)
    new_kind = changes.get("kind")
    if new_kind is not None and new_kind != current["kind"]:
        for name in (*rules.KIND_SPECIFIC, *rules.PRICE_FIELDS, "publicly_available"):
            merged[name] = None
        if not rules.is_cash(BenefitKind(new_kind)):
            merged["budget_minor"] = None
    merged.update(changes)
    return merged


def _check_dates_ahead(benefit: Benefit, now: datetime) -> None:
    if benefit.valid_to < local_today(benefit, now):
        raise invalid(
            "body.valid_to", _("is in the past (%(timezone)s)", timezone=benefit.timezone)
        )


def _ensure_price_integrity(benefit: Benefit) -> None:
    verdict = price_verdict(benefit)
    if not verdict.accepted:
        raise PriceIntegrity(
            verdict.reason,
            errors=tuple(FieldError(f"body.{name}", verdict.reason) for name in verdict.fields),
            extra={
                "member_price_minor": verdict.member_price_minor,
                "public_price_minor": verdict.public_price_minor,
            },
        )


def _snapshot(uow: UnitOfWork, benefit: Benefit) -> dict[str, Any]:
    data = audit.snapshot(benefit)
    data["target_circle_ids"] = sorted(target_refs(uow, [benefit]).values())
    return data


# -- lifecycle ----------------------------------------------------------------------------------


def submit(uow: UnitOfWork, actor: Principal, benefit: Benefit) -> Benefit:
    """Ask the bank to approve: the terms are checked again, price integrity included."""
    now = uow.clock.now()
    _check_dates_ahead(benefit, now)
    _ensure_price_integrity(benefit)
    return _transition(
        uow,
        actor,
        benefit,
        BenefitAction.SUBMIT,
        submitted_at=now,
        decided_at=None,
        decided_by_id=None,
        decision_reason=None,
    )


def withdraw(uow: UnitOfWork, actor: Principal, benefit: Benefit) -> Benefit:
    return _transition(uow, actor, benefit, BenefitAction.WITHDRAW, submitted_at=None)


def approve(uow: UnitOfWork, actor: Principal, benefit: Benefit, decision: ApproveIn) -> Benefit:
    """The bank's program manager puts the benefit live, setting funding and commission."""
    lifecycle.benefit_next(benefit.status, BenefitAction.APPROVE)
    _ensure_can_go_live(uow, benefit)
    _ensure_price_integrity(benefit)
    changes: dict[str, Any] = {
        "decided_at": uow.clock.now(),
        "decided_by_id": _user_id(actor),
        "decision_reason": decision.note,
    }
    if decision.merchant_share_bps is not None:
        changes["merchant_share_bps"] = decision.merchant_share_bps
    if decision.commission_bps is not None:
        changes["commission_bps"] = decision.commission_bps
    return _transition(uow, actor, benefit, BenefitAction.APPROVE, reason=decision.note, **changes)


def reject(uow: UnitOfWork, actor: Principal, benefit: Benefit, reason: str) -> Benefit:
    return _transition(
        uow,
        actor,
        benefit,
        BenefitAction.REJECT,
        reason=reason,
        decided_at=uow.clock.now(),
        decided_by_id=_user_id(actor),
        decision_reason=reason,
    )


def pause(uow: UnitOfWork, actor: Principal, benefit: Benefit, reason: str | None) -> Benefit:
    return _transition(uow, actor, benefit, BenefitAction.PAUSE, reason=reason)


def resume(uow: UnitOfWork, actor: Principal, benefit: Benefit) -> Benefit:
    lifecycle.benefit_next(benefit.status, BenefitAction.RESUME)
    _ensure_can_go_live(uow, benefit)
    return _transition(uow, actor, benefit, BenefitAction.RESUME)


def end(uow: UnitOfWork, actor: Principal, benefit: Benefit, reason: str | None) -> Benefit:
    return _transition(uow, actor, benefit, BenefitAction.END, reason=reason)


def extend(uow: UnitOfWork, actor: Principal, benefit: Benefit, change: ExtendIn) -> Benefit:
    """Top up a live benefit's budget or quantity, or move its end date later.

    Budget and quantity grow by a relative UPDATE, so redemptions running at the same time
    are never lost (reading, adding and writing back would overwrite them).
    """
    lifecycle.benefit_next(benefit.status, BenefitAction.EXTEND)
    _check_extension(benefit, change)
    before = audit.snapshot(
        benefit, ["budget_minor", "budget_remaining_minor", "quantity", "quantity_remaining"]
    )
    before["valid_to"] = benefit.valid_to.isoformat()
    values: dict[str, Any] = {"updated_at": uow.clock.now()}
    if change.add_budget_minor is not None:
        values["budget_minor"] = Benefit.budget_minor + change.add_budget_minor
        values["budget_remaining_minor"] = Benefit.budget_remaining_minor + change.add_budget_minor
    if change.add_quantity is not None:
        values["quantity"] = Benefit.quantity + change.add_quantity
        values["quantity_remaining"] = Benefit.quantity_remaining + change.add_quantity
    if change.valid_to is not None:
        values["valid_to"] = change.valid_to
    uow.session.execute(
        update(Benefit)
        .where(Benefit.id == benefit.id)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    uow.session.refresh(benefit)
    after = audit.snapshot(
        benefit, ["budget_minor", "budget_remaining_minor", "quantity", "quantity_remaining"]
    )
    after["valid_to"] = benefit.valid_to.isoformat()
    audit.record(
        uow.session,
        actor=actor,
        at=uow.clock.now(),
        action="benefit.extended",
        object_type="benefit",
        object_id=benefit.public_id,
        before=before,
        after=after,
        reason=change.reason,
    )
    uow.commit()
    return benefit


def _check_extension(benefit: Benefit, change: ExtendIn) -> None:
    if change.add_budget_minor is not None and benefit.budget_minor is None:
        raise invalid("body.add_budget_minor", _("this benefit has no budget to top up"))
    if change.add_quantity is not None and benefit.quantity is None:
        raise invalid("body.add_quantity", _("this benefit has no quantity to top up"))
    if change.valid_to is not None and change.valid_to <= benefit.valid_to:
        raise invalid(
            "body.valid_to",
            _(
                "an extension ends later than the current end (%(valid_to)s)",
                valid_to=benefit.valid_to,
            ),
        )


def _ensure_can_go_live(uow: UnitOfWork, benefit: Benefit) -> None:
    merchant = alliance.merchant_by_id(uow, benefit.merchant_id)
    if merchant.status != MerchantStatus.ACTIVE:
        raise Conflict(
            _(
                "The merchant is %(status)s: only an active merchant's benefit can go live.",
                status=merchant.status.value,
            )
        )
    if benefit.valid_to < local_today(benefit, uow.clock.now()):
        raise Conflict(
            _("The benefit's dates are over (it ended on %(valid_to)s).", valid_to=benefit.valid_to)
        )


def _transition(
    uow: UnitOfWork,
    actor: Principal,
    benefit: Benefit,
    action: BenefitAction,
    *,
    reason: str | None = None,
    **changes: Any,
) -> Benefit:
    """Move along the transition table (409 naming the state otherwise), recorded in the trail."""
    target = lifecycle.benefit_next(benefit.status, action)
    now = uow.clock.now()
    before = audit.snapshot(benefit, ["status", *changes])
    benefit.status = target
    for name, value in changes.items():
        setattr(benefit, name, value)
    benefit.updated_at = now
    audit.record(
        uow.session,
        actor=actor,
        at=now,
        action=f"benefit.{action.value}",
        object_type="benefit",
        object_id=benefit.public_id,
        before=before,
        after=audit.snapshot(benefit, ["status", *changes]),
        reason=reason,
    )
    uow.commit()
    return benefit


def _user_id(actor: Principal) -> int | None:
    return actor.id if actor.kind == "user" else None


# -- what members see ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MemberBenefit:
    """One active benefit from a member's point of view."""

    benefit: Benefit
    merchant: Merchant
    uses_this_period: int
    remaining_this_period: int | None  # None: no limit
    unavailable: rules.Ineligibility | None  # why it does not apply right now


def member_of(uow: UnitOfWork, actor: Principal) -> Member | None:
    """The signed-in customer's active membership (None if they have not joined)."""
    if actor.customer_id is None:
        raise Forbidden(_("Only the bank's customers have member benefits and codes."))
    return alliance.member_for_customer(uow, actor.customer_id)


def _member_visible(
    uow: UnitOfWork, member: Member | None, circle_ids: Iterable[int] | None = None
) -> ColumnElement[bool]:
    """Active benefits the member is targeted by; untargeted ones are for everyone. The member's
    circles are worked out here unless the caller knows them already."""
    untargeted = ~Benefit.targets.any()
    if member is None:
        return (Benefit.status == BenefitStatus.ACTIVE) & untargeted
    circles = alliance.member_circle_ids(uow, member) if circle_ids is None else set(circle_ids)
    targeted = Benefit.targets.any(BenefitTarget.circle_id.in_(circles))
    return (Benefit.status == BenefitStatus.ACTIVE) & or_(untargeted, targeted)


def member_benefits(
    uow: UnitOfWork,
    actor: Principal,
    *,
    merchant_id: str | None,
    kind: BenefitKind | None,
    cursor: str | None,
    limit: int,
) -> tuple[list[MemberBenefit], str | None]:
    member = member_of(uow, actor)
    now = uow.clock.now()
    # Each benefit's last day is in its own zone: a day of slack keeps those not over anywhere.
    stmt: Select[Benefit] = select(Benefit).where(
        _member_visible(uow, member), Benefit.valid_to >= (now - timedelta(days=1)).date()
    )
    if merchant_id is not None:
        merchant = alliance.get_merchant(uow, actor, merchant_id, field="query.merchant_id")
        stmt = stmt.where(Benefit.merchant_id == merchant.id)
    if kind is not None:
        stmt = stmt.where(Benefit.kind == kind)
    rows, next_cursor = paginate(uow.session, stmt, Benefit.id, cursor=cursor, limit=limit)
    merchants = alliance.merchants_by_ids(uow, {b.merchant_id for b in rows})
    uses = _uses_this_period(uow, rows, member, now)
    views = [_member_view(b, merchants[b.merchant_id], uses.get(b.id, 0), now) for b in rows]
    return views, next_cursor


def member_benefit(uow: UnitOfWork, actor: Principal, public_id: str) -> MemberBenefit:
    """A benefit's page for a member: what, where, when, and my remaining uses this period."""
    member = member_of(uow, actor)
    benefit = uow.session.scalars(
        select(Benefit).where(Benefit.public_id == public_id, _member_visible(uow, member))
    ).one_or_none()
    if benefit is None:
        raise NotFound(_("No benefit %(public_id)r here.", public_id=public_id))
    now = uow.clock.now()
    uses = _uses_this_period(uow, [benefit], member, now).get(benefit.id, 0)
    return _member_view(benefit, alliance.merchant_by_id(uow, benefit.merchant_id), uses, now)


def _uses_this_period(
    uow: UnitOfWork, benefits: Sequence[Benefit], member: Member | None, now: datetime
) -> dict[int, int]:
    """The member's uses of each benefit in that benefit's current period, in one query."""
    if member is None or not benefits:
        return {}
    keys = {b.id: rules.period_key_at(b.limit_period, now, b.timezone) for b in benefits}
    rows = uow.session.execute(
        select(BenefitUsage.benefit_id, BenefitUsage.period_key, BenefitUsage.uses).where(
            BenefitUsage.member_id == member.id, BenefitUsage.benefit_id.in_(keys)
        )
    )
    return {r.benefit_id: r.uses for r in rows if keys[r.benefit_id] == r.period_key}


def _member_view(benefit: Benefit, merchant: Merchant, uses: int, now: datetime) -> MemberBenefit:
    remaining = None if benefit.member_limit is None else max(0, benefit.member_limit - uses)
    terms = terms_of(benefit)
    unavailable = rules.schedule_failure(terms.schedule, now)
    return MemberBenefit(
        benefit=benefit,
        merchant=merchant,
        uses_this_period=uses,
        remaining_this_period=remaining,
        unavailable=unavailable,
    )


# -- the member's dynamic code ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MemberCode:
    code: str
    member_number: str
    expires_at: datetime
    refresh_after_seconds: int
    qr_svg: str


def current_member_code(uow: UnitOfWork, actor: Principal, *, secret: str) -> MemberCode:
    """The member's code for this 30-second window, and the same code as an SVG QR code."""
    member = member_of(uow, actor)
    if member is None:
        raise NotFound(_("You are not a member of the alliance yet: join to get a member code."))
    now = uow.clock.now()
    step = code_step(now)
    code = member_code(secret, member.member_number, step)
    window_end = (step + 1) * CODE_STEP_SECONDS
    return MemberCode(
        code=code,
        member_number=member.member_number,
        expires_at=code_expires_at(step, now.tzinfo),
        refresh_after_seconds=max(1, window_end - int(now.timestamp())),
        qr_svg=qr_svg(code),
    )


def qr_svg(text: str) -> str:
    """An SVG QR code of `text`, at medium error correction so a scuffed screen still scans."""
    buffer = io.BytesIO()
    segno.make(text, error="m", micro=False).save(
        buffer, kind="svg", scale=6, border=4, xmldecl=False, title=_("Member code")
    )
    return buffer.getvalue().decode()


def count_benefits(uow: UnitOfWork, status: BenefitStatus) -> int:
    return uow.session.scalar(select(func.count()).where(Benefit.status == status)) or 0


# -- what the card-linked engine reads and writes (in bulk) ---------------------------------

CARD_KINDS = (
    BenefitKind.PERCENT_OFF,
    BenefitKind.AMOUNT_OFF,
    BenefitKind.SPEND_THRESHOLD,
    BenefitKind.POINTS_MULTIPLIER,
)


def card_linked_benefits(
    uow: UnitOfWork, *, merchant_ids: Sequence[int] | None = None, lock: bool = False
) -> list[Benefit]:
    """The card-linked benefits the engine may grant (cash kinds and points multipliers) with
    their targets, of these merchants or all. `lock` takes the rows of those with a budget or
    quantity, in id order, so voucher redemptions (and other card runs) wait while a chunk of
    card transactions spends the same budgets."""
    query = (
        select(Benefit)
        .where(Benefit.kind.in_(CARD_KINDS), Benefit.status != BenefitStatus.DRAFT)
        .order_by(Benefit.id)
    )
    if merchant_ids is not None:
        query = query.where(Benefit.merchant_id.in_(sorted(set(merchant_ids))))
    benefits = [
        b for b in uow.session.scalars(query).unique() if Channel.CARD_LINKED.value in b.channels
    ]
    capped = [b.id for b in benefits if b.budget_minor is not None or b.quantity is not None]
    if lock and capped:
        fresh = uow.session.execute(
            select(Benefit.id, Benefit.budget_remaining_minor, Benefit.quantity_remaining)
            .where(Benefit.id.in_(capped))
            .order_by(Benefit.id)
            .with_for_update()
        ).all()
        remaining = {r.id: (r.budget_remaining_minor, r.quantity_remaining) for r in fresh}
        for b in benefits:
            if b.id in remaining:
                b.budget_remaining_minor, b.quantity_remaining = remaining[b.id]
    return benefits


def usage_of(
    uow: UnitOfWork, member_ids: Iterable[int], benefit_ids: Iterable[int]
) -> list[tuple[int, int, str, int]]:
    """(benefit id, member id, period key, uses) for these members and benefits."""
    members = sorted(set(member_ids))
    benefits = sorted(set(benefit_ids))
    if not members or not benefits:
        return []
    rows: list[tuple[int, int, str, int]] = []
    for start in range(0, len(members), 5_000):
        rows.extend(
            (b, m, k, u)
            for b, m, k, u in uow.session.execute(
                select(
                    BenefitUsage.benefit_id,
                    BenefitUsage.member_id,
                    BenefitUsage.period_key,
                    BenefitUsage.uses,
                ).where(
                    BenefitUsage.member_id.in_(members[start : start + 5_000]),
                    BenefitUsage.benefit_id.in_(benefits),
                    BenefitUsage.uses > 0,
                )
            ).all()
        )
    return rows


def add_usage(uow: UnitOfWork, rows: Sequence[tuple[int, int, str, int]]) -> None:
    """Add (benefit id, member id, period key, uses) to the members' counters (an upsert)."""
    if not rows:
        return
    dialect = postgresql if uow.session.get_bind().dialect.name == "postgresql" else sqlite
    table = BenefitUsage.__table__
    stmt = dialect.insert(table)
    stmt = stmt.on_conflict_do_update(
        index_elements=[table.c.benefit_id, table.c.member_id, table.c.period_key],
        set_={"uses": table.c.uses + stmt.excluded.uses},
    )
    uow.session.execute(
        stmt,
        [{"benefit_id": b, "member_id": m, "period_key": k, "uses": u} for b, m, k, u in rows],
    )


def consume(uow: UnitOfWork, rows: Sequence[tuple[int, int, int]]) -> None:
    """Take (benefit id, budget, quantity) from what is left, where the benefit has a budget or
    a quantity (NULL stays NULL: unlimited); never below zero. The rows are locked by
    `card_linked_benefits(lock=True)` in the same transaction, so this cannot fail unless a
    caller skipped the lock, and then it refuses rather than overspend."""
    for benefit_id, budget, quantity in sorted(rows):
        values: dict[str, Any] = {}
        conditions: list[ColumnElement[bool]] = [Benefit.id == benefit_id]
        if budget:
            values["budget_remaining_minor"] = Benefit.budget_remaining_minor - budget
            conditions.append(
                or_(
                    Benefit.budget_remaining_minor.is_(None),
                    Benefit.budget_remaining_minor >= budget,
                )
            )
        if quantity:
            values["quantity_remaining"] = Benefit.quantity_remaining - quantity
            conditions.append(
                or_(Benefit.quantity_remaining.is_(None), Benefit.quantity_remaining >= quantity)
            )
        if not values:
            continue
        done = uow.session.execute(
            update(Benefit).where(*conditions).values(**values).returning(Benefit.id)
        ).first()
        if done is None:
            raise Conflict(
                _(
                    "Benefit %(benefit_id)s has less budget or quantity left than granted.",
                    benefit_id=benefit_id,
                )
            )


# -- the programme over time (console charts) ---------------------------------------------------


def _month_index(column: Any, bounds: Sequence[datetime]) -> Any:
    """Which month a time falls in: i within `[bounds[i], bounds[i+1])` (portable SQL)."""
    from sqlalchemy import case

    return case(
        *[(column < bound, index - 1) for index, bound in enumerate(bounds)],
        else_=len(bounds) - 1,
    )


def redemptions_by_month(uow: UnitOfWork, bounds: Sequence[datetime]) -> list[tuple[int, int]]:
    """For each month between consecutive `bounds`: vouchers redeemed (and not reversed), and
    the merchants that redeemed at least one (the alliance's active merchants). One grouped
    query for both."""
    from beyondbank.benefits.models import Redemption, RedemptionStatus

    inner = (
        select(
            _month_index(Redemption.redeemed_at, bounds).label("month"),
            Redemption.merchant_id.label("merchant_id"),
        )
        .where(
            Redemption.redeemed_at >= bounds[0],
            Redemption.redeemed_at < bounds[-1],
            Redemption.status == RedemptionStatus.REDEEMED,
        )
        .subquery()
    )
    found = {
        month: (int(redeemed), int(merchants))
        for month, redeemed, merchants in uow.session.execute(
            select(
                inner.c.month, func.count(), func.count(func.distinct(inner.c.merchant_id))
            ).group_by(inner.c.month)
        )
    }
    return [found.get(month, (0, 0)) for month in range(len(bounds) - 1)]


# -- what members see: near me, and my redemptions (issue 6) -----------------------------------


@dataclass(frozen=True, slots=True)
class NearbyBenefit:
    """A benefit open to the member, with its merchant's location nearest to a point."""

    view: MemberBenefit
    location: MerchantLocation | None  # None: the merchant has no active location
    distance_m: float | None  # None: no point to measure from, or no location


@dataclass(frozen=True, slots=True)
class NearbyPage:
    items: list[NearbyBenefit]
    total: int  # benefits open to the member under the filter, on every page


def member_benefits_near(
    uow: UnitOfWork,
    actor: Principal,
    *,
    point: tuple[float, float] | None,
    sub_industries: Iterable[str] | None = None,
    offset: int = 0,
    limit: int = 20,
    circle_ids: Iterable[int] | None = None,
) -> NearbyPage:
    """The benefits open to the signed-in customer at active alliance merchants, nearest first
    (by the merchant's nearest active location to `point`), in a fixed number of queries.

    Sorting by distance needs every candidate: a member sees the untargeted benefits and those
    of their few circles, and a circle seats one merchant per sub-industry, so the set is small.
    Distances are measured on the locations' coordinates alone; only the page's merchants are
    loaded whole. Without a point the order is the newest benefit first. `circle_ids`: the
    member's circles, when the caller has worked them out already."""
    member = member_of(uow, actor)
    now = uow.clock.now()
    merchants_open = select(Merchant.id).where(Merchant.status == MerchantStatus.ACTIVE)
    if sub_industries is not None:
        merchants_open = merchants_open.where(Merchant.sub_industry.in_(list(sub_industries)))
    rows = uow.session.scalars(
        select(Benefit)
        .where(
            _member_visible(uow, member, circle_ids),
            Benefit.valid_to >= (now - timedelta(days=1)).date(),
            Benefit.merchant_id.in_(merchants_open),
        )
        .order_by(Benefit.id.desc())
    ).all()
    points = alliance.active_location_points(uow, {b.merchant_id for b in rows})
    placed = [(b, *_nearest(points.get(b.merchant_id, []), point)) for b in rows]
    if point is not None:
        far = float("inf")
        placed.sort(key=lambda t: (far if t[2] is None else t[2], -t[0].id))
    page = placed[max(0, offset) : max(0, offset) + max(1, limit)]
    merchants = alliance.merchants_by_ids(uow, {b.merchant_id for b, _location, _d in page})
    locations = {loc.id: loc for m in merchants.values() for loc in m.locations}
    uses = _uses_this_period(uow, [b for b, _location, _distance in page], member, now)
    items = [
        NearbyBenefit(
            _member_view(b, merchants[b.merchant_id], uses.get(b.id, 0), now),
            None if location_id is None else locations[location_id],
            distance,
        )
        for b, location_id, distance in page
    ]
    return NearbyPage(items=items, total=len(placed))


def _nearest(
    points: list[tuple[int, float, float]], point: tuple[float, float] | None
) -> tuple[int | None, float | None]:
    """The active location nearest to `point` (ties: the lowest id) and its distance; without a
    point, the first location."""
    if not points:
        return None, None
    if point is None:
        return points[0][0], None
    distance, location_id = min(
        (distance_m(*point, latitude, longitude), location_id)
        for location_id, latitude, longitude in points
    )
    return location_id, distance


def location_distances(
    merchant: Merchant, point: tuple[float, float] | None
) -> list[tuple[MerchantLocation, float | None]]:
    """The merchant's active locations, nearest to `point` first (as listed without one)."""
    active = [loc for loc in merchant.locations if loc.active]
    if point is None:
        return [(loc, None) for loc in active]
    measured = [(loc, distance_m(*point, loc.latitude, loc.longitude)) for loc in active]
    return sorted(measured, key=lambda t: (t[1], t[0].id))


def my_redemptions(uow: UnitOfWork, actor: Principal, *, limit: int = 20) -> list[Redemption]:
    """The signed-in customer's latest redemptions at the counter, newest first."""
    member = member_of(uow, actor)
    if member is None:
        return []
    return list(
        uow.session.scalars(
            select(Redemption)
            .where(Redemption.member_id == member.id)
            .order_by(Redemption.redeemed_at.desc(), Redemption.id.desc())
            .limit(limit)
        )
    )
