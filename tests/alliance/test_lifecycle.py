"""The merchant lifecycle: every pair of statuses, legal or not; an illegal move names the status."""

from __future__ import annotations

import itertools

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from beyondbank.alliance import admission, merchants
from beyondbank.alliance.models import ApplicationStatus, MerchantStatus
from beyondbank.core.authz import Principal, Role
from beyondbank.core.errors import InvalidTransition
from beyondbank.core.models import AuditEvent
from beyondbank.core.settings import Settings
from beyondbank.core.uow import UnitOfWork
from beyondbank.identity.models import User
from tests import factories as f

S = MerchantStatus
# Written out here, not read from the code, so that the test states what a bank expects.
LEGAL = {
    (S.APPLIED, S.UNDER_REVIEW),
    (S.UNDER_REVIEW, S.ADMITTED),
    (S.UNDER_REVIEW, S.REJECTED),
    (S.REJECTED, S.UNDER_REVIEW),
    (S.ADMITTED, S.ACTIVE),
    (S.ADMITTED, S.EXITED),
    (S.ACTIVE, S.SUSPENDED),
    (S.ACTIVE, S.EXITED),
    (S.SUSPENDED, S.ACTIVE),
    (S.SUSPENDED, S.EXITED),
    (S.EXITED, S.UNDER_REVIEW),
}
ALL_PAIRS = list(itertools.product(MerchantStatus, MerchantStatus))


@pytest.mark.parametrize(
    ("current", "to"), ALL_PAIRS, ids=[f"{a.value}->{b.value}" for a, b in ALL_PAIRS]
)
def test_every_transition(
    uow: UnitOfWork, rm: Principal, current: MerchantStatus, to: MerchantStatus
) -> None:
    merchant = f.make_merchant(uow, status=current)
    if (current, to) in LEGAL:
        merchants.change_status(uow, rm, merchant, to, "as agreed with the merchant")
        uow.session.refresh(merchant)
        assert merchant.status == to
        assert merchant.status_reason == "as agreed with the merchant"
        assert merchant.status_changed_at == uow.clock.now()
        event = uow.session.scalars(
            select(AuditEvent).where(
                AuditEvent.object_id == merchant.public_id,
                AuditEvent.action == "merchant.status_changed",
            )
        ).one()
        assert (event.before, event.after) == ({"status": current.value}, {"status": to.value})
        assert event.actor_id == rm.public_id
    else:
        with pytest.raises(InvalidTransition) as refused:
            merchants.change_status(uow, rm, merchant, to, "not allowed")
        assert f"is {current.value}" in refused.value.detail
        assert refused.value.extra["current_status"] == current.value
        uow.session.refresh(merchant)
        assert merchant.status == current


def test_illegal_transition_over_the_api_is_a_409_naming_the_status(
    client: TestClient, uow: UnitOfWork, settings: Settings, rm_user: User
) -> None:
    merchant = f.make_merchant(uow, status=S.REJECTED)
    response = client.post(
        f"/api/v1/merchants/{merchant.public_id}/transitions",
        json={"to": "active", "reason": "please"},
        headers=f.auth(settings, uow, rm_user),
    )
    assert response.status_code == 409
    problem = response.json()
    assert problem["type"] == "/problems/invalid-transition"
    assert problem["current_status"] == "rejected"
    assert "rejected" in problem["detail"]
    assert "under_review" in problem["detail"]  # what it may become instead


def test_suspension_over_the_api_and_who_may_do_it(
    client: TestClient, uow: UnitOfWork, settings: Settings, rm_user: User
) -> None:
    merchant = f.make_merchant(uow, status=S.ACTIVE)
    url = f"/api/v1/merchants/{merchant.public_id}/transitions"
    body = {"to": "suspended", "reason": "price-integrity breach found by mystery shopper"}
    own_admin = f.make_user(uow, Role.MERCHANT_ADMIN, merchant)
    assert client.post(url, json=body, headers=f.auth(settings, uow, own_admin)).status_code == 403
    missing_reason = client.post(
        url, json={"to": "suspended"}, headers=f.auth(settings, uow, rm_user)
    )
    assert missing_reason.status_code == 422
    assert missing_reason.json()["errors"][0]["field"] == "body.reason"
    response = client.post(url, json=body, headers=f.auth(settings, uow, rm_user))
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "suspended"
    assert response.json()["status_reason"] == body["reason"]


def test_suspended_merchant_keeps_its_seat(uow: UnitOfWork, rm: Principal) -> None:
    merchant = f.make_merchant(uow, status=S.ACTIVE)
    seat = f.make_seat(uow, f.make_circle(uow), merchant)
    merchants.change_status(uow, rm, merchant, S.SUSPENDED, "complaint under investigation")
    uow.session.refresh(seat)
    assert seat.released_at is None


def test_rejecting_a_merchant_refuses_its_open_applications(uow: UnitOfWork, rm: Principal) -> None:
    merchant = f.make_merchant(uow, status=S.UNDER_REVIEW)
    application = admission.submit(uow, rm, merchant, f.make_circle(uow))
    merchants.change_status(uow, rm, merchant, S.REJECTED, "KYB found undisclosed owners")
    uow.session.refresh(application)
    assert application.status == ApplicationStatus.REJECTED
    assert "undisclosed owners" in (application.decision_reason or "")
