"""The chart of accounts: the one place that names each well-known account and its rules.

Every area asks here for the account it posts to, so that a merchant's receivable, a member's
cashback or a co-funding pool is the same account whoever posts to it. Accounts open on first
use. Liabilities and revenue carry credit balances; assets and expenses debit balances.
"""

from __future__ import annotations

from enum import StrEnum

from beyondbank.core.money import POINTS
from beyondbank.core.uow import UnitOfWork
from beyondbank.ledger import service
from beyondbank.ledger.models import Account, AccountType, OwnerKind


class Kind(StrEnum):
    """What a ledger transaction records; settlement and reports group by it."""

    SALE = "sale"  # a captured payment: customer deposit → payee payable
    RETURN = "return"  # a refund of a sale: payee payable → customer deposit
    DEPOSIT = "deposit"  # money into a customer's deposit (bank core)
    WITHDRAWAL = "withdrawal"
    REWARD = "reward"  # card-linked cashback granted: funders → member cashback
    REWARD_CLAWBACK = "reward.clawback"
    POINTS = "points"  # points granted: points issued → member points
    POINTS_CLAWBACK = "points.clawback"
    COMMISSION = "commission"  # bank's commission: merchant/partner → commission revenue
    COMMISSION_CLAWBACK = "commission.clawback"
    # A device-protection premium collected with a partner's sale, passed to the insurer
    # (partner payable → premiums in transit → insurer payable), and handed back on a return.
    PREMIUM = "premium"
    PREMIUM_RETURN = "premium.return"
    VOUCHER = "voucher"  # a voucher redeemed at the counter: bank-funded share, commission
    VOUCHER_REVERSAL = "voucher.reversal"
    BUDGET_TOPUP = "budget.topup"  # a merchant prepays its benefit budget
    POOL_CONTRIBUTION = "pool.contribution"
    POOL_DRAW = "pool.draw"  # a campaign spends from a co-funding pool
    SETTLEMENT = "settlement"  # a closed period's statement: commission, bonuses, fees
    PAYOUT = "payout"  # a credit transfer to a merchant or partner
    ADJUSTMENT = "adjustment"  # a manual journal entry by finance


A, L, R, E = AccountType.ASSET, AccountType.LIABILITY, AccountType.REVENUE, AccountType.EXPENSE


def _bank(uow: UnitOfWork, purpose: str, type: AccountType, currency: str, name: str) -> Account:
    return service.open_account(
        uow, owner_kind=OwnerKind.BANK, purpose=purpose, type=type, currency=currency, name=name
    )


# -- the bank's own books -----------------------------------------------------------------------


def bank_cash(uow: UnitOfWork, currency: str) -> Account:
    """The bank's settlement cash (its clearing position): money in from and out to the world."""
    return _bank(uow, "cash", A, currency, f"Bank settlement cash {currency}")


def commission_revenue(uow: UnitOfWork, currency: str) -> Account:
    return _bank(uow, "commission", R, currency, f"Commission revenue {currency}")


def premiums_in_transit(uow: UnitOfWork, currency: str) -> Account:
    """Insurance premiums between the partner that collected them and the insurer: every premium
    leaves the one and reaches the other in one database transaction, so this nets to zero."""
    return _bank(
        uow, "premiums_in_transit", L, currency, f"Insurance premiums in transit {currency}"
    )


def fee_revenue(uow: UnitOfWork, currency: str) -> Account:
    """Fees the bank charges partners and merchants (minimum monthly fee, activation fees)."""
    return _bank(uow, "fees", R, currency, f"Fee revenue {currency}")


def benefit_expense(uow: UnitOfWork, currency: str) -> Account:
    """The bank-funded share of members' rewards, and its marketing contributions."""
    return _bank(uow, "benefit_expense", E, currency, f"Bank-funded benefits {currency}")


def points_issued(uow: UnitOfWork) -> Account:
    """The counterpart of every point granted to members (an expense in points)."""
    return _bank(uow, "points_issued", E, POINTS, "Points issued")


# -- members and customers ----------------------------------------------------------------------


def member_cashback(uow: UnitOfWork, member_ref: str, currency: str) -> Account:
    """Cashback the bank owes a member until it is paid to the member's card account."""
    return service.open_account(
        uow,
        owner_kind=OwnerKind.MEMBER,
        owner_ref=member_ref,
        purpose="cashback",
        type=L,
        currency=currency,
        name=f"Cashback payable to {member_ref}",
    )


def member_points(uow: UnitOfWork, member_ref: str) -> Account:
    return service.open_account(
        uow,
        owner_kind=OwnerKind.MEMBER,
        owner_ref=member_ref,
        purpose="points",
        type=L,
        currency=POINTS,
        name=f"Points of {member_ref}",
        floor=0,
    )


def customer_deposit(
    uow: UnitOfWork, customer_ref: str, currency: str, *, overdraft: int = 0
) -> Account:
    """A customer's deposit at the bank (the bank's liability); never below −overdraft."""
    return service.open_account(
        uow,
        owner_kind=OwnerKind.MEMBER,
        owner_ref=customer_ref,
        purpose="deposit",
        type=L,
        currency=currency,
        name=f"Deposit of {customer_ref}",
        floor=-overdraft,
    )


# -- merchants and partners ---------------------------------------------------------------------


def _org(
    uow: UnitOfWork,
    kind: OwnerKind,
    ref: str,
    purpose: str,
    type: AccountType,
    currency: str,
    name: str,
    floor: int | None = None,
) -> Account:
    return service.open_account(
        uow,
        owner_kind=kind,
        owner_ref=ref,
        purpose=purpose,
        type=type,
        currency=currency,
        name=name,
        floor=floor,
    )


def payable(uow: UnitOfWork, kind: OwnerKind, ref: str, currency: str) -> Account:
    """What the bank owes a merchant or partner: sales collected for it, bank-funded rewards."""
    return _org(uow, kind, ref, "payable", L, currency, f"Payable to {ref}")


def receivable(uow: UnitOfWork, kind: OwnerKind, ref: str, currency: str) -> Account:
    """What a merchant or partner owes the bank: commission, merchant-funded rewards, fees."""
    return _org(uow, kind, ref, "receivable", A, currency, f"Receivable from {ref}")


def prepaid_budget(uow: UnitOfWork, merchant_ref: str, currency: str) -> Account:
    """A merchant's prepaid benefit budget: rewards draw on it, and it never goes below zero."""
    return _org(
        uow,
        OwnerKind.MERCHANT,
        merchant_ref,
        "prepaid_budget",
        L,
        currency,
        f"Prepaid benefit budget of {merchant_ref}",
        floor=0,
    )


def pool(uow: UnitOfWork, pool_ref: str, currency: str) -> Account:
    """A marketing co-funding pool: both sides contribute, campaigns draw; never below zero."""
    return service.open_account(
        uow,
        owner_kind=OwnerKind.POOL,
        owner_ref=pool_ref,
        purpose="pool",
        type=L,
        currency=currency,
        name=f"Co-funding pool {pool_ref}",
        floor=0,
    )
