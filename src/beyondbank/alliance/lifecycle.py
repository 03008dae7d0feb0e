"""The merchant lifecycle: which status may follow which, as one explicit table.

    from           may become
    applied        under_review
    under_review   admitted, rejected
    admitted       active, exited
    rejected       under_review
    active         suspended, exited
    suspended      active, exited
    exited         under_review

- `applied → under_review`: the bank starts its review (also when the merchant's first circle
  application is checked).
- `under_review → admitted | rejected`: the review's outcome. Approving a circle application
  admits a merchant under review; rejecting the merchant refuses its open applications.
- `admitted → active`: go-live, once terminals, benefits and training are in place.
  `admitted → exited`: the merchant withdraws before going live.
- `active ⇄ suspended`: a temporary sanction (a complaint, a price-integrity breach, unpaid
  fees); the merchant keeps its seats while suspended, and cannot be admitted anywhere new.
- `active | suspended → exited`: the merchant leaves or is removed; its seats are released
  and each slot is offered to the slot's waitlist.
- `rejected | exited → under_review`: a re-application is reviewed afresh on the same record,
  so the business's history stays in one place.

Nothing else: a rejected merchant is never made active without a new review, an applicant
never skips the review, and an exited merchant does not come back without one.
"""

from __future__ import annotations

from beyondbank.alliance.models import Merchant, MerchantStatus
from beyondbank.core import audit
from beyondbank.core.authz import Principal
from beyondbank.core.errors import InvalidTransition
from beyondbank.core.i18n import _
from beyondbank.core.uow import UnitOfWork

S = MerchantStatus
TRANSITIONS: dict[MerchantStatus, frozenset[MerchantStatus]] = {
    S.APPLIED: frozenset({S.UNDER_REVIEW}),
    S.UNDER_REVIEW: frozenset({S.ADMITTED, S.REJECTED}),
    S.ADMITTED: frozenset({S.ACTIVE, S.EXITED}),
    S.REJECTED: frozenset({S.UNDER_REVIEW}),
    S.ACTIVE: frozenset({S.SUSPENDED, S.EXITED}),
    S.SUSPENDED: frozenset({S.ACTIVE, S.EXITED}),
    S.EXITED: frozenset({S.UNDER_REVIEW}),
}

# Statuses in which a merchant may apply to a circle, and in which an application may be approved.
MAY_APPLY = frozenset({S.APPLIED, S.UNDER_REVIEW, S.ADMITTED, S.ACTIVE})
MAY_BE_APPROVED = frozenset({S.UNDER_REVIEW, S.ADMITTED, S.ACTIVE})


def allowed_next(current: MerchantStatus) -> frozenset[MerchantStatus]:
    return TRANSITIONS[current]


def check_transition(merchant: Merchant, to: MerchantStatus) -> None:
    """Raise a 409 naming the merchant's current status unless `to` may follow it."""
    current = merchant.status
    if to not in TRANSITIONS[current]:
        options = ", ".join(sorted(s.value for s in TRANSITIONS[current])) or _("nothing")
        raise InvalidTransition(
            _(
                "Merchant %(merchant)s is %(current)s: it cannot become %(to)s (from %(current)s it may become %(options)s).",
                merchant=merchant.public_id,
                current=current.value,
                to=to.value,
                options=options,
            ),
            extra={"current_status": current.value, "requested_status": to.value},
        )


def set_status(
    uow: UnitOfWork, actor: Principal, merchant: Merchant, to: MerchantStatus, reason: str
) -> None:
    """Move the merchant to `to` if the table allows it, and record who, when and why."""
    check_transition(merchant, to)
    now = uow.clock.now()
    before = merchant.status
    merchant.status = to
    merchant.status_reason = reason
    merchant.status_changed_at = now
    merchant.updated_at = now
    audit.record(
        uow.session,
        actor=actor,
        at=now,
        action="merchant.status_changed",
        object_type="merchant",
        object_id=merchant.public_id,
        before={"status": before.value},
        after={"status": to.value},
        reason=reason,
    )
