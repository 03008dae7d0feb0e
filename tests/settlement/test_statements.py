"""Statement formulas on hand-computed examples, through the ledger and back.

Every figure below is worked out by hand in the comments; the statement, the settlement posting
and the party's account balances must all agree with it.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import Any

import pytest

from beyondbank.core.authz import SYSTEM
from beyondbank.core.uow import UnitOfWork
from beyondbank.ledger import service as ledger
from beyondbank.ledger import verify
from beyondbank.settlement import contracts, periods, pools
from beyondbank.settlement.models import CommissionContract, PartyKind, SettlementPeriod
from beyondbank.settlement.schemas import PoolIn, VersionIn
from tests import factories as f
from tests.settlement import factories as sf

SEP = datetime(2026, 9, 10, 12, 0, tzinfo=UTC)
OCT = datetime(2026, 10, 10, 12, 0, tzinfo=UTC)

TERMS: dict[str, Any] = {
    "base_share_bps": 500,  # 5%
    "category_overrides": {"electronics": 200},  # 2%
    "sales_tiers": [
        {"from_minor": 0, "bonus_bps": 0},
        {"from_minor": 100_000, "bonus_bps": 100},
        {"from_minor": 300_000, "bonus_bps": 200},
    ],
    "new_customer_fee_minor": 250,
    "minimum_monthly_fee_minor": 5_000,
    "pool_party_share_bps": 5_000,
}


def _close(uow: UnitOfWork, period: SettlementPeriod) -> dict[str, Any]:
    closed = periods.close(uow, SYSTEM, period.public_id)
    content: dict[str, Any] = json.loads(closed.statement.content)
    return content


def _legs(uow: UnitOfWork, transaction_id: str) -> dict[str, int]:
    """The settlement posting as {account purpose: signed amount (+ debit)}."""
    transaction = ledger.get_transaction(uow, transaction_id)
    return {
        account.purpose: posting.amount_minor
        for account, posting in ledger.postings_of(uow, transaction)
    }


def _balances(uow: UnitOfWork, contract: CommissionContract) -> tuple[int, int]:
    payable = ledger.balance(uow, contracts.payable_account(uow, contract)).posted.amount
    receivable = ledger.balance(uow, contracts.receivable_account(uow, contract)).posted.amount
    return payable, receivable


def test_two_months_worked_by_hand(uow: UnitOfWork) -> None:
    merchant = f.make_merchant(uow)
    contract = sf.make_contract(uow, merchant.public_id, starts_on=date(2026, 9, 1), **TERMS)
    september, october, _november = sf.open_periods(uow, contract)

    # September: member B's first sale, 50.00 uncategorised.
    sf.sale(uow, contract, 5_000, at=SEP, member="mem_B")
    # October.
    sf.sale(uow, contract, 150_000, at=OCT, member="mem_A", category="electronics")
    sf.sale(uow, contract, 120_000, at=OCT, member="mem_B", category="fashion")
    sf.sale(uow, contract, 30_000, at=OCT, member="mem_A")
    sf.sale(uow, contract, 9_999, at=OCT, member="mem_C", category="fashion")
    sf.refund(uow, contract, 20_000, at=OCT, member="mem_B", category="fashion")
    sf.reward(uow, contract, 1_000, 600, at=OCT)  # the merchant funds 600 of a 1,000 reward
    sf.reward(uow, contract, 250, 150, at=OCT, clawback=True)  # and gets 150 back
    pool = pools.create_pool(uow, SYSTEM, PoolIn(contract_id=contract.public_id, name="Autumn"))
    with_clock = OCT.replace(day=12)
    uow.clock.set(with_clock)  # type: ignore[attr-defined]
    pools.contribute(uow, SYSTEM, pool, amount_minor=10_001, key="c1")  # party 5,000, bank 5,001
    pools.draw(uow, SYSTEM, pool, amount_minor=3_000, key="d1", campaign_ref="halloween")
    uow.clock.set(datetime(2026, 11, 22, 10, tzinfo=UTC))  # type: ignore[attr-defined]

    sep = _close(uow, september)
    # Commission 5% of 5,000 = 250; tiers: 5,000 is in the 0 bps band; one new customer (B):
    # 250. Earned 500 < minimum 5,000: top-up 4,500. Charges 5,000; activity 5,000; net 0.
    assert sep["totals"] == {
        "sales_minor": 5_000,
        "returns_minor": 0,
        "net_sales_minor": 5_000,
        "activity_minor": 5_000,
        "commission_minor": 250,
        "bonus_minor": 0,
        "new_customer_fees_minor": 250,
        "minimum_fee_top_up_minor": 4_500,
        "charges_minor": 5_000,
        "net_minor": 0,
        "direction": "nil",
    }
    assert _legs(uow, sep["settlement"]["transaction_id"]) == {
        "payable": 5_000,  # the charges taken from what the bank owed
        "commission": -250,
        "fees": -4_750,
    }

    oct_ = _close(uow, october)
    categories = {line["category"]: line for line in oct_["categories"]}
    # electronics 150,000 at 2% = 3,000.
    assert categories["electronics"]["commission_minor"] == 3_000
    # fashion: 129,999 sold − 20,000 returned = 109,999 at 5% = 5,499.95 → 5,499 (party keeps .95).
    assert categories["fashion"] == {
        "category": "fashion",
        "sales_minor": 129_999,
        "returns_minor": 20_000,
        "net_minor": 109_999,
        "rate_bps": 500,
        "commission_minor": 5_499,
        "party_keeps_minor": 104_500,
    }
    # uncategorised 30,000 at the base 5% = 1,500.
    assert categories[""]["commission_minor"] == 1_500
    # Tiers over net sales 289,999: 0–100,000 at 0; 100,000–300,000: 189,999 at 1% = 1,899.99
    # → 1,899; above 300,000: nothing.
    assert [(t["slice_minor"], t["bonus_minor"]) for t in oct_["tiers"]] == [
        (100_000, 0),
        (189_999, 1_899),
        (0, 0),
    ]
    # New customers: A and C (B bought in September).
    assert oct_["new_customers"] == {"count": 2, "fee_minor": 250, "amount_minor": 500}
    assert oct_["merchant_funded_rewards"] == {
        "granted_minor": 600,
        "clawed_back_minor": 150,
        "owed_minor": 450,
    }
    assert oct_["pools"] == [
        {
            "pool_id": pool.public_id,
            "name": "Autumn",
            "opening_minor": 0,
            "party_contributions_minor": 5_000,
            "bank_contributions_minor": 5_001,
            "draws_minor": 3_000,
            "closing_minor": 7_001,
        }
    ]
    activity = {line["kind"]: line["amount_minor"] for line in oct_["activity"]}
    assert activity == {
        "sale": 309_999,
        "return": -20_000,
        "reward": -600,
        "reward.clawback": 150,
        "pool.contribution": -5_000,
        "pool.draw": 0,  # the party's, but paid from the pool: nothing on its accounts
    }
    # Activity 289,999 − 5,450 = 284,549; charges 9,999 + 1,899 + 500 = 12,398 (above the
    # minimum: no top-up); net 284,549 − 12,398 = 272,151 owed to the merchant.
    assert oct_["totals"] == {
        "sales_minor": 309_999,
        "returns_minor": 20_000,
        "net_sales_minor": 289_999,
        "activity_minor": 284_549,
        "commission_minor": 9_999,
        "bonus_minor": 1_899,
        "new_customer_fees_minor": 500,
        "minimum_fee_top_up_minor": 0,
        "charges_minor": 12_398,
        "net_minor": 272_151,
        "direction": "payable",
    }
    # The posting: the receivable's 5,450 and the charges 12,398 come off the payable.
    assert _legs(uow, oct_["settlement"]["transaction_id"]) == {
        "payable": 17_848,
        "receivable": -5_450,
        "commission": -11_898,
        "fees": -500,
    }
    # What is left on the books is exactly the net: the payable holds it, the receivable is clear.
    assert _balances(uow, contract) == (272_151, 0)
    assert sf.period_list(uow, contract)[1].net_minor == 272_151
    assert verify.run(uow.session).ok


def test_a_party_that_owes_the_bank(uow: UnitOfWork) -> None:
    merchant = f.make_merchant(uow)
    contract = sf.make_contract(
        uow, merchant.public_id, base_share_bps=1_000, minimum_monthly_fee_minor=5_000
    )
    september = sf.open_periods(uow, contract)[0]
    sf.sale(uow, contract, 1_000, at=SEP)
    sf.reward(uow, contract, 10_000, 8_000, at=SEP)
    content = _close(uow, september)
    # Commission 100; below the 5,000 minimum: top-up 4,900. Net 1,000 − 8,000 − 5,000.
    assert content["totals"]["minimum_fee_top_up_minor"] == 4_900
    assert content["totals"]["net_minor"] == -12_000
    assert content["totals"]["direction"] == "receivable"
    assert _legs(uow, content["settlement"]["transaction_id"]) == {
        "payable": 1_000,  # the sales offset what the merchant owes
        "receivable": 4_000,  # the charges less that offset
        "commission": -100,
        "fees": -4_900,
    }
    # The payable is clear; the receivable holds what the merchant owes.
    assert _balances(uow, contract) == (0, 12_000)
    assert verify.run(uow.session).ok


def test_returns_above_sales_refund_commission_rounded_down(uow: UnitOfWork) -> None:
    merchant = f.make_merchant(uow)
    contract = sf.make_contract(uow, merchant.public_id, base_share_bps=500)
    september = sf.open_periods(uow, contract)[0]
    sf.sale(uow, contract, 10_001, at=SEP, category="toys")
    sf.refund(uow, contract, 20_000, at=SEP, category="toys")  # a return of an older sale
    content = _close(uow, september)
    line = content["categories"][0]
    # Net −9,999 at 5% = −499.95: the refund is 499 (the bank keeps the .95).
    assert (line["net_minor"], line["commission_minor"], line["party_keeps_minor"]) == (
        -9_999,
        -499,
        -9_500,
    )
    assert content["totals"]["net_minor"] == -9_999 + 499
    assert verify.run(uow.session).ok


def test_minimum_fee_of_a_partial_first_month_is_its_share_by_days(uow: UnitOfWork) -> None:
    # The contract starts on 15 October: 17 of October's 31 days. 3,100 × 17 / 31 = 1,700.
    merchant = f.make_merchant(uow)
    contract = sf.make_contract(
        uow, merchant.public_id, starts_on=date(2026, 10, 15), minimum_monthly_fee_minor=3_100
    )
    first = sf.open_periods(uow, contract)[0]
    assert (first.starts_on, first.ends_on) == (date(2026, 10, 15), date(2026, 11, 1))
    content = _close(uow, first)
    assert content["minimum_fee"] == {
        "monthly_minor": 3_100,
        "period_minor": 1_700,
        "earned_minor": 0,
        "top_up_minor": 1_700,
    }
    assert content["totals"]["net_minor"] == -1_700


def test_the_version_in_force_at_the_period_start_applies(uow: UnitOfWork) -> None:
    merchant = f.make_merchant(uow)
    contract = sf.make_contract(uow, merchant.public_id, base_share_bps=500)
    # Effective mid-September: September keeps version 1, October is the first under version 2.
    contracts.add_version(
        uow, SYSTEM, contract, VersionIn(effective_from=date(2026, 9, 15), base_share_bps=1_000)
    )
    september, october, _ = sf.open_periods(uow, contract)
    sf.sale(uow, contract, 10_000, at=SEP)
    sf.sale(uow, contract, 10_000, at=OCT)
    sep, oct_ = _close(uow, september), _close(uow, october)
    assert (sep["terms"]["version"], sep["totals"]["commission_minor"]) == (1, 500)
    assert (oct_["terms"]["version"], oct_["totals"]["commission_minor"]) == (2, 1_000)


def test_a_partner_in_its_own_currency_and_time_zone(uow: UnitOfWork) -> None:
    partner = f.make_partner(uow, currency="EUR", timezone="Europe/Berlin")
    contract = sf.make_contract(uow, partner.public_id, kind=PartyKind.PARTNER)
    assert (contract.currency, contract.timezone) == ("EUR", "Europe/Berlin")
    september = sf.open_periods(uow, contract)[0]
    # Berlin midnight on 1 September is 22:00 UTC the day before.
    assert september.start_at == datetime(2026, 8, 31, 22, 0, tzinfo=UTC)
    # A sale at 23:30 UTC on 31 August is already September in Berlin.
    sf.sale(uow, contract, 2_000, at=datetime(2026, 8, 31, 23, 30, tzinfo=UTC))
    content = _close(uow, september)
    assert content["totals"]["sales_minor"] == 2_000
    assert content["currency"] == "EUR"


@pytest.mark.parametrize("share", [0, 3_333, 10_000])
def test_joint_contributions_split_by_the_version_share(uow: UnitOfWork, share: int) -> None:
    merchant = f.make_merchant(uow)
    contract = sf.make_contract(uow, merchant.public_id, pool_party_share_bps=share)
    pool = pools.create_pool(uow, SYSTEM, PoolIn(contract_id=contract.public_id, name="Joint"))
    moved = pools.contribute(uow, SYSTEM, pool, amount_minor=1_001, key="k")
    assert moved.party_minor == 1_001 * share // 10_000
    assert moved.party_minor + moved.bank_minor == 1_001
    assert pools.balance_minor(uow, pool) == 1_001
