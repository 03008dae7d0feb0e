"""Request and response shapes for payments and the bank core.

Amounts are integer minor units named `*_minor`, with the currency beside them. They are
strict integers: `12.5`, `"1250"` and `true` are refused, never rounded or coerced.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator

from beyondbank.core.i18n import _
from beyondbank.core.money import is_currency
from beyondbank.payments.gateway import (
    DeclineCode,
    OperationKind,
    OperationView,
    Outcome,
    PayeeKind,
    PaymentStatus,
    PaymentView,
)
from beyondbank.payments.models import DepositStatus

MAX_MINOR = 10**12
Minor = Annotated[
    int, Field(strict=True, gt=0, le=MAX_MINOR, description="Integer minor units, e.g. 1250")
]
NonNegativeMinor = Annotated[int, Field(strict=True, ge=0, le=MAX_MINOR)]
Currency = Annotated[str, Field(min_length=3, max_length=3, description="ISO 4217, e.g. GBP")]
PublicRef = Annotated[str, Field(min_length=1, max_length=40)]


def _known(value: str) -> str:
    if not is_currency(value):
        raise ValueError(_("not an ISO 4217 currency code"))
    return value


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


# -- payments ------------------------------------------------------------------------------------


class AuthoriseIn(_In):
    account_id: PublicRef = Field(description="The payer's deposit account")
    amount_minor: Minor
    currency: Currency
    payee_kind: PayeeKind
    payee_id: PublicRef = Field(description="The merchant's or partner's id")
    reference: str | None = Field(
        default=None, min_length=1, max_length=80, description="Your reference, e.g. an order id"
    )
    category: str | None = Field(default=None, min_length=1, max_length=60)
    description: str = Field(default="", max_length=500)

    _currency = field_validator("currency")(_known)


class AmountIn(_In):
    amount_minor: Minor | None = Field(
        default=None, description="Leave out for the whole amount (what is left)"
    )


class PaymentOut(BaseModel):
    id: str
    status: PaymentStatus
    account_id: str
    payee_kind: PayeeKind
    payee_id: str
    currency: str
    amount_minor: int = Field(description="Authorised (asked for, when declined)")
    captured_minor: int
    refunded_minor: int
    refundable_minor: int
    decline_code: DeclineCode | None
    decline_message: str | None
    reference: str | None
    category: str | None
    description: str
    hold_transaction_id: str | None = Field(description="The ledger hold")
    capture_transaction_id: str | None = Field(description="The ledger sale")
    created_at: datetime
    updated_at: datetime
    expires_at: datetime | None
    resolved_at: datetime | None

    @classmethod
    def of(cls, view: PaymentView) -> PaymentOut:
        return cls(
            refundable_minor=view.refundable_minor,
            **{
                name: getattr(view, name) for name in cls.model_fields if name != "refundable_minor"
            },
        )


class OperationOut(BaseModel):
    id: str
    kind: OperationKind
    amount_minor: int
    currency: str
    outcome: Outcome
    decline_code: DeclineCode | None
    ledger_transaction_id: str | None = Field(
        description="The ledger transaction the call created (or, for a void, released)"
    )
    requested_by: str
    created_at: datetime

    @classmethod
    def of(cls, view: OperationView) -> OperationOut:
        return cls(**{name: getattr(view, name) for name in cls.model_fields})


class PaymentResultOut(BaseModel):
    """The answer to a call on a payment: the payment as the call left it, and the call."""

    payment: PaymentOut
    operation: OperationOut


class PaymentDetailOut(PaymentOut):
    operations: list[OperationOut]


# -- bank core -----------------------------------------------------------------------------------


class OpenAccountIn(_In):
    customer_id: PublicRef
    currency: Currency
    opening_balance_minor: NonNegativeMinor = 0
    overdraft_minor: NonNegativeMinor = Field(
        default=0, description="How far below zero payments may take the balance"
    )
    per_payment_limit_minor: Minor | None = None
    daily_limit_minor: Minor | None = Field(
        default=None, description="Per calendar day in the bank's time zone"
    )

    _currency = field_validator("currency")(_known)


class LimitsPatch(_In):
    """Send a limit to set it, null to remove it; leave it out to keep it."""

    per_payment_limit_minor: Minor | None = None
    daily_limit_minor: Minor | None = None


class ReasonIn(_In):
    reason: str = Field(min_length=3, max_length=2000)


class OptionalReasonIn(_In):
    reason: str | None = Field(default=None, min_length=3, max_length=2000)


class MoneyIn(_In):
    amount_minor: Minor
    currency: Currency
    description: str | None = Field(default=None, max_length=200)

    _currency = field_validator("currency")(_known)


class BalanceOut(BaseModel):
    balance_minor: int = Field(description="Posted")
    pending_minor: int = Field(description="Held by authorisations not yet captured")
    available_minor: int = Field(description="Posted less pending")
    spendable_minor: int = Field(description="Available plus the overdraft")


class DepositAccountOut(BaseModel):
    id: str
    customer_id: str
    iban: str
    currency: str
    status: DepositStatus
    status_reason: str | None
    overdraft_minor: int
    per_payment_limit_minor: int | None
    daily_limit_minor: int | None
    ledger_account_id: str
    balance: BalanceOut
    opened_at: datetime
    updated_at: datetime
    closed_at: datetime | None


class TransferOut(BaseModel):
    account: DepositAccountOut
    transaction_id: str = Field(description="The ledger transaction")


class ExpiredOut(BaseModel):
    expired: list[str] = Field(description="The payments whose authorisations expired now")
