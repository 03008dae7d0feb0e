"""The demo's money: customers' deposit accounts, a shop partner's sales paid through the bank,
commission contracts, last month's settlement statements and the payout that pays them.

Everything goes through the services a bank would use (the bank core gateway, settlement),
on the story's clock, so the ledger, the statements and the pain.001 file are the real thing.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session, sessionmaker

from beyondbank.commerce import service as commerce
from beyondbank.core.authz import SYSTEM
from beyondbank.core.clock import FixedClock
from beyondbank.core.errors import Problem
from beyondbank.core.settings import Settings
from beyondbank.core.uow import UnitOfWork
from beyondbank.demo.generate import DEMO_CUSTOMER_REF
from beyondbank.identity import service as identity
from beyondbank.payments import service as bank_core
from beyondbank.payments.bankcore import BankCoreGateway
from beyondbank.payments.gateway import AuthoriseRequest, PayeeKind
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
# What the shop sells (ledger categories) and a typical basket in pence.
CATEGORIES = {"kitchen": (900, 6_500), "furniture": (4_500, 18_000), "decor": (600, 3_500)}
DEMO_CUSTOMER_BALANCE = 245_000


@dataclass(frozen=True, slots=True)
class MoneyCounts:
    deposit_accounts: int
    shop_sales: int
    shop_refunds: int
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
    progress: Progress,
) -> MoneyCounts:
    at.set(launch)
    shop = _shop_with_contracts(factory, at, settings, launch, merchant_ids)
    accounts = _deposit_accounts(factory, at, rng, customer_ids, progress)
    sales, refunds = _shop_sales(factory, at, rng, shop, accounts, launch, now, progress)
    at.set(now)
    statements, paid = _settle(factory, at, settings, progress)
    return MoneyCounts(len(accounts), sales, refunds, statements, paid)


def _shop_with_contracts(
    factory: sessionmaker[Session],
    at: FixedClock,
    settings: Settings,
    launch: datetime,
    merchant_ids: list[str],
) -> str:
    """The shop partner and a contract for it and for every merchant in the alliance."""
    with UnitOfWork(factory, at) as uow:
        shop = commerce.create_partner(uow, SYSTEM, SHOP)
        starts_on = launch.date()
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
    first, with a round balance to recognise)."""
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
            account = bank_core.open_account(
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
            opened.append(account.public_id)
            progress.advance("deposit accounts")
        uow.commit()
    return opened


def _shop_sales(
    factory: sessionmaker[Session],
    at: FixedClock,
    rng: random.Random,
    shop: str,
    accounts: list[str],
    launch: datetime,
    now: datetime,
    progress: Progress,
) -> tuple[int, int]:
    """Members buying from the shop in the bank's app: authorised at order, captured at
    dispatch a day later, some returned (refunded) within the fortnight. Recent orders are
    still authorised, waiting for dispatch."""
    gateway = BankCoreGateway(factory, at)
    span = (now - launch).total_seconds()
    orders = sorted(
        (launch + timedelta(seconds=rng.uniform(0, span)), rng.choice(accounts), i)
        for i in range(min(240, 4 * len(accounts)))
    )
    progress.start("shop orders", len(orders))
    sales = refunds = 0
    for ordered_at, account, i in orders:
        progress.advance("shop orders")
        category = rng.choice(list(CATEGORIES))
        low, high = CATEGORIES[category]
        at.set(ordered_at)
        request = AuthoriseRequest(
            account_id=account,
            amount_minor=rng.randrange(low, high, 5),
            currency="GBP",
            payee_kind=PayeeKind.PARTNER,
            payee_id=shop,
            reference=f"HHL-{100_000 + i}",
            category=category,
            description=f"Harbour Home & Living order HHL-{100_000 + i}",
        )
        try:
            authorised = gateway.authorise(request, key=f"demo-order-{i}")
        except Problem:
            continue
        if not authorised.approved:
            continue
        dispatched = ordered_at + timedelta(hours=rng.uniform(6, 48))
        if dispatched > now:
            continue  # not dispatched yet: the hold is still on the customer's account
        at.set(dispatched)
        payment = authorised.payment.id
        gateway.capture(payment, key=f"demo-dispatch-{i}")
        sales += 1
        returned = dispatched + timedelta(days=rng.uniform(1, 14))
        if rng.random() < 0.08 and returned < now:
            at.set(returned)
            part = rng.choice((None, request.amount_minor // 2))
            gateway.refund(payment, key=f"demo-return-{i}", amount_minor=part)
            refunds += 1
    return sales, refunds


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
