"""The card-linked matching engine: the oracle's rules, vectorised with Polars for card-feed volumes.

`match` returns exactly what `oracle.match` returns (docs/matching.md states the rules and the
sort order of every output frame). Eligibility, rewards, selection and clawbacks are column
expressions and joins; only purchases whose choice could depend on a counter that this chunk
can actually exhaust (a budget, a quantity or a member's limit in a period) are resolved one
by one, in a tight loop over plain lists.
"""

from __future__ import annotations

from dataclasses import replace

import polars as pl

from beyondbank.cards import frames
from beyondbank.cards.frames import Outcome, Programme, State
from beyondbank.core.money import minor_digits

CASH_KINDS = ("percent_off", "amount_off", "spend_threshold")
POINTS_KIND = "points_multiplier"
CLAWBACK_TYPES = (frames.REFUND, frames.CHARGEBACK)
ALL_WEEKDAYS_MASK = sum(1 << day for day in range(1, 8))
# Stands for "no limit" in the sequential loop's counters: never reached by any real count.
UNLIMITED = 1 << 62
GRANT_TOTALS = (
    "refunded_minor",
    "clawed_back_minor",
    "merchant_clawed_back_minor",
    "commission_clawed_back_minor",
    "points_clawed_back",
)
USAGE_KEY = ["benefit_id", "member_id", "period_key"]
# What a winner carries from its candidate row to the reward, the grant and the counters.
WINNER_COLUMNS = [
    "pidx",
    "benefit_id",
    "value",
    "member_id",
    "limit_period",
    "local_date",
    "merchant_share_bps",
    "commission_bps",
]


def match(transactions: pl.DataFrame, programme: Programme, state: State) -> Outcome:
    """Rewards and clawbacks for one chunk of a card feed (the same result as `oracle.match`)."""
    feed = frames.conform(transactions, frames.RESOLVED, "transactions")
    feed, duplicates = _deduplicate(feed)
    purchases = _member_purchases(feed, programme.cards)
    benefits = _benefits(programme.benefits, programme.benefit_targets)
    candidates = _candidates(purchases, benefits, programme, state.prior_purchases)
    usage = state.usage
    cash = _select(candidates.filter(pl.col("cash")), usage)
    points = _select(candidates.filter(~pl.col("cash")), usage)
    rewards, new_grants = _rewards(purchases, cash, points)
    clawbacks, grants = _clawbacks(feed, _normalised_grants(state.grants), new_grants)
    return Outcome(
        rewards=pl.concat([rewards, clawbacks]),
        usage_added=_usage_added(cash, points),
        consumed=_consumed(cash, points),
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
        programme.benefits.join(taken, on="benefit_id", how="left")
        .with_columns(
            pl.col("budget_remaining_minor") - pl.col("_budget").fill_null(0),
            pl.col("quantity_remaining") - pl.col("_quantity").fill_null(0),
        )
        .select(frames.BENEFITS.names())
    )
    usage = (
        pl.concat([state.usage, outcome.usage_added])
        .group_by(USAGE_KEY)
        .agg(pl.col("uses").sum())
        .sort(USAGE_KEY)
    )
    grants = pl.concat(
        [
            state.grants.join(outcome.grants.select("txn_id"), on="txn_id", how="anti"),
            outcome.grants,
        ]
    )
    return replace(programme, benefits=benefits), State(
        usage=frames.conform(usage, frames.USAGE, "usage"),
        prior_purchases=pl.concat([state.prior_purchases, outcome.purchases]),
        grants=grants,
    )


# -- rule 1: each txn_id counts once -------------------------------------------------------------


def _deduplicate(feed: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Keep the lowest line of each txn_id; the other rows are duplicates (in line order)."""
    repeated = feed.get_column("txn_id").is_duplicated()
    if not repeated.any():
        return feed, frames.empty(frames.DUPLICATES)
    rows = feed.with_row_index("_row")
    first = (
        rows.filter(repeated)
        .sort("line", maintain_order=True)
        .unique("txn_id", keep="first", maintain_order=True)
        .get_column("_row")
    )
    kept = ~repeated | rows.get_column("_row").is_in(first.implode())
    duplicates = feed.filter(~kept).select("line", "txn_id").sort("line", maintain_order=True)
    return feed.filter(kept), duplicates


# -- rules 2 and 3: merchant and member ----------------------------------------------------------


def _member_purchases(feed: pl.DataFrame, cards: pl.DataFrame) -> pl.DataFrame:
    """Purchases with a merchant and a member, in processing order; `pidx` numbers that order."""
    purchases = feed.filter(
        (pl.col("type") == frames.PURCHASE)
        & pl.col("merchant_id").is_not_null()
        & pl.col("card_token").is_not_null()
    ).select("txn_id", "card_token", "merchant_id", "amount_minor", "currency", "txn_time")
    links = cards.select("card_token", "member_id", "valid_from", "valid_to")
    linked = purchases.join(links, on="card_token").filter(
        (pl.col("valid_from").is_null() | (pl.col("valid_from") <= pl.col("txn_time")))
        & (pl.col("valid_to").is_null() | (pl.col("txn_time") < pl.col("valid_to")))
    )
    if cards.get_column("card_token").is_duplicated().any():
        # Overlapping links (they should not be): the latest start wins, then the lowest member.
        linked = linked.sort(
            ["valid_from", "member_id"], descending=[True, False], nulls_last=True
        ).unique("txn_id", keep="first")
    return (
        linked.drop("card_token", "valid_from", "valid_to")
        .sort(["txn_time", "txn_id"])
        .with_row_index("pidx")
    )


# -- rule 4: eligibility ---------------------------------------------------------------------------


def _benefits(benefits: pl.DataFrame, targets: pl.DataFrame) -> pl.DataFrame:
    """Active card-linked benefits with room left, their unset fields at the documented defaults."""
    relevant = benefits.filter(
        pl.col("kind").is_in([*CASH_KINDS, POINTS_KIND]) & pl.col("active").fill_null(False)
    )
    masks = [
        ALL_WEEKDAYS_MASK if days is None else sum(1 << day for day in set(days) if 1 <= day <= 7)
        for days in relevant.get_column("weekdays").to_list()
    ]
    units = {c: 10 ** minor_digits(c) for c in relevant.get_column("currency").unique().to_list()}
    cash = pl.col("kind").is_in(CASH_KINDS)
    return (
        relevant.with_columns(
            cash=cash,
            # Points cost the bank no cash: a points benefit has no budget to spend.
            budget_remaining_minor=pl.when(cash).then(pl.col("budget_remaining_minor")),
            weekday_mask=pl.Series(masks, dtype=pl.Int64),
            unit=pl.col("currency").replace_strict(units, default=None, return_dtype=pl.Int64)
            if units
            else pl.lit(None, pl.Int64),
            hour_start=pl.col("hour_start").fill_null(0),
            hour_end=pl.col("hour_end").fill_null(24),
            min_spend_minor=pl.col("min_spend_minor").fill_null(0),
            limit_period=pl.col("limit_period").fill_null("campaign"),
            merchant_share_bps=pl.col("merchant_share_bps").fill_null(0),
            commission_bps=pl.col("commission_bps").fill_null(0),
            targeted=pl.col("benefit_id").is_in(targets.get_column("benefit_id").implode()),
        )
        .filter(
            (pl.col("budget_remaining_minor").is_null() | (pl.col("budget_remaining_minor") > 0))
            & (pl.col("quantity_remaining").is_null() | (pl.col("quantity_remaining") > 0))
        )
        .drop("weekdays", "active")
    )


def _candidates(
    purchases: pl.DataFrame, benefits: pl.DataFrame, programme: Programme, prior: pl.DataFrame
) -> pl.DataFrame:
    """Every (purchase, benefit) pair that is eligible and worth something, with its `value`:
    the cash reward, or the points earned."""
    candidates = (
        purchases.select("pidx", "member_id", "merchant_id", "amount_minor", "currency", "txn_time")
        .join(benefits, on=["merchant_id", "currency"])
        .filter(pl.col("amount_minor") >= pl.col("min_spend_minor"))
        .with_columns(value=_reward())
        .filter(pl.col("value") > 0)
        .drop("percent_bps", "max_reward_minor", "fixed_minor", "threshold_minor", "unit")
    )
    candidates = _on_schedule(candidates)
    candidates = _targeted(candidates, programme.member_circles, programme.benefit_targets)
    return _new_to_merchant(candidates, purchases, prior)


def _reward() -> pl.Expr:
    """Rule 5 (and points): floor everything to whole minor units or whole points."""
    amount = pl.col("amount_minor")
    kind = pl.col("kind")
    return (
        pl.when(kind == "percent_off")
        .then(
            pl.min_horizontal(amount * pl.col("percent_bps") // 10_000, pl.col("max_reward_minor"))
        )
        .when(kind == "amount_off")
        .then(pl.min_horizontal(pl.col("fixed_minor"), amount))
        .when(kind == "spend_threshold")
        .then(pl.when(amount >= pl.col("threshold_minor")).then(pl.col("fixed_minor")).otherwise(0))
        .otherwise(amount // pl.col("unit") * pl.col("points_multiplier").fill_null(0))
    )


def _on_schedule(candidates: pl.DataFrame) -> pl.DataFrame:
    """Keep pairs whose benefit is open at the purchase's local time in the benefit's zone."""
    if candidates.is_empty():
        return candidates.with_columns(
            local_date=pl.lit(None, pl.Date),
            weekday=pl.lit(None, pl.Int8),
            hour=pl.lit(None, pl.Int8),
        )
    parts = []
    # A zone conversion needs a literal zone: one pass per distinct zone.
    for (timezone,), part in candidates.partition_by("timezone", as_dict=True).items():
        local = pl.col("txn_time").dt.convert_time_zone(str(timezone))
        parts.append(
            part.with_columns(
                local_date=local.dt.date(), weekday=local.dt.weekday(), hour=local.dt.hour()
            )
        )
    day = pl.col("local_date")
    return pl.concat(parts).filter(
        (pl.col("valid_from").is_null() | (pl.col("valid_from") <= day))
        & (pl.col("valid_to").is_null() | (day <= pl.col("valid_to")))
        & ((pl.col("weekday_mask") & pl.lit(2, pl.Int64).pow(pl.col("weekday"))) != 0)
        & (pl.col("hour_start") <= pl.col("hour"))
        & (pl.col("hour") < pl.col("hour_end"))
    )


def _targeted(
    candidates: pl.DataFrame, member_circles: pl.DataFrame, targets: pl.DataFrame
) -> pl.DataFrame:
    """Keep untargeted pairs, and targeted ones whose member is in one of the target circles."""
    targeted = candidates.filter(pl.col("targeted"))
    if targeted.is_empty():
        return candidates
    reached = (
        targeted.select("pidx", "benefit_id", "member_id")
        .join(member_circles.select("member_id", "circle_id"), on="member_id")
        .join(targets.select("benefit_id", "circle_id"), on=["benefit_id", "circle_id"], how="semi")
        .select("pidx", "benefit_id")
        .unique()
    )
    return pl.concat(
        [
            candidates.filter(~pl.col("targeted")),
            targeted.join(reached, on=["pidx", "benefit_id"], how="semi"),
        ]
    )


def _new_to_merchant(
    candidates: pl.DataFrame, purchases: pl.DataFrame, prior: pl.DataFrame
) -> pl.DataFrame:
    """Keep pairs whose member made no purchase at the merchant in the benefit's N days before."""
    judged = candidates.filter(pl.col("new_to_merchant_days").is_not_null())
    if judged.is_empty():
        return candidates
    merchants = judged.get_column("merchant_id").unique().implode()
    chunk = purchases.filter(pl.col("merchant_id").is_in(merchants)).select(
        "txn_id", "member_id", "merchant_id", "txn_time", "pidx"
    )
    earlier = (
        prior.filter(pl.col("merchant_id").is_in(merchants))
        .join(chunk.select("member_id").unique(), on="member_id", how="semi")
        .select("txn_id", "member_id", "merchant_id", "txn_time")
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
            | (
                pl.col("last_purchase")
                < pl.col("txn_time") - pl.duration(days=pl.col("new_to_merchant_days"))
            )
        )
        .drop("last_purchase")
    )
    return pl.concat([candidates.filter(pl.col("new_to_merchant_days").is_null()), new])


# -- rules 5 and 6: caps and selection -------------------------------------------------------------


def _period_key() -> pl.Expr:
    """The limit period holding the local date, spelt as `rules.period_key` spells it."""
    period = pl.col("limit_period")
    day = pl.col("local_date")
    return (
        pl.when(period == "day")
        .then(day.dt.strftime("%Y-%m-%d"))
        .when(period == "week")
        .then(day.dt.strftime("%G-W%V"))
        .when(period == "month")
        .then(day.dt.strftime("%Y-%m"))
        .otherwise(pl.lit("campaign"))
    )


def _select(candidates: pl.DataFrame, usage: pl.DataFrame) -> pl.DataFrame:
    """Each purchase's winner among its candidates (largest grant, then lowest benefit id),
    honouring budgets, quantities and member limits in processing order.

    A counter can only change a choice if this chunk's candidates could exhaust it: a budget
    smaller than the sum of its candidates' rewards, a quantity smaller than their count, a
    member's period with more candidates than uses left. Candidates touching such a counter
    are "contested"; every other candidate always gets its full reward. A purchase is resolved
    in the loop only if a contested candidate could beat its best uncontested one.
    """
    if candidates.is_empty():
        return pl.DataFrame(schema={c: candidates.schema[c] for c in WINNER_COLUMNS})
    ranked = _with_slots(candidates, usage).sort(
        ["pidx", "value", "benefit_id"], descending=[False, True, False]
    )
    contested = (pl.col("bslot") > 0) | (pl.col("qslot") > 0) | (pl.col("kslot") > 0)
    best = ranked.filter(~contested).filter(pl.col("pidx").is_first_distinct())
    challengers = (
        ranked.filter(contested)
        .join(best.select("pidx", best_value="value", best_id="benefit_id"), on="pidx", how="left")
        .filter(
            pl.col("best_value").is_null()
            | (pl.col("value") > pl.col("best_value"))
            | (
                (pl.col("value") == pl.col("best_value"))
                & (pl.col("benefit_id") < pl.col("best_id"))
            )
        )
        .drop("best_value", "best_id")
    )
    if challengers.is_empty():
        return best.select(WINNER_COLUMNS)
    looped = challengers.get_column("pidx").unique().implode()
    fallbacks = best.filter(pl.col("pidx").is_in(looped))
    resolved = _resolve_in_order(
        pl.concat([challengers, fallbacks]).sort(
            ["pidx", "value", "benefit_id"], descending=[False, True, False]
        ),
        ranked,
    )
    winners = ranked.select(WINNER_COLUMNS).drop("value").join(resolved, on=["pidx", "benefit_id"])
    return pl.concat(
        [
            best.filter(~pl.col("pidx").is_in(looped)).select(WINNER_COLUMNS),
            winners.select(WINNER_COLUMNS),
        ]
    )


def _with_slots(candidates: pl.DataFrame, usage: pl.DataFrame) -> pl.DataFrame:
    """Number the counters this chunk could exhaust (slot 0: a counter that cannot run out):
    `bslot` budgets, `qslot` quantities, `kslot` member-period limits, with their starting
    values in `budget_left`, `quantity_left`, `uses_before` and `member_limit`."""
    per_benefit = candidates.group_by("benefit_id").agg(
        pl.col("value").sum().alias("_total"),
        pl.len().alias("_count"),
        pl.col("budget_remaining_minor").first(),
        pl.col("quantity_remaining").first(),
    )
    budgets = per_benefit.filter(pl.col("_total") > pl.col("budget_remaining_minor")).select(
        "benefit_id", bslot=pl.int_range(1, pl.len() + 1)
    )
    quantities = per_benefit.filter(pl.col("_count") > pl.col("quantity_remaining")).select(
        "benefit_id", qslot=pl.int_range(1, pl.len() + 1)
    )
    slotted = (
        candidates.join(budgets, on="benefit_id", how="left")
        .join(quantities, on="benefit_id", how="left")
        .with_columns(pl.col("bslot", "qslot").fill_null(0))
    )
    limited = slotted.filter(pl.col("member_limit").is_not_null())
    if limited.is_empty():
        return slotted.with_columns(
            kslot=pl.lit(0, pl.Int64),
            period_key=pl.lit(None, pl.String),
            uses_before=pl.lit(0, pl.Int64),
        )
    limited = limited.with_columns(period_key=_period_key())
    keys = limited.group_by(USAGE_KEY).agg(pl.len().alias("_count"), pl.col("member_limit").first())
    before = (
        usage.filter(pl.col("benefit_id").is_in(keys.get_column("benefit_id").unique().implode()))
        .group_by(USAGE_KEY)
        .agg(uses_before=pl.col("uses").sum())
    )
    contested_keys = (
        keys.join(before, on=USAGE_KEY, how="left")
        .with_columns(pl.col("uses_before").fill_null(0))
        .filter(pl.col("uses_before") + pl.col("_count") > pl.col("member_limit"))
        .select(*USAGE_KEY, "uses_before", kslot=pl.int_range(1, pl.len() + 1))
    )
    limited = limited.join(contested_keys, on=USAGE_KEY, how="left").with_columns(
        pl.col("kslot").fill_null(0), pl.col("uses_before").fill_null(0)
    )
    unlimited = slotted.filter(pl.col("member_limit").is_null()).with_columns(
        kslot=pl.lit(0, pl.Int64),
        period_key=pl.lit(None, pl.String),
        uses_before=pl.lit(0, pl.Int64),
    )
    return pl.concat([limited, unlimited], how="diagonal_relaxed")


def _resolve_in_order(queue: pl.DataFrame, ranked: pl.DataFrame) -> pl.DataFrame:
    """Resolve the contested purchases one by one in processing order.

    `queue` holds, per purchase, its candidates that could win, best reward first (ties: lowest
    benefit id); its counters start from `ranked`'s slots. Returns (pidx, benefit_id, value)
    with the value actually granted.
    """
    budget_left = _slot_values(ranked, "bslot", "budget_remaining_minor")
    quantity_left = _slot_values(ranked, "qslot", "quantity_remaining")
    uses = _slot_values(ranked, "kslot", "uses_before", unlimited=0)
    limits = _slot_values(ranked, "kslot", "member_limit")
    pidx = queue.get_column("pidx").to_list()
    benefit = queue.get_column("benefit_id").to_list()
    value = queue.get_column("value").to_list()
    bslot = queue.get_column("bslot").to_list()
    qslot = queue.get_column("qslot").to_list()
    kslot = queue.get_column("kslot").to_list()

    won_pidx: list[int] = []
    won_benefit: list[int] = []
    won_value: list[int] = []
    n = len(pidx)
    i = 0
    while i < n:
        purchase = pidx[i]
        best = -1
        best_value = 0
        best_benefit = 0
        j = i
        while j < n and pidx[j] == purchase:
            reward = value[j]
            # A grant never exceeds its reward: a smaller reward can no longer win.
            if (
                best < 0
                or reward > best_value
                or (reward == best_value and benefit[j] < best_benefit)
            ):
                budget = budget_left[bslot[j]]
                if budget > 0 and quantity_left[qslot[j]] > 0 and uses[kslot[j]] < limits[kslot[j]]:
                    grant = reward if reward < budget else budget
                    if (
                        best < 0
                        or grant > best_value
                        or (grant == best_value and benefit[j] < best_benefit)
                    ):
                        best, best_value, best_benefit = j, grant, benefit[j]
            j += 1
        if best >= 0:
            budget_left[bslot[best]] -= best_value
            quantity_left[qslot[best]] -= 1
            uses[kslot[best]] += 1
            won_pidx.append(purchase)
            won_benefit.append(best_benefit)
            won_value.append(best_value)
        i = j
    return pl.DataFrame(
        {"pidx": won_pidx, "benefit_id": won_benefit, "value": won_value},
        schema={"pidx": ranked.schema["pidx"], "benefit_id": pl.Int64, "value": pl.Int64},
    )


def _slot_values(
    ranked: pl.DataFrame, slot: str, column: str, unlimited: int = UNLIMITED
) -> list[int]:
    """A list indexed by slot: the counter's starting value (slot 0 holds `unlimited`)."""
    starts = ranked.filter(pl.col(slot) > 0).group_by(slot).agg(pl.col(column).first()).sort(slot)
    values = [unlimited] * (starts.height + 1)
    for index, start in starts.iter_rows():
        values[index] = start
    return values


# -- rules 6 and 7: rewards, grants, funding, counters ---------------------------------------------


def _rewards(
    purchases: pl.DataFrame, cash: pl.DataFrame, points: pl.DataFrame
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Reward rows (in processing order) and the new grants, one per rewarded purchase."""
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
        .join(purchases, on="pidx")
        .sort("pidx")
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


def _winners_usage(winners: pl.DataFrame) -> pl.DataFrame:
    return winners.select("benefit_id", "member_id", period_key=_period_key())


def _usage_added(cash: pl.DataFrame, points: pl.DataFrame) -> pl.DataFrame:
    usage = (
        pl.concat([_winners_usage(cash), _winners_usage(points)])
        .group_by(USAGE_KEY)
        .agg(uses=pl.len().cast(pl.Int64))
        .sort(USAGE_KEY)
    )
    return frames.conform(usage, frames.USAGE_ADDED, "usage_added")


def _consumed(cash: pl.DataFrame, points: pl.DataFrame) -> pl.DataFrame:
    taken = (
        pl.concat(
            [
                cash.select("benefit_id", budget_minor="value"),
                points.select("benefit_id", budget_minor=pl.lit(0, pl.Int64)),
            ]
        )
        .group_by("benefit_id")
        .agg(pl.col("budget_minor").sum(), quantity=pl.len().cast(pl.Int64))
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
    feed: pl.DataFrame, prior: pl.DataFrame, new: pl.DataFrame
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Clawback rows (in processing order) and the grants new or changed in this chunk.

    Per original, in (time, txn_id) order, each refund claws back min(its pro-rata share, what
    is left); so the running total is min(already clawed + running sum of shares, granted).
    """
    refunds = feed.filter(
        pl.col("type").is_in(CLAWBACK_TYPES) & pl.col("original_txn_id").is_not_null()
    ).select("txn_id", "original_txn_id", "txn_time", "currency", refund="amount_minor")
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
    changed_prior = prior.join(totals.select("txn_id"), on="txn_id", how="semi")
    grants = (
        pl.concat([new, changed_prior])
        .join(totals, on="txn_id", how="left", suffix="_after")
        .with_columns(pl.coalesce(f"{total}_after", total).alias(total) for total in GRANT_TOTALS)
        .sort("txn_id")
    )
    return frames.conform(clawbacks, frames.REWARDS, "clawbacks"), frames.conform(
        grants, frames.GRANTS, "grants"
    )
