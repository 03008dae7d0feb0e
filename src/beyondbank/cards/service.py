"""Card-linked use cases: run a feed file through the engine exactly once, post its rewards,
and read runs, rewards and the descriptor review queue.

A run has three stages. Staging reads and validates the file (bad rows to the quarantine
file), keeps the first row of each txn_id and sorts the rest by (txn_time, txn_id) into a
Parquet file, so files larger than memory work. Matching takes the sorted file in chunks; each
chunk commits, in one database transaction, everything it decides: the txn_ids it has now
seen, its grants and clawback totals, its reward rows (the ledger outbox), member counters,
budgets, the review queue and the run's counters. Posting moves the outbox to the ledger in
chunks, each marked posted in the same transaction as its postings.

A crash anywhere loses nothing and doubles nothing: a committed chunk's txn_ids are skipped
by the rerun (each counts once, ever), an uncommitted chunk left no trace, and an unposted
outbox row is posted by the next run under the same ledger keys.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
from sqlalchemy import func, select, update
from sqlalchemy.dialects import postgresql, sqlite

from beyondbank.alliance import service as alliance
from beyondbank.benefits import service as benefits
from beyondbank.cards import engine, frames, generate, pipeline, posting, programme, tallies
from beyondbank.cards.models import (
    CardGrant,
    CardReward,
    CardRun,
    DescriptorMapping,
    DescriptorReview,
    ReviewStatus,
    RunStatus,
)
from beyondbank.cards.resolution import Resolver
from beyondbank.core.authz import Permission, Principal, require
from beyondbank.core.errors import Conflict, Forbidden, NotFound
from beyondbank.core.fastload import load_frame
from beyondbank.core.i18n import _
from beyondbank.core.ids import new_public_id
from beyondbank.core.pagination import paginate
from beyondbank.core.uow import UnitOfWork

ORPHAN = "refund without its original"  # the quarantine reason, before its details

# A test (or an operator's drill) may name a stage at which the process dies as if killed.
Checkpoint = Callable[[str], None]


def _no_checkpoint(stage: str) -> None:
    return None


@dataclass
class Progress:
    """Callbacks a command uses to show progress; all optional."""

    staged: Callable[[int], None] = lambda n: None
    matched: Callable[[int], None] = lambda n: None
    posted: Callable[[int], None] = lambda n: None
    total: Callable[[int], None] = lambda n: None


@dataclass
class RunFiles:
    quarantine: Path
    rewards_parquet: Path
    rewards_csv: Path


# -- starting a run -------------------------------------------------------------------------


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def start_run(uow: UnitOfWork, source: str, sha256: str | None) -> CardRun:
    run = CardRun(
        public_id=new_public_id("run"),
        source=source[-300:],
        source_sha256=sha256,
        status=RunStatus.MATCHING,
        started_at=uow.clock.now(),
        details={},
    )
    uow.session.add(run)
    uow.commit()
    return run


def run_file(
    uow: UnitOfWork,
    path: Path,
    *,
    out_dir: Path,
    chunk_rows: int = 1_000_000,
    threshold: float | None = None,
    progress: Progress | None = None,
    checkpoint: Checkpoint = _no_checkpoint,
) -> CardRun:
    """Match and post one feed file; returns the finished run (its counters are the summary)."""
    progress = progress or Progress()
    out_dir.mkdir(parents=True, exist_ok=True)
    posting.post_outbox(uow, now=uow.clock.now)  # whatever an interrupted run left unposted
    run = start_run(uow, path.name, _sha256(path))
    files = RunFiles(
        quarantine=out_dir / f"{run.public_id}-quarantine.csv",
        rewards_parquet=out_dir / f"{run.public_id}-rewards.parquet",
        rewards_csv=out_dir / f"{run.public_id}-rewards.csv",
    )
    with tempfile.TemporaryDirectory(dir=out_dir, prefix=f"{run.public_id}-") as work:
        # Cards linked after this moment stand for their member from their link onwards, after
        # every transaction in a file of the past: the members' cards as they are now decide.
        members = pipeline.token_hashes(
            pl.Series(alliance.card_tokens_ever_linked(uow), dtype=pl.String())
        )
        staged, counts = pipeline.stage(
            path,
            Path(work),
            files.quarantine,
            chunk_rows=chunk_rows,
            members=members,
            on_rows=progress.staged,
        )
        _save_counts(uow, run, counts, files)
        checkpoint("staged")
        progress.total(staged.rows)
        # Purchases no member's card made are recorded first, so that a refund of one, later in
        # the file, finds its original among the transactions seen.
        for index, others in enumerate(staged.other_chunks(chunk_rows)):
            record_unmatched(uow, run, others)
            checkpoint(f"others-{index}-recorded")
            uow.commit()
            progress.matched(others.height)
        resolver = build_resolver(uow, threshold)
        parts = Path(work) / "rewards"
        parts.mkdir()
        for index, chunk in enumerate(staged.chunks(chunk_rows)):
            matched = match_chunk(uow, run, chunk, resolver)
            checkpoint(f"chunk-{index}-matched")
            uow.commit()
            checkpoint(f"chunk-{index}-committed")
            if matched.orphans.height:
                with files.quarantine.open("a", encoding="utf-8", newline="") as bad:
                    matched.orphans.write_csv(bad, include_header=False)
            _write_part(uow, matched.outcome, parts / f"{index:06d}.parquet")
            progress.matched(chunk.height)
        pipeline.write_rewards(parts, files.rewards_parquet, files.rewards_csv, PUBLIC_REWARDS)
    _set_status(uow, run, RunStatus.POSTING)
    checkpoint("matched")
    run.posted = posting.post_outbox(uow, now=uow.clock.now, on_chunk=progress.posted)
    checkpoint("posted")
    return _set_status(uow, run, RunStatus.DONE)


def _set_status(uow: UnitOfWork, run: CardRun, status: RunStatus) -> CardRun:
    run = uow.session.get_one(CardRun, run.id)
    run.status = status
    if status is RunStatus.DONE:
        run.finished_at = uow.clock.now()
    uow.commit()
    return run


def _save_counts(uow: UnitOfWork, run: CardRun, counts: pipeline.Counts, files: RunFiles) -> None:
    row = uow.session.get_one(CardRun, run.id)
    row.rows_read = counts.rows_read
    row.accepted = counts.accepted
    row.quarantined = counts.quarantined
    row.duplicates = counts.duplicates
    row.details = {**row.details, "quarantine_reasons": counts.reasons}
    row.quarantine_path = str(files.quarantine)
    row.rewards_path = str(files.rewards_parquet)
    uow.commit()


# -- matching one chunk ------------------------------------------------------------------------


def build_resolver(uow: UnitOfWork, threshold: float | None) -> Resolver:
    """A resolver over the alliance as it is now: terminals, confirmed mappings, locations."""
    terminals = pl.DataFrame(
        alliance.alliance_terminals(uow),
        schema={
            "acquirer_merchant_id": pl.String(),
            "terminal_id": pl.String(),
            "location_id": pl.Int64(),
            "merchant_id": pl.Int64(),
        },
        orient="row",
    )
    locations = alliance.alliance_locations(uow)
    merchants = pl.DataFrame(
        {
            "merchant_id": [r["merchant_id"] for r in locations],
            "location_id": [r["location_id"] for r in locations],
            "name": [r["name"] for r in locations],
            "mcc": [r["mcc"] for r in locations],
            "city": [r["city"] for r in locations],
            "country": [r["country"] for r in locations],
        },
        schema={
            "merchant_id": pl.Int64(),
            "location_id": pl.Int64(),
            "name": pl.String(),
            "mcc": pl.String(),
            "city": pl.String(),
            "country": pl.String(),
        },
    )
    mappings = pl.DataFrame(
        uow.session.execute(
            select(
                DescriptorMapping.descriptor_key,
                DescriptorMapping.merchant_id,
                DescriptorMapping.location_id,
            )
        ).all(),
        schema={
            "descriptor_key": pl.String(),
            "merchant_id": pl.Int64(),
            "location_id": pl.Int64(),
        },
        orient="row",
    )
    kwargs: dict[str, Any] = {} if threshold is None else {"threshold": threshold}
    return Resolver(terminals=terminals, mappings=mappings, merchants=merchants, **kwargs)


Matcher = Callable[[pl.DataFrame, frames.Programme, frames.State], frames.Outcome]


@dataclass(frozen=True)
class Matched:
    """What one chunk decided; `orphans` are refunds without their original (QUARANTINE rows)."""

    outcome: frames.Outcome
    seen: int  # txn_ids already seen in earlier runs, skipped
    orphans: pl.DataFrame
    resolved: pl.DataFrame


def match_chunk(
    uow: UnitOfWork,
    run: CardRun,
    chunk: pl.DataFrame,
    resolver: Resolver,
    *,
    matcher: Matcher = engine.match,
    arrived: int = 0,
) -> Matched:
    """Match one sorted chunk and write what it decides (not committed here).

    The capped benefits of the chunk's merchants are locked first, in id order, so the budgets
    and quantities the rules read are the ones this transaction spends. `arrived` counts rows
    read now rather than at staging (the real-time path)."""
    chunk = frames.conform(chunk, frames.TRANSACTIONS, "chunk")
    seen = programme.known_txn_ids(uow, chunk.get_column("txn_id").to_list())
    fresh = chunk.filter(~pl.col("txn_id").is_in(list(seen)))
    fresh, orphans = _refunds_with_originals(uow, fresh)
    resolution = resolver.resolve(fresh)
    resolved = resolution.resolved
    merchants = resolved.get_column("merchant_id").drop_nulls().unique().to_list()
    benefit_frame, targets = programme.load_benefits(uow, merchant_ids=merchants)
    program = programme.programme_for(uow, resolved, benefit_frame, targets)
    state = programme.state_for(uow, resolved, program)
    outcome = matcher(resolved, program, state)
    _record(uow, run, resolved, outcome, state)
    _review(uow, resolution.review)
    _count(uow, run, len(seen), orphans, resolved, outcome, arrived)
    return Matched(outcome, len(seen), orphans, resolved)


def record_unmatched(uow: UnitOfWork, run: CardRun, others: pl.DataFrame) -> None:
    """Record purchases no member's card made (`pipeline.OTHER` rows) as seen, skipping those
    seen before: they earn nothing, but each counts once, ever, and may be a refund's original."""
    seen = programme.known_txn_ids(uow, others.get_column("txn_id").to_list())
    fresh = others.filter(~pl.col("txn_id").is_in(list(seen)))
    load_frame(
        uow.session.connection(),
        "card_transactions",
        fresh.select(
            "txn_id",
            pl.lit(run.id).alias("run_id"),
            pl.lit(frames.PURCHASE).alias("type"),
            pl.lit(None, pl.String()).alias("original_txn_id"),
            "txn_time",
            "amount_minor",
            "currency",
            pl.lit(None, pl.Int64()).alias("member_id"),
            pl.lit(None, pl.Int64()).alias("merchant_id"),
        ),
    )
    uow.session.execute(
        update(CardRun)
        .where(CardRun.id == run.id)
        .values(
            already_seen=CardRun.already_seen + len(seen),
            matched=CardRun.matched + fresh.height,
        )
    )
    uow.session.expire(run)


def _refunds_with_originals(
    uow: UnitOfWork, chunk: pl.DataFrame
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The chunk without refunds and chargebacks whose original purchase was never seen (in an
    earlier run or earlier in this chunk), and those as quarantine rows."""
    is_refund = pl.col("type") != frames.PURCHASE
    originals = chunk.filter(is_refund).get_column("original_txn_id").unique().to_list()
    if not originals:
        return chunk, frames.empty(frames.QUARANTINE)
    here = set(chunk.filter(~is_refund).get_column("txn_id").to_list())
    known = here | programme.known_txn_ids(
        uow, [o for o in originals if o not in here], purchases_only=True
    )
    orphan = is_refund & ~pl.col("original_txn_id").is_in(list(known))
    orphans = chunk.filter(orphan).select(
        "line",
        pl.format(f"{ORPHAN}: no purchase {{}} was seen", "original_txn_id").alias("reason"),
        pl.concat_str(
            [pl.col(c).cast(pl.String).fill_null("") for c in frames.FEED_COLUMNS], separator=","
        ).alias("raw"),
    )
    return chunk.filter(~orphan), orphans


def _record(
    uow: UnitOfWork,
    run: CardRun,
    resolved: pl.DataFrame,
    outcome: frames.Outcome,
    state: frames.State,
) -> None:
    connection = uow.session.connection()
    members = outcome.purchases.select("txn_id", "member_id")
    seen = (
        resolved.join(members, on="txn_id", how="left")
        .with_columns(
            pl.when(pl.col("member_id").is_not_null()).then(pl.col("merchant_id")).alias("merchant")
        )
        .select(
            "txn_id",
            pl.lit(run.id).alias("run_id"),
            "type",
            "original_txn_id",
            "txn_time",
            "amount_minor",
            "currency",
            "member_id",
            pl.col("merchant").alias("merchant_id"),
        )
    )
    load_frame(connection, "card_transactions", seen)
    _record_grants(uow, run, outcome.grants, state.grants, resolved)
    load_frame(
        connection,
        "card_rewards",
        outcome.rewards.select(pl.lit(run.id).alias("run_id"), *frames.REWARDS.names()),
    )
    benefits.add_usage(uow, list(outcome.usage_added.iter_rows()))
    benefits.consume(uow, [(b, q or 0, n or 0) for b, q, n in outcome.consumed.iter_rows()])


def _record_grants(
    uow: UnitOfWork,
    run: CardRun,
    grants: pl.DataFrame,
    before: pl.DataFrame,
    resolved: pl.DataFrame,
) -> None:
    """New grants are inserted; earlier ones move their clawback totals by a conditional update
    on the totals this chunk read, so two runs clawing back the same grant cannot both win."""
    known = before.select("txn_id", "refunded_minor", "clawed_back_minor")
    changed = grants.join(known, on="txn_id", how="inner", suffix="_before")
    new = grants.join(known, on="txn_id", how="anti")
    times = resolved.select("txn_id", pl.col("txn_time").alias("granted_at"))
    load_frame(
        uow.session.connection(),
        "card_grants",
        new.with_columns(pl.lit(run.id).alias("run_id"))
        .join(times, on="txn_id", how="left")
        .select("run_id", "granted_at", *frames.GRANTS.names()),
    )
    for row in changed.iter_rows(named=True):
        done = uow.session.execute(
            update(CardGrant)
            .where(
                CardGrant.txn_id == row["txn_id"],
                CardGrant.refunded_minor == row["refunded_minor_before"],
                CardGrant.clawed_back_minor == row["clawed_back_minor_before"],
            )
            .values(
                refunded_minor=row["refunded_minor"],
                clawed_back_minor=row["clawed_back_minor"],
                merchant_clawed_back_minor=row["merchant_clawed_back_minor"],
                commission_clawed_back_minor=row["commission_clawed_back_minor"],
                points_clawed_back=row["points_clawed_back"],
            )
            .returning(CardGrant.id)
        ).first()
        if done is None:
            raise Conflict(
                _(
                    "The grant of %(txn_id)s changed while this run clawed it back; rerun.",
                    txn_id=row["txn_id"],
                )
            )


def _review(uow: UnitOfWork, review: pl.DataFrame) -> None:
    """Add the chunk's unsure descriptors to the review queue, or count them again."""
    if not review.height:
        return
    now = uow.clock.now()
    dialect = postgresql if uow.session.get_bind().dialect.name == "postgresql" else sqlite
    table = DescriptorReview.__table__
    for row in review.iter_rows(named=True):
        stmt = dialect.insert(table).values(
            public_id=new_public_id("dsc"),
            descriptor_key=row["descriptor_key"],
            mcc=row["mcc"],
            example=row["acceptor_name_location"][:64],
            city=row["city"],
            candidate_merchant_id=row["merchant_id"],
            candidate_location_id=row["location_id"],
            score=row["score"],
            transactions=row["transactions"],
            status=ReviewStatus.OPEN.value,
            first_seen_at=now,
            last_seen_at=now,
        )
        uow.session.execute(
            stmt.on_conflict_do_update(
                index_elements=[table.c.descriptor_key, table.c.mcc],
                set_={
                    "transactions": table.c.transactions + stmt.excluded.transactions,
                    "last_seen_at": stmt.excluded.last_seen_at,
                },
            )
        )


def _count(
    uow: UnitOfWork,
    run: CardRun,
    seen: int,
    orphans: pl.DataFrame,
    resolved: pl.DataFrame,
    outcome: frames.Outcome,
    arrived: int,
) -> None:
    """Move the run's counters by atomic increments: real-time events share a run and count
    concurrently."""
    kinds = outcome.rewards.get_column("kind")
    uow.session.execute(
        update(CardRun)
        .where(CardRun.id == run.id)
        .values(
            rows_read=CardRun.rows_read + arrived,
            already_seen=CardRun.already_seen + seen,
            duplicates=CardRun.duplicates + outcome.duplicates.height,
            quarantined=CardRun.quarantined + orphans.height,
            accepted=CardRun.accepted + arrived - orphans.height,
            matched=CardRun.matched + resolved.height - outcome.duplicates.height,
            unresolved=CardRun.unresolved + resolved.get_column("merchant_id").null_count(),
            rewards=CardRun.rewards + int((kinds == frames.REWARD).sum()),
            clawbacks=CardRun.clawbacks + int((kinds == frames.CLAWBACK).sum()),
        )
    )
    if orphans.height:  # only batch runs quarantine; their chunks run one after another
        row = uow.session.get_one(CardRun, run.id)
        reasons = dict(row.details.get("quarantine_reasons", {}))
        reasons[ORPHAN] = reasons.get(ORPHAN, 0) + orphans.height
        row.details = {**row.details, "quarantine_reasons": reasons}
        uow.session.flush()
    # The counters moved in the database; the loaded row must not hide that.
    uow.session.expire(run)


def run_totals(uow: UnitOfWork, run_id: int) -> dict[str, int]:
    """Amounts rewarded and clawed back by the run, per currency (`rewarded:GBP`, `clawed_back:PTS`)."""
    totals: dict[str, int] = {}
    rows = uow.session.execute(
        select(
            CardReward.kind,
            CardReward.currency,
            func.sum(CardReward.amount_minor),
            func.sum(CardReward.points),
        )
        .where(CardReward.run_id == run_id)
        .group_by(CardReward.kind, CardReward.currency)
    ).all()
    for kind, currency, amount, points in rows:
        label = "rewarded" if kind == frames.REWARD else "clawed_back"
        totals[f"{label}:{currency}"] = totals.get(f"{label}:{currency}", 0) + int(amount or 0)
        totals[f"{label}:PTS"] = totals.get(f"{label}:PTS", 0) + int(points or 0)
    return totals


# -- the rewards file ----------------------------------------------------------------------------


# The rewards file names members, merchants and benefits by their public ids.
_PUBLIC_NAMES = {
    "member_id": "member",
    "merchant_id": "merchant",
    "benefit_id": "benefit",
    "points_benefit_id": "points_benefit",
}
PUBLIC_REWARDS = pl.Schema(
    {
        _PUBLIC_NAMES.get(c, c): (pl.String() if c in _PUBLIC_NAMES else t)
        for c, t in frames.REWARDS.items()
    }
)


def _write_part(uow: UnitOfWork, outcome: frames.Outcome, path: Path) -> None:
    """The chunk's reward rows with public ids, as one part of the rewards file."""
    rewards = outcome.rewards
    refs = _PublicRefs.of(
        uow,
        rewards.get_column("member_id").to_list(),
        rewards.get_column("merchant_id").to_list(),
        [*rewards["benefit_id"].drop_nulls(), *rewards["points_benefit_id"].drop_nulls()],
    )

    def public(column: str, names: dict[int, str]) -> pl.Expr:
        return pl.col(column).replace_strict(names, return_dtype=pl.String(), default=None)

    rewards.with_columns(
        public("member_id", refs.members),
        public("merchant_id", refs.merchants),
        public("benefit_id", refs.benefits),
        public("points_benefit_id", refs.benefits),
    ).rename(_PUBLIC_NAMES).write_parquet(path)


@dataclass(frozen=True)
class _PublicRefs:
    """Public ids of the members, merchants and benefits some reward rows name."""

    members: dict[int, str]
    merchants: dict[int, str]
    benefits: dict[int, str]

    @classmethod
    def of(
        cls,
        uow: UnitOfWork,
        member_ids: Iterable[int],
        merchant_ids: Iterable[int],
        benefit_ids: Iterable[int],
    ) -> _PublicRefs:
        found = benefits.benefits_by_ids(uow, set(benefit_ids))
        return cls(
            alliance.member_refs(uow, member_ids),
            alliance.merchant_public_ids(uow, set(merchant_ids)),
            {b.id: b.public_id for b in found.values()},
        )


# -- reads -----------------------------------------------------------------------------------


def _staff_only(actor: Principal) -> None:
    require(actor, Permission.CARDS_READ)
    if actor.is_org_bound or actor.kind == "customer":
        raise Forbidden(_("Card-linked runs are the bank's; a merchant reads its own rewards."))


def list_runs(
    uow: UnitOfWork, actor: Principal, *, cursor: str | None = None, limit: int = 50
) -> tuple[Sequence[CardRun], str | None]:
    """The runs, newest first, with their counters as they stand (the real-time run's tallies
    added)."""
    _staff_only(actor)
    runs, next_cursor = paginate(
        uow.session, select(CardRun), CardRun.id, cursor=cursor, limit=limit, descending=True
    )
    return tallies.with_tallies(uow, runs), next_cursor


def get_run(uow: UnitOfWork, actor: Principal, public_id: str) -> CardRun:
    _staff_only(actor)
    run = uow.session.scalars(select(CardRun).where(CardRun.public_id == public_id)).one_or_none()
    if run is None:
        raise NotFound(_("No card-linked run %(public_id)r.", public_id=public_id))
    [counted] = tallies.with_tallies(uow, [run])
    return counted


@dataclass(frozen=True, slots=True)
class RewardView:
    reward: CardReward
    member: str
    merchant: str
    benefit: str | None
    points_benefit: str | None


def list_rewards(
    uow: UnitOfWork,
    actor: Principal,
    *,
    run: str | None = None,
    merchant: str | None = None,
    member: str | None = None,
    kind: str | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> tuple[list[RewardView], str | None]:
    """Reward and clawback rows, newest first; a merchant's users see only their merchant's."""
    require(actor, Permission.CARDS_READ)
    query = select(CardReward)
    if actor.merchant_id is not None:
        query = query.where(CardReward.merchant_id == actor.merchant_id)
    if merchant is not None:
        found = alliance.get_merchant(uow, actor, merchant, field="merchant")
        query = query.where(CardReward.merchant_id == found.id)
    if member is not None:
        holder = alliance.member_by_public_id(uow, member)
        query = query.where(CardReward.member_id == (holder.id if holder else -1))
    if run is not None:
        query = query.where(CardReward.run_id == get_run(uow, actor, run).id)
    if kind is not None:
        query = query.where(CardReward.kind == kind)
    rows, next_cursor = paginate(
        uow.session, query, CardReward.id, cursor=cursor, limit=limit, descending=True
    )
    views = reward_views(uow, rows)
    return views, next_cursor


def reward_views(uow: UnitOfWork, rows: Sequence[CardReward]) -> list[RewardView]:
    """Reward rows with the public ids of their member, merchant and benefits."""
    refs = _PublicRefs.of(
        uow,
        (r.member_id for r in rows),
        (r.merchant_id for r in rows),
        (b for r in rows for b in (r.benefit_id, r.points_benefit_id) if b is not None),
    )
    return [
        RewardView(
            r,
            refs.members[r.member_id],
            refs.merchants[r.merchant_id],
            refs.benefits.get(r.benefit_id) if r.benefit_id else None,
            refs.benefits.get(r.points_benefit_id) if r.points_benefit_id else None,
        )
        for r in rows
    ]


def feed_world(uow: UnitOfWork, currency: str) -> generate.World:
    """The programme as the synthetic feed generator sees it: alliance locations, their
    terminals, members' linked cards."""
    locations = alliance.alliance_locations(uow)
    merchants = pl.DataFrame(
        [
            (
                r["merchant_id"],
                r["location_id"],
                r["name"],
                r["mcc"],
                r["city"],
                r["country"],
                r["timezone"],
            )
            for r in locations
        ],
        schema=generate.WORLD_MERCHANTS,
        orient="row",
    )
    terminals = pl.DataFrame(
        [(loc, aid, tid) for aid, tid, loc, _other in alliance.alliance_terminals(uow)],
        schema=generate.WORLD_TERMINALS,
        orient="row",
    )
    cards = pl.DataFrame(
        [(token, at) for token, _other, at in alliance.linked_cards(uow)],
        schema=generate.WORLD_CARDS,
        orient="row",
    )
    return generate.World(merchants=merchants, terminals=terminals, cards=cards, currency=currency)


# -- the programme over time (console charts) ---------------------------------------------------


def cashback_by_month(uow: UnitOfWork, bounds: Sequence[Any], currency: str) -> list[int]:
    """Card-linked cashback granted less clawed back, in minor units, for each month between
    consecutive `bounds` (by the purchase's or refund's time). One grouped query."""
    from sqlalchemy import case

    month = case(
        *[(CardReward.txn_time < bound, index - 1) for index, bound in enumerate(bounds)],
        else_=len(bounds) - 1,
    )
    signed = case(
        (CardReward.kind == frames.CLAWBACK, -CardReward.amount_minor),
        else_=CardReward.amount_minor,
    )
    inner = (
        select(month.label("month"), signed.label("amount"))
        .where(
            CardReward.currency == currency,
            CardReward.txn_time >= bounds[0],
            CardReward.txn_time < bounds[-1],
        )
        .subquery()
    )
    found: dict[int, Any] = {
        month: value
        for month, value in uow.session.execute(
            select(inner.c.month, func.sum(inner.c.amount)).group_by(inner.c.month)
        )
    }
    return [int(found.get(index, 0) or 0) for index in range(len(bounds) - 1)]


# -- a customer's own card-linked rewards (issue 6) ---------------------------------------------


@dataclass(frozen=True, slots=True)
class MyGrant:
    """One of my purchases' card-linked rewards, with the refunds that took part of it back."""

    reward: CardReward
    merchant_name: str
    clawbacks: list[CardReward]


@dataclass(frozen=True, slots=True)
class MyCardRewards:
    grants: list[MyGrant]  # this page, newest first
    next_cursor: str | None
    cashback_minor: dict[str, int]  # granted less clawed back, by currency, on every page
    clawed_back_minor: dict[str, int]
    points: int  # earned less clawed back


def my_card_rewards(
    uow: UnitOfWork, actor: Principal, *, cursor: str | None = None, limit: int = 20
) -> MyCardRewards:
    """The signed-in customer's card-linked rewards (cashback and points), each with the
    clawbacks that reverse it, and the totals over all of them: a fixed number of queries."""
    if actor.customer_id is None:
        raise Forbidden(_("Only the bank's customers have card-linked rewards of their own."))
    member = alliance.member_for_customer(uow, actor.customer_id)
    if member is None:
        return MyCardRewards([], None, {}, {}, 0)
    mine = select(CardReward).where(CardReward.member_id == member.id)
    rows, next_cursor = paginate(
        uow.session,
        mine.where(CardReward.kind == frames.REWARD),
        CardReward.id,
        cursor=cursor,
        limit=limit,
        descending=True,
    )
    clawbacks: dict[str, list[CardReward]] = {}
    if rows:
        for row in uow.session.scalars(
            mine.where(
                CardReward.kind == frames.CLAWBACK,
                CardReward.original_txn_id.in_([r.txn_id for r in rows]),
            ).order_by(CardReward.txn_time, CardReward.id)
        ):
            clawbacks.setdefault(row.original_txn_id or "", []).append(row)
    merchants = alliance.merchants_by_ids(uow, {r.merchant_id for r in rows})
    grants = [
        MyGrant(r, merchants[r.merchant_id].trading_name, clawbacks.get(r.txn_id, [])) for r in rows
    ]
    cashback: dict[str, int] = {}
    clawed: dict[str, int] = {}
    points = 0
    totals = uow.session.execute(
        select(
            CardReward.kind,
            CardReward.currency,
            func.sum(CardReward.amount_minor),
            func.sum(CardReward.points),
        )
        .where(CardReward.member_id == member.id)
        .group_by(CardReward.kind, CardReward.currency)
    )
    for kind, currency, amount, earned in totals:
        sign = -1 if kind == frames.CLAWBACK else 1
        cashback[currency] = cashback.get(currency, 0) + sign * int(amount or 0)
        points += sign * int(earned or 0)
        if kind == frames.CLAWBACK:
            clawed[currency] = clawed.get(currency, 0) + int(amount or 0)
    return MyCardRewards(grants, next_cursor, cashback, clawed, points)
