"""The descriptor review queue: a person confirms which alliance merchant an unsure card
descriptor belongs to (stored as a mapping the next run resolves exactly) or rejects it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select, update

from beyondbank.alliance import service as alliance
from beyondbank.alliance.models import MerchantStatus
from beyondbank.cards.models import DescriptorMapping, DescriptorReview, ReviewStatus
from beyondbank.core import audit
from beyondbank.core.authz import Permission, Principal, require
from beyondbank.core.errors import Conflict, NotFound, invalid
from beyondbank.core.ids import new_public_id
from beyondbank.core.pagination import paginate
from beyondbank.core.uow import UnitOfWork


@dataclass(frozen=True, slots=True)
class ReviewView:
    review: DescriptorReview
    candidate_merchant: str | None  # public id
    candidate_name: str | None


def list_reviews(
    uow: UnitOfWork,
    actor: Principal,
    *,
    status: ReviewStatus | None = ReviewStatus.OPEN,
    cursor: str | None = None,
    limit: int = 50,
) -> tuple[list[ReviewView], str | None]:
    """The queue, newest first (pages by id); the console orders a page by transactions."""
    require(actor, Permission.CARDS_REVIEW)
    query = select(DescriptorReview)
    if status is not None:
        query = query.where(DescriptorReview.status == status)
    rows, next_cursor = paginate(
        uow.session, query, DescriptorReview.id, cursor=cursor, limit=limit, descending=True
    )
    return _views(uow, rows), next_cursor


def _views(uow: UnitOfWork, rows: Sequence[DescriptorReview]) -> list[ReviewView]:
    ids = {r.candidate_merchant_id for r in rows if r.candidate_merchant_id is not None}
    merchants = alliance.merchants_by_ids(uow, ids)
    views = []
    for r in rows:
        m = merchants.get(r.candidate_merchant_id) if r.candidate_merchant_id else None
        views.append(ReviewView(r, m.public_id if m else None, m.trading_name if m else None))
    return views


def get_review(uow: UnitOfWork, actor: Principal, public_id: str) -> ReviewView:
    require(actor, Permission.CARDS_REVIEW)
    review = uow.session.scalars(
        select(DescriptorReview).where(DescriptorReview.public_id == public_id)
    ).one_or_none()
    if review is None:
        raise NotFound(f"No descriptor review {public_id!r}.")
    return _views(uow, [review])[0]


def confirm(
    uow: UnitOfWork,
    actor: Principal,
    public_id: str,
    *,
    merchant_ref: str,
    location_ref: str | None = None,
) -> ReviewView:
    """The descriptor belongs to this merchant (and location): store the mapping, close the
    review. Deciding a review twice is a 409 naming its state."""
    view = get_review(uow, actor, public_id)
    review = view.review
    merchant = alliance.get_merchant(uow, actor, merchant_ref, field="merchant")
    if merchant.status is not MerchantStatus.ACTIVE:
        raise invalid("merchant", f"the merchant is {merchant.status.value}, not an active member")
    location_id = None
    if location_ref is not None:
        location = alliance.get_location(uow, merchant, location_ref, field="location")
        location_id = location.id
    now = uow.clock.now()
    _decide(uow, actor, review, ReviewStatus.CONFIRMED, f"mapped to {merchant.public_id}")
    existing = uow.session.scalars(
        select(DescriptorMapping).where(DescriptorMapping.descriptor_key == review.descriptor_key)
    ).one_or_none()
    if existing is not None and existing.merchant_id != merchant.id:
        raise invalid(
            "merchant",
            "this descriptor is already mapped to another merchant",
            f"The descriptor {review.example!r} is already mapped to another merchant.",
        )
    if existing is None:
        uow.session.add(
            DescriptorMapping(
                public_id=new_public_id("map"),
                descriptor_key=review.descriptor_key,
                merchant_id=merchant.id,
                location_id=location_id,
                example=review.example,
                confirmed_by_id=actor.id if actor.kind == "user" else None,
                confirmed_at=now,
            )
        )
    uow.commit()
    return get_review(uow, actor, public_id)


def reject(uow: UnitOfWork, actor: Principal, public_id: str, *, note: str) -> ReviewView:
    """Not an alliance merchant: the descriptor stays unresolved."""
    view = get_review(uow, actor, public_id)
    _decide(uow, actor, view.review, ReviewStatus.REJECTED, note)
    uow.commit()
    return get_review(uow, actor, public_id)


def _decide(
    uow: UnitOfWork, actor: Principal, review: DescriptorReview, to: ReviewStatus, note: str
) -> None:
    now = uow.clock.now()
    done = uow.session.execute(
        update(DescriptorReview)
        .where(DescriptorReview.id == review.id, DescriptorReview.status == ReviewStatus.OPEN)
        .values(
            status=to,
            decided_by_id=actor.id if actor.kind == "user" else None,
            decided_at=now,
            decision_note=note,
        )
        .returning(DescriptorReview.id)
    ).first()
    if done is None:
        uow.session.refresh(review)
        raise Conflict(f"The review is already {review.status.value}.")
    audit.record(
        uow.session,
        actor=actor,
        at=now,
        action=f"descriptor.{to.value}",
        object_type="descriptor_review",
        object_id=review.public_id,
        before={"status": ReviewStatus.OPEN.value},
        after={"status": to.value, "note": note},
    )
    uow.session.expire(review)
