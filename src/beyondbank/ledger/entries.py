"""Finance staff's ledger actions behind the API: resolved, parsed, posted, audited, committed."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import or_, select

from beyondbank.core import audit
from beyondbank.core.authz import Principal
from beyondbank.core.errors import FieldError, InvalidInput, NotFound, invalid
from beyondbank.core.i18n import _
from beyondbank.core.uow import UnitOfWork
from beyondbank.ledger import schemas, service
from beyondbank.ledger.models import Account, LedgerTransaction, Posting, TransactionStatus
from beyondbank.ledger.schemas import decimal_string
from beyondbank.ledger.service import Side

# Field errors name where the field is in the request these take (`body.amount`,
# `header.Idempotency-Key`); the service's own name fields of its draft (`postings.0.amount`).

KEY_PREFIX = "api:"  # a namespace of ledger keys no internal posting uses
MAX_API_KEY = service.MAX_KEY_LENGTH - len(KEY_PREFIX)


@dataclass(frozen=True, slots=True)
class Opened:
    account: Account
    created: bool  # False: already open for the same code; this is that account


# -- accounts -----------------------------------------------------------------------------------


def open_account(uow: UnitOfWork, actor: Principal, body: schemas.AccountIn) -> Opened:
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
    return Opened(account, created=not existed)


def close_account(uow: UnitOfWork, actor: Principal, account_ref: str) -> Account:
    """Close the account named by public id or code."""
    account = service.account_by_public_id(uow, account_ref)
    closed = service.close_account(uow, account.id, actor=actor)
    uow.commit()
    return closed


# -- transactions and holds -----------------------------------------------------------------------


def post(
    uow: UnitOfWork, actor: Principal, idempotency_key: str | None, body: schemas.TransactionIn
) -> service.Posted:
    """A manual journal entry; the same key and content again answer the original."""
    key = ledger_key(idempotency_key)
    corrects = _corrected(uow, body.corrects) if body.corrects else None
    posted = service.post(uow, _draft(uow, body, key, corrects=corrects), actor=actor)
    if posted.created:
        _audit(uow, actor, "ledger.transaction.posted", posted.transaction)
    uow.commit()
    return posted


def reverse(
    uow: UnitOfWork,
    actor: Principal,
    transaction_ref: str,
    idempotency_key: str | None,
    body: schemas.ReverseIn,
) -> service.Posted:
    """Correct a posted transaction by reversing it, in full or in part."""
    key = ledger_key(idempotency_key)
    original = service.get_transaction(uow, transaction_ref)
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
    uow.commit()
    return posted


def hold(
    uow: UnitOfWork, actor: Principal, idempotency_key: str | None, body: schemas.HoldIn
) -> service.Posted:
    key = ledger_key(idempotency_key)
    held = service.hold(uow, _draft(uow, body, key), actor=actor)
    if held.created:
        _audit(uow, actor, "ledger.hold.created", held.transaction)
    uow.commit()
    return held


def capture(
    uow: UnitOfWork,
    actor: Principal,
    hold_ref: str,
    idempotency_key: str | None,
    body: schemas.CaptureIn,
) -> service.Posted:
    """Post a hold, in full or (two postings) in part."""
    key = ledger_key(idempotency_key)
    the_hold = service.get_transaction(uow, hold_ref)
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
    uow.commit()
    return captured


def void(
    uow: UnitOfWork, actor: Principal, hold_ref: str, reason: str | None = None
) -> LedgerTransaction:
    """Release a hold without posting it; voiding it again changes (and audits) nothing."""
    the_hold = service.get_transaction(uow, hold_ref)
    was = the_hold.status
    voided = service.void(uow, the_hold.id, actor=actor)
    if was is not TransactionStatus.VOIDED:
        _audit(uow, actor, "ledger.hold.voided", voided, reason=reason)
    uow.commit()
    return voided


# -- resolving and parsing ------------------------------------------------------------------------


def ledger_key(key: str | None) -> str:
    """The ledger key for a request's Idempotency-Key: `api:<key>`."""
    if key is None:
        raise invalid(
            "header.Idempotency-Key", _("required: a unique key per request, reused on its retries")
        )
    if not 0 < len(key) <= MAX_API_KEY or not key.isprintable():
        raise invalid(
            "header.Idempotency-Key",
            _("1 to %(max_api_key)s printable characters", max_api_key=MAX_API_KEY),
        )
    return f"{KEY_PREFIX}{key}"


def _draft(
    uow: UnitOfWork, body: schemas.HoldIn, key: str, *, corrects: int | None = None
) -> service.Draft:
    accounts = _accounts(uow, [p.account for p in body.postings])
    errors = [
        FieldError(
            f"body.postings.{i}.account", _("no such account %(account)r", account=p.account)
        )
        for i, p in enumerate(body.postings)
        if p.account not in accounts
    ]
    if errors:
        raise InvalidInput(_("Some postings name no account."), errors=errors)
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
        raise invalid(
            "body.corrects", _("no such transaction %(public_id)r", public_id=public_id)
        ) from None


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


def _exists(uow: UnitOfWork, code: str) -> bool:
    try:
        service.account_by_public_id(uow, code)
    except NotFound:
        return False
    return True


# -- the record -------------------------------------------------------------------------------------


def _audit(
    uow: UnitOfWork,
    actor: Principal,
    action: str,
    transaction: LedgerTransaction,
    reason: str | None = None,
) -> None:
    """Staff-made entries are audited: who, what, when, and the postings."""
    out = transactions_out(uow, [transaction])[0]
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


def transactions_out(
    uow: UnitOfWork, transactions: Sequence[LedgerTransaction]
) -> list[schemas.TransactionOut]:
    """Transactions as the API shows them and the audit trail records them: with their postings
    and related transactions, in three queries in all."""
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
