"""The card-linked matching engine: the oracle's rules, vectorised with Polars for card-feed volumes.

`match` returns exactly what `oracle.match` returns (docs/matching.md states the rules and the
sort order of every output frame). Eligibility, rewards, selection and clawbacks are column
expressions, joins and gathers over narrow frames; only purchases whose choice could depend on
a counter that this chunk can actually exhaust (a budget, a quantity or a member's limit in a
period) are resolved one by one, in a tight loop over plain lists.
"""

from __future__ import annotations

from dataclasses import replace

import polars as pl

from beyondbank.cards import frames
from beyondbank.cards.frames import Outcome, Programme, State
from beyondbank.core.money import minor_digits

KINDS = ("percent_off", "amount_off", "spend_threshold", "points_multiplier")
PERCENT_OFF, AMOUNT_OFF, SPEND_THRESHOLD, POINTS_MULTIPLIER = range(len(KINDS))
PERIODS = ("day", "week", "month", "campaign")
DAY, WEEK, MONTH, CAMPAIGN = range(len(PERIODS))
CLAWBACK_TYPES = (frames.REFUND, frames.CHARGEBACK)
ALL_WEEKDAYS_MASK = sum(1 << day for day in range(1, 8))
US_PER_DAY = 86_400_000_000
US_PER_HOUR = 3_600_000_000
# Stands for "no limit" in the sequential loop's counters: never reached by any real count.
UNLIMITED = 1 << 62
# Local times are found by adding a zone's offset read once per bucket of this many
# microseconds, when the chunk spans at most this many (zone, bucket) pairs.
OFFSET_BUCKET_US = 15 * 60 * 1_000_000
MAX_OFFSET_BUCKETS = 1 << 20
# Open-ended validity dates, as days since 1970-01-01.
FIRST_DAY, LAST_DAY = -(1 << 30), 1 << 30
GRANT_TOTALS = (
    "refunded_minor",
    "clawed_back_minor",
    "merchant_clawed_back_minor",
    "commission_clawed_back_minor",
    "points_clawed_back",
)
USAGE_KEY = ["benefit_id", "member_id", "period_key"]
# A winner: which purchase (`pidx`) got what (`value`) from which benefit (`bix`), and what
# its member counter is keyed by.
WINNER = {
    "pidx": pl.UInt32(),
    "bix": pl.UInt32(),
    "value": pl.Int64(),
    "member_id": pl.Int64(),
    "local_day": pl.Int64(),
}


def match(transactions: pl.DataFrame, programme: Programme, state: State) -> Outcome:
    """Rewards and clawbacks for one chunk of a card feed (the same result as `oracle.match`)."""
    feed = frames.conform(transactions, frames.RESOLVED, "transactions")
    kept, duplicates = _deduplicate(feed)
    purchases = _member_purchases(feed, kept, programme.cards)
    benefits = _benefits(programme.benefits)
    candidates = _candidates(purchases, benefits, programme, state.prior_purchases)
    cash_rows = _gather(candidates, benefits, "cash").get_column("cash")
    cash = _select(candidates.filter(cash_rows), benefits, state.usage)
    points = _select(candidates.filter(~cash_rows), benefits, state.usage)
    rewards, new_grants = _rewards(purchases, benefits, cash, points)
    clawbacks, grants = _clawbacks(feed, kept, _normalised_grants(state.grants), new_grants)
    return Outcome(
        rewards=pl.concat([rewards, clawbacks]),
        usage_added=_usage_added(benefits, cash, points),
        consumed=_consumed(benefits, cash, points),
        grants=grants,
        purchases=frames.conform(
            purchases.select("txn_id", "member_id", "merchant_id", "txn_time"),
            frames.PRIOR_PURCHASES,
            "purchases",
        ),
        duplicates=duplicates,
    )


def advance(programme: Programme, state: State, outcome: Outcome) -> tuple[Programme, State]:
    """The programme and state the next chunk starts from, once this chunk's outcome is applied."""
    taken = outcome.consumed.rename({"budget_minor": "_budget", "quantity": "_quantity"})
    benefits = (
        programme.benefits.join(taken, on="benefit_id", how="left", maintain_order="left")
        .with_columns(
            pl.col("budget_remaining_minor") - pl.col("_budget").fill_null(0),
            pl.col("quantity_remaining") - pl.col("_quantity").fill_null(0),
        )
        .select(frames.BENEFITS.names())
    )
    # In no order: the rules look counters up by key, and sorting them again for every chunk
    # cost a run of many chunks more than the grouping.
    usage = (
        pl.concat([state.usage, outcome.usage_added]).group_by(USAGE_KEY).agg(pl.col("uses").sum())
    )
    grants = pl.concat(
        [
            state.grants.join(
                outcome.grants.select("txn_id"), on="txn_id", how="anti", maintain_order="left"
            ),
            outcome.grants,
        ]
    )
    return replace(programme, benefits=benefits), State(
        usage=frames.conform(usage, frames.USAGE, "usage"),
        prior_purchases=pl.concat([state.prior_purchases, outcome.purchases]),
        grants=grants,
    )


# -- rule 1: each txn_id counts once -------------------------------------------------------------


def _deduplicate(feed: pl.DataFrame) -> tuple[pl.Series, pl.DataFrame]:
    """Which rows count (the lowest line of each txn_id), and the duplicates (in line order)."""
    hashes = feed.get_column("txn_id").hash(0)
    kept = pl.repeat(True, feed.height, dtype=pl.Boolean, eager=True).alias("kept")
    # Equal hashes sit side by side once sorted; only rows whose hash repeats are compared.
    ordered = hashes.sort()
    repeated = ordered.filter(ordered.shift(1) == ordered)
    if repeated.is_empty():
        return kept, frames.empty(frames.DUPLICATES)
    suspects = (
        feed.select("line", "txn_id")
        .with_row_index("_row")
        .filter(hashes.is_in(repeated.unique().implode()))
        .sort("line", maintain_order=True)
        .filter(~pl.col("txn_id").is_first_distinct())
    )
    kept.scatter(suspects.get_column("_row"), False)
    return kept, suspects.select("line", "txn_id")


# -- rules 2 and 3: merchant and member ----------------------------------------------------------


def _member_purchases(feed: pl.DataFrame, kept: pl.Series, cards: pl.DataFrame) -> pl.DataFrame:
    """Purchases with a merchant and a member, in processing order; `pidx` numbers that order."""
    # Selecting before filtering copies six columns of the feed, not all of them.
    purchases = (
        feed.select(
            "txn_id", "card_token", "merchant_id", "amount_minor", "currency", "txn_time", "type"
        )
        .filter(
            kept
            & (pl.col("type") == frames.PURCHASE)
            & pl.col("merchant_id").is_not_null()
            & pl.col("card_token").is_not_null()
        )
        .drop("type")
    )
    # Joined on the tokens' hashes (integers join faster than strings), then the tokens
    # themselves are compared, so a hash collision cannot link the wrong card.
    links = cards.select(
        "member_id", "valid_from", "valid_to", _link=pl.col("card_token"), _hash=_token_hash()
    )
    linked = (
        purchases.with_columns(_hash=_token_hash())
        .join(links, on="_hash")
        .filter(
            (pl.col("card_token") == pl.col("_link"))
            & (pl.col("valid_from").is_null() | (pl.col("valid_from") <= pl.col("txn_time")))
            & (pl.col("valid_to").is_null() | (pl.col("txn_time") < pl.col("valid_to")))
        )
        .drop("_hash", "_link")
    )
    # Sorted by (time, txn_id), the rows of one transaction are neighbours: more than one is
    # a token whose links overlap (they should not): the latest start wins, then the lowest
    # member.
    linked = linked.sort(["txn_time", "txn_id"])
    if (linked.get_column("txn_id").shift(1) == linked.get_column("txn_id")).any():
        linked = (
            linked.sort(["valid_from", "member_id"], descending=[True, False], nulls_last=True)
            .unique("txn_id", keep="first", maintain_order=True)
            .sort(["txn_time", "txn_id"])
        )
    return linked.drop("card_token", "valid_from", "valid_to").with_row_index("pidx")


def _token_hash() -> pl.Expr:
    return pl.col("card_token").hash(0)


# -- rule 4: eligibility ---------------------------------------------------------------------------


def _benefits(benefits: pl.DataFrame) -> pl.DataFrame:
    """Active card-linked benefits with room left, in benefit id order (`bix` numbers it), their
    unset fields at the documented defaults and their codes as small integers."""
    relevant = benefits.filter(
        pl.col("kind").is_in(KINDS) & pl.col("active").fill_null(False)
    ).sort("benefit_id")
    masks = [
        ALL_WEEKDAYS_MASK if days is None else sum(1 << day for day in set(days) if 1 <= day <= 7)
        for days in relevant.get_column("weekdays").to_list()
    ]
    units = {c: 10 ** minor_digits(c) for c in relevant.get_column("currency").unique().to_list()}
    zones = relevant.get_column("timezone").unique().sort().to_list()
    cash = pl.col("kind") != "points_multiplier"
    return (
        relevant.with_columns(
            cash=cash,
            kind_code=pl.col("kind").replace_strict(KINDS, range(len(KINDS)), return_dtype=pl.Int8),
            # Points cost the bank no cash: a points benefit has no budget to spend.
            budget_remaining_minor=pl.when(cash).then(pl.col("budget_remaining_minor")),
            weekday_mask=pl.Series(masks, dtype=pl.Int64),
            unit=pl.col("currency").replace_strict(units, default=None, return_dtype=pl.Int64)
            if units
            else pl.lit(None, pl.Int64),
            zone=pl.col("timezone").replace_strict(zones, range(len(zones)), return_dtype=pl.Int32)
            if zones
            else pl.lit(None, pl.Int32),
            first_day=pl.col("valid_from").cast(pl.Int64).fill_null(FIRST_DAY),
            last_day=pl.col("valid_to").cast(pl.Int64).fill_null(LAST_DAY),
            hour_start=pl.col("hour_start").fill_null(0),
            hour_end=pl.col("hour_end").fill_null(24),
            min_spend_minor=pl.col("min_spend_minor").fill_null(0),
            limit_period=pl.col("limit_period").fill_null("campaign"),
            period_code=pl.col("limit_period")
            .fill_null("campaign")
            .replace_strict(PERIODS, range(len(PERIODS)), default=CAMPAIGN, return_dtype=pl.Int8),
            merchant_share_bps=pl.col("merchant_share_bps").fill_null(0),
            commission_bps=pl.col("commission_bps").fill_null(0),
            points_multiplier=pl.col("points_multiplier").fill_null(0),
        )
        .filter(
            (pl.col("budget_remaining_minor").is_null() | (pl.col("budget_remaining_minor") > 0))
            & (pl.col("quantity_remaining").is_null() | (pl.col("quantity_remaining") > 0))
        )
        .drop("weekdays", "active")
        .with_row_index("bix")
    )


def _gather(frame: pl.DataFrame, benefits: pl.DataFrame, *columns: str) -> pl.DataFrame:
    """Add the named benefit columns to rows that carry a `bix` (a gather: no hashing)."""
    index = frame.get_column("bix")
    return frame.with_columns(benefits.get_column(c).gather(index) for c in columns)


def _candidates(
    purchases: pl.DataFrame, benefits: pl.DataFrame, programme: Programme, prior: pl.DataFrame
) -> pl.DataFrame:
    """Every (purchase, benefit) pair that is eligible and worth something: `pidx`, `bix`,
    `member_id`, `value` (the cash reward, or the points earned) and `local_day`."""
    pairs = purchases.select(
        "pidx", "member_id", "merchant_id", "amount_minor", "currency", "txn_time"
    ).join(  # rule 4: the currency matches
        benefits.select("merchant_id", "currency", "bix"), on=["merchant_id", "currency"]
    )
    rewarded = (
        _gather(
            pairs,
            benefits,
            "kind_code",
            "min_spend_minor",
            "percent_bps",
            "max_reward_minor",
            "fixed_minor",
            "threshold_minor",
            "unit",
            "points_multiplier",
        )
        .select(
            "pidx",
            "bix",
            "member_id",
            "merchant_id",
            "txn_time",
            value=pl.when(pl.col("amount_minor") >= pl.col("min_spend_minor"))
            .then(_reward())
            .otherwise(0),
        )
        .filter(pl.col("value") > 0)
    )
    candidates = _on_schedule(rewarded, benefits)
    candidates = _targeted(
        candidates, benefits, programme.member_circles, programme.benefit_targets
    )
    return _new_to_merchant(candidates, benefits, purchases, prior).select(
        "pidx", "bix", "member_id", "value", "local_day"
    )


def _reward() -> pl.Expr:
    """Rule 5 (and points): floor everything to whole minor units or whole points."""
    amount = pl.col("amount_minor")
    kind = pl.col("kind_code")
    return (
        pl.when(kind == PERCENT_OFF)
        .then(
            pl.min_horizontal(amount * pl.col("percent_bps") // 10_000, pl.col("max_reward_minor"))
        )
        .when(kind == AMOUNT_OFF)
        .then(pl.min_horizontal(pl.col("fixed_minor"), amount))
        .when(kind == SPEND_THRESHOLD)
        .then(pl.when(amount >= pl.col("threshold_minor")).then(pl.col("fixed_minor")).otherwise(0))
        .otherwise(amount // pl.col("unit") * pl.col("points_multiplier"))
    )


def _on_schedule(pairs: pl.DataFrame, benefits: pl.DataFrame) -> pl.DataFrame:
    """Keep pairs whose benefit is open at the purchase's local time in the benefit's zone;
    `local_day` is that local date as days since 1970-01-01."""
    zones = _gather(pairs, benefits, "zone").get_column("zone")
    names = dict(benefits.select("zone", "timezone").unique().iter_rows())
    local = _local_microseconds(pairs.get_column("txn_time"), zones, names)
    day = local // US_PER_DAY
    # 1970-01-01 was a Thursday (ISO weekday 4).
    weekday = (day + 3) % 7 + 1
    hour = (local % US_PER_DAY) // US_PER_HOUR
    judged = _gather(
        pairs.with_columns(local_day=day, _weekday=weekday, _hour=hour),
        benefits,
        "first_day",
        "last_day",
        "weekday_mask",
        "hour_start",
        "hour_end",
    )
    return judged.filter(
        (pl.col("first_day") <= pl.col("local_day"))
        & (pl.col("local_day") <= pl.col("last_day"))
        & ((pl.col("weekday_mask") & pl.lit(2, pl.Int64).pow(pl.col("_weekday"))) != 0)
        & (pl.col("hour_start") <= pl.col("_hour"))
        & (pl.col("_hour") < pl.col("hour_end"))
    ).select("pidx", "bix", "member_id", "merchant_id", "txn_time", "value", "local_day")


def _local_microseconds(instants: pl.Series, zones: pl.Series, names: dict[int, str]) -> pl.Series:
    """Each instant's wall-clock time in its zone (`zones` holds codes of `names`), as
    microseconds since 1970-01-01 local.

    A zone's offset only changes at its transitions, months apart, so an offset that is the
    same at both ends of a short bucket holds inside it: offsets are read once per (zone,
    bucket) and added. Rows in a bucket with a transition inside are converted one by one.
    """
    utc = instants.dt.epoch("us")
    if utc.is_empty() or not names:
        return utc
    bucket = utc // OFFSET_BUCKET_US
    first = int(bucket.min())  # type: ignore[arg-type]
    span = int(bucket.max()) - first + 1  # type: ignore[arg-type]
    codes = max(names) + 1
    if span * codes > MAX_OFFSET_BUCKETS:
        return _converted(instants, zones, names, utc)
    starts = pl.int_range(first, first + span, eager=True, dtype=pl.Int64) * OFFSET_BUCKET_US
    table = pl.concat(
        [
            _bucket_offsets(starts, names[code])
            if code in names
            else pl.repeat(None, span, dtype=pl.Int64, eager=True)
            for code in range(codes)
        ]
    )
    offsets = table.gather(zones.cast(pl.Int64) * span + (bucket - first))
    local = utc + offsets
    split = offsets.is_null()
    if split.any():
        rows = split.arg_true()
        local.scatter(
            rows, _converted(instants.gather(rows), zones.gather(rows), names, utc.gather(rows))
        )
    return local


def _bucket_offsets(starts: pl.Series, zone: str) -> pl.Series:
    """The zone's offset in each bucket, or null where it differs between the bucket's ends."""
    at_start = _offset(starts, zone)
    at_end = _offset(starts + (OFFSET_BUCKET_US - 1), zone)
    return pl.select(pl.when(at_start == at_end).then(at_start)).to_series()


def _offset(starts: pl.Series, zone: str) -> pl.Series:
    """The zone's UTC offset, in microseconds, at each instant (microseconds since 1970 UTC)."""
    instants = starts.cast(pl.Datetime("us")).dt.replace_time_zone("UTC")
    wall = instants.dt.convert_time_zone(zone).dt.replace_time_zone(None).dt.epoch("us")
    return wall - starts


def _converted(
    instants: pl.Series, zones: pl.Series, names: dict[int, str], utc: pl.Series
) -> pl.Series:
    """Wall-clock microseconds row by row; a conversion needs a literal zone, so zone by zone."""
    local = utc.clone()
    for code, name in names.items():
        rows = (zones == code).arg_true()
        if rows.len():
            wall = instants.gather(rows).dt.convert_time_zone(name).dt.replace_time_zone(None)
            local.scatter(rows, wall.dt.epoch("us"))
    return local


def _targeted(
    candidates: pl.DataFrame,
    benefits: pl.DataFrame,
    member_circles: pl.DataFrame,
    targets: pl.DataFrame,
) -> pl.DataFrame:
    """Keep untargeted pairs, and targeted ones whose member is in one of the target circles."""
    aimed = targets.join(benefits.select("benefit_id", "bix"), on="benefit_id").select(
        "bix", "circle_id"
    )
    targeted = candidates.get_column("bix").is_in(aimed.get_column("bix").unique().implode())
    if not targeted.any():
        return candidates
    reached = (
        candidates.filter(targeted)
        .select("pidx", "bix", "member_id")
        .join(member_circles.select("member_id", "circle_id"), on="member_id")
        .join(aimed, on=["bix", "circle_id"], how="semi")
        .select("pidx", "bix")
        .unique()
    )
    return pl.concat(
        [
            candidates.filter(~targeted),
            candidates.filter(targeted).join(reached, on=["pidx", "bix"], how="semi"),
        ]
    )


def _new_to_merchant(
    candidates: pl.DataFrame, benefits: pl.DataFrame, purchases: pl.DataFrame, prior: pl.DataFrame
) -> pl.DataFrame:
    """Keep pairs whose member made no purchase at the merchant in the benefit's N days before."""
    days = _gather(candidates, benefits, "new_to_merchant_days").get_column("new_to_merchant_days")
    judged = candidates.filter(days.is_not_null()).with_columns(days=days.drop_nulls())
    if judged.is_empty():
        return candidates
    # Only the histories of (member, merchant) pairs that such a benefit judges matter.
    # (A cheap filter on the merchant first: the pair semi-join then sees few rows.)
    judged_pairs = judged.select("member_id", "merchant_id").unique()
    merchants = pl.col("merchant_id").is_in(judged_pairs.get_column("merchant_id").implode())
    chunk = (
        purchases.select("txn_id", "member_id", "merchant_id", "txn_time", "pidx")
        .filter(merchants)
        .join(judged_pairs, on=["member_id", "merchant_id"], how="semi")
    )
    earlier = (
        prior.select("txn_id", "member_id", "merchant_id", "txn_time")
        .filter(merchants)
        .join(judged_pairs, on=["member_id", "merchant_id"], how="semi")
        .with_columns(pidx=pl.lit(None, chunk.schema["pidx"]))
    )
    # The latest purchase before this one in (time, txn_id) order is the one just before it.
    history = pl.concat([earlier, chunk]).sort(["member_id", "merchant_id", "txn_time", "txn_id"])
    same = (pl.col("member_id") == pl.col("member_id").shift(1)) & (
        pl.col("merchant_id") == pl.col("merchant_id").shift(1)
    )
    last = history.select(
        "pidx", last_purchase=pl.when(same).then(pl.col("txn_time").shift(1))
    ).filter(pl.col("pidx").is_not_null())
    new = (
        judged.join(last, on="pidx", how="left")
        .filter(
            pl.col("last_purchase").is_null()
            | (pl.col("last_purchase") < pl.col("txn_time") - pl.duration(days=pl.col("days")))
        )
        .drop("last_purchase", "days")
    )
    return pl.concat([candidates.filter(days.is_null()), new])


# -- rules 5 and 6: caps and selection -------------------------------------------------------------


def _period_code() -> pl.Expr:
    """The limit period holding `local_day` as an integer: the day itself, yyyyww, yyyymm, or 0."""
    period = pl.col("period_code")
    day = pl.col("local_day")
    date = day.cast(pl.Date)
    return (
        pl.when(period == DAY)
        .then(day)
        .when(period == WEEK)
        .then(date.dt.iso_year().cast(pl.Int64) * 100 + date.dt.week().cast(pl.Int64))
        .when(period == MONTH)
        .then(date.dt.year().cast(pl.Int64) * 100 + date.dt.month().cast(pl.Int64))
        .otherwise(0)
    )


def _period_key() -> pl.Expr:
    """The limit period holding `local_day`, spelt as `rules.period_key` spells it."""
    period = pl.col("period_code")
    date = pl.col("local_day").cast(pl.Date)
    return (
        pl.when(period == DAY)
        .then(date.dt.strftime("%Y-%m-%d"))
        .when(period == WEEK)
        .then(date.dt.strftime("%G-W%V"))
        .when(period == MONTH)
        .then(date.dt.strftime("%Y-%m"))
        .otherwise(pl.lit("campaign"))
    )


def _with_period_key(frame: pl.DataFrame) -> pl.DataFrame:
    """Add `period_key`, formatted once per distinct (period, day) rather than once per row."""
    days = frame.select("period_code", "local_day").unique()
    return frame.join(
        days.with_columns(period_key=_period_key()),
        on=["period_code", "local_day"],
        how="left",
        maintain_order="left",
    )


def _select(candidates: pl.DataFrame, benefits: pl.DataFrame, usage: pl.DataFrame) -> pl.DataFrame:
    """Each purchase's winner among its candidates (largest grant, then lowest benefit id),
    honouring budgets, quantities and member limits in processing order.

    A counter can only change a choice if this chunk's candidates could exhaust it: a budget
    smaller than the sum of its candidates' rewards, a quantity smaller than their count, a
    member's period with more candidates than uses left. Candidates touching such a counter
    are "contested"; every other candidate always gets its full reward. A purchase is resolved
    in the loop only if a contested candidate could beat its best uncontested one.
    """
    if candidates.is_empty():
        return pl.DataFrame(schema=WINNER)
    slotted, counters = _with_slots(candidates, benefits, usage)
    # bix follows benefit id order, so ties on value go to the lowest bix.
    ranked = slotted.sort(["pidx", "value", "bix"], descending=[False, True, False])
    contested = (pl.col("bslot") > 0) | (pl.col("qslot") > 0) | (pl.col("kslot") > 0)
    best = ranked.filter(~contested).filter(pl.col("pidx").is_first_distinct())
    challengers = (
        ranked.filter(contested)
        .join(best.select("pidx", best_value="value", best_bix="bix"), on="pidx", how="left")
        .filter(
            pl.col("best_value").is_null()
            | (pl.col("value") > pl.col("best_value"))
            | ((pl.col("value") == pl.col("best_value")) & (pl.col("bix") < pl.col("best_bix")))
        )
        .drop("best_value", "best_bix")
    )
    if challengers.is_empty():
        return best.select(WINNER.keys())
    looped = challengers.get_column("pidx").unique().implode()
    queue = pl.concat([challengers, best.filter(pl.col("pidx").is_in(looped))]).sort(
        ["pidx", "value", "bix"], descending=[False, True, False]
    )
    resolved = _resolve_in_order(queue, *counters)
    return pl.concat(
        [
            best.filter(~pl.col("pidx").is_in(looped)).select(WINNER.keys()),
            queue.select("pidx", "bix", "member_id", "local_day")
            .join(resolved, on=["pidx", "bix"])
            .select(WINNER.keys()),
        ]
    )


Counters = tuple[list[int], list[int], list[int], list[int]]


def _with_slots(
    candidates: pl.DataFrame, benefits: pl.DataFrame, usage: pl.DataFrame
) -> tuple[pl.DataFrame, Counters]:
    """Number the counters this chunk could exhaust (slot 0 stands for any counter that cannot
    run out): `bslot` budgets, `qslot` quantities, `kslot` member-period limits; and the
    counters' starting values, indexed by slot: budget left, quantity left, uses, limit."""
    per_benefit = (
        candidates.group_by("bix")
        .agg(pl.col("value").sum().alias("_total"), pl.len().alias("_count"))
        .pipe(_gather, benefits, "budget_remaining_minor", "quantity_remaining")
    )
    budgets = per_benefit.filter(pl.col("_total") > pl.col("budget_remaining_minor"))
    quantities = per_benefit.filter(pl.col("_count") > pl.col("quantity_remaining"))
    budget_slot = _slots(benefits.height, budgets.get_column("bix"))
    quantity_slot = _slots(benefits.height, quantities.get_column("bix"))
    bix = candidates.get_column("bix")
    slotted = candidates.with_columns(
        bslot=budget_slot.gather(bix), qslot=quantity_slot.gather(bix), kslot=pl.lit(0, pl.Int64)
    )
    budget_left = [UNLIMITED, *budgets.get_column("budget_remaining_minor").to_list()]
    quantity_left = [UNLIMITED, *quantities.get_column("quantity_remaining").to_list()]

    limits = _gather(candidates, benefits, "member_limit").get_column("member_limit")
    limited = slotted.filter(limits.is_not_null())
    if limited.is_empty():
        return slotted, (budget_left, quantity_left, [0], [UNLIMITED])
    limited = _gather(limited, benefits, "period_code").with_columns(period=_period_code())
    keys = (
        limited.group_by("bix", "member_id", "period")
        .agg(pl.len().alias("_count"), pl.col("local_day").first(), pl.col("period_code").first())
        .pipe(_gather, benefits, "benefit_id", "member_limit")
    )
    # A member's period is contested when its earlier uses plus this chunk's candidates could
    # pass the limit; earlier uses are looked up once per key, by the key's spelling.
    before = usage.filter(
        pl.col("benefit_id").is_in(keys.get_column("benefit_id").unique().implode())
    ).select(*USAGE_KEY, _before="uses")
    counted = keys.height
    keys = _with_period_key(keys).join(before, on=USAGE_KEY, how="left")
    if keys.height > counted:
        # The same key more than once in `state.usage`: its uses add up.
        keys = keys.group_by("bix", "member_id", "period").agg(
            pl.all().exclude("_before").first(), pl.col("_before").sum()
        )
    contested = (
        keys.with_columns(pl.col("_before").fill_null(0))
        .filter(pl.col("_before") + pl.col("_count") > pl.col("member_limit"))
        .with_columns(kslot=pl.int_range(1, pl.len() + 1, dtype=pl.Int64))
    )
    uses = [0, *contested.get_column("_before").to_list()]
    member_limit = [UNLIMITED, *contested.get_column("member_limit").to_list()]
    limited = (
        limited.drop("kslot", "period_code")
        .join(
            contested.select("bix", "member_id", "period", "kslot"),
            on=["bix", "member_id", "period"],
            how="left",
        )
        .with_columns(pl.col("kslot").fill_null(0))
        .drop("period")
    )
    return pl.concat([slotted.filter(limits.is_null()), limited]), (
        budget_left,
        quantity_left,
        uses,
        member_limit,
    )


def _slots(size: int, contested: pl.Series) -> pl.Series:
    """Slot numbers by bix: 1, 2, … for the contested benefits, 0 for every other."""
    slots = [0] * size
    for slot, bix in enumerate(contested.to_list(), start=1):
        slots[bix] = slot
    return pl.Series(slots, dtype=pl.Int64)


def _resolve_in_order(
    queue: pl.DataFrame,
    budget_left: list[int],
    quantity_left: list[int],
    uses: list[int],
    limits: list[int],
) -> pl.DataFrame:
    """Resolve the contested purchases one by one in processing order.

    `queue` holds, per purchase, its candidates that could win, best value first (ties: lowest
    bix); the counters are indexed by the rows' slots and updated as grants are made. Returns
    (pidx, bix, value) with the value actually granted.
    """
    pidx = queue.get_column("pidx").to_list()
    bix = queue.get_column("bix").to_list()
    value = queue.get_column("value").to_list()
    bslot = queue.get_column("bslot").to_list()
    qslot = queue.get_column("qslot").to_list()
    kslot = queue.get_column("kslot").to_list()

    won_pidx: list[int] = []
    won_bix: list[int] = []
    won_value: list[int] = []
    n = len(pidx)
    i = 0
    while i < n:
        purchase = pidx[i]
        best = -1
        best_value = 0
        best_bix = 0
        j = i
        while j < n and pidx[j] == purchase:
            reward = value[j]
            # A grant never exceeds its reward: a smaller reward can no longer win.
            if best < 0 or reward > best_value or (reward == best_value and bix[j] < best_bix):
                budget = budget_left[bslot[j]]
                if budget > 0 and quantity_left[qslot[j]] > 0 and uses[kslot[j]] < limits[kslot[j]]:
                    grant = reward if reward < budget else budget
                    if (
                        best < 0
                        or grant > best_value
                        or (grant == best_value and bix[j] < best_bix)
                    ):
                        best, best_value, best_bix = j, grant, bix[j]
            j += 1
        if best >= 0:
            budget_left[bslot[best]] -= best_value
            quantity_left[qslot[best]] -= 1
            uses[kslot[best]] += 1
            won_pidx.append(purchase)
            won_bix.append(best_bix)
            won_value.append(best_value)
        i = j
    return pl.DataFrame(
        {"pidx": won_pidx, "bix": won_bix, "value": won_value},
        schema={"pidx": WINNER["pidx"], "bix": WINNER["bix"], "value": WINNER["value"]},
    )


# -- rules 6 and 7: rewards, grants, funding, counters ---------------------------------------------


def _rewards(
    purchases: pl.DataFrame, benefits: pl.DataFrame, cash: pl.DataFrame, points: pl.DataFrame
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Reward rows (in processing order) and the new grants, one per rewarded purchase."""
    cash = _gather(cash, benefits, "benefit_id", "merchant_share_bps", "commission_bps")
    points = _gather(points, benefits, "benefit_id", "commission_bps")
    awards = (
        cash.select("pidx", "benefit_id", "merchant_share_bps", "commission_bps", amount="value")
        .join(
            points.select(
                "pidx",
                points_benefit_id="benefit_id",
                points_commission_bps="commission_bps",
                points="value",
            ),
            on="pidx",
            how="full",
            coalesce=True,
        )
        .sort("pidx")
    )
    index = awards.get_column("pidx")
    awards = awards.with_columns(
        purchases.get_column(c).gather(index)
        for c in ("txn_id", "txn_time", "member_id", "merchant_id", "currency", "amount_minor")
    )
    grant = pl.col("amount").fill_null(0)
    merchant_funded = grant * pl.col("merchant_share_bps").fill_null(0) // 10_000
    # The commission follows the cash benefit; a points-only purchase pays its points benefit's.
    commission = (
        pl.col("amount_minor")
        * pl.coalesce(pl.col("commission_bps"), pl.col("points_commission_bps"))
        // 10_000
    )
    awards = awards.with_columns(
        reward_minor=grant,
        merchant_funded_minor=merchant_funded,
        bank_funded_minor=grant - merchant_funded,
        commission_minor=commission,
        points=pl.col("points").fill_null(0),
    )
    rewards = awards.select(
        kind=pl.lit(frames.REWARD),
        txn_id="txn_id",
        original_txn_id=pl.lit(None, pl.String),
        txn_time="txn_time",
        member_id="member_id",
        merchant_id="merchant_id",
        currency="currency",
        purchase_amount_minor="amount_minor",
        txn_amount_minor="amount_minor",
        benefit_id="benefit_id",
        amount_minor="reward_minor",
        merchant_funded_minor="merchant_funded_minor",
        bank_funded_minor="bank_funded_minor",
        commission_minor="commission_minor",
        points_benefit_id="points_benefit_id",
        points="points",
    )
    grants = awards.select(
        "txn_id",
        "member_id",
        "merchant_id",
        "currency",
        "benefit_id",
        "reward_minor",
        "merchant_funded_minor",
        "commission_minor",
        "points_benefit_id",
        "points",
        purchase_amount_minor="amount_minor",
        **{total: pl.lit(0, pl.Int64) for total in GRANT_TOTALS},
    )
    return frames.conform(rewards, frames.REWARDS, "rewards"), frames.conform(
        grants, frames.GRANTS, "grants"
    )


def _usage_added(benefits: pl.DataFrame, cash: pl.DataFrame, points: pl.DataFrame) -> pl.DataFrame:
    counted = (
        _gather(pl.concat([cash, points]), benefits, "period_code")
        .with_columns(period=_period_code())
        .group_by("bix", "member_id", "period")
        .agg(
            pl.len().cast(pl.Int64).alias("uses"),
            pl.col("local_day").first(),
            pl.col("period_code").first(),
        )
        # Within one benefit the period codes sort as their keys do (one period kind each).
        .sort("bix", "member_id", "period")
        .pipe(_gather, benefits, "benefit_id")
        .pipe(_with_period_key)
    )
    return frames.conform(counted, frames.USAGE_ADDED, "usage_added")


def _consumed(benefits: pl.DataFrame, cash: pl.DataFrame, points: pl.DataFrame) -> pl.DataFrame:
    taken = (
        pl.concat(
            [
                cash.select("bix", budget_minor="value"),
                points.select("bix", budget_minor=pl.lit(0, pl.Int64)),
            ]
        )
        .group_by("bix")
        .agg(pl.col("budget_minor").sum(), quantity=pl.len().cast(pl.Int64))
        .pipe(_gather, benefits, "benefit_id")
        .sort("benefit_id")
    )
    return frames.conform(taken, frames.CONSUMED, "consumed")


# -- rule 8: refunds and chargebacks ---------------------------------------------------------------


def _normalised_grants(grants: pl.DataFrame) -> pl.DataFrame:
    """Prior grants with absent amounts read as zero."""
    amounts = [
        c
        for c, t in frames.GRANTS.items()
        if t == pl.Int64()
        and c not in ("member_id", "merchant_id", "benefit_id", "points_benefit_id")
    ]
    return frames.conform(grants, frames.GRANTS, "grants").with_columns(
        pl.col(amounts).fill_null(0)
    )


def _clawbacks(
    feed: pl.DataFrame, kept: pl.Series, prior: pl.DataFrame, new: pl.DataFrame
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Clawback rows (in processing order) and the grants new or changed in this chunk.

    Per original, in (time, txn_id) order, each refund claws back min(its pro-rata share, what
    is left); so the running total is min(already clawed + running sum of shares, granted)
    (what was clawed back never exceeds what was granted), and each refund's part is the
    difference of consecutive running totals.
    """
    refunds = (
        feed.select("txn_id", "original_txn_id", "txn_time", "currency", "amount_minor", "type")
        .filter(
            kept & pl.col("type").is_in(CLAWBACK_TYPES) & pl.col("original_txn_id").is_not_null()
        )
        .select("txn_id", "original_txn_id", "txn_time", "currency", refund="amount_minor")
    )
    originals = [
        refunds.join(
            grants.rename({"txn_id": "original_txn_id", "currency": "_currency"}),
            on="original_txn_id",
        )
        for grants in (prior, new)
    ]
    matched = (
        pl.concat(originals)
        .filter(pl.col("currency") == pl.col("_currency"))
        .sort(["original_txn_id", "txn_time", "txn_id"])
    )
    same = pl.col("original_txn_id") == pl.col("original_txn_id").shift(1)

    def running(total: str, so_far: str) -> tuple[pl.Expr, pl.Expr]:
        shares = pl.col(total) * pl.col("refund") // pl.col("purchase_amount_minor")
        after = pl.min_horizontal(
            pl.col(so_far) + shares.cum_sum().over("original_txn_id"), pl.col(total)
        )
        return pl.when(same).then(after.shift(1)).otherwise(pl.col(so_far)), after

    cash_before, cash_after = running("reward_minor", "clawed_back_minor")
    commission_before, commission_after = running(
        "commission_minor", "commission_clawed_back_minor"
    )
    points_before, points_after = running("points", "points_clawed_back")
    funded = pl.col("merchant_funded_minor")
    reward = pl.col("reward_minor")
    merchant_before = (
        pl.when(reward == 0).then(0).otherwise(funded * pl.col("_cash_before") // reward)
    )
    merchant_after = (
        pl.when(reward == 0).then(0).otherwise(funded * pl.col("_cash_after") // reward)
    )
    matched = matched.with_columns(
        _cash_before=cash_before,
        _cash_after=cash_after,
        _commission_before=commission_before,
        _commission_after=commission_after,
        _points_before=points_before,
        _points_after=points_after,
        _refunded_after=pl.col("refunded_minor")
        + pl.col("refund").cum_sum().over("original_txn_id"),
    ).with_columns(
        _cash=pl.col("_cash_after") - pl.col("_cash_before"),
        _merchant=merchant_after - merchant_before,
        _merchant_after=pl.col("merchant_clawed_back_minor")
        + merchant_after
        - pl.when(reward == 0).then(0).otherwise(funded * pl.col("clawed_back_minor") // reward),
        _commission=pl.col("_commission_after") - pl.col("_commission_before"),
        _points=pl.col("_points_after") - pl.col("_points_before"),
    )
    rows = matched.filter(
        (pl.col("_cash") > 0) | (pl.col("_commission") > 0) | (pl.col("_points") > 0)
    ).sort(["txn_time", "txn_id"])
    clawbacks = rows.select(
        kind=pl.lit(frames.CLAWBACK),
        txn_id="txn_id",
        original_txn_id="original_txn_id",
        txn_time="txn_time",
        member_id="member_id",
        merchant_id="merchant_id",
        currency="currency",
        purchase_amount_minor="purchase_amount_minor",
        txn_amount_minor="refund",
        benefit_id="benefit_id",
        amount_minor="_cash",
        merchant_funded_minor="_merchant",
        bank_funded_minor=pl.col("_cash") - pl.col("_merchant"),
        commission_minor="_commission",
        points_benefit_id="points_benefit_id",
        points="_points",
    )
    totals = matched.filter(pl.col("original_txn_id").is_last_distinct()).select(
        txn_id="original_txn_id",
        refunded_minor="_refunded_after",
        clawed_back_minor="_cash_after",
        merchant_clawed_back_minor="_merchant_after",
        commission_clawed_back_minor="_commission_after",
        points_clawed_back="_points_after",
    )
    # New grants stay in processing order; only the few that were refunded are rewritten.
    new = new.with_row_index("_order")
    refunded = new.get_column("txn_id").is_in(totals.get_column("txn_id").implode())
    updated = pl.concat(
        [
            new.filter(~refunded),
            new.filter(refunded).drop(GRANT_TOTALS).join(totals, on="txn_id"),
        ],
        how="diagonal",
    ).sort("_order")
    changed_prior = prior.drop(GRANT_TOTALS).join(totals, on="txn_id").sort("txn_id")
    grants = pl.concat(
        [
            updated.drop("_order").select(frames.GRANTS.names()),
            changed_prior.select(frames.GRANTS.names()),
        ]
    )
    return frames.conform(clawbacks, frames.REWARDS, "clawbacks"), frames.conform(
        grants, frames.GRANTS, "grants"
    )
