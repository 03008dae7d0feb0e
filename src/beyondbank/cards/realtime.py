"""The real-time path: one card event (a JSON feed row or an ISO 8583 authorisation message)
matched, recorded and posted within the request, so the bank's app can say "you just earned …".

An event is a transaction like any other: its txn_id counts once, ever, whether it arrives here
or later in a clearing file (the file's row is then skipped as seen). It is checked, resolved
and judged in plain Python (`cards/instant.py`, tested equal to the feed's validator, the
resolver and the reference implementation); events that arrive together are written in one
database transaction (`Collector`), each answered as if alone. The day's events share one run,
whose counters move once per batch.

ISO 8583 (1987, ASCII, as pyiso8583's `default_ascii` spec encodes it) maps to a feed row as:
MTI 0100 or 0200 with processing code (DE 3) `00…` (purchase) → type purchase; DE 37 (retrieval
reference number) → txn_id and network_ref; DE 2 → card_token (the network token, never a PAN
in clear); DE 4 → amount_minor; DE 49 (ISO 4217 numeric) → currency; DE 18 → mcc; DE 41, DE 42,
DE 43 → terminal_id, acquirer_merchant_id, acceptor_name_location; DE 7 (transmission date and
time, MMDDhhmmss, GMT) → txn_time, in the year that puts it nearest to now. Refunds and
chargebacks arrive with the clearing file, not here.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, cast

import anyio
import iso8583
import pycountry
from babel.numbers import format_decimal
from iso8583.specs import default_ascii
from sqlalchemy import Connection, Engine, Table, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from beyondbank.alliance import service as alliance
from beyondbank.benefits import service as benefits
from beyondbank.benefits.models import Benefit, BenefitStatus, BenefitUsage
from beyondbank.cards import (
    frames,
    instant,
    oracle,
    posting,
    programme,
    realtime_writes,
    service,
)
from beyondbank.cards.models import (
    CardGrant,
    CardReward,
    CardRun,
    CardTransaction,
    DescriptorReview,
    ReviewStatus,
    RunStatus,
)
from beyondbank.core.authz import Permission, Principal, require
from beyondbank.core.clock import Clock
from beyondbank.core.errors import Conflict, FieldError, Forbidden, InvalidInput, Unauthenticated
from beyondbank.core.i18n import _, format_locale
from beyondbank.core.ids import new_public_id
from beyondbank.core.money import Money
from beyondbank.core.settings import Settings
from beyondbank.core.tokens import AccessClaims, read_access_token
from beyondbank.core.uow import UnitOfWork
from beyondbank.identity import service as identity
from beyondbank.ledger import service as ledger

PURCHASE_CODES = ("00",)  # DE 3 positions 1–2: goods and services
MESSAGE_TYPES = ("0100", "0200")  # authorisation request, financial request


# -- ISO 8583 ------------------------------------------------------------------------------------


def row_from_iso8583(raw: bytes, now: datetime) -> dict[str, str]:
    """A feed row from an ISO 8583 message; 422 naming the data element that is wrong."""
    try:
        decoded, _encoded = iso8583.decode(raw, default_ascii)
    except iso8583.DecodeError as exc:
        raise _bad("message", _("not an ISO 8583 message: %(exc)s", exc=exc)) from None
    mti = decoded.get("t", "")
    if mti not in MESSAGE_TYPES:
        raise _bad(
            "t", _("message type %(mti)s is not an authorisation or financial request", mti=mti)
        )
    for element in ("2", "3", "4", "7", "18", "37", "42", "43", "49"):
        if not decoded.get(element):
            raise _bad(element, _("data element %(element)s is required", element=element))
    if decoded["3"][:2] not in PURCHASE_CODES:
        raise _bad("3", _("processing code %(code)s is not a purchase", code=decoded["3"]))
    return {
        "txn_id": decoded["37"].strip(),
        "network_ref": decoded["37"].strip(),
        "card_token": decoded["2"],
        "type": frames.PURCHASE,
        "original_txn_id": "",
        "amount_minor": decoded["4"].lstrip("0") or "0",
        "currency": _currency(decoded["49"]),
        "mcc": decoded["18"],
        "acquirer_merchant_id": decoded["42"].strip(),
        "terminal_id": decoded.get("41", "").strip(),
        "acceptor_name_location": decoded["43"],
        "txn_time": _transmission_time(decoded["7"], now),
    }


def _currency(numeric: str) -> str:
    found = pycountry.currencies.get(numeric=numeric)
    if found is None:
        raise _bad("49", _("%(numeric)s is not an ISO 4217 numeric currency code", numeric=numeric))
    return str(found.alpha_3)


def _transmission_time(value: str, now: datetime) -> str:
    """DE 7 has no year: take the year that puts the instant nearest to now."""
    if len(value) != 10 or not value.isdigit():
        raise _bad("7", _("transmission date and time is not MMDDhhmmss"))
    candidates = []
    for year in (now.year - 1, now.year, now.year + 1):
        try:
            at = datetime.strptime(f"{year}{value}", "%Y%m%d%H%M%S").replace(tzinfo=UTC)
        except ValueError:
            continue
        candidates.append((abs((at - now).total_seconds()), at))
    if not candidates:
        raise _bad("7", _("transmission date and time is not a real date"))
    return min(candidates)[1].strftime("%Y-%m-%dT%H:%M:%SZ")


def _bad(field: str, message: str) -> InvalidInput:
    return InvalidInput(message, errors=(FieldError(field, message),))


# -- one request -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Earned:
    """A reward or clawback row (frames.REWARDS columns) with the public ids it names; posted."""

    row: dict[str, Any]
    member: str
    merchant: str
    benefit: str | None
    points_benefit: str | None


@dataclass(frozen=True)
class EventResult:
    txn_id: str
    status: str  # rewarded | no_reward | already_seen
    rewards: list[Earned]
    merchant_name: str | None
    message: str | None  # what the bank's app shows the member


async def process(
    realtime: ResolverCache,
    factory: sessionmaker[Session],
    clock: Clock,
    actor: Principal,
    row: dict[str, str],
) -> EventResult:
    """Validate, resolve, match, record and post one event; answered once its batch commits.
    Nothing is written for an event that is refused.

    Runs on the server's event loop: checking and resolving one row take microseconds, and a
    request waiting for its batch holds no thread; only a batch's database work runs on one."""
    require(actor, Permission.CARDS_INGEST)
    if actor.is_org_bound:
        raise Forbidden(_("Card events come from the bank's card switch, not a merchant's system."))
    checked = instant.check(row)
    if isinstance(checked, instant.Rejected):
        reason = checked.reason
        raise _bad(reason.split(" ", 2)[-1] if reason.startswith("missing") else "event", reason)
    snapshot = await realtime.snapshot(UnitOfWork(factory, clock))
    pending = _Pending(checked, snapshot.resolve(checked), snapshot)
    result = await realtime.collector(factory, clock).submit(pending)
    # Worded here, in this request's language: its batch may have run in another request's.
    return replace(result, message=_message(result.rewards, result.merchant_name))


def _message(rewards: list[Earned], merchant: str | None) -> str | None:
    """What the bank's app shows the member, in the caller's language."""
    granted = [r.row for r in rewards if r.row["kind"] == frames.REWARD]
    if not granted:
        return None
    reward = granted[0]
    locale = format_locale()
    cashback = Money(reward["amount_minor"], reward["currency"]).format(locale)
    points = format_decimal(reward["points"], locale=locale)
    if reward["amount_minor"] and reward["points"]:
        return _(
            "You just earned %(cashback)s cashback and %(points)s points at %(merchant)s.",
            cashback=cashback,
            points=points,
            merchant=merchant,
        )
    if reward["amount_minor"]:
        return _(
            "You just earned %(cashback)s cashback at %(merchant)s.",
            cashback=cashback,
            merchant=merchant,
        )
    if reward["points"]:
        return _(
            "You just earned %(points)s points at %(merchant)s.", points=points, merchant=merchant
        )
    return _("You just earned a reward at %(merchant)s.", merchant=merchant)


class Callers:
    """Who a bearer token speaks for, as the card switch's endpoints check it: the token's
    expiry on every request, its signature once per process (a token verified once is the same
    bytes with the same claims whenever it comes back), the account behind it (still active,
    its scopes) against the database at most every `TTL_SECONDS` per process. The other
    endpoints re-check the account on every request; at hundreds of events a second from one
    switch, that lookup (a pooled connection, a query, a thread) cost about as much as matching
    the event, and verifying the signature again (PyJWT) about a tenth of the event's CPU."""

    TTL_SECONDS = 5.0
    _LIMIT = 10_000  # tokens remembered per process

    def __init__(self) -> None:
        self._known: dict[str, tuple[float, Principal]] = {}
        self._verified: dict[str, AccessClaims] = {}

    async def principal(
        self, authorization: str | None, settings: Settings, uow: UnitOfWork
    ) -> Principal | None:
        if not authorization:
            return None
        scheme, _space, token = authorization.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise Unauthenticated(_("Send the access token as `Authorization: Bearer <token>`."))
        claims = self._claims(token, settings, uow.clock.now())
        known = self._known.get(token)
        if known is not None and time.monotonic() - known[0] <= self.TTL_SECONDS:
            return known[1]
        principal = await anyio.to_thread.run_sync(self._look_up, uow, claims)
        if len(self._known) >= self._LIMIT:
            self._known.clear()
        self._known[token] = (time.monotonic(), principal)
        return principal

    def _claims(self, token: str, settings: Settings, now: datetime) -> AccessClaims:
        """The token's claims: verified in full the first time, its expiry checked every time
        (with the same problem as `read_access_token`)."""
        claims = self._verified.get(token)
        if claims is None:
            claims = read_access_token(settings.secret_key.get_secret_value(), token, now=now)
            if len(self._verified) >= self._LIMIT:
                self._verified.clear()
            self._verified[token] = claims
        elif claims.expires_at <= now:
            raise Unauthenticated(_("The bearer token has expired."))
        return claims

    @staticmethod
    def _look_up(uow: UnitOfWork, claims: AccessClaims) -> Principal:
        with uow:
            return identity.principal_for(uow, claims.kind, claims.subject, claims.scopes)


@dataclass
class _Known:
    """What committed batches have learnt that never changes: members' public ids, and the
    ledger accounts open (by purpose, owner and currency; an account is never deleted)."""

    members: dict[int, str] = field(default_factory=dict)
    accounts: dict[tuple[str, str | None, str], int] = field(default_factory=dict)


class ResolverCache:
    """What the real-time path keeps per process: the programme's snapshot (rebuilt when older
    than `ttl` seconds), the collector that commits concurrent events in batches, and the
    callers it has checked."""

    def __init__(self, ttl_seconds: float, threshold: float | None) -> None:
        self.snapshots = instant.SnapshotCache(ttl_seconds, threshold)
        self.callers = Callers()
        self._collector: Collector | None = None
        self._building: tuple[asyncio.AbstractEventLoop, asyncio.Future[instant.Snapshot]] | None
        self._building = None
        self.known = _Known()

    async def snapshot(self, uow: UnitOfWork) -> instant.Snapshot:
        """The current snapshot. When it is stale, one request rebuilds it (on a thread) while
        the others go on with the stale one; before the first, every request waits for it."""
        current = self.snapshots.peek()
        if current is not None and not self.snapshots.is_stale(current):
            return current
        loop = asyncio.get_running_loop()
        if self._building is not None and self._building[0] is loop:
            if current is not None:
                return current
            return await asyncio.shield(self._building[1])
        building: asyncio.Future[instant.Snapshot] = loop.create_future()
        self._building = (loop, building)
        try:
            built = await anyio.to_thread.run_sync(self._build, uow)
        except Exception as exc:
            building.set_exception(exc)
            building.exception()  # the waiters (if any) raise it; nobody else needs to
            raise
        else:
            building.set_result(built)
            return built
        finally:
            self._building = None

    def _build(self, uow: UnitOfWork) -> instant.Snapshot:
        with uow:
            return self.snapshots.rebuild(uow)

    def collector(self, factory: sessionmaker[Session], clock: Clock) -> Collector:
        if self._collector is None:
            # Sessions bound to one connection (a test's, rolled back at its end) cannot write
            # two batches at once: a connection is not shared between threads.
            bind = factory.kw.get("bind")
            engine = bind if isinstance(bind, Engine) else None
            self._collector = Collector(
                _Writer(UnitOfWork(factory, clock), self.known, engine),
                writers=Collector.WRITERS if engine is not None else 1,
            )
        return self._collector


# -- micro-batches ---------------------------------------------------------------------------------


@dataclass(eq=False)
class _Pending:
    """One event waiting for its batch: what the request worked out, and its answer."""

    event: instant.Event
    place: instant.Place
    snapshot: instant.Snapshot
    woken: asyncio.Future[None] | None = None  # set when answered, or when asked to lead
    lead: bool = False  # woken to write the next batch, not with an answer
    written: bool = False
    result: EventResult | None = None
    error: Exception | None = None

    def answer(self) -> EventResult:
        if self.error is not None:
            raise self.error
        assert self.result is not None
        return self.result

    def wake(self) -> None:
        if self.woken is not None and not self.woken.done():
            self.woken.set_result(None)


class Collector:
    """Commits the events that arrive together in one database transaction per batch.

    Leaders and followers, on the event loop: a request that finds a writer free writes a
    batch (on a worker thread), with every event waiting (up to `MAX_BATCH`); requests that
    arrive while every writer is busy wait, and when a batch has committed its writer hands its
    place to the first of them, who writes the next batch. Under light load a batch is one
    event and nobody waits; under heavy load a batch holds what arrived while the others were
    written, so the database's fixed costs (round trips, the commit, the run's counters, the
    ledger's shared accounts) are paid once per batch, not per event.

    `WRITERS` batches are written at once: while one waits on the database (its round trips,
    its commit's flush), the next is already being read and judged, so an event waits for a
    free writer rather than for the whole of the batch before it. Concurrent batches are safe
    as between server processes: the same statement order, the database's keys and conditional
    updates. Everything here runs on one event loop: no locks."""

    MAX_BATCH = 64
    WRITERS = 2

    def __init__(self, writer: _Writer, writers: int = WRITERS) -> None:
        self._writer = writer
        self._writers = writers
        self._queue: list[_Pending] = []
        self._writing = 0  # writers' places taken (a place handed over stays taken)

    async def submit(self, pending: _Pending) -> EventResult:
        loop = asyncio.get_running_loop()
        pending.woken = loop.create_future()
        self._queue.append(pending)
        if self._writing < self._writers:
            self._writing += 1
        else:
            await pending.woken
            if not pending.lead:
                return pending.answer()
            # A writer that finished handed its place over to this request.
        try:
            while not pending.written:
                batch = self._queue[: self.MAX_BATCH]
                del self._queue[: self.MAX_BATCH]
                if not batch:
                    # Its event went into another writer's batch meanwhile: wait for that one.
                    pending.woken = loop.create_future()
                    await pending.woken
                    continue
                try:
                    await anyio.to_thread.run_sync(self._writer.write, batch)
                finally:
                    for written in batch:
                        written.written = True
                        if written is not pending:
                            written.wake()
        finally:
            successor = next((p for p in self._queue if not p.lead), None)
            if successor is not None:
                successor.lead = True
                successor.wake()
            else:
                self._writing -= 1
        return pending.answer()


_RETRYABLE = ("40001", "40P01")  # serialization failure, deadlock detected
ATTEMPTS = 5


class _Writer:
    """Writes batches: everything an event decides, in one transaction, retried as a whole when
    a conditional update finds the counters it read have moved (or the database breaks a
    deadlock); a batch that fails otherwise is written again event by event, so that an error
    is answered to the event that caused it alone."""

    def __init__(self, uow: UnitOfWork, known: _Known, engine: Engine | None = None) -> None:
        self.uow = uow.fresh()
        self.known = known
        self._runs: dict[str, int] = {}
        self._engine = engine
        # Connections the writer keeps between batches, one per batch being written (see
        # `_unit`); only with an engine of its own (a test's shared connection is used as is).
        self._idle: list[tuple[Connection, sessionmaker[Session]]] = []

    def write(self, batch: list[_Pending]) -> None:
        """Write the batch and set each event's answer (or error); never raises."""
        try:
            self._attempts(batch)
        except Exception as exc:
            if len(batch) == 1:
                batch[0].error = exc
            else:
                for pending in batch:
                    self.write([pending])

    def _attempts(self, batch: list[_Pending]) -> None:
        for attempt in range(ATTEMPTS):
            held = self._held()
            try:
                with self._unit(held) as uow:
                    answers = _write_batch(uow, batch, self._run_id(uow), self.known, attempt > 0)
            except Conflict:
                if attempt == ATTEMPTS - 1:
                    raise
                continue
            except DBAPIError as exc:
                if exc.connection_invalidated and held is not None:
                    # The held connection broke (a server restart, a network cut): it is not
                    # used again, and the batch is written again on a new one.
                    held[0].close()
                    held = None
                elif getattr(exc.orig, "sqlstate", None) not in _RETRYABLE:
                    raise
                if attempt == ATTEMPTS - 1:
                    raise
                continue
            finally:
                if held is not None:  # its session closed: free for the next batch
                    self._idle.append(held)
            for pending, answer in zip(batch, answers, strict=True):
                if isinstance(answer, Exception):
                    pending.error = answer
                else:
                    pending.result = answer
            return

    def _held(self) -> tuple[Connection, sessionmaker[Session]] | None:
        """A connection of the writer's own, kept from batch to batch: no pool check-out and no
        pre-ping (`SELECT 1`, a round trip) before every batch. A broken one is dropped when a
        batch fails on it (`_attempts`)."""
        if self._engine is None:
            return None
        try:
            return self._idle.pop()
        except IndexError:
            connection = self._engine.connect()
            return connection, sessionmaker(bind=connection, expire_on_commit=False)

    def _unit(self, held: tuple[Connection, sessionmaker[Session]] | None) -> UnitOfWork:
        """The batch's unit of work: on a held connection, whose transaction the session
        begins and commits, or as the application's sessions are made."""
        if held is None:
            return self.uow.fresh()
        return UnitOfWork(held[1], self.uow.clock)

    def _run_id(self, uow: UnitOfWork) -> int:
        """The id of the run holding today's (UTC) real-time events, created by the first."""
        public_id = f"run_realtime_{uow.clock.now().astimezone(UTC).date():%Y%m%d}"
        if public_id not in self._runs:
            self._runs[public_id] = _todays_run(uow, public_id)
            uow.commit()
        return self._runs[public_id]


def _todays_run(uow: UnitOfWork, public_id: str) -> int:
    dialect = postgresql if uow.session.get_bind().dialect.name == "postgresql" else sqlite
    values: dict[str, Any] = {
        "public_id": public_id,
        "source": "realtime",
        "status": RunStatus.MATCHING.value,
        "started_at": uow.clock.now(),
        "details": {},
        **dict.fromkeys(_COUNTERS, 0),
    }
    uow.session.execute(
        dialect.insert(CardRun.__table__)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["public_id"])
    )
    found = uow.session.scalar(select(CardRun.id).where(CardRun.public_id == public_id))
    assert found is not None
    return found


_COUNTERS = (
    "rows_read",
    "accepted",
    "quarantined",
    "duplicates",
    "already_seen",
    "matched",
    "unresolved",
    "rewards",
    "clawbacks",
    "posted",
)


# -- one batch, in one transaction -----------------------------------------------------------------

Answer = EventResult | Exception


def _write_batch(
    uow: UnitOfWork, batch: list[_Pending], run_id: int, known: _Known, lock: bool
) -> list[Answer]:
    """Record, match and post the batch's events (not committed on failure); an answer each.

    Statements follow one order in every batch (transactions by txn_id, benefits by id, member
    counters by key, review rows by key, the connection's tally row, ledger accounts by id
    last), so concurrent batches queue rather than deadlock."""
    now = uow.clock.now()
    answers: dict[int, Answer] = {}
    work = _Batch(uow, batch, run_id)
    work.first_of_each_txn_id(answers)
    work.find_members()
    work.set_aside_orphans(answers)
    work.record_transactions(answers)
    earned = work.match(lock)
    work.claw_back()
    work.write_outcome(earned, now)
    work.review()
    work.count()
    work.write()
    # The ledger last: the shared accounts its postings lock are then held only from this
    # statement to the commit, not while the batch's other writes go to the database.
    earned_views = work.post(earned, known)
    # The answers are made before the commit: nothing after it may fail and have the batch
    # written again (its events would then be answered as already seen).
    for index, pending in enumerate(batch):
        if index in answers:
            continue
        rewards = earned_views.get(pending.event.txn_id, [])
        merchant = pending.place.merchant_id
        name = pending.snapshot.merchants.get(merchant, (None, None, None))[1] if merchant else None
        answers[index] = EventResult(
            pending.event.txn_id,
            "rewarded" if rewards else "no_reward",
            rewards,
            name,
            None,  # worded by `process`, in its caller's language
        )
    ordered = [answers[i] for i in range(len(batch))]
    uow.commit()
    # Learnt only once committed: an account opened by a batch rolled back does not exist.
    known.members.update(work.parties.members)
    known.accounts.update(work.parties.accounts)
    return ordered


class _Batch:
    """The working state of one batch as it goes through `_write_batch`'s steps."""

    def __init__(self, uow: UnitOfWork, batch: list[_Pending], run_id: int) -> None:
        self.uow = uow
        self.batch = batch
        self.run_id = run_id
        self.postgres = uow.session.get_bind().dialect.name == "postgresql"
        self.live: list[int] = []  # indexes of the events still to be written
        self.member: dict[int, int | None] = {}
        self.rewards: list[dict[str, Any]] = []
        self.new_grants: dict[str, dict[str, Any]] = {}
        self.changed_grants: dict[str, tuple[dict[str, Any], int, int]] = {}
        self.consumed: dict[int, tuple[int, int]] = {}
        self.uses: dict[instant.UsageKey, int] = {}
        self.limits: dict[int, int | None] = {}
        self.parties = posting.Parties(uow)
        self.capped: set[int] = set()
        self.writes = realtime_writes.Writes()  # on PostgreSQL, written at once by `write`

    def event(self, index: int) -> instant.Event:
        return self.batch[index].event

    def first_of_each_txn_id(self, answers: dict[int, Answer]) -> None:
        """A txn_id sent twice in one batch counts once: the first to arrive."""
        seen: set[str] = set()
        for index, pending in enumerate(self.batch):
            txn_id = pending.event.txn_id
            if txn_id in seen:
                answers[index] = _already_seen(txn_id)
            else:
                seen.add(txn_id)
                self.live.append(index)

    def find_members(self) -> None:
        """Rule 3: who held each purchase's card at its time (only where a merchant was found)."""
        wanted = [
            i
            for i in self.live
            if self.event(i).type == frames.PURCHASE and self.batch[i].place.merchant_id
        ]
        holdings: dict[str, list[dict[str, Any]]] = {}
        tokens = {self.event(i).card_token for i in wanted}
        for token, member_id, begin, end in alliance.card_holdings(self.uow, tokens):
            holdings.setdefault(token, []).append(
                {"member_id": member_id, "valid_from": begin, "valid_to": end}
            )
        for i in wanted:
            event = self.event(i)
            self.member[i] = oracle._member_at(holdings.get(event.card_token, []), event.txn_time)

    def set_aside_orphans(self, answers: dict[int, Answer]) -> None:
        """A refund or chargeback whose original purchase was never seen is refused (422)."""
        refunds = [i for i in self.live if self.event(i).type != frames.PURCHASE]
        if not refunds:
            return
        here = {self.event(i).txn_id for i in self.live if self.event(i).type == frames.PURCHASE}
        originals = {self.event(i).original_txn_id or "" for i in refunds} - here
        known = here | programme.known_txn_ids(self.uow, originals, purchases_only=True)
        for i in refunds:
            original = self.event(i).original_txn_id
            if original not in known:
                reason = f"{service.ORPHAN}: no purchase {original} was seen"
                answers[i] = _bad("original_txn_id", reason)
                self.live.remove(i)

    def record_transactions(self, answers: dict[int, Answer]) -> None:
        """Each txn_id once, ever: the insert skips those seen before (here, in a file, or by a
        concurrent batch), which are answered as already seen and go no further."""
        if not self.live:
            return
        rows = []
        for i in sorted(self.live, key=lambda i: self.event(i).txn_id):
            event = self.event(i)
            member_id = self.member.get(i)
            rows.append(
                {
                    "txn_id": event.txn_id,
                    "run_id": self.run_id,
                    "type": event.type,
                    "original_txn_id": event.original_txn_id,
                    "txn_time": event.txn_time,
                    "amount_minor": event.amount_minor,
                    "currency": event.currency,
                    "member_id": member_id,
                    "merchant_id": self.batch[i].place.merchant_id if member_id else None,
                }
            )
        # Executed with the rows as parameters (SQLAlchemy's "insertmanyvalues": one statement,
        # compiled once per process); `.values(rows)` was compiled again for every batch.
        statement = _RECORD_POSTGRESQL if self.postgres else _RECORD_SQLITE
        fresh = set(self.uow.session.connection().scalars(statement, rows))
        for i in list(self.live):
            if self.event(i).txn_id not in fresh:
                answers[i] = _already_seen(self.event(i).txn_id)
                self.live.remove(i)

    def match(self, lock: bool) -> dict[str, instant.Judged]:
        """Rules 4–7 for the member purchases, in (txn_time, txn_id) order, with the counters
        read now and moved by each grant in turn."""
        buyers = {
            i: (member_id, merchant_id)
            for i in self.live
            if (member_id := self.member.get(i)) is not None
            and (merchant_id := self.batch[i].place.merchant_id) is not None
        }
        purchases = sorted(buyers, key=lambda i: (self.event(i).txn_time, self.event(i).txn_id))
        if not purchases:
            return {}
        snapshot = self.batch[purchases[0]].snapshot
        offers = {m: snapshot.offers.get(m, []) for _member, m in buyers.values()}
        benefit_ids = sorted(b.id for merchant_offers in offers.values() for b in merchant_offers)
        if not benefit_ids:
            return {}
        counters = self._counters(benefit_ids, lock)
        member_ids = {m for m, _merchant in buyers.values()}
        uses: dict[instant.UsageKey, int] = {
            (b, m, k): u for b, m, k, u in benefits.usage_of(self.uow, member_ids, benefit_ids)
        }
        targeted = [m for m, o in offers.items() if any(b.terms.target_circle_ids for b in o)]
        circles = (
            alliance.circle_ids_by_member(
                self.uow,
                {m for m, merchant_id in buyers.values() if merchant_id in targeted},
                snapshot.circles,
            )
            if targeted
            else {}
        )
        newcomers = [m for m, o in offers.items() if any(b.terms.new_to_merchant_days for b in o)]
        history = self._history(member_ids, newcomers)
        judged: dict[str, instant.Judged] = {}
        for i in purchases:
            event = self.event(i)
            member_id, merchant_id = buyers[i]
            result = instant.judge(
                instant.Purchase(
                    event.txn_id,
                    event.txn_time,
                    event.amount_minor,
                    event.currency,
                    member_id,
                    merchant_id,
                ),
                instant.with_counters(offers.get(merchant_id, []), counters),
                circles=frozenset(circles.get(member_id, ())),
                last_purchase_at=instant.last_purchase_before(
                    history.get((member_id, merchant_id), []), event.txn_time, event.txn_id
                ),
                uses=uses,
            )
            if result is None:
                continue
            judged[event.txn_id] = result
            self.new_grants[event.txn_id] = result.grant  # refunds in this batch may claw it back
            self._take(result, counters, uses)
        self.limits = {b.id: b.terms.member_limit for o in offers.values() for b in o}
        # Only benefits with a budget or a quantity are counted down: an unlimited benefit's row
        # is never touched, so its grants never queue on it.
        self.capped = {
            b
            for b, (_used, budget, quantity) in counters.items()
            if budget is not None or quantity is not None
        }
        return judged

    def _counters(
        self, benefit_ids: list[int], lock: bool
    ) -> dict[int, tuple[bool, int | None, int | None]]:
        """Status, budget and quantity left of the benefits now; a retry locks them first (in
        id order) so that it reads what it will spend."""
        query = (
            select(
                Benefit.id,
                Benefit.status,
                Benefit.budget_remaining_minor,
                Benefit.quantity_remaining,
            )
            .where(Benefit.id.in_(benefit_ids))
            .order_by(Benefit.id)
        )
        if lock:
            query = query.with_for_update()
        return {
            r.id: (r.status == BenefitStatus.ACTIVE, r.budget_remaining_minor, r.quantity_remaining)
            for r in self.uow.session.connection().execute(query)
        }

    def _history(
        self, member_ids: set[int], merchant_ids: list[int]
    ) -> dict[tuple[int, int], list[tuple[datetime, str]]]:
        """Every seen purchase (this batch's included: they are recorded already) per member
        and merchant, for the new-to-merchant rule."""
        if not member_ids or not merchant_ids:
            return {}
        history: dict[tuple[int, int], list[tuple[datetime, str]]] = {}
        rows = self.uow.session.connection().execute(
            select(
                CardTransaction.member_id,
                CardTransaction.merchant_id,
                CardTransaction.txn_time,
                CardTransaction.txn_id,
            ).where(
                CardTransaction.member_id.in_(sorted(member_ids)),
                CardTransaction.merchant_id.in_(sorted(merchant_ids)),
                CardTransaction.type == frames.PURCHASE,
            )
        )
        for member_id, merchant_id, at, txn_id in rows:
            if member_id is not None and merchant_id is not None:  # both are, by the query
                history.setdefault((member_id, merchant_id), []).append((at, txn_id))
        return history

    def _take(
        self,
        result: instant.Judged,
        counters: dict[int, tuple[bool, int | None, int | None]],
        uses: dict[instant.UsageKey, int],
    ) -> None:
        for benefit_id, budget, quantity in result.consumed:
            active, budget_left, quantity_left = counters[benefit_id]
            counters[benefit_id] = (
                active,
                None if budget_left is None else budget_left - budget,
                None if quantity_left is None else quantity_left - quantity,
            )
            before = self.consumed.get(benefit_id, (0, 0))
            self.consumed[benefit_id] = (before[0] + budget, before[1] + quantity)
        for key in result.uses:
            uses[key] = uses.get(key, 0) + 1
            self.uses[key] = self.uses.get(key, 0) + 1

    def claw_back(self) -> None:
        """Rule 8 for the refunds and chargebacks, after the purchases (as in a chunk)."""
        refunds = sorted(
            (i for i in self.live if self.event(i).type != frames.PURCHASE),
            key=lambda i: (self.event(i).txn_time, self.event(i).txn_id),
        )
        if not refunds:
            return
        originals = {self.event(i).original_txn_id for i in refunds} - self.new_grants.keys()
        stored = {
            row["txn_id"]: row
            for row in (
                dict(r._mapping)
                for r in self.uow.session.connection().execute(
                    select(*_GRANT_COLUMNS).where(CardGrant.txn_id.in_(sorted(originals)))
                )
            )
        }
        for i in refunds:
            event = self.event(i)
            original = event.original_txn_id or ""
            grant = self.new_grants.get(original) or self._changed(original, stored)
            if grant is None:
                continue
            row = {**event.as_row(), "merchant_id": self.batch[i].place.merchant_id}
            clawback, totals = instant.claw_back(row, grant)
            grant.update(totals)
            if clawback is not None:
                self.rewards.append(clawback)

    def _changed(self, txn_id: str, stored: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
        """An earlier grant this batch claws back, with the totals it read (for the update)."""
        if txn_id in self.changed_grants:
            return self.changed_grants[txn_id][0]
        row = stored.get(txn_id)
        if row is None:
            return None
        self.changed_grants[txn_id] = (row, row["refunded_minor"], row["clawed_back_minor"])
        return row

    def write_outcome(self, judged: dict[str, instant.Judged], now: datetime) -> None:
        """Grants, reward rows (posted in this transaction), budgets, member counters: written
        here on SQLite, gathered for `write` on PostgreSQL (but for the earlier grants clawed
        back, each a conditional update of its own)."""
        connection = self.uow.session.connection()
        rewards = [r.reward for r in judged.values()] + self.rewards
        self.rewards = rewards
        times = {self.event(i).txn_id: self.event(i).txn_time for i in self.live}
        grants = [
            {**g, "run_id": self.run_id, "granted_at": times[t]} for t, g in self.new_grants.items()
        ]
        reward_rows = [{**r, "run_id": self.run_id, "posted_at": now} for r in rewards]
        consumed = [(b, budget, n) for b, (budget, n) in self.consumed.items() if b in self.capped]
        self._claw_back_grants(connection)
        if self.postgres:
            self.writes.grants, self.writes.rewards = grants, reward_rows
            self.writes.consumed, self.writes.uses = consumed, self.uses
            self.writes.limits = {b: self.limits.get(b) for b, _m, _k in self.uses}
            return
        if grants:
            connection.execute(insert(_GRANTS), grants)
        if reward_rows:
            connection.execute(insert(_REWARDS), reward_rows)
        benefits.consume(self.uow, consumed)
        self._count_uses()

    def _claw_back_grants(self, connection: Connection) -> None:
        for txn_id, (grant, refunded, clawed) in sorted(self.changed_grants.items()):
            done = connection.execute(
                update(_GRANTS)
                .where(
                    CardGrant.txn_id == txn_id,
                    CardGrant.refunded_minor == refunded,
                    CardGrant.clawed_back_minor == clawed,
                )
                .values({name: grant[name] for name in oracle.GRANT_TOTALS})
                .returning(CardGrant.id)
            ).first()
            if done is None:
                raise Conflict(
                    _(
                        "The grant of %(txn_id)s changed while this batch clawed it back.",
                        txn_id=txn_id,
                    )
                )

    def _count_uses(self) -> None:
        """Member counters: one upsert per key, refused (and the batch retried) if a concurrent
        use took the member past the benefit's limit since it was read."""
        dialect = postgresql if self.postgres else sqlite
        table = BenefitUsage.__table__
        for (benefit_id, member_id, key), n in sorted(self.uses.items()):
            limit = self.limits.get(benefit_id)
            stmt = dialect.insert(table).values(
                benefit_id=benefit_id, member_id=member_id, period_key=key, uses=n
            )
            stmt = stmt.on_conflict_do_update(
                index_elements=[table.c.benefit_id, table.c.member_id, table.c.period_key],
                set_={"uses": table.c.uses + n},
                where=(table.c.uses + n <= limit) if limit is not None else None,
            ).returning(table.c.uses)
            if self.uow.session.connection().execute(stmt).first() is None:
                raise Conflict(
                    _(
                        "Benefit %(benefit_id)s's member limit was reached meanwhile.",
                        benefit_id=benefit_id,
                    )
                )

    def post(self, judged: dict[str, instant.Judged], known: _Known) -> dict[str, list[Earned]]:
        """The reward and clawback rows to the ledger (`ledger.post_together`: its accounts
        locked in id order first), and each event's rows with their public ids."""
        if not self.rewards:
            return {}
        rows = [_RewardRow(**r) for r in self.rewards]
        parties = self.parties = posting.Parties(self.uow, known.accounts)
        parties.members.update(known.members)
        merchants = self.batch[0].snapshot.merchants
        for merchant_id in {r.merchant_id for r in rows} & merchants.keys():
            ref, _name, sub_industry = merchants[merchant_id]
            parties.merchants[merchant_id] = (ref, sub_industry)
        parties.prefetch(rows)
        # One round trip on PostgreSQL, its accounts locked in id order within it: the bank's
        # shared accounts (benefit expense, commission revenue, points issued) are then held
        # from here to the commit, the batch's last statement after this one.
        ledger.post_together(self.uow, [d for r in rows for d in posting.drafts_for(r, parties)])
        refs = self.batch[0].snapshot.benefit_refs
        earned: dict[str, list[Earned]] = {}
        for r in self.rewards:
            earned.setdefault(r["txn_id"], []).append(
                Earned(
                    row=r,
                    member=parties.members[r["member_id"]],
                    merchant=parties.merchants[r["merchant_id"]][0],
                    benefit=refs.get(r["benefit_id"]) if r["benefit_id"] else None,
                    points_benefit=refs.get(r["points_benefit_id"])
                    if r["points_benefit_id"]
                    else None,
                )
            )
        return earned

    def review(self) -> None:
        """Descriptors the fuzzy matcher was unsure of join the review queue (or count again)."""
        now = self.uow.clock.now()
        dialect = postgresql if self.postgres else sqlite
        table = DescriptorReview.__table__
        found: dict[tuple[str, str], tuple[dict[str, Any], int]] = {}
        for i in self.live:
            review = self.batch[i].place.review
            if review is not None:
                key = (review["descriptor_key"], review["mcc"])
                found[key] = (review, found.get(key, (review, 0))[1] + 1)
        rows = [
            {
                "public_id": new_public_id("dsc"),
                "candidate_merchant_id": review["merchant_id"],
                "candidate_location_id": review["location_id"],
                "transactions": count,
                "status": ReviewStatus.OPEN.value,
                "first_seen_at": now,
                "last_seen_at": now,
                **{k: review[k] for k in ("descriptor_key", "mcc", "example", "city", "score")},
            }
            for _key, (review, count) in sorted(found.items())
        ]
        if self.postgres:
            self.writes.reviews = rows
            return
        for row in rows:
            stmt = dialect.insert(table).values(**row)
            self.uow.session.execute(
                stmt.on_conflict_do_update(
                    index_elements=[table.c.descriptor_key, table.c.mcc],
                    set_={
                        "transactions": table.c.transactions + 1,
                        "last_seen_at": stmt.excluded.last_seen_at,
                    },
                )
            )

    def count(self) -> None:
        """The day's run counts the batch with one statement (not one per event): on PostgreSQL
        into this connection's tally row (`cards/tallies.py`), so that concurrent batches do not
        queue on the run's row until each other's commits; on SQLite, whose writers take turns
        anyway, into the run's row."""
        if not self.live:
            return
        rewards = sum(1 for r in self.rewards if r["kind"] == frames.REWARD)
        counts = {
            "rows_read": len(self.live),
            "accepted": len(self.live),
            "matched": len(self.live),
            "unresolved": sum(1 for i in self.live if self.batch[i].place.merchant_id is None),
            "rewards": rewards,
            "clawbacks": len(self.rewards) - rewards,
            "posted": len(self.rewards),
        }
        if self.postgres:
            self.writes.counts = counts
            return
        self.uow.session.connection().execute(
            update(_RUNS)
            .where(CardRun.id == self.run_id)
            .values({name: _RUNS.c[name] + n for name, n in counts.items()})
        )

    def write(self) -> None:
        """On PostgreSQL, what the steps before gathered, in one statement
        (`realtime_writes`); refused, and the batch retried, if a budget or a member's limit
        was reached meanwhile, as the separate statements are on SQLite."""
        if not self.postgres:
            return
        connection = self.uow.session.connection()
        short, over = realtime_writes.write(connection, self.run_id, self.writes)
        if short is not None:
            raise Conflict(
                _(
                    "Benefit %(benefit_id)s has less budget or quantity left than granted.",
                    benefit_id=short,
                )
            )
        if over is not None:
            raise Conflict(
                _(
                    "Benefit %(benefit_id)s's member limit was reached meanwhile.",
                    benefit_id=over,
                )
            )


@dataclass(slots=True)
class _RewardRow:
    """A reward or clawback row as the ledger drafts read it (posting.RewardRow)."""

    kind: str
    txn_id: str
    original_txn_id: str | None
    txn_time: datetime
    member_id: int
    merchant_id: int
    currency: str
    purchase_amount_minor: int
    txn_amount_minor: int
    benefit_id: int | None
    amount_minor: int
    merchant_funded_minor: int
    bank_funded_minor: int
    commission_minor: int
    points_benefit_id: int | None
    points: int
    id: int = 0  # not yet in the table: the drafts do not read it


def _record(dialect: Any) -> Any:
    """Each txn_id once, ever: the new ones inserted and returned, the seen ones skipped."""
    table = CardTransaction.__table__
    return (
        dialect.insert(table)
        .on_conflict_do_nothing(index_elements=["txn_id"])
        .returning(table.c.txn_id)
    )


_RECORD_POSTGRESQL = _record(postgresql)
_RECORD_SQLITE = _record(sqlite)
_GRANT_COLUMNS = [getattr(CardGrant, name) for name in frames.GRANTS.names()]
# The batch writes these as tables on its connection (Core): no ORM bookkeeping for rows it never
# loads as objects.
_GRANTS = cast(Table, CardGrant.__table__)
_REWARDS = cast(Table, CardReward.__table__)
_RUNS = cast(Table, CardRun.__table__)


def _already_seen(txn_id: str) -> EventResult:
    return EventResult(txn_id, "already_seen", [], None, None)
