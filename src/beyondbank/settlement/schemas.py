"""Request and response shapes for contracts, pools, periods, statements and payout runs."""

from __future__ import annotations

import itertools
from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from beyondbank.core.i18n import _
from beyondbank.core.money import is_currency
from beyondbank.settlement import schedule
from beyondbank.settlement.models import Frequency, PartyKind, PayoutLineStatus, PeriodStatus

Bps = Annotated[int, Field(ge=0, le=10_000, description="Basis points: 10000 = 100%")]
Minor = Annotated[int, Field(ge=0, le=10**13, description="Minor units of the currency")]
Positive = Annotated[int, Field(gt=0, le=10**13, description="Minor units of the currency")]
Category = Annotated[str, Field(min_length=1, max_length=60)]


class TierIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    from_minor: Minor = Field(description="Monthly net sales from which this band's rate applies")
    bonus_bps: Bps


class TermsIn(BaseModel):
    """A contract version's terms. Monthly amounts are per calendar month; periods of another
    length get their share by days (docs/settlement.md)."""

    model_config = ConfigDict(extra="forbid")

    base_share_bps: Bps = Field(description="Commission on net sales, unless a category overrides")
    category_overrides: dict[Category, Bps] = Field(default_factory=dict, max_length=200)
    sales_tiers: list[TierIn] = Field(
        default_factory=list,
        max_length=20,
        description="Marginal bonus bands over monthly net sales, in increasing from_minor",
    )
    new_customer_fee_minor: Minor = 0
    minimum_monthly_fee_minor: Minor = 0
    pool_party_share_bps: Bps = Field(
        default=5_000, description="The party's share of a joint co-funding contribution"
    )
    note: str | None = Field(default=None, max_length=1000)

    @field_validator("sales_tiers")
    @classmethod
    def _increasing(cls, tiers: list[TierIn]) -> list[TierIn]:
        starts = [t.from_minor for t in tiers]
        if any(b <= a for a, b in itertools.pairwise(starts)):
            raise ValueError(_("tiers must be in strictly increasing from_minor"))
        return tiers


class VersionIn(TermsIn):
    effective_from: date = Field(
        description="The first local day these terms apply: to periods starting on or after it"
    )


class ContractIn(TermsIn):
    party_kind: PartyKind
    party_id: str = Field(min_length=1, max_length=40, description="The merchant's or partner's id")
    currency: str | None = Field(
        default=None, min_length=3, max_length=3, description="Defaults to the party's"
    )
    frequency: Frequency = Frequency.MONTH
    period_days: int | None = Field(default=None, ge=1, le=366, description="For frequency days")
    timezone: str | None = Field(
        default=None, max_length=64, description="IANA zone of period boundaries; the party's"
    )
    starts_on: date = Field(description="The first period's first day (local); version 1's date")

    @field_validator("currency")
    @classmethod
    def _currency(cls, value: str | None) -> str | None:
        if value is not None and not is_currency(value):
            raise ValueError(_("not an ISO 4217 currency code"))
        return value

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str | None) -> str | None:
        if value is not None:
            schedule.zone(value)
        return value

    @model_validator(mode="after")
    def _days(self) -> ContractIn:
        if (self.frequency is Frequency.DAYS) != (self.period_days is not None):
            raise ValueError(_("period_days is required for frequency days, and only for it"))
        return self


class VersionOut(BaseModel):
    id: str
    version: int
    effective_from: date
    base_share_bps: int
    category_overrides: dict[str, int]
    sales_tiers: list[TierIn]
    new_customer_fee_minor: int
    minimum_monthly_fee_minor: int
    pool_party_share_bps: int
    note: str | None
    created_at: datetime
    created_by: str


class ContractOut(BaseModel):
    id: str
    party_kind: PartyKind
    party_id: str
    party_name: str
    currency: str
    frequency: Frequency
    period_days: int | None
    timezone: str
    starts_on: date
    created_at: datetime
    versions: list[VersionOut]


class PoolIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    contract_id: str = Field(min_length=1, max_length=40)
    name: str = Field(min_length=1, max_length=120)


class PoolOut(BaseModel):
    id: str
    contract_id: str
    party_id: str
    name: str
    currency: str
    balance_minor: int
    account_id: str
    created_at: datetime


class ContributionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount_minor: Positive
    side: Literal["joint", "party", "bank"] = Field(
        default="joint",
        description="joint: split by the contract's pool share (the bank takes the remainder)",
    )
    description: str = Field(default="", max_length=200)


class DrawIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount_minor: Positive
    campaign_ref: str = Field(min_length=1, max_length=80)
    description: str = Field(default="", max_length=200)


class PoolMovementOut(BaseModel):
    transaction_id: str
    pool_id: str
    kind: str
    amount_minor: int
    party_minor: int
    bank_minor: int
    campaign_ref: str | None
    effective_at: datetime


class OpenDueIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    contract_id: str | None = Field(
        default=None, max_length=40, description="All contracts if absent"
    )


class PeriodOut(BaseModel):
    id: str
    contract_id: str
    party_kind: PartyKind
    party_id: str
    party_name: str
    currency: str
    sequence: int
    starts_on: date
    ends_on: date = Field(description="The day after the last day (exclusive)")
    start_at: datetime
    end_at: datetime
    timezone: str
    status: PeriodStatus
    closed_at: datetime | None
    net_minor: int | None
    statement_id: str | None
    paid_in_run: str | None


class StatementOut(BaseModel):
    id: str
    period_id: str
    sha256: str
    content: dict[str, Any]


class DebtorIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=140)
    iban: str = Field(min_length=5, max_length=42)
    bic: str = Field(min_length=8, max_length=11)


class PayoutRunIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    currency: str = Field(min_length=3, max_length=3)
    execution_date: date | None = Field(default=None, description="Defaults to today (UTC)")
    debtor: DebtorIn | None = Field(default=None, description="The bank's account; a default")

    @field_validator("currency")
    @classmethod
    def _currency(cls, value: str) -> str:
        if not is_currency(value):
            raise ValueError(_("not an ISO 4217 currency code"))
        return value


class PayoutLineOut(BaseModel):
    id: str
    period_id: str
    status: PayoutLineStatus
    party_kind: PartyKind
    party_id: str
    creditor_name: str
    creditor_iban: str | None
    creditor_bic: str | None
    amount_minor: int
    reason: str | None
    transaction_id: str | None


class PayoutRunOut(BaseModel):
    id: str
    currency: str
    execution_date: date
    debtor_name: str
    debtor_iban: str
    debtor_bic: str
    created_at: datetime
    number_of_transactions: int
    control_sum: str = Field(description="The sum of the paid lines, in the currency's units")
    lines: list[PayoutLineOut]
