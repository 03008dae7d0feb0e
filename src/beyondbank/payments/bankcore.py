"""The bank core adapter: `PaymentGateway` against the platform's own deposit accounts and ledger.

Every call runs in a unit of work of its own and commits before it returns, as a call to a
bank's system would: the caller holds no lock of its own across it. Inside a call the
database enforces everything concurrent calls could break, taking locks in one order so that
they queue rather than deadlock:

1. the payment row (`SELECT … FOR UPDATE`); its status then moves by a conditional UPDATE
   (`WHERE status IN (…)`), and a refund adds to `refunded_minor` only
   `WHERE refunded + x <= captured`;
2. the operation row: its unique idempotency key makes a retry wait for, then replay, the
   first call with that key;
3. the account's daily usage row: a conditional upsert keeps within the daily limit;
4. the ledger accounts (the ledger orders those itself): the customer deposit's floor
   (−overdraft) refuses a hold the funds do not cover.

An authorisation has no payment row yet and claims its key last, after the ledger accounts, on
every path (the general one below, the server's functions and their batches): a call reusing a
key in flight on another path then waits for the same rows first, rather than holding the key
while it waits for them.

A decline rolls the attempt back and then records the declined payment and its operation in a
transaction of its own, so the bank sees its declines; the caller gets a result with
`approved=False`, never an exception.

On PostgreSQL the usual authorisation (a new key, a known account and payee, approved) takes two
calls, `bank_authorise_open` and `bank_authorise_hold` (migration 0009), with the same checks
and locks in the same order; anything else rolls back and takes the general path below. The
second call is made in a batch with the other threads' of the process (`bank_authorise_holds`,
migration 0012): every authorisation to a payee locks the payee's payable account until its
commit, and a batch locks it, and flushes the WAL, once for all its holds.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterable, Mapping
from dataclasses import fields
from datetime import UTC, date, datetime, timedelta
from typing import Any
from weakref import WeakKeyDictionary
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Connection, Engine, case, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from beyondbank.alliance import service as alliance
from beyondbank.commerce import service as commerce
from beyondbank.core import audit
from beyondbank.core.authz import SYSTEM, Principal
from beyondbank.core.clock import Clock
from beyondbank.core.errors import (
    Conflict,
    FieldError,
    IdempotencyKeyReused,
    InsufficientBalance,
    InvalidInput,
    NotFound,
    invalid,
)
from beyondbank.core.i18n import N_, _
from beyondbank.core.ids import new_public_id
from beyondbank.core.money import Money, is_currency
from beyondbank.core.uow import UnitOfWork
from beyondbank.identity.models import Customer
from beyondbank.ledger import chart
from beyondbank.ledger import service as ledger
from beyondbank.ledger.chart import Kind
from beyondbank.ledger.models import AccountType, LedgerTransaction, OwnerKind
from beyondbank.payments.batches import Batches, BatchFailed
from beyondbank.payments.gateway import (
    AuthoriseRequest,
    DeclineCode,
    OperationKind,
    OperationView,
    Outcome,
    PayeeKind,
    PaymentResult,
    PaymentStatus,
    PaymentView,
    refuse,
    states_allowing,
)
from beyondbank.payments.models import DailyUsage, DepositAccount, DepositStatus, Payment
from beyondbank.payments.models import PaymentOperation as Operation

Op, S = OperationKind, PaymentStatus

MAX_KEY_LENGTH = 320
MAX_AMOUNT_MINOR = 10**15
DEFAULT_AUTHORISATION_TTL = timedelta(days=7)

# Kept in English on the payment (a record); marked so the caller's answer can be translated.
_DECLINE_MESSAGES = {
    DeclineCode.INSUFFICIENT_FUNDS: N_("The account does not have enough funds available."),
    DeclineCode.ACCOUNT_BLOCKED: N_("The account is blocked: no payments can be made from it."),
    DeclineCode.ACCOUNT_CLOSED: N_("The account is closed."),
    DeclineCode.PER_PAYMENT_LIMIT: N_("The amount is above the account's limit for one payment."),
    DeclineCode.DAILY_LIMIT: N_("The payment would take the account over its daily limit."),
    DeclineCode.CURRENCY_MISMATCH: N_("The account is kept in another currency."),
}


class _Declined(Exception):
    def __init__(self, code: DeclineCode) -> None:
        super().__init__(code.value)
        self.code = code
        self.message = _DECLINE_MESSAGES[code]


class _KeyTaken(Exception):
    """A concurrent call with the same idempotency key committed first."""


class BankCoreGateway:
    """The bank's core system as a payment gateway. Thread-safe: it keeps no state per call.

    Daily limits count per calendar day in `timezone` (the bank's); an authorisation not
    captured within `authorisation_ttl` expires and its hold is released.
    """

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        clock: Clock,
        *,
        timezone: str = "Europe/London",
        authorisation_ttl: timedelta = DEFAULT_AUTHORISATION_TTL,
    ) -> None:
        self._session_factory = session_factory
        self._clock = clock
        self._zone = ZoneInfo(timezone)
        self._ttl = authorisation_ttl

    def _unit(self) -> UnitOfWork:
        return UnitOfWork(self._session_factory, self._clock)

    def day_of(self, at: datetime) -> date:
        """The bank's business day of an instant: what a daily limit counts against."""
        return at.astimezone(self._zone).date()

    # -- authorise ---------------------------------------------------------------------------

    def authorise(
        self, request: AuthoriseRequest, *, key: str, actor: Principal = SYSTEM
    ) -> PaymentResult:
        _check_key(key)
        _check_request(request)
        fingerprint = _fingerprint(Op.AUTHORISE, _fields(request))
        with self._unit() as uow:
            if uow.session.get_bind().dialect.name == "postgresql":
                done = self._authorise_on_server(uow, request, key, fingerprint, actor)
                if done is not None:
                    uow.commit()
                    return done
                uow.rollback()
            replayed = _replay(uow, key, fingerprint)
            if replayed is not None:
                return replayed
            account, customer_ref = _payer(uow, request.account_id)
            _check_payee(uow, request.payee_kind, request.payee_id)
            try:
                result = self._authorise(
                    uow, account, customer_ref, request, key, fingerprint, actor
                )
            except _Declined as exc:
                uow.rollback()
                declined = exc
            except _KeyTaken as exc:
                uow.rollback()
                return _replay_after_race(uow, key, fingerprint, exc)
            else:
                uow.commit()
                return result
        return self._record_decline(request, declined, key, fingerprint, actor)

    def _authorise(
        self,
        uow: UnitOfWork,
        account: DepositAccount,
        customer_ref: str,
        request: AuthoriseRequest,
        key: str,
        fingerprint: str,
        actor: Principal,
    ) -> PaymentResult:
        _decline_on_account(account, request)
        now = uow.clock.now()
        # The day's usage first (a decline then writes nothing else), so the payment is written
        # once with its day. The key is claimed last, after the ledger's accounts, as the fast
        # path and its batches take it: a call reusing a key in flight on the other path then
        # waits on the same rows first instead of holding the key while it waits for them (a
        # deadlock). A concurrent call with the same key still stops at `_claim`, and rolls back
        # everything this one wrote.
        day = self.day_of(now)
        if not _count_daily(uow, account, day, request.amount_minor):
            raise _Declined(DeclineCode.DAILY_LIMIT)
        payment = _new_payment(account, request, now, S.AUTHORISED)
        payment.expires_at = now + self._ttl
        payment.usage_day = day
        uow.session.add(payment)
        uow.session.flush()
        operation = _new_operation(payment, Op.AUTHORISE, key, fingerprint, actor, now)

        money = Money(request.amount_minor, request.currency)
        payable = chart.payable(
            uow, OwnerKind(request.payee_kind.value), request.payee_id, request.currency
        )
        draft = ledger.Draft(
            key=f"payment:{payment.public_id}:hold",
            kind=Kind.SALE,
            legs=(
                ledger.Leg.debit(account.ledger_account_id, money),
                ledger.Leg.credit(payable, money),
            ),
            description=request.description or f"Payment to {request.payee_id}",
            counterparty=request.payee_id,
            member=customer_ref,
            category=request.category,
            reference=payment.public_id,
            details={"order_reference": request.reference} if request.reference else {},
        )
        try:
            held = ledger.hold(uow, draft, actor=actor)
        except InsufficientBalance as exc:
            raise _Declined(DeclineCode.INSUFFICIENT_FUNDS) from exc
        payment.hold_transaction_id = held.transaction.id
        operation.ledger_transaction_id = held.transaction.id
        _claim(uow, operation)
        return _finish(
            uow,
            payment,
            operation,
            actor,
            "payment.authorised",
            before=None,
            known=(account.public_id, {held.transaction.id: held.transaction.public_id}),
        )

    def _authorise_on_server(
        self,
        uow: UnitOfWork,
        request: AuthoriseRequest,
        key: str,
        fingerprint: str,
        actor: Principal,
    ) -> PaymentResult | None:
        """The usual authorisation in two calls (PostgreSQL), the second all or nothing: reads,
        then the writes. None when it is not the usual case, with nothing written: a known key,
        an unknown account or payee, a payable account not opened yet, a decline, a concurrent
        call with the key; the caller then takes the general path, which decides and words
        every such case."""
        connection = uow.single_statements()
        payable_code = ledger.account_code(
            OwnerKind(request.payee_kind.value), request.payee_id, "payable", request.currency
        )
        found = connection.execute(
            _AUTHORISE_OPEN,
            {
                "key": key,
                "account": request.account_id,
                "payee_kind": request.payee_kind.value,
                "payee": request.payee_id,
                "payable_code": payable_code,
            },
        ).scalar_one()
        payer, payable = found["account"], found["payable"]
        if found["known"] or payer is None or not found["payee"]:
            return None
        if payable is None or payable[1] != AccountType.LIABILITY.value or payable[2] is not None:
            return None  # `chart.payable` opens it (or refuses one of another kind)
        account = DepositAccount(
            id=payer["id"],
            public_id=payer["public_id"],
            status=DepositStatus(payer["status"]),
            currency=payer["currency"],
            per_payment_limit_minor=payer["per_payment_limit_minor"],
            daily_limit_minor=payer["daily_limit_minor"],
        )
        try:
            _decline_on_account(account, request)
        except _Declined:
            return None
        now = uow.clock.now()
        payment_ref, operation_ref = new_public_id("pay"), new_public_id("pop")
        money = Money(request.amount_minor, request.currency)
        draft = ledger.Draft(
            key=f"payment:{payment_ref}:hold",
            kind=Kind.SALE,
            legs=(
                ledger.Leg.debit(payer["ledger_account_id"], money),
                ledger.Leg.credit(payable[0], money),
            ),
            description=request.description or f"Payment to {request.payee_id}",
            counterparty=request.payee_id,
            member=payer["customer_ref"],
            category=request.category,
            reference=payment_ref,
            details={"order_reference": request.reference} if request.reference else {},
        )
        ledger.check_draft(draft)
        hold_ref = new_public_id("ltx")
        view = PaymentView(
            id=payment_ref,
            account_id=payer["public_id"],
            status=S.AUTHORISED,
            payee_kind=request.payee_kind,
            payee_id=request.payee_id,
            currency=request.currency,
            amount_minor=request.amount_minor,
            captured_minor=0,
            refunded_minor=0,
            decline_code=None,
            decline_message=None,
            reference=request.reference,
            category=request.category,
            description=request.description,
            hold_transaction_id=hold_ref,
            capture_transaction_id=None,
            created_at=now,
            updated_at=now,
            expires_at=now + self._ttl,
            resolved_at=None,
        )
        after = {
            "status": S.AUTHORISED.value,
            "captured_minor": 0,
            "refunded_minor": 0,
            "operation_id": operation_ref,
            "amount_minor": request.amount_minor,
        }
        held = _hold(
            connection,
            {
                "account": account.id,
                "day": self.day_of(now).isoformat(),
                "amount": request.amount_minor,
                "daily_limit": account.daily_limit_minor,
                "payment": payment_ref,
                "payee_kind": request.payee_kind.value,
                "payee": request.payee_id,
                "currency": request.currency,
                "reference": request.reference,
                "category": request.category,
                "description": request.description,
                "now": now.astimezone(UTC).isoformat(),
                "expires_at": (now + self._ttl).astimezone(UTC).isoformat(),
                "operation": operation_ref,
                "key": key,
                "fingerprint": fingerprint,
                "requested_by": actor.public_id,
                "result": view.as_json(),
                "ltx": hold_ref,
                "ltx_key": draft.key,
                "ltx_fingerprint": ledger.fingerprint_of(draft),
                "ltx_kind": str(draft.kind),
                "ltx_description": draft.description,
                "ltx_counterparty": draft.counterparty,
                "ltx_member": draft.member,
                "ltx_details": dict(draft.details),
                "ltx_accounts": [leg.account_id for leg in draft.legs],
                "ltx_currencies": [leg.amount.currency for leg in draft.legs],
                "ltx_amounts": [leg.signed for leg in draft.legs],
                "actor_type": actor.kind,
                "actor_label": actor.label,
                "actor_role": actor.role.value if actor.role else None,
                "after": after,
            },
        )
        if not held:
            return None
        operation = OperationView(
            id=operation_ref,
            kind=Op.AUTHORISE,
            amount_minor=request.amount_minor,
            currency=request.currency,
            outcome=Outcome.APPROVED,
            decline_code=None,
            ledger_transaction_id=hold_ref,
            requested_by=actor.public_id,
            created_at=now,
        )
        return PaymentResult(view, operation, replayed=False)

    def _record_decline(
        self,
        request: AuthoriseRequest,
        declined: _Declined,
        key: str,
        fingerprint: str,
        actor: Principal,
    ) -> PaymentResult:
        """Keep the declined payment and its operation, in a transaction of their own."""
        with self._unit() as uow:
            replayed = _replay(uow, key, fingerprint)
            if replayed is not None:
                return replayed
            account = _deposit_account(uow, request.account_id)
            now = uow.clock.now()
            payment = _new_payment(account, request, now, S.DECLINED)
            payment.decline_code = declined.code
            payment.decline_message = declined.message
            payment.resolved_at = now
            uow.session.add(payment)
            uow.session.flush()
            operation = _new_operation(payment, Op.AUTHORISE, key, fingerprint, actor, now)
            operation.outcome = Outcome.DECLINED
            operation.decline_code = declined.code
            try:
                _claim(uow, operation)
            except _KeyTaken as exc:
                uow.rollback()
                return _replay_after_race(uow, key, fingerprint, exc)
            result = _finish(uow, payment, operation, actor, "payment.declined", before=None)
            uow.commit()
            return result

    # -- capture, void, refund ------------------------------------------------------------------

    def capture(
        self,
        payment_id: str,
        *,
        key: str,
        amount_minor: int | None = None,
        actor: Principal = SYSTEM,
    ) -> PaymentResult:
        _check_key(key)
        if amount_minor is not None:
            _check_amount(amount_minor)
        fingerprint = _fingerprint(
            Op.CAPTURE, {"payment_id": payment_id, "amount_minor": amount_minor}
        )
        with self._unit() as uow:
            replayed = _replay(uow, key, fingerprint)
            if replayed is not None:
                return replayed
            payment = _payment(uow, payment_id)
            amount = payment.amount_minor if amount_minor is None else amount_minor
            if amount > payment.amount_minor:
                raise invalid(
                    "body.amount_minor",
                    _(
                        "at most %(amount_minor)s, the amount authorised",
                        amount_minor=payment.amount_minor,
                    ),
                )
            now = uow.clock.now()
            _lock(uow, payment)
            operation = _new_operation(payment, Op.CAPTURE, key, fingerprint, actor, now)
            operation.amount_minor = amount
            try:
                _claim(uow, operation)
            except _KeyTaken as exc:
                uow.rollback()
                return _replay_after_race(uow, key, fingerprint, exc)
            before = _state(payment)
            if not _move(
                uow,
                payment,
                Op.CAPTURE,
                S.CAPTURED,
                now,
                Payment.expires_at > now,
                captured_minor=amount,
                resolved_at=now,
            ):
                if payment.status is not S.AUTHORISED:
                    raise refuse(payment.status, Op.CAPTURE, payment.public_id)
                uow.rollback()  # authorised, but its time has run out: expire it, then refuse
            else:
                assert payment.hold_transaction_id is not None
                # The day's usage before the ledger's accounts, as an authorisation takes them:
                # one order of locks, so a capture and an authorisation never wait on each other.
                _release_daily(uow, payment, payment.amount_minor - amount)
                posted = ledger.capture(
                    uow,
                    payment.hold_transaction_id,
                    key=f"payment:{payment.public_id}:capture",
                    amount=amount,
                    actor=actor,
                )
                payment.capture_transaction_id = posted.transaction.id
                operation.ledger_transaction_id = posted.transaction.id
                result = _finish(uow, payment, operation, actor, "payment.captured", before)
                uow.commit()
                return result
        self._expire(payment_id)
        raise refuse(self.payment(payment_id).status, Op.CAPTURE, payment_id)

    def void(self, payment_id: str, *, key: str, actor: Principal = SYSTEM) -> PaymentResult:
        _check_key(key)
        fingerprint = _fingerprint(Op.VOID, {"payment_id": payment_id})
        with self._unit() as uow:
            replayed = _replay(uow, key, fingerprint)
            if replayed is not None:
                return replayed
            payment = _payment(uow, payment_id)
            now = uow.clock.now()
            _lock(uow, payment)
            operation = _new_operation(payment, Op.VOID, key, fingerprint, actor, now)
            try:
                _claim(uow, operation)
            except _KeyTaken as exc:
                uow.rollback()
                return _replay_after_race(uow, key, fingerprint, exc)
            before = _state(payment)
            if not _move(uow, payment, Op.VOID, S.VOIDED, now, resolved_at=now):
                raise refuse(payment.status, Op.VOID, payment.public_id)
            self._release_hold(uow, payment, actor)
            operation.ledger_transaction_id = payment.hold_transaction_id
            result = _finish(uow, payment, operation, actor, "payment.voided", before)
            uow.commit()
            return result

    def refund(
        self,
        payment_id: str,
        *,
        key: str,
        amount_minor: int | None = None,
        actor: Principal = SYSTEM,
    ) -> PaymentResult:
        _check_key(key)
        if amount_minor is not None:
            _check_amount(amount_minor)
        fingerprint = _fingerprint(
            Op.REFUND, {"payment_id": payment_id, "amount_minor": amount_minor}
        )
        with self._unit() as uow:
            replayed = _replay(uow, key, fingerprint)
            if replayed is not None:
                return replayed
            payment = _payment(uow, payment_id)
            now = uow.clock.now()
            _lock(uow, payment)  # "what is left" is then read as no other refund leaves it
            operation = _new_operation(payment, Op.REFUND, key, fingerprint, actor, now)
            operation.amount_minor = amount_minor or 0
            try:
                _claim(uow, operation)
            except _KeyTaken as exc:
                uow.rollback()
                return _replay_after_race(uow, key, fingerprint, exc)
            if payment.status not in states_allowing(Op.REFUND):
                raise refuse(payment.status, Op.REFUND, payment.public_id)
            amount = payment.captured_minor - payment.refunded_minor
            if amount_minor is not None:
                amount = amount_minor
            _refuse_beyond_captured(payment, amount)
            _refuse_closed_payer(uow, payment)
            before = _state(payment)
            after_refund = Payment.refunded_minor + amount
            moved = _move(
                uow,
                payment,
                Op.REFUND,
                case(
                    (after_refund == Payment.captured_minor, S.REFUNDED.value),
                    else_=S.PARTIALLY_REFUNDED.value,
                ),
                now,
                after_refund <= Payment.captured_minor,
                refunded_minor=after_refund,
            )
            if not moved:  # cannot happen under the row lock; the database has the last word
                _refuse_beyond_captured(payment, amount)
                raise refuse(payment.status, Op.REFUND, payment.public_id)
            assert payment.capture_transaction_id is not None
            posted = ledger.reverse(
                uow,
                payment.capture_transaction_id,
                key=f"payment:{payment.public_id}:refund:{operation.public_id}",
                reason=f"Refund of payment {payment.public_id}",
                amount=amount,
                kind=Kind.RETURN,
                actor=actor,
            )
            operation.amount_minor = amount
            operation.ledger_transaction_id = posted.transaction.id
            result = _finish(uow, payment, operation, actor, "payment.refunded", before)
            uow.commit()
            return result

    # -- expiry ------------------------------------------------------------------------------

    def expire_due(self, *, limit: int = 1000) -> list[str]:
        """Expire the authorisations whose time has run out (each in its own transaction),
        releasing their holds; the ids of those expired now."""
        with self._unit() as uow:
            due = uow.session.scalars(
                select(Payment.public_id)
                .where(Payment.status == S.AUTHORISED, Payment.expires_at <= uow.clock.now())
                .order_by(Payment.expires_at, Payment.id)
                .limit(limit)
            ).all()
        return [payment_id for payment_id in due if self._expire(payment_id)]

    def _expire(self, payment_id: str) -> bool:
        with self._unit() as uow:
            payment = _payment(uow, payment_id)
            now = uow.clock.now()
            _lock(uow, payment)
            before = _state(payment)
            if not _move(
                uow, payment, Op.EXPIRE, S.EXPIRED, now, Payment.expires_at <= now, resolved_at=now
            ):
                return False
            operation = _new_operation(
                payment, Op.EXPIRE, f"payment:{payment.public_id}:expire", "", SYSTEM, now
            )
            uow.session.add(operation)
            uow.session.flush()
            self._release_hold(uow, payment, SYSTEM)
            operation.ledger_transaction_id = payment.hold_transaction_id
            _finish(uow, payment, operation, SYSTEM, "payment.expired", before)
            uow.commit()
            return True

    def _release_hold(self, uow: UnitOfWork, payment: Payment, actor: Principal) -> None:
        assert payment.hold_transaction_id is not None
        # The day's usage first, then the ledger's accounts: the order an authorisation takes
        # their locks in (a void and an authorisation of one account once deadlocked).
        _release_daily(uow, payment, payment.amount_minor)
        ledger.void(uow, payment.hold_transaction_id, actor=actor)

    # -- reads -------------------------------------------------------------------------------

    def payment(self, payment_id: str) -> PaymentView:
        with self._unit() as uow:
            return view_of(uow, _payment(uow, payment_id))


# -- checks --------------------------------------------------------------------------------------


def _check_key(key: str) -> None:
    if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise InvalidInput(
            _("The idempotency key is not usable."),
            errors=(
                FieldError(
                    "header.Idempotency-Key",
                    _("1 to %(max_key_length)s characters", max_key_length=MAX_KEY_LENGTH),
                ),
            ),
        )


def _check_amount(amount: int, field: str = "body.amount_minor") -> None:
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise invalid(field, _("an integer number of minor units"))
    if not 0 < amount <= MAX_AMOUNT_MINOR:
        raise invalid(
            field, _("must be within 1..%(max_amount_minor)s", max_amount_minor=MAX_AMOUNT_MINOR)
        )


def _check_request(request: AuthoriseRequest) -> None:
    errors: list[FieldError] = []
    try:
        _check_amount(request.amount_minor)
    except InvalidInput as exc:
        errors.extend(exc.errors)
    if not is_currency(request.currency):
        errors.append(FieldError("body.currency", _("not an ISO 4217 currency code")))
    if not isinstance(request.payee_kind, PayeeKind):
        errors.append(FieldError("body.payee_kind", _("merchant or partner")))
    for field, value, most in (
        ("body.account_id", request.account_id, 40),
        ("body.payee_id", request.payee_id, 40),
        ("body.reference", request.reference, 80),
        ("body.category", request.category, 60),
    ):
        if value is not None and not 0 < len(value) <= most:
            errors.append(FieldError(field, _("1 to %(most)s characters", most=most)))
    if errors:
        raise InvalidInput(_("The payment cannot be authorised as asked."), errors=errors)


def _check_payee(uow: UnitOfWork, kind: PayeeKind, ref: str) -> None:
    if kind is PayeeKind.MERCHANT:
        try:
            alliance.get_merchant(uow, SYSTEM, ref)
        except NotFound:
            raise invalid("body.payee_id", _("no such merchant")) from None
    else:
        try:
            commerce.get_partner(uow, ref)
        except NotFound:
            raise invalid("body.payee_id", _("no such partner")) from None


def _decline_on_account(account: DepositAccount, request: AuthoriseRequest) -> None:
    """The declines the account's own state decides, in the order a bank checks them."""
    if account.status is DepositStatus.CLOSED:
        raise _Declined(DeclineCode.ACCOUNT_CLOSED)
    if account.status is DepositStatus.BLOCKED:
        raise _Declined(DeclineCode.ACCOUNT_BLOCKED)
    if request.currency != account.currency:
        raise _Declined(DeclineCode.CURRENCY_MISMATCH)
    limit = account.per_payment_limit_minor
    if limit is not None and request.amount_minor > limit:
        raise _Declined(DeclineCode.PER_PAYMENT_LIMIT)
    daily = account.daily_limit_minor
    if daily is not None and request.amount_minor > daily:
        raise _Declined(DeclineCode.DAILY_LIMIT)


def _refuse_beyond_captured(payment: Payment, amount: int) -> None:
    left = payment.captured_minor - payment.refunded_minor
    if amount > left:
        captured = Money(payment.captured_minor, payment.currency)
        raise Conflict(
            _(
                "Only %(left)s of the %(captured)s captured is left to refund.",
                left=Money(left, payment.currency),
                captured=captured,
            ),
            errors=(FieldError("body.amount_minor", _("at most %(left)s", left=left)),),
            extra={
                "current_status": payment.status.value,
                "refundable_minor": left,
                "payment_id": payment.public_id,
            },
        )


def _refuse_closed_payer(uow: UnitOfWork, payment: Payment) -> None:
    account = uow.session.get_one(DepositAccount, payment.deposit_account_id)
    if account.status is DepositStatus.CLOSED:
        raise Conflict(
            _(
                "The payer's account %(public_id)s is closed: refund the customer another way.",
                public_id=account.public_id,
            ),
            extra={"account_id": account.public_id, "current_status": account.status.value},
        )


# -- rows ----------------------------------------------------------------------------------------


def _fields(request: AuthoriseRequest) -> dict[str, Any]:
    """The request's fields by name, as `dataclasses.asdict` gives them for its scalar fields
    (without its deep copy of each), so the fingerprint is the same."""
    return {f.name: getattr(request, f.name) for f in fields(request)}


def _fingerprint(operation: OperationKind, request: Mapping[str, Any]) -> str:
    canonical = json.dumps(
        {"operation": operation.value, **request},
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def _payer(uow: UnitOfWork, public_id: str) -> tuple[DepositAccount, str]:
    """The paying deposit account and its customer's public id, in one read."""
    row = uow.session.execute(
        select(DepositAccount, Customer.public_id)
        .join(Customer, Customer.id == DepositAccount.customer_id)
        .where(DepositAccount.public_id == public_id)
    ).one_or_none()
    if row is None:
        raise invalid("body.account_id", _("no such deposit account"))
    return row[0], row[1]


def _deposit_account(uow: UnitOfWork, public_id: str) -> DepositAccount:
    account = uow.session.scalars(
        select(DepositAccount).where(DepositAccount.public_id == public_id)
    ).one_or_none()
    if account is None:
        raise invalid("body.account_id", _("no such deposit account"))
    return account


def _payment(uow: UnitOfWork, public_id: str) -> Payment:
    payment = uow.session.scalars(
        select(Payment).where(Payment.public_id == public_id)
    ).one_or_none()
    if payment is None:
        raise NotFound(_("No payment %(public_id)r here.", public_id=public_id))
    return payment


def _new_payment(
    account: DepositAccount, request: AuthoriseRequest, now: datetime, status: PaymentStatus
) -> Payment:
    return Payment(
        public_id=new_public_id("pay"),
        deposit_account_id=account.id,
        payee_kind=request.payee_kind,
        payee_ref=request.payee_id,
        currency=request.currency,
        amount_minor=request.amount_minor,
        captured_minor=0,
        refunded_minor=0,
        status=status,
        reference=request.reference,
        category=request.category,
        description=request.description,
        created_at=now,
        updated_at=now,
    )


def _new_operation(
    payment: Payment,
    kind: OperationKind,
    key: str,
    fingerprint: str,
    actor: Principal,
    now: datetime,
) -> Operation:
    return Operation(
        public_id=new_public_id("pop"),
        payment_id=payment.id,
        kind=kind,
        idempotency_key=key,
        fingerprint=fingerprint,
        amount_minor=payment.amount_minor,
        currency=payment.currency,
        outcome=Outcome.APPROVED,
        requested_by=actor.public_id,
        created_at=now,
        result={},
    )


def _lock(uow: UnitOfWork, payment: Payment) -> None:
    """Take the payment row's lock first, before anything refers to it: the operation row's
    foreign key takes a share lock on the payment, which would otherwise deadlock with another
    call's update of it (PostgreSQL; SQLite's writers are serialised at BEGIN)."""
    uow.session.execute(select(Payment.id).where(Payment.id == payment.id).with_for_update())
    uow.session.refresh(payment)


def _claim(uow: UnitOfWork, operation: Operation) -> None:
    """Insert the operation: its unique key is the claim. A concurrent call with the same key
    waits here until the first commits (then `_KeyTaken`) or rolls back (then it goes on)."""
    uow.session.add(operation)
    try:
        uow.session.flush()
    except IntegrityError as exc:
        raise _KeyTaken(str(exc.orig)) from exc


def _replay(uow: UnitOfWork, key: str, fingerprint: str) -> PaymentResult | None:
    operation = uow.session.scalars(
        select(Operation).where(Operation.idempotency_key == key)
    ).one_or_none()
    if operation is None:
        return None
    if operation.fingerprint != fingerprint:
        raise IdempotencyKeyReused(
            _(
                "The key %(key)r was used for a different request (%(kind)s "
                "%(public_id)s); use a new key.",
                key=key,
                kind=operation.kind.value,
                public_id=operation.public_id,
            ),
            extra={"operation_id": operation.public_id},
        )
    view = PaymentView.from_json(operation.result)
    return PaymentResult(view, operation_view(uow, operation), replayed=True)


def _replay_after_race(
    uow: UnitOfWork, key: str, fingerprint: str, cause: Exception
) -> PaymentResult:
    replayed = _replay(uow, key, fingerprint)
    if replayed is None:  # not the key after all: the database refused something else
        raise cause.__cause__ or cause
    return replayed


def _state(payment: Payment) -> dict[str, Any]:
    return audit.snapshot(payment, ("status", "captured_minor", "refunded_minor"))


def _move(
    uow: UnitOfWork,
    payment: Payment,
    operation: OperationKind,
    to: PaymentStatus | ColumnElement[str],
    now: datetime,
    *conditions: ColumnElement[bool],
    **values: Any,
) -> bool:
    """Move the payment by the transition table in one conditional UPDATE; False if its state
    (or a condition) does not allow it. The payment object is refreshed either way."""
    result = uow.session.execute(
        update(Payment)
        .where(
            Payment.id == payment.id,
            Payment.status.in_(states_allowing(operation)),
            *conditions,
        )
        .values(status=to, updated_at=now, **values)
        .execution_options(synchronize_session=False)
    )
    uow.session.refresh(payment)
    moved: bool = result.rowcount == 1  # type: ignore[attr-defined]
    return moved


def _count_daily(uow: UnitOfWork, account: DepositAccount, day: date, amount: int) -> bool:
    """Add the amount to the day's usage unless that goes over the daily limit (a conditional
    upsert: concurrent payments queue on the row and each sees the others' amounts)."""
    dialect = postgresql if uow.session.get_bind().dialect.name == "postgresql" else sqlite
    table = DailyUsage.__table__
    limit = account.daily_limit_minor
    stmt = dialect.insert(table).values(deposit_account_id=account.id, day=day, used_minor=amount)
    stmt = stmt.on_conflict_do_update(
        index_elements=[table.c.deposit_account_id, table.c.day],
        set_={"used_minor": table.c.used_minor + amount},
        where=(table.c.used_minor + amount <= limit) if limit is not None else None,
    ).returning(table.c.used_minor)
    return uow.session.execute(stmt).first() is not None


def _release_daily(uow: UnitOfWork, payment: Payment, amount: int) -> None:
    """Give back to the day's usage what an authorisation held but never took."""
    if amount <= 0 or payment.usage_day is None:
        return
    uow.session.execute(
        update(DailyUsage)
        .where(
            DailyUsage.deposit_account_id == payment.deposit_account_id,
            DailyUsage.day == payment.usage_day,
            DailyUsage.used_minor >= amount,
        )
        .values(used_minor=DailyUsage.used_minor - amount)
        .execution_options(synchronize_session=False)
    )


def _finish(
    uow: UnitOfWork,
    payment: Payment,
    operation: Operation,
    actor: Principal,
    action: str,
    before: dict[str, Any] | None,
    *,
    known: tuple[str, Mapping[int, str]] | None = None,
) -> PaymentResult:
    """Store the payment as the call leaves it on the operation (what a retry answers), audit.
    `known`: the payer's account public id and the ledger ids' public ids, when the caller has
    them (the payment and operation are then written in one flush, with nothing read)."""
    payment.updated_at = uow.clock.now()
    refs: Mapping[int, str] | None = None
    if known is None:
        uow.session.flush()
        view = view_of(uow, payment)
    else:
        account_ref, refs = known
        view = _view(payment, account_ref, refs)
    operation.result = view.as_json()
    uow.session.flush()
    audit.record(
        uow.session,
        actor=actor,
        at=uow.clock.now(),
        action=action,
        object_type="payment",
        object_id=payment.public_id,
        before=before,
        after={
            **_state(payment),
            "operation_id": operation.public_id,
            "amount_minor": operation.amount_minor,
            **({"decline_code": payment.decline_code.value} if payment.decline_code else {}),
        },
    )
    return PaymentResult(view, operation_view(uow, operation, refs), replayed=False)


# -- views ---------------------------------------------------------------------------------------


def ledger_refs(uow: UnitOfWork, ids: Iterable[int | None]) -> dict[int, str]:
    """Ledger transaction public ids for internal ids."""
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    rows = uow.session.execute(
        select(LedgerTransaction.id, LedgerTransaction.public_id).where(
            LedgerTransaction.id.in_(wanted)
        )
    )
    return {row.id: row.public_id for row in rows}


def view_of(uow: UnitOfWork, payment: Payment) -> PaymentView:
    account_ref = uow.session.scalar(
        select(DepositAccount.public_id).where(DepositAccount.id == payment.deposit_account_id)
    )
    assert account_ref is not None
    refs = ledger_refs(uow, (payment.hold_transaction_id, payment.capture_transaction_id))
    return _view(payment, account_ref, refs)


def _view(payment: Payment, account_ref: str, refs: Mapping[int, str]) -> PaymentView:
    return PaymentView(
        id=payment.public_id,
        account_id=account_ref,
        status=payment.status,
        payee_kind=payment.payee_kind,
        payee_id=payment.payee_ref,
        currency=payment.currency,
        amount_minor=payment.amount_minor,
        captured_minor=payment.captured_minor,
        refunded_minor=payment.refunded_minor,
        decline_code=payment.decline_code,
        decline_message=payment.decline_message,
        reference=payment.reference,
        category=payment.category,
        description=payment.description,
        hold_transaction_id=refs.get(payment.hold_transaction_id or 0),
        capture_transaction_id=refs.get(payment.capture_transaction_id or 0),
        created_at=payment.created_at,
        updated_at=payment.updated_at,
        expires_at=payment.expires_at,
        resolved_at=payment.resolved_at,
    )


def operation_view(
    uow: UnitOfWork, operation: Operation, refs: Mapping[int, str] | None = None
) -> OperationView:
    if refs is None:
        refs = ledger_refs(uow, (operation.ledger_transaction_id,))
    return OperationView(
        id=operation.public_id,
        kind=operation.kind,
        amount_minor=operation.amount_minor,
        currency=operation.currency,
        outcome=operation.outcome,
        decline_code=operation.decline_code,
        ledger_transaction_id=refs.get(operation.ledger_transaction_id or 0),
        requested_by=operation.requested_by,
        created_at=operation.created_at,
    )


# -- the usual authorisation on PostgreSQL (migrations 0009 and 0012) ----------------------------

_AUTHORISE_OPEN = text(
    "SELECT bank_authorise_open(:key, :account, :payee_kind, :payee, :payable_code)"
)
_AUTHORISE_HOLDS = text("SELECT bank_authorise_holds(CAST(:items AS JSONB))")

# Holds a batch takes at most: each is a subtransaction, and a transaction keeps up to 64 of
# them in shared memory before every other session's snapshots get slower.
HOLDS_PER_BATCH = 32
_batches: WeakKeyDictionary[Engine, Batches[dict[str, Any], Any]] = WeakKeyDictionary()
_batches_made = threading.Lock()


def _hold(connection: Connection, item: dict[str, Any]) -> bool:
    """`bank_authorise_hold`'s writes for one authorisation (its arguments named in `item`),
    done in a batch with the other threads' of this process (`bank_authorise_holds`): every
    authorisation to a payee locks its payable account to the commit, and a batch takes that
    lock and flushes the WAL once for all its holds. False, with nothing written, when the hold
    was refused or failed: the caller's general path then decides. On a connection in a
    transaction (a test's), a batch of one in it."""
    if connection.get_execution_options().get("isolation_level") != "AUTOCOMMIT":
        return isinstance(_holds(connection, [item])[0], list)
    with _batches_made:
        batches = _batches.get(connection.engine)
        if batches is None:
            batches = _batches[connection.engine] = Batches(HOLDS_PER_BATCH)
    try:
        answer = batches.submit(item, lambda items: _holds_or_none(connection, items))
    except BatchFailed:
        return False  # the leader's error: this call's general path will meet it, or not
    return isinstance(answer, list)


def _holds(connection: Connection, items: list[dict[str, Any]]) -> list[Any]:
    """Each item's [payment id, operation id, hold id], or {sqlstate, message} (not written)."""
    answers: list[Any] = connection.execute(
        _AUTHORISE_HOLDS, {"items": json.dumps(items)}
    ).scalar_one()
    return answers


def _holds_or_none(connection: Connection, items: list[dict[str, Any]]) -> list[Any]:
    """`_holds`, or nothing for every item when the batch's statement failed (a lost
    connection, a lock wait cancelled): nothing of it was written, unless the commit itself was
    lost, which the general path's replay of each key then finds."""
    try:
        return _holds(connection, items)
    except DBAPIError:
        return [None] * len(items)
