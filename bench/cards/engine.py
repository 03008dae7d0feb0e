"""Matching engine throughput: `python -m bench.cards.engine --rows 1000000` (from the checkout, venv).

Builds a realistic programme (100 merchants, 300 benefits, 100k members, 150k cards, circles,
prior state) and a day's clearing feed in memory with Polars, then times `engine.match` on the
whole feed and `oracle.match` on a sample (extrapolated per row), after checking that both
agree on that sample. Figures are wall-clock on whatever else the machine is doing.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

import polars as pl

from beyondbank.cards import engine, frames, oracle
from beyondbank.cards.frames import Outcome, Programme, State

DAY = datetime(2026, 11, 23, tzinfo=UTC)
MERCHANTS = 100
BENEFITS = 300
MEMBERS = 100_000
CARDS = 150_000
CIRCLES = 50
US_PER_DAY = 86_400_000_000


def _ints(n: int, high: int, seed: int) -> pl.Series:
    """n pseudo-random integers in [0, high)."""
    return (pl.int_range(0, n, eager=True).hash(seed) % high).cast(pl.Int64)


def _pick(n: int, seed: int, choices: list[object], weights: list[int]) -> pl.Series:
    """n draws from `choices` with integer weights."""
    cumulative = list(_cumulative(weights))
    draws = _ints(n, cumulative[-1], seed)
    expr = pl.lit(choices[-1])
    for bound, choice in reversed(list(zip(cumulative[:-1], choices[:-1], strict=True))):
        expr = pl.when(pl.col("d") < bound).then(pl.lit(choice)).otherwise(expr)
    return pl.DataFrame({"d": draws}).select(expr).to_series()


def _cast(frame: pl.DataFrame, schema: pl.Schema) -> pl.DataFrame:
    return frame.select(pl.col(c).cast(t) for c, t in schema.items())


def _instants(start: datetime, n: int, span_us: int, seed: int) -> pl.Series:
    """n pseudo-random instants in [start, start + span)."""
    start_us = int(start.timestamp()) * 1_000_000
    return (_ints(n, span_us, seed) + start_us).cast(pl.Datetime("us")).dt.replace_time_zone("UTC")


def _label(prefix: str, numbers: pl.Series) -> pl.Series:
    return pl.select(pl.lit(prefix) + pl.lit(numbers).cast(pl.String)).to_series()


def _cumulative(weights: list[int]) -> list[int]:
    total, out = 0, []
    for w in weights:
        total += w
        out.append(total)
    return out


def build_programme() -> Programme:
    n = BENEFITS
    ids = pl.int_range(1, n + 1, eager=True)
    kind = _pick(
        n,
        1,
        ["percent_off", "amount_off", "spend_threshold", "points_multiplier"],
        [40, 20, 15, 25],
    )
    all_week = [1, 2, 3, 4, 5, 6, 7]
    benefits = pl.DataFrame(
        {
            "benefit_id": ids,
            "merchant_id": _ints(n, MERCHANTS, 2) + 1,
            "kind": kind,
            "active": _ints(n, 20, 3) > 0,
            "currency": pl.Series(["GBP"] * n),
            "valid_from": pl.Series([date(2026, 1, 1)] * n),
            "valid_to": pl.Series([date(2026, 12, 31)] * n),
            "weekdays": _pick(n, 4, [all_week, [1, 2, 3, 4, 5], [6, 7], [2, 3]], [70, 15, 10, 5]),
            "hour_start": _pick(n, 5, [0, 11, 17], [80, 10, 10]),
            "hour_end": _pick(n, 6, [24, 15, 22], [80, 10, 10]),
            "timezone": _pick(
                n,
                7,
                ["Europe/London", "Europe/Paris", "Asia/Shanghai", "America/New_York"],
                [85, 5, 5, 5],
            ),
            "min_spend_minor": _pick(n, 8, [0, 1000, 5000], [60, 30, 10]),
            "percent_bps": _pick(n, 9, [500, 1000, 1500], [40, 40, 20]),
            "max_reward_minor": _pick(n, 10, [None, 500, 1000], [50, 25, 25]),
            "fixed_minor": _pick(n, 11, [200, 500, 1000], [40, 40, 20]),
            "threshold_minor": _pick(n, 12, [2000, 5000], [50, 50]),
            "points_multiplier": _pick(n, 13, [1, 2, 5], [50, 30, 20]),
            "member_limit": _pick(n, 14, [None, 1, 2, 5], [55, 20, 15, 10]),
            "limit_period": _pick(n, 15, ["day", "week", "month", "campaign"], [30, 30, 30, 10]),
            # Most budgets are ample for a day; a few are about to run out.
            "budget_remaining_minor": _pick(n, 16, [None, 50_000_000, 20_000], [40, 50, 10]),
            "quantity_remaining": _pick(n, 17, [None, 1_000_000, 50], [65, 30, 5]),
            "merchant_share_bps": _pick(n, 18, [0, 5000, 10_000], [20, 60, 20]),
            "commission_bps": _pick(n, 19, [100, 200, 300], [40, 40, 20]),
            "new_to_merchant_days": _pick(n, 20, [None, 30, 90], [90, 5, 5]),
        }
    ).with_columns(
        percent_bps=pl.when(pl.col("kind") == "percent_off").then("percent_bps"),
        max_reward_minor=pl.when(pl.col("kind") == "percent_off").then("max_reward_minor"),
        fixed_minor=pl.when(pl.col("kind").is_in(["amount_off", "spend_threshold"])).then(
            "fixed_minor"
        ),
        threshold_minor=pl.when(pl.col("kind") == "spend_threshold").then("threshold_minor"),
        points_multiplier=pl.when(pl.col("kind") == "points_multiplier").then("points_multiplier"),
    )
    targeted = benefits.filter(_ints(n, 5, 21) == 0).get_column("benefit_id")
    targets = pl.DataFrame(
        {
            "benefit_id": pl.concat([targeted, targeted]),
            "circle_id": _ints(2 * targeted.len(), CIRCLES, 22) + 1,
        }
    ).unique()
    cards = pl.DataFrame(
        {
            "card_token": _label("tok", pl.int_range(0, CARDS, eager=True)),
            "member_id": pl.concat(
                [pl.int_range(1, MEMBERS + 1, eager=True), _ints(CARDS - MEMBERS, MEMBERS, 23) + 1]
            ),
            "valid_from": pl.Series([DAY - timedelta(days=400)] * CARDS),
            "valid_to": pl.Series([None] * CARDS, dtype=frames.UTC_TIME),
        }
    )
    circle_rows = 2 * MEMBERS
    member_circles = pl.DataFrame(
        {
            "member_id": _ints(circle_rows, MEMBERS, 24) + 1,
            "circle_id": _ints(circle_rows, CIRCLES, 25) + 1,
        }
    ).unique()
    return Programme(
        cards=_cast(cards, frames.CARDS),
        member_circles=_cast(member_circles, frames.MEMBER_CIRCLES),
        benefits=_cast(benefits, frames.BENEFITS),
        benefit_targets=_cast(targets, frames.BENEFIT_TARGETS),
    )


def build_feed(rows: int) -> pl.DataFrame:
    """A day of clearing: ~60% of cards known, ~35% of rows at alliance merchants, 3.5% refunds."""
    index = pl.int_range(0, rows, eager=True)
    frame = pl.DataFrame(
        {
            "line": index + 2,
            "txn_id": _label("T", index),
            "type": _pick(
                rows, 31, [frames.PURCHASE, frames.REFUND, frames.CHARGEBACK], [965, 30, 5]
            ),
            "amount_minor": _ints(rows, 20_000, 36) + 100,
            "currency": _pick(rows, 37, ["GBP", "EUR"], [98, 2]),
            "txn_time": _instants(DAY, rows, US_PER_DAY, 38),
            "_known": _ints(rows, 100, 32) < 60,
            "_card": _ints(rows, CARDS, 33),
            "_other": _ints(rows, 10_000_000, 34),
            "_resolved": _ints(rows, 100, 35) < 35,
            "_merchant": _ints(rows, MERCHANTS, 39) + 1,
            # Refunds name some row of the feed (when not a purchase, they find nothing).
            "_original": (index * 7919) % rows,
        }
    ).with_columns(
        card_token=pl.when("_known")
        .then(pl.lit("tok") + pl.col("_card").cast(pl.String))
        .otherwise(pl.lit("other") + pl.col("_other").cast(pl.String)),
        merchant_id=pl.when("_resolved").then("_merchant"),
        original_txn_id=pl.when(pl.col("type") != frames.PURCHASE).then(
            pl.lit("T") + pl.col("_original").cast(pl.String)
        ),
    )
    frame = frame.with_columns(
        network_ref=pl.lit("NR") + pl.col("line").cast(pl.String),
        mcc=pl.lit("5812"),
        acquirer_merchant_id=pl.lit("ACQ") + pl.col("merchant_id").cast(pl.String),
        terminal_id=pl.lit("T0001"),
        acceptor_name_location=pl.lit("SHOP LONDON GB"),
        location_id=pl.lit(None, pl.Int64),
        resolved_by=pl.when(pl.col("merchant_id").is_not_null()).then(pl.lit("terminal")),
        confidence=pl.when(pl.col("merchant_id").is_not_null()).then(pl.lit(1.0)),
    )
    # A few rows the network sent twice.
    repeats = frame.sample(rows // 1000, seed=40).with_columns(pl.col("line") + rows)
    return _cast(pl.concat([frame, repeats]), frames.RESOLVED)


def build_state(programme: Programme) -> State:
    """A month of history: earlier purchases, grants and usage counters."""
    n = 500_000
    prior = pl.DataFrame(
        {
            "txn_id": _label("H", pl.int_range(0, n, eager=True)),
            "member_id": _ints(n, MEMBERS, 51) + 1,
            "merchant_id": _ints(n, MERCHANTS, 52) + 1,
            "txn_time": _instants(DAY - timedelta(days=30), n, 30 * US_PER_DAY, 53),
        }
    )
    g = 200_000
    reward = _ints(g, 1000, 55) + 1
    grants = pl.DataFrame(
        {
            "txn_id": _label("H", pl.int_range(0, g, eager=True)),
            "member_id": _ints(g, MEMBERS, 56) + 1,
            "merchant_id": _ints(g, MERCHANTS, 57) + 1,
            "currency": pl.Series(["GBP"] * g),
            "purchase_amount_minor": reward * 10,
            "benefit_id": _ints(g, BENEFITS, 58) + 1,
            "reward_minor": reward,
            "merchant_funded_minor": reward // 2,
            "commission_minor": reward // 10,
            "points_benefit_id": pl.Series([None] * g, dtype=pl.Int64),
            "points": pl.Series([0] * g),
            "refunded_minor": pl.Series([0] * g),
            "clawed_back_minor": pl.Series([0] * g),
            "merchant_clawed_back_minor": pl.Series([0] * g),
            "commission_clawed_back_minor": pl.Series([0] * g),
            "points_clawed_back": pl.Series([0] * g),
        }
    )
    u = 200_000
    usage = pl.DataFrame(
        {
            "benefit_id": _ints(u, BENEFITS, 61) + 1,
            "member_id": _ints(u, MEMBERS, 62) + 1,
            "period_key": _pick(
                u, 63, ["campaign", "2026-11", "2026-W48", "2026-11-23"], [25, 25, 25, 25]
            ),
            "uses": _ints(u, 3, 64) + 1,
        }
    ).unique(["benefit_id", "member_id", "period_key"])
    return State(
        usage=_cast(usage, frames.USAGE),
        prior_purchases=_cast(prior, frames.PRIOR_PURCHASES),
        grants=_cast(grants, frames.GRANTS),
    )


def _timed(
    match: Callable[[pl.DataFrame, Programme, State], Outcome],
    feed: pl.DataFrame,
    programme: Programme,
    state: State,
) -> tuple[Outcome, float]:
    started = time.perf_counter()
    outcome = match(feed, programme, state)
    return outcome, time.perf_counter() - started


def _max_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--sample", type=int, default=20_000)
    args = parser.parse_args()

    started = time.perf_counter()
    programme = build_programme()
    state = build_state(programme)
    feed = build_feed(args.rows)
    print(
        f"built {feed.height:,} feed rows and the programme in {time.perf_counter() - started:.1f} s"
    )
    print(f"max RSS after building: {_max_rss_mib():,.0f} MiB")

    times, cpu = [], []
    for _ in range(args.repeat):
        started, started_cpu = time.perf_counter(), time.process_time()
        outcome = engine.match(feed, programme, state)
        times.append(time.perf_counter() - started)
        cpu.append(time.process_time() - started_cpu)
    best, median = min(times), statistics.median(times)
    rewards = outcome.rewards.get_column("kind").value_counts().sort("kind").rows()
    print(
        f"outcome: {dict(rewards)}; {outcome.purchases.height:,} member purchases at alliance merchants "
        f"({outcome.purchases.height / feed.height:.0%} of rows); {outcome.duplicates.height:,} duplicates"
    )
    print(
        f"engine: {feed.height:,} rows in best {best:.3f} s, median {median:.3f} s "
        f"({feed.height / best:,.0f} rows/s best, {feed.height / median:,.0f} rows/s median)"
    )
    print(
        f"engine CPU time (all threads): min {min(cpu):.3f} s, median {statistics.median(cpu):.3f} s"
    )
    print(f"max RSS after the engine: {_max_rss_mib():,.0f} MiB")

    # The oracle first reads the whole programme and state into dictionaries (seconds, with
    # the state this bench carries); its rate is given with that setup and without it (the
    # sample's time minus an empty feed's, best of two each: noisy on a shared machine).
    sample = feed.head(args.sample)
    setup = min(_timed(oracle.match, feed.clear(), programme, state)[1] for _ in range(2))
    runs = [_timed(oracle.match, sample, programme, state) for _ in range(2)]
    expected = runs[0][0]
    total = min(seconds for _, seconds in runs)
    actual = engine.match(sample, programme, state)
    same = all(
        getattr(actual, name).equals(getattr(expected, name))
        for name in ("rewards", "usage_added", "consumed", "grants", "purchases", "duplicates")
    )
    print(f"engine equals oracle on the {sample.height:,}-row sample: {same}")
    with_setup = sample.height / total
    print(
        f"oracle: {sample.height:,} rows in {total:.2f} s with setup ({with_setup:,.0f} rows/s); "
        f"engine / oracle: {feed.height / median / with_setup:,.0f}x (median)"
    )
    if total > setup:
        marginal = sample.height / (total - setup)
        print(
            f"oracle without its {setup:.2f} s setup: {marginal:,.0f} rows/s; "
            f"engine / oracle: {feed.height / median / marginal:,.0f}x (median)"
        )
    else:
        print(f"oracle setup {setup:.2f} s: the sample's own time is within the noise")


if __name__ == "__main__":
    main()
