"""Settlement tables: commission contracts and their versions, pools, periods, statements, payouts.

A contract belongs to one party (a merchant or a partner) in one currency and never changes its
terms in place: each change is a new `ContractVersion` (insert-only; database triggers refuse
updates and deletes) effective from a date. A period is settled once: its `SettlementStatement`
is written when it closes and never changes again (triggers, again).
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from beyondbank.core.db import Base, IdMixin, str_enum


class PartyKind(StrEnum):
    """Who the bank settles with; the values match the ledger's owner kinds."""

    MERCHANT = "merchant"
    PARTNER = "partner"


class Frequency(StrEnum):
    MONTH = "month"  # calendar months in the party's time zone (the default)
    WEEK = "week"  # ISO weeks, Monday to Sunday
    DAYS = "days"  # blocks of `period_days` days from the contract's start


class PeriodStatus(StrEnum):
    OPEN = "open"
    CLOSING = "closing"
    CLOSED = "closed"


class PayoutLineStatus(StrEnum):
    PAID = "paid"  # in the credit-transfer file, PAYOUT posted
    EXCEPTION = "exception"  # not paid (no usable IBAN): listed for follow-up


def _where(condition: str) -> dict[str, Any]:
    """A partial index predicate, understood by both SQLite and PostgreSQL."""
    return {"sqlite_where": text(condition), "postgresql_where": text(condition)}


class CommissionContract(IdMixin, Base):
    """What a merchant or partner owes the bank, in one currency; its terms live in versions."""

    __tablename__ = "settlement_contracts"
    __table_args__ = (
        UniqueConstraint("party_kind", "party_ref", "currency"),
        CheckConstraint(
            "(frequency = 'days' AND period_days BETWEEN 1 AND 366) "
            "OR (frequency <> 'days' AND period_days IS NULL)",
            name="period_days_for_days",
        ),
    )

    party_kind: Mapped[PartyKind] = mapped_column(str_enum(PartyKind))
    party_ref: Mapped[str] = mapped_column(String(40), index=True)  # the party's public id
    party_name: Mapped[str] = mapped_column(String(200))
    # Set for a merchant's contract: what a merchant's users may see is decided by it.
    merchant_id: Mapped[int | None] = mapped_column(ForeignKey("merchants.id"), index=True)
    currency: Mapped[str] = mapped_column(String(3))
    frequency: Mapped[Frequency] = mapped_column(str_enum(Frequency))
    period_days: Mapped[int | None]
    timezone: Mapped[str] = mapped_column(String(64))  # period boundaries: local midnight here
    starts_on: Mapped[date]  # the first period's first day, and version 1's effective date
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(40))

    versions: Mapped[list[ContractVersion]] = relationship(
        lazy="selectin", order_by="ContractVersion.version", viewonly=True
    )


class ContractVersion(IdMixin, Base):
    """One version of a contract's terms. Never updated or deleted (database triggers refuse it).

    `sales_tiers` is `[{"from_minor": int, "bonus_bps": int}, …]` in increasing `from_minor`;
    `category_overrides` is `{category: bps}`. Monthly amounts are per calendar month.
    """

    __tablename__ = "settlement_contract_versions"
    __table_args__ = (
        UniqueConstraint("contract_id", "version"),
        UniqueConstraint("contract_id", "effective_from"),
        CheckConstraint("version >= 1", name="version_positive"),
        CheckConstraint("base_share_bps BETWEEN 0 AND 10000", name="base_share_range"),
        CheckConstraint("pool_party_share_bps BETWEEN 0 AND 10000", name="pool_share_range"),
        CheckConstraint("new_customer_fee_minor >= 0", name="new_customer_fee_non_negative"),
        CheckConstraint("minimum_monthly_fee_minor >= 0", name="minimum_fee_non_negative"),
    )

    contract_id: Mapped[int] = mapped_column(ForeignKey("settlement_contracts.id"), index=True)
    version: Mapped[int]
    effective_from: Mapped[date]  # in the contract's time zone
    base_share_bps: Mapped[int]
    category_overrides: Mapped[dict[str, Any]]
    sales_tiers: Mapped[list[Any]]
    new_customer_fee_minor: Mapped[int]
    minimum_monthly_fee_minor: Mapped[int]
    pool_party_share_bps: Mapped[int]  # the party's share of a joint pool contribution
    note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(40))


class Pool(IdMixin, Base):
    """A marketing co-funding pool of a contract; its money is the ledger account `pool:<id>`."""

    __tablename__ = "settlement_pools"
    __table_args__ = (UniqueConstraint("contract_id", "name"),)

    contract_id: Mapped[int] = mapped_column(ForeignKey("settlement_contracts.id"), index=True)
    name: Mapped[str] = mapped_column(String(120))
    currency: Mapped[str] = mapped_column(String(3))
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(40))


class SettlementPeriod(IdMixin, Base):
    """One settlement period of a contract: `[start_at, end_at)`, local midnights stored in UTC."""

    __tablename__ = "settlement_periods"
    __table_args__ = (
        UniqueConstraint("contract_id", "starts_on"),
        UniqueConstraint("contract_id", "sequence"),
        CheckConstraint("starts_on < ends_on", name="dates_ordered"),
        CheckConstraint("start_at < end_at", name="instants_ordered"),
        CheckConstraint(
            "(status = 'closed') = (closed_at IS NOT NULL AND net_minor IS NOT NULL)",
            name="closed_has_result",
        ),
        Index("ix_settlement_periods_status_end", "status", "end_at"),
    )

    contract_id: Mapped[int] = mapped_column(ForeignKey("settlement_contracts.id"), index=True)
    sequence: Mapped[int]
    starts_on: Mapped[date]  # local dates: the first day, and the day after the last
    ends_on: Mapped[date]
    start_at: Mapped[datetime]
    end_at: Mapped[datetime]
    status: Mapped[PeriodStatus] = mapped_column(str_enum(PeriodStatus))
    # While closing: who holds the close, since when (a lease), and the holder's token.
    closing_token: Mapped[str | None] = mapped_column(String(64))
    closing_started_at: Mapped[datetime | None]
    closing_by: Mapped[str | None] = mapped_column(String(40))
    closed_at: Mapped[datetime | None]
    closed_by: Mapped[str | None] = mapped_column(String(40))
    version_id: Mapped[int | None] = mapped_column(ForeignKey("settlement_contract_versions.id"))
    # + the bank owes the party, − the party owes the bank; set when closed.
    net_minor: Mapped[int | None]


class SettlementStatement(IdMixin, Base):
    """A closed period's statement, as canonical JSON and its SHA-256. Never changes (triggers)."""

    __tablename__ = "settlement_statements"

    period_id: Mapped[int] = mapped_column(ForeignKey("settlement_periods.id"), unique=True)
    currency: Mapped[str] = mapped_column(String(3))
    content: Mapped[str] = mapped_column(Text)  # canonical JSON: sorted keys, no spaces
    sha256: Mapped[str] = mapped_column(String(64))
    transaction_ref: Mapped[str | None] = mapped_column(String(40))  # the SETTLEMENT posting
    created_at: Mapped[datetime]


class SettlementItem(Base):
    """A ledger transaction settled by a period's statement: each one on exactly one statement.

    A period settles the party's transactions effective before its end that no earlier statement
    settled: its own, and any posted late into an earlier, already closed period."""

    __tablename__ = "settlement_items"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    period_id: Mapped[int] = mapped_column(ForeignKey("settlement_periods.id"), index=True)
    transaction_id: Mapped[int] = mapped_column(ForeignKey("ledger_transactions.id"), unique=True)


class PayoutRun(IdMixin, Base):
    """One credit-transfer batch in one currency; its pain.001 is rendered from these rows."""

    __tablename__ = "settlement_payout_runs"

    currency: Mapped[str] = mapped_column(String(3))
    execution_date: Mapped[date]
    debtor_name: Mapped[str] = mapped_column(String(140))
    debtor_iban: Mapped[str] = mapped_column(String(34))
    debtor_bic: Mapped[str] = mapped_column(String(11))
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(40))

    lines: Mapped[list[PayoutLine]] = relationship(
        lazy="selectin", order_by="PayoutLine.id", viewonly=True
    )


class PayoutLine(IdMixin, Base):
    """A period in a payout run: paid (once ever, a partial unique index) or an exception."""

    __tablename__ = "settlement_payout_lines"
    __table_args__ = (
        Index(
            "uq_settlement_payout_lines_period_paid",
            "period_id",
            unique=True,
            **_where("status = 'paid'"),
        ),
        CheckConstraint("amount_minor > 0", name="amount_positive"),
        CheckConstraint(
            "status <> 'paid' OR creditor_iban IS NOT NULL",
            name="paid_has_account",
        ),
    )

    run_id: Mapped[int] = mapped_column(ForeignKey("settlement_payout_runs.id"), index=True)
    period_id: Mapped[int] = mapped_column(ForeignKey("settlement_periods.id"), index=True)
    status: Mapped[PayoutLineStatus] = mapped_column(str_enum(PayoutLineStatus))
    party_kind: Mapped[PartyKind] = mapped_column(str_enum(PartyKind))
    party_ref: Mapped[str] = mapped_column(String(40))
    creditor_name: Mapped[str] = mapped_column(String(140))
    creditor_iban: Mapped[str | None] = mapped_column(String(34))
    creditor_bic: Mapped[str | None] = mapped_column(String(11))
    amount_minor: Mapped[int]
    reason: Mapped[str | None] = mapped_column(Text)
    transaction_ref: Mapped[str | None] = mapped_column(String(40))  # the PAYOUT posting
