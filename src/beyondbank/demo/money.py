"""The demo's money: customers' deposit accounts, a shop partner's sales paid through the bank,
commission contracts, last month's settlement statements and the payout that pays them.

Everything goes through the services a bank would use (the bank core gateway, settlement),
on the story's clock, so the ledger, the statements and the pain.001 file are the real thing.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker

from beyondbank.commerce import service as commerce
from beyondbank.commerce.models import PartnerKind
from beyondbank.core.authz import SYSTEM, Role
from beyondbank.core.clock import FixedClock
from beyondbank.core.errors import Problem
from beyondbank.core.settings import Settings
from beyondbank.core.uow import UnitOfWork
from beyondbank.demo.generate import DEMO_CUSTOMER_REF
from beyondbank.demo.shop import ShopCounts, populate_shop
from beyondbank.identity import service as identity
from beyondbank.payments import service as bank_core
from beyondbank.program.writer import Progress
from beyondbank.settlement import contracts, payouts, periods
from beyondbank.settlement.models import PartyKind, PeriodStatus
from beyondbank.settlement.schemas import ContractIn, TierIn

SHOP = commerce.PartnerIn(
    name="Harbour Home & Living",
    legal_name="Harbour Home & Living Ltd",
    country="GB",
    currency="GBP",
    timezone="Europe/London",
    settlement_iban="GB33BUKB20201555555555",
    settlement_bic="BUKBGB22",
)
# The insurer underwriting the bank's device protection sold at the shop's checkout.
INSURER = commerce.PartnerIn(
    name="Harbour Mutual Insurance",
    legal_name="Harbour Mutual Insurance plc",
    country="GB",
    currency="GBP",
    timezone="Europe/London",
    settlement_iban="GB94BARC10201530093459",
    settlement_bic="BARCGB22",
    kind=PartnerKind.INSURER,
)
DEMO_CUSTOMER_BALANCE = 245_000


@dataclass(frozen=True, slots=True)
class MoneyCounts:
    deposit_accounts: int
    shop: ShopCounts
    partner_logins: list[tuple[Role, str, str]]
    statements: int
    payouts: int


def populate_money(
    factory: sessionmaker[Session],
    at: FixedClock,
    settings: Settings,
    rng: random.Random,
    *,
    launch: datetime,
    now: datetime,
    customer_ids: set[int],
    merchant_ids: list[str],
    password: str,
    progress: Progress,
) -> MoneyCounts:
    at.set(launch)
    shop = _shop_with_contracts(factory, at, settings, launch, merchant_ids)
    holders = _deposit_accounts(factory, at, rng, customer_ids, progress)
    counts, logins = populate_shop(
        factory,
        at,
        rng,
        partner_id=shop,
        customer_ids=holders,
        password=password,
        launch=launch,
        now=now,
        progress=progress,
    )
    at.set(now)
    statements, paid = _settle(factory, at, settings, progress)
    return MoneyCounts(len(holders), counts, logins, statements, paid)


def _shop_with_contracts(
    factory: sessionmaker[Session],
    at: FixedClock,
    settings: Settings,
    launch: datetime,
    merchant_ids: list[str],
) -> str:
    """The shop partner, the insurer, and a contract for each and for every merchant in the
    alliance."""
    with UnitOfWork(factory, at) as uow:
        shop = commerce.create_partner(uow, SYSTEM, SHOP)
        insurer = commerce.create_partner(uow, SYSTEM, INSURER)
        starts_on = launch.date()
        contracts.create_contract(
            uow,
            SYSTEM,
            ContractIn(
                party_kind=PartyKind.PARTNER,
                party_id=insurer.public_id,
                starts_on=starts_on,
                base_share_bps=2_500,
                note="Device protection: the bank keeps 25% of each premium as commission.",
            ),
            default_currency=settings.default_currency,
        )
        contracts.create_contract(
            uow,
            SYSTEM,
            ContractIn(
                party_kind=PartyKind.PARTNER,
                party_id=shop.public_id,
                starts_on=starts_on,
                base_share_bps=800,
                category_overrides={"furniture": 500},
                sales_tiers=[TierIn(from_minor=150_000, bonus_bps=100)],
                new_customer_fee_minor=200,
                minimum_monthly_fee_minor=30_000,
                note="Launch terms: 8% (furniture 5%), +1% over £1,500 a month, £2 per new customer.",
            ),
            default_currency=settings.default_currency,
        )
        for merchant_id in merchant_ids:
            contracts.create_contract(
                uow,
                SYSTEM,
                ContractIn(
                    party_kind=PartyKind.MERCHANT,
                    party_id=merchant_id,
                    starts_on=starts_on,
                    base_share_bps=0,
                    note="Alliance terms: commission per benefit; the bank's co-funding settled monthly.",
                ),
                default_currency=settings.default_currency,
            )
        return shop.public_id


def _deposit_accounts(
    factory: sessionmaker[Session],
    at: FixedClock,
    rng: random.Random,
    customer_ids: set[int],
    progress: Progress,
) -> list[str]:
    """Deposit accounts for the customers who shop with the partner (the demo customer's
    first, with a round balance to recognise); the account holders' public ids."""
    with UnitOfWork(factory, at) as uow:
        customers = identity.customers_by_ids(uow, customer_ids)
        progress.start("deposit accounts", len(customers))
        opened = []
        for customer_id in sorted(customers):
            customer = customers[customer_id]
            opening = (
                DEMO_CUSTOMER_BALANCE
                if customer.bank_ref == DEMO_CUSTOMER_REF
                else rng.randrange(40_000, 600_000, 100)
            )
            bank_core.open_account(
                uow,
                SYSTEM,
                bank_core.OpenAccount(
                    customer_id=customer.public_id,
                    currency="GBP",
                    opening_balance_minor=opening,
                    overdraft_minor=rng.choice((0, 0, 0, 50_000)),
                    daily_limit_minor=rng.choice((None, 250_000)),
                ),
                commit=False,
            )
            opened.append(customer.public_id)
            progress.advance("deposit accounts")
        uow.commit()
    return opened


def _settle(
    factory: sessionmaker[Session], at: FixedClock, settings: Settings, progress: Progress
) -> tuple[int, int]:
    """Open every contract's periods up to today, close those that have ended, pay them."""
    with UnitOfWork(factory, at) as uow:
        opened = periods.open_due(uow, SYSTEM)
        ended = [p.public_id for p in opened if p.end_at <= at.now()]
    progress.start("settlement statements", len(ended))
    closed = 0
    for period_id in ended:
        with UnitOfWork(factory, at) as uow:
            result = periods.close(uow, SYSTEM, period_id)
            closed += result.period.status is PeriodStatus.CLOSED
        progress.advance("settlement statements")
    paid = 0
    with UnitOfWork(factory, at) as uow:
        debtor = payouts.check_debtor(
            settings.bank_name, payouts.DEFAULT_DEBTOR_IBAN, payouts.DEFAULT_DEBTOR_BIC
        )
        try:
            run = payouts.create_run(uow, SYSTEM, currency="GBP", debtor=debtor)
        except Problem:
            return closed, 0  # nothing payable: every party owes the bank this month
        paid = len(payouts.paid_lines(run))
    return closed, paid
