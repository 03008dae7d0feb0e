"""The payment gateway protocol: what the platform asks of a bank, and what the bank answers.

The shop's checkout, the demo and the API take payments through `PaymentGateway`. The bank
core adapter (`bankcore.BankCoreGateway`) implements it against the platform's own deposit
accounts and ledger; a real bank replaces it by implementing the same five methods against
its core system. Every method that changes something takes an idempotency `key`: a retry
with the same key and the same request answers exactly what the first call answered; the
same key with a different request is refused (`IdempotencyKeyReused`, 422).

A bank *answers* a decline, it does not fail: `authorise` returns a result with
`approved=False` and a `DeclineCode`. Exceptions are for calls that make no sense: an unknown
payment (`NotFound`), an amount out of range (`InvalidInput`), an operation the payment's
state does not allow (`InvalidTransition`, 409, naming the current state), a refund beyond
what is left to refund (`Conflict`, 409).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

from beyondbank.core.authz import SYSTEM, Principal
from beyondbank.core.errors import InvalidTransition, Problem
from beyondbank.core.i18n import N_, _


class PayeeKind(StrEnum):
    MERCHANT = "merchant"
    PARTNER = "partner"


class PaymentStatus(StrEnum):
    AUTHORISED = "authorised"  # the amount is held on the payer's deposit
    CAPTURED = "captured"  # in full or in part; any rest of the hold was released
    PARTIALLY_REFUNDED = "partially_refunded"
    REFUNDED = "refunded"  # everything captured has been given back
    VOIDED = "voided"  # released without being captured
    EXPIRED = "expired"  # not captured in time: released by the bank
    DECLINED = "declined"  # never authorised; kept so that the bank sees its declines


class DeclineCode(StrEnum):
    INSUFFICIENT_FUNDS = "insufficient_funds"
    ACCOUNT_BLOCKED = "account_blocked"
    ACCOUNT_CLOSED = "account_closed"
    PER_PAYMENT_LIMIT = "per_payment_limit"
    DAILY_LIMIT = "daily_limit"
    CURRENCY_MISMATCH = "currency_mismatch"


class OperationKind(StrEnum):
    AUTHORISE = "authorise"
    CAPTURE = "capture"
    VOID = "void"
    REFUND = "refund"
    EXPIRE = "expire"  # by the bank itself, when an authorisation runs out


class Outcome(StrEnum):
    APPROVED = "approved"
    DECLINED = "declined"


S, Op = PaymentStatus, OperationKind

# The payment state machine: (state, operation) → the states it may lead to. A refund leads
# to `refunded` when it gives back the last of the captured amount, else `partially_refunded`.
# An authorisation is the only way in: approved → authorised, declined → declined.
TRANSITIONS: dict[tuple[PaymentStatus, OperationKind], frozenset[PaymentStatus]] = {
    (S.AUTHORISED, Op.CAPTURE): frozenset({S.CAPTURED}),
    (S.AUTHORISED, Op.VOID): frozenset({S.VOIDED}),
    (S.AUTHORISED, Op.EXPIRE): frozenset({S.EXPIRED}),
    (S.CAPTURED, Op.REFUND): frozenset({S.PARTIALLY_REFUNDED, S.REFUNDED}),
    (S.PARTIALLY_REFUNDED, Op.REFUND): frozenset({S.PARTIALLY_REFUNDED, S.REFUNDED}),
}
FINAL = frozenset(s for s in PaymentStatus if not any(k[0] == s for k in TRANSITIONS))


def states_allowing(operation: OperationKind) -> frozenset[PaymentStatus]:
    """The states from which `operation` may run."""
    return frozenset(state for state, op in TRANSITIONS if op == operation)


def refuse(current: PaymentStatus, operation: OperationKind, payment_id: str) -> InvalidTransition:
    """409 naming the current state and what it allows."""
    allowed = sorted(op.value for (state, op) in TRANSITIONS if state == current)
    hint = (
        " "
        + _(
            "From %(status)s it can be: %(allowed)s.",
            status=current.value,
            allowed=", ".join(allowed),
        )
        if allowed
        else ""
    )
    return InvalidTransition(
        _(
            "Payment %(payment_id)s is %(current)s: it cannot be %(past)s.%(hint)s",
            payment_id=payment_id,
            current=current.value,
            past=_(_PAST[operation]),
            hint=hint,
        ),
        extra={"current_status": current.value, "payment_id": payment_id},
    )


_PAST = {
    Op.AUTHORISE: N_("authorised again"),
    Op.CAPTURE: N_("captured"),
    Op.VOID: N_("voided"),
    Op.REFUND: N_("refunded"),
    Op.EXPIRE: N_("expired"),
}


class PaymentDeclined(Problem):
    """The bank declined the authorisation. The HTTP answer to a declined payment (402)."""

    status = 402
    slug = "payment-declined"
    title = "The bank declined the payment"


# A decline without the bank's own reason.
DECLINED = N_("The bank declined the payment.")


# -- requests and results --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AuthoriseRequest:
    """Hold `amount_minor` of `currency` on the payer's deposit account for a payee."""

    account_id: str  # the payer's deposit account (its public id at the bank)
    amount_minor: int
    currency: str
    payee_kind: PayeeKind
    payee_id: str  # the merchant's or partner's public id
    reference: str | None = None  # the caller's object, e.g. an order id
    category: str | None = None  # the ledger's reporting line, e.g. a product category
    description: str = ""


@dataclass(frozen=True, slots=True)
class PaymentView:
    """A payment as the bank reports it."""

    id: str
    account_id: str
    status: PaymentStatus
    payee_kind: PayeeKind
    payee_id: str
    currency: str
    amount_minor: int  # authorised (asked for, when declined)
    captured_minor: int
    refunded_minor: int
    decline_code: DeclineCode | None
    decline_message: str | None
    reference: str | None
    category: str | None
    description: str
    hold_transaction_id: str | None  # ledger transaction ids
    capture_transaction_id: str | None
    created_at: datetime
    updated_at: datetime
    expires_at: datetime | None
    resolved_at: datetime | None

    @property
    def refundable_minor(self) -> int:
        return self.captured_minor - self.refunded_minor

    def as_json(self) -> dict[str, Any]:
        # Field by field: every field is a scalar (`dataclasses.asdict` would deep-copy each).
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        for name, value in data.items():
            if isinstance(value, datetime):
                data[name] = value.isoformat()
            elif isinstance(value, StrEnum):
                data[name] = value.value
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PaymentView:
        values = dict(data)
        for name in ("created_at", "updated_at", "expires_at", "resolved_at"):
            if values.get(name) is not None:
                values[name] = datetime.fromisoformat(values[name])
        values["status"] = PaymentStatus(values["status"])
        values["payee_kind"] = PayeeKind(values["payee_kind"])
        if values.get("decline_code") is not None:
            values["decline_code"] = DeclineCode(values["decline_code"])
        return cls(**values)


@dataclass(frozen=True, slots=True)
class OperationView:
    """One call on the gateway and what came of it."""

    id: str
    kind: OperationKind
    amount_minor: int
    currency: str
    outcome: Outcome
    decline_code: DeclineCode | None
    ledger_transaction_id: str | None
    requested_by: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class PaymentResult:
    """The answer to a call: the payment as the call left it, and the call itself."""

    payment: PaymentView
    operation: OperationView
    replayed: bool  # True: the key was seen before; this is the original answer

    @property
    def approved(self) -> bool:
        return self.operation.outcome is Outcome.APPROVED

    @property
    def decline_code(self) -> DeclineCode | None:
        return self.operation.decline_code


# -- the protocol ----------------------------------------------------------------------------


@runtime_checkable
class PaymentGateway(Protocol):
    """A bank that takes payments from its customers' accounts for merchants and partners.

    Each call is its own transaction at the bank, committed before it returns: the caller
    holds no lock of its own across it. `actor` says who asked (for the bank's audit trail).
    """

    def authorise(
        self, request: AuthoriseRequest, *, key: str, actor: Principal = SYSTEM
    ) -> PaymentResult:
        """Hold the amount for the payee, or decline (a result with `approved=False`)."""
        ...

    def capture(
        self,
        payment_id: str,
        *,
        key: str,
        amount_minor: int | None = None,
        actor: Principal = SYSTEM,
    ) -> PaymentResult:
        """Take the held amount, in full or `amount_minor` of it, once; the rest is released."""
        ...

    def void(self, payment_id: str, *, key: str, actor: Principal = SYSTEM) -> PaymentResult:
        """Release an authorisation without taking anything."""
        ...

    def refund(
        self,
        payment_id: str,
        *,
        key: str,
        amount_minor: int | None = None,
        actor: Principal = SYSTEM,
    ) -> PaymentResult:
        """Give back what was captured, in full (what is left) or `amount_minor` of it; several
        partial refunds never add up to more than was captured."""
        ...

    def payment(self, payment_id: str) -> PaymentView:
        """The payment as it stands now."""
        ...
