"""The real-time path: one card event (a JSON feed row or an ISO 8583 authorisation message)
matched, recorded and posted within the request, so the bank's app can say "you just earned …".

An event is a transaction like any other: its txn_id counts once, ever, whether it arrives here
or later in a clearing file (the file's row is then skipped as seen). It is judged by the
row-by-row reference implementation, which the vectorised engine equals on every input, because
one row is all there is and the reference has no set-up cost. The day's events share one run.

ISO 8583 (1987, ASCII, as pyiso8583's `default_ascii` spec encodes it) maps to a feed row as:
MTI 0100 or 0200 with processing code (DE 3) `00…` (purchase) → type purchase; DE 37 (retrieval
reference number) → txn_id and network_ref; DE 2 → card_token (the network token, never a PAN
in clear); DE 4 → amount_minor; DE 49 (ISO 4217 numeric) → currency; DE 18 → mcc; DE 41, DE 42,
DE 43 → terminal_id, acquirer_merchant_id, acceptor_name_location; DE 7 (transmission date and
time, MMDDhhmmss, GMT) → txn_time, in the year that puts it nearest to now. Refunds and
chargebacks arrive with the clearing file, not here.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import iso8583
import pycountry
from iso8583.specs import default_ascii
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from beyondbank.alliance import service as alliance
from beyondbank.cards import feed, frames, oracle, posting, service
from beyondbank.cards.models import CardReward, CardRun, RunStatus
from beyondbank.cards.resolution import Resolver
from beyondbank.core.authz import Permission, Principal, require
from beyondbank.core.errors import FieldError, Forbidden, InvalidInput
from beyondbank.core.money import Money
from beyondbank.core.uow import UnitOfWork
from beyondbank.ledger import service as ledger

PURCHASE_CODES = ("00",)  # DE 3 positions 1–2: goods and services
MESSAGE_TYPES = ("0100", "0200")  # authorisation request, financial request


@dataclass(frozen=True)
class EventResult:
    txn_id: str
    status: str  # rewarded | no_reward | already_seen
    rewards: list[CardReward]
    merchant_name: str | None
    message: str | None  # what the bank's app shows the member


# -- ISO 8583 ------------------------------------------------------------------------------------


def row_from_iso8583(raw: bytes, now: datetime) -> dict[str, str]:
    """A feed row from an ISO 8583 message; 422 naming the data element that is wrong."""
    try:
        decoded, _ = iso8583.decode(raw, default_ascii)
    except iso8583.DecodeError as exc:
        raise _bad("message", f"not an ISO 8583 message: {exc}") from None
    mti = decoded.get("t", "")
    if mti not in MESSAGE_TYPES:
        raise _bad("t", f"message type {mti} is not an authorisation or financial request")
    for element in ("2", "3", "4", "7", "18", "37", "42", "43", "49"):
        if not decoded.get(element):
            raise _bad(element, f"data element {element} is required")
    if decoded["3"][:2] not in PURCHASE_CODES:
        raise _bad("3", f"processing code {decoded['3']} is not a purchase")
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
        raise _bad("49", f"{numeric} is not an ISO 4217 numeric currency code")
    return str(found.alpha_3)


def _transmission_time(value: str, now: datetime) -> str:
    """DE 7 has no year: take the year that puts the instant nearest to now."""
    if len(value) != 10 or not value.isdigit():
        raise _bad("7", "transmission date and time is not MMDDhhmmss")
    candidates = []
    for year in (now.year - 1, now.year, now.year + 1):
        try:
            at = datetime.strptime(f"{year}{value}", "%Y%m%d%H%M%S").replace(tzinfo=UTC)
        except ValueError:
            continue
        candidates.append((abs((at - now).total_seconds()), at))
    if not candidates:
        raise _bad("7", "transmission date and time is not a real date")
    return min(candidates)[1].strftime("%Y-%m-%dT%H:%M:%SZ")


def _bad(field: str, message: str) -> InvalidInput:
    return InvalidInput(message, errors=(FieldError(field, message),))


# -- processing ------------------------------------------------------------------------------------


def process(
    uow: UnitOfWork, actor: Principal, resolver: Resolver, row: dict[str, str]
) -> EventResult:
    """Validate, match, record and post one event, and commit; nothing is written if it fails."""
    require(actor, Permission.CARDS_INGEST)
    if actor.is_org_bound:
        raise Forbidden("Card events come from the bank's card switch, not a merchant's system.")
    checked = feed.validate_rows([row])
    if checked.quarantined.height:
        reason = checked.quarantined.get_column("reason")[0]
        raise _bad(reason.split(" ", 2)[-1] if reason.startswith("missing") else "event", reason)
    event = checked.accepted
    txn_id = event.get_column("txn_id")[0]
    run = _todays_run(uow)
    try:
        matched = service.match_chunk(uow, run, event, resolver, matcher=oracle.match, arrived=1)
    except IntegrityError:
        # The same txn_id is being recorded by another request or run right now.
        uow.rollback()
        return EventResult(txn_id, "already_seen", [], None, None)
    if matched.seen:
        uow.rollback()
        return EventResult(txn_id, "already_seen", [], None, None)
    if matched.orphans.height:
        uow.rollback()
        raise _bad("original_txn_id", matched.orphans.get_column("reason")[0])
    rewards = list(
        uow.session.scalars(
            select(CardReward).where(CardReward.txn_id == txn_id, CardReward.run_id == run.id)
        )
    )
    _post(uow, rewards)
    uow.commit()
    merchant_id = matched.resolved.get_column("merchant_id")[0]
    name = alliance.merchant_by_id(uow, merchant_id).trading_name if merchant_id else None
    return EventResult(
        txn_id,
        "rewarded" if rewards else "no_reward",
        rewards,
        name,
        _message(rewards, name),
    )


def _post(uow: UnitOfWork, rewards: list[CardReward]) -> None:
    """The event's ledger transactions through the single path, marked posted with them."""
    if not rewards:
        return
    parties = posting.Parties(uow)
    parties.prefetch(rewards)
    for reward in rewards:
        for draft in posting.drafts_for(reward, parties):
            ledger.post(uow, draft)
        reward.posted_at = uow.clock.now()
    uow.session.flush()


def _message(rewards: list[CardReward], merchant: str | None) -> str | None:
    granted = [r for r in rewards if r.kind == frames.REWARD]
    if not granted:
        return None
    reward = granted[0]
    parts = []
    if reward.amount_minor:
        parts.append(f"{Money(reward.amount_minor, reward.currency).format()} cashback")
    if reward.points:
        parts.append(f"{reward.points:,} points")
    return f"You just earned {' and '.join(parts)} at {merchant}."


def _todays_run(uow: UnitOfWork) -> CardRun:
    """The run that holds today's (UTC) real-time events: created by the first of them."""
    today = uow.clock.now().astimezone(UTC).date()
    public_id = f"run_realtime_{today:%Y%m%d}"
    found = uow.session.scalars(select(CardRun).where(CardRun.public_id == public_id)).first()
    if found is not None:
        return found
    dialect = postgresql if uow.session.get_bind().dialect.name == "postgresql" else sqlite
    table = CardRun.__table__
    values: dict[str, Any] = {
        "public_id": public_id,
        "source": "realtime",
        "status": RunStatus.MATCHING.value,
        "started_at": uow.clock.now(),
        "details": {},
        "rows_read": 0,
        "accepted": 0,
        "quarantined": 0,
        "duplicates": 0,
        "already_seen": 0,
        "matched": 0,
        "unresolved": 0,
        "rewards": 0,
        "clawbacks": 0,
        "posted": 0,
    }
    uow.session.execute(
        dialect.insert(table).values(**values).on_conflict_do_nothing(index_elements=["public_id"])
    )
    return uow.session.scalars(select(CardRun).where(CardRun.public_id == public_id)).one()


class ResolverCache:
    """The resolver the real-time path shares between requests, rebuilt when older than `ttl`
    seconds (new terminals, confirmed mappings and merchants are seen within that time)."""

    def __init__(self, ttl_seconds: float, threshold: float | None) -> None:
        self.ttl = ttl_seconds
        self.threshold = threshold
        self._lock = threading.Lock()
        self._resolver: Resolver | None = None
        self._built = 0.0

    def get(self, uow: UnitOfWork) -> Resolver:
        with self._lock:
            if self._resolver is None or time.monotonic() - self._built > self.ttl:
                self._resolver = service.build_resolver(uow, self.threshold)
                self._built = time.monotonic()
            return self._resolver
