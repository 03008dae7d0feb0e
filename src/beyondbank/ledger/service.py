"""The ledger's single-transaction write path and its reads: accounts, posting, holds, balances.

Every function works inside the caller's unit of work and never commits: the business change
and its money movement commit together or not at all. A refused post (unbalanced, closed
account, below a floor) leaves the caller's transaction as it was: on SQLite the post runs in a
savepoint; on PostgreSQL it is one call of `ledger_post` (migration 0005), which checks
everything before it writes anything.

Concurrency is the database's job. Totals change by conditional UPDATEs, taken in account-id
order so that concurrent posts queue instead of deadlocking; a floor is part of the UPDATE's
WHERE clause and, underneath, of a CHECK constraint. The idempotency key is unique: a racing
duplicate inserts nothing (`ON CONFLICT DO NOTHING`) and is then compared by fingerprint.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, NoReturn, cast

from sqlalchemy import (
    BigInteger,
    Table,
    Update,
    bindparam,
    case,
    func,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import RowMapping
from sqlalchemy.orm import Session, make_transient_to_detached
from sqlalchemy.orm.util import identity_key

from beyondbank.core import audit
from beyondbank.core.authz import SYSTEM, Principal
from beyondbank.core.errors import (
    Conflict,
    FieldError,
    IdempotencyKeyReused,
    InsufficientBalance,
    InvalidInput,
    InvalidTransition,
    NotFound,
    invalid,
)
from beyondbank.core.i18n import N_, _
from beyondbank.core.ids import new_public_id
from beyondbank.core.money import Money
from beyondbank.core.pagination import paginate
from beyondbank.core.uow import UnitOfWork
from beyondbank.ledger.models import (
    Account,
    AccountStatus,
    AccountType,
    LedgerTransaction,
    OwnerKind,
    Posting,
    TransactionStatus,
)

MAX_KEY_LENGTH = 255
MAX_KIND_LENGTH = 60
_CANNOT_POST = N_("The transaction cannot be posted as it stands.")


class Side(StrEnum):
    DEBIT = "debit"
    CREDIT = "credit"


@dataclass(frozen=True, slots=True)
class Leg:
    """One line of a draft: a positive amount debited or credited to an account."""

    account_id: int
    side: Side
    amount: Money

    @classmethod
    def debit(cls, account: Account | int, amount: Money) -> Leg:
        return cls(_account_id(account), Side.DEBIT, amount)

    @classmethod
    def credit(cls, account: Account | int, amount: Money) -> Leg:
        return cls(_account_id(account), Side.CREDIT, amount)

    @property
    def signed(self) -> int:
        return self.amount.amount if self.side is Side.DEBIT else -self.amount.amount


@dataclass(frozen=True, slots=True)
class Draft:
    """A transaction to post. `key` makes it idempotent; the rest is its content (fingerprinted).

    `counterparty` (a merchant's or partner's public id), `member`, `category` and `reference`
    are the dimensions settlement and reports group by.
    """

    key: str
    kind: str
    legs: tuple[Leg, ...]
    description: str = ""
    effective_at: datetime | None = None
    counterparty: str | None = None
    member: str | None = None
    category: str | None = None
    reference: str | None = None
    corrects: int | None = None
    details: Mapping[str, Any] = field(default_factory=dict)
    resolves: int | None = None  # set by `capture` only


@dataclass(frozen=True, slots=True)
class Posted:
    transaction: LedgerTransaction
    created: bool  # False: the key was seen before with the same content; this is the original


@dataclass(frozen=True, slots=True)
class Balance:
    account: Account
    at: datetime | None
    posted: Money  # on the account's normal side
    pending: Money  # held, will lower the balance when posted
    available: Money  # posted − pending: what a floor is measured against


@dataclass(frozen=True, slots=True)
class StatementLine:
    transaction_id: str
    effective_at: datetime
    kind: str
    description: str
    reference: str | None
    debit: int
    credit: int
    balance: int  # running, on the account's normal side


@dataclass(frozen=True, slots=True)
class Statement:
    account: Account
    start: datetime
    end: datetime
    opening: Money
    lines: tuple[StatementLine, ...]
    closing: Money

    @property
    def total_debits(self) -> int:
        return sum(line.debit for line in self.lines)

    @property
    def total_credits(self) -> int:
        return sum(line.credit for line in self.lines)


# -- accounts ------------------------------------------------------------------------------------


def account_code(owner_kind: OwnerKind, owner_ref: str | None, purpose: str, currency: str) -> str:
    return f"{owner_kind.value}:{owner_ref or '-'}:{purpose}:{currency}"


def open_account(
    uow: UnitOfWork,
    *,
    owner_kind: OwnerKind,
    purpose: str,
    type: AccountType,
    currency: str,
    owner_ref: str | None = None,
    name: str | None = None,
    floor: int | None = None,
    actor: Principal = SYSTEM,
) -> Account:
    """The account for (owner, purpose, currency), opened on first use. Reopening is idempotent;
    asking for the same code with a different type or floor is a conflict."""
    Money(0, currency)  # refuses an unknown currency
    code = account_code(owner_kind, owner_ref, purpose, currency)
    session = uow.session
    values = {
        "public_id": new_public_id("acc"),
        "code": code,
        "name": name
        or f"{owner_kind.value} {owner_ref or ''} {purpose} {currency}".replace("  ", " "),
        "owner_kind": owner_kind,
        "owner_ref": owner_ref,
        "purpose": purpose,
        "type": type,
        "currency": currency,
        "status": AccountStatus.OPEN,
        "floor_minor": floor,
        "debits_posted": 0,
        "credits_posted": 0,
        "debits_pending": 0,
        "credits_pending": 0,
        "opened_at": uow.clock.now(),
    }
    inserted = session.execute(
        _insert_ignoring_conflict(session, Account, values, "code").returning(Account.id)
    ).scalar_one_or_none()
    account = session.scalars(select(Account).where(Account.code == code)).one()
    if inserted is not None:
        audit.record(
            session,
            actor=actor,
            at=uow.clock.now(),
            action="ledger.account.opened",
            object_type="ledger_account",
            object_id=account.public_id,
            after=audit.snapshot(account, ("code", "type", "currency", "floor_minor")),
        )
    elif account.type != type or account.floor_minor != floor:
        raise Conflict(
            _(
                "Account %(code)s exists as %(type)s with floor %(floor_minor)s.",
                code=code,
                type=account.type.value,
                floor_minor=account.floor_minor,
            ),
            extra={"account_id": account.public_id},
        )
    return account


def account_ids_by_code(uow: UnitOfWork, codes: Iterable[str]) -> dict[str, int]:
    """The ids of the accounts already open under these codes (others are simply absent), in
    one query per few thousand codes: for callers that name many accounts at once."""
    wanted = sorted(set(codes))
    found: dict[str, int] = {}
    for start in range(0, len(wanted), 5_000):
        rows = uow.session.execute(
            select(Account.code, Account.id).where(Account.code.in_(wanted[start : start + 5_000]))
        ).all()
        found.update((code, account_id) for code, account_id in rows)
    return found


def close_account(uow: UnitOfWork, account_id: int, *, actor: Principal) -> Account:
    """Close an account with nothing on it; a closed account takes no more postings."""
    account = get_account(uow, account_id)
    closed = uow.session.execute(
        update(Account)
        .where(
            Account.id == account_id,
            Account.status == AccountStatus.OPEN,
            Account.debits_posted == Account.credits_posted,
            Account.debits_pending == 0,
            Account.credits_pending == 0,
        )
        .values(status=AccountStatus.CLOSED, closed_at=uow.clock.now())
        .execution_options(synchronize_session=False)
    )
    uow.session.refresh(account)
    if closed.rowcount != 1:  # type: ignore[attr-defined]
        if account.status is AccountStatus.CLOSED:
            raise InvalidTransition(
                _("Account %(public_id)s is already closed.", public_id=account.public_id),
                extra={"current_status": account.status.value},
            )
        raise Conflict(
            _(
                "Account %(public_id)s still holds %(balance)s and %(pending)s in pending holds: "
                "move or release them before closing.",
                public_id=account.public_id,
                balance=account.balance_minor,
                pending=account.debits_pending + account.credits_pending,
            ),
            extra={"current_status": account.status.value},
        )
    audit.record(
        uow.session,
        actor=actor,
        at=uow.clock.now(),
        action="ledger.account.closed",
        object_type="ledger_account",
        object_id=account.public_id,
        before={"status": "open"},
        after={"status": "closed"},
    )
    return account


def get_account(uow: UnitOfWork, account_id: int) -> Account:
    account = uow.session.get(Account, account_id)
    if account is None:
        raise NotFound(_("No ledger account %(account_id)s.", account_id=account_id))
    return account


def account_by_public_id(uow: UnitOfWork, public_id: str) -> Account:
    account = uow.session.scalars(
        select(Account).where((Account.public_id == public_id) | (Account.code == public_id))
    ).one_or_none()
    if account is None:
        raise NotFound(_("No ledger account %(public_id)r.", public_id=public_id))
    return account


def list_accounts(
    uow: UnitOfWork,
    *,
    owner_kind: OwnerKind | None = None,
    owner_ref: str | None = None,
    currency: str | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> tuple[Sequence[Account], str | None]:
    stmt = select(Account)
    if owner_kind is not None:
        stmt = stmt.where(Account.owner_kind == owner_kind)
    if owner_ref is not None:
        stmt = stmt.where(Account.owner_ref == owner_ref)
    if currency is not None:
        stmt = stmt.where(Account.currency == currency)
    return paginate(uow.session, stmt, Account.id, cursor=cursor, limit=limit)


# -- drafts --------------------------------------------------------------------------------------


# What `json.dumps(…, sort_keys=True, separators=(",", ":"), default=str)` builds on every call.
_CANONICAL_JSON = json.JSONEncoder(sort_keys=True, separators=(",", ":"), default=str)


def fingerprint_of(draft: Draft) -> str:
    """A SHA-256 of the draft's content in canonical form: legs in a stable order, times in UTC.

    Both write paths use it, so a key posted through one is recognised by the other. Built by
    hand rather than through a JSON dump of the whole draft: the bulk path fingerprints
    hundreds of thousands of drafts a run."""
    legs = ";".join(
        sorted(
            f"{leg.account_id},{leg.side.value},{leg.amount.amount},{leg.amount.currency}"
            for leg in draft.legs
        )
    )
    at = draft.effective_at.astimezone(UTC).isoformat() if draft.effective_at else ""
    details = _CANONICAL_JSON.encode(draft.details) if draft.details else "{}"
    canonical = "\x1f".join(
        (
            draft.kind,
            legs,
            draft.description,
            at,
            draft.counterparty or "",
            draft.member or "",
            draft.category or "",
            draft.reference or "",
            str(draft.corrects or ""),
            str(draft.resolves or ""),
            details,
        )
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def check_draft(draft: Draft) -> None:
    """Refuse a malformed draft before anything is written: every problem at once."""
    errors: list[FieldError] = []
    if not draft.key or len(draft.key) > MAX_KEY_LENGTH or not draft.key.isprintable():
        errors.append(
            FieldError(
                "key",
                _("1 to %(max_key_length)s printable characters", max_key_length=MAX_KEY_LENGTH),
            )
        )
    if not draft.kind or len(draft.kind) > MAX_KIND_LENGTH:
        errors.append(
            FieldError(
                "kind", _("1 to %(max_kind_length)s characters", max_kind_length=MAX_KIND_LENGTH)
            )
        )
    if len(draft.legs) < 2:
        errors.append(FieldError("postings", _("a transaction has at least two postings")))
    for index, leg in enumerate(draft.legs):
        if leg.amount.amount <= 0:
            errors.append(FieldError(f"postings.{index}.amount", _("must be greater than zero")))
    net: dict[str, int] = defaultdict(int)
    for leg in draft.legs:
        net[leg.amount.currency] += leg.signed
    for currency, difference in sorted(net.items()):
        if difference:
            errors.append(
                FieldError(
                    "postings",
                    _(
                        "debits and credits in %(currency)s differ by %(amount)s",
                        currency=currency,
                        amount=Money(abs(difference), currency),
                    ),
                )
            )
    if draft.effective_at is not None and draft.effective_at.tzinfo is None:
        errors.append(FieldError("effective_at", _("needs a time zone")))
    if errors:
        raise InvalidInput(_("The transaction cannot be posted as it stands."), errors=errors)


# -- posting -------------------------------------------------------------------------------------


def post(uow: UnitOfWork, draft: Draft, *, actor: Principal = SYSTEM) -> Posted:
    """Post a balanced transaction once. A repeated key with the same content returns the
    original; with different content it is refused (422). A draft that `corrects` another
    transaction is bounded like a reversal: never more than that transaction posted."""
    if draft.corrects is not None:
        check_draft(draft)
        existing = _by_key(uow.session, draft.key)
        if existing is not None:
            return _replay(existing, draft, hold=False)
        original = _get_transaction(uow, draft.corrects)
        if original.status is not TransactionStatus.POSTED:
            raise InvalidTransition(
                _(
                    "Only a posted transaction can be corrected; %(public_id)s is %(status)s.",
                    public_id=original.public_id,
                    status=original.status.value,
                ),
                extra={"current_status": original.status.value},
            )
        raced = _lock_for_correction(uow, original, draft)
        if raced is not None:
            return raced
    return _write(uow, draft, TransactionStatus.POSTED, actor)


def post_together(
    uow: UnitOfWork, drafts: Sequence[Draft], *, actor: Principal = SYSTEM
) -> list[int]:
    """Post several balanced transactions at once (each once: a repeated key with the same
    content is its original, with different content refused); their ids, in the drafts' order.

    For a caller with a handful of drafts that must commit with its own writes (the card
    events' batches): on PostgreSQL one round trip, whatever the number of drafts, where `post`
    takes one each. That statement first locks every account the drafts name, in id order,
    and only then calls `ledger_post` for each draft in turn, so concurrent callers queue on
    the accounts rather than deadlock, whatever order their drafts come in.

    A refusal raises as `post` does, but the other drafts may have been written by then (on
    PostgreSQL all the others are): the caller rolls its transaction back, as after any error.
    A draft may not correct another transaction or resolve a hold (`post`, `capture` do)."""
    for draft in drafts:
        if draft.corrects is not None or draft.resolves is not None:
            raise ValueError("post_together posts plain transactions: use post or capture")
        check_draft(draft)  # every draft before any is written
    session = uow.session
    if session.get_bind().dialect.name != "postgresql":
        return [post(uow, draft, actor=actor).transaction.id for draft in drafts]
    if not drafts:
        return []
    now = uow.clock.now()
    fingerprints = [fingerprint_of(draft) for draft in drafts]
    bounds: list[int] = []
    accounts: list[int] = []
    currencies: list[str] = []
    amounts: list[int] = []
    for draft in drafts:
        bounds.append(len(accounts) + 1)  # where its legs start in the flat arrays (from 1)
        accounts += [leg.account_id for leg in draft.legs]
        currencies += [leg.amount.currency for leg in draft.legs]
        amounts += [leg.signed for leg in draft.legs]
    rows = (
        session.connection()
        .execute(
            _LEDGER_POST_TOGETHER,
            {
                "locks": sorted(set(accounts)),
                "public_ids": [new_public_id("ltx") for _draft in drafts],
                "keys": [draft.key for draft in drafts],
                "fingerprints": fingerprints,
                "kinds": [draft.kind for draft in drafts],
                "descriptions": [draft.description for draft in drafts],
                "counterparties": [draft.counterparty for draft in drafts],
                "members": [draft.member for draft in drafts],
                "categories": [draft.category for draft in drafts],
                "references": [draft.reference for draft in drafts],
                "effective": [draft.effective_at or now for draft in drafts],
                "now": now,
                "created_by": actor.public_id,
                "details": [json.dumps(dict(draft.details)) for draft in drafts],
                "starts": bounds,
                "ends": [*(start - 1 for start in bounds[1:]), len(accounts)],
                "accounts": accounts,
                "currencies": currencies,
                "amounts": amounts,
            },
        )
        .all()
    )
    for outcome, refused_account, _transaction_id, n in rows:
        if outcome == "refused":
            _refusal(session, drafts[n - 1].legs, refused_account)
    existing = {rows[i][2]: drafts[i] for i in range(len(drafts)) if rows[i][0] == "existing"}
    if existing:
        for original in session.scalars(
            select(LedgerTransaction).where(LedgerTransaction.id.in_(existing))
        ):
            _replay(original, existing[original.id], hold=False)
    for account_id in set(accounts):
        cached = session.identity_map.get(identity_key(Account, account_id))
        if cached is not None:
            session.expire(cached)
    return [transaction_id for _outcome, _refused, transaction_id, _n in rows]


def hold(uow: UnitOfWork, draft: Draft, *, actor: Principal = SYSTEM) -> Posted:
    """Reserve the draft's amounts: they count against floors now and post on `capture`."""
    if draft.corrects is not None or draft.resolves is not None:
        raise invalid("corrects", _("a hold neither corrects nor resolves another transaction"))
    return _write(uow, draft, TransactionStatus.PENDING, actor)


def capture(
    uow: UnitOfWork,
    hold_id: int,
    *,
    key: str,
    amount: int | None = None,
    effective_at: datetime | None = None,
    actor: Principal = SYSTEM,
) -> Posted:
    """Post a hold in full, or `amount` of a two-posting hold; the rest is released. Once."""
    session = uow.session
    existing = _by_key(session, key)
    the_hold = _get_transaction(uow, hold_id)
    legs = _legs_of(session, the_hold)
    if amount is not None:
        if len(legs) != 2:
            raise invalid("amount", _("only a two-posting hold can be captured in part"))
        held = legs[0].amount.amount
        if not 0 < amount <= held:
            raise invalid("amount", _("must be within 1..%(held)s, the amount held", held=held))
        legs = [Leg(leg.account_id, leg.side, Money(amount, leg.amount.currency)) for leg in legs]
    draft = Draft(
        key=key,
        kind=the_hold.kind,
        legs=tuple(legs),
        description=the_hold.description,
        effective_at=effective_at,
        counterparty=the_hold.counterparty_ref,
        member=the_hold.member_ref,
        category=the_hold.category,
        reference=the_hold.reference,
        details=the_hold.details,
        resolves=the_hold.id,
    )
    check_draft(draft)
    if existing is not None:
        return _replay(existing, draft)
    try:
        with session.begin_nested():
            _resolve_hold(uow, the_hold, TransactionStatus.CAPTURED)
            return _write(uow, draft, TransactionStatus.POSTED, actor, nested=False)
    except InvalidTransition:
        # A concurrent capture with this key won while this one waited: it is the answer.
        raced = _by_key(session, key)
        if raced is not None:
            return _replay(raced, draft)
        raise


def void(uow: UnitOfWork, hold_id: int, *, actor: Principal = SYSTEM) -> LedgerTransaction:
    """Release a hold without posting it. Voiding a voided hold again changes nothing."""
    the_hold = _get_transaction(uow, hold_id)
    if the_hold.status is TransactionStatus.VOIDED:
        return the_hold
    try:
        with uow.session.begin_nested():
            _resolve_hold(uow, the_hold, TransactionStatus.VOIDED)
    except InvalidTransition as refused:
        if refused.extra.get("current_status") != TransactionStatus.VOIDED.value:
            raise
        return the_hold  # a concurrent void won (and was refreshed): voiding is idempotent
    uow.session.refresh(the_hold)
    return the_hold


def reverse(
    uow: UnitOfWork,
    transaction_id: int,
    *,
    key: str,
    reason: str,
    amount: int | None = None,
    kind: str | None = None,
    effective_at: datetime | None = None,
    actor: Principal = SYSTEM,
) -> Posted:
    """A correction: a new transaction with the original's postings reversed (all of them, or
    `amount` of a two-posting transaction), referencing it. Never more than was posted."""
    session = uow.session
    original = _get_transaction(uow, transaction_id)
    if original.status is not TransactionStatus.POSTED:
        raise InvalidTransition(
            _(
                "Only a posted transaction can be reversed; %(public_id)s is %(status)s.",
                public_id=original.public_id,
                status=original.status.value,
            ),
            extra={"current_status": original.status.value},
        )
    legs = _legs_of(session, original)
    if amount is not None:
        if len(legs) != 2:
            raise invalid("amount", _("only a two-posting transaction can be reversed in part"))
        if not 0 < amount <= legs[0].amount.amount:
            raise invalid("amount", _("must be within 1..%(most)s", most=legs[0].amount.amount))
        legs = [Leg(leg.account_id, leg.side, Money(amount, leg.amount.currency)) for leg in legs]
    flipped = tuple(
        Leg(leg.account_id, Side.CREDIT if leg.side is Side.DEBIT else Side.DEBIT, leg.amount)
        for leg in legs
    )
    draft = Draft(
        key=key,
        kind=kind or f"{original.kind}.reversal"[:MAX_KIND_LENGTH],
        legs=flipped,
        description=reason,
        effective_at=effective_at,
        counterparty=original.counterparty_ref,
        member=original.member_ref,
        category=original.category,
        reference=original.reference,
        corrects=original.id,
    )
    check_draft(draft)
    existing = _by_key(session, key)
    if existing is not None:
        return _replay(existing, draft)
    raced = _lock_for_correction(uow, original, draft)
    if raced is not None:
        return raced
    return _write(uow, draft, TransactionStatus.POSTED, actor)


def _lock_for_correction(
    uow: UnitOfWork, original: LedgerTransaction, draft: Draft
) -> Posted | None:
    """Serialise corrections of one transaction, then make sure they never exceed it.

    Returns the correction that a concurrent request with the same key committed while this
    one waited for the lock (so a retry racing its original gets the original), else None."""
    session = uow.session
    session.execute(
        select(LedgerTransaction.id).where(LedgerTransaction.id == original.id).with_for_update()
    )
    raced = _by_key(session, draft.key)
    if raced is not None:
        return _replay(raced, draft, hold=False)
    posted_size = sum(abs(leg.signed) for leg in _legs_of(session, original))
    corrected = session.scalar(
        select(func.coalesce(func.sum(func.abs(Posting.amount_minor)), 0))
        .join(LedgerTransaction, LedgerTransaction.id == Posting.transaction_id)
        .where(LedgerTransaction.corrects_id == original.id)
    )
    if int(corrected or 0) + sum(abs(leg.signed) for leg in draft.legs) > posted_size:
        raise Conflict(
            _(
                "Transaction %(public_id)s has already been corrected by %(corrected)s of "
                "%(posted)s: a correction cannot exceed it.",
                public_id=original.public_id,
                corrected=int(corrected or 0) // 2,
                posted=posted_size // 2,
            )
        )
    return None


def _write(
    uow: UnitOfWork,
    draft: Draft,
    status: TransactionStatus,
    actor: Principal,
    *,
    nested: bool = True,
) -> Posted:
    check_draft(draft)
    session = uow.session
    fingerprint = fingerprint_of(draft)
    is_hold = status is TransactionStatus.PENDING
    # Optimistic: a first post is the usual case, so no lookup by key before the insert; the
    # unique key turns a repeat into "nothing inserted", answered as a replay.
    now = uow.clock.now()
    effective_at = draft.effective_at or now
    public_id = new_public_id("ltx")
    values = {
        "public_id": public_id,
        "idempotency_key": draft.key,
        "fingerprint": fingerprint,
        "kind": draft.kind,
        "status": status,
        "description": draft.description,
        "counterparty_ref": draft.counterparty,
        "member_ref": draft.member,
        "category": draft.category,
        "reference": draft.reference,
        "corrects_id": draft.corrects,
        "resolves_id": draft.resolves,
        "effective_at": effective_at,
        "created_at": now,
        "created_by": actor.public_id,
        "details": dict(draft.details),
    }
    if session.get_bind().dialect.name == "postgresql":
        return _write_on_server(session, draft, values, is_hold)
    savepoint = session.begin_nested() if nested else None
    try:
        row = (
            session.connection()
            .execute(_INSERT_TRANSACTION[session.get_bind().dialect.name], values)
            .mappings()
            .one_or_none()
        )
        if row is None:
            # Posted before (or by a concurrent post that committed first): a retry.
            if savepoint is not None:
                savepoint.rollback()
            existing = _by_key(session, draft.key)
            assert existing is not None
            return _replay(existing, draft, fingerprint, hold=is_hold)
        transaction = _attached(session, row)
        pending = status is TransactionStatus.PENDING
        # Totals first: their conditional UPDATEs refuse an unknown, closed or foreign-currency
        # account and a breached floor, before any posting row exists.
        _apply_totals(session, draft.legs, pending=pending, sign=1)
        session.connection().execute(
            _POSTINGS.insert(),
            [
                {
                    "transaction_id": transaction.id,
                    "account_id": leg.account_id,
                    "currency": leg.amount.currency,
                    "amount_minor": leg.signed,
                    "pending": pending,
                    "effective_at": effective_at,
                }
                for leg in draft.legs
            ],
        )
    except BaseException:
        if savepoint is not None and savepoint.is_active:
            savepoint.rollback()
        raise
    if savepoint is not None:
        savepoint.commit()
    return Posted(transaction, created=True)


def _write_on_server(
    session: Session, draft: Draft, values: dict[str, Any], is_hold: bool
) -> Posted:
    """`_write` on PostgreSQL: one call of `ledger_post` (migration 0005), one round trip.

    The function checks every account before it writes anything, so a refusal needs no
    savepoint: it comes back as an outcome and nothing is written (the refused post's accounts
    stay locked until the caller's transaction ends, as they would after a successful post)."""
    details = json.dumps(values["details"])
    outcome, refused_account, transaction_id = (
        session.connection()
        .execute(
            _LEDGER_POST,
            values
            | {
                "details": details,
                "accounts": [leg.account_id for leg in draft.legs],
                "currencies": [leg.amount.currency for leg in draft.legs],
                "amounts": [leg.signed for leg in draft.legs],
            },
        )
        .one()
    )
    if outcome == "refused":
        _refusal(session, draft.legs, refused_account)
    if outcome == "existing":
        existing = _by_key(session, draft.key)
        assert existing is not None
        return _replay(existing, draft, values["fingerprint"], hold=is_hold)
    for leg in draft.legs:
        cached = session.identity_map.get(identity_key(Account, leg.account_id))
        if cached is not None:
            session.expire(cached)
    # The row is what was sent, with its id, as the database keeps it: no need to read it back.
    row = values | {
        "id": transaction_id,
        "resolved_at": None,
        "effective_at": values["effective_at"].astimezone(UTC),
        "created_at": values["created_at"].astimezone(UTC),
        "details": json.loads(details),
    }
    return Posted(_attached(session, row), created=True)


def _resolve_hold(uow: UnitOfWork, the_hold: LedgerTransaction, to: TransactionStatus) -> None:
    """Move a pending hold to captured or voided, exactly once, and release its pending totals."""
    session = uow.session
    resolved = session.execute(
        update(LedgerTransaction)
        .where(
            LedgerTransaction.id == the_hold.id,
            LedgerTransaction.status == TransactionStatus.PENDING,
        )
        .values(status=to, resolved_at=uow.clock.now())
        .execution_options(synchronize_session=False)
    )
    if resolved.rowcount != 1:  # type: ignore[attr-defined]
        session.refresh(the_hold)
        raise InvalidTransition(
            _(
                "Hold %(public_id)s is %(status)s: it can be captured or voided "
                "only while pending, once.",
                public_id=the_hold.public_id,
                status=the_hold.status.value,
            ),
            extra={"current_status": the_hold.status.value},
        )
    _apply_totals(session, _legs_of(session, the_hold), pending=True, sign=-1)


def _apply_totals(session: Session, legs: Sequence[Leg], *, pending: bool, sign: int) -> None:
    """Add (sign 1) or release (sign −1) legs on the accounts' totals, in account-id order.

    Adding is a conditional UPDATE: the account must exist, be open, keep the leg's currency
    and stay at or above its floor as the database has the row now. When it matches no row,
    the account is read once to say why."""
    debits: dict[int, int] = defaultdict(int)
    credits: dict[int, int] = defaultdict(int)
    currency: dict[int, str] = {}
    for leg in legs:
        currency.setdefault(leg.account_id, leg.amount.currency)
        if leg.side is Side.DEBIT:
            debits[leg.account_id] += leg.amount.amount
        else:
            credits[leg.account_id] += leg.amount.amount
    statement = _TOTALS[pending, sign > 0]
    connection = session.connection()
    for account_id in sorted(currency):
        result = connection.execute(
            statement,
            {
                "p_account": account_id,
                "p_d": sign * debits[account_id],
                "p_c": sign * credits[account_id],
                "p_currency": currency[account_id],
            },
        )
        if result.rowcount != 1:
            _refusal(session, legs, account_id)
        cached = session.identity_map.get(identity_key(Account, account_id))
        if cached is not None:
            session.expire(cached)


def _totals_statement(pending: bool, adding: bool) -> Update:
    """The UPDATE of an account's totals, built once: the single path runs it for every leg."""
    t = _ACCOUNTS.c
    d = bindparam("p_d", type_=BigInteger)
    c = bindparam("p_c", type_=BigInteger)
    debit, credit = (
        (t.debits_pending, t.credits_pending) if pending else (t.debits_posted, t.credits_posted)
    )
    statement = update(_ACCOUNTS).where(t.id == bindparam("p_account"))
    if adding:
        debits_posted = t.debits_posted if pending else t.debits_posted + d
        credits_posted = t.credits_posted if pending else t.credits_posted + c
        debits_pending = t.debits_pending + d if pending else t.debits_pending
        credits_pending = t.credits_pending + c if pending else t.credits_pending
        available = case(
            (
                t.type.in_([AccountType.ASSET.value, AccountType.EXPENSE.value]),
                debits_posted - credits_posted - credits_pending,
            ),
            else_=credits_posted - debits_posted - debits_pending,
        )
        statement = statement.where(
            t.status == AccountStatus.OPEN.value,
            t.currency == bindparam("p_currency"),
            or_(t.floor_minor.is_(None), available >= t.floor_minor),
        )
    return statement.values({debit.name: debit + d, credit.name: credit + c})


def _attached(session: Session, row: RowMapping | Mapping[str, Any]) -> LedgerTransaction:
    """The ORM object for a row just inserted, added to the session without reading it back."""
    if identity_key(LedgerTransaction, row["id"]) in session.identity_map:
        # A row of a rolled-back savepoint had this id (SQLite reuses them): read it afresh.
        return session.get_one(LedgerTransaction, row["id"], populate_existing=True)
    transaction = LedgerTransaction(**row)
    make_transient_to_detached(transaction)
    session.add(transaction)
    return transaction


_ACCOUNTS = cast(Table, Account.__table__)
_POSTINGS = cast(Table, Posting.__table__)
_TRANSACTIONS = cast(Table, LedgerTransaction.__table__)
# Insert a transaction unless its key exists (then nothing, and no row back), built once.
_INSERT_TRANSACTION = {
    name: dialect.insert(_TRANSACTIONS)
    .on_conflict_do_nothing(index_elements=["idempotency_key"])
    .returning(*_TRANSACTIONS.c)
    for name, dialect in (("postgresql", postgresql), ("sqlite", sqlite))
}
_LEDGER_POST = text(
    "SELECT outcome, refused_account, transaction_id FROM ledger_post("
    ":public_id, :idempotency_key, :fingerprint, :kind, :status, :description, "
    ":counterparty_ref, :member_ref, :category, :reference, "
    "CAST(:corrects_id AS BIGINT), CAST(:resolves_id AS BIGINT), :effective_at, :created_at, "
    ":created_by, CAST(:details AS JSONB), CAST(:accounts AS BIGINT[]), "
    "CAST(:currencies AS VARCHAR[]), CAST(:amounts AS BIGINT[]))"
).bindparams(
    bindparam("status", type_=_TRANSACTIONS.c.status.type),
    bindparam("effective_at", type_=_TRANSACTIONS.c.effective_at.type),
    bindparam("created_at", type_=_TRANSACTIONS.c.created_at.type),
)
# `post_together`'s one statement. The lock is a pseudo-constant condition, so the planner
# makes it a one-time filter evaluated before the first row: every account is locked (in id
# order) before any `ledger_post` runs. The drafts are parallel arrays (unnest keeps them in
# step); each draft's legs are a slice of the flat leg arrays.
_LEDGER_POST_TOGETHER = text(
    "WITH locked AS MATERIALIZED ("
    " SELECT id FROM ledger_accounts WHERE id = ANY(CAST(:locks AS BIGINT[]))"
    " ORDER BY id FOR UPDATE)"
    " SELECT p.outcome, p.refused_account, p.transaction_id, d.n"
    " FROM unnest(CAST(:public_ids AS VARCHAR[]), CAST(:keys AS VARCHAR[]),"
    " CAST(:fingerprints AS VARCHAR[]), CAST(:kinds AS VARCHAR[]),"
    " CAST(:descriptions AS TEXT[]), CAST(:counterparties AS VARCHAR[]),"
    " CAST(:members AS VARCHAR[]), CAST(:categories AS VARCHAR[]),"
    " CAST(:references AS VARCHAR[]), CAST(:effective AS TIMESTAMPTZ[]),"
    " CAST(:details AS JSONB[]), CAST(:starts AS INTEGER[]), CAST(:ends AS INTEGER[]))"
    " WITH ORDINALITY AS d(public_id, idem, fingerprint, kind, description, counterparty,"
    " member, category, reference, effective_at, details, lo, hi, n)"
    " CROSS JOIN LATERAL ledger_post(d.public_id, d.idem, d.fingerprint, d.kind, 'posted',"
    " d.description, d.counterparty, d.member, d.category, d.reference, NULL, NULL,"
    " d.effective_at, CAST(:now AS TIMESTAMPTZ), CAST(:created_by AS VARCHAR), d.details,"
    " (CAST(:accounts AS BIGINT[]))[d.lo:d.hi],"
    " (CAST(:currencies AS VARCHAR[]))[d.lo:d.hi],"
    " (CAST(:amounts AS BIGINT[]))[d.lo:d.hi]) AS p"
    " WHERE (SELECT count(*) FROM locked) >= 0"
    " ORDER BY d.n"
)
_TOTALS = {
    (pending, adding): _totals_statement(pending, adding)
    for pending in (False, True)
    for adding in (False, True)
}


def _refusal(session: Session, legs: Sequence[Leg], account_id: int) -> NoReturn:
    """Why a conditional UPDATE of an account's totals matched nothing, as a problem."""
    mine = [i for i, leg in enumerate(legs) if leg.account_id == account_id]
    account = session.get(Account, account_id, populate_existing=True)
    if account is None:
        raise invalid(f"postings.{mine[0]}.account", _("no such account"), _(_CANNOT_POST))
    # The leg in another currency, if one is: an account's legs may disagree among themselves.
    index = next((i for i in mine if legs[i].amount.currency != account.currency), mine[0])
    leg = legs[index]
    if account.currency != leg.amount.currency:
        raise invalid(
            f"postings.{index}.currency",
            _(
                "account %(public_id)s keeps %(currency)s, not %(given)s",
                public_id=account.public_id,
                currency=account.currency,
                given=leg.amount.currency,
            ),
            _(_CANNOT_POST),
        )
    if account.status is AccountStatus.CLOSED:
        raise invalid(
            f"postings.{index}.account",
            _("account %(public_id)s is closed", public_id=account.public_id),
            _(_CANNOT_POST),
        )
    raise InsufficientBalance(
        _(
            "Account %(public_id)s (%(code)s) has "
            "%(available)s available above its floor "
            "of %(floor)s.",
            public_id=account.public_id,
            code=account.code,
            available=Money(account.available_minor, account.currency),
            floor=Money(account.floor_minor or 0, account.currency),
        ),
        extra={
            "account_id": account.public_id,
            "available_minor": account.available_minor,
            "floor_minor": account.floor_minor,
        },
    )


def _by_key(session: Session, key: str) -> LedgerTransaction | None:
    return session.scalars(
        select(LedgerTransaction).where(LedgerTransaction.idempotency_key == key)
    ).one_or_none()


def _replay(
    existing: LedgerTransaction,
    draft: Draft,
    fingerprint: str | None = None,
    *,
    hold: bool | None = None,
) -> Posted:
    """The original for a repeated key, if it is the same request. `hold` says whether the
    request is a hold: the same content posted is a different request from it held."""
    same = existing.fingerprint == (fingerprint or fingerprint_of(draft))
    if hold is not None and (existing.status is not TransactionStatus.POSTED) != hold:
        same = False
    if not same:
        raise IdempotencyKeyReused(
            _(
                "The key %(key)r was used for a different transaction "
                "(%(public_id)s); use a new key.",
                key=draft.key,
                public_id=existing.public_id,
            ),
            extra={"transaction_id": existing.public_id},
        )
    return Posted(existing, created=False)


def _get_transaction(uow: UnitOfWork, transaction_id: int) -> LedgerTransaction:
    transaction = uow.session.get(LedgerTransaction, transaction_id)
    if transaction is None:
        raise NotFound(
            _("No ledger transaction %(transaction_id)s.", transaction_id=transaction_id)
        )
    return transaction


def _legs_of(session: Session, transaction: LedgerTransaction) -> list[Leg]:
    rows = session.execute(
        select(Posting.account_id, Posting.amount_minor, Posting.currency)
        .where(Posting.transaction_id == transaction.id)
        .order_by(Posting.id)
    ).all()
    return [
        Leg(account_id, Side.DEBIT if amount > 0 else Side.CREDIT, Money(abs(amount), currency))
        for account_id, amount, currency in rows
    ]


def _insert_ignoring_conflict(
    session: Session, model: type[Any], values: Mapping[str, Any], column: str
) -> Any:
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        stmt: Any = postgresql.insert(model)
    else:
        stmt = sqlite.insert(model)
    return stmt.values(**values).on_conflict_do_nothing(index_elements=[column])


def _account_id(account: Account | int) -> int:
    return account if isinstance(account, int) else account.id


# -- reads ---------------------------------------------------------------------------------------


def transaction_by_key(uow: UnitOfWork, key: str) -> LedgerTransaction | None:
    """The transaction posted under an idempotency key, if any."""
    return _by_key(uow.session, key)


def get_transaction(uow: UnitOfWork, public_id: str) -> LedgerTransaction:
    transaction = uow.session.scalars(
        select(LedgerTransaction).where(LedgerTransaction.public_id == public_id)
    ).one_or_none()
    if transaction is None:
        raise NotFound(_("No ledger transaction %(public_id)r.", public_id=public_id))
    return transaction


def postings_of(uow: UnitOfWork, transaction: LedgerTransaction) -> list[tuple[Account, Posting]]:
    rows = uow.session.execute(
        select(Account, Posting)
        .join(Posting, Posting.account_id == Account.id)
        .where(Posting.transaction_id == transaction.id)
        .order_by(Posting.id)
    ).all()
    return [(account, posting) for account, posting in rows]


def list_transactions(
    uow: UnitOfWork,
    *,
    account_id: int | None = None,
    counterparty: str | None = None,
    kind: str | None = None,
    status: TransactionStatus | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> tuple[Sequence[LedgerTransaction], str | None]:
    stmt = select(LedgerTransaction)
    if account_id is not None:
        stmt = stmt.where(
            LedgerTransaction.id.in_(
                select(Posting.transaction_id).where(Posting.account_id == account_id)
            )
        )
    if counterparty is not None:
        stmt = stmt.where(LedgerTransaction.counterparty_ref == counterparty)
    if kind is not None:
        stmt = stmt.where(LedgerTransaction.kind == kind)
    if status is not None:
        stmt = stmt.where(LedgerTransaction.status == status)
    return paginate(
        uow.session, stmt, LedgerTransaction.id, cursor=cursor, limit=limit, descending=True
    )


def balance(uow: UnitOfWork, account: Account, at: datetime | None = None) -> Balance:
    """The balance now (from the running totals), or as posted at `at` (from the postings)."""
    if at is None:
        uow.session.refresh(account)
        return Balance(
            account,
            None,
            Money(account.balance_minor, account.currency),
            Money(account.pending_minor, account.currency),
            Money(account.available_minor, account.currency),
        )
    net = _net_before(uow.session, account, at, inclusive=True)
    posted = Money(net, account.currency)
    return Balance(account, at, posted, Money(0, account.currency), posted)


def statement(uow: UnitOfWork, account: Account, start: datetime, end: datetime) -> Statement:
    """Opening balance at `start`, every posting in [start, end), closing balance at `end`."""
    if end <= start:
        raise invalid("to", _("must be after from"))
    opening = _net_before(uow.session, account, start, inclusive=False)
    rows = uow.session.execute(
        select(
            LedgerTransaction.public_id,
            Posting.effective_at,
            LedgerTransaction.kind,
            LedgerTransaction.description,
            LedgerTransaction.reference,
            Posting.amount_minor,
        )
        .join(LedgerTransaction, LedgerTransaction.id == Posting.transaction_id)
        .where(
            Posting.account_id == account.id,
            Posting.pending.is_(False),
            Posting.effective_at >= start,
            Posting.effective_at < end,
        )
        .order_by(Posting.effective_at, Posting.id)
    ).all()
    running = opening
    lines = []
    sign = 1 if account.type.debit_normal else -1
    for public_id, at, kind, description, reference, amount in rows:
        running += sign * amount
        lines.append(
            StatementLine(
                transaction_id=public_id,
                effective_at=at,
                kind=kind,
                description=description,
                reference=reference,
                debit=amount if amount > 0 else 0,
                credit=-amount if amount < 0 else 0,
                balance=running,
            )
        )
    return Statement(
        account,
        start,
        end,
        Money(opening, account.currency),
        tuple(lines),
        Money(running, account.currency),
    )


def _net_before(session: Session, account: Account, at: datetime, *, inclusive: bool) -> int:
    bound = Posting.effective_at <= at if inclusive else Posting.effective_at < at
    net = session.scalar(
        select(func.coalesce(func.sum(Posting.amount_minor), 0)).where(
            Posting.account_id == account.id, Posting.pending.is_(False), bound
        )
    )
    return int(net or 0) * (1 if account.type.debit_normal else -1)


# -- the programme over time (console charts) ---------------------------------------------------


def commission_revenue_by_month(
    uow: UnitOfWork, bounds: Sequence[datetime], currency: str
) -> list[int]:
    """The bank's commission revenue (its credits net of reversals and clawbacks), in minor
    units, for each month between consecutive `bounds`. One grouped query over the postings."""
    month = case(
        *[(Posting.effective_at < bound, index - 1) for index, bound in enumerate(bounds)],
        else_=len(bounds) - 1,
    )
    inner = (
        select(month.label("month"), Posting.amount_minor.label("amount"))
        .join(Account, Account.id == Posting.account_id)
        .where(
            Account.owner_kind == OwnerKind.BANK,
            Account.purpose == "commission",
            Account.currency == currency,
            Posting.pending.is_(False),
            Posting.effective_at >= bounds[0],
            Posting.effective_at < bounds[-1],
        )
        .subquery()
    )
    found: dict[int, Any] = {
        month: value
        for month, value in uow.session.execute(
            select(inner.c.month, func.sum(inner.c.amount)).group_by(inner.c.month)
        )
    }
    # Revenue is credit-normal: a credit (negative amount) is income.
    return [-int(found.get(index, 0) or 0) for index in range(len(bounds) - 1)]
