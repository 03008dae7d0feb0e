"""Descriptor resolution quality and speed: `python -m bench.cards.descriptors` (from the checkout).

Prints, for the fuzzy fallback alone (no terminals, no mappings):

- precision and recall of each rapidfuzz scorer on a labelled set of noisy descriptors
  (`descriptors.labelled_set`), at the default threshold;
- the threshold sweep for the default scorer, under three policies for a descriptor without a city;
- where the errors come from (by kind of descriptor), and what the review floor gives back;
- the time to resolve a feed whose 100,000 distinct descriptors meet 10,000 alliance merchants
  (`--speed-only` for just that; `--repeat N`, best of N, as the machine may be shared).
"""

from __future__ import annotations

import argparse
import os
import random
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import polars as pl

from beyondbank.cards import frames
from beyondbank.cards.descriptors import LabelledDescriptor, LabelledSet, labelled_set
from beyondbank.cards.resolution import (
    CITY_MISSING,
    CITY_MISSING_SHORT_NAME,
    DEFAULT_REVIEW_FLOOR,
    DEFAULT_SCORER,
    DEFAULT_THRESHOLD,
    DISTINCTIVE_WORDS,
    MAPPINGS,
    SCORERS,
    TERMINALS,
    Match,
    Resolver,
)


@dataclass(frozen=True)
class Quality:
    precision: float
    recall: float
    accepted: int
    false_positives: Counter[str]
    false_negatives: Counter[str]


def merchants_frame(labelled: LabelledSet) -> pl.DataFrame:
    return pl.DataFrame(
        [
            {
                "merchant_id": b.merchant_id,
                "location_id": b.location_id,
                "name": b.name,
                "mcc": b.mcc,
                "city": b.city,
                "country": b.country,
            }
            for b in labelled.locations
        ]
    )


def fuzzy_only(
    merchants: pl.DataFrame,
    threshold: float = DEFAULT_THRESHOLD,
    scorer: str = DEFAULT_SCORER,
    missing_city: float = CITY_MISSING,
    distinctive_words: int = DISTINCTIVE_WORDS,
    review_floor: float = DEFAULT_REVIEW_FLOOR,
) -> Resolver:
    """A resolver with no terminals and no mappings: every answer is the fuzzy matcher's."""
    return Resolver(
        pl.DataFrame(schema=TERMINALS),
        pl.DataFrame(schema=MAPPINGS),
        merchants,
        threshold,
        scorer=scorer,
        missing_city=missing_city,
        distinctive_words=distinctive_words,
        review_floor=review_floor,
    )


def quality(
    labelled: Sequence[LabelledDescriptor], matches: Sequence[Match], threshold: float
) -> Quality:
    """Precision and recall of accepting every unambiguous match at or above `threshold`."""
    accepted = correct = 0
    false_positives: Counter[str] = Counter()
    false_negatives: Counter[str] = Counter()
    for truth, match in zip(labelled, matches, strict=True):
        taken = match.merchant_id is not None and not match.ambiguous
        taken = taken and match.confidence >= threshold
        right = taken and match.merchant_id == truth.merchant_id
        accepted += taken
        correct += right
        if taken and not right:
            false_positives[truth.kind] += 1
        if truth.merchant_id is not None and not right:
            false_negatives["ambiguous" if match.ambiguous else "below threshold"] += 1
    positives = sum(d.merchant_id is not None for d in labelled)
    return Quality(
        precision=correct / accepted if accepted else 1.0,
        recall=correct / positives if positives else 1.0,
        accepted=accepted,
        false_positives=false_positives,
        false_negatives=false_negatives,
    )


def measure(
    labelled: LabelledSet,
    scorer: str = DEFAULT_SCORER,
    missing_city: float = CITY_MISSING,
    distinctive_words: int = DISTINCTIVE_WORDS,
) -> list[Match]:
    """The fuzzy matcher's answer for every descriptor, whatever its confidence."""
    resolver = fuzzy_only(
        merchants_frame(labelled),
        threshold=0.0,
        scorer=scorer,
        missing_city=missing_city,
        distinctive_words=distinctive_words,
        review_floor=0.5,
    )
    return [resolver.match(d.text, d.mcc) for d in labelled.descriptors]


def feed(labelled: Sequence[LabelledDescriptor], rows: int, seed: int) -> pl.DataFrame:
    """A card feed of `rows` purchases over these descriptors, none known by terminal."""
    rng = random.Random(seed)
    picks = [labelled[i % len(labelled)] for i in range(len(labelled))]
    picks += rng.choices(labelled, k=rows - len(labelled))
    t0 = datetime(2026, 11, 1, tzinfo=UTC)
    return pl.DataFrame(
        {
            "line": range(2, rows + 2),
            "txn_id": [f"T{i:09d}" for i in range(rows)],
            "network_ref": [f"N{i:09d}" for i in range(rows)],
            "card_token": [f"C{rng.randrange(50_000):06d}" for _ in range(rows)],
            "type": [frames.PURCHASE] * rows,
            "original_txn_id": [None] * rows,
            "amount_minor": [rng.randrange(100, 20_000) for _ in range(rows)],
            "currency": ["GBP"] * rows,
            "mcc": [d.mcc for d in picks],
            "acquirer_merchant_id": [f"{rng.randrange(10**15):015d}" for _ in range(rows)],
            "terminal_id": [f"{rng.randrange(10**8):08d}" for _ in range(rows)],
            "acceptor_name_location": [d.text for d in picks],
            "txn_time": [t0] * rows,
        },
        schema_overrides={"original_txn_id": pl.String(), "txn_time": frames.UTC_TIME},
    )


def distinct_descriptors(seed: int, merchants: int, wanted: int) -> LabelledSet:
    """A labelled set with exactly `wanted` distinct descriptors (duplicates are dropped)."""
    asked = wanted
    while True:
        labelled = labelled_set(seed, merchants, asked)
        if len(labelled.descriptors) >= wanted:
            return LabelledSet(labelled.locations, labelled.descriptors[:wanted])
        asked = int(asked * wanted / len(labelled.descriptors)) + 100


def report_quality(seed: int, merchants: int, descriptors: int) -> None:
    labelled = distinct_descriptors(seed, merchants, descriptors)
    kinds = Counter(d.kind for d in labelled.descriptors)
    print(
        f"labelled set: seed {seed}, {merchants} alliance merchants "
        f"({len(labelled.locations)} locations), {len(labelled.descriptors)} distinct "
        f"descriptors: {dict(sorted(kinds.items()))}"
    )

    print(f"\nscorers at the default threshold {DEFAULT_THRESHOLD}")
    print(f"  {'scorer':18} {'precision':>9} {'recall':>7} {'accepted':>8} {'seconds':>7}")
    by_scorer: dict[str, list[Match]] = {}
    for scorer in SCORERS:
        started = time.perf_counter()
        by_scorer[scorer] = measure(labelled, scorer)
        seconds = time.perf_counter() - started
        q = quality(labelled.descriptors, by_scorer[scorer], DEFAULT_THRESHOLD)
        print(f"  {scorer:18} {q.precision:9.4f} {q.recall:7.4f} {q.accepted:8} {seconds:7.2f}")

    print(f"\nthreshold sweep, {DEFAULT_SCORER}, by what a descriptor without a city may match")
    print(f"  {'without a city':32} {'threshold':>9} {'precision':>9} {'recall':>7}")
    policies = {
        "never (review)": (CITY_MISSING_SHORT_NAME, DISTINCTIVE_WORDS),
        f"names of {DISTINCTIVE_WORDS}+ words (default)": (CITY_MISSING, DISTINCTIVE_WORDS),
        "any name": (CITY_MISSING, 0),
    }
    for policy, (missing_city, words) in policies.items():
        matches = measure(labelled, DEFAULT_SCORER, missing_city, words)
        for threshold in (0.80, 0.85, 0.88, 0.90, 0.92, 0.94, 0.96):
            q = quality(labelled.descriptors, matches, threshold)
            default = "(default)" in policy and threshold == DEFAULT_THRESHOLD
            print(
                f"  {policy:32} {threshold:9.2f} {q.precision:9.4f} {q.recall:7.4f}"
                + (" <- default" if default else "")
            )

    q = quality(labelled.descriptors, by_scorer[DEFAULT_SCORER], DEFAULT_THRESHOLD)
    print(f"\nerrors at the default: false positives by kind {dict(q.false_positives)}")
    print(f"  alliance descriptors missed: {dict(q.false_negatives)}")

    print("\nreview floor: rows in the review queue, and alliance descriptors it gives back")
    missed = [
        (d, m)
        for d, m in zip(labelled.descriptors, by_scorer[DEFAULT_SCORER], strict=True)
        if m.ambiguous or m.confidence < DEFAULT_THRESHOLD
    ]
    lost = sum(d.merchant_id is not None for d, _ in missed)
    for floor in (0.6, 0.7, 0.75, 0.8, 0.85):
        queued = [(d, m) for d, m in missed if m.merchant_id is not None and m.confidence >= floor]
        back = sum(d.merchant_id == m.merchant_id for d, m in queued)
        mark = " <- default" if floor == DEFAULT_REVIEW_FLOOR else ""
        print(f"  {floor:4.2f}: {len(queued):5} rows, {back:4} of {lost} missed{mark}")


def report_speed(seed: int, merchants: int, descriptors: int, rows: int, repeat: int) -> None:
    print(
        f"\nspeed: {descriptors:,} distinct descriptors, {merchants:,} alliance merchants, "
        f"{rows:,} feed rows (none known by terminal), best of {repeat}"
    )
    big = distinct_descriptors(seed, merchants, descriptors)
    transactions = feed(big.descriptors, rows, seed)
    alliance = merchants_frame(big)
    runs: list[tuple[float, float, float]] = []
    for _ in range(repeat):
        load = os.getloadavg()[0]
        cpu = time.process_time()
        started = time.perf_counter()
        resolution = fuzzy_only(alliance).resolve(transactions)
        wall = time.perf_counter() - started
        runs.append((wall, time.process_time() - cpu, load))
        print(f"  index and resolve: {wall:6.2f} s wall, {runs[-1][1]:6.2f} s CPU, load {load:.2f}")
    print(f"  best: {min(runs)[0]:.2f} s on {os.cpu_count()} CPUs")
    resolved = resolution.resolved["merchant_id"].is_not_null().sum()
    print(
        f"  rows resolved {resolved:,} of {resolution.resolved.height:,}; "
        f"review queue {resolution.review.height:,} descriptors"
    )
    truth = {(d.text, d.mcc): d.merchant_id for d in big.descriptors}
    answers = resolution.resolved.unique(["acceptor_name_location", "mcc"]).select(
        "acceptor_name_location", "mcc", "merchant_id"
    )
    pairs = [(truth[(text, mcc)], found) for text, mcc, found in answers.iter_rows()]
    accepted = [(t, f) for t, f in pairs if f is not None]
    correct = sum(t == f for t, f in accepted)
    positives = sum(t is not None for t, _ in pairs)
    print(
        f"  at this scale: precision {correct / len(accepted):.4f}, "
        f"recall {correct / positives:.4f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=20261122)
    parser.add_argument("--merchants", type=int, default=1_000)
    parser.add_argument("--descriptors", type=int, default=10_000)
    parser.add_argument("--speed-merchants", type=int, default=10_000)
    parser.add_argument("--speed-descriptors", type=int, default=100_000)
    parser.add_argument("--speed-rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--speed-only", action="store_true")
    args = parser.parse_args()
    if not args.speed_only:
        report_quality(args.seed, args.merchants, args.descriptors)
    report_speed(
        args.seed + 1, args.speed_merchants, args.speed_descriptors, args.speed_rows, args.repeat
    )


if __name__ == "__main__":
    main()
