"""Ledger tables: accounts with their running totals, transactions, and immutable postings.

A posting's `amount_minor` is signed: positive is a debit, negative a credit, so a transaction
balances exactly when its postings sum to zero per currency. Each account keeps running totals
of posted and pending debits and credits; its balance is read on its normal side (debits for
assets and expenses, credits for liabilities and revenue). An account with a `floor_minor`
may never go below it, counting pending holds against it: a CHECK constraint enforces that on
every update, whatever the code that issued it.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from beyondbank.core.db import Base, IdMixin, str_enum


class AccountType(StrEnum):
    ASSET = "asset"
    LIABILITY = "liability"
    REVENUE = "revenue"
    EXPENSE = "expense"

    @property
    def debit_normal(self) -> bool:
        return self in (AccountType.ASSET, AccountType.EXPENSE)


class OwnerKind(StrEnum):
    BANK = "bank"
    MERCHANT = "merchant"
    PARTNER = "partner"
    MEMBER = "member"
    POOL = "pool"


class AccountStatus(StrEnum):
    OPEN = "open"
    CLOSED = "closed"


class TransactionStatus(StrEnum):
    POSTED = "posted"
    PENDING = "pending"  # a hold: counts against floors, not in balances
    CAPTURED = "captured"  # a hold resolved by the posted transaction that `resolves` it
    VOIDED = "voided"  # a hold released without posting


# The normal-side balance available above the floor, as SQL: posted balance less pending outflow.
_AVAILABLE_SQL = (
    "CASE WHEN type IN ('asset', 'expense') "
    "THEN debits_posted - credits_posted - credits_pending "
    "ELSE credits_posted - debits_posted - debits_pending END"
)


class Account(IdMixin, Base):
    __tablename__ = "ledger_accounts"
    __table_args__ = (
        # Postings name (account, currency), so that one in a foreign currency is refused.
        UniqueConstraint("id", "currency", name="uq_ledger_accounts_id_currency"),
        Index("ix_ledger_accounts_owner", "owner_kind", "owner_ref"),
        CheckConstraint(
            "debits_posted >= 0 AND credits_posted >= 0 "
            "AND debits_pending >= 0 AND credits_pending >= 0",
            name="totals_non_negative",
        ),
        CheckConstraint(f"floor_minor IS NULL OR {_AVAILABLE_SQL} >= floor_minor", name="floor"),
    )

    # The stable natural key: owner kind, owner, purpose and currency, e.g. "pool:cmp_…:pool:GBP".
    code: Mapped[str] = mapped_column(String(160), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    owner_kind: Mapped[OwnerKind] = mapped_column(str_enum(OwnerKind))
    owner_ref: Mapped[str | None] = mapped_column(String(40))
    purpose: Mapped[str] = mapped_column(String(60))
    type: Mapped[AccountType] = mapped_column(str_enum(AccountType))
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[AccountStatus] = mapped_column(str_enum(AccountStatus))
    floor_minor: Mapped[int | None]
    debits_posted: Mapped[int] = mapped_column(default=0)
    credits_posted: Mapped[int] = mapped_column(default=0)
    debits_pending: Mapped[int] = mapped_column(default=0)
    credits_pending: Mapped[int] = mapped_column(default=0)
    opened_at: Mapped[datetime]
    closed_at: Mapped[datetime | None]

    @property
    def balance_minor(self) -> int:
        """Posted balance on the account's normal side."""
        net = self.debits_posted - self.credits_posted
        return net if self.type.debit_normal else -net

    @property
    def pending_minor(self) -> int:
        """Held amounts that will lower the balance when posted."""
        return self.credits_pending if self.type.debit_normal else self.debits_pending

    @property
    def available_minor(self) -> int:
        return self.balance_minor - self.pending_minor


class LedgerTransaction(IdMixin, Base):
    __tablename__ = "ledger_transactions"
    __table_args__ = (
        # Every index here is one more entry per transaction written, so only what queries use:
        # settlement by counterparty and time, pools by reference, the API by kind, and the
        # corrections of one transaction (a handful of rows: the index skips all the others).
        Index("ix_ledger_transactions_counterparty", "counterparty_ref", "effective_at"),
        Index("ix_ledger_transactions_reference", "reference"),
        Index("ix_ledger_transactions_kind_time", "kind", "effective_at"),
        Index(
            "ix_ledger_transactions_corrects_id",
            "corrects_id",
            postgresql_where=text("corrects_id IS NOT NULL"),
            sqlite_where=text("corrects_id IS NOT NULL"),
        ),
        CheckConstraint(
            "resolves_id IS NULL OR status = 'posted'", name="only_posted_resolves_a_hold"
        ),
    )

    idempotency_key: Mapped[str] = mapped_column(String(255), unique=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(60))
    status: Mapped[TransactionStatus] = mapped_column(str_enum(TransactionStatus))
    description: Mapped[str] = mapped_column(Text, default="")
    # Dimensions that settlement and reports group by: whose business, which member, which line.
    counterparty_ref: Mapped[str | None] = mapped_column(String(40))
    member_ref: Mapped[str | None] = mapped_column(String(40))
    category: Mapped[str | None] = mapped_column(String(60))
    reference: Mapped[str | None] = mapped_column(String(80))  # the business object it records
    corrects_id: Mapped[int | None] = mapped_column(ForeignKey("ledger_transactions.id"))
    # The capture of a hold: unique, so no hold is ever posted twice.
    resolves_id: Mapped[int | None] = mapped_column(
        ForeignKey("ledger_transactions.id"), unique=True
    )
    effective_at: Mapped[datetime]
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(40))
    resolved_at: Mapped[datetime | None]
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)


class Posting(Base):
    """One line of a transaction. Never updated or deleted (database triggers refuse it).

    Its transaction and its account in its currency must exist. A trigger checks that once per
    statement (migration 0005) rather than a foreign key once per row: a bulk load writes
    hundreds of thousands of postings to a few thousand accounts. The rows referred to can
    never go away or change key (triggers again), which is the rest of what a key would give.
    """

    __tablename__ = "ledger_postings"
    __table_args__ = (
        Index("ix_ledger_postings_account_time", "account_id", "effective_at"),
        CheckConstraint("amount_minor <> 0", name="non_zero"),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    )
    transaction_id: Mapped[int] = mapped_column(index=True)
    account_id: Mapped[int]
    currency: Mapped[str] = mapped_column(String(3))
    amount_minor: Mapped[int]  # + debit, − credit
    pending: Mapped[bool] = mapped_column(Boolean, default=False)
    # Copied from the transaction so balances at a point in time read one index.
    effective_at: Mapped[datetime]
