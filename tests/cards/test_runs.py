"""A card feed run end to end on the database: rewards and clawbacks posted once, state kept
between runs, nothing lost (every row read is accepted, quarantined or skipped as seen), and a
run killed at any stage leaves, once rerun, exactly what one clean run leaves."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from sqlalchemy import func, select

from beyondbank.benefits.models import Benefit, BenefitUsage
from beyondbank.cards import frames, service
from beyondbank.cards.descriptors import acceptor_field
from beyondbank.cards.models import (
    CardGrant,
    CardReward,
    CardRun,
    CardTransaction,
    DescriptorReview,
    RunStatus,
)
from beyondbank.core.money import Money
from beyondbank.core.uow import UnitOfWork
from beyondbank.ledger import chart, verify
from beyondbank.ledger import service as ledger
from beyondbank.ledger.models import Account, LedgerTransaction, OwnerKind, Posting
from tests.cards import factories as cf

LINKED = datetime(2026, 11, 1, tzinfo=UTC)
MONDAY = datetime(2026, 11, 16, 12, 30, tzinfo=UTC)


def _run(uow: UnitOfWork, path: Path, out: Path, **kwargs: Any) -> CardRun:
    return service.run_file(
        uow, path, out_dir=out, chunk_rows=kwargs.pop("chunk_rows", 2), **kwargs
    )


def _ledger(uow: UnitOfWork) -> set[tuple[str, str, tuple[tuple[str, int], ...]]]:
    """The ledger as content: each transaction's key, kind and postings by account code."""
    rows = uow.session.execute(
        select(
            LedgerTransaction.idempotency_key,
            LedgerTransaction.kind,
            Account.code,
            Posting.amount_minor,
        )
        .join(Posting, Posting.transaction_id == LedgerTransaction.id)
        .join(Account, Account.id == Posting.account_id)
    ).all()
    grouped: dict[tuple[str, str], list[tuple[str, int]]] = {}
    for key, kind, code, amount in rows:
        grouped.setdefault((key, kind), []).append((code, amount))
    return {(k, kind, tuple(sorted(p))) for (k, kind), p in grouped.items()}


def _count(uow: UnitOfWork, model: type[Any]) -> int:
    return uow.session.scalar(select(func.count()).select_from(model)) or 0


def test_a_purchase_is_rewarded_and_posted_once(uow: UnitOfWork, tmp_path: Path) -> None:
    p = cf.programme(uow, LINKED)
    feed = cf.write_csv(tmp_path / "feed.csv", [cf.feed_row(p, "t-1", MONDAY, 4_000)])

    run = _run(uow, feed, tmp_path / "out")

    assert run.status is RunStatus.DONE
    assert (run.rows_read, run.accepted, run.matched, run.rewards) == (1, 1, 1, 1)
    # 20% of £40.00 = £8.00: the merchant funds 60% (£4.80), the bank £3.20; 2.5% commission.
    cashback = chart.member_cashback(uow, p.member.public_id, "GBP")
    assert ledger.balance(uow, cashback).posted == Money(800, "GBP")
    receivable = chart.receivable(uow, OwnerKind.MERCHANT, p.merchant.public_id, "GBP")
    assert ledger.balance(uow, receivable).posted == Money(480 + 100, "GBP")
    assert ledger.balance(uow, chart.benefit_expense(uow, "GBP")).posted == Money(320, "GBP")
    rewards = pl.read_parquet(run.rewards_path or "")
    assert rewards.select("kind", "txn_id", "member", "merchant", "amount_minor").row(0) == (
        "reward",
        "t-1",
        p.member.public_id,
        p.merchant.public_id,
        800,
    )
    assert pl.read_csv(tmp_path / "out" / f"{run.public_id}-rewards.csv").height == 1
    assert verify.run(uow.session).ok


def test_rerunning_a_file_changes_nothing(uow: UnitOfWork, tmp_path: Path) -> None:
    p = cf.programme(uow, LINKED)
    feed = cf.write_csv(
        tmp_path / "feed.csv",
        [cf.feed_row(p, f"t-{i}", MONDAY + timedelta(hours=i), 2_500) for i in range(5)],
    )
    _run(uow, feed, tmp_path / "out")
    before = _ledger(uow)

    again = _run(uow, feed, tmp_path / "out")

    assert (again.already_seen, again.matched, again.rewards) == (5, 0, 0)
    assert _ledger(uow) == before
    assert _count(uow, CardTransaction) == 5


def test_a_refund_in_next_weeks_file_claws_back_pro_rata(uow: UnitOfWork, tmp_path: Path) -> None:
    p = cf.programme(uow, LINKED)
    _run(uow, cf.write_csv(tmp_path / "w1.csv", [cf.feed_row(p, "t-1", MONDAY, 4_000)]), tmp_path)
    refund = cf.feed_row(
        p, "r-1", MONDAY + timedelta(days=7), 1_000, type=frames.REFUND, original="t-1"
    )

    run = _run(uow, cf.write_csv(tmp_path / "w2.csv", [refund]), tmp_path)

    assert run.clawbacks == 1
    # A quarter of the purchase refunded: a quarter of £8.00 and of the £1.00 commission.
    cashback = chart.member_cashback(uow, p.member.public_id, "GBP")
    assert ledger.balance(uow, cashback).posted == Money(600, "GBP")
    grant = uow.session.scalars(select(CardGrant)).one()
    assert (grant.clawed_back_minor, grant.commission_clawed_back_minor) == (200, 25)
    assert (grant.merchant_clawed_back_minor, grant.refunded_minor) == (120, 1_000)


def test_bad_rows_and_orphan_refunds_are_quarantined_and_counted(
    uow: UnitOfWork, tmp_path: Path
) -> None:
    p = cf.programme(uow, LINKED)
    good = cf.feed_row(p, "t-1", MONDAY, 4_000)
    orphan = cf.feed_row(p, "r-9", MONDAY, 500, type=frames.REFUND, original="never-seen")
    bad = {**cf.feed_row(p, "t-2", MONDAY, 100), "currency": "XXY"}
    feed = cf.write_csv(tmp_path / "feed.csv", [good, orphan, bad, good])

    run = _run(uow, feed, tmp_path / "out")

    assert run.rows_read == 4
    assert run.rows_read == run.accepted + run.quarantined + run.duplicates
    assert (run.quarantined, run.duplicates, run.rewards) == (2, 1, 1)
    assert run.accepted == run.already_seen + run.matched
    quarantine = pl.read_csv(run.quarantine_path or "", schema_overrides={"raw": pl.String})
    assert sorted(quarantine.get_column("line").to_list()) == [3, 4]
    reasons = dict(zip(quarantine["line"], quarantine["reason"], strict=True))
    assert reasons[3].startswith("refund without its original")
    assert "currency" in reasons[4]
    recorded = run.details["quarantine_reasons"]
    assert sum(recorded.values()) == run.quarantined
    assert recorded["refund without its original"] == 1


def test_budgets_and_member_counters_move_with_the_grants(uow: UnitOfWork, tmp_path: Path) -> None:
    p = cf.programme(uow, LINKED, budget_minor=1_000, member_limit=2)
    rows = [cf.feed_row(p, f"t-{i}", MONDAY + timedelta(hours=i), 4_000) for i in range(3)]

    run = _run(uow, cf.write_csv(tmp_path / "feed.csv", rows), tmp_path)

    # £8.00 then the £2.00 left of the budget; the third purchase finds no budget (and the limit).
    assert run.rewards == 2
    amounts = uow.session.scalars(select(CardReward.amount_minor).order_by(CardReward.id)).all()
    assert amounts == [800, 200]
    benefit = uow.session.get_one(Benefit, p.benefit.id)
    uow.session.refresh(benefit)
    assert benefit.budget_remaining_minor == 0
    uses = uow.session.scalars(select(BenefitUsage.uses)).all()
    assert uses == [2]


def test_a_descriptor_below_the_threshold_waits_for_review(uow: UnitOfWork, tmp_path: Path) -> None:
    p = cf.programme(uow, LINKED)
    row = cf.feed_row(p, "t-1", MONDAY, 4_000, terminal="UNKNOWN1")
    row["acquirer_merchant_id"] = "NOTREGISTERED"
    row["acceptor_name_location"] = acceptor_field("SQ *HRBR NODLE BAR", "London", "GB")

    run = _run(uow, cf.write_csv(tmp_path / "feed.csv", [row]), tmp_path, threshold=0.99)

    assert (run.unresolved, run.rewards) == (1, 0)
    review = uow.session.scalars(select(DescriptorReview)).one()
    assert review.candidate_merchant_id == p.merchant.id
    assert review.transactions == 1


# -- exactly once, whatever the moment the process dies --------------------------------------


class Killed(Exception):
    """Stands for the process dying: nothing after it runs, nothing uncommitted survives."""


STAGES = [
    "staged",
    "others-0-recorded",
    "chunk-0-matched",
    "chunk-0-committed",
    "chunk-1-matched",
    "chunk-1-committed",
    "matched",
    "posted",
]


def _week(p: cf.Programme, prefix: str) -> list[dict[str, Any]]:
    rows = [
        cf.feed_row(p, f"{prefix}t-{i}", MONDAY + timedelta(hours=i), 1_000 + 250 * i)
        for i in range(5)
    ]
    refund = cf.feed_row(
        p,
        f"{prefix}r-1",
        MONDAY + timedelta(hours=9),
        700,
        type=frames.REFUND,
        original=f"{prefix}t-1",
    )
    # A purchase with a card no member holds, and its refund: they earn nothing, count once.
    stranger = cf.feed_row(
        p, f"{prefix}s-1", MONDAY + timedelta(hours=2), 900, token=f"{prefix}tok-nobody"
    )
    returned = cf.feed_row(
        p,
        f"{prefix}sr-1",
        MONDAY + timedelta(hours=3),
        900,
        type=frames.REFUND,
        original=f"{prefix}s-1",
        token=f"{prefix}tok-nobody",
    )
    return [*rows, refund, stranger, returned]


def _outcome(uow: UnitOfWork, p: cf.Programme, prefix: str) -> dict[str, Any]:
    """Everything the runs left for this programme, with its own ids written as placeholders."""

    def plain(text: str | None) -> str | None:
        if text is None:
            return None
        for real, alias in (
            (prefix, ""),
            (p.member.public_id, "MEMBER"),
            (p.merchant.public_id, "MERCHANT"),
        ):
            text = text.replace(real, alias)
        return text

    postings = {
        (plain(key), kind, tuple(sorted((plain(code), amount) for code, amount in lines)))
        for key, kind, lines in _ledger(uow)
        if key.startswith("card-") and prefix in key
    }
    rewards = sorted(
        (r.kind, plain(r.txn_id), r.amount_minor, r.merchant_funded_minor, r.commission_minor)
        for r in uow.session.scalars(select(CardReward).where(CardReward.member_id == p.member.id))
    )
    grants = sorted(
        (plain(g.txn_id), g.reward_minor, g.clawed_back_minor, g.refunded_minor)
        for g in uow.session.scalars(select(CardGrant).where(CardGrant.member_id == p.member.id))
    )
    seen = _count_where(uow, CardTransaction.txn_id.startswith(prefix))
    benefit = uow.session.get_one(Benefit, p.benefit.id)
    uow.session.refresh(benefit)
    uses = uow.session.scalars(
        select(BenefitUsage.uses).where(BenefitUsage.benefit_id == p.benefit.id)
    ).all()
    return {
        "postings": postings,
        "rewards": rewards,
        "grants": grants,
        "seen": seen,
        "budget": benefit.budget_remaining_minor,
        "uses": uses,
        "unposted": _count_where(
            uow, CardReward.posted_at.is_(None), CardReward.member_id == p.member.id
        ),
    }


def _count_where(uow: UnitOfWork, *conditions: Any) -> int:
    model = conditions[0].left.table
    return uow.session.scalar(select(func.count()).select_from(model).where(*conditions)) or 0


@pytest.mark.parametrize("stage", STAGES)
def test_a_run_killed_at_any_stage_then_rerun_equals_one_clean_run(
    uow: UnitOfWork, tmp_path: Path, stage: str
) -> None:
    # The same programme and file twice: once run cleanly, once killed at `stage` and rerun.
    clean = cf.programme(uow, LINKED, budget_minor=5_000)
    _run(uow, cf.write_csv(tmp_path / "clean.csv", _week(clean, "A-")), tmp_path / "clean")
    crashed = cf.programme(uow, LINKED, budget_minor=5_000)
    feed = cf.write_csv(tmp_path / "feed.csv", _week(crashed, "B-"))

    def die(at: str) -> None:
        if at == stage:
            raise Killed(at)

    with uow.fresh() as dying, pytest.raises(Killed):
        _run(dying, feed, tmp_path / "out", checkpoint=die)
    with uow.fresh() as rerun:
        _run(rerun, feed, tmp_path / "out")

    expected = _outcome(uow, clean, "A-")
    assert expected["rewards"]  # the comparison compares something
    assert expected["postings"]
    assert _outcome(uow, crashed, "B-") == expected
    assert verify.run(uow.session).ok
