"""Request and response shapes for the ledger; amounts cross the API as exact decimal strings.

An amount in a request is a JSON string such as "12.50", read exactly in its currency: a JSON
number is refused (a float cannot say 0.1 exactly), and so are more decimal places than the
currency has. An amount in a response comes twice: in minor units (`*_minor`) and as the
decimal string.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationInfo, field_validator

from beyondbank.core.i18n import _
from beyondbank.core.money import Money, check_currency
from beyondbank.ledger.chart import Kind
from beyondbank.ledger.models import AccountStatus, AccountType, OwnerKind, TransactionStatus
from beyondbank.ledger.service import Side

# One posting, floor or capture at most: ten billion in a two-decimal currency.
MAX_MINOR = 10**12
_POSITIVE = re.compile(r"\d{1,15}(\.\d{1,15})?")
_SIGNED = re.compile(r"-?\d{1,15}(\.\d{1,15})?")


def _a_string(value: Any) -> Any:
    if value is not None and not isinstance(value, str):
        raise ValueError(_('give the amount as a string such as "12.50", not a JSON number'))
    return value


DecimalString = Annotated[
    str,
    BeforeValidator(_a_string),
    Field(
        max_length=40,
        description='A decimal string in the currency\'s units, e.g. "12.50" (never a JSON number)',
        examples=["12.50"],
    ),
]
Ref = Annotated[str, Field(min_length=1, max_length=40)]
# Parts of an account's code ("owner_kind:owner_ref:purpose:currency"): no colons, no spaces.
CodePart = Annotated[str, Field(min_length=1, max_length=60, pattern=r"^[A-Za-z0-9_.\-]+$")]
OwnerRef = Annotated[str, Field(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_.\-]+$")]


def parse_amount(value: Any, currency: str, signed: bool = False) -> int:
    """The exact minor units of a decimal string in `currency`; ValueError says what is wrong."""
    if not isinstance(value, str):
        raise ValueError(_('give the amount as a string such as "12.50", not a JSON number'))
    if not (_SIGNED if signed else _POSITIVE).fullmatch(value):
        if signed:
            raise ValueError(_('a decimal such as "12.50" is expected, not %(value)r', value=value))
        raise ValueError(
            _('a positive decimal such as "12.50" is expected, not %(value)r', value=value)
        )
    money = Money.parse(value, currency)  # refuses more decimal places than the currency has
    if not signed and money.amount == 0:
        raise ValueError(_("must be greater than zero"))
    if abs(money.amount) > MAX_MINOR:
        raise ValueError(_("at most %(most)s", most=Money(MAX_MINOR, currency)))
    return money.amount


def decimal_string(amount: int, currency: str) -> str:
    """Minor units as the currency's decimal string: 1250 GBP → "12.50", 700 PTS → "700"."""
    return str(Money(amount, currency).to_decimal())


def _known_currency(value: str) -> str:
    try:
        return check_currency(value)
    except ValueError:
        raise ValueError(
            _("unknown currency: an ISO 4217 code such as GBP, or PTS for points")
        ) from None


def _aware(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise ValueError(_("give a time zone, e.g. 2026-11-22T10:00:00Z"))
    return value


# -- requests ------------------------------------------------------------------------------------


class AccountIn(BaseModel):
    """An account for an owner, a purpose and a currency; asking again returns the same one."""

    model_config = ConfigDict(extra="forbid")

    owner_kind: OwnerKind
    owner_ref: OwnerRef | None = Field(
        default=None, description="The owner's public id; none for the bank's own accounts"
    )
    purpose: CodePart = Field(description="What the account is for, e.g. prepaid_budget")
    type: AccountType
    currency: str = Field(min_length=3, max_length=3, examples=["GBP", "PTS"])
    name: str | None = Field(default=None, min_length=1, max_length=200)
    floor: DecimalString | None = Field(
        default=None,
        description='The lowest balance allowed, holds counted: "0" for a budget or a pool, '
        '"-500.00" for an overdraft; none for no floor',
    )

    @field_validator("currency")
    @classmethod
    def _currency(cls, value: str) -> str:
        return _known_currency(value)

    @field_validator("floor")
    @classmethod
    def _floor(cls, value: str | None, info: ValidationInfo) -> str | None:
        currency = info.data.get("currency")
        # A wrong currency is reported already; the floor can only be read in a right one.
        if value is not None and currency is not None and parse_amount(value, currency, True) > 0:
            raise ValueError(_("an account opens at zero: its floor is zero or below"))
        return value

    @property
    def floor_minor(self) -> int | None:
        return None if self.floor is None else parse_amount(self.floor, self.currency, signed=True)


class PostingIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    account: str = Field(
        min_length=1, max_length=160, description="The account's public id or its code"
    )
    side: Side
    currency: str = Field(min_length=3, max_length=3, description="The account's currency")
    amount: DecimalString = Field(description='A positive decimal string, e.g. "12.50"')

    @field_validator("currency")
    @classmethod
    def _currency(cls, value: str) -> str:
        return _known_currency(value)

    @field_validator("amount")
    @classmethod
    def _amount(cls, value: str, info: ValidationInfo) -> str:
        currency = info.data.get("currency")
        if currency is not None:
            parse_amount(value, currency)
        return value

    @property
    def money(self) -> Money:
        return Money(parse_amount(self.amount, self.currency), self.currency)


class HoldIn(BaseModel):
    """Postings to reserve now and post later (capture), or release (void)."""

    model_config = ConfigDict(extra="forbid")

    kind: Kind = Field(default=Kind.ADJUSTMENT, description="What the transaction records")
    description: str = Field(default="", max_length=2000)
    postings: list[PostingIn] = Field(
        max_length=100, description="Two or more, debits equal to credits in each currency"
    )
    effective_at: datetime | None = Field(
        default=None, description="When it counts in balances and statements; default now"
    )
    reference: str | None = Field(default=None, min_length=1, max_length=80)
    counterparty: Ref | None = Field(
        default=None, description="The merchant or partner whose business it is"
    )
    member: Ref | None = None
    category: str | None = Field(default=None, min_length=1, max_length=60)

    _effective_at = field_validator("effective_at")(_aware)


class TransactionIn(HoldIn):
    """A manual journal entry by finance; `corrects` names the transaction it corrects."""

    corrects: Ref | None = Field(
        default=None, description="The public id of the posted transaction this corrects"
    )


class CaptureIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount: DecimalString | None = Field(
        default=None, description="Capture part of a two-posting hold; default all of it"
    )
    effective_at: datetime | None = None

    _effective_at = field_validator("effective_at")(_aware)


class ReverseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=3, max_length=2000)
    amount: DecimalString | None = Field(
        default=None, description="Reverse part of a two-posting transaction; default all of it"
    )
    effective_at: datetime | None = None

    _effective_at = field_validator("effective_at")(_aware)


class VoidIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str | None = Field(default=None, min_length=3, max_length=2000)


# -- responses -----------------------------------------------------------------------------------


class BalanceOut(BaseModel):
    """On the account's normal side: debits for assets and expenses, credits for the rest."""

    at: datetime | None = Field(description="None: now, from the running totals")
    currency: str
    posted_minor: int
    pending_minor: int = Field(description="Held, and will lower the balance when captured")
    available_minor: int = Field(description="posted − pending: what a floor is measured against")
    posted: str
    pending: str
    available: str

    @classmethod
    def of(cls, at: datetime | None, posted: Money, pending: Money, available: Money) -> BalanceOut:
        return cls(
            at=at,
            currency=posted.currency,
            posted_minor=posted.amount,
            pending_minor=pending.amount,
            available_minor=available.amount,
            posted=str(posted.to_decimal()),
            pending=str(pending.to_decimal()),
            available=str(available.to_decimal()),
        )


class AccountOut(BaseModel):
    id: str
    code: str
    name: str
    owner_kind: OwnerKind
    owner_ref: str | None
    purpose: str
    type: AccountType
    normal_side: Side = Field(description="The side its balance is read on")
    currency: str
    status: AccountStatus
    floor_minor: int | None
    floor: str | None
    balance: BalanceOut
    opened_at: datetime
    closed_at: datetime | None


class PostingOut(BaseModel):
    account_id: str
    account_code: str
    side: Side
    currency: str
    amount_minor: int = Field(description="Positive; `side` says debit or credit")
    amount: str
    pending: bool = Field(description="A hold's posting: counts against floors, not balances")


class TransactionOut(BaseModel):
    id: str
    idempotency_key: str = Field(description="As the ledger keeps it (API keys are `api:<key>`)")
    kind: str
    status: TransactionStatus
    description: str
    counterparty: str | None
    member: str | None
    category: str | None
    reference: str | None
    corrects: str | None = Field(description="The transaction this one corrects")
    resolves: str | None = Field(description="For a capture: the hold it posts")
    captured_by: str | None = Field(description="For a captured hold: the capture")
    effective_at: datetime
    created_at: datetime
    created_by: str
    resolved_at: datetime | None
    details: dict[str, Any]
    postings: list[PostingOut]


class AccountRef(BaseModel):
    id: str
    code: str
    name: str
    type: AccountType
    currency: str


class StatementLineOut(BaseModel):
    transaction_id: str
    effective_at: datetime
    kind: str
    description: str
    reference: str | None
    debit_minor: int
    credit_minor: int
    balance_minor: int = Field(description="Running balance after the line, on the normal side")
    debit: str
    credit: str
    balance: str


class StatementOut(BaseModel):
    account: AccountRef
    from_: datetime = Field(alias="from", description="Inclusive")
    to: datetime = Field(description="Exclusive")
    currency: str
    opening_minor: int
    closing_minor: int
    total_debits_minor: int
    total_credits_minor: int
    opening: str
    closing: str
    total_debits: str
    total_credits: str
    lines: list[StatementLineOut]

    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)
