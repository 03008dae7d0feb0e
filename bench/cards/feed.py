"""Card feed throughput: `python -m bench.cards.feed --rows 1000000` (from the checkout, with the venv).

Measures, each phase in its own fresh process so its peak memory is its own:

- generate: `generate.generate_feed` for a made-up alliance (100 merchants, 50k member cards),
  batches consumed in memory and dropped;
- write-csv / write-parquet: generation streamed to a file by `generate.write_feed`;
- read-csv / read-parquet: `feed.read_feed` over that file, every chunk validated and counted.

Each phase reports wall-clock seconds, CPU seconds (user + system, all threads: on a machine
shared with other work the CPU figure is the steadier one), rows per wall-clock second and
the process's peak resident memory (resource.getrusage ru_maxrss).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
from rich.console import Console
from rich.table import Table

from beyondbank.cards import feed, generate

START = datetime(2026, 11, 1, tzinfo=UTC)
DAYS = 7
PHASES = ("generate", "write-csv", "write-parquet", "read-csv", "read-parquet")


def _world() -> generate.World:
    return generate.example_world(seed=11, merchants=100, cards=50_000)


def _batches(rows: int, seed: int) -> Iterator[pl.DataFrame]:
    return generate.generate_feed(_world(), transactions=rows, seed=seed, start=START, days=DAYS)


def _generate(rows: int, seed: int, _: Path, chunk_rows: int) -> int:
    return sum(batch.height for batch in _batches(rows, seed))


def _write(suffix: str) -> Callable[[int, int, Path, int], int]:
    def write(rows: int, seed: int, folder: Path, chunk_rows: int) -> int:
        return generate.write_feed(folder / f"feed{suffix}", _batches(rows, seed))

    return write


def _read(suffix: str) -> Callable[[int, int, Path, int], int]:
    def read(rows: int, seed: int, folder: Path, chunk_rows: int) -> int:
        summary = feed.FeedSummary()
        for chunk in feed.read_feed(folder / f"feed{suffix}", chunk_rows=chunk_rows):
            summary.add(chunk)
        if summary.rows_read != summary.accepted + summary.quarantined_total:
            raise AssertionError("rows read != accepted + quarantined")
        return summary.rows_read

    return read


RUNNERS: dict[str, Callable[[int, int, Path, int], int]] = {
    "generate": _generate,
    "write-csv": _write(".csv"),
    "write-parquet": _write(".parquet"),
    "read-csv": _read(".csv"),
    "read-parquet": _read(".parquet"),
}


def _phase(name: str, rows: int, seed: int, folder: Path, chunk_rows: int) -> dict[str, float]:
    """Run one phase in this process and measure it."""
    before = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    done = RUNNERS[name](rows, seed, folder, chunk_rows)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {
        "rows": done,
        "wall_s": round(wall, 3),
        "cpu_s": round(cpu, 3),
        "rows_per_s": round(done / wall),
        "peak_mib": round(after.ru_maxrss / 1024, 1),  # Linux reports KiB
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--chunk-rows", type=int, default=1_000_000)
    parser.add_argument("--dir", type=Path, help="where the feed files go (default: a temp dir)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--phase", choices=PHASES, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        figures = _phase(args.phase, args.rows, args.seed, args.dir, args.chunk_rows)
        print(json.dumps(figures))
        return

    console = Console()
    with tempfile.TemporaryDirectory() as scratch:
        folder = args.dir or Path(scratch)
        folder.mkdir(parents=True, exist_ok=True)
        results: dict[str, dict[str, float]] = {}
        for name in PHASES:
            command = [sys.executable, "-m", "bench.cards.feed", "--phase", name]
            command += ["--rows", str(args.rows), "--seed", str(args.seed)]
            command += ["--chunk-rows", str(args.chunk_rows), "--dir", str(folder)]
            with console.status(f"{name} …"):
                done = subprocess.run(command, check=True, capture_output=True, text=True)  # noqa: S603
            results[name] = json.loads(done.stdout.strip().splitlines()[-1])
        sizes = {s: (folder / f"feed{s}").stat().st_size for s in (".csv", ".parquet")}

    table = Table(title=f"card feed, {args.rows:,} rows (chunk_rows {args.chunk_rows:,})")
    for column in ("phase", "wall s", "cpu s", "rows/s (wall)", "peak MiB"):
        table.add_column(column, justify="left" if column == "phase" else "right")
    for name, figures in results.items():
        table.add_row(
            name,
            f"{figures['wall_s']:.2f}",
            f"{figures['cpu_s']:.2f}",
            f"{figures['rows_per_s']:,.0f}",
            f"{figures['peak_mib']:,.0f}",
        )
    console.print(table)
    console.print(
        f"file sizes: CSV {sizes['.csv'] / 2**20:,.0f} MiB, Parquet {sizes['.parquet'] / 2**20:,.0f} MiB"
    )
    if args.json:
        args.json.write_text(
            json.dumps({"rows": args.rows, "phases": results, "bytes": sizes}, indent=2)
        )


if __name__ == "__main__":
    main()
