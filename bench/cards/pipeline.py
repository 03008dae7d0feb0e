"""The card-linked pipeline end to end, without the database: `python -m bench.cards.pipeline --rows N`.

Generates a feed file for a made-up alliance (100 merchants, 150k member cards, the
generator's realistic mix: non-alliance merchants, non-member cards, noisy descriptors,
refunds, chargebacks, duplicates, bad rows), then times, in this process, `cards.stream.run`:
reading and validating the file (bad rows to the quarantine file), keeping the first row of each
txn_id, setting aside the purchases no member's card made, resolving merchants (terminals, then
fuzzy descriptors), matching in time order with the state threaded from batch to batch
(`engine.match`, `engine.advance`) and writing the rewards file as Parquet and CSV. These
overlap: a worker thread stages the next chunk while the last one's rows are matched.

End to end is all of it, per row read; CPU time (user and system, all threads) beside it. The
reference implementation (`oracle.match`) is timed on a sample of the resolved rows in the same
run; both are checked to agree on the sample. The reference's end to end is this run's with the
reference in the engine's place: the rows the engine matched at the reference's rate on the
sample instead of the engine's. Peak memory is the process's maximum
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
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl

from bench.cards.engine import build_programme
from beyondbank.cards import engine, frames, generate, oracle, stream
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
    resolver = resolver_for(w)
    rss_before = _rss_mib()

    cpu0 = _cpu_s()
    t0 = time.perf_counter()
    first: list[pl.DataFrame] = []

    def keep_sample(resolved: pl.DataFrame, outcome: object) -> None:
        if not first:
            first.append(resolved.head(sample))

    result = stream.run(
        path,
        folder,
        folder / "quarantine.csv",
        (folder / "rewards.parquet", folder / "rewards.csv"),
        programme=program,
        resolver=resolver,
        chunk_rows=chunk_rows,
        on_batch=keep_sample,
    )
    t3 = time.perf_counter()
    cpu = tuple(after - before for after, before in zip(_cpu_s(), cpu0, strict=True))
    end_to_end = t3 - t0
    counts = result.counts
    first_resolved = first[0]

    # The engine and the reference implementation on a sample of the same resolved rows, same
    # programme, fresh state.
    reference = programme_for(w)
    e0 = time.perf_counter()
    fast = engine.match(first_resolved, reference, State())
    e1 = time.perf_counter()
    slow = oracle.match(first_resolved, reference, State())
    e2 = time.perf_counter()
    agree = fast.rewards.equals(slow.rewards)
    oracle_per_row = (e2 - e1) / first_resolved.height
    engine_per_row = (e1 - e0) / first_resolved.height
    # The reference in the engine's place: this run, with the rows the engine matched taking
    # the reference's time on the sample instead of the engine's.
    reference_match = oracle_per_row * result.matched
    reference_end_to_end = end_to_end - engine_per_row * result.matched + reference_match
    return {
        "rows": rows,
        "format": fmt,
        "chunk_rows": chunk_rows,
        "file_mib": round(path.stat().st_size / 2**20, 1),
        "generate_s": round(generated, 2),
        "streamed": result.streamed,
        "batches": result.batches,
        "end_to_end_s": round(end_to_end, 2),
        "rows_per_s": round(rows / end_to_end),
        "cpu_user_s": round(cpu[0], 2),
        "cpu_system_s": round(cpu[1], 2),
        "accepted": counts.accepted,
        "quarantined": counts.quarantined,
        "duplicates": counts.duplicates,
        "set_aside": result.set_aside,
        "matched_rows": result.matched,
        "reward_rows": result.rewards,
        "peak_rss_mib": round(max(_rss_mib(), rss_before)),
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
    parser.add_argument("--chunk-rows", type=int, default=500_000)
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
