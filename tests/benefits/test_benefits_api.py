"""Benefits through the API: drafting, bad input, price integrity, the lifecycle, who sees what."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from beyondbank.alliance.models import CircleKind, MerchantStatus
from beyondbank.benefits.models import Benefit, BenefitStatus
from beyondbank.core.authz import Role
from beyondbank.core.models import AuditEvent
from beyondbank.core.settings import Settings
from beyondbank.core.uow import UnitOfWork
from tests import factories as f
from tests.benefits import factories as bf

API = "/api/v1"


class World:
    """A bank admin, a merchant with its admin and staff, and a second merchant."""

    def __init__(self, uow: UnitOfWork, settings: Settings) -> None:
        self.merchant = f.make_merchant(uow)
        self.other = f.make_merchant(uow, sub_industry="bakery_cafe")
        self.bank = f.auth(settings, uow, f.make_user(uow, Role.BANK_ADMIN))
        self.admin = f.auth(settings, uow, f.make_user(uow, Role.MERCHANT_ADMIN, self.merchant))
        self.staff = f.auth(settings, uow, f.make_user(uow, Role.MERCHANT_STAFF, self.merchant))
        self.other_admin = f.auth(settings, uow, f.make_user(uow, Role.MERCHANT_ADMIN, self.other))
        self.analyst = f.auth(settings, uow, f.make_user(uow, Role.ANALYST))
        self.customer = f.auth(settings, uow, f.make_customer(uow))


@pytest.fixture
def world(uow: UnitOfWork, settings: Settings) -> World:
    return World(uow, settings)


def _benefit_count(uow: UnitOfWork) -> int:
    return uow.session.scalar(select(func.count()).select_from(Benefit)) or 0


def _create(client: TestClient, headers: dict[str, str], **over: Any) -> dict[str, Any]:
    response = client.post(f"{API}/benefits", json=bf.benefit_body(**over), headers=headers)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


# -- drafting ----------------------------------------------------------------------------------


def test_merchant_admin_drafts_a_benefit_for_its_own_merchant(
    client: TestClient, uow: UnitOfWork, world: World
) -> None:
    body = _create(client, world.admin)
    assert body["id"].startswith("ben_")
    assert body["merchant_id"] == world.merchant.public_id
    assert body["status"] == "draft"
    assert body["timezone"] == "Europe/London"  # the merchant's
    assert body["currency"] == "GBP"  # the bank's
    assert body["summary"] == "20% off, up to £10.00"
    assert body["budget_remaining_minor"] == 50_000
    assert body["merchant_share_bps"] == 10_000
    assert body["price_check"] == "Members pay £8.00 on £10.00; everyone else pays £9.00."
    event = uow.session.scalars(select(AuditEvent).where(AuditEvent.object_id == body["id"])).one()
    assert event.action == "benefit.created"
    assert event.after is not None
    assert event.after["percent_bps"] == 2000


def test_bank_admin_names_the_merchant_and_sets_the_banks_terms(
    client: TestClient, world: World
) -> None:
    body = _create(
        client,
        world.bank,
        merchant_id=world.other.public_id,
        merchant_share_bps=6000,
        commission_bps=150,
    )
    assert body["merchant_id"] == world.other.public_id
    assert (body["merchant_share_bps"], body["commission_bps"]) == (6000, 150)
    missing = client.post(f"{API}/benefits", json=bf.benefit_body(), headers=world.bank)
    assert missing.status_code == 422
    assert missing.json()["errors"][0]["field"] == "body.merchant_id"


def test_a_merchant_cannot_set_its_own_funding_or_commission(
    client: TestClient, uow: UnitOfWork, world: World
) -> None:
    response = client.post(
        f"{API}/benefits", json=bf.benefit_body(merchant_share_bps=0), headers=world.admin
    )
    assert response.status_code == 403
    assert response.json()["errors"][0]["field"] == "body.merchant_share_bps"
    assert _benefit_count(uow) == 0


def test_targeting_circles_by_public_id(client: TestClient, uow: UnitOfWork, world: World) -> None:
    geo = f.make_circle(uow)
    parents = f.make_circle(
        uow,
        kind=CircleKind.SEGMENT,
        segment_rule={"all": [{"attr": "children", "op": "gte", "value": 1}]},
    )
    body = _create(
        client,
        world.admin,
        target_circle_ids=[geo.public_id, parents.public_id],
        new_to_merchant_days=90,
    )
    assert sorted(body["target_circle_ids"]) == sorted([geo.public_id, parents.public_id])
    assert body["new_to_merchant_days"] == 90


@pytest.mark.parametrize(
    ("over", "field"),
    [
        ({"hour_start": 17, "hour_end": 9}, "body.hour_end"),
        ({"hour_start": 9, "hour_end": 9}, "body.hour_end"),
        ({"hour_end": 25}, "body.hour_end"),
        ({"valid_from": "2026-12-31", "valid_to": "2026-12-01"}, "body.valid_to"),
        ({"weekdays": [1, 8]}, "body.weekdays.1"),
        ({"weekdays": [0]}, "body.weekdays.0"),
        ({"weekdays": [1, 1]}, "body.weekdays"),
        ({"percent_bps": None}, "body.percent_bps"),
        ({"fixed_minor": 500}, "body.fixed_minor"),
        (
            {"kind": "spend_threshold", "percent_bps": None, "max_reward_minor": None},
            "body.threshold_minor",
        ),
        ({"kind": "gift", "percent_bps": None, "max_reward_minor": None}, "body.offer_details"),
        (
            {
                "kind": "spend_threshold",
                "percent_bps": None,
                "max_reward_minor": None,
                "threshold_minor": 1000,
                "fixed_minor": 1500,
            },
            "body.fixed_minor",
        ),
        ({"kind": "points_multiplier", "points_multiplier": 1}, "body.points_multiplier"),
        ({"budget_minor": 0}, "body.budget_minor"),
        ({"regular_price_minor": None}, "body.regular_price_minor"),
        ({"public_discount_bps": None}, "body.public_discount_bps"),
        ({"timezone": "Mars/Olympus"}, "body.timezone"),
        ({"currency": "XXQ"}, "body.currency"),
        ({"channels": []}, "body.channels"),
        ({"channels": ["voucher", "fax"]}, "body.channels.1"),
        ({"limit_period": "fortnight"}, "body.limit_period"),
        ({"valid_to": "2026-11-01", "valid_from": "2026-10-01"}, "body.valid_to"),
        ({"target_circle_ids": ["cir_01HZZZZZZZZZZZZZZZZZZZZZZZ"]}, "body.target_circle_ids.0"),
        ({"unknown_field": 1}, "body.unknown_field"),
    ],
)
def test_bad_input_names_the_field_and_writes_nothing(
    client: TestClient, uow: UnitOfWork, world: World, over: dict[str, Any], field: str
) -> None:
    response = client.post(f"{API}/benefits", json=bf.benefit_body(**over), headers=world.admin)
    assert response.status_code == 422, response.text
    problem = response.json()
    assert response.headers["content-type"] == "application/problem+json"
    assert problem["type"] == "/problems/invalid-input"
    assert field in [e["field"] for e in problem["errors"]], problem
    assert _benefit_count(uow) == 0


def test_non_cash_kinds_declare_availability_and_take_no_budget(
    client: TestClient, world: World
) -> None:
    gift = {
        "kind": "gift",
        "percent_bps": None,
        "max_reward_minor": None,
        "regular_price_minor": None,
        "public_discount_bps": None,
        "offer_details": "A free coffee with any breakfast",
    }
    response = client.post(
        f"{API}/benefits",
        json=bf.benefit_body(**gift, publicly_available=False),
        headers=world.admin,
    )
    fields = {e["field"] for e in response.json()["errors"]}
    assert fields == {"body.budget_minor"}
    body = _create(
        client, world.admin, **gift, budget_minor=None, quantity=100, publicly_available=False
    )
    assert body["summary"] == "Gift"
    assert body["price_check"] == "Only members get this gift."


def test_price_integrity_rejects_the_seed_case_in_words(
    client: TestClient, uow: UnitOfWork, world: World
) -> None:
    response = client.post(
        f"{API}/benefits",
        json=bf.benefit_body(percent_bps=1000, max_reward_minor=None, public_discount_bps=1000),
        headers=world.admin,
    )
    assert response.status_code == 422
    problem = response.json()
    assert problem["type"] == "/problems/price-integrity"
    assert "Members would pay £9.00 on £10.00, the same as everyone" in problem["detail"]
    assert {e["field"] for e in problem["errors"]} == {
        "body.percent_bps",
        "body.max_reward_minor",
        "body.public_discount_bps",
    }
    assert _benefit_count(uow) == 0


def test_publicly_available_gift_is_rejected(client: TestClient, world: World) -> None:
    response = client.post(
        f"{API}/benefits",
        json=bf.benefit_body(
            kind="event",
            percent_bps=None,
            max_reward_minor=None,
            regular_price_minor=None,
            public_discount_bps=None,
            budget_minor=None,
            offer_details="Wine tasting evening",
            publicly_available=True,
        ),
        headers=world.admin,
    )
    assert response.status_code == 422
    assert response.json()["type"] == "/problems/price-integrity"
    assert response.json()["errors"][0]["field"] == "body.publicly_available"


def test_a_benefit_that_is_already_over_is_refused(client: TestClient, world: World) -> None:
    response = client.post(
        f"{API}/benefits",
        json=bf.benefit_body(valid_from="2026-10-01", valid_to="2026-11-21"),
        headers=world.admin,
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "body.valid_to"


# -- editing ----------------------------------------------------------------------------------


def test_editing_a_draft_checks_the_result_as_a_whole(
    client: TestClient, uow: UnitOfWork, world: World
) -> None:
    created = _create(client, world.admin)
    url = f"{API}/benefits/{created['id']}"
    edited = client.patch(url, json={"hour_end": 20, "title": "Evening deal"}, headers=world.admin)
    assert edited.status_code == 200, edited.text
    assert (edited.json()["hour_end"], edited.json()["title"]) == (20, "Evening deal")
    inverted = client.patch(url, json={"hour_start": 21}, headers=world.admin)
    assert inverted.status_code == 422
    assert inverted.json()["errors"][0]["field"] == "body.hour_end"
    worse = client.patch(url, json={"percent_bps": 500}, headers=world.admin)
    assert worse.status_code == 422
    assert worse.json()["type"] == "/problems/price-integrity"
    assert client.get(url, headers=world.admin).json()["hour_start"] == 9  # nothing written
    actions = uow.session.scalars(
        select(AuditEvent.action).where(AuditEvent.object_id == created["id"])
    ).all()
    assert actions == ["benefit.created", "benefit.updated"]


def test_changing_the_kind_drops_the_old_kinds_terms(client: TestClient, world: World) -> None:
    created = _create(client, world.admin)
    edited = client.patch(
        f"{API}/benefits/{created['id']}",
        json={
            "kind": "amount_off",
            "fixed_minor": 300,
            "regular_price_minor": 1000,
            "public_discount_bps": 0,
        },
        headers=world.admin,
    )
    assert edited.status_code == 200, edited.text
    body = edited.json()
    assert (body["percent_bps"], body["max_reward_minor"], body["fixed_minor"]) == (None, None, 300)
    assert body["summary"] == "£3.00 off"


def test_live_benefits_are_not_edited_but_paused_extended_or_ended(
    client: TestClient, uow: UnitOfWork, world: World
) -> None:
    benefit = bf.make_benefit(uow, world.merchant, budget_minor=10_000, quantity=50)
    url = f"{API}/benefits/{benefit.public_id}"
    refused = client.patch(url, json={"title": "New"}, headers=world.admin)
    assert refused.status_code == 409
    assert refused.json()["type"] == "/problems/invalid-transition"
    assert "active" in refused.json()["detail"]
    extended = client.post(
        f"{url}/extend",
        json={"add_budget_minor": 5000, "add_quantity": 10, "valid_to": "2027-01-31"},
        headers=world.admin,
    )
    assert extended.status_code == 200, extended.text
    body = extended.json()
    assert (body["budget_minor"], body["budget_remaining_minor"]) == (15_000, 15_000)
    assert (body["quantity"], body["quantity_remaining"]) == (60, 60)
    assert body["valid_to"] == "2027-01-31"
    earlier = client.post(f"{url}/extend", json={"valid_to": "2027-01-01"}, headers=world.admin)
    assert earlier.status_code == 422
    assert earlier.json()["errors"][0]["field"] == "body.valid_to"
    nothing = client.post(f"{url}/extend", json={}, headers=world.admin)
    assert nothing.status_code == 422


# -- lifecycle ---------------------------------------------------------------------------------


def _act(
    client: TestClient, headers: dict[str, str], benefit_id: str, action: str, **body: Any
) -> Any:
    return client.post(f"{API}/benefits/{benefit_id}/{action}", json=body or None, headers=headers)


def test_the_full_lifecycle(client: TestClient, uow: UnitOfWork, world: World) -> None:
    ben = _create(client, world.admin)["id"]
    assert _act(client, world.admin, ben, "submit").json()["status"] == "submitted"
    assert _act(client, world.admin, ben, "withdraw").json()["status"] == "draft"
    assert _act(client, world.admin, ben, "submit").json()["status"] == "submitted"
    rejected = _act(client, world.bank, ben, "reject", reason="Photos missing")
    assert rejected.json()["status"] == "rejected"
    assert rejected.json()["decision_reason"] == "Photos missing"
    assert _act(client, world.admin, ben, "submit").json()["status"] == "submitted"
    approved = _act(client, world.bank, ben, "approve", merchant_share_bps=8000, commission_bps=200)
    assert approved.status_code == 200, approved.text
    assert approved.json()["status"] == "active"
    assert (approved.json()["merchant_share_bps"], approved.json()["commission_bps"]) == (8000, 200)
    assert _act(client, world.admin, ben, "pause", reason="Stocktake").json()["status"] == "paused"
    assert _act(client, world.admin, ben, "resume").json()["status"] == "active"
    assert _act(client, world.bank, ben, "end", reason="Campaign over").json()["status"] == "ended"
    actions = uow.session.scalars(
        select(AuditEvent.action).where(AuditEvent.object_id == ben).order_by(AuditEvent.id)
    ).all()
    assert actions == [
        "benefit.created",
        "benefit.submit",
        "benefit.withdraw",
        "benefit.submit",
        "benefit.reject",
        "benefit.submit",
        "benefit.approve",
        "benefit.pause",
        "benefit.resume",
        "benefit.end",
    ]


@pytest.mark.parametrize(
    ("status", "action"),
    [
        (BenefitStatus.DRAFT, "approve"),
        (BenefitStatus.DRAFT, "pause"),
        (BenefitStatus.DRAFT, "withdraw"),
        (BenefitStatus.SUBMITTED, "submit"),
        (BenefitStatus.SUBMITTED, "pause"),
        (BenefitStatus.ACTIVE, "submit"),
        (BenefitStatus.ACTIVE, "approve"),
        (BenefitStatus.ACTIVE, "resume"),
        (BenefitStatus.PAUSED, "pause"),
        (BenefitStatus.REJECTED, "approve"),
        (BenefitStatus.ENDED, "resume"),
        (BenefitStatus.ENDED, "end"),
        (BenefitStatus.ENDED, "submit"),
    ],
)
def test_illegal_transitions_are_409_naming_the_state(
    client: TestClient, uow: UnitOfWork, world: World, status: BenefitStatus, action: str
) -> None:
    benefit = bf.make_benefit(uow, world.merchant, status=status)
    body = {"reason": "Not good enough"} if action == "reject" else None
    response = client.post(
        f"{API}/benefits/{benefit.public_id}/{action}", json=body, headers=world.bank
    )
    assert response.status_code == 409, response.text
    problem = response.json()
    assert problem["type"] == "/problems/invalid-transition"
    assert problem["current_status"] == status.value
    assert status.value in problem["detail"]


def test_only_the_bank_approves_or_rejects(
    client: TestClient, uow: UnitOfWork, world: World
) -> None:
    benefit = bf.make_benefit(uow, world.merchant, status=BenefitStatus.SUBMITTED)
    for who in (world.admin, world.staff, world.analyst):
        assert _act(client, who, benefit.public_id, "approve").status_code == 403
        assert _act(client, who, benefit.public_id, "reject", reason="no way").status_code == 403
    missing_reason = client.post(
        f"{API}/benefits/{benefit.public_id}/reject", json={}, headers=world.bank
    )
    assert missing_reason.status_code == 422
    assert missing_reason.json()["errors"][0]["field"] == "body.reason"


def test_only_an_active_merchants_benefit_goes_live(
    client: TestClient, uow: UnitOfWork, world: World
) -> None:
    suspended = f.make_merchant(uow, sub_industry="florist", status=MerchantStatus.SUSPENDED)
    benefit = bf.make_benefit(uow, suspended, status=BenefitStatus.SUBMITTED)
    response = _act(client, world.bank, benefit.public_id, "approve")
    assert response.status_code == 409
    assert "suspended" in response.json()["detail"]
    paused = bf.make_benefit(uow, suspended, status=BenefitStatus.PAUSED)
    assert _act(client, world.bank, paused.public_id, "resume").status_code == 409


# -- who sees what -----------------------------------------------------------------------------


def test_a_merchant_cannot_see_or_touch_another_merchants_benefit(
    client: TestClient, uow: UnitOfWork, world: World
) -> None:
    theirs = bf.make_benefit(uow, world.other, status=BenefitStatus.DRAFT)
    url = f"{API}/benefits/{theirs.public_id}"
    assert client.get(url, headers=world.admin).status_code == 404
    assert client.patch(url, json={"title": "Mine now"}, headers=world.admin).status_code == 404
    assert client.post(f"{url}/submit", headers=world.admin).status_code == 404
    assert client.post(f"{url}/end", headers=world.admin).status_code == 404
    sneaky = client.post(
        f"{API}/benefits",
        json=bf.benefit_body(merchant_id=world.other.public_id),
        headers=world.admin,
    )
    assert sneaky.status_code == 404
    assert client.get(url, headers=world.other_admin).status_code == 200


def test_listing_is_scoped_and_filtered(client: TestClient, uow: UnitOfWork, world: World) -> None:
    mine = bf.make_benefit(uow, world.merchant)
    bf.make_benefit(uow, world.merchant, status=BenefitStatus.DRAFT)
    theirs = bf.make_benefit(uow, world.other)
    own = client.get(f"{API}/benefits", headers=world.staff).json()["items"]
    assert {b["merchant_id"] for b in own} == {world.merchant.public_id}
    assert len(own) == 2
    active = client.get(f"{API}/benefits?status=active", headers=world.bank).json()["items"]
    assert {b["id"] for b in active} == {mine.public_id, theirs.public_id}
    by_merchant = client.get(
        f"{API}/benefits?merchant_id={world.other.public_id}", headers=world.analyst
    ).json()["items"]
    assert [b["id"] for b in by_merchant] == [theirs.public_id]
    page = client.get(f"{API}/benefits?limit=1", headers=world.bank).json()
    assert len(page["items"]) == 1
    following = client.get(
        f"{API}/benefits?limit=5&cursor={page['next_cursor']}", headers=world.bank
    )
    assert len(following.json()["items"]) == 2


def test_roles_that_may_not_write(client: TestClient, world: World) -> None:
    for who in (world.staff, world.analyst, world.customer):
        response = client.post(f"{API}/benefits", json=bf.benefit_body(), headers=who)
        assert response.status_code == 403
    assert client.post(f"{API}/benefits", json=bf.benefit_body()).status_code == 401
    assert client.get(f"{API}/benefits", headers=world.customer).status_code == 403
