"""The card-linked pipeline end to end, without the database: `python -m bench.cards.pipeline --rows N`.

Generates a feed file for a made-up alliance (100 merchants, 150k member cards, the
generator's realistic mix: non-alliance merchants, non-member cards, noisy descriptors,
refunds, chargebacks, duplicates, bad rows), then times, in this process:

1. staging: read and validate the file, quarantine bad rows, keep the first row of each txn_id,
   set aside the purchases no member's card made, sort the rest by (txn_time, txn_id)
   (`cards.pipeline.stage`, given the members' cards as a run on the database is);
2. resolving merchants (terminals, then fuzzy descriptors) and matching, chunk by chunk, with
   the state threaded from chunk to chunk (`engine.match`, `engine.advance`);
3. writing the rewards file as Parquet and CSV (`cards.pipeline.write_rewards`).

End to end = 1 + 2 + 3, per row read; CPU time (user and system, all threads) beside it. The
reference implementation (`oracle.match`) is timed on a sample of the resolved rows in the same
run; both are checked to agree on the sample. The reference's end to end is this run's with the
reference in the engine's place: staging, resolution and the files as measured, and the rows the
engine matched at the reference's rate on the sample. Peak memory is the process's maximum
resident set. Ledger posting is measured by `bench.ledger` (the bulk path), not here. Run each
size in a fresh process; `--feed PATH` keeps the generated feed for the next run.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import resource
import tempfile
import time
from dataclasses import replace
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


def _named_by(state: State, chunk: pl.DataFrame) -> State:
    """The grants a chunk's refunds and chargebacks name, as a database run reads per chunk
    (`programme.state_for`); the counters and earlier purchases are already pruned."""
    originals = chunk.get_column("original_txn_id").drop_nulls().implode()
    return replace(state, grants=state.grants.filter(pl.col("txn_id").is_in(originals)))


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _cpu_s() -> tuple[float, float]:
    """User and system CPU seconds of this process so far (all its threads)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime, usage.ru_stime


def _generate(path: Path, rows: int) -> None:
    generate.write_feed(
        path, generate.generate_feed(world(), transactions=rows, seed=11, start=START, days=7)
    )


def run(
    rows: int, fmt: str, chunk_rows: int, sample: int, folder: Path, keep: Path | None = None
) -> dict[str, Any]:
    path = keep or folder / f"feed.{fmt}"
    started = time.perf_counter()
    if not path.exists():
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

    cpu0 = _cpu_s()
    t0 = time.perf_counter()
    members = pipeline.token_hashes(program.cards.get_column("card_token"))
    staged, counts = pipeline.stage(
        path, folder, folder / "quarantine.csv", chunk_rows=chunk_rows, members=members
    )
    t1 = time.perf_counter()
    staged_peak = _rss_mib()
    parts = folder / "rewards"
    parts.mkdir()
    rewards = matched = 0
    resolving = matching = 0.0
    first_resolved: pl.DataFrame | None = None
    for index, chunk in enumerate(staged.chunks(chunk_rows)):
        r0 = time.perf_counter()
        resolved = resolver.resolve(chunk).resolved
        r1 = time.perf_counter()
        if first_resolved is None:
            first_resolved = resolved.head(sample)
        outcome = engine.match(resolved, program, _named_by(state, chunk))
        program, state = _relevant(*engine.advance(program, state, outcome))
        resolving, matching = resolving + r1 - r0, matching + time.perf_counter() - r1
        outcome.rewards.write_parquet(parts / f"{index:06d}.parquet")
        rewards += outcome.rewards.height
        matched += chunk.height
    t2 = time.perf_counter()
    pipeline.write_rewards(
        parts, folder / "rewards.parquet", folder / "rewards.csv", frames.REWARDS
    )
    t3 = time.perf_counter()
    cpu = tuple(after - before for after, before in zip(_cpu_s(), cpu0, strict=True))
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
    # The reference in the engine's place: the same staging, resolution and files around it,
    # the rows the engine matched matched at the reference's rate on the sample.
    reference_match = oracle_per_row * matched
    reference_end_to_end = end_to_end - matching + reference_match
    return {
        "rows": rows,
        "format": fmt,
        "chunk_rows": chunk_rows,
        "file_mib": round(path.stat().st_size / 2**20, 1),
        "generate_s": round(generated, 2),
        "stage_s": round(t1 - t0, 2),
        "resolve_match_s": round(t2 - t1, 2),
        "resolve_s": round(resolving, 2),
        "match_s": round(matching, 2),
        "write_rewards_s": round(t3 - t2, 2),
        "end_to_end_s": round(end_to_end, 2),
        "rows_per_s": round(rows / end_to_end),
        "cpu_user_s": round(cpu[0], 2),
        "cpu_system_s": round(cpu[1], 2),
        "accepted": counts.accepted,
        "quarantined": counts.quarantined,
        "duplicates": counts.duplicates,
        "set_aside": staged.other_rows,
        "matched_rows": matched,
        "reward_rows": rewards,
        "peak_rss_mib": round(max(_rss_mib(), rss_before)),
        "peak_rss_staging_mib": round(staged_peak),
        "sample_rows": first_resolved.height,
        "engine_sample_rows_per_s": round(first_resolved.height / (e1 - e0)),
        "oracle_rows_per_s": round(1 / oracle_per_row),
        "oracle_match_extrapolated_s": round(reference_match, 1),
        "reference_end_to_end_s": round(reference_end_to_end, 1),
        "speedup_vs_reference": round(reference_end_to_end / end_to_end, 1),
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
    parser.add_argument(
        "--feed",
        type=Path,
        default=None,
        help="Keep the generated feed at this path and reuse it when it exists (same --rows)",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as scratch:
        figures = run(
            args.rows, args.format, args.chunk_rows, args.sample, Path(scratch), args.feed
        )
    for key, value in figures.items():
        print(f"{key:32} {value}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
