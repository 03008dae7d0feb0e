"""Card-linked tables: runs, every transaction ever seen, grants and their clawbacks, the reward
outbox, confirmed descriptor mappings and the descriptor review queue.

Exactly once rests on three unique keys: a `txn_id` is seen once (`card_transactions`), a
purchase is granted once (`card_grants`), and each reward or clawback row is written once
(`card_rewards`, by kind and txn_id) and posted to the ledger under a key derived from it.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from beyondbank.core.db import Base, IdMixin, str_enum


class RunStatus(StrEnum):
    MATCHING = "matching"  # chunks are being matched and committed
    POSTING = "posting"  # every chunk is matched; the reward outbox is going to the ledger
    DONE = "done"
    FAILED = "failed"  # the file could not be read at all; nothing was matched


class CardRun(IdMixin, Base):
    """One run of the engine over one feed file (or one real-time event batch)."""

    __tablename__ = "card_runs"

    source: Mapped[str] = mapped_column(String(300))  # the file's name, or "realtime"
    source_sha256: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[RunStatus] = mapped_column(str_enum(RunStatus), index=True)
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    # Conservation: rows_read = accepted + quarantined + duplicates (a txn_id's later rows in
    # the same file); accepted = already_seen (in earlier runs) + matched.
    rows_read: Mapped[int] = mapped_column(default=0)
    accepted: Mapped[int] = mapped_column(default=0)
    quarantined: Mapped[int] = mapped_column(default=0)
    duplicates: Mapped[int] = mapped_column(default=0)
    already_seen: Mapped[int] = mapped_column(default=0)
    matched: Mapped[int] = mapped_column(default=0)
    unresolved: Mapped[int] = mapped_column(default=0)  # no alliance merchant found
    rewards: Mapped[int] = mapped_column(default=0)
    clawbacks: Mapped[int] = mapped_column(default=0)
    posted: Mapped[int] = mapped_column(default=0)  # outbox rows posted to the ledger
    # Per currency sums and per reason counts, for the summary a person reads.
    details: Mapped[dict[str, Any]]
    quarantine_path: Mapped[str | None] = mapped_column(String(500))
    rewards_path: Mapped[str | None] = mapped_column(String(500))


class CardRunTally(Base):
    """A share of a run's counters that one database connection adds to: the real-time path's
    batches on PostgreSQL count here, each in the row of its own connection, instead of queueing
    on the run's row from one batch's update to the end of its commit. A run's counters are its
    row plus the sum of its tallies (`tallies.with_tallies`)."""

    __tablename__ = "card_run_tallies"

    run_id: Mapped[int] = mapped_column(ForeignKey("card_runs.id"), primary_key=True)
    slot: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)  # a backend pid
    rows_read: Mapped[int] = mapped_column(default=0)
    accepted: Mapped[int] = mapped_column(default=0)
    matched: Mapped[int] = mapped_column(default=0)
    unresolved: Mapped[int] = mapped_column(default=0)
    rewards: Mapped[int] = mapped_column(default=0)
    clawbacks: Mapped[int] = mapped_column(default=0)
    posted: Mapped[int] = mapped_column(default=0)


class CardTransaction(Base):
    """Every card transaction the platform has seen, once: the dedupe set and the history that
    refunds (their original) and new-to-merchant benefits (earlier purchases) read."""

    __tablename__ = "card_transactions"
    __table_args__ = (
        Index("ix_card_transactions_member_merchant", "member_id", "merchant_id", "txn_time"),
    )

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    txn_id: Mapped[str] = mapped_column(String(64), unique=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("card_runs.id"), index=True)
    type: Mapped[str] = mapped_column(String(12))
    original_txn_id: Mapped[str | None] = mapped_column(String(64))
    txn_time: Mapped[datetime]
    amount_minor: Mapped[int]
    currency: Mapped[str] = mapped_column(String(3))
    member_id: Mapped[int | None] = mapped_column(ForeignKey("members.id"))
    merchant_id: Mapped[int | None] = mapped_column(ForeignKey("merchants.id"))


class CardGrant(Base):
    """What a purchase was granted, and how much of it refunds have clawed back so far."""

    __tablename__ = "card_grants"
    __table_args__ = (
        CheckConstraint("clawed_back_minor <= reward_minor", name="clawback_within_reward"),
        CheckConstraint(
            "commission_clawed_back_minor <= commission_minor", name="clawback_within_commission"
        ),
        CheckConstraint("points_clawed_back <= points", name="clawback_within_points"),
    )

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    txn_id: Mapped[str] = mapped_column(String(64), unique=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("card_runs.id"), index=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"), index=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"), index=True)
    currency: Mapped[str] = mapped_column(String(3))
    purchase_amount_minor: Mapped[int]
    benefit_id: Mapped[int | None] = mapped_column(ForeignKey("benefits.id"))
    reward_minor: Mapped[int]
    merchant_funded_minor: Mapped[int]
    commission_minor: Mapped[int]
    points_benefit_id: Mapped[int | None] = mapped_column(ForeignKey("benefits.id"))
    points: Mapped[int]
    refunded_minor: Mapped[int]
    clawed_back_minor: Mapped[int]
    merchant_clawed_back_minor: Mapped[int]
    commission_clawed_back_minor: Mapped[int]
    points_clawed_back: Mapped[int]
    granted_at: Mapped[datetime]  # the purchase's time


class CardReward(Base):
    """A reward or clawback row: the run's output and the ledger's outbox (`posted_at`)."""

    __tablename__ = "card_rewards"
    __table_args__ = (
        UniqueConstraint("kind", "txn_id"),
        Index("ix_card_rewards_unposted", "run_id", "posted_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("card_runs.id"))
    kind: Mapped[str] = mapped_column(String(12))  # reward | clawback
    txn_id: Mapped[str] = mapped_column(String(64))
    original_txn_id: Mapped[str | None] = mapped_column(String(64))
    txn_time: Mapped[datetime]
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"), index=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"), index=True)
    currency: Mapped[str] = mapped_column(String(3))
    purchase_amount_minor: Mapped[int]
    txn_amount_minor: Mapped[int]
    benefit_id: Mapped[int | None] = mapped_column(ForeignKey("benefits.id"))
    amount_minor: Mapped[int]
    merchant_funded_minor: Mapped[int]
    bank_funded_minor: Mapped[int]
    commission_minor: Mapped[int]
    points_benefit_id: Mapped[int | None] = mapped_column(ForeignKey("benefits.id"))
    points: Mapped[int]
    posted_at: Mapped[datetime | None]


class DescriptorMapping(IdMixin, Base):
    """A descriptor a person confirmed: the next run resolves it exactly."""

    __tablename__ = "descriptor_mappings"

    descriptor_key: Mapped[str] = mapped_column(String(120), unique=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"), index=True)
    location_id: Mapped[int | None] = mapped_column(ForeignKey("merchant_locations.id"))
    example: Mapped[str] = mapped_column(String(64))  # a descriptor as the network sent it
    confirmed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    confirmed_at: Mapped[datetime]


class ReviewStatus(StrEnum):
    OPEN = "open"
    CONFIRMED = "confirmed"  # mapped to a merchant
    REJECTED = "rejected"  # not an alliance merchant: stays unresolved


class DescriptorReview(IdMixin, Base):
    """A descriptor the fuzzy matcher was not sure of, waiting for a person's decision."""

    __tablename__ = "descriptor_reviews"
    __table_args__ = (UniqueConstraint("descriptor_key", "mcc"),)

    descriptor_key: Mapped[str] = mapped_column(String(120))
    mcc: Mapped[str] = mapped_column(String(4))
    example: Mapped[str] = mapped_column(String(64))
    city: Mapped[str | None] = mapped_column(String(100))
    candidate_merchant_id: Mapped[int | None] = mapped_column(ForeignKey("merchants.id"))
    candidate_location_id: Mapped[int | None] = mapped_column(ForeignKey("merchant_locations.id"))
    score: Mapped[float | None]
    transactions: Mapped[int]  # how many transactions carried it, over all runs
    status: Mapped[ReviewStatus] = mapped_column(str_enum(ReviewStatus), index=True)
    first_seen_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    decided_at: Mapped[datetime | None]
    decision_note: Mapped[str | None] = mapped_column(Text)
