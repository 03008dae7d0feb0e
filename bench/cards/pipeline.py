"""The card-linked pipeline end to end, without the database: `python -m bench.cards.pipeline --rows N`.

Generates a feed file for a made-up alliance (100 merchants, 150k member cards, the
generator's realistic mix: non-alliance merchants, non-member cards, noisy descriptors,
refunds, chargebacks, duplicates, bad rows), then times, in this process:

1. staging: read and validate the file, quarantine bad rows, keep the first row of each txn_id,
   sort by (txn_time, txn_id) into Parquet (`cards.pipeline.stage`);
2. resolving merchants (terminals, then fuzzy descriptors) and matching, chunk by chunk, with
   the state threaded from chunk to chunk (`engine.match`, `engine.advance`);
3. writing the rewards file as Parquet and CSV (`cards.pipeline.write_rewards`).

End to end = 1 + 2 + 3, per row read. The reference implementation (`oracle.match`) is timed on
a sample of the resolved rows in the same run and extrapolated per row; both are checked to
agree on the sample. Peak memory is the process's maximum resident set. Ledger posting is
measured by `bench.ledger` (the bulk path), not here. Run each size in a fresh process.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import resource
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl

from bench.cards.engine import build_programme
from beyondbank.cards import engine, frames, generate, oracle, pipeline
from beyondbank.cards.frames import Programme, State
from beyondbank.cards.resolution import Resolver

START = datetime(2026, 11, 16, tzinfo=UTC)
MERCHANTS = 100
CARDS = 150_000


def world() -> generate.World:
    return generate.example_world(
        seed=5, merchants=MERCHANTS, cards=CARDS, linked_from=START - timedelta(days=400)
    )


def programme_for(w: generate.World) -> Programme:
    """The engine bench's benefits and circles, on this world's merchants and member cards."""
    base = build_programme()
    members = pl.int_range(1, w.cards.height + 1, eager=True) % 100_000 + 1
    cards = w.cards.select(
        "card_token",
        member_id=members,
        valid_from=pl.col("linked_at"),
        valid_to=pl.lit(None, frames.UTC_TIME),
    )
    return Programme(
        cards=frames.conform(cards, frames.CARDS, "cards"),
        member_circles=base.member_circles,
        benefits=base.benefits,
        benefit_targets=base.benefit_targets,
    )


def resolver_for(w: generate.World) -> Resolver:
    terminals = w.terminals.join(
        w.merchants.select("location_id", "merchant_id"), on="location_id"
    ).select("acquirer_merchant_id", "terminal_id", "location_id", "merchant_id")
    merchants = w.merchants.select(
        "merchant_id", "location_id", pl.col("trading_name").alias("name"), "mcc", "city", "country"
    )
    mappings = pl.DataFrame(
        schema={"descriptor_key": pl.String(), "merchant_id": pl.Int64(), "location_id": pl.Int64()}
    )
    return Resolver(terminals=terminals, mappings=mappings, merchants=merchants)


def _relevant(program: Programme, state: State) -> tuple[Programme, State]:
    """Keep the state a later chunk's rules can read, as a database run loads it per chunk:
    earlier purchases only at merchants with a new-to-merchant benefit, counters only of
    benefits with a member limit (grants stay: any refund may name them)."""
    benefits = program.benefits
    newcomers = benefits.filter(pl.col("new_to_merchant_days").is_not_null())["merchant_id"]
    limited = benefits.filter(pl.col("member_limit").is_not_null())["benefit_id"]
    return program, State(
        usage=state.usage.filter(pl.col("benefit_id").is_in(limited.implode())),
        prior_purchases=state.prior_purchases.filter(
            pl.col("merchant_id").is_in(newcomers.implode())
        ),
        grants=state.grants,
    )


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _generate(path: Path, rows: int) -> None:
    generate.write_feed(
        path, generate.generate_feed(world(), transactions=rows, seed=11, start=START, days=7)
    )


def run(rows: int, fmt: str, chunk_rows: int, sample: int, folder: Path) -> dict[str, Any]:
    path = folder / f"feed.{fmt}"
    started = time.perf_counter()
    # In a process of its own, so that this one's peak memory is the pipeline's.
    maker = multiprocessing.get_context("spawn").Process(target=_generate, args=(path, rows))
    maker.start()
    maker.join()
    generated = time.perf_counter() - started
    w = world()
    program = programme_for(w)
    state = State()
    resolver = resolver_for(w)
    rss_before = _rss_mib()

    t0 = time.perf_counter()
    members = pipeline.token_hashes(program.cards.get_column("card_token"))
    staged, counts = pipeline.stage(
        path, folder, folder / "quarantine.csv", chunk_rows=chunk_rows, members=members
    )
    t1 = time.perf_counter()
    parts = folder / "rewards"
    parts.mkdir()
    rewards = 0
    first_resolved: pl.DataFrame | None = None
    for index, chunk in enumerate(staged.chunks(chunk_rows)):
        resolved = resolver.resolve(chunk).resolved
        if first_resolved is None:
            first_resolved = resolved.head(sample)
        outcome = engine.match(resolved, program, state)
        program, state = _relevant(*engine.advance(program, state, outcome))
        outcome.rewards.write_parquet(parts / f"{index:06d}.parquet")
        rewards += outcome.rewards.height
    t2 = time.perf_counter()
    pipeline.write_rewards(
        parts, folder / "rewards.parquet", folder / "rewards.csv", frames.REWARDS
    )
    t3 = time.perf_counter()
    end_to_end = t3 - t0

    # The reference implementation on a sample of the same resolved rows, same programme.
    reference = programme_for(w)
    assert first_resolved is not None
    e0 = time.perf_counter()
    fast = engine.match(first_resolved, reference, State())
    e1 = time.perf_counter()
    slow = oracle.match(first_resolved, reference, State())
    e2 = time.perf_counter()
    agree = fast.rewards.equals(slow.rewards)
    oracle_per_row = (e2 - e1) / first_resolved.height
    return {
        "rows": rows,
        "format": fmt,
        "chunk_rows": chunk_rows,
        "file_mib": round(path.stat().st_size / 2**20, 1),
        "generate_s": round(generated, 2),
        "stage_s": round(t1 - t0, 2),
        "resolve_match_s": round(t2 - t1, 2),
        "write_rewards_s": round(t3 - t2, 2),
        "end_to_end_s": round(end_to_end, 2),
        "rows_per_s": round(rows / end_to_end),
        "accepted": counts.accepted,
        "quarantined": counts.quarantined,
        "duplicates": counts.duplicates,
        "reward_rows": rewards,
        "peak_rss_mib": round(max(_rss_mib(), rss_before)),
        "sample_rows": first_resolved.height,
        "engine_sample_rows_per_s": round(first_resolved.height / (e1 - e0)),
        "oracle_rows_per_s": round(1 / oracle_per_row),
        "oracle_extrapolated_s": round(oracle_per_row * rows, 1),
        "speedup_vs_oracle": round(oracle_per_row * rows / end_to_end, 1),
        "engine_equals_oracle_on_sample": agree,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--format", choices=("parquet", "csv"), default="parquet")
    parser.add_argument("--chunk-rows", type=int, default=2_000_000)
    parser.add_argument("--sample", type=int, default=20_000)
    parser.add_argument(
        "--dir", type=Path, default=None, help="Scratch space (default: a temp dir)"
    )
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as scratch:
        figures = run(args.rows, args.format, args.chunk_rows, args.sample, Path(scratch))
    for key, value in figures.items():
        print(f"{key:32} {value}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
