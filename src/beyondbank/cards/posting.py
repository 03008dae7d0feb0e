"""What card-linked rewards and clawbacks move in the ledger, posted from the reward outbox.

A grant: the member's cashback account is credited with the reward; the merchant's receivable
is debited with the share the merchant funds and the bank's benefit expense with the rest.
The bank's commission on the rewarded purchase is a second transaction (merchant receivable →
commission revenue), points a third (points issued → member points). A clawback posts the
mirror images of the parts it claws back. Every key derives from the card transaction
(`card-reward:<txn_id>`, …), so posting the same outbox row twice writes nothing new, and the
outbox row is marked posted in the same database transaction as its ledger postings.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Protocol, cast

from sqlalchemy import select, update

from beyondbank.alliance import service as alliance
from beyondbank.cards import frames
from beyondbank.cards.models import CardReward
from beyondbank.core.money import POINTS, Money
from beyondbank.core.uow import UnitOfWork
from beyondbank.ledger import bulk, chart
from beyondbank.ledger import service as ledger
from beyondbank.ledger.models import OwnerKind

OUTBOX_CHUNK = 20_000
Leg = ledger.Leg


class RewardRow(Protocol):
    """A reward or clawback row as the drafts read it: a CardReward, or a plain row of its table."""

    id: int
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


class Parties:
    """Public ids and ledger accounts the drafts name, each looked up once per posting pass."""

    def __init__(
        self, uow: UnitOfWork, accounts: Mapping[tuple[str, str | None, str], int] | None = None
    ) -> None:
        self.uow = uow
        self.members: dict[int, str] = {}
        self.merchants: dict[int, tuple[str, str]] = {}  # id → (public id, sub-industry)
        # (purpose, owner's public id, currency) → account id: `accounts` are known open (a
        # ledger account is never deleted, so its id holds for good once committed).
        self.accounts: dict[tuple[str, str | None, str], int] = dict(accounts or {})

    def prefetch(self, rewards: Sequence[RewardRow]) -> None:
        members = {r.member_id for r in rewards} - self.members.keys()
        self.members.update(alliance.member_refs(self.uow, members))
        merchants = {r.merchant_id for r in rewards} - self.merchants.keys()
        for merchant in alliance.merchants_by_ids(self.uow, merchants).values():
            self.merchants[merchant.id] = (merchant.public_id, merchant.sub_industry)
        # The members' and merchants' accounts that are open already, in one query; the rest
        # are opened (once each) as the drafts name them.
        wanted: dict[str, tuple[str, str | None, str]] = {}
        for r in rewards:
            member_ref, merchant_ref = self.members[r.member_id], self.merchants[r.merchant_id][0]
            for kind, ref, purpose, currency in (
                (OwnerKind.MEMBER, member_ref, "cashback", r.currency),
                (OwnerKind.MEMBER, member_ref, "points", POINTS),
                (OwnerKind.MERCHANT, merchant_ref, "receivable", r.currency),
            ):
                if (purpose, ref, currency) not in self.accounts:
                    code = ledger.account_code(kind, ref, purpose, currency)
                    wanted[code] = (purpose, ref, currency)
        for code, account_id in ledger.account_ids_by_code(self.uow, wanted).items():
            self.accounts[wanted[code]] = account_id

    def account(self, purpose: str, ref: str | None, currency: str) -> int:
        key = (purpose, ref, currency)
        if key not in self.accounts:
            self.accounts[key] = self._open(purpose, ref, currency)
        return self.accounts[key]

    def _open(self, purpose: str, ref: str | None, currency: str) -> int:
        uow = self.uow
        if purpose == "cashback" and ref:
            return chart.member_cashback(uow, ref, currency).id
        if purpose == "points" and ref:
            return chart.member_points(uow, ref).id
        if purpose == "receivable" and ref:
            return chart.receivable(uow, OwnerKind.MERCHANT, ref, currency).id
        if purpose == "expense":
            return chart.benefit_expense(uow, currency).id
        if purpose == "commission":
            return chart.commission_revenue(uow, currency).id
        if purpose == "points_issued":
            return chart.points_issued(uow).id
        raise ValueError(f"no ledger account for {purpose!r}")


def drafts_for(reward: RewardRow, parties: Parties) -> Iterator[ledger.Draft]:
    """The ledger transactions of one reward or clawback row."""
    clawback = reward.kind == frames.CLAWBACK
    member = parties.members[reward.member_id]
    merchant, category = parties.merchants[reward.merchant_id]
    cur = reward.currency
    dims = {
        "counterparty": merchant,
        "member": member,
        "category": category,
        "reference": reward.txn_id,
        "effective_at": reward.txn_time,
    }
    details = {
        "txn_id": reward.txn_id,
        "original_txn_id": reward.original_txn_id,
        "purchase_amount_minor": reward.purchase_amount_minor,
        "txn_amount_minor": reward.txn_amount_minor,
    }

    def legs(*pairs: tuple[int, int, bool], currency: str = cur) -> tuple[Leg, ...]:
        """(account, amount, debited by a grant) → legs, mirrored for a clawback; zeros dropped."""
        return tuple(
            Leg.debit(account, Money(amount, currency))
            if debit != clawback
            else Leg.credit(account, Money(amount, currency))
            for account, amount, debit in pairs
            if amount
        )

    if reward.amount_minor:
        yield ledger.Draft(
            key=f"card-{reward.kind}:{reward.txn_id}",
            kind=(chart.Kind.REWARD_CLAWBACK if clawback else chart.Kind.REWARD).value,
            legs=legs(
                (parties.account("receivable", merchant, cur), reward.merchant_funded_minor, True),
                (parties.account("expense", None, cur), reward.bank_funded_minor, True),
                (parties.account("cashback", member, cur), reward.amount_minor, False),
            ),
            description=("Card-linked reward clawed back" if clawback else "Card-linked reward"),
            details={
                **details,
                "merchant_funded_minor": reward.merchant_funded_minor,
                "bank_funded_minor": reward.bank_funded_minor,
                "benefit_id": reward.benefit_id,
            },
            **dims,  # type: ignore[arg-type]
        )
    if reward.commission_minor:
        yield ledger.Draft(
            key=f"card-commission-{reward.kind}:{reward.txn_id}",
            kind=(chart.Kind.COMMISSION_CLAWBACK if clawback else chart.Kind.COMMISSION).value,
            legs=legs(
                (parties.account("receivable", merchant, cur), reward.commission_minor, True),
                (parties.account("commission", None, cur), reward.commission_minor, False),
            ),
            description="Commission on a card-linked reward" + (" clawed back" if clawback else ""),
            details=details,
            **dims,  # type: ignore[arg-type]
        )
    if reward.points:
        yield ledger.Draft(
            key=f"card-points-{reward.kind}:{reward.txn_id}",
            kind=(chart.Kind.POINTS_CLAWBACK if clawback else chart.Kind.POINTS).value,
            legs=legs(
                (parties.account("points_issued", None, POINTS), reward.points, True),
                (parties.account("points", member, POINTS), reward.points, False),
                currency=POINTS,
            ),
            description="Card-linked points" + (" clawed back" if clawback else ""),
            details={**details, "points_benefit_id": reward.points_benefit_id},
            **dims,  # type: ignore[arg-type]
        )


def post_outbox(
    uow: UnitOfWork,
    *,
    now: Callable[[], datetime],
    on_chunk: Callable[[int], None] | None = None,
) -> int:
    """Post every reward row not yet posted, in chunks, each committed with its outbox marks.

    Safe to run again after a crash, and alongside another poster: the ledger's keys make a
    second posting of the same row a no-op, and the mark is a conditional update."""
    posted = 0
    parties = Parties(uow)
    last_id = 0
    while True:
        # Plain rows, not ORM objects: tens of thousands a chunk, read once, never changed.
        rewards = cast(
            Sequence[RewardRow],
            uow.session.execute(
                select(*CardReward.__table__.columns)
                .where(CardReward.posted_at.is_(None), CardReward.id > last_id)
                .order_by(CardReward.id)
                .limit(OUTBOX_CHUNK)
            ).all(),
        )
        if not rewards:
            return posted
        parties.prefetch(rewards)
        drafts = [d for r in rewards for d in drafts_for(r, parties)]
        bulk.post_many(uow, drafts)
        ids = [r.id for r in rewards]
        uow.session.execute(
            update(CardReward)
            .where(CardReward.id.in_(ids), CardReward.posted_at.is_(None))
            .values(posted_at=now())
        )
        uow.commit()
        last_id = ids[-1]
        posted += len(ids)
        if on_chunk is not None:
            on_chunk(len(ids))
