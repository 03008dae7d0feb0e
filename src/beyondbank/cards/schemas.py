"""Request and response shapes for card-linked runs, rewards and the descriptor review queue."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt

from beyondbank.cards.models import ReviewStatus, RunStatus


class RunOut(BaseModel):
    """A run's summary. rows_read = accepted + quarantined + duplicates; accepted =
    already_seen + matched."""

    id: str
    source: str
    source_sha256: str | None
    status: RunStatus
    started_at: datetime
    finished_at: datetime | None
    rows_read: int
    accepted: int
    quarantined: int
    duplicates: int
    already_seen: int
    matched: int
    unresolved: int
    rewards: int
    clawbacks: int
    posted: int
    quarantine_reasons: dict[str, int]
    totals: dict[str, int] = Field(
        description="`rewarded:GBP`, `clawed_back:PTS`, … in minor units"
    )


class RewardOut(BaseModel):
    kind: Literal["reward", "clawback"]
    txn_id: str
    original_txn_id: str | None
    txn_time: datetime
    member: str
    merchant: str
    currency: str
    purchase_amount_minor: int
    txn_amount_minor: int
    benefit: str | None
    amount_minor: int
    merchant_funded_minor: int
    bank_funded_minor: int
    commission_minor: int
    points_benefit: str | None
    points: int
    posted: bool = Field(description="Posted to the ledger")


class EventIn(BaseModel):
    """One card transaction in real time: the feed's columns (docs/card-feed.md)."""

    model_config = ConfigDict(extra="forbid")

    txn_id: str = Field(min_length=1, max_length=64)
    network_ref: str = Field(min_length=1, max_length=23)
    card_token: str = Field(min_length=1, max_length=64)
    type: str = Field(description="purchase, refund or chargeback")
    original_txn_id: str | None = Field(default=None, max_length=64)
    amount_minor: StrictInt = Field(description="Minor units of the currency, an integer")
    currency: str
    mcc: str
    acquirer_merchant_id: str
    terminal_id: str | None = None
    acceptor_name_location: str
    txn_time: str = Field(description="ISO 8601 in UTC, e.g. 2026-11-20T14:03:11Z")

    def as_row(self) -> dict[str, str]:
        """The event as a feed row's text, for the feed's own validation."""
        values = self.model_dump()
        return {k: "" if v is None else str(v) for k, v in values.items()}


class EventOut(BaseModel):
    txn_id: str
    status: Literal["rewarded", "no_reward", "already_seen"]
    merchant_name: str | None
    message: str | None = Field(description="What the bank's app shows the member, if rewarded")
    rewards: list[RewardOut]


class ReviewOut(BaseModel):
    id: str
    descriptor: str = Field(description="An example as the card network sent it")
    descriptor_key: str
    mcc: str
    city: str | None
    candidate_merchant: str | None
    candidate_name: str | None
    score: float | None
    transactions: int
    status: ReviewStatus
    first_seen_at: datetime
    last_seen_at: datetime
    decided_at: datetime | None
    decision_note: str | None


class ConfirmIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    merchant: str = Field(min_length=1, max_length=40, description="The alliance merchant's id")
    location: str | None = Field(default=None, max_length=40)


class RejectIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: str = Field(
        min_length=1, max_length=2000, description="Why it is not an alliance merchant"
    )


def run_out(run: Any, totals: dict[str, int]) -> RunOut:
    return RunOut(
        id=run.public_id,
        source=run.source,
        source_sha256=run.source_sha256,
        status=run.status,
        started_at=run.started_at,
        finished_at=run.finished_at,
        rows_read=run.rows_read,
        accepted=run.accepted,
        quarantined=run.quarantined,
        duplicates=run.duplicates,
        already_seen=run.already_seen,
        matched=run.matched,
        unresolved=run.unresolved,
        rewards=run.rewards,
        clawbacks=run.clawbacks,
        posted=run.posted,
        quarantine_reasons=dict(run.details.get("quarantine_reasons", {})),
        totals=totals,
    )
