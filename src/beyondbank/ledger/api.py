"""Ledger endpoints: accounts and their balances and statements, manual journal entries,
corrections and holds (finance staff; read by auditors).

Money-moving POSTs need an `Idempotency-Key`. The ledger itself enforces it: the key becomes
the transaction's unique ledger key (`api:<key>`, a namespace no internal posting uses), and
the ledger compares the content it fingerprints. The same key with the same body answers the
original transaction again (with `Idempotent-Replayed: true`); with another body, 422.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse

from beyondbank.core.authz import Permission, Principal
from beyondbank.core.errors import FieldError, InvalidInput, invalid
from beyondbank.core.i18n import _
from beyondbank.core.money import Money
from beyondbank.core.pagination import DEFAULT_LIMIT, MAX_LIMIT, Page
from beyondbank.core.uow import UnitOfWork
from beyondbank.deps import IdempotencyKey, UoW, requires
from beyondbank.ledger import entries, exports, schemas, service
from beyondbank.ledger.models import Account, OwnerKind, TransactionStatus
from beyondbank.ledger.schemas import decimal_string
from beyondbank.ledger.service import Side

router = APIRouter(tags=["ledger"])

Reader = Annotated[Principal, Depends(requires(Permission.LEDGER_READ))]
Writer = Annotated[Principal, Depends(requires(Permission.LEDGER_WRITE))]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]

CSV = "text/csv"

_ACCOUNT_PROBLEMS: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such account"},
    409: {"description": "Not allowed in the account's state (closed, still holding money)"},
    422: {"description": "Invalid fields"},
}
_MONEY_PROBLEMS: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such transaction or hold"},
    409: {
        "description": "Below a floor (`/problems/insufficient-balance`), a hold already "
        "captured or voided, a correction exceeding the original"
    },
    422: {
        "description": "Unbalanced, unknown account or currency, closed account, bad amount, "
        "Idempotency-Key missing or reused with another body"
    },
}


# -- accounts -----------------------------------------------------------------------------------


@router.get(
    "/ledger/accounts", response_model=Page[schemas.AccountOut], summary="List ledger accounts"
)
def list_accounts(
    uow: UoW,
    actor: Reader,
    cursor: str | None = None,
    limit: Limit = DEFAULT_LIMIT,
    owner_kind: OwnerKind | None = None,
    owner_ref: str | None = None,
    currency: Annotated[str | None, Query(min_length=3, max_length=3)] = None,
) -> Page[schemas.AccountOut]:
    rows, next_cursor = service.list_accounts(
        uow,
        owner_kind=owner_kind,
        owner_ref=owner_ref,
        currency=currency,
        cursor=cursor,
        limit=limit,
    )
    return Page(items=[_account_out(a) for a in rows], next_cursor=next_cursor)


@router.post(
    "/ledger/accounts",
    response_model=schemas.AccountOut,
    status_code=201,
    summary="Open an account (201), or get the one already open for the same code (200)",
    responses={**_ACCOUNT_PROBLEMS, 200: {"description": "Already open: the same account"}},
)
def open_account(body: schemas.AccountIn, uow: UoW, actor: Writer) -> JSONResponse:
    opened = entries.open_account(uow, actor, body)
    out = _account_out(opened.account).model_dump(mode="json")
    return JSONResponse(out, status_code=201 if opened.created else 200)


@router.get(
    "/ledger/accounts/{account_id}",
    response_model=schemas.AccountOut,
    summary="An account (by public id or code) with its balance now",
    responses=_ACCOUNT_PROBLEMS,
)
def get_account(account_id: str, uow: UoW, actor: Reader) -> schemas.AccountOut:
    return _account_out(service.account_by_public_id(uow, account_id))


@router.get(
    "/ledger/accounts/{account_id}/balance",
    response_model=schemas.BalanceOut,
    summary="The balance now, or as posted at a point in time (`at`)",
    responses=_ACCOUNT_PROBLEMS,
)
def get_balance(
    account_id: str, uow: UoW, actor: Reader, at: datetime | None = None
) -> schemas.BalanceOut:
    account = service.account_by_public_id(uow, account_id)
    balance = service.balance(uow, account, _aware(at, "query.at"))
    return schemas.BalanceOut.of(balance.at, balance.posted, balance.pending, balance.available)


@router.get(
    "/ledger/accounts/{account_id}/statement",
    response_model=schemas.StatementOut,
    summary="Opening balance, every posting in [from, to), closing balance (JSON, or CSV)",
    description="Send `Accept: text/csv` for the same statement as a CSV file: an opening "
    "row, one row per posting with its running balance, and a closing row.",
    responses={**_ACCOUNT_PROBLEMS, 200: {"content": {CSV: {}}}},
)
def get_statement(
    account_id: str,
    request: Request,
    uow: UoW,
    actor: Reader,
    from_: Annotated[datetime, Query(alias="from", description="Inclusive")],
    to: Annotated[datetime | None, Query(description="Exclusive; default now")] = None,
) -> Response:
    account = service.account_by_public_id(uow, account_id)
    _aware(from_, "query.from")
    end = _aware(to, "query.to") or uow.clock.now()
    with _fields("query"):
        statement = service.statement(uow, account, from_, end)
    if CSV in request.headers.get("accept", ""):
        return Response(
            exports.statement_csv(statement),
            media_type=f"{CSV}; charset=utf-8",
            headers={
                "Content-Disposition": (
                    f'attachment; filename="{exports.statement_filename(statement)}"'
                )
            },
        )
    return JSONResponse(_statement_out(statement).model_dump(mode="json", by_alias=True))


@router.post(
    "/ledger/accounts/{account_id}/close",
    response_model=schemas.AccountOut,
    summary="Close an account with nothing on it: it takes no more postings",
    responses=_ACCOUNT_PROBLEMS,
)
def close_account(account_id: str, uow: UoW, actor: Writer) -> schemas.AccountOut:
    return _account_out(entries.close_account(uow, actor, account_id))


# -- transactions -----------------------------------------------------------------------------


@router.get(
    "/ledger/transactions",
    response_model=Page[schemas.TransactionOut],
    summary="List transactions, newest first",
)
def list_transactions(
    uow: UoW,
    actor: Reader,
    cursor: str | None = None,
    limit: Limit = DEFAULT_LIMIT,
    account: Annotated[
        str | None, Query(description="An account's public id or code: its transactions")
    ] = None,
    counterparty: str | None = None,
    kind: str | None = None,
    status: TransactionStatus | None = None,
) -> Page[schemas.TransactionOut]:
    account_id = service.account_by_public_id(uow, account).id if account else None
    rows, next_cursor = service.list_transactions(
        uow,
        account_id=account_id,
        counterparty=counterparty,
        kind=kind,
        status=status,
        cursor=cursor,
        limit=limit,
    )
    return Page(items=entries.transactions_out(uow, rows), next_cursor=next_cursor)


@router.get(
    "/ledger/transactions/{transaction_id}",
    response_model=schemas.TransactionOut,
    summary="A transaction with its postings",
    responses={404: {"description": "No such transaction"}},
)
def get_transaction(transaction_id: str, uow: UoW, actor: Reader) -> schemas.TransactionOut:
    return entries.transactions_out(uow, [service.get_transaction(uow, transaction_id)])[0]


@router.post(
    "/ledger/transactions",
    response_model=schemas.TransactionOut,
    status_code=201,
    summary="Post a manual journal entry (Idempotency-Key required)",
    responses=_MONEY_PROBLEMS,
)
def post_transaction(
    body: schemas.TransactionIn, uow: UoW, actor: Writer, idempotency_key: IdempotencyKey
) -> JSONResponse:
    with _fields():
        posted = entries.post(uow, actor, idempotency_key, body)
    return _created(uow, posted)


@router.post(
    "/ledger/transactions/{transaction_id}/reverse",
    response_model=schemas.TransactionOut,
    status_code=201,
    summary="Correct a posted transaction by reversing it, in full or in part "
    "(Idempotency-Key required)",
    responses=_MONEY_PROBLEMS,
)
def reverse_transaction(
    transaction_id: str,
    body: schemas.ReverseIn,
    uow: UoW,
    actor: Writer,
    idempotency_key: IdempotencyKey,
) -> JSONResponse:
    with _fields():
        posted = entries.reverse(uow, actor, transaction_id, idempotency_key, body)
    return _created(uow, posted)


# -- holds ------------------------------------------------------------------------------------------


@router.post(
    "/ledger/holds",
    response_model=schemas.TransactionOut,
    status_code=201,
    summary="Hold amounts: they count against floors now and post on capture "
    "(Idempotency-Key required)",
    responses=_MONEY_PROBLEMS,
)
def create_hold(
    body: schemas.HoldIn, uow: UoW, actor: Writer, idempotency_key: IdempotencyKey
) -> JSONResponse:
    with _fields():
        held = entries.hold(uow, actor, idempotency_key, body)
    return _created(uow, held)


@router.post(
    "/ledger/holds/{hold_id}/capture",
    response_model=schemas.TransactionOut,
    status_code=201,
    summary="Post a hold, in full or (two postings) in part; once (Idempotency-Key required)",
    responses=_MONEY_PROBLEMS,
)
def capture_hold(
    hold_id: str,
    uow: UoW,
    actor: Writer,
    idempotency_key: IdempotencyKey,
    body: schemas.CaptureIn | None = None,
) -> JSONResponse:
    with _fields():
        captured = entries.capture(
            uow, actor, hold_id, idempotency_key, body or schemas.CaptureIn()
        )
    return _created(uow, captured)


@router.post(
    "/ledger/holds/{hold_id}/void",
    response_model=schemas.TransactionOut,
    summary="Release a hold without posting it (voiding it again changes nothing)",
    responses=_MONEY_PROBLEMS,
)
def void_hold(
    hold_id: str, uow: UoW, actor: Writer, body: schemas.VoidIn | None = None
) -> schemas.TransactionOut:
    voided = entries.void(uow, actor, hold_id, reason=body.reason if body else None)
    return entries.transactions_out(uow, [voided])[0]


# -- parsing -----------------------------------------------------------------------------------------


def _aware(value: datetime | None, field: str) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise invalid(field, _("give a time zone, e.g. 2026-11-22T10:00:00Z"))
    return value


@contextmanager
def _fields(where: str = "body") -> Iterator[None]:
    """The service names fields of its draft (`postings.0.amount`); say where they are in the
    request (`body.postings.0.amount`, the key in its header). `entries` locates its own."""
    try:
        yield
    except InvalidInput as problem:
        errors = [FieldError(_located(e.field, where), e.message) for e in problem.errors]
        raise InvalidInput(problem.detail, errors=errors, extra=problem.extra) from None


def _located(field: str, where: str) -> str:
    if field == "key":
        return "header.Idempotency-Key"
    if field.split(".", 1)[0] in ("body", "query", "header", "path"):
        return field  # located already
    return f"{where}.{field}"


# -- responses -------------------------------------------------------------------------------------


def _created(uow: UnitOfWork, posted: service.Posted) -> JSONResponse:
    """201 with the transaction; a replay answers the same, marked."""
    body = entries.transactions_out(uow, [posted.transaction])[0].model_dump(mode="json")
    headers = None if posted.created else {"Idempotent-Replayed": "true"}
    return JSONResponse(body, status_code=201, headers=headers)


def _account_out(account: Account) -> schemas.AccountOut:
    currency = account.currency
    return schemas.AccountOut(
        id=account.public_id,
        code=account.code,
        name=account.name,
        owner_kind=account.owner_kind,
        owner_ref=account.owner_ref,
        purpose=account.purpose,
        type=account.type,
        normal_side=Side.DEBIT if account.type.debit_normal else Side.CREDIT,
        currency=currency,
        status=account.status,
        floor_minor=account.floor_minor,
        floor=None
        if account.floor_minor is None
        else decimal_string(account.floor_minor, currency),
        balance=schemas.BalanceOut.of(
            None,
            Money(account.balance_minor, currency),
            Money(account.pending_minor, currency),
            Money(account.available_minor, currency),
        ),
        opened_at=account.opened_at,
        closed_at=account.closed_at,
    )


def _statement_out(statement: service.Statement) -> schemas.StatementOut:
    account, currency = statement.account, statement.account.currency

    def text(amount: int) -> str:
        return decimal_string(amount, currency)

    return schemas.StatementOut(
        account=schemas.AccountRef(
            id=account.public_id,
            code=account.code,
            name=account.name,
            type=account.type,
            currency=currency,
        ),
        from_=statement.start,
        to=statement.end,
        currency=currency,
        opening_minor=statement.opening.amount,
        closing_minor=statement.closing.amount,
        total_debits_minor=statement.total_debits,
        total_credits_minor=statement.total_credits,
        opening=text(statement.opening.amount),
        closing=text(statement.closing.amount),
        total_debits=text(statement.total_debits),
        total_credits=text(statement.total_credits),
        lines=[
            schemas.StatementLineOut(
                transaction_id=line.transaction_id,
                effective_at=line.effective_at,
                kind=line.kind,
                description=line.description,
                reference=line.reference,
                debit_minor=line.debit,
                credit_minor=line.credit,
                balance_minor=line.balance,
                debit=text(line.debit),
                credit=text(line.credit),
                balance=text(line.balance),
            )
            for line in statement.lines
        ],
    )
