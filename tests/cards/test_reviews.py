"""The descriptor review queue: confirming stores a mapping once, rejecting keeps the
descriptor unresolved, a decided review cannot be decided again, only staff with the right
to review decide."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from beyondbank.alliance.models import MerchantStatus
from beyondbank.cards import reviews
from beyondbank.cards.models import DescriptorMapping, DescriptorReview, ReviewStatus
from beyondbank.core.authz import Role
from beyondbank.core.errors import Conflict, Forbidden, InvalidInput
from beyondbank.core.ids import new_public_id
from beyondbank.core.models import AuditEvent
from beyondbank.core.uow import UnitOfWork
from tests import factories as f


def _review(uow: UnitOfWork, key: str = "harbour noodle", mcc: str = "5812") -> DescriptorReview:
    now = uow.clock.now()
    review = DescriptorReview(
        public_id=new_public_id("dsc"),
        descriptor_key=key,
        mcc=mcc,
        example="SQ *HARBOUR NOODL #12   LONDON        GBR",
        city="london",
        score=0.81,
        transactions=7,
        status=ReviewStatus.OPEN,
        first_seen_at=now,
        last_seen_at=now,
    )
    uow.session.add(review)
    uow.session.flush()
    return review


def test_confirming_stores_a_mapping_and_closes_the_review(uow: UnitOfWork) -> None:
    manager = f.principal(f.make_user(uow, Role.RELATIONSHIP_MANAGER))
    merchant = f.make_merchant(uow)
    review = _review(uow)

    view = reviews.confirm(uow, manager, review.public_id, merchant_ref=merchant.public_id)

    assert view.review.status is ReviewStatus.CONFIRMED
    assert view.review.decided_at == uow.clock.now()
    mapping = uow.session.scalars(select(DescriptorMapping)).one()
    assert (mapping.descriptor_key, mapping.merchant_id) == ("harbour noodle", merchant.id)
    event = uow.session.scalars(
        select(AuditEvent).where(AuditEvent.object_id == review.public_id)
    ).one()
    assert event.action == "descriptor.confirmed"


def test_a_decided_review_is_a_conflict_naming_its_state(uow: UnitOfWork) -> None:
    admin = f.principal(f.make_user(uow, Role.BANK_ADMIN))
    merchant = f.make_merchant(uow)
    review = _review(uow)
    reviews.reject(uow, admin, review.public_id, note="a market stall, not ours")

    with pytest.raises(Conflict, match="already rejected"):
        reviews.confirm(uow, admin, review.public_id, merchant_ref=merchant.public_id)
    assert uow.session.scalars(select(DescriptorMapping)).first() is None


def test_only_an_active_alliance_merchant_can_be_confirmed(uow: UnitOfWork) -> None:
    admin = f.principal(f.make_user(uow, Role.BANK_ADMIN))
    suspended = f.make_merchant(uow, status=MerchantStatus.SUSPENDED)
    review = _review(uow)

    with pytest.raises(InvalidInput, match="suspended"):
        reviews.confirm(uow, admin, review.public_id, merchant_ref=suspended.public_id)
    uow.session.refresh(review)
    assert review.status is ReviewStatus.OPEN


def test_one_descriptor_maps_to_one_merchant(uow: UnitOfWork) -> None:
    admin = f.principal(f.make_user(uow, Role.BANK_ADMIN))
    first, second = f.make_merchant(uow), f.make_merchant(uow)
    reviews.confirm(uow, admin, _review(uow, mcc="5812").public_id, merchant_ref=first.public_id)

    other = _review(uow, mcc="5814")  # the same descriptor under another MCC
    with pytest.raises(InvalidInput, match="already mapped"):
        reviews.confirm(uow, admin, other.public_id, merchant_ref=second.public_id)


@pytest.mark.parametrize("role", [Role.AUDITOR, Role.ANALYST, Role.MERCHANT_ADMIN])
def test_only_reviewers_decide(uow: UnitOfWork, role: Role) -> None:
    merchant = f.make_merchant(uow)
    who = f.principal(f.make_user(uow, role, merchant if role is Role.MERCHANT_ADMIN else None))
    review = _review(uow)

    with pytest.raises(Forbidden):
        reviews.reject(uow, who, review.public_id, note="no")
