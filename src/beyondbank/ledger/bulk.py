"""The ledger's bulk write path: many transactions at once, through the database's fast load.

For batch results (the card-linked engine posts hundreds of thousands of rewards in a run).
Per chunk: the transactions go into a staging table (COPY on PostgreSQL, one executemany on
SQLite); one `INSERT … SELECT … ON CONFLICT (idempotency_key) DO NOTHING RETURNING` moves the
new ones into the ledger and hands back their ids; their postings are then loaded straight
into `ledger_postings` (COPY again); and each touched account's totals move by one UPDATE,
with the accounts locked in id order first, exactly as the single path orders them.

It stays idempotent: a transaction whose key is already in the ledger with the same content is
counted as existing and writes nothing; with different content the whole call is refused.
The SQL here is text because COPY and staging tables are; every name interpolated into it is a
constant of this module, never input (hence the `noqa: S608`s).
Everything runs in a savepoint of the caller's transaction, so a refusal writes nothing and
the caller decides when to commit (per chunk, for a restartable batch).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import islice
from typing import Any, cast

from sqlalchemy import Connection, Table, bindparam, select, text, update
from sqlalchemy.orm import Session

from beyondbank.core.authz import SYSTEM, Principal
from beyondbank.core.errors import (
    Conflict,
    FieldError,
    IdempotencyKeyReused,
    InsufficientBalance,
    InvalidInput,
)
from beyondbank.core.fastload import load_rows, sqlite_value
from beyondbank.core.i18n import _
from beyondbank.core.ids import new_public_id
from beyondbank.core.money import Money
from beyondbank.core.uow import UnitOfWork
from beyondbank.ledger.models import Account, AccountStatus, LedgerTransaction
from beyondbank.ledger.service import Draft, Side, check_draft, fingerprint_of

DEFAULT_CHUNK = 20_000
_LOOKUP_SLICE = 5_000
_COPY_BLOCK = 4_000  # transactions' postings per write to COPY
_STAGE = "ledger_stage_transactions"
_STAGE_COLUMNS = (
    "public_id",
    "idempotency_key",
    "fingerprint",
    "kind",
    "description",
    "counterparty_ref",
    "member_ref",
    "category",
    "reference",
    "corrects_id",
    "effective_at",
    "details",
)
# What `json.dumps(…, sort_keys=True, default=str)` builds on every call.
_DETAILS_JSON = json.JSONEncoder(sort_keys=True, default=str)
_POSTING_COLUMNS = (
    "transaction_id",
    "account_id",
    "currency",
    "amount_minor",
    "pending",
    "effective_at",
)


@dataclass(frozen=True, slots=True)
class BulkResult:
    offered: int  # drafts given, duplicates within the call included
    created: int  # transactions written by this call
    existing: int  # already in the ledger with the same content: nothing written
    postings: int  # postings written by this call

    def __add__(self, other: BulkResult) -> BulkResult:
        return BulkResult(
            self.offered + other.offered,
            self.created + other.created,
            self.existing + other.existing,
            self.postings + other.postings,
        )


EMPTY = BulkResult(0, 0, 0, 0)


def post_many(
    uow: UnitOfWork,
    drafts: Iterable[Draft],
    *,
    actor: Principal = SYSTEM,
    chunk_size: int = DEFAULT_CHUNK,
    on_chunk: Callable[[BulkResult], None] | None = None,
) -> BulkResult:
    """Post every draft once, in chunks, inside the caller's transaction (not committed here)."""
    session = uow.session
    total = EMPTY
    accounts = _AccountCache(session)
    with session.begin_nested():
        connection = session.connection()
        _create_stage(connection)
        chunks = _chunks(drafts, chunk_size)
        first = next(chunks, None)
        if first is not None:
            total = _post_chunks(uow, connection, first, chunks, accounts, actor, on_chunk)
    session.expire_all()
    return total


def _post_chunks(
    uow: UnitOfWork,
    connection: Connection,
    first: list[Draft],
    chunks: Iterator[list[Draft]],
    accounts: _AccountCache,
    actor: Principal,
    on_chunk: Callable[[BulkResult], None] | None,
) -> BulkResult:
    """While the database writes one chunk, a worker thread checks and fingerprints the next:
    plain Python on drafts already taken from the iterator, never the connection. The iterator
    itself is advanced only here, between statements, in case it reads from the database."""
    total = EMPTY
    # The postings' COPY text is worked out ahead on PostgreSQL, unless the chunks turn out
    # to be known already (a replay): then only for what is new, once that is known.
    ahead = connection.dialect.name == "postgresql"
    prepared = _prepare(first, uow.clock.now(), ahead)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="ledger-bulk") as worker:
        while True:
            accounts.check(prepared.unique, prepared.pairs)
            if prepared.invalid is not None:
                raise prepared.invalid
            connection.execute(text(f"DELETE FROM {_STAGE}"))  # noqa: S608
            load_rows(connection, _STAGE, _STAGE_COLUMNS, (row for row, _draft in prepared.staged))
            following = next(chunks, None)
            upcoming = (
                None
                if following is None
                else worker.submit(_prepare, following, uow.clock.now(), ahead)
            )
            # On a refusal the pool's exit waits for the worker; its result is dropped.
            result = _post_chunk(connection, prepared, actor)
            total = total + result
            ahead = ahead and result.created > 0
            if on_chunk is not None:
                on_chunk(result)
            if upcoming is None:
                return total
            prepared = upcoming.result()


@dataclass(frozen=True, slots=True)
class _Prepared:
    """A chunk checked and fingerprinted, ready to stage; `invalid` is raised once the
    accounts are checked, which is the order the errors come in when nothing overlaps.

    Also worked out here when asked (`ahead`), off the calling thread, as if every draft were
    new (the usual case): each draft's postings as COPY text around its transaction id
    (`pieces`: joined by the id, they are its lines) and the chunk's debits and credits per
    account."""

    offered: int
    now: datetime
    unique: list[Draft]
    pairs: frozenset[tuple[int, str]]  # every (account, currency) the drafts name
    staged: list[tuple[tuple[Any, ...], Draft]]
    pieces: list[list[str]] | None
    debits: dict[int, int]
    credits: dict[int, int]
    invalid: InvalidInput | None


def _prepare(chunk: Sequence[Draft], now: datetime, ahead: bool) -> _Prepared:
    unique = _unique_by_key(chunk)
    pairs = frozenset(
        (leg.account_id, leg.amount.currency) for draft in unique for leg in draft.legs
    )
    try:
        staged = [_staged(draft, now) for draft in unique]
    except InvalidInput as error:
        return _Prepared(len(chunk), now, unique, pairs, [], [], {}, {}, error)
    if not ahead:
        return _Prepared(len(chunk), now, unique, pairs, staged, None, {}, {}, None)
    pieces, debits, credits = _postings_text(staged)
    return _Prepared(len(chunk), now, unique, pairs, staged, pieces, debits, credits, None)


def _postings_text(
    staged: Sequence[tuple[tuple[Any, ...], Draft]], copy: bool = True
) -> tuple[list[list[str]], dict[int, int], dict[int, int]]:
    """The drafts' postings as COPY text (none without `copy`: SQLite takes rows) and their
    totals. Every field is an integer, a checked currency code or a UTC time: none of them
    needs escaping in COPY's text format."""
    times: dict[datetime, str] = {}
    pieces: list[list[str]] = []
    debits: dict[int, int] = defaultdict(int)
    credits: dict[int, int] = defaultdict(int)
    for row, draft in staged:
        at = row[10]
        when = times.get(at)
        if when is None:
            when = times[at] = at.isoformat()
        parts = [""]
        for leg in draft.legs:
            account_id, amount = leg.account_id, leg.amount
            if leg.side is Side.DEBIT:
                signed = amount.amount
                debits[account_id] += signed
            else:
                signed = -amount.amount
                credits[account_id] += amount.amount
            if copy:
                parts.append(f"\t{account_id}\t{amount.currency}\t{signed}\tf\t{when}\n")
        if copy:
            pieces.append(parts)
    return pieces, debits, credits


def _post_chunk(connection: Connection, prepared: _Prepared, actor: Principal) -> BulkResult:
    """Move the staged chunk into the ledger, then its postings and the accounts' totals."""
    unique, staged = prepared.unique, prepared.staged
    new_ids = _insert_new(connection, actor, prepared.now)
    pieces, debits, credits = prepared.pieces, prepared.debits, prepared.credits
    if len(new_ids) < len(unique):  # some keys were there already: same content, or refused
        _refuse_reused_keys(connection, [row for row, _draft in staged if row[0] not in new_ids])
        staged = [s for s in staged if s[0][0] in new_ids]
        pieces = None
    if pieces is None:
        pieces, debits, credits = _postings_text(staged, connection.dialect.name == "postgresql")
    written = _load_postings(connection, staged, pieces, new_ids)
    _apply_totals(connection, debits, credits)
    return BulkResult(prepared.offered, len(new_ids), len(unique) - len(new_ids), written)


def _load_postings(
    connection: Connection,
    staged: Sequence[tuple[tuple[Any, ...], Draft]],
    pieces: Sequence[list[str]],
    new_ids: dict[str, int],
) -> int:
    """The new transactions' postings, none pending; how many. On PostgreSQL as COPY text
    written in blocks rather than row by row."""
    if connection.dialect.name != "postgresql":
        rows = [
            (new_ids[row[0]], leg.account_id, leg.amount.currency, leg.signed, False, row[10])
            for row, draft in staged
            if row[0] in new_ids
            for leg in draft.legs
        ]
        load_rows(connection, "ledger_postings", _POSTING_COLUMNS, rows)
        return len(rows)
    raw = connection.connection.driver_connection
    assert raw is not None
    statement = f"COPY ledger_postings ({', '.join(_POSTING_COLUMNS)}) FROM STDIN"
    written = 0
    with raw.cursor() as cursor, cursor.copy(statement) as copy:
        block: list[str] = []
        for (row, _draft), parts in zip(staged, pieces, strict=True):
            transaction_id = new_ids.get(row[0])
            if transaction_id is None:
                continue
            block.append(str(transaction_id).join(parts))
            written += len(parts) - 1
            if len(block) >= _COPY_BLOCK:
                copy.write("".join(block))
                block = []
        if block:
            copy.write("".join(block))
    return written


def _unique_by_key(chunk: Sequence[Draft]) -> list[Draft]:
    """Each key once; the same key twice in one call must carry the same content."""
    seen: dict[str, Draft] = {}
    for draft in chunk:
        earlier = seen.get(draft.key)
        if earlier is None:
            seen[draft.key] = draft
        elif earlier != draft and fingerprint_of(earlier) != fingerprint_of(draft):
            raise IdempotencyKeyReused(
                _(
                    "The key %(key)r appears twice in the batch with different content.",
                    key=draft.key,
                )
            )
    return list(seen.values())


def _staged(draft: Draft, now: datetime) -> tuple[tuple[Any, ...], Draft]:
    check_draft(draft)
    effective_at = (draft.effective_at or now).astimezone(UTC)
    row = (
        new_public_id("ltx"),
        draft.key,
        fingerprint_of(draft),
        draft.kind,
        draft.description,
        draft.counterparty,
        draft.member,
        draft.category,
        draft.reference,
        draft.corrects,
        effective_at,
        _DETAILS_JSON.encode(dict(draft.details)),
    )
    return row, draft


def _create_stage(connection: Connection) -> None:
    postgres = connection.dialect.name == "postgresql"
    timestamp = "TIMESTAMP WITH TIME ZONE" if postgres else "DATETIME"
    # On PostgreSQL the staging table lives and dies with the transaction.
    lifetime = " ON COMMIT DROP" if postgres else ""
    connection.execute(
        text(
            f"CREATE TEMPORARY TABLE IF NOT EXISTS {_STAGE} ("
            "public_id VARCHAR(40) NOT NULL, idempotency_key VARCHAR(255) NOT NULL, "
            "fingerprint VARCHAR(64) NOT NULL, kind VARCHAR(60) NOT NULL, description TEXT, "
            "counterparty_ref VARCHAR(40), member_ref VARCHAR(40), category VARCHAR(60), "
            f"reference VARCHAR(80), corrects_id BIGINT, effective_at {timestamp} NOT NULL, "
            f"details TEXT NOT NULL){lifetime}"
        )
    )


def _insert_new(connection: Connection, actor: Principal, now: datetime) -> dict[str, int]:
    """Move staged transactions not yet in the ledger into it; their public ids → new ids."""
    postgres = connection.dialect.name == "postgresql"
    details = "CAST(s.details AS JSONB)" if postgres else "s.details"
    rows = connection.execute(
        text(
            "INSERT INTO ledger_transactions (public_id, idempotency_key, fingerprint, kind, "  # noqa: S608
            "status, description, counterparty_ref, member_ref, category, reference, corrects_id, "
            "resolves_id, effective_at, created_at, created_by, details) "
            "SELECT s.public_id, s.idempotency_key, s.fingerprint, s.kind, 'posted', "
            "s.description, s.counterparty_ref, s.member_ref, s.category, s.reference, "
            f"s.corrects_id, NULL, s.effective_at, :now, :actor, {details} "
            # The unique key does the filtering, one index probe per row, whatever the
            # planner believes about the tables' sizes ("WHERE true" is SQLite's grammar).
            f"FROM {_STAGE} s WHERE true "
            "ON CONFLICT (idempotency_key) DO NOTHING RETURNING id, public_id"
        ).bindparams(
            bindparam("now", now if postgres else sqlite_value(now)),
            actor=actor.public_id,
        )
    ).all()
    return {public_id: transaction_id for transaction_id, public_id in rows}


def _refuse_reused_keys(connection: Connection, known: Sequence[tuple[Any, ...]]) -> None:
    """Staged rows whose key was in the ledger already must carry the same fingerprint.

    Looked up by key through the unique index, in slices, rather than by joining the staging
    table: a join's plan depends on statistics that a table just loaded in bulk does not have."""
    table = cast(Table, LedgerTransaction.__table__)
    reused: list[tuple[str, str]] = []
    for start in range(0, len(known), _LOOKUP_SLICE):
        wanted = {row[1]: row[2] for row in known[start : start + _LOOKUP_SLICE]}
        rows = connection.execute(
            select(table.c.idempotency_key, table.c.fingerprint, table.c.public_id).where(
                table.c.idempotency_key.in_(wanted)
            )
        ).all()
        reused += [(key, public_id) for key, fp, public_id in rows if fp != wanted[key]]
    if reused:
        reused.sort()
        keys = ", ".join(f"{key!r} ({public_id})" for key, public_id in reused[:10])
        raise IdempotencyKeyReused(
            _("These keys were used before for different transactions: %(keys)s.", keys=keys),
            extra={"keys": [key for key, _public_id in reused[:10]]},
        )


def _apply_totals(connection: Connection, debits: dict[int, int], credits: dict[int, int]) -> None:
    """Lock the touched accounts in id order, check floors and status, then move the totals."""
    ids = sorted(set(debits) | set(credits))
    if not ids:
        return
    table = cast(Table, Account.__table__)
    locked = (
        select(
            table.c.id,
            table.c.public_id,
            table.c.code,
            table.c.type,
            table.c.status,
            table.c.floor_minor,
            table.c.currency,
            table.c.debits_posted,
            table.c.credits_posted,
            table.c.debits_pending,
            table.c.credits_pending,
        )
        .where(table.c.id.in_(ids))
        .order_by(table.c.id)
    )
    if connection.dialect.name == "postgresql":
        locked = locked.with_for_update()
    for row in connection.execute(locked):
        if row.status != AccountStatus.OPEN.value:
            raise Conflict(
                _(
                    "Account %(public_id)s (%(code)s) is closed.",
                    public_id=row.public_id,
                    code=row.code,
                ),
                extra={"account_id": row.public_id, "current_status": row.status},
            )
        if row.floor_minor is None:
            continue
        debit, credit = debits.get(row.id, 0), credits.get(row.id, 0)
        if row.type in ("asset", "expense"):
            available = (
                (row.debits_posted + debit) - (row.credits_posted + credit) - row.credits_pending
            )
        else:
            available = (
                (row.credits_posted + credit) - (row.debits_posted + debit) - row.debits_pending
            )
        if available < row.floor_minor:
            raise InsufficientBalance(
                _(
                    "The batch would take account %(public_id)s (%(code)s) to "
                    "%(available)s, below its floor of "
                    "%(floor)s.",
                    public_id=row.public_id,
                    code=row.code,
                    available=Money(available, row.currency),
                    floor=Money(row.floor_minor, row.currency),
                ),
                extra={"account_id": row.public_id, "floor_minor": row.floor_minor},
            )
    moves = [(i, debits.get(i, 0), credits.get(i, 0)) for i in ids]
    if connection.dialect.name == "postgresql":
        # One statement for every account, rather than one per account: they are locked.
        connection.execute(
            _MOVE_TOTALS,
            {
                "ids": [i for i, _debit, _credit in moves],
                "debits": [d for _id, d, _credit in moves],
                "credits": [c for _id, _debit, c in moves],
            },
        )
        return
    connection.execute(
        update(table)
        .where(table.c.id == bindparam("account"))
        .values(
            debits_posted=table.c.debits_posted + bindparam("d"),
            credits_posted=table.c.credits_posted + bindparam("c"),
        ),
        [{"account": i, "d": d, "c": c} for i, d, c in moves],
    )


_MOVE_TOTALS = text(
    "UPDATE ledger_accounts AS a SET debits_posted = a.debits_posted + m.debit, "
    "credits_posted = a.credits_posted + m.credit "
    "FROM unnest(CAST(:ids AS BIGINT[]), CAST(:debits AS BIGINT[]), CAST(:credits AS BIGINT[])) "
    "AS m(account_id, debit, credit) WHERE a.id = m.account_id"
)


class _AccountCache:
    """Currency and status of the accounts a batch names, read once per account per call."""

    def __init__(self, session: Session) -> None:
        self._session = session
        self._known: dict[int, tuple[str, str]] = {}

    def check(self, drafts: Sequence[Draft], pairs: frozenset[tuple[int, str]]) -> None:
        """Every account the drafts name exists, is open and keeps the leg's currency: checked
        per distinct (account, currency); the drafts are gone through only to name a refusal."""
        wanted = {account_id for account_id, _currency in pairs} - self._known.keys()
        if wanted:
            rows = self._session.execute(
                select(Account.id, Account.currency, Account.status).where(Account.id.in_(wanted))
            ).all()
            self._known.update({i: (currency, status.value) for i, currency, status in rows})
        cache, open_ = self._known, AccountStatus.OPEN.value
        if all(cache.get(account_id) == (currency, open_) for account_id, currency in pairs):
            return
        errors: list[FieldError] = []
        for draft in drafts:
            for index, leg in enumerate(draft.legs):
                known = self._known.get(leg.account_id)
                where = f"{draft.key}.postings.{index}"
                if known is None:
                    errors.append(FieldError(f"{where}.account", _("no such account")))
                elif known[0] != leg.amount.currency:
                    errors.append(
                        FieldError(
                            f"{where}.currency",
                            _(
                                "the account keeps %(kept)s, not %(currency)s",
                                kept=known[0],
                                currency=leg.amount.currency,
                            ),
                        )
                    )
                elif known[1] != AccountStatus.OPEN.value:
                    errors.append(FieldError(f"{where}.account", _("the account is closed")))
                if len(errors) >= 20:
                    break
        if errors:
            raise InvalidInput(_("Some transactions of the batch cannot be posted."), errors=errors)


def _chunks(drafts: Iterable[Draft], size: int) -> Iterator[list[Draft]]:
    iterator = iter(drafts)
    while chunk := list(islice(iterator, size)):
        yield chunk


__all__ = ["BulkResult", "post_many"]
