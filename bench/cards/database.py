"""A card-linked run on PostgreSQL, end to end: `python -m bench.cards.database --rows N`.

The demo programme (`--members`) in a PostgreSQL schema of its own (`bench_cards`), a feed of
the last seven days generated for it, then `cards.service.run_file`: staging, matching chunk
by chunk with every chunk's state committed, and the rewards posted to the ledger through its
bulk path. Prints the wall time, rows/s and the run's counts.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.cards.realtime import URL, prepare
from beyondbank.cards import generate, service
from beyondbank.core.clock import SystemClock
from beyondbank.core.db import make_engine
from beyondbank.core.uow import UnitOfWork, make_session_factory


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--members", type=int, default=1_000)
    parser.add_argument("--chunk-rows", type=int, default=250_000)
    args = parser.parse_args()
    prepare(args.members)
    engine = make_engine(URL)
    factory = make_session_factory(engine)
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        with UnitOfWork(factory, SystemClock()) as uow:
            world = service.feed_world(uow, "GBP")
        today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        batches = generate.generate_feed(
            world, transactions=args.rows, seed=4, start=today - timedelta(days=7), days=7
        )
        generate.write_feed(folder / "feed.parquet", batches)
        with UnitOfWork(factory, SystemClock()) as uow:
            started = time.perf_counter()
            run = service.run_file(
                uow, folder / "feed.parquet", out_dir=folder / "out", chunk_rows=args.chunk_rows
            )
            took = time.perf_counter() - started
            print(f"rows            {args.rows:,}")
            print(f"seconds         {took:.1f}")
            print(f"rows/s          {args.rows / took:,.0f}")
            for name in ("quarantined", "duplicates", "matched", "rewards", "clawbacks", "posted"):
                print(f"{name:15} {getattr(run, name):,}")
    engine.dispose()


if __name__ == "__main__":
    main()
