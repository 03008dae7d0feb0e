"""Voucher redemption at the counter: checks, limits, budget, idempotency, reversal, lists."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from beyondbank.alliance.models import CircleKind, Member, MemberStatus, MerchantStatus
from beyondbank.benefits.models import (
    Benefit,
    BenefitKind,
    BenefitStatus,
    BenefitUsage,
    LimitPeriod,
    Redemption,
)
from beyondbank.benefits.schemas import RedemptionIn
from beyondbank.core import idempotency
from beyondbank.core.authz import Role
from beyondbank.core.clock import FixedClock
from beyondbank.core.models import AuditEvent, IdempotencyRecord
from beyondbank.core.settings import Settings
from beyondbank.core.uow import UnitOfWork
from tests import factories as f
from tests.benefits import factories as bf

API = "/api/v1"
_keys = itertools.count(1)


class Counter:
    """A merchant's counter: its staff, its admin, and a member at the till."""

    def __init__(self, uow: UnitOfWork, settings: Settings, clock: FixedClock) -> None:
        self.uow, self.settings, self.clock = uow, settings, clock
        self.merchant = f.make_merchant(uow)
        self.location = self.merchant.locations[0]
        self.staff_user = f.make_user(uow, Role.MERCHANT_STAFF, self.merchant)
        self.admin_user = f.make_user(uow, Role.MERCHANT_ADMIN, self.merchant)
        self.bank_user = f.make_user(uow, Role.BANK_ADMIN)
        self.member = f.make_member(uow)

    # Tokens are issued at the clock's current time, since tests move the clock by days.
    @property
    def staff(self) -> dict[str, str]:
        return f.auth(self.settings, self.uow, self.staff_user)

    @property
    def admin(self) -> dict[str, str]:
        return f.auth(self.settings, self.uow, self.admin_user)

    @property
    def bank(self) -> dict[str, str]:
        return f.auth(self.settings, self.uow, self.bank_user)

    def body(self, benefit: Benefit, member: Member | None = None, **over: Any) -> dict[str, Any]:
        body: dict[str, Any] = {
            "code": bf.code_at(self.settings, member or self.member, self.clock.now()),
            "benefit_id": benefit.public_id,
            "location_id": self.location.public_id,
            "purchase_amount_minor": 5000,
        }
        body.update(over)
        return {k: v for k, v in body.items() if v is not None}

    def redeem(
        self,
        client: TestClient,
        benefit: Benefit,
        member: Member | None = None,
        *,
        key: str | None = None,
        headers: dict[str, str] | None = None,
        **over: Any,
    ) -> Any:
        return client.post(
            f"{API}/redemptions",
            json=self.body(benefit, member, **over),
            headers={**(headers or self.staff), "Idempotency-Key": key or f"key-{next(_keys)}"},
        )


@pytest.fixture
def counter(uow: UnitOfWork, settings: Settings, clock: FixedClock) -> Counter:
    return Counter(uow, settings, clock)


def _count(uow: UnitOfWork, model: type[Any]) -> int:
    return uow.session.scalar(select(func.count()).select_from(model)) or 0


def _remaining(uow: UnitOfWork, benefit: Benefit) -> tuple[int | None, int | None]:
    row = uow.session.execute(
        select(Benefit.budget_remaining_minor, Benefit.quantity_remaining).where(
            Benefit.id == benefit.id
        )
    ).one()
    return row[0], row[1]


def _uses(uow: UnitOfWork, benefit: Benefit, member: Member) -> dict[str, int]:
    rows = uow.session.execute(
        select(BenefitUsage.period_key, BenefitUsage.uses).where(
            BenefitUsage.benefit_id == benefit.id, BenefitUsage.member_id == member.id
        )
    )
    return {key: uses for key, uses in rows}


# -- the happy path ---------------------------------------------------------------------------


def test_redeeming_a_voucher_records_the_reward_split_and_counters(
    client: TestClient, uow: UnitOfWork, counter: Counter
) -> None:
    benefit = bf.make_benefit(
        uow,
        counter.merchant,
        budget_minor=10_000,
        quantity=5,
        member_limit=2,
        limit_period=LimitPeriod.WEEK,
        merchant_share_bps=7000,
        commission_bps=150,
        max_reward_minor=None,
    )
    response = counter.redeem(client, benefit, purchase_amount_minor=4999)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["id"].startswith("red_")
    assert body["status"] == "redeemed"
    assert body["benefit_id"] == benefit.public_id
    assert body["merchant_id"] == counter.merchant.public_id
    assert body["location_id"] == counter.location.public_id
    assert body["member_number"] == counter.member.member_number
    assert body["reward_minor"] == 999  # 20% of £49.99, floored
    assert (body["merchant_funded_minor"], body["bank_funded_minor"]) == (699, 300)
    assert body["commission_minor"] == 74  # 1.5% of £49.99, floored
    assert body["period_key"] == "2026-W47"
    assert body["give"] == "20% off"
    assert _remaining(uow, benefit) == (10_000 - 999, 4)
    assert _uses(uow, benefit, counter.member) == {"2026-W47": 1}
    event = uow.session.scalars(select(AuditEvent).where(AuditEvent.object_id == body["id"])).one()
    assert event.action == "redemption.created"
    assert event.actor_role == "merchant_staff"


def test_a_gift_needs_no_amount_and_gives_no_cash(
    client: TestClient, uow: UnitOfWork, counter: Counter
) -> None:
    gift = bf.make_benefit(
        uow,
        counter.merchant,
        kind=BenefitKind.GIFT,
        percent_bps=None,
        max_reward_minor=None,
        regular_price_minor=None,
        public_discount_bps=None,
        offer_details="A free coffee",
        quantity=3,
    )
    response = counter.redeem(client, gift, purchase_amount_minor=None, location_id=None)
    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["reward_minor"], body["purchase_amount_minor"], body["location_id"]) == (
        0,
        None,
        None,
    )
    assert body["give"] == "Gift: A free coffee"
    assert _remaining(uow, gift) == (None, 2)


def test_a_merchant_bound_point_of_sale_client_can_redeem(
    client: TestClient, uow: UnitOfWork, counter: Counter
) -> None:
    pos = f.make_client(uow, ["redemptions:create", "redemptions:read"], counter.merchant)
    benefit = bf.make_benefit(uow, counter.merchant)
    response = counter.redeem(client, benefit, headers=f.auth(counter.settings, uow, pos))
    assert response.status_code == 201, response.text
    unbound = f.make_client(uow, ["redemptions:create"])
    refused = counter.redeem(
        client, benefit, f.make_member(uow), headers=f.auth(counter.settings, uow, unbound)
    )
    assert refused.status_code == 403


# -- the code -----------------------------------------------------------------------------------


def test_a_code_lives_for_its_window_and_the_next_then_expires(
    client: TestClient, uow: UnitOfWork, counter: Counter, clock: FixedClock
) -> None:
    benefit = bf.make_benefit(uow, counter.merchant)
    code = bf.code_at(counter.settings, counter.member, clock.now())
    clock.advance(timedelta(seconds=60))  # 10:00:00 is a window's start: 60 s later it is over
    expired = counter.redeem(client, benefit, code=code)
    assert expired.status_code == 422
    assert expired.json()["errors"][0]["field"] == "body.code"
    assert "expired" in expired.json()["detail"]
    clock.advance(timedelta(seconds=-1))
    assert counter.redeem(client, benefit, code=code).status_code == 201


@pytest.mark.parametrize("code", ["12345", "6200000001ABCDEFGH", "620000000112345678", "x" * 40])
def test_malformed_or_forged_codes_are_422_naming_the_code_and_write_nothing(
    client: TestClient, uow: UnitOfWork, counter: Counter, code: str
) -> None:
    benefit = bf.make_benefit(uow, counter.merchant, quantity=3)
    response = counter.redeem(client, benefit, code=code)
    assert response.status_code == 422
    assert response.json()["type"] == "/problems/invalid-input"
    assert response.json()["errors"][0]["field"] == "body.code"
    assert _count(uow, Redemption) == 0
    assert _count(uow, IdempotencyRecord) == 0  # the claim was released
    assert _remaining(uow, benefit) == (None, 3)


def test_a_second_scan_of_the_same_code_is_refused(
    client: TestClient, uow: UnitOfWork, counter: Counter
) -> None:
    first = bf.make_benefit(uow, counter.merchant)
    second = bf.make_benefit(uow, counter.merchant, title="Another")
    code = bf.code_at(counter.settings, counter.member, counter.clock.now())
    assert counter.redeem(client, first, code=code).status_code == 201
    again = counter.redeem(client, second, code=code)
    assert again.status_code == 409
    assert "used already" in again.json()["detail"]
    assert _uses(uow, second, counter.member) == {}  # the refused attempt left no trace
    # The member's phone shows a fresh code in the next window, and that one works.
    counter.clock.advance(timedelta(seconds=30))
    assert counter.redeem(client, second).status_code == 201


def test_a_member_who_left_cannot_redeem(
    client: TestClient, uow: UnitOfWork, counter: Counter
) -> None:
    benefit = bf.make_benefit(uow, counter.merchant)
    counter.member.status = MemberStatus.LEFT
    uow.session.flush()
    response = counter.redeem(client, benefit)
    assert response.status_code == 422
    assert response.json()["type"] == "/problems/not-eligible"


# -- the benefit --------------------------------------------------------------------------------


def test_another_merchants_benefit_is_404(
    client: TestClient, uow: UnitOfWork, counter: Counter
) -> None:
    other = f.make_merchant(uow, sub_industry="bar_pub")
    theirs = bf.make_benefit(uow, other)
    response = counter.redeem(client, theirs, location_id=None)
    assert response.status_code == 404
    assert response.json()["errors"][0]["field"] == "body.benefit_id"


def test_state_channel_and_merchant_are_checked(
    client: TestClient, uow: UnitOfWork, counter: Counter
) -> None:
    paused = bf.make_benefit(uow, counter.merchant, status=BenefitStatus.PAUSED)
    response = counter.redeem(client, paused)
    assert response.status_code == 409
    assert "paused" in response.json()["detail"]

    card_only = bf.make_benefit(uow, counter.merchant, channels=["card_linked"])
    response = counter.redeem(client, card_only)
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "body.benefit_id"

    benefit = bf.make_benefit(uow, counter.merchant)
    no_amount = counter.redeem(client, benefit, purchase_amount_minor=None)
    assert no_amount.status_code == 422
    assert no_amount.json()["errors"][0]["field"] == "body.purchase_amount_minor"

    foreign_location = f.make_merchant(uow, sub_industry="hotel").locations[0]
    response = counter.redeem(client, benefit, location_id=foreign_location.public_id)
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "body.location_id"

    counter.merchant.status = MerchantStatus.SUSPENDED
    uow.session.flush()
    suspended = counter.redeem(client, benefit)
    assert suspended.status_code == 409
    assert "suspended" in suspended.json()["detail"]
    assert _count(uow, Redemption) == 0


def test_eligibility_now_schedule_spend_currency(
    client: TestClient, uow: UnitOfWork, counter: Counter
) -> None:
    lunch = bf.make_benefit(uow, counter.merchant, hour_start=11, hour_end=14)
    response = counter.redeem(client, lunch)  # 10:00 in London
    assert response.status_code == 422
    assert response.json()["type"] == "/problems/not-eligible"
    assert response.json()["reason"] == "hours"
    assert "11:00 to 14:00" in response.json()["detail"]

    weekdays = bf.make_benefit(uow, counter.merchant, weekdays=[1, 2, 3, 4, 5])
    assert counter.redeem(client, weekdays).json()["reason"] == "weekday"  # a Sunday

    minimum = bf.make_benefit(uow, counter.merchant, min_spend_minor=6000)
    response = counter.redeem(client, minimum)
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "body.purchase_amount_minor"
    assert "£60.00" in response.json()["detail"]

    euros = counter.redeem(client, minimum, currency="EUR", purchase_amount_minor=7000)
    assert euros.json()["errors"][0]["field"] == "body.currency"

    threshold = bf.make_benefit(
        uow,
        counter.merchant,
        kind=BenefitKind.SPEND_THRESHOLD,
        percent_bps=None,
        max_reward_minor=None,
        threshold_minor=8000,
        fixed_minor=1000,
    )
    below = counter.redeem(client, threshold)
    assert below.status_code == 422
    assert below.json()["reason"] == "no_reward"
    assert (
        counter.redeem(client, threshold, purchase_amount_minor=8000).json()["reward_minor"] == 1000
    )


def test_targeting_by_circle_and_segment(
    client: TestClient, uow: UnitOfWork, counter: Counter
) -> None:
    nearby = f.make_circle(uow)  # 3 km around Canary Wharf
    parents = f.make_circle(
        uow,
        kind=CircleKind.SEGMENT,
        segment_rule={"all": [{"attr": "children", "op": "gte", "value": 1}]},
    )
    benefit = bf.make_benefit(uow, counter.merchant, targets=[nearby, parents])
    far_away = f.make_member(uow, home=(53.4808, -2.2426))  # Manchester, no children
    refused = counter.redeem(client, benefit, far_away)
    assert refused.status_code == 422
    assert refused.json()["reason"] == "not_targeted"
    local = f.make_member(uow, home=(51.5072, -0.0200))
    assert counter.redeem(client, benefit, local).status_code == 201
    parent = f.make_member(uow, home=(53.4808, -2.2426), attributes={"children": 2})
    assert counter.redeem(client, benefit, parent).status_code == 201


def test_new_to_merchant_looks_at_earlier_redemptions(
    client: TestClient, uow: UnitOfWork, counter: Counter, clock: FixedClock
) -> None:
    regular = bf.make_benefit(uow, counter.merchant)
    welcome = bf.make_benefit(uow, counter.merchant, new_to_merchant_days=30, title="Welcome")
    assert counter.redeem(client, welcome).status_code == 201  # never been before
    clock.advance(timedelta(days=1))
    assert counter.redeem(client, regular).status_code == 201
    clock.advance(timedelta(days=29, seconds=-1))
    refused = counter.redeem(client, welcome)
    assert refused.status_code == 422
    assert refused.json()["reason"] == "not_new_to_merchant"
    clock.advance(timedelta(days=1, seconds=2))  # 30 days after the last visit
    assert counter.redeem(client, welcome).status_code == 201


# -- limits per period, in local time -------------------------------------------------------------


def _at(clock: FixedClock, iso: str) -> None:
    clock.set(datetime.fromisoformat(iso).astimezone(UTC))


@pytest.mark.parametrize(
    ("period", "first", "same_period", "next_period"),
    [
        # London in winter is UTC+0: a day ends at midnight.
        (
            "day",
            "2026-11-22T00:00:00+00:00",
            "2026-11-22T23:59:30+00:00",
            "2026-11-23T00:00:00+00:00",
        ),
        # Sunday night is still ISO week 47; Monday starts week 48.
        (
            "week",
            "2026-11-16T00:00:00+00:00",
            "2026-11-22T23:59:30+00:00",
            "2026-11-23T00:00:00+00:00",
        ),
        (
            "month",
            "2026-11-01T00:00:00+00:00",
            "2026-11-30T23:59:30+00:00",
            "2026-12-01T00:00:00+00:00",
        ),
        # Across the year: 31 Dec 2026 and 3 Jan 2027 are both in ISO week 2026-W53.
        (
            "week",
            "2026-12-31T12:00:00+00:00",
            "2027-01-03T23:59:30+00:00",
            "2027-01-04T00:00:00+00:00",
        ),
    ],
)
def test_member_limit_per_period_at_local_boundaries(
    client: TestClient,
    uow: UnitOfWork,
    counter: Counter,
    clock: FixedClock,
    period: str,
    first: str,
    same_period: str,
    next_period: str,
) -> None:
    benefit = bf.make_benefit(
        uow,
        counter.merchant,
        member_limit=1,
        limit_period=LimitPeriod(period),
        valid_to=datetime(2027, 2, 1).date(),
    )
    _at(clock, first)
    assert counter.redeem(client, benefit).status_code == 201
    _at(clock, same_period)
    refused = counter.redeem(client, benefit)
    assert refused.status_code == 409, refused.text
    assert refused.json()["type"] == "/problems/limit-reached"
    assert "once" in refused.json()["detail"]
    _at(clock, next_period)
    assert counter.redeem(client, benefit).status_code == 201, period


def test_day_limits_follow_the_benefits_own_zone(
    client: TestClient, uow: UnitOfWork, counter: Counter, clock: FixedClock
) -> None:
    shanghai = bf.make_benefit(
        uow,
        counter.merchant,
        member_limit=1,
        limit_period=LimitPeriod.DAY,
        timezone="Asia/Shanghai",
    )
    _at(clock, "2026-11-22T15:59:00+00:00")  # 23:59 Sunday in Shanghai
    assert counter.redeem(client, shanghai).json()["period_key"] == "2026-11-22"
    _at(clock, "2026-11-22T16:00:00+00:00")  # midnight: Monday there, still Sunday in London
    again = counter.redeem(client, shanghai)
    assert again.status_code == 201
    assert again.json()["period_key"] == "2026-11-23"


def test_a_limit_of_three_per_month(
    client: TestClient, uow: UnitOfWork, counter: Counter, clock: FixedClock
) -> None:
    benefit = bf.make_benefit(uow, counter.merchant, member_limit=3, limit_period=LimitPeriod.MONTH)
    for _ in range(3):
        assert counter.redeem(client, benefit).status_code == 201
        clock.advance(timedelta(minutes=1))
    refused = counter.redeem(client, benefit)
    assert refused.status_code == 409
    assert "3 times this month" in refused.json()["detail"]
    assert _uses(uow, benefit, counter.member) == {"2026-11": 3}


# -- budget and quantity ------------------------------------------------------------------------


def test_the_budget_grants_its_remainder_then_refuses(
    client: TestClient, uow: UnitOfWork, counter: Counter
) -> None:
    benefit = bf.make_benefit(uow, counter.merchant, budget_minor=1500, merchant_share_bps=5000)
    first = counter.redeem(client, benefit)
    assert first.json()["reward_minor"] == 1000
    second = counter.redeem(client, benefit, f.make_member(uow))
    assert second.status_code == 201
    assert second.json()["reward_minor"] == 500  # what was left
    assert (second.json()["merchant_funded_minor"], second.json()["bank_funded_minor"]) == (
        250,
        250,
    )
    assert _remaining(uow, benefit) == (0, None)
    spent = counter.redeem(client, benefit, f.make_member(uow))
    assert spent.status_code == 409
    assert spent.json()["type"] == "/problems/limit-reached"
    assert "budget (£15.00) has been spent" in spent.json()["detail"]


def test_quantity_runs_out(client: TestClient, uow: UnitOfWork, counter: Counter) -> None:
    benefit = bf.make_benefit(uow, counter.merchant, quantity=1)
    assert counter.redeem(client, benefit).status_code == 201
    gone = counter.redeem(client, benefit, f.make_member(uow))
    assert gone.status_code == 409
    assert "All 1 of this benefit have been redeemed" in gone.json()["detail"]
    assert _remaining(uow, benefit) == (None, 0)


# -- idempotency --------------------------------------------------------------------------------


def test_the_same_key_and_body_replays_the_original_answer(
    client: TestClient, uow: UnitOfWork, counter: Counter, clock: FixedClock
) -> None:
    benefit = bf.make_benefit(uow, counter.merchant, quantity=10)
    body = counter.body(benefit)
    headers = {**counter.staff, "Idempotency-Key": "till-7-receipt-1001"}
    first = client.post(f"{API}/redemptions", json=body, headers=headers)
    assert first.status_code == 201
    clock.advance(timedelta(minutes=5))  # the code has expired since; the answer stands
    replay = client.post(f"{API}/redemptions", json=body, headers=headers)
    assert replay.status_code == 201
    assert replay.json() == first.json()
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert _count(uow, Redemption) == 1
    assert _remaining(uow, benefit) == (None, 9)

    changed = client.post(
        f"{API}/redemptions", json={**body, "purchase_amount_minor": 9999}, headers=headers
    )
    assert changed.status_code == 422
    assert changed.json()["type"] == "/problems/idempotency-key-reused"
    assert _count(uow, Redemption) == 1


def test_a_key_still_in_flight_is_409(
    client: TestClient, uow: UnitOfWork, counter: Counter
) -> None:
    benefit = bf.make_benefit(uow, counter.merchant)
    body = counter.body(benefit)
    # Another till's request with this key has claimed it and not finished yet.
    held = idempotency.claim(
        uow,
        scope=f"redemptions:user:{counter.staff_user.public_id}",
        key="busy-key",
        fingerprint=idempotency.fingerprint(
            "POST", f"{API}/redemptions", RedemptionIn(**body).model_dump(mode="json")
        ),
        lock_seconds=120,
    )
    assert isinstance(held, idempotency.Claim)
    response = client.post(
        f"{API}/redemptions", json=body, headers={**counter.staff, "Idempotency-Key": "busy-key"}
    )
    assert response.status_code == 409
    assert response.json()["type"] == "/problems/idempotency-in-flight"
    assert _count(uow, Redemption) == 0


def test_a_refused_attempt_frees_its_key_for_a_retry(
    client: TestClient, uow: UnitOfWork, counter: Counter
) -> None:
    benefit = bf.make_benefit(uow, counter.merchant, min_spend_minor=6000)
    headers = {**counter.staff, "Idempotency-Key": "retry-me"}
    body = counter.body(benefit, purchase_amount_minor=7000)
    assert (
        client.post(
            f"{API}/redemptions", json={**body, "purchase_amount_minor": 100}, headers=headers
        ).status_code
        == 422
    )
    # The fix is a different body; a refused request kept nothing, so the key is free again.
    assert client.post(f"{API}/redemptions", json=body, headers=headers).status_code == 201


def test_the_idempotency_key_is_required(
    client: TestClient, uow: UnitOfWork, counter: Counter
) -> None:
    benefit = bf.make_benefit(uow, counter.merchant)
    response = client.post(f"{API}/redemptions", json=counter.body(benefit), headers=counter.staff)
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "header.Idempotency-Key"


# -- reversal -----------------------------------------------------------------------------------


def test_reversal_restores_budget_quantity_and_the_members_count(
    client: TestClient, uow: UnitOfWork, counter: Counter
) -> None:
    benefit = bf.make_benefit(
        uow,
        counter.merchant,
        budget_minor=5000,
        quantity=3,
        member_limit=1,
        limit_period=LimitPeriod.DAY,
    )
    redeemed = counter.redeem(client, benefit).json()
    assert _remaining(uow, benefit) == (4000, 2)
    url = f"{API}/redemptions/{redeemed['id']}/reverse"
    assert (
        client.post(url, json={"reason": "Wrong member"}, headers=counter.staff).status_code == 403
    )
    assert (
        client.post(url, json={}, headers=counter.admin).json()["errors"][0]["field"]
        == "body.reason"
    )
    reversed_ = client.post(
        url, json={"reason": "Customer returned the goods"}, headers=counter.admin
    )
    assert reversed_.status_code == 200, reversed_.text
    assert reversed_.json()["status"] == "reversed"
    assert reversed_.json()["reversal_reason"] == "Customer returned the goods"
    assert _remaining(uow, benefit) == (5000, 3)
    assert _uses(uow, benefit, counter.member) == {"2026-11-22": 0}
    twice = client.post(url, json={"reason": "Again"}, headers=counter.admin)
    assert twice.status_code == 409
    assert twice.json()["current_status"] == "reversed"
    assert _remaining(uow, benefit) == (5000, 3)
    # The use is given back: the member can redeem again today with a fresh code.
    counter.clock.advance(timedelta(seconds=30))
    assert counter.redeem(client, benefit).status_code == 201
    actions = uow.session.scalars(
        select(AuditEvent.action).where(AuditEvent.object_id == redeemed["id"])
    ).all()
    assert actions == ["redemption.created", "redemption.reversed"]


def test_another_merchant_cannot_reverse_or_see_a_redemption(
    client: TestClient, uow: UnitOfWork, counter: Counter
) -> None:
    benefit = bf.make_benefit(uow, counter.merchant)
    redeemed = counter.redeem(client, benefit).json()
    other = f.make_merchant(uow, sub_industry="bar_pub")
    other_admin = f.auth(counter.settings, uow, f.make_user(uow, Role.MERCHANT_ADMIN, other))
    url = f"{API}/redemptions/{redeemed['id']}"
    assert client.get(url, headers=other_admin).status_code == 404
    assert (
        client.post(f"{url}/reverse", json={"reason": "mine"}, headers=other_admin).status_code
        == 404
    )
    assert client.get(url, headers=counter.staff).json()["id"] == redeemed["id"]


# -- lists --------------------------------------------------------------------------------------


def test_lists_are_scoped_to_the_merchant_and_filtered(
    client: TestClient, uow: UnitOfWork, counter: Counter, clock: FixedClock
) -> None:
    mine = bf.make_benefit(uow, counter.merchant)
    also_mine = bf.make_benefit(uow, counter.merchant, title="Other")
    first = counter.redeem(client, mine).json()
    second_member = f.make_member(uow)
    clock.advance(timedelta(hours=1))
    counter.redeem(client, also_mine, second_member)
    other = f.make_merchant(uow, sub_industry="bar_pub")
    other_staff = f.auth(counter.settings, uow, f.make_user(uow, Role.MERCHANT_STAFF, other))
    theirs = bf.make_benefit(uow, other)
    counter.redeem(client, theirs, f.make_member(uow), headers=other_staff, location_id=None)

    own = client.get(f"{API}/redemptions", headers=counter.staff).json()["items"]
    assert len(own) == 2
    assert {r["merchant_id"] for r in own} == {counter.merchant.public_id}
    assert len(client.get(f"{API}/redemptions", headers=counter.bank).json()["items"]) == 3

    by_benefit = client.get(f"{API}/redemptions?benefit_id={mine.public_id}", headers=counter.staff)
    assert [r["id"] for r in by_benefit.json()["items"]] == [first["id"]]
    by_member = client.get(
        f"{API}/redemptions?member_number={second_member.member_number}", headers=counter.staff
    )
    assert [r["member_number"] for r in by_member.json()["items"]] == [second_member.member_number]
    since = client.get(
        f"{API}/redemptions", params={"redeemed_from": "2026-11-22T10:30:00Z"}, headers=counter.bank
    )
    assert len(since.json()["items"]) == 2
    naive = client.get(
        f"{API}/redemptions", params={"redeemed_from": "2026-11-22T10:30:00"}, headers=counter.bank
    )
    assert naive.status_code == 422
    at_till = client.get(
        f"{API}/redemptions?location_id={counter.location.public_id}", headers=counter.staff
    )
    assert len(at_till.json()["items"]) == 2
    needs_merchant = client.get(
        f"{API}/redemptions?location_id={counter.location.public_id}", headers=counter.bank
    )
    assert needs_merchant.json()["errors"][0]["field"] == "query.location_id"
    theirs_filter = client.get(
        f"{API}/redemptions?benefit_id={theirs.public_id}", headers=counter.staff
    )
    assert theirs_filter.status_code == 404
    paged = client.get(f"{API}/redemptions?limit=2", headers=counter.bank).json()
    rest = client.get(
        f"{API}/redemptions?cursor={paged['next_cursor']}", headers=counter.bank
    ).json()
    assert len(paged["items"]) + len(rest["items"]) == 3
