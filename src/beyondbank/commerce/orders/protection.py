"""Device protection, the bank's product underwritten by its insurance partner: which insurer
underwrites, the policy issued when the premium is captured, the premium passed to the insurer
(less the bank's commission under the insurer's contract) once the order completes, and handed
back if the whole order is returned after that. When only some units come back, the policy
covers the units kept: the returned units' share of the premium goes back to the customer with
the refund (handed back by the insurer first if it had been passed on)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from beyondbank.commerce.models import (
    Order,
    Partner,
    PartnerKind,
    PartnerStatus,
    ProtectionPolicy,
)
from beyondbank.commerce.orders import postings
from beyondbank.core import audit
from beyondbank.core.authz import Principal
from beyondbank.core.errors import Conflict, FieldError, InvalidInput
from beyondbank.core.i18n import _
from beyondbank.core.money import Money, bps_of, pro_rata
from beyondbank.core.uow import UnitOfWork
from beyondbank.settlement.statements import SHOP_PROTECTION_CATEGORY


def underwriter(uow: UnitOfWork, currency: str) -> Partner | None:
    """The active insurer underwriting device protection in the currency (at most one: a
    partial unique index), or None when the bank offers none."""
    return uow.session.scalars(
        select(Partner).where(
            Partner.kind == PartnerKind.INSURER,
            Partner.status == PartnerStatus.ACTIVE,
            Partner.currency == currency,
        )
    ).one_or_none()


def _not_offered(currency: str) -> InvalidInput:
    return InvalidInput(
        _("Device protection is not offered in %(currency)s now.", currency=currency),
        errors=(FieldError("body.device_protection", _("not offered now")),),
    )


def require_for_partner(uow: UnitOfWork, partner_ref: str) -> None:
    """For a checkout asking for protection: a 422 on `body.device_protection` when no insurer
    underwrites in the partner's currency. An unknown partner passes: the checkout names it."""
    currency = uow.session.scalar(select(Partner.currency).where(Partner.public_id == partner_ref))
    if currency is not None and underwriter(uow, currency) is None:
        raise _not_offered(currency)


def issuer(uow: UnitOfWork, order: Order) -> Partner:
    """The insurer that will issue the order's policy when its premium is captured. None any
    more (the bank ended its arrangement between the checkout and now) is a 409: nothing ships
    with a premium taken and no insurer; the bank must appoint one first."""
    insurer = underwriter(uow, order.currency)
    if insurer is None:
        raise Conflict(
            _(
                "No insurer underwrites device protection in %(currency)s: order %(order)s "
                "cannot ship with its protection; ask the bank.",
                currency=order.currency,
                order=order.public_id,
            ),
            extra={"reason": "no_underwriter"},
        )
    return insurer


def issue(uow: UnitOfWork, actor: Principal, order: Order) -> ProtectionPolicy:
    """The order's policy, issued by the insurer underwriting now, when its premium is captured
    (the first shipment; a group buy's order was captured at checkout)."""
    insurer = issuer(uow, order)
    policy = ProtectionPolicy(
        order_id=order.id,
        insurer_id=insurer.id,
        policy_ref=order.protection_policy_ref or f"DPP-{order.public_id.split('_', 1)[1]}",
        currency=order.currency,
        premium_minor=order.protection_minor,
        issued_at=uow.clock.now(),
    )
    uow.session.add(policy)
    uow.session.flush()
    _audit(uow, actor, policy, "shop.protection.issued", {})
    return policy


def policy_of(uow: UnitOfWork, order: Order) -> ProtectionPolicy | None:
    return uow.session.get(ProtectionPolicy, order.id, populate_existing=True)


def pass_premium(
    uow: UnitOfWork, actor: Principal, order: Order, retailer: Partner
) -> ProtectionPolicy | None:
    """At the order's completion: the premium moves from the retailer's payable to the
    insurer's and the bank's commission on it accrues (the insurer's contract, a
    `shop.protection` override or its base share, `floor(premium × bps / 10000)`). Once: the
    ledger's keys are per order, and a passed policy is left alone."""
    policy = policy_of(uow, order)
    if policy is None or policy.passed_at is not None or policy.cancelled_at is not None:
        return policy
    insurer = uow.session.get_one(Partner, policy.insurer_id)
    money = Money(policy.premium_minor, policy.currency)
    postings.premium(
        uow,
        order_ref=order.public_id,
        retailer_ref=retailer.public_id,
        insurer_ref=insurer.public_id,
        money=money,
        back=False,
    )
    now = uow.clock.now()
    rate = postings.commission_rate(uow, insurer, policy.currency, now, SHOP_PROTECTION_CATEGORY)
    commission = bps_of(policy.premium_minor, rate)
    if commission:
        _commission(uow, order, insurer, Money(commission, policy.currency), clawback=False)
    before = audit.snapshot(policy)
    policy.passed_at, policy.commission_minor = now, commission
    _audit(uow, actor, policy, "shop.protection.premium_passed", before)
    return policy


def cover_kept(
    uow: UnitOfWork, actor: Principal, order: Order, retailer: Partner, kept_minor: int
) -> ProtectionPolicy | None:
    """Some insured units came back, the rest are kept: the policy's premium becomes the kept
    units' share, `kept_minor` (above 0; every unit back is `cancel`). Before the premium was
    passed, that is all: the returned share is refunded to the customer from the retailer's
    payable, which still holds it. After (a return accepted after completion), the returned share
    comes back from the insurer to the retailer and the bank's commission on it is clawed back
    pro rata, `floor(commission × share / premium)`. Setting, not subtracting: a retry changes
    nothing."""
    policy = policy_of(uow, order)
    if policy is None or policy.cancelled_at is not None or kept_minor >= policy.premium_minor:
        return policy
    before = audit.snapshot(policy)
    share = policy.premium_minor - kept_minor
    if policy.passed_at is not None:
        accrued = policy.commission_minor or 0
        clawback = pro_rata(accrued, share, policy.premium_minor)
        _premium_back(uow, order, retailer, policy, share, clawback)
        if clawback:
            policy.commission_minor = accrued - clawback
    policy.premium_minor = kept_minor
    _audit(uow, actor, policy, "shop.protection.reduced", before)
    return policy


def cancel(
    uow: UnitOfWork, actor: Principal, order: Order, retailer: Partner
) -> ProtectionPolicy | None:
    """The premium was refunded to the customer (the whole order came back): the policy is
    cancelled, and if the premium had been passed on, it comes back from the insurer to the
    retailer (whose payable paid the refund) and the bank's commission on it is clawed back."""
    policy = policy_of(uow, order)
    if policy is None or policy.cancelled_at is not None:
        return policy
    before = audit.snapshot(policy)
    if policy.passed_at is not None:
        _premium_back(
            uow, order, retailer, policy, policy.premium_minor, policy.commission_minor or 0
        )
    policy.cancelled_at = uow.clock.now()
    _audit(uow, actor, policy, "shop.protection.cancelled", before)
    return policy


def _premium_back(
    uow: UnitOfWork,
    order: Order,
    retailer: Partner,
    policy: ProtectionPolicy,
    share: int,
    clawback: int,
) -> None:
    """A passed premium's `share` back from the insurer to the retailer (whose payable refunded
    it), and `clawback` of the bank's commission on it."""
    insurer = uow.session.get_one(Partner, policy.insurer_id)
    postings.premium(
        uow,
        order_ref=order.public_id,
        retailer_ref=retailer.public_id,
        insurer_ref=insurer.public_id,
        money=Money(share, policy.currency),
        back=True,
    )
    if clawback:
        _commission(uow, order, insurer, Money(clawback, policy.currency), clawback=True)


def _audit(
    uow: UnitOfWork,
    actor: Principal,
    policy: ProtectionPolicy,
    action: str,
    before: dict[str, Any],
) -> None:
    audit.record(
        uow.session,
        actor=actor,
        at=uow.clock.now(),
        action=action,
        object_type="protection_policy",
        object_id=policy.policy_ref,
        before=before or None,
        after=audit.snapshot(policy),
    )


def _commission(
    uow: UnitOfWork, order: Order, insurer: Partner, money: Money, *, clawback: bool
) -> None:
    """The bank's commission on the insurer's premium (reversed for a clawback)."""
    postings.commission(
        uow,
        scope="shop-protection",
        order_ref=order.public_id,
        party_ref=insurer.public_id,
        money=money,
        category=SHOP_PROTECTION_CATEGORY,
        clawback=clawback,
    )
