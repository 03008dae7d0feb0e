"""The benefit and redemption state machines as explicit transition tables.

A benefit is drafted by the merchant (or the bank), submitted for approval, and approved
(it goes live) or rejected by the bank's program manager. A rejected benefit can be edited
and submitted again; a submitted one withdrawn to draft. A live benefit can be paused and
resumed, and any benefit not yet ended can be ended: ending is final. Terms can be edited
only while draft or rejected: a live benefit's terms are what members were promised and
what the bank approved, so it changes only by pausing, extending (budget, quantity, end
date) or ending.
"""

from __future__ import annotations

from enum import StrEnum

from beyondbank.benefits.models import BenefitStatus, RedemptionStatus
from beyondbank.core.errors import InvalidTransition
from beyondbank.core.i18n import _

S = BenefitStatus


class BenefitAction(StrEnum):
    SUBMIT = "submit"
    WITHDRAW = "withdraw"
    APPROVE = "approve"
    REJECT = "reject"
    PAUSE = "pause"
    RESUME = "resume"
    END = "end"
    EDIT = "edit"  # change terms: stays in the same state
    EXTEND = "extend"  # add budget or quantity, or move the end date later: stays in the same state


A = BenefitAction
BENEFIT_TRANSITIONS: dict[tuple[BenefitStatus, BenefitAction], BenefitStatus] = {
    (S.DRAFT, A.EDIT): S.DRAFT,
    (S.DRAFT, A.SUBMIT): S.SUBMITTED,
    (S.DRAFT, A.END): S.ENDED,
    (S.SUBMITTED, A.WITHDRAW): S.DRAFT,
    (S.SUBMITTED, A.APPROVE): S.ACTIVE,
    (S.SUBMITTED, A.REJECT): S.REJECTED,
    (S.SUBMITTED, A.END): S.ENDED,
    (S.REJECTED, A.EDIT): S.REJECTED,
    (S.REJECTED, A.SUBMIT): S.SUBMITTED,
    (S.REJECTED, A.END): S.ENDED,
    (S.ACTIVE, A.PAUSE): S.PAUSED,
    (S.ACTIVE, A.EXTEND): S.ACTIVE,
    (S.ACTIVE, A.END): S.ENDED,
    (S.PAUSED, A.RESUME): S.ACTIVE,
    (S.PAUSED, A.EXTEND): S.PAUSED,
    (S.PAUSED, A.END): S.ENDED,
}


def benefit_next(current: BenefitStatus, action: BenefitAction) -> BenefitStatus:
    """The state after `action`, or 409 naming the current state."""
    target = BENEFIT_TRANSITIONS.get((current, action))
    if target is None:
        allowed = sorted(a.value for (s, a) in BENEFIT_TRANSITIONS if s == current)
        message = _(
            "Cannot %(action)s a benefit that is %(current)s.",
            action=action.value,
            current=current.value,
        )
        if allowed:
            message = _(
                "Cannot %(action)s a benefit that is %(current)s. "
                "From %(current)s you can: %(allowed)s.",
                action=action.value,
                current=current.value,
                allowed=", ".join(allowed),
            )
        raise InvalidTransition(
            message,
            extra={"current_status": current.value},
        )
    return target


REDEMPTION_TRANSITIONS: dict[tuple[RedemptionStatus, str], RedemptionStatus] = {
    (RedemptionStatus.REDEEMED, "reverse"): RedemptionStatus.REVERSED,
}


def redemption_next(current: RedemptionStatus, action: str) -> RedemptionStatus:
    target = REDEMPTION_TRANSITIONS.get((current, action))
    if target is None:
        raise InvalidTransition(
            _(
                "Cannot %(action)s a redemption that is %(current)s.",
                action=action,
                current=current.value,
            ),
            extra={"current_status": current.value},
        )
    return target
