"""Bank core administration and payment reads.

Deposit accounts: open one for a customer (with an opening balance, an overdraft and limits),
top it up or withdraw from it, block and unblock it with a reason, change its limits, close it.
Every change is audited, inside the transaction that makes it. Money moves only through the
ledger: the account's balance is its ledger account's.

Payments themselves are taken through the gateway (`bankcore.BankCoreGateway`); this module
reads them, scoped to the caller: a merchant's systems see only payments to that merchant.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from schwifty import IBAN
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from beyondbank.alliance import service as alliance
from beyondbank.core import audit, idempotency
from beyondbank.core.authz import Principal
from beyondbank.core.errors import (
    Conflict,
    FieldError,
    Forbidden,
    InvalidInput,
    InvalidTransition,
    NotFound,
    invalid,
)
from beyondbank.core.i18n import N_, _
from beyondbank.core.ids import new_public_id
from beyondbank.core.money import Money, is_currency
from beyondbank.core.pagination import paginate
from beyondbank.core.uow import UnitOfWork
from beyondbank.identity import service as identity
from beyondbank.identity.models import Customer
from beyondbank.ledger import chart
from beyondbank.ledger import service as ledger
from beyondbank.ledger.chart import Kind
from beyondbank.ledger.models import Account
from beyondbank.payments.bankcore import ledger_refs, operation_view, view_of
from beyondbank.payments.gateway import (
    OperationView,
    PayeeKind,
    PaymentStatus,
    PaymentView,
)
from beyondbank.payments.models import DepositAccount, DepositStatus, Payment, PaymentOperation

# The bank's identifier and sort code in its IBANs (GB: 4 letters, 6 digits, 8-digit account).
BANK_CODE = "THBK"
SORT_CODE = "401234"
MAX_ACCOUNT_NUMBER = 99_999_999
MAX_NUMBER_ATTEMPTS = 20

D = DepositStatus
ACCOUNT_TRANSITIONS: dict[tuple[DepositStatus, str], DepositStatus] = {
    (D.ACTIVE, "block"): D.BLOCKED,
    (D.BLOCKED, "unblock"): D.ACTIVE,
    (D.ACTIVE, "close"): D.CLOSED,
    (D.BLOCKED, "close"): D.CLOSED,
}
# The audit action's word too, so it stays English: translated only where it is shown.
_PAST = {"block": N_("blocked"), "unblock": N_("unblocked"), "close": N_("closed")}


def iban_for(account_number: int) -> str:
    """The account's IBAN: GB, check digits, bank code, sort code, 8-digit account number."""
    return str(
        IBAN.generate("GB", bank_code=BANK_CODE + SORT_CODE, account_code=f"{account_number:08d}")
    )


# -- opening -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OpenAccount:
    customer_id: str  # the customer's public id
    currency: str
    overdraft_minor: int = 0
    opening_balance_minor: int = 0
    per_payment_limit_minor: int | None = None
    daily_limit_minor: int | None = None


def open_account(
    uow: UnitOfWork, actor: Principal, request: OpenAccount, *, commit: bool = True
) -> DepositAccount:
    """Open a deposit account for a customer, one per currency, and pay in the opening balance.

    The ledger account behind it is the customer's deposit (a liability) with floor
    −overdraft: the floor is what refuses a payment the funds do not cover."""
    _check_open(request)
    customer = _customer(uow, request.customer_id)
    now = uow.clock.now()
    ledger_account = chart.customer_deposit(
        uow, customer.public_id, request.currency, overdraft=request.overdraft_minor
    )
    account = DepositAccount(
        public_id=new_public_id("dep"),
        customer_id=customer.id,
        currency=request.currency,
        status=DepositStatus.ACTIVE,
        overdraft_minor=request.overdraft_minor,
        per_payment_limit_minor=request.per_payment_limit_minor,
        daily_limit_minor=request.daily_limit_minor,
        ledger_account_id=ledger_account.id,
        opened_at=now,
        updated_at=now,
    )
    _insert_numbered(uow, account, customer)
    if request.opening_balance_minor:
        _post_deposit(
            uow,
            actor,
            account,
            customer,
            request.opening_balance_minor,
            key=f"bankcore:opening:{account.public_id}",
            description="Opening balance",
        )
    audit.record(
        uow.session,
        actor=actor,
        at=now,
        action="deposit_account.opened",
        object_type="deposit_account",
        object_id=account.public_id,
        after={
            **audit.snapshot(
                account,
                (
                    "iban",
                    "currency",
                    "status",
                    "overdraft_minor",
                    "per_payment_limit_minor",
                    "daily_limit_minor",
                ),
            ),
            "customer_id": customer.public_id,
            "opening_balance_minor": request.opening_balance_minor,
        },
    )
    if commit:
        uow.commit()
    return account


def _check_open(request: OpenAccount) -> None:
    errors: list[FieldError] = []
    if not is_currency(request.currency):
        errors.append(FieldError("body.currency", _("not an ISO 4217 currency code")))
    for name in ("overdraft_minor", "opening_balance_minor"):
        if getattr(request, name) < 0:
            errors.append(FieldError(f"body.{name}", _("must not be negative")))
    for name in ("per_payment_limit_minor", "daily_limit_minor"):
        value = getattr(request, name)
        if value is not None and value <= 0:
            errors.append(FieldError(f"body.{name}", _("must be greater than zero")))
    if errors:
        raise InvalidInput(_("The account cannot be opened as asked."), errors=errors)


def _customer(uow: UnitOfWork, public_id: str) -> Customer:
    customer = identity.customer_by_public_id(uow, public_id)
    if customer is None:
        raise invalid("body.customer_id", _("no such customer"))
    return customer


def _insert_numbered(uow: UnitOfWork, account: DepositAccount, customer: Customer) -> None:
    """Give the account the next account number (and its IBAN). The numbers are unique in the
    database: a concurrent opening that took the same number makes this one try the next."""
    session = uow.session
    for _attempt in range(MAX_NUMBER_ATTEMPTS):
        number = (
            int(
                session.scalar(select(func.coalesce(func.max(DepositAccount.account_number), 0)))
                or 0
            )
            + 1
        )
        if number > MAX_ACCOUNT_NUMBER:
            raise Conflict(_("The bank has run out of account numbers."))
        account.account_number = number
        account.iban = iban_for(number)
        try:
            with session.begin_nested():
                session.add(account)
        except IntegrityError as exc:
            if account in session:
                session.expunge(account)
            if "customer" in str(exc.orig) or _has_account(uow, customer.id, account.currency):
                raise Conflict(
                    _(
                        "Customer %(public_id)s already has a %(currency)s account.",
                        public_id=customer.public_id,
                        currency=account.currency,
                    ),
                    errors=(FieldError("body.currency", _("an account in it exists already")),),
                ) from None
            continue
        return
    raise Conflict(_("Accounts are being opened very fast right now; try again in a moment."))


def _has_account(uow: UnitOfWork, customer_id: int, currency: str) -> bool:
    return (
        uow.session.scalar(
            select(DepositAccount.id).where(
                DepositAccount.customer_id == customer_id, DepositAccount.currency == currency
            )
        )
        is not None
    )


# -- money in and out ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Transfer:
    account: DepositAccount
    transaction_id: str  # the ledger transaction
    created: bool  # False: the key was seen before with the same request


def deposit(
    uow: UnitOfWork,
    actor: Principal,
    account: DepositAccount,
    amount_minor: int,
    currency: str,
    *,
    key: str,
    description: str | None = None,
    commit: bool = True,
) -> Transfer:
    """Pay money in (a top-up): bank cash → the customer's deposit. Allowed while blocked (money
    in is never the risk a block guards against); not once closed. Idempotent by `key`."""
    _check_money(account, amount_minor, currency)
    if account.status is DepositStatus.CLOSED:
        raise _closed(account)
    customer = identity.get_customer(uow, account.customer_id)
    posted = _post_deposit(
        uow,
        actor,
        account,
        customer,
        amount_minor,
        key=f"bankcore:deposit:{key}",
        description=description or "Deposit",
    )
    if commit:
        uow.commit()
    return Transfer(account, posted.transaction.public_id, posted.created)


def withdraw(
    uow: UnitOfWork,
    actor: Principal,
    account: DepositAccount,
    amount_minor: int,
    currency: str,
    *,
    key: str,
    description: str | None = None,
    commit: bool = True,
) -> Transfer:
    """Pay money out (cash, a transfer away): the customer's deposit → bank cash. Only from an
    active account; the ledger's floor refuses what the funds and overdraft do not cover."""
    _check_money(account, amount_minor, currency)
    if account.status is not DepositStatus.ACTIVE:
        raise InvalidTransition(
            _(
                "Account %(public_id)s is %(status)s: nothing can be paid out of it.",
                public_id=account.public_id,
                status=account.status.value,
            ),
            extra={"current_status": account.status.value},
        )
    customer = identity.get_customer(uow, account.customer_id)
    money = Money(amount_minor, currency)
    posted = ledger.post(
        uow,
        ledger.Draft(
            key=f"bankcore:withdrawal:{key}",
            kind=Kind.WITHDRAWAL,
            legs=(
                ledger.Leg.debit(account.ledger_account_id, money),
                ledger.Leg.credit(chart.bank_cash(uow, currency), money),
            ),
            description=description or "Withdrawal",
            member=customer.public_id,
            reference=account.public_id,
        ),
        actor=actor,
    )
    if posted.created:
        _audit_money(uow, actor, account, "deposit_account.withdrawal", posted, amount_minor)
    if commit:
        uow.commit()
    return Transfer(account, posted.transaction.public_id, posted.created)


def _post_deposit(
    uow: UnitOfWork,
    actor: Principal,
    account: DepositAccount,
    customer: Customer,
    amount_minor: int,
    *,
    key: str,
    description: str,
) -> ledger.Posted:
    money = Money(amount_minor, account.currency)
    posted = ledger.post(
        uow,
        ledger.Draft(
            key=key,
            kind=Kind.DEPOSIT,
            legs=(
                ledger.Leg.debit(chart.bank_cash(uow, account.currency), money),
                ledger.Leg.credit(account.ledger_account_id, money),
            ),
            description=description,
            member=customer.public_id,
            reference=account.public_id,
        ),
        actor=actor,
    )
    if posted.created:
        _audit_money(uow, actor, account, "deposit_account.deposit", posted, amount_minor)
    return posted


def _audit_money(
    uow: UnitOfWork,
    actor: Principal,
    account: DepositAccount,
    action: str,
    posted: ledger.Posted,
    amount_minor: int,
) -> None:
    audit.record(
        uow.session,
        actor=actor,
        at=uow.clock.now(),
        action=action,
        object_type="deposit_account",
        object_id=account.public_id,
        after={
            "amount_minor": amount_minor,
            "currency": account.currency,
            "transaction_id": posted.transaction.public_id,
        },
    )


def _check_money(account: DepositAccount, amount_minor: int, currency: str) -> None:
    if isinstance(amount_minor, bool) or not isinstance(amount_minor, int) or amount_minor <= 0:
        raise invalid("body.amount_minor", _("a positive integer number of minor units"))
    if currency != account.currency:
        raise invalid(
            "body.currency", _("the account is kept in %(currency)s", currency=account.currency)
        )


# -- status and limits ---------------------------------------------------------------------------


def block(
    uow: UnitOfWork, actor: Principal, account: DepositAccount, reason: str
) -> DepositAccount:
    """Stop payments out of the account (authorisations are declined `account_blocked`)."""
    return _move(uow, actor, account, "block", reason)


def unblock(
    uow: UnitOfWork, actor: Principal, account: DepositAccount, reason: str | None = None
) -> DepositAccount:
    return _move(uow, actor, account, "unblock", reason)


def close(
    uow: UnitOfWork, actor: Principal, account: DepositAccount, reason: str | None = None
) -> DepositAccount:
    """Close for good: only with nothing on it and nothing held (the ledger refuses otherwise)."""
    with uow.session.begin_nested():  # both or neither, whatever the caller does next
        account = _move(uow, actor, account, "close", reason, commit=False)
        ledger.close_account(uow, account.ledger_account_id, actor=actor)
    uow.commit()
    return account


def _move(
    uow: UnitOfWork,
    actor: Principal,
    account: DepositAccount,
    action: str,
    reason: str | None,
    *,
    commit: bool = True,
) -> DepositAccount:
    """A status change by the transition table, in one conditional UPDATE; 409 naming the
    current state when it does not allow it."""
    sources = [s for (s, a) in ACCOUNT_TRANSITIONS if a == action]
    now = uow.clock.now()
    before = account.status
    target = ACCOUNT_TRANSITIONS.get((before, action))
    moved = uow.session.execute(
        update(DepositAccount)
        .where(
            DepositAccount.id == account.id,
            DepositAccount.status == before,
            DepositAccount.status.in_(sources),
        )
        .values(
            status=target or before,
            status_reason=reason,
            updated_at=now,
            **({"closed_at": now} if target is DepositStatus.CLOSED else {}),
        )
        .execution_options(synchronize_session=False)
    )
    uow.session.refresh(account)
    if target is None or moved.rowcount != 1:  # type: ignore[attr-defined]
        allowed = sorted(a for (s, a) in ACCOUNT_TRANSITIONS if s == account.status)
        hint = (
            " "
            + _(
                "From %(status)s it can be: %(allowed)s.",
                status=account.status.value,
                allowed=", ".join(allowed),
            )
            if allowed
            else ""
        )
        raise InvalidTransition(
            _(
                "Account %(public_id)s is %(status)s: it cannot be %(past)s.%(hint)s",
                public_id=account.public_id,
                status=account.status.value,
                past=_(_PAST[action]),
                hint=hint,
            ),
            extra={"current_status": account.status.value},
        )
    audit.record(
        uow.session,
        actor=actor,
        at=now,
        action=f"deposit_account.{_PAST[action]}",
        object_type="deposit_account",
        object_id=account.public_id,
        before={"status": before.value},
        after={"status": account.status.value},
        reason=reason,
    )
    if commit:
        uow.commit()
    return account


LIMIT_FIELDS = ("per_payment_limit_minor", "daily_limit_minor")


def set_limits(
    uow: UnitOfWork, actor: Principal, account: DepositAccount, changes: Mapping[str, int | None]
) -> DepositAccount:
    """Change the per-payment and daily limits (None removes one). Payments already authorised
    keep what they were authorised under."""
    unknown = sorted(set(changes) - set(LIMIT_FIELDS))
    errors = [FieldError(f"body.{name}", _("not a limit")) for name in unknown]
    for name, value in changes.items():
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int) or value <= 0
        ):
            errors.append(FieldError(f"body.{name}", _("a positive integer, or null for no limit")))
    if errors:
        raise InvalidInput(_("The limits cannot be set as asked."), errors=errors)
    if account.status is DepositStatus.CLOSED:
        raise _closed(account)
    before = audit.snapshot(account, LIMIT_FIELDS)
    for name, value in changes.items():
        setattr(account, name, value)
    account.updated_at = uow.clock.now()
    uow.session.flush()
    audit.record_changes(
        uow.session,
        actor=actor,
        at=uow.clock.now(),
        action="deposit_account.limits_changed",
        object_type="deposit_account",
        object_id=account.public_id,
        before=before,
        after=audit.snapshot(account, LIMIT_FIELDS),
    )
    uow.commit()
    return account


def _closed(account: DepositAccount) -> InvalidTransition:
    return InvalidTransition(
        _("Account %(public_id)s is closed.", public_id=account.public_id),
        extra={"current_status": "closed"},
    )


# -- reads: accounts -----------------------------------------------------------------------------


def get_account(uow: UnitOfWork, public_id: str) -> DepositAccount:
    account = uow.session.scalars(
        select(DepositAccount).where(DepositAccount.public_id == public_id)
    ).one_or_none()
    if account is None:
        raise NotFound(_("No deposit account %(public_id)r here.", public_id=public_id))
    return account


def account_for_customer(uow: UnitOfWork, customer_id: str, currency: str) -> DepositAccount | None:
    """The customer's deposit account in a currency, if any: what the shop's checkout pays from
    (the customer is known by public id after single sign-on)."""
    customer = identity.customer_by_public_id(uow, customer_id)
    if customer is None:
        return None
    return uow.session.scalars(
        select(DepositAccount).where(
            DepositAccount.customer_id == customer.id, DepositAccount.currency == currency
        )
    ).one_or_none()


def account_of_customer(uow: UnitOfWork, customer_pk: int, currency: str) -> DepositAccount | None:
    """As `account_for_customer`, for a customer known by internal id (a signed-in principal's)."""
    return uow.session.scalars(
        select(DepositAccount).where(
            DepositAccount.customer_id == customer_pk, DepositAccount.currency == currency
        )
    ).one_or_none()


def list_accounts(
    uow: UnitOfWork,
    *,
    customer_id: str | None = None,
    status: DepositStatus | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> tuple[Sequence[DepositAccount], str | None]:
    stmt = select(DepositAccount)
    if customer_id is not None:
        customer = identity.customer_by_public_id(uow, customer_id)
        stmt = stmt.where(DepositAccount.customer_id == (customer.id if customer else None))
    if status is not None:
        stmt = stmt.where(DepositAccount.status == status)
    return paginate(uow.session, stmt, DepositAccount.id, cursor=cursor, limit=limit)


@dataclass(frozen=True, slots=True)
class AccountFigures:
    """What the ledger says about a deposit account, and what the customer can still spend."""

    customer_id: str
    ledger_account_id: str
    balance_minor: int  # posted
    pending_minor: int  # held by authorisations not captured yet
    available_minor: int  # posted − pending
    spendable_minor: int  # available + overdraft: the most the next payment can be


def figures(uow: UnitOfWork, accounts: Sequence[DepositAccount]) -> dict[int, AccountFigures]:
    """Balances and owners of several accounts in two queries."""
    if not accounts:
        return {}
    ledger_ids = {a.ledger_account_id for a in accounts}
    books = {
        a.id: a
        for a in uow.session.scalars(
            select(Account)
            .where(Account.id.in_(ledger_ids))
            .execution_options(populate_existing=True)
        )
    }
    customers = identity.customers_by_ids(uow, {a.customer_id for a in accounts})
    out = {}
    for account in accounts:
        book = books[account.ledger_account_id]
        out[account.id] = AccountFigures(
            customer_id=customers[account.customer_id].public_id,
            ledger_account_id=book.public_id,
            balance_minor=book.balance_minor,
            pending_minor=book.pending_minor,
            available_minor=book.available_minor,
            spendable_minor=book.available_minor + account.overdraft_minor,
        )
    return out


# -- reads: payments -----------------------------------------------------------------------------


def may_read_bank_core(actor: Principal) -> None:
    """Deposit accounts and balances are for the bank's own staff (and auditors), never for a
    partner's or merchant's systems, whatever payments scope they hold."""
    if not (actor.is_staff or actor.kind == "system"):
        raise Forbidden(_("Deposit accounts are for the bank's staff only."))


def may_pay_to(uow: UnitOfWork, actor: Principal, payee_kind: PayeeKind, payee_id: str) -> None:
    """A merchant's own systems take payments to that merchant only. Ends the read's
    transaction: nothing is held while the gateway runs."""
    try:
        if actor.merchant_id is None:
            return
        own = alliance.merchant_public_ids(uow, {actor.merchant_id}).get(actor.merchant_id)
        if payee_kind is not PayeeKind.MERCHANT or payee_id != own:
            raise Forbidden(_("A merchant's systems take payments to that merchant only."))
    finally:
        uow.rollback()


def ensure_payment_visible(uow: UnitOfWork, actor: Principal, public_id: str) -> None:
    """404 unless the caller may act on the payment. Ends the read's transaction: nothing is
    held while the gateway runs."""
    try:
        get_payment(uow, actor, public_id)
    finally:
        uow.rollback()


def get_payment(uow: UnitOfWork, actor: Principal, public_id: str) -> Payment:
    """The payment, if the caller may see it: another merchant's answers 404."""
    payment = uow.session.scalars(
        select(Payment).where(Payment.public_id == public_id)
    ).one_or_none()
    if payment is None or not _visible(uow, actor, payment):
        raise NotFound(_("No payment %(public_id)r here.", public_id=public_id))
    return payment


def _visible(uow: UnitOfWork, actor: Principal, payment: Payment) -> bool:
    if actor.merchant_id is None:
        return True
    own = alliance.merchant_public_ids(uow, {actor.merchant_id}).get(actor.merchant_id)
    return payment.payee_kind is PayeeKind.MERCHANT and payment.payee_ref == own


@dataclass(frozen=True, slots=True)
class Hold:
    """Where an authorisation stands: its status and when its hold runs out."""

    payment_id: str
    status: PaymentStatus
    expires_at: datetime | None


def holds(uow: UnitOfWork, payment_ids: Collection[str]) -> dict[str, Hold]:
    """The status and expiry of each of these payments (one query; for a caller's job that
    renews authorisations before they run out). Unknown ids are left out."""
    if not payment_ids:
        return {}
    rows = uow.session.execute(
        select(Payment.public_id, Payment.status, Payment.expires_at).where(
            Payment.public_id.in_(list(payment_ids))
        )
    )
    return {row.public_id: Hold(row.public_id, row.status, row.expires_at) for row in rows}


@dataclass(frozen=True, slots=True)
class PaymentFilters:
    account_id: str | None = None
    status: PaymentStatus | None = None
    payee_kind: PayeeKind | None = None
    payee_id: str | None = None
    reference: str | None = None


def list_payments(
    uow: UnitOfWork,
    actor: Principal,
    filters: PaymentFilters,
    *,
    cursor: str | None = None,
    limit: int = 50,
) -> tuple[Sequence[Payment], str | None]:
    """Newest first. A merchant's systems see the payments to that merchant only."""
    stmt = select(Payment)
    if actor.merchant_id is not None:
        own = alliance.merchant_public_ids(uow, {actor.merchant_id}).get(actor.merchant_id)
        stmt = stmt.where(Payment.payee_kind == PayeeKind.MERCHANT, Payment.payee_ref == own)
    if filters.account_id is not None:
        stmt = stmt.where(
            Payment.deposit_account_id.in_(
                select(DepositAccount.id).where(DepositAccount.public_id == filters.account_id)
            )
        )
    if filters.status is not None:
        stmt = stmt.where(Payment.status == filters.status)
    if filters.payee_kind is not None:
        stmt = stmt.where(Payment.payee_kind == filters.payee_kind)
    if filters.payee_id is not None:
        stmt = stmt.where(Payment.payee_ref == filters.payee_id)
    if filters.reference is not None:
        stmt = stmt.where(Payment.reference == filters.reference)
    return paginate(uow.session, stmt, Payment.id, cursor=cursor, limit=limit, descending=True)


def payment_views(uow: UnitOfWork, payments: Sequence[Payment]) -> list[PaymentView]:
    return [view_of(uow, p) for p in payments]


def operations_of(uow: UnitOfWork, payment: Payment) -> list[OperationView]:
    """Every call made on the payment, oldest first."""
    rows = uow.session.scalars(
        select(PaymentOperation)
        .where(PaymentOperation.payment_id == payment.id)
        .order_by(PaymentOperation.id)
    ).all()
    refs = ledger_refs(uow, (r.ledger_transaction_id for r in rows))
    return [operation_view(uow, r, refs) for r in rows]


# -- HTTP idempotency for the bank core's own POSTs -------------------------------------------


@dataclass(frozen=True, slots=True)
class Outcome:
    status_code: int
    body: dict[str, Any]
    replayed: bool


def idempotent(
    uow: UnitOfWork,
    actor: Principal,
    *,
    key: str,
    fingerprint: str,
    lock_seconds: int,
    status_code: int,
    work: Callable[[], dict[str, Any]],
) -> Outcome:
    """Run `work` (which writes without committing and returns the response body) once per
    `Idempotency-Key`: the response is stored in the same transaction as the work."""
    held = idempotency.claim(
        uow,
        scope=f"bankcore:{actor.kind}:{actor.public_id}",
        key=key,
        fingerprint=fingerprint,
        lock_seconds=lock_seconds,
    )
    if isinstance(held, idempotency.Replay):
        return Outcome(held.status_code, held.response, replayed=True)
    try:
        body = work()
        held.complete(uow, status_code, body)
        uow.commit()
    except BaseException:
        uow.rollback()
        idempotency.release(uow, held)
        raise
    return Outcome(status_code, body, replayed=False)
