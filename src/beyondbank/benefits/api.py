"""Benefit endpoints: benefits and their approval, member codes, voucher redemption at the counter."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse

from beyondbank.alliance import service as alliance
from beyondbank.alliance.models import Merchant
from beyondbank.benefits import redemptions, rules, schemas, service
from beyondbank.benefits.models import (
    Benefit,
    BenefitKind,
    BenefitStatus,
    Redemption,
    RedemptionStatus,
)
from beyondbank.core.authz import Permission, Principal
from beyondbank.core.errors import invalid
from beyondbank.core.i18n import _
from beyondbank.core.idempotency import fingerprint
from beyondbank.core.pagination import DEFAULT_LIMIT, MAX_LIMIT, Page
from beyondbank.core.uow import UnitOfWork
from beyondbank.deps import IdempotencyKey, SettingsDep, UoW, requires

router = APIRouter(tags=["benefits"])

Reader = Annotated[Principal, Depends(requires(Permission.BENEFITS_READ))]
Writer = Annotated[Principal, Depends(requires(Permission.BENEFITS_WRITE))]
Approver = Annotated[Principal, Depends(requires(Permission.BENEFITS_APPROVE))]
Redeemer = Annotated[Principal, Depends(requires(Permission.REDEMPTIONS_CREATE))]
RedemptionReader = Annotated[Principal, Depends(requires(Permission.REDEMPTIONS_READ))]
Reverser = Annotated[Principal, Depends(requires(Permission.REDEMPTIONS_REVERSE))]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]

_PROBLEMS: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such benefit, or another merchant's"},
    409: {"description": "Not allowed in the benefit's current state"},
    422: {"description": "Invalid fields, or not better than what everyone gets"},
}


# -- benefits: merchants, the bank's staff, partner systems -------------------------------------


@router.get("/benefits", response_model=Page[schemas.BenefitOut], summary="List benefits")
def list_benefits(
    uow: UoW,
    actor: Reader,
    cursor: str | None = None,
    limit: Limit = DEFAULT_LIMIT,
    merchant_id: str | None = None,
    status: BenefitStatus | None = None,
    kind: BenefitKind | None = None,
) -> Page[schemas.BenefitOut]:
    rows, next_cursor = service.list_benefits(
        uow, actor, merchant_id=merchant_id, status=status, kind=kind, cursor=cursor, limit=limit
    )
    return Page(items=_benefits_out(uow, rows), next_cursor=next_cursor)


@router.post(
    "/benefits",
    response_model=schemas.BenefitOut,
    status_code=201,
    summary="Draft a benefit (checked for price integrity)",
    responses=_PROBLEMS,
)
def create_benefit(
    body: schemas.BenefitIn, uow: UoW, actor: Writer, settings: SettingsDep
) -> schemas.BenefitOut:
    benefit = service.create_benefit(uow, actor, body, default_currency=settings.default_currency)
    return _benefit_out(uow, benefit)


@router.get("/benefits/{benefit_id}", response_model=schemas.BenefitOut, responses=_PROBLEMS)
def get_benefit(benefit_id: str, uow: UoW, actor: Reader) -> schemas.BenefitOut:
    return _benefit_out(uow, _visible_benefit(uow, actor, benefit_id))


@router.patch(
    "/benefits/{benefit_id}",
    response_model=schemas.BenefitOut,
    summary="Edit a draft or rejected benefit",
    responses=_PROBLEMS,
)
def update_benefit(
    benefit_id: str, body: schemas.BenefitPatch, uow: UoW, actor: Writer
) -> schemas.BenefitOut:
    benefit = _visible_benefit(uow, actor, benefit_id)
    changes = body.model_dump(exclude_unset=True)
    return _benefit_out(uow, service.update_benefit(uow, actor, benefit, changes))


@router.post(
    "/benefits/{benefit_id}/submit", response_model=schemas.BenefitOut, responses=_PROBLEMS
)
def submit_benefit(benefit_id: str, uow: UoW, actor: Writer) -> schemas.BenefitOut:
    benefit = _visible_benefit(uow, actor, benefit_id)
    return _benefit_out(uow, service.submit(uow, actor, benefit))


@router.post(
    "/benefits/{benefit_id}/withdraw", response_model=schemas.BenefitOut, responses=_PROBLEMS
)
def withdraw_benefit(benefit_id: str, uow: UoW, actor: Writer) -> schemas.BenefitOut:
    benefit = _visible_benefit(uow, actor, benefit_id)
    return _benefit_out(uow, service.withdraw(uow, actor, benefit))


@router.post(
    "/benefits/{benefit_id}/approve",
    response_model=schemas.BenefitOut,
    summary="Approve: the benefit goes live (the bank's program manager)",
    responses=_PROBLEMS,
)
def approve_benefit(
    benefit_id: str, uow: UoW, actor: Approver, body: schemas.ApproveIn | None = None
) -> schemas.BenefitOut:
    benefit = _visible_benefit(uow, actor, benefit_id)
    decision = body or schemas.ApproveIn()
    return _benefit_out(uow, service.approve(uow, actor, benefit, decision))


@router.post(
    "/benefits/{benefit_id}/reject",
    response_model=schemas.BenefitOut,
    summary="Reject, with the reason (the bank's program manager)",
    responses=_PROBLEMS,
)
def reject_benefit(
    benefit_id: str, body: schemas.ReasonIn, uow: UoW, actor: Approver
) -> schemas.BenefitOut:
    benefit = _visible_benefit(uow, actor, benefit_id)
    return _benefit_out(uow, service.reject(uow, actor, benefit, body.reason))


@router.post("/benefits/{benefit_id}/pause", response_model=schemas.BenefitOut, responses=_PROBLEMS)
def pause_benefit(
    benefit_id: str, uow: UoW, actor: Writer, body: schemas.OptionalReasonIn | None = None
) -> schemas.BenefitOut:
    benefit = _visible_benefit(uow, actor, benefit_id)
    return _benefit_out(uow, service.pause(uow, actor, benefit, body.reason if body else None))


@router.post(
    "/benefits/{benefit_id}/resume", response_model=schemas.BenefitOut, responses=_PROBLEMS
)
def resume_benefit(benefit_id: str, uow: UoW, actor: Writer) -> schemas.BenefitOut:
    benefit = _visible_benefit(uow, actor, benefit_id)
    return _benefit_out(uow, service.resume(uow, actor, benefit))


@router.post(
    "/benefits/{benefit_id}/end",
    response_model=schemas.BenefitOut,
    summary="End the benefit for good",
    responses=_PROBLEMS,
)
def end_benefit(
    benefit_id: str, uow: UoW, actor: Writer, body: schemas.OptionalReasonIn | None = None
) -> schemas.BenefitOut:
    benefit = _visible_benefit(uow, actor, benefit_id)
    return _benefit_out(uow, service.end(uow, actor, benefit, body.reason if body else None))


@router.post(
    "/benefits/{benefit_id}/extend",
    response_model=schemas.BenefitOut,
    summary="Top up a live benefit's budget or quantity, or end it later",
    responses=_PROBLEMS,
)
def extend_benefit(
    benefit_id: str, body: schemas.ExtendIn, uow: UoW, actor: Writer
) -> schemas.BenefitOut:
    benefit = _visible_benefit(uow, actor, benefit_id)
    return _benefit_out(uow, service.extend(uow, actor, benefit, body))


def _visible_benefit(uow: UnitOfWork, actor: Principal, public_id: str) -> Benefit:
    service.refuse_customers(actor)
    return service.get_benefit(uow, actor, public_id)


# -- members ----------------------------------------------------------------------------------


@router.get(
    "/me/benefits",
    response_model=Page[schemas.MemberBenefitOut],
    summary="The benefits open to me, with my remaining uses",
)
def my_benefits(
    uow: UoW,
    actor: Reader,
    cursor: str | None = None,
    limit: Limit = DEFAULT_LIMIT,
    merchant_id: str | None = None,
    kind: BenefitKind | None = None,
) -> Page[schemas.MemberBenefitOut]:
    views, next_cursor = service.member_benefits(
        uow, actor, merchant_id=merchant_id, kind=kind, cursor=cursor, limit=limit
    )
    return Page(items=[_member_benefit_out(v) for v in views], next_cursor=next_cursor)


@router.get(
    "/me/benefits/{benefit_id}",
    response_model=schemas.MemberBenefitOut,
    summary="A benefit's page: what, where, when, and my remaining uses this period",
)
def my_benefit(benefit_id: str, uow: UoW, actor: Reader) -> schemas.MemberBenefitOut:
    return _member_benefit_out(service.member_benefit(uow, actor, benefit_id))


@router.get(
    "/me/member-code",
    response_model=schemas.MemberCodeOut,
    summary="My dynamic member code, to show at the counter (valid for under a minute)",
)
def my_member_code(uow: UoW, actor: Reader, settings: SettingsDep) -> JSONResponse:
    code = service.current_member_code(uow, actor, secret=settings.secret_key.get_secret_value())
    body = schemas.MemberCodeOut(
        code=code.code,
        member_number=code.member_number,
        expires_at=code.expires_at,
        refresh_after_seconds=code.refresh_after_seconds,
        qr_svg=code.qr_svg,
    )
    # A code is a bearer credential for under a minute: never cache it anywhere.
    return JSONResponse(body.model_dump(mode="json"), headers={"Cache-Control": "no-store"})


@router.get(
    "/me/redemptions",
    response_model=Page[schemas.RedemptionOut],
    summary="My redemptions at the counter",
)
def my_redemptions(
    uow: UoW, actor: Reader, cursor: str | None = None, limit: Limit = DEFAULT_LIMIT
) -> Page[schemas.RedemptionOut]:
    member = service.member_of(uow, actor)
    rows, next_cursor = redemptions.member_redemptions(uow, member, cursor=cursor, limit=limit)
    return Page(items=_redemptions_out(uow, rows), next_cursor=next_cursor)


# -- redemptions at the counter -------------------------------------------------------------------


@router.post(
    "/redemptions",
    response_model=schemas.RedemptionOut,
    status_code=201,
    summary="Redeem a voucher benefit with the member's code (Idempotency-Key required)",
    responses={
        404: {"description": "No such benefit, or another merchant's"},
        409: {"description": "Code used already, limit or budget reached, key in flight"},
        422: {"description": "Invalid or expired code, not eligible now, key reused"},
    },
)
def create_redemption(
    body: schemas.RedemptionIn,
    request: Request,
    uow: UoW,
    actor: Redeemer,
    settings: SettingsDep,
    idempotency_key: IdempotencyKey,
) -> JSONResponse:
    if idempotency_key is None:
        raise invalid(
            "header.Idempotency-Key", _("required: a unique key per redemption, reused on retries")
        )
    outcome = redemptions.redeem(
        uow,
        actor,
        body,
        secret=settings.secret_key.get_secret_value(),
        idempotency_key=idempotency_key,
        fingerprint=fingerprint("POST", request.url.path, body.model_dump(mode="json")),
        lock_seconds=settings.idempotency_in_flight_seconds,
        render=lambda r: _redemptions_out(uow, [r])[0].model_dump(mode="json"),
    )
    headers = {"Idempotent-Replayed": "true"} if outcome.replayed else None
    return JSONResponse(outcome.body, status_code=outcome.status_code, headers=headers)


@router.get("/redemptions", response_model=Page[schemas.RedemptionOut], summary="List redemptions")
def list_redemptions(
    uow: UoW,
    actor: RedemptionReader,
    cursor: str | None = None,
    limit: Limit = DEFAULT_LIMIT,
    benefit_id: str | None = None,
    merchant_id: str | None = None,
    location_id: str | None = None,
    status: RedemptionStatus | None = None,
    member_number: Annotated[str | None, Query(max_length=10)] = None,
    redeemed_from: datetime | None = None,
    redeemed_to: datetime | None = None,
) -> Page[schemas.RedemptionOut]:
    filters = redemptions.RedemptionFilters(
        benefit_id=benefit_id,
        merchant_id=merchant_id,
        location_id=location_id,
        status=status,
        member_number=member_number,
        redeemed_from=_aware(redeemed_from, "query.redeemed_from"),
        redeemed_to=_aware(redeemed_to, "query.redeemed_to"),
    )
    rows, next_cursor = redemptions.list_redemptions(
        uow, actor, filters, cursor=cursor, limit=limit
    )
    return Page(items=_redemptions_out(uow, rows), next_cursor=next_cursor)


@router.get("/redemptions/{redemption_id}", response_model=schemas.RedemptionOut)
def get_redemption(redemption_id: str, uow: UoW, actor: RedemptionReader) -> schemas.RedemptionOut:
    redemption = redemptions.get_redemption(uow, actor, redemption_id)
    return _redemptions_out(uow, [redemption])[0]


@router.post(
    "/redemptions/{redemption_id}/reverse",
    response_model=schemas.RedemptionOut,
    summary="Reverse a redemption: gives back budget, quantity and the member's use",
)
def reverse_redemption(
    redemption_id: str, body: schemas.ReasonIn, uow: UoW, actor: Reverser
) -> schemas.RedemptionOut:
    redemption = redemptions.get_redemption(uow, actor, redemption_id)
    redemption = redemptions.reverse(uow, actor, redemption, body.reason)
    return _redemptions_out(uow, [redemption])[0]


def _aware(value: datetime | None, field: str) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise invalid(field, _("give a time zone, e.g. 2026-11-22T10:00:00Z"))
    return value


# -- response shapes ----------------------------------------------------------------------------


def _benefit_out(uow: UnitOfWork, benefit: Benefit) -> schemas.BenefitOut:
    return _benefits_out(uow, [benefit])[0]


def _benefits_out(uow: UnitOfWork, benefits: Sequence[Benefit]) -> list[schemas.BenefitOut]:
    merchants = alliance.merchant_public_ids(uow, {b.merchant_id for b in benefits})
    circles = service.target_refs(uow, benefits)
    return [_one_benefit_out(b, merchants, circles) for b in benefits]


def _one_benefit_out(
    benefit: Benefit, merchants: dict[int, str], circles: dict[int, str]
) -> schemas.BenefitOut:
    return schemas.BenefitOut(
        id=benefit.public_id,
        merchant_id=merchants[benefit.merchant_id],
        summary=rules.describe_reward(service.reward_of(benefit), benefit.currency),
        target_circle_ids=sorted(circles[t.circle_id] for t in benefit.targets),
        price_check=service.price_verdict(benefit).reason,
        **{
            name: getattr(benefit, name)
            for name in schemas.BenefitOut.model_fields
            if name not in {"id", "merchant_id", "summary", "target_circle_ids", "price_check"}
        },
    )


def _member_benefit_out(view: service.MemberBenefit) -> schemas.MemberBenefitOut:
    benefit, merchant = view.benefit, view.merchant
    schedule = service.schedule_of(benefit)
    return schemas.MemberBenefitOut(
        id=benefit.public_id,
        title=benefit.title,
        description=benefit.description,
        kind=benefit.kind,
        summary=rules.describe_reward(service.reward_of(benefit), benefit.currency),
        offer_details=benefit.offer_details,
        channels=benefit.channels,
        currency=benefit.currency,
        min_spend_minor=benefit.min_spend_minor,
        merchant=schemas.MerchantCard(
            id=merchant.public_id,
            name=merchant.trading_name,
            locations=[
                schemas.LocationOut(
                    id=loc.public_id,
                    name=loc.name,
                    address_line=loc.address_line,
                    city=loc.city,
                    postcode=loc.postcode,
                )
                for loc in merchant.locations
                if loc.active
            ],
        ),
        schedule=schemas.ScheduleOut(
            valid_from=benefit.valid_from,
            valid_to=benefit.valid_to,
            weekdays=benefit.weekdays,
            hour_start=benefit.hour_start,
            hour_end=benefit.hour_end,
            timezone=benefit.timezone,
            description=f"{rules.describe_weekdays(schedule.weekdays).capitalize()}, "
            f"{rules.describe_hours(schedule)}",
        ),
        new_to_merchant_days=benefit.new_to_merchant_days,
        member_limit=benefit.member_limit,
        limit_period=benefit.limit_period,
        uses_this_period=view.uses_this_period,
        remaining_this_period=view.remaining_this_period,
        sold_out=not rules.has_room(benefit.budget_remaining_minor, benefit.quantity_remaining),
        available_now=view.unavailable is None,
        unavailable_reason=view.unavailable.message if view.unavailable else None,
    )


def _redemptions_out(uow: UnitOfWork, rows: Sequence[Redemption]) -> list[schemas.RedemptionOut]:
    benefits = service.benefits_by_ids(uow, {r.benefit_id for r in rows})
    merchants = {m: alliance.merchant_by_id(uow, m) for m in {r.merchant_id for r in rows}}
    locations = {loc.id: loc.public_id for m in merchants.values() for loc in m.locations}
    return [_one_redemption_out(r, benefits[r.benefit_id], merchants, locations) for r in rows]


def _one_redemption_out(
    redemption: Redemption,
    benefit: Benefit,
    merchants: dict[int, Merchant],
    locations: dict[int, str],
) -> schemas.RedemptionOut:
    give = rules.describe_reward(service.reward_of(benefit), benefit.currency)
    if benefit.offer_details:
        give = f"{give}: {benefit.offer_details}"
    return schemas.RedemptionOut(
        id=redemption.public_id,
        status=redemption.status,
        benefit_id=benefit.public_id,
        benefit_title=benefit.title,
        give=give,
        merchant_id=merchants[redemption.merchant_id].public_id,
        location_id=locations.get(redemption.location_id) if redemption.location_id else None,
        member_number=redemption.member_number,
        currency=redemption.currency,
        purchase_amount_minor=redemption.purchase_amount_minor,
        reward_minor=redemption.reward_minor,
        merchant_funded_minor=redemption.merchant_funded_minor,
        bank_funded_minor=redemption.bank_funded_minor,
        commission_minor=redemption.commission_minor,
        period_key=redemption.period_key,
        redeemed_at=redemption.redeemed_at,
        reversed_at=redemption.reversed_at,
        reversal_reason=redemption.reversal_reason,
    )
