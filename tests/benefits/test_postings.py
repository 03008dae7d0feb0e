"""A voucher redemption posts the bank's share and its commission once, points for a points
multiplier, and a reversal corrects exactly what was posted."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from beyondbank.benefits import rules
from beyondbank.benefits.models import BenefitKind
from beyondbank.core.clock import FixedClock
from beyondbank.core.money import Money
from beyondbank.core.settings import Settings
from beyondbank.core.uow import UnitOfWork
from beyondbank.ledger import chart, verify
from beyondbank.ledger import service as ledger
from beyondbank.ledger.models import LedgerTransaction, OwnerKind
from tests.benefits import factories as bf
from tests.benefits.test_redemptions import API, Counter


@pytest.fixture
def counter(uow: UnitOfWork, settings: Settings, clock: FixedClock) -> Counter:
    return Counter(uow, settings, clock)


def _ledger_rows(uow: UnitOfWork) -> int:
    return uow.session.scalar(select(func.count()).select_from(LedgerTransaction)) or 0


def test_a_co_funded_voucher_posts_the_banks_share_and_the_commission(
    client: TestClient, uow: UnitOfWork, counter: Counter
) -> None:
    # 20% off a £50.00 basket: £10.00, of which the merchant funds 60%; 2.5% commission.
    benefit = bf.make_benefit(uow, counter.merchant, merchant_share_bps=6_000, commission_bps=250)

    response = counter.redeem(client, benefit, key="till-1")

    assert response.status_code == 201, response.text
    body = response.json()
    posted = ledger.transaction_by_key(uow, f"voucher:{body['id']}")
    assert posted is not None
    assert (posted.kind, posted.counterparty_ref, posted.reference) == (
        "voucher",
        counter.merchant.public_id,
        body["id"],
    )
    assert posted.member_ref == counter.member.public_id
    assert posted.category == counter.merchant.sub_industry
    assert posted.details["merchant_funded_minor"] == 600
    merchant = counter.merchant.public_id
    payable = chart.payable(uow, OwnerKind.MERCHANT, merchant, "GBP")
    receivable = chart.receivable(uow, OwnerKind.MERCHANT, merchant, "GBP")
    assert ledger.balance(uow, payable).posted == Money(400, "GBP")  # the bank's 40% of £10
    assert ledger.balance(uow, receivable).posted == Money(125, "GBP")  # 2.5% of £50
    assert ledger.balance(uow, chart.commission_revenue(uow, "GBP")).posted == Money(125, "GBP")
    assert ledger.balance(uow, chart.benefit_expense(uow, "GBP")).posted == Money(400, "GBP")

    # The counter retries after a lost response: same answer, nothing posted twice.
    before = _ledger_rows(uow)
    assert counter.redeem(client, benefit, key="till-1").json() == body
    assert _ledger_rows(uow) == before
    assert verify.run(uow.session).ok


def test_a_merchant_funded_voucher_without_commission_moves_no_money(
    client: TestClient, uow: UnitOfWork, counter: Counter
) -> None:
    benefit = bf.make_benefit(uow, counter.merchant)  # merchant funds all, no commission

    response = counter.redeem(client, benefit)

    assert response.status_code == 201
    assert _ledger_rows(uow) == 0


def test_reversing_a_redemption_posts_its_correction(
    client: TestClient, uow: UnitOfWork, counter: Counter
) -> None:
    benefit = bf.make_benefit(uow, counter.merchant, merchant_share_bps=5_000, commission_bps=100)
    redemption_id = counter.redeem(client, benefit).json()["id"]

    reversed_ = client.post(
        f"{API}/redemptions/{redemption_id}/reverse",
        json={"reason": "Till error"},
        headers=counter.admin,
    )

    assert reversed_.status_code == 200, reversed_.text
    correction = ledger.transaction_by_key(uow, f"voucher-reversal:{redemption_id}")
    original = ledger.transaction_by_key(uow, f"voucher:{redemption_id}")
    assert correction is not None
    assert original is not None
    assert correction.corrects_id == original.id
    assert correction.kind == "voucher.reversal"
    assert correction.description == "Till error"
    payable = chart.payable(uow, OwnerKind.MERCHANT, counter.merchant.public_id, "GBP")
    assert ledger.balance(uow, payable).posted == Money(0, "GBP")
    assert ledger.balance(uow, chart.commission_revenue(uow, "GBP")).posted == Money(0, "GBP")
    assert verify.run(uow.session).ok


def test_a_points_multiplier_credits_the_members_points(
    client: TestClient, uow: UnitOfWork, counter: Counter
) -> None:
    benefit = bf.make_benefit(
        uow,
        counter.merchant,
        kind=BenefitKind.POINTS_MULTIPLIER,
        percent_bps=None,
        max_reward_minor=None,
        points_multiplier=3,
    )

    response = counter.redeem(client, benefit, purchase_amount_minor=4_999)

    assert response.status_code == 201, response.text
    points = chart.member_points(uow, counter.member.public_id)
    assert ledger.balance(uow, points).posted == Money(49 * 3, "PTS")  # £49.99 → 49 base points
    redemption_id = response.json()["id"]
    client.post(
        f"{API}/redemptions/{redemption_id}/reverse",
        json={"reason": "Returned"},
        headers=counter.admin,
    )
    assert ledger.balance(uow, points).posted == Money(0, "PTS")
    clawback = ledger.transaction_by_key(uow, f"points-reversal:{redemption_id}")
    assert clawback is not None
    assert clawback.kind == "points.clawback"


def test_points_earned_floors_to_whole_currency_units() -> None:
    assert rules.points_earned(4_999, "GBP", 3) == 147
    assert rules.points_earned(4_999, "JPY", 2) == 9_998
    assert rules.points_earned(None, "GBP", 3) == 0
    assert rules.points_earned(10_000, "GBP", None) == 0
