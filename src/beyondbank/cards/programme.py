"""What a chunk of card transactions needs from the rest of the platform, as the engine's frames.

The programme (who held which card, circles, card-linked benefits with what is left of their
budgets) comes from the alliance and benefits services; the state (member counters, earlier
purchases, grants) from those services and the card tables. Everything is read for the
members, merchants and originals the chunk names, never the whole history.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import polars as pl
from sqlalchemy import String, any_, bindparam, select
from sqlalchemy.dialects.postgresql import ARRAY

from beyondbank.alliance import service as alliance
from beyondbank.benefits import service as benefits
from beyondbank.benefits.models import Benefit, BenefitStatus
from beyondbank.cards import frames
from beyondbank.cards.models import CardGrant, CardTransaction
from beyondbank.core.uow import UnitOfWork

_SLICE = 5_000


def benefits_frame(rows: Sequence[Benefit]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The BENEFITS and BENEFIT_TARGETS frames of these benefits."""
    table: dict[str, list[Any]] = {name: [] for name in frames.BENEFITS.names()}
    targets: list[tuple[int, int]] = []
    for b in rows:
        values = {
            "benefit_id": b.id,
            "merchant_id": b.merchant_id,
            "kind": b.kind.value,
            "active": b.status == BenefitStatus.ACTIVE,
            "currency": b.currency,
            "valid_from": b.valid_from,
            "valid_to": b.valid_to,
            "weekdays": list(b.weekdays),
            "hour_start": b.hour_start,
            "hour_end": b.hour_end,
            "timezone": b.timezone,
            "min_spend_minor": b.min_spend_minor,
            "percent_bps": b.percent_bps,
            "max_reward_minor": b.max_reward_minor,
            "fixed_minor": b.fixed_minor,
            "threshold_minor": b.threshold_minor,
            "points_multiplier": b.points_multiplier,
            "member_limit": b.member_limit,
            "limit_period": b.limit_period.value,
            "budget_remaining_minor": b.budget_remaining_minor,
            "quantity_remaining": b.quantity_remaining,
            "merchant_share_bps": b.merchant_share_bps,
            "commission_bps": b.commission_bps,
            "new_to_merchant_days": b.new_to_merchant_days,
        }
        for name, value in values.items():
            table[name].append(value)
        targets.extend((b.id, t.circle_id) for t in b.targets)
    return (
        pl.DataFrame(table, schema=frames.BENEFITS),
        pl.DataFrame(targets, schema=frames.BENEFIT_TARGETS, orient="row"),
    )


def load_benefits(
    uow: UnitOfWork, *, merchant_ids: Sequence[int]
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The card-linked benefits of these merchants, the capped ones locked (see
    `benefits.card_linked_benefits`)."""
    return benefits_frame(benefits.card_linked_benefits(uow, merchant_ids=merchant_ids, lock=True))


def programme_for(
    uow: UnitOfWork,
    chunk: pl.DataFrame,
    benefit_frame: pl.DataFrame,
    targets: pl.DataFrame,
) -> frames.Programme:
    """The programme as it concerns the cards in the chunk."""
    tokens = chunk.get_column("card_token").unique().to_list()
    cards = pl.DataFrame(alliance.card_holdings(uow, tokens), schema=frames.CARDS, orient="row")
    circles = frames.empty(frames.MEMBER_CIRCLES)
    if targets.height and cards.height:
        by_member = alliance.circle_ids_by_member(uow, cards.get_column("member_id").to_list())
        circles = pl.DataFrame(
            [(m, c) for m, ids in by_member.items() for c in sorted(ids)],
            schema=frames.MEMBER_CIRCLES,
            orient="row",
        )
    return frames.Programme(
        cards=cards, member_circles=circles, benefits=benefit_frame, benefit_targets=targets
    )


def whole_programme(uow: UnitOfWork) -> tuple[frames.Programme, frames.State]:
    """The whole programme as it stands, for a run in memory: every card that ever stood for a
    member, their circles, every card-linked benefit (nothing locked: nothing is spent), and
    the members' counters and earlier purchases that the benefits' rules read. Earlier grants
    are left out: a refund of a purchase from an earlier file claws nothing back here."""
    tokens = alliance.card_tokens_ever_linked(uow)
    cards = pl.DataFrame(alliance.card_holdings(uow, tokens), schema=frames.CARDS, orient="row")
    benefit_frame, targets = benefits_frame(benefits.card_linked_benefits(uow))
    whole = frames.Programme(
        cards=cards,
        member_circles=frames.empty(frames.MEMBER_CIRCLES),
        benefits=benefit_frame,
        benefit_targets=targets,
    )
    if targets.height and cards.height:
        by_member = alliance.circle_ids_by_member(uow, cards.get_column("member_id").to_list())
        circles = pl.DataFrame(
            [(m, c) for m, ids in by_member.items() for c in sorted(ids)],
            schema=frames.MEMBER_CIRCLES,
            orient="row",
        )
        whole = frames.Programme(cards, circles, benefit_frame, targets)
    no_refunds = pl.DataFrame(schema={"original_txn_id": pl.String()})
    state = state_for(uow, no_refunds, whole)
    return whole, state


def state_for(uow: UnitOfWork, chunk: pl.DataFrame, programme: frames.Programme) -> frames.State:
    """Counters, earlier purchases and grants the chunk's rules read."""
    member_ids = programme.cards.get_column("member_id").unique().to_list()
    benefit_ids = programme.benefits.get_column("benefit_id").to_list()
    usage = pl.DataFrame(
        benefits.usage_of(uow, member_ids, benefit_ids), schema=frames.USAGE, orient="row"
    )
    newcomers = (
        programme.benefits.filter(pl.col("new_to_merchant_days").is_not_null())
        .get_column("merchant_id")
        .unique()
        .to_list()
    )
    prior = pl.DataFrame(
        _prior_purchases(uow, member_ids, newcomers), schema=frames.PRIOR_PURCHASES, orient="row"
    )
    originals = (
        chunk.filter(pl.col("original_txn_id").is_not_null())
        .get_column("original_txn_id")
        .unique()
        .to_list()
    )
    return frames.State(usage=usage, prior_purchases=prior, grants=grants_of(uow, originals))


def _prior_purchases(
    uow: UnitOfWork, member_ids: Sequence[int], merchant_ids: Sequence[int]
) -> list[tuple[Any, ...]]:
    if not member_ids or not merchant_ids:
        return []
    rows: list[tuple[Any, ...]] = []
    ordered = sorted(member_ids)
    for start in range(0, len(ordered), _SLICE):
        rows.extend(
            tuple(r)
            for r in uow.session.execute(
                select(
                    CardTransaction.txn_id,
                    CardTransaction.member_id,
                    CardTransaction.merchant_id,
                    CardTransaction.txn_time,
                ).where(
                    CardTransaction.member_id.in_(ordered[start : start + _SLICE]),
                    CardTransaction.merchant_id.in_(merchant_ids),
                    CardTransaction.type == frames.PURCHASE,
                )
            ).all()
        )
    return rows


_GRANT_COLUMNS = [getattr(CardGrant, name) for name in frames.GRANTS.names()]


def grants_of(uow: UnitOfWork, txn_ids: Iterable[str]) -> pl.DataFrame:
    """The GRANTS rows of these purchases (those that were granted anything)."""
    wanted = sorted(set(txn_ids))
    rows: list[tuple[Any, ...]] = []
    for start in range(0, len(wanted), _SLICE):
        rows.extend(
            tuple(r)
            for r in uow.session.execute(
                select(*_GRANT_COLUMNS).where(CardGrant.txn_id.in_(wanted[start : start + _SLICE]))
            ).all()
        )
    return pl.DataFrame(rows, schema=frames.GRANTS, orient="row")


def known_txn_ids(
    uow: UnitOfWork, txn_ids: Iterable[str], *, purchases_only: bool = False
) -> set[str]:
    """Those of the txn_ids the platform has seen in earlier runs."""
    wanted = sorted(set(txn_ids))
    found: set[str] = set()
    postgres = uow.session.get_bind().dialect.name == "postgresql"
    # PostgreSQL takes a slice as one array parameter (`= ANY(…)`), a hundred thousand ids a
    # statement; SQLite has no arrays and a limit on bound parameters.
    size = 100_000 if postgres else _SLICE
    for start in range(0, len(wanted), size):
        ids = wanted[start : start + size]
        matches = (
            CardTransaction.txn_id == any_(bindparam("ids", ids, type_=ARRAY(String())))
            if postgres
            else CardTransaction.txn_id.in_(ids)
        )
        query = select(CardTransaction.txn_id).where(matches)
        if purchases_only:
            query = query.where(CardTransaction.type == frames.PURCHASE)
        found.update(uow.session.scalars(query))
    return found
