"""The demo's card-linked week: a synthetic card feed of the last seven days run through the engine.

The feed is drawn over the demo's own alliance (its merchants' locations and terminals, the
members' linked cards) by the same generator the benchmarks use, and run exactly as the bank's
weekly file would be: rewards and clawbacks posted to the ledger, the quarantine and rewards
files written beside the database, and the descriptors the matcher was unsure of (the
generator's noisy ones: misspelt, cut short, behind a payment facilitator's prefix) left in
the review queue for the relationship managers.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from sqlalchemy import Engine

from beyondbank.cards import generate, reviews, service
from beyondbank.cards.models import ReviewStatus
from beyondbank.core.authz import SYSTEM
from beyondbank.core.clock import Clock
from beyondbank.core.pagination import MAX_LIMIT, every_page
from beyondbank.core.uow import UnitOfWork, make_session_factory
from beyondbank.program.writer import NoProgress, Progress

CARDS_DIRECTORY = "cards"  # beside the demo database: the feed, quarantine and rewards files
FEED_TRANSACTIONS = 25_000  # a week of the bank's cards at the demo's merchants and elsewhere
FEED_DAYS = 7


@dataclass(frozen=True, slots=True)
class CardCounts:
    transactions: int
    rewards: int
    clawbacks: int
    open_reviews: int

    def as_counts(self) -> dict[str, int]:
        return {
            "card transactions": self.transactions,
            "card rewards": self.rewards,
            "card clawbacks": self.clawbacks,
            "descriptors to review": self.open_reviews,
        }


def populate_cards(
    engine: Engine,
    directory: Path,
    *,
    clock: Clock,
    seed: int,
    currency: str,
    transactions: int = FEED_TRANSACTIONS,
    progress: Progress | None = None,
) -> CardCounts:
    """Generate last week's feed into `directory/cards` and run it; the same seed, the same feed."""
    progress = progress or NoProgress()
    out = directory / CARDS_DIRECTORY
    # A rebuilt demo starts again: files of an earlier build name runs that no longer exist.
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    factory = make_session_factory(engine)
    with UnitOfWork(factory, clock) as uow:
        world = service.feed_world(uow, currency)
        if not world.merchants.height or not world.cards.height:
            return CardCounts(0, 0, 0, 0)
        # The feed ends at midnight UTC today, as the bank's card system closes a day's file.
        end = clock.now().replace(hour=0, minute=0, second=0, microsecond=0)
        start = end - timedelta(days=FEED_DAYS)
        feed = out / f"card-feed-{start:%Y%m%d}-{end:%Y%m%d}.csv"
        progress.start("card feed", transactions)
        batches = generate.generate_feed(
            world, transactions=transactions, seed=seed, start=start, days=FEED_DAYS
        )
        generate.write_feed(feed, batches)
        progress.advance("card feed", transactions)
        progress.start("card-linked run", transactions)
        run = service.run_file(
            uow,
            feed,
            out_dir=out,
            progress=service.Progress(matched=lambda n: progress.advance("card-linked run", n)),
        )
        waiting = sum(
            1
            for _ in every_page(
                lambda cursor: reviews.list_reviews(
                    uow, SYSTEM, status=ReviewStatus.OPEN, cursor=cursor, limit=MAX_LIMIT
                )
            )
        )
        return CardCounts(run.rows_read, run.rewards, run.clawbacks, waiting)
