"""Card-linked test data: a programme with a merchant, its terminal, a member with a linked card
and a card-linked benefit, and feed rows for it."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from beyondbank.alliance.models import CardLink, Member, Merchant, MerchantTerminal
from beyondbank.benefits.models import Benefit, Channel
from beyondbank.cards import frames
from beyondbank.cards.descriptors import acceptor_field
from beyondbank.core.uow import UnitOfWork
from tests import factories as f
from tests.benefits import factories as bf


@dataclass
class Programme:
    merchant: Merchant
    terminal: MerchantTerminal
    member: Member
    token: str
    benefit: Benefit


def link_card(uow: UnitOfWork, member: Member, token: str, at: datetime) -> CardLink:
    link = CardLink(member_id=member.id, card_token=token, last4=token[-4:], linked_at=at)
    uow.session.add(link)
    uow.session.flush()
    return link


def programme(uow: UnitOfWork, linked_at: datetime, **benefit: Any) -> Programme:
    """20% off capped at £10, card-linked, merchant-funded 60% and 2.5% commission, unless told."""
    merchant = f.make_merchant(uow, trading_name="Harbour Noodle Bar", sub_industry="restaurant")
    terminal = merchant.locations[0].terminals[0]
    member = f.make_member(uow, enrolled_at=linked_at)
    token = f"tok_{member.id:012d}"
    link_card(uow, member, token, linked_at)
    terms: dict[str, Any] = {
        "channels": [Channel.CARD_LINKED.value],
        "merchant_share_bps": 6_000,
        "commission_bps": 250,
        **benefit,
    }
    return Programme(merchant, terminal, member, token, bf.make_benefit(uow, merchant, **terms))


def feed_row(
    p: Programme,
    txn_id: str,
    at: datetime,
    amount_minor: int,
    *,
    type: str = frames.PURCHASE,
    original: str | None = None,
    token: str | None = None,
    terminal: str | None = None,
) -> dict[str, Any]:
    """One feed row at the programme's merchant, as text, the way a file holds it."""
    location = p.merchant.locations[0]
    return {
        "txn_id": txn_id,
        "network_ref": f"{abs(hash(txn_id)) % 10**12:012d}",
        "card_token": token or p.token,
        "type": type,
        "original_txn_id": original or "",
        "amount_minor": str(amount_minor),
        "currency": "GBP",
        "mcc": p.merchant.mcc,
        "acquirer_merchant_id": p.terminal.acquirer_merchant_id,
        "terminal_id": terminal if terminal is not None else (p.terminal.terminal_id or ""),
        "acceptor_name_location": acceptor_field(p.merchant.trading_name, location.city, "GB"),
        "txn_time": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def write_csv(path: Path, rows: list[dict[str, Any]], *, extra_lines: tuple[str, ...] = ()) -> Path:
    """A feed file with a header, the rows, then any raw (bad) lines as given."""
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(frames.FEED_COLUMNS), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        for line in extra_lines:
            handle.write(line + "\n")
    return path


def reward_fields(p: Programme, at: datetime, **over: Any) -> dict[str, Any]:
    """A reward row's columns: 800 of cash back on a purchase of 4,000 at the programme's
    merchant (480 merchant-funded, 320 bank-funded, 100 commission)."""
    return {
        "kind": frames.REWARD,
        "txn_id": "t-1",
        "original_txn_id": None,
        "txn_time": at,
        "member_id": p.member.id,
        "merchant_id": p.merchant.id,
        "currency": "GBP",
        "purchase_amount_minor": 4_000,
        "txn_amount_minor": 4_000,
        "benefit_id": p.benefit.id,
        "amount_minor": 800,
        "merchant_funded_minor": 480,
        "bank_funded_minor": 320,
        "commission_minor": 100,
        "points_benefit_id": None,
        "points": 0,
        **over,
    }
