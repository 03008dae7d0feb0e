"""Payments endpoints: take payments through the bank's gateway; administer the bank core.

Calls that move money take an `Idempotency-Key` header. For payments the key goes to the
gateway itself (scoped to the caller), so a retry answers what the first call answered
wherever the payment was taken from. No database transaction of the request is open while
the gateway runs: the gateway is the bank, and nobody holds a lock across a call to the bank.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse

from beyondbank.core.authz import Permission, Principal
from beyondbank.core.errors import invalid
from beyondbank.core.i18n import _
from beyondbank.core.idempotency import check_key, fingerprint
from beyondbank.core.pagination import DEFAULT_LIMIT, MAX_LIMIT, Page
from beyondbank.core.uow import UnitOfWork
from beyondbank.deps import IdempotencyKey, SettingsDep, UoW, requires
from beyondbank.payments import schemas, service
from beyondbank.payments.bankcore import BankCoreGateway
from beyondbank.payments.gateway import (
    DECLINED,
    AuthoriseRequest,
    PayeeKind,
    PaymentDeclined,
    PaymentGateway,
    PaymentResult,
    PaymentStatus,
)
from beyondbank.payments.models import DepositAccount, DepositStatus

router = APIRouter(tags=["payments"])

Payer = Annotated[Principal, Depends(requires(Permission.PAYMENTS_CREATE))]
Reader = Annotated[Principal, Depends(requires(Permission.PAYMENTS_READ))]
Manager = Annotated[Principal, Depends(requires(Permission.BANK_CORE_MANAGE))]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]


def bank_core(request: Request, settings: SettingsDep) -> BankCoreGateway:
    return BankCoreGateway(
        request.app.state.session_factory,
        request.app.state.clock,
        timezone=settings.default_timezone,
    )


def gateway(
    request: Request, core: Annotated[BankCoreGateway, Depends(bank_core)]
) -> PaymentGateway:
    """The bank's gateway: `app.state.payment_gateway` when a real bank's adapter is plugged
    in, else the built-in bank core."""
    plugged: PaymentGateway | None = getattr(request.app.state, "payment_gateway", None)
    return plugged or core


Gateway = Annotated[PaymentGateway, Depends(gateway)]
BankCore = Annotated[BankCoreGateway, Depends(bank_core)]

_PAYMENT_PROBLEMS: dict[int | str, dict[str, Any]] = {
    402: {"description": "Declined by the bank (`/problems/payment-declined`, `decline_code`)"},
    404: {"description": "No such payment, or another merchant's"},
    409: {"description": "Not allowed in the payment's state; more than is left to refund"},
    422: {"description": "Invalid fields; Idempotency-Key missing, or reused for another request"},
}


def _key(actor: Principal, idempotency_key: str | None) -> str:
    """The caller's key, scoped to the caller: two callers never share a payment by a key."""
    if idempotency_key is None:
        raise invalid(
            "header.Idempotency-Key", _("required: a unique key per call, reused on retries")
        )
    return f"api:{actor.public_id}:{check_key(idempotency_key)}"


def _answer(result: PaymentResult, status_code: int) -> JSONResponse:
    if not result.approved:
        raise PaymentDeclined(
            _(result.payment.decline_message or DECLINED),
            extra={
                "decline_code": result.payment.decline_code.value
                if result.payment.decline_code
                else None,
                "payment_id": result.payment.id,
                "operation_id": result.operation.id,
            },
        )
    body = schemas.PaymentResultOut(
        payment=schemas.PaymentOut.of(result.payment),
        operation=schemas.OperationOut.of(result.operation),
    )
    headers = {"Idempotent-Replayed": "true"} if result.replayed else None
    return JSONResponse(body.model_dump(mode="json"), status_code=status_code, headers=headers)


# -- payments ------------------------------------------------------------------------------------


@router.post(
    "/payments",
    response_model=schemas.PaymentResultOut,
    status_code=201,
    summary="Authorise a payment from a customer's deposit account (Idempotency-Key required)",
    responses=_PAYMENT_PROBLEMS,
)
def authorise(
    body: schemas.AuthoriseIn,
    uow: UoW,
    actor: Payer,
    bank: Gateway,
    idempotency_key: IdempotencyKey,
) -> JSONResponse:
    key = _key(actor, idempotency_key)
    service.may_pay_to(uow, actor, body.payee_kind, body.payee_id)
    request = AuthoriseRequest(**body.model_dump())
    return _answer(bank.authorise(request, key=key, actor=actor), 201)


@router.post(
    "/payments/{payment_id}/capture",
    response_model=schemas.PaymentResultOut,
    summary="Capture an authorisation in full or in part, once (the rest is released)",
    responses=_PAYMENT_PROBLEMS,
)
def capture(
    payment_id: str,
    uow: UoW,
    actor: Payer,
    bank: Gateway,
    idempotency_key: IdempotencyKey,
    body: schemas.AmountIn | None = None,
) -> JSONResponse:
    key = _key(actor, idempotency_key)
    service.ensure_payment_visible(uow, actor, payment_id)
    amount = body.amount_minor if body else None
    return _answer(bank.capture(payment_id, key=key, amount_minor=amount, actor=actor), 200)


@router.post(
    "/payments/{payment_id}/void",
    response_model=schemas.PaymentResultOut,
    summary="Release an authorisation without capturing it",
    responses=_PAYMENT_PROBLEMS,
)
def void(
    payment_id: str, uow: UoW, actor: Payer, bank: Gateway, idempotency_key: IdempotencyKey
) -> JSONResponse:
    key = _key(actor, idempotency_key)
    service.ensure_payment_visible(uow, actor, payment_id)
    return _answer(bank.void(payment_id, key=key, actor=actor), 200)


@router.post(
    "/payments/{payment_id}/refund",
    response_model=schemas.PaymentResultOut,
    summary="Refund a captured payment in full (what is left) or in part",
    responses=_PAYMENT_PROBLEMS,
)
def refund(
    payment_id: str,
    uow: UoW,
    actor: Payer,
    bank: Gateway,
    idempotency_key: IdempotencyKey,
    body: schemas.AmountIn | None = None,
) -> JSONResponse:
    key = _key(actor, idempotency_key)
    service.ensure_payment_visible(uow, actor, payment_id)
    amount = body.amount_minor if body else None
    return _answer(bank.refund(payment_id, key=key, amount_minor=amount, actor=actor), 200)


@router.get("/payments", response_model=Page[schemas.PaymentOut], summary="List payments")
def list_payments(
    uow: UoW,
    actor: Reader,
    cursor: str | None = None,
    limit: Limit = DEFAULT_LIMIT,
    account_id: str | None = None,
    status: PaymentStatus | None = None,
    payee_kind: PayeeKind | None = None,
    payee_id: str | None = None,
    reference: Annotated[str | None, Query(max_length=80)] = None,
) -> Page[schemas.PaymentOut]:
    filters = service.PaymentFilters(
        account_id=account_id,
        status=status,
        payee_kind=payee_kind,
        payee_id=payee_id,
        reference=reference,
    )
    rows, next_cursor = service.list_payments(uow, actor, filters, cursor=cursor, limit=limit)
    views = service.payment_views(uow, rows)
    return Page(items=[schemas.PaymentOut.of(v) for v in views], next_cursor=next_cursor)


@router.get(
    "/payments/{payment_id}",
    response_model=schemas.PaymentDetailOut,
    summary="A payment and every call made on it",
    responses={404: {"description": "No such payment, or another merchant's"}},
)
def get_payment(payment_id: str, uow: UoW, actor: Reader) -> schemas.PaymentDetailOut:
    payment = service.get_payment(uow, actor, payment_id)
    view = service.payment_views(uow, [payment])[0]
    return schemas.PaymentDetailOut(
        **schemas.PaymentOut.of(view).model_dump(),
        operations=[schemas.OperationOut.of(o) for o in service.operations_of(uow, payment)],
    )


# -- bank core: deposit accounts -----------------------------------------------------------------

_ACCOUNT_PROBLEMS: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such deposit account"},
    409: {"description": "Not allowed in the account's state; not enough funds"},
    422: {"description": "Invalid fields; Idempotency-Key missing, or reused for another request"},
}


def _money_call(
    request: Request,
    body: Any,
    uow: UnitOfWork,
    actor: Principal,
    settings: SettingsDep,
    idempotency_key: str | None,
    work: Any,
) -> JSONResponse:
    if idempotency_key is None:
        raise invalid(
            "header.Idempotency-Key", _("required: a unique key per call, reused on retries")
        )
    outcome = service.idempotent(
        uow,
        actor,
        key=idempotency_key,
        fingerprint=fingerprint("POST", request.url.path, body.model_dump(mode="json")),
        lock_seconds=settings.idempotency_in_flight_seconds,
        status_code=201,
        work=work,
    )
    headers = {"Idempotent-Replayed": "true"} if outcome.replayed else None
    return JSONResponse(outcome.body, status_code=outcome.status_code, headers=headers)


@router.post(
    "/bank-core/accounts",
    response_model=schemas.DepositAccountOut,
    status_code=201,
    summary="Open a deposit account for a customer, with an opening balance (Idempotency-Key)",
    responses=_ACCOUNT_PROBLEMS,
)
def open_account(
    body: schemas.OpenAccountIn,
    request: Request,
    uow: UoW,
    actor: Manager,
    settings: SettingsDep,
    idempotency_key: IdempotencyKey,
) -> JSONResponse:
    def work() -> dict[str, Any]:
        opened = service.open_account(
            uow, actor, service.OpenAccount(**body.model_dump()), commit=False
        )
        return _account_out(uow, opened).model_dump(mode="json")

    return _money_call(request, body, uow, actor, settings, idempotency_key, work)


@router.get(
    "/bank-core/accounts",
    response_model=Page[schemas.DepositAccountOut],
    summary="List deposit accounts, with their balances",
)
def list_accounts(
    uow: UoW,
    actor: Reader,
    cursor: str | None = None,
    limit: Limit = DEFAULT_LIMIT,
    customer_id: str | None = None,
    status: DepositStatus | None = None,
) -> Page[schemas.DepositAccountOut]:
    service.may_read_bank_core(actor)
    rows, next_cursor = service.list_accounts(
        uow, customer_id=customer_id, status=status, cursor=cursor, limit=limit
    )
    return Page(items=_accounts_out(uow, rows), next_cursor=next_cursor)


@router.get(
    "/bank-core/accounts/{account_id}",
    response_model=schemas.DepositAccountOut,
    summary="A deposit account and its balance: posted, pending, available",
    responses=_ACCOUNT_PROBLEMS,
)
def get_account(account_id: str, uow: UoW, actor: Reader) -> schemas.DepositAccountOut:
    service.may_read_bank_core(actor)
    return _account_out(uow, service.get_account(uow, account_id))


@router.patch(
    "/bank-core/accounts/{account_id}",
    response_model=schemas.DepositAccountOut,
    summary="Set or remove the per-payment and daily limits",
    responses=_ACCOUNT_PROBLEMS,
)
def set_limits(
    account_id: str, body: schemas.LimitsPatch, uow: UoW, actor: Manager
) -> schemas.DepositAccountOut:
    account = service.get_account(uow, account_id)
    changes = {name: getattr(body, name) for name in body.model_fields_set}
    return _account_out(uow, service.set_limits(uow, actor, account, changes))


@router.post(
    "/bank-core/accounts/{account_id}/block",
    response_model=schemas.DepositAccountOut,
    summary="Block payments out of the account, with the reason",
    responses=_ACCOUNT_PROBLEMS,
)
def block(
    account_id: str, body: schemas.ReasonIn, uow: UoW, actor: Manager
) -> schemas.DepositAccountOut:
    account = service.get_account(uow, account_id)
    return _account_out(uow, service.block(uow, actor, account, body.reason))


@router.post(
    "/bank-core/accounts/{account_id}/unblock",
    response_model=schemas.DepositAccountOut,
    responses=_ACCOUNT_PROBLEMS,
)
def unblock(
    account_id: str, uow: UoW, actor: Manager, body: schemas.OptionalReasonIn | None = None
) -> schemas.DepositAccountOut:
    account = service.get_account(uow, account_id)
    reason = body.reason if body else None
    return _account_out(uow, service.unblock(uow, actor, account, reason))


@router.post(
    "/bank-core/accounts/{account_id}/close",
    response_model=schemas.DepositAccountOut,
    summary="Close an account with nothing on it and nothing held",
    responses=_ACCOUNT_PROBLEMS,
)
def close(
    account_id: str, uow: UoW, actor: Manager, body: schemas.OptionalReasonIn | None = None
) -> schemas.DepositAccountOut:
    account = service.get_account(uow, account_id)
    reason = body.reason if body else None
    return _account_out(uow, service.close(uow, actor, account, reason))


@router.post(
    "/bank-core/accounts/{account_id}/deposits",
    response_model=schemas.TransferOut,
    status_code=201,
    summary="Pay money into the account (a top-up; Idempotency-Key required)",
    responses=_ACCOUNT_PROBLEMS,
)
def deposit(
    account_id: str,
    body: schemas.MoneyIn,
    request: Request,
    uow: UoW,
    actor: Manager,
    settings: SettingsDep,
    idempotency_key: IdempotencyKey,
) -> JSONResponse:
    def work() -> dict[str, Any]:
        account = service.get_account(uow, account_id)
        done = service.deposit(
            uow,
            actor,
            account,
            body.amount_minor,
            body.currency,
            key=f"api:{actor.public_id}:{idempotency_key}",
            description=body.description,
            commit=False,
        )
        return _transfer_out(uow, done)

    return _money_call(request, body, uow, actor, settings, idempotency_key, work)


@router.post(
    "/bank-core/accounts/{account_id}/withdrawals",
    response_model=schemas.TransferOut,
    status_code=201,
    summary="Pay money out of the account (Idempotency-Key required)",
    responses=_ACCOUNT_PROBLEMS,
)
def withdraw(
    account_id: str,
    body: schemas.MoneyIn,
    request: Request,
    uow: UoW,
    actor: Manager,
    settings: SettingsDep,
    idempotency_key: IdempotencyKey,
) -> JSONResponse:
    def work() -> dict[str, Any]:
        account = service.get_account(uow, account_id)
        done = service.withdraw(
            uow,
            actor,
            account,
            body.amount_minor,
            body.currency,
            key=f"api:{actor.public_id}:{idempotency_key}",
            description=body.description,
            commit=False,
        )
        return _transfer_out(uow, done)

    return _money_call(request, body, uow, actor, settings, idempotency_key, work)


@router.post(
    "/bank-core/authorisations/expire",
    response_model=schemas.ExpiredOut,
    summary="Expire the authorisations whose time has run out, releasing their holds",
)
def expire_authorisations(actor: Manager, core: BankCore) -> schemas.ExpiredOut:
    return schemas.ExpiredOut(expired=core.expire_due())


# -- response shapes ----------------------------------------------------------------------------


def _transfer_out(uow: UnitOfWork, done: service.Transfer) -> dict[str, Any]:
    body = schemas.TransferOut(
        account=_account_out(uow, done.account), transaction_id=done.transaction_id
    )
    return body.model_dump(mode="json")


def _account_out(uow: UnitOfWork, account: DepositAccount) -> schemas.DepositAccountOut:
    return _accounts_out(uow, [account])[0]


def _accounts_out(
    uow: UnitOfWork, accounts: Sequence[DepositAccount]
) -> list[schemas.DepositAccountOut]:
    figures = service.figures(uow, accounts)
    out = []
    for account in accounts:
        fig = figures[account.id]
        out.append(
            schemas.DepositAccountOut(
                id=account.public_id,
                customer_id=fig.customer_id,
                iban=account.iban,
                currency=account.currency,
                status=account.status,
                status_reason=account.status_reason,
                overdraft_minor=account.overdraft_minor,
                per_payment_limit_minor=account.per_payment_limit_minor,
                daily_limit_minor=account.daily_limit_minor,
                ledger_account_id=fig.ledger_account_id,
                balance=schemas.BalanceOut(
                    balance_minor=fig.balance_minor,
                    pending_minor=fig.pending_minor,
                    available_minor=fig.available_minor,
                    spendable_minor=fig.spendable_minor,
                ),
                opened_at=account.opened_at,
                updated_at=account.updated_at,
                closed_at=account.closed_at,
            )
        )
    return out
