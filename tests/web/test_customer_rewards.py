"""My rewards: card-linked cashback and points from real feed runs, a refund's clawback explained
against the purchase it reverses, the totals, my redemptions at the counter; only my own."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from beyondbank.benefits.models import RedemptionStatus
from beyondbank.cards import frames, service
from beyondbank.cards.models import CardReward
from beyondbank.core.authz import Role
from beyondbank.core.settings import Settings
from beyondbank.core.uow import UnitOfWork
from beyondbank.demo.sso import issue_demo_sso_token
from beyondbank.identity.models import Customer
from tests.benefits import factories as bf
from tests.cards import factories as cf
from tests.web.pages import signed_in, text_of

LINKED = datetime(2026, 11, 1, tzinfo=UTC)
MONDAY = datetime(2026, 11, 16, 12, 30, tzinfo=UTC)


def arrive(client: TestClient, settings: Settings, uow: UnitOfWork, p: cf.Programme) -> None:
    customer = uow.session.get_one(Customer, p.member.customer_id)
    token = issue_demo_sso_token(settings, customer_ref=customer.bank_ref, now=uow.clock.now())
    assert client.get(f"/sso?token={token}", follow_redirects=False).status_code == 303


def run(uow: UnitOfWork, tmp_path: Path, name: str, rows: list[dict[str, str]]) -> None:
    feed = cf.write_csv(tmp_path / name, rows)
    service.run_file(uow, feed, out_dir=tmp_path / "out")


@pytest.fixture
def mine(uow: UnitOfWork, tmp_path: Path) -> cf.Programme:
    """My £40.00 purchase (£8.00 cashback), a quarter of it refunded a week later."""
    p = cf.programme(uow, LINKED)
    run(uow, tmp_path, "w1.csv", [cf.feed_row(p, "t-1", MONDAY, 4_000)])
    refund = cf.feed_row(
        p, "r-1", MONDAY + timedelta(days=7), 1_000, type=frames.REFUND, original="t-1"
    )
    run(uow, tmp_path, "w2.csv", [refund])
    return p


def test_my_rewards_show_each_grant_its_clawback_in_words_and_the_totals(
    client: TestClient, settings: Settings, uow: UnitOfWork, mine: cf.Programme, tmp_path: Path
) -> None:
    # Someone else's purchase is none of my business.
    theirs = cf.programme(uow, LINKED)
    run(uow, tmp_path, "w3.csv", [cf.feed_row(theirs, "t-9", MONDAY, 9_900)])
    arrive(client, settings, uow, mine)
    page = client.get("/app/rewards")
    assert page.status_code == 200
    text = text_of(page.text)
    assert "Harbour Noodle Bar £8.00 cashback Purchase of £40.00 on 16 Nov 2026, 12:30:00" in text
    assert (
        "Refund of £10.00 at Harbour Noodle Bar on 23 Nov 2026: £2.00 cashback taken back" in text
    )
    # The refund sits under the purchase it reverses.
    reward = re.search(r'<li class="reward">.*?</li>\s*</ul>', page.text, re.S)
    assert reward is not None
    assert "Refund of £10.00" in text_of(reward.group(0))
    assert "Cashback (after refunds) £6.00" in text
    assert "Taken back for refunds £2.00" in text
    assert "Points (after refunds) 0" in text
    assert "£99.00" not in text
    assert "You have not used a benefit at the counter yet." in text


def test_points_and_redemptions_at_the_counter(
    client: TestClient, settings: Settings, uow: UnitOfWork, mine: cf.Programme
) -> None:
    first = uow.session.query(CardReward).filter_by(kind=frames.REWARD).one()
    uow.session.add(
        CardReward(
            run_id=first.run_id,
            kind=frames.REWARD,
            txn_id="t-points",
            txn_time=MONDAY + timedelta(days=1),
            member_id=mine.member.id,
            merchant_id=mine.merchant.id,
            currency="GBP",
            purchase_amount_minor=2_500,
            txn_amount_minor=2_500,
            amount_minor=0,
            merchant_funded_minor=0,
            bank_funded_minor=0,
            commission_minor=0,
            points=75,
        )
    )
    voucher = bf.make_benefit(uow, mine.merchant, title="Free noodles")
    bf.make_redemption(uow, voucher, mine.member, reward_minor=450, purchase_amount_minor=3_000)
    bf.make_redemption(
        uow, voucher, mine.member, reward_minor=300, code_step=7, status=RedemptionStatus.REVERSED
    )
    uow.session.flush()
    arrive(client, settings, uow, mine)
    text = text_of(client.get("/app/rewards").text)
    assert "Harbour Noodle Bar 75 points Purchase of £25.00 on 17 Nov 2026" in text
    assert "Points (after refunds) 75" in text
    assert "Free noodles · Harbour Noodle Bar £4.50" in text
    assert "Free noodles · Harbour Noodle Bar £3.00 reversed" in text


def test_a_customer_who_has_not_joined_has_no_rewards_yet(
    client: TestClient, settings: Settings, uow: UnitOfWork
) -> None:
    token = issue_demo_sso_token(settings, customer_ref="CUST-NONE", now=uow.clock.now())
    client.get(f"/sso?token={token}")
    text = text_of(client.get("/app/rewards").text)
    assert "No card-linked reward yet." in text
    assert "Join the alliance on your card page, link a card" in text


def test_only_signed_in_customers_open_my_rewards(
    client: TestClient, settings: Settings, uow: UnitOfWork, mine: cf.Programme
) -> None:
    assert client.get("/app/rewards").status_code == 401
    signed_in(client, uow, Role.BANK_ADMIN)
    assert client.get("/app/rewards").status_code == 403
    client.cookies.clear()
    arrive(client, settings, uow, mine)
    assert client.get("/app/rewards").status_code == 200
