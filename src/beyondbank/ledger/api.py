"""Ledger endpoints: accounts and their balances and statements, manual journal entries,
corrections and holds (finance staff; read by auditors).

Money-moving POSTs need an `Idempotency-Key`. The ledger itself enforces it: the key becomes
the transaction's unique ledger key (`api:<key>`, a namespace no internal posting uses), and
the ledger compares the content it fingerprints. The same key with the same body answers the
original transaction again (with `Idempotent-Replayed: true`); with another body, 422.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy import or_, select

from beyondbank.core import audit
from beyondbank.core.authz import Permission, Principal
from beyondbank.core.errors import FieldError, InvalidInput, NotFound, invalid
from beyondbank.core.money import Money
from beyondbank.core.pagination import DEFAULT_LIMIT, MAX_LIMIT, Page
from beyondbank.core.uow import UnitOfWork
from beyondbank.deps import IdempotencyKey, UoW, requires
from beyondbank.ledger import schemas, service
from beyondbank.ledger.models import (
    Account,
    LedgerTransaction,
    OwnerKind,
    Posting,
    TransactionStatus,
)
from beyondbank.ledger.schemas import decimal_string
from beyondbank.ledger.service import Side

router = APIRouter(tags=["ledger"])

Reader = Annotated[Principal, Depends(requires(Permission.LEDGER_READ))]
Writer = Annotated[Principal, Depends(requires(Permission.LEDGER_WRITE))]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]

KEY_PREFIX = "api:"
MAX_API_KEY = service.MAX_KEY_LENGTH - len(KEY_PREFIX)
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
    code = service.account_code(body.owner_kind, body.owner_ref, body.purpose, body.currency)
    existed = _exists(uow, code)
    account = service.open_account(
        uow,
        owner_kind=body.owner_kind,
        owner_ref=body.owner_ref,
        purpose=body.purpose,
        type=body.type,
        currency=body.currency,
        name=body.name,
        floor=body.floor_minor,
        actor=actor,
    )
    uow.commit()
    out = _account_out(account).model_dump(mode="json")
    return JSONResponse(out, status_code=200 if existed else 201)


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
        return _statement_csv(statement)
    return JSONResponse(_statement_out(statement).model_dump(mode="json", by_alias=True))


@router.post(
    "/ledger/accounts/{account_id}/close",
    response_model=schemas.AccountOut,
    summary="Close an account with nothing on it: it takes no more postings",
    responses=_ACCOUNT_PROBLEMS,
)
def close_account(account_id: str, uow: UoW, actor: Writer) -> schemas.AccountOut:
    account = service.account_by_public_id(uow, account_id)
    closed = service.close_account(uow, account.id, actor=actor)
    uow.commit()
    return _account_out(closed)


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
    return Page(items=_transactions_out(uow, rows), next_cursor=next_cursor)


@router.get(
    "/ledger/transactions/{transaction_id}",
    response_model=schemas.TransactionOut,
    summary="A transaction with its postings",
    responses={404: {"description": "No such transaction"}},
)
def get_transaction(transaction_id: str, uow: UoW, actor: Reader) -> schemas.TransactionOut:
    return _transactions_out(uow, [service.get_transaction(uow, transaction_id)])[0]


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
    key = _ledger_key(idempotency_key)
    corrects = _corrected(uow, body.corrects) if body.corrects else None
    with _fields():
        posted = service.post(uow, _draft(uow, body, key, corrects=corrects), actor=actor)
    if posted.created:
        _audit(uow, actor, "ledger.transaction.posted", posted.transaction)
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
    key = _ledger_key(idempotency_key)
    original = service.get_transaction(uow, transaction_id)
    with _fields():
        posted = service.reverse(
            uow,
            original.id,
            key=key,
            reason=body.reason,
            amount=_amount_of(uow, original, body.amount),
            effective_at=body.effective_at,
            actor=actor,
        )
    if posted.created:
        _audit(uow, actor, "ledger.transaction.reversed", posted.transaction, reason=body.reason)
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
    key = _ledger_key(idempotency_key)
    with _fields():
        held = service.hold(uow, _draft(uow, body, key), actor=actor)
    if held.created:
        _audit(uow, actor, "ledger.hold.created", held.transaction)
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
    key = _ledger_key(idempotency_key)
    body = body or schemas.CaptureIn()
    the_hold = service.get_transaction(uow, hold_id)
    with _fields():
        captured = service.capture(
            uow,
            the_hold.id,
            key=key,
            amount=_amount_of(uow, the_hold, body.amount),
            effective_at=body.effective_at,
            actor=actor,
        )
    if captured.created:
        _audit(uow, actor, "ledger.hold.captured", captured.transaction)
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
    the_hold = service.get_transaction(uow, hold_id)
    was = the_hold.status
    voided = service.void(uow, the_hold.id, actor=actor)
    if was is not TransactionStatus.VOIDED:
        _audit(uow, actor, "ledger.hold.voided", voided, reason=body.reason if body else None)
    uow.commit()
    return _transactions_out(uow, [voided])[0]


# -- parsing -----------------------------------------------------------------------------------------


def _ledger_key(key: str | None) -> str:
    if key is None:
        raise invalid(
            "header.Idempotency-Key", "required: a unique key per request, reused on its retries"
        )
    if not 0 < len(key) <= MAX_API_KEY or not key.isprintable():
        raise invalid("header.Idempotency-Key", f"1 to {MAX_API_KEY} printable characters")
    return f"{KEY_PREFIX}{key}"


def _draft(
    uow: UnitOfWork, body: schemas.HoldIn, key: str, *, corrects: int | None = None
) -> service.Draft:
    accounts = _accounts(uow, [p.account for p in body.postings])
    errors = [
        FieldError(f"body.postings.{i}.account", f"no such account {p.account!r}")
        for i, p in enumerate(body.postings)
        if p.account not in accounts
    ]
    if errors:
        raise InvalidInput("Some postings name no account.", errors=errors)
    legs = tuple(service.Leg(accounts[p.account].id, p.side, p.money) for p in body.postings)
    return service.Draft(
        key=key,
        kind=body.kind.value,
        legs=legs,
        description=body.description,
        effective_at=body.effective_at,
        counterparty=body.counterparty,
        member=body.member,
        category=body.category,
        reference=body.reference,
        corrects=corrects,
    )


def _accounts(uow: UnitOfWork, refs: Sequence[str]) -> dict[str, Account]:
    """The accounts named by public id or code, in one query, by the name used."""
    wanted = set(refs)
    found = uow.session.scalars(
        select(Account).where(or_(Account.public_id.in_(wanted), Account.code.in_(wanted)))
    ).all()
    by_ref: dict[str, Account] = {}
    for account in found:
        for ref in (account.public_id, account.code):
            if ref in wanted:
                by_ref[ref] = account
    return by_ref


def _corrected(uow: UnitOfWork, public_id: str) -> int:
    try:
        return service.get_transaction(uow, public_id).id
    except NotFound:
        raise invalid("body.corrects", f"no such transaction {public_id!r}") from None


def _amount_of(uow: UnitOfWork, transaction: LedgerTransaction, amount: str | None) -> int | None:
    """A capture's or reversal's amount, read exactly in the transaction's currency."""
    if amount is None:
        return None
    postings = service.postings_of(uow, transaction)
    currency = postings[0][1].currency if postings else "XXX"
    try:
        return schemas.parse_amount(amount, currency)
    except ValueError as error:
        raise invalid("body.amount", str(error)) from None


def _aware(value: datetime | None, field: str) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise invalid(field, "give a time zone, e.g. 2026-11-22T10:00:00Z")
    return value


def _exists(uow: UnitOfWork, code: str) -> bool:
    try:
        service.account_by_public_id(uow, code)
    except NotFound:
        return False
    return True


@contextmanager
def _fields(where: str = "body") -> Iterator[None]:
    """The service names fields of its draft (`postings.0.amount`); say where they are in the
    request (`body.postings.0.amount`, the key in its header)."""
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


# -- effects and responses --------------------------------------------------------------------------


def _audit(
    uow: UnitOfWork,
    actor: Principal,
    action: str,
    transaction: LedgerTransaction,
    reason: str | None = None,
) -> None:
    """Staff-made entries are audited: who, what, when, and the postings."""
    out = _transactions_out(uow, [transaction])[0]
    audit.record(
        uow.session,
        actor=actor,
        at=uow.clock.now(),
        action=action,
        object_type="ledger_transaction",
        object_id=transaction.public_id,
        after=out.model_dump(
            mode="json",
            include={"kind", "status", "description", "corrects", "resolves", "postings"},
        ),
        reason=reason,
    )


def _created(uow: UnitOfWork, posted: service.Posted) -> JSONResponse:
    """Commit, and answer 201 with the transaction; a replay answers the same, marked."""
    uow.commit()
    body = _transactions_out(uow, [posted.transaction])[0].model_dump(mode="json")
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


def _transactions_out(
    uow: UnitOfWork, transactions: Sequence[LedgerTransaction]
) -> list[schemas.TransactionOut]:
    """Transactions with their postings and related transactions, in three queries in all."""
    session = uow.session
    ids = [t.id for t in transactions]
    lines: dict[int, list[schemas.PostingOut]] = {i: [] for i in ids}
    for posting, public_id, code in session.execute(
        select(Posting, Account.public_id, Account.code)
        .join(Account, Account.id == Posting.account_id)
        .where(Posting.transaction_id.in_(ids))
        .order_by(Posting.id)
    ):
        amount = abs(posting.amount_minor)
        lines[posting.transaction_id].append(
            schemas.PostingOut(
                account_id=public_id,
                account_code=code,
                side=Side.DEBIT if posting.amount_minor > 0 else Side.CREDIT,
                currency=posting.currency,
                amount_minor=amount,
                amount=decimal_string(amount, posting.currency),
                pending=posting.pending,
            )
        )
    related = {t.corrects_id for t in transactions} | {t.resolves_id for t in transactions}
    related.discard(None)
    public_ids: dict[int, str] = dict(
        session.execute(
            select(LedgerTransaction.id, LedgerTransaction.public_id).where(
                LedgerTransaction.id.in_(related)
            )
        ).all()
    )
    captures: dict[int, str] = {
        hold_id: public_id
        for hold_id, public_id in session.execute(
            select(LedgerTransaction.resolves_id, LedgerTransaction.public_id).where(
                LedgerTransaction.resolves_id.in_(ids)
            )
        ).all()
        if hold_id is not None
    }
    return [
        schemas.TransactionOut(
            id=t.public_id,
            idempotency_key=t.idempotency_key,
            kind=t.kind,
            status=t.status,
            description=t.description,
            counterparty=t.counterparty_ref,
            member=t.member_ref,
            category=t.category,
            reference=t.reference,
            corrects=public_ids.get(t.corrects_id) if t.corrects_id else None,
            resolves=public_ids.get(t.resolves_id) if t.resolves_id else None,
            captured_by=captures.get(t.id),
            effective_at=t.effective_at,
            created_at=t.created_at,
            created_by=t.created_by,
            resolved_at=t.resolved_at,
            details=t.details,
            postings=lines[t.id],
        )
        for t in transactions
    ]


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


CSV_COLUMNS = (
    "effective_at",
    "transaction_id",
    "kind",
    "description",
    "reference",
    "debit",
    "credit",
    "balance",
    "currency",
)


def _statement_csv(statement: service.Statement) -> Response:
    currency = statement.account.currency

    def text(amount: int) -> str:
        return decimal_string(amount, currency)

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    opening = statement.opening.amount
    writer.writerow(
        [
            statement.start.isoformat(),
            "",
            "opening",
            "Opening balance",
            "",
            "",
            "",
            text(opening),
            currency,
        ]
    )
    for line in statement.lines:
        writer.writerow(
            [
                line.effective_at.isoformat(),
                line.transaction_id,
                _cell(line.kind),
                _cell(line.description),
                _cell(line.reference or ""),
                text(line.debit),
                text(line.credit),
                text(line.balance),
                currency,
            ]
        )
    writer.writerow(
        [
            statement.end.isoformat(),
            "",
            "closing",
            "Closing balance",
            "",
            text(statement.total_debits),
            text(statement.total_credits),
            text(statement.closing.amount),
            currency,
        ]
    )
    name = (
        f"statement-{statement.account.public_id}-"
        f"{statement.start:%Y%m%dT%H%M%SZ}-{statement.end:%Y%m%dT%H%M%SZ}.csv"
    )
    return Response(
        buffer.getvalue(),
        media_type=f"{CSV}; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


def _cell(value: str) -> str:
    """Text a spreadsheet would run as a formula is quoted with a leading apostrophe."""
    return f"'{value}" if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value
