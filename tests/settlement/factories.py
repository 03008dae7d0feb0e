"""Settlement builders: partners, contracts, and the ledger activity statements read.

The payment and card engines that will post sales, returns and rewards are built elsewhere; these
post the same shapes directly, through the ledger's service and the chart's accounts.
"""

from __future__ import annotations

import itertools
from datetime import date, datetime
from typing import Any

from sqlalchemy import select

from beyondbank.core.authz import SYSTEM
from beyondbank.core.money import Money
from beyondbank.core.uow import UnitOfWork
from beyondbank.ledger import chart
from beyondbank.ledger import service as ledger
from beyondbank.ledger.chart import Kind
from beyondbank.ledger.models import LedgerTransaction
from beyondbank.settlement import contracts, periods
from beyondbank.settlement.models import (
    CommissionContract,
    Frequency,
    PartyKind,
    PeriodStatus,
    SettlementPeriod,
)
from beyondbank.settlement.schemas import ContractIn

_seq = itertools.count(1)


def make_contract(
    uow: UnitOfWork,
    party_ref: str,
    *,
    kind: PartyKind = PartyKind.MERCHANT,
    starts_on: date = date(2026, 9, 1),
    frequency: Frequency = Frequency.MONTH,
    **terms: Any,
) -> CommissionContract:
    body = ContractIn(
        party_kind=kind,
        party_id=party_ref,
        starts_on=starts_on,
        frequency=frequency,
        **{"base_share_bps": 500, **terms},
    )
    return contracts.create_contract(uow, SYSTEM, body, default_currency="GBP")


def open_periods(uow: UnitOfWork, contract: CommissionContract) -> list[SettlementPeriod]:
    periods.open_due(uow, SYSTEM, contract_id=contract.public_id)
    return period_list(uow, contract)


def period_list(uow: UnitOfWork, contract: CommissionContract) -> list[SettlementPeriod]:
    return list(
        uow.session.scalars(
            select(SettlementPeriod)
            .where(SettlementPeriod.contract_id == contract.id)
            .order_by(SettlementPeriod.sequence)
            .execution_options(populate_existing=True)
        )
    )


def period_on(uow: UnitOfWork, contract: CommissionContract, day: date) -> SettlementPeriod:
    for period in period_list(uow, contract):
        if period.starts_on <= day < period.ends_on:
            return period
    raise AssertionError(f"no period holds {day}")


def closed(period: SettlementPeriod) -> bool:
    return period.status is PeriodStatus.CLOSED


# -- ledger activity, as the payment and card engines will post it ------------------------------


def _post(
    uow: UnitOfWork,
    kind: str,
    legs: tuple[ledger.Leg, ...],
    *,
    at: datetime,
    contract: CommissionContract,
    member: str | None = None,
    category: str | None = None,
    details: dict[str, Any] | None = None,
) -> LedgerTransaction:
    posted = ledger.post(
        uow,
        ledger.Draft(
            key=f"test:{kind}:{next(_seq)}",
            kind=kind,
            legs=legs,
            effective_at=at,
            counterparty=contract.party_ref,
            member=member,
            category=category,
            details=details or {},
        ),
        actor=SYSTEM,
    )
    return posted.transaction


def sale(
    uow: UnitOfWork,
    contract: CommissionContract,
    amount: int,
    *,
    at: datetime,
    member: str | None = None,
    category: str | None = None,
) -> LedgerTransaction:
    """A captured payment: the customer's money in, credited to the party's payable."""
    money = Money(amount, contract.currency)
    return _post(
        uow,
        Kind.SALE.value,
        (
            ledger.Leg.debit(chart.bank_cash(uow, contract.currency), money),
            ledger.Leg.credit(contracts.payable_account(uow, contract), money),
        ),
        at=at,
        contract=contract,
        member=member,
        category=category,
    )


def refund(
    uow: UnitOfWork,
    contract: CommissionContract,
    amount: int,
    *,
    at: datetime,
    member: str | None = None,
    category: str | None = None,
) -> LedgerTransaction:
    money = Money(amount, contract.currency)
    return _post(
        uow,
        Kind.RETURN.value,
        (
            ledger.Leg.debit(contracts.payable_account(uow, contract), money),
            ledger.Leg.credit(chart.bank_cash(uow, contract.currency), money),
        ),
        at=at,
        contract=contract,
        member=member,
        category=category,
    )


def reward(
    uow: UnitOfWork,
    contract: CommissionContract,
    grant: int,
    merchant_funded: int,
    *,
    at: datetime,
    member: str = "mem_test",
    clawback: bool = False,
) -> LedgerTransaction:
    """A card-linked reward (or its clawback): the merchant's share on its receivable."""
    currency = contract.currency
    cashback = chart.member_cashback(uow, member, currency)
    receivable = contracts.receivable_account(uow, contract)
    expense = chart.benefit_expense(uow, currency)
    bank_funded = grant - merchant_funded
    funders = [(receivable, merchant_funded), (expense, bank_funded)]
    legs: list[ledger.Leg] = []
    for account, amount in funders:
        if amount:
            money = Money(amount, currency)
            legs.append(
                ledger.Leg.credit(account, money) if clawback else ledger.Leg.debit(account, money)
            )
    grant_money = Money(grant, currency)
    legs.append(
        ledger.Leg.debit(cashback, grant_money)
        if clawback
        else ledger.Leg.credit(cashback, grant_money)
    )
    return _post(
        uow,
        Kind.REWARD_CLAWBACK.value if clawback else Kind.REWARD.value,
        tuple(legs),
        at=at,
        contract=contract,
        member=member,
        details={"merchant_funded_minor": merchant_funded, "bank_funded_minor": bank_funded},
    )
