"""Bank core tables: customer deposit accounts, payments and the operations on them.

A deposit account's money lives in the ledger (`ledger_account_id`, a customer deposit whose
floor is minus the overdraft): the ledger's floor is what refuses a payment without funds, in
one conditional UPDATE, whatever runs concurrently. The tables here hold what a bank's core
adds around it: the IBAN, the account's status and limits, how much of today's limit is used,
and every payment and every call made on it.

A payment's amounts obey, and the database checks, `0 <= refunded <= captured <= authorised`.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from beyondbank.core.db import Base, IdMixin, str_enum
from beyondbank.payments.gateway import (
    DeclineCode,
    OperationKind,
    Outcome,
    PayeeKind,
    PaymentStatus,
)


class DepositStatus(StrEnum):
    ACTIVE = "active"
    BLOCKED = "blocked"  # no payments out; money in (deposits, refunds) still arrives
    CLOSED = "closed"  # nothing in or out; the ledger account is closed too


class DepositAccount(IdMixin, Base):
    """A customer's current account at the bank, as the bank's core keeps it."""

    __tablename__ = "deposit_accounts"
    __table_args__ = (
        # The ledger names a customer's deposit by (customer, currency): one account for each.
        UniqueConstraint("customer_id", "currency", name="uq_deposit_accounts_customer_currency"),
        CheckConstraint("overdraft_minor >= 0", name="overdraft_non_negative"),
        CheckConstraint(
            "per_payment_limit_minor IS NULL OR per_payment_limit_minor > 0",
            name="per_payment_limit_positive",
        ),
        CheckConstraint(
            "daily_limit_minor IS NULL OR daily_limit_minor > 0", name="daily_limit_positive"
        ),
        CheckConstraint("account_number > 0", name="account_number_positive"),
    )

    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    account_number: Mapped[int] = mapped_column(unique=True)  # sequential, inside the IBAN
    iban: Mapped[str] = mapped_column(String(34), unique=True)
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[DepositStatus] = mapped_column(str_enum(DepositStatus), index=True)
    status_reason: Mapped[str | None] = mapped_column(Text)
    overdraft_minor: Mapped[int] = mapped_column(default=0)
    per_payment_limit_minor: Mapped[int | None]
    # Measured per calendar day in the bank's time zone (see docs/payments.md).
    daily_limit_minor: Mapped[int | None]
    ledger_account_id: Mapped[int] = mapped_column(ForeignKey("ledger_accounts.id"), unique=True)
    opened_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    closed_at: Mapped[datetime | None]


class DailyUsage(Base):
    """How much of a day's limit an account has used; a conditional upsert keeps it within."""

    __tablename__ = "deposit_daily_usage"
    __table_args__ = (
        UniqueConstraint("deposit_account_id", "day", name="uq_deposit_daily_usage_account_day"),
        CheckConstraint("used_minor >= 0", name="used_non_negative"),
    )

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    deposit_account_id: Mapped[int] = mapped_column(ForeignKey("deposit_accounts.id"))
    day: Mapped[date]  # in the bank's time zone
    used_minor: Mapped[int]


class Payment(IdMixin, Base):
    """One payment from a customer's deposit to a merchant or partner, from its authorisation on."""

    __tablename__ = "payments"
    __table_args__ = (
        CheckConstraint("amount_minor > 0", name="amount_positive"),
        CheckConstraint(
            "captured_minor >= 0 AND captured_minor <= amount_minor", name="captured_within"
        ),
        CheckConstraint(
            "refunded_minor >= 0 AND refunded_minor <= captured_minor", name="refunded_within"
        ),
        CheckConstraint(
            "(status = 'declined') = (decline_code IS NOT NULL)", name="declined_has_code"
        ),
        Index("ix_payments_account_created", "deposit_account_id", "created_at"),
        Index("ix_payments_payee", "payee_kind", "payee_ref"),
        Index("ix_payments_status_expires", "status", "expires_at"),
    )

    deposit_account_id: Mapped[int] = mapped_column(ForeignKey("deposit_accounts.id"))
    payee_kind: Mapped[PayeeKind] = mapped_column(str_enum(PayeeKind))
    payee_ref: Mapped[str] = mapped_column(String(40))  # the merchant's or partner's public id
    currency: Mapped[str] = mapped_column(String(3))
    amount_minor: Mapped[int]  # authorised (or, when declined, asked for)
    captured_minor: Mapped[int] = mapped_column(default=0)
    refunded_minor: Mapped[int] = mapped_column(default=0)
    status: Mapped[PaymentStatus] = mapped_column(str_enum(PaymentStatus))
    decline_code: Mapped[DeclineCode | None] = mapped_column(str_enum(DeclineCode))
    decline_message: Mapped[str | None] = mapped_column(Text)
    reference: Mapped[str | None] = mapped_column(String(80), index=True)  # e.g. an order id
    category: Mapped[str | None] = mapped_column(String(60))
    description: Mapped[str] = mapped_column(Text, default="")
    hold_transaction_id: Mapped[int | None] = mapped_column(
        ForeignKey("ledger_transactions.id"), unique=True
    )
    capture_transaction_id: Mapped[int | None] = mapped_column(
        ForeignKey("ledger_transactions.id"), unique=True
    )
    usage_day: Mapped[date | None]  # the day whose limit the authorisation counted against
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    expires_at: Mapped[datetime | None]  # an authorisation not captured by then is released
    resolved_at: Mapped[datetime | None]  # captured, voided or expired


class PaymentOperation(IdMixin, Base):
    """One call on the gateway. Its key is unique: a retry with the same key and request gets
    `result` (the payment as the first call left it); with another request, a 422."""

    __tablename__ = "payment_operations"
    __table_args__ = (CheckConstraint("amount_minor >= 0", name="amount_non_negative"),)

    payment_id: Mapped[int] = mapped_column(ForeignKey("payments.id"), index=True)
    kind: Mapped[OperationKind] = mapped_column(str_enum(OperationKind))
    idempotency_key: Mapped[str] = mapped_column(String(320), unique=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    amount_minor: Mapped[int]
    currency: Mapped[str] = mapped_column(String(3))
    outcome: Mapped[Outcome] = mapped_column(str_enum(Outcome))
    decline_code: Mapped[DeclineCode | None] = mapped_column(str_enum(DeclineCode))
    ledger_transaction_id: Mapped[int | None] = mapped_column(ForeignKey("ledger_transactions.id"))
    requested_by: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[datetime]
    result: Mapped[dict[str, Any]] = mapped_column(default=dict)
