"""The real-time path's single-event pieces against the batch machinery they must equal: the
row-wise validator against the feed's columnar one, merchant resolution by dict lookups against
the Resolver, and the per-event judge against the reference implementation on one-event
chunks in any state."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from beyondbank.alliance import service as alliance
from beyondbank.benefits.models import LimitPeriod
from beyondbank.cards import engine, feed, frames, instant, oracle
from beyondbank.cards.frames import Programme, State
from beyondbank.cards.resolution import Resolver
from tests.cards import strategies as s

# -- validation ------------------------------------------------------------------------------

VALID: dict[str, str] = {
    "txn_id": "t-1",
    "network_ref": "ref-1",
    "card_token": "tok_1",
    "type": "purchase",
    "original_txn_id": "",
    "amount_minor": "4000",
    "currency": "GBP",
    "mcc": "5812",
    "acquirer_merchant_id": "ACQ123",
    "terminal_id": "T1",
    "acceptor_name_location": "HARBOUR NOODLE BAR     LONDON       GB",
    "txn_time": "2026-11-22T09:41:07Z",
}

TRICKY: dict[str, list[str]] = {
    "type": ["purchase", "refund", "chargeback", "Purchase", "sale", " purchase"],
    "original_txn_id": ["", "t-0", " "],
    "amount_minor": [
        "4000",
        "1",
        "0",
        "000",
        "-5",
        "-5.5",
        "-.",
        "+5",
        "5.0",
        ".5",
        ".",
        "5.",
        "4e3",
        " 5",
        "5 ",
        "١٢",
        "9223372036854775807",
        "9223372036854775808",
        "99999999999999999999",
        "-9223372036854775809",
        "0x10",
        "1_000",
        "-0",
        "٣.٣",
    ],
    "currency": ["GBP", "EUR", "JPY", "PTS", "XXX", "XAU", "XAF", "XTS", "gbp", "ABC", "GB", "XCD"],
    "mcc": ["5812", "581", "58120", "58a2", "٥٨١٢", "5812\n"],
    "acquirer_merchant_id": ["ACQ", "A" * 15, "A" * 16, "É" * 15],
    "terminal_id": ["", "T1", "T" * 8, "T" * 9],
    "acceptor_name_location": ["SHOP", "S" * 40, "S" * 41, "CAFÉ", "bad \ufffd byte"],
    "txn_time": [
        "2026-11-22T09:41:07Z",
        "2026-11-22T09:41:07+00:00",
        "2026-11-22T09:41:07.5Z",
        "2026-11-22T09:41:07.123456789Z",
        "2026-11-22T09:41:07.1234567891Z",
        "2026-11-22T09:41:07.999999+00:00",
        "2026-11-22T09:41:07",
        "2026-11-22T09:41:07.25",
        "2026-11-22T09:41:07+01:00",
        "2026-11-22T09:41:07-0500",
        "2026-11-22 09:41:07Z",
        "2026-02-30T00:00:00Z",
        "2026-01-01T24:00:00Z",
        "2026-12-31T23:59:60Z",
        "2026-01-01T00:00:60.5Z",
        "2026-01-01T00:00:61Z",
        "2026-13-01T00:00:00Z",
        "2024-02-29T12:00:00Z",
        "2025-02-29T12:00:00Z",
        "٢٠٢٦-01-01T00:00:00Z",
        "2026-11-22T09:41:07Z\n",
        "2026-11-22T09:41:07z",
        "0001-01-01T00:00:00Z",
        "9999-12-31T23:59:59Z",
        "yesterday",
    ],
}


@st.composite
def rows(draw: st.DrawFn) -> dict[str, str | None]:
    row: dict[str, str | None] = {}
    for column, valid in VALID.items():
        choice = draw(st.integers(0, 9))
        if choice <= 5:
            row[column] = valid
        elif choice <= 7 and column in TRICKY:
            row[column] = draw(st.sampled_from(TRICKY[column]))
        elif choice == 8:
            row[column] = draw(st.sampled_from(["", None]))
        else:
            row[column] = draw(st.text(max_size=12))
    if row["type"] in ("refund", "chargeback") and draw(st.booleans()):
        row["original_txn_id"] = "t-0"
    return row


def _columnar(row: dict[str, str | None]) -> tuple[dict[str, Any] | None, str | None]:
    checked = feed.validate_rows([{k: v or "" for k, v in row.items()}])
    if checked.quarantined.height:
        return None, checked.quarantined.get_column("reason")[0]
    return checked.accepted.drop("line").row(0, named=True), None


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows())
def test_the_row_wise_validator_equals_the_feeds(row: dict[str, str | None]) -> None:
    accepted, reason = _columnar(row)
    verdict = instant.check(row)
    if isinstance(verdict, instant.Rejected):
        assert verdict.reason == reason, row
    else:
        assert reason is None, (row, reason)
        assert verdict.as_row() == accepted


@settings(max_examples=300, deadline=None)
@given(
    st.integers(1, 9999),
    st.integers(0, 13),
    st.integers(0, 32),
    st.integers(0, 25),
    st.integers(0, 61),
    st.text("0123456789", max_size=10),
    st.sampled_from(["Z", "+00:00"]),
)
def test_instants_equal_the_feeds_parser(
    year: int, month: int, day: int, hour: int, second: int, fraction: str, zone: str
) -> None:
    text = f"{year:04d}-{month:02d}-{day:02d}T{hour:02d}:30:{second:02d}"
    text += (f".{fraction}" if fraction else "") + zone
    row = {**VALID, "txn_time": text}
    accepted, reason = _columnar(row)
    verdict = instant.check(row)
    if isinstance(verdict, instant.Rejected):
        assert verdict.reason == reason, text
    else:
        assert accepted is not None, (text, reason)
        assert verdict.txn_time == accepted["txn_time"]


def test_year_zero_is_not_a_real_date() -> None:
    # Polars reads year 0000 (the proleptic calendar has one); Python has no year 0, so the
    # row could not be matched: the row-wise validator refuses it as not a real date.
    verdict = instant.check({**VALID, "txn_time": "0000-06-01T00:00:00Z"})
    assert verdict == instant.Rejected(feed.TIME_INVALID)


# -- merchant resolution -------------------------------------------------------------------

TERMINALS = [
    ("ACQ1", "T1", 11, 1),
    ("ACQ1", None, 12, 1),
    ("ACQ2", "T9", 21, 2),
    ("ACQ3", None, 31, 3),
]
MERCHANTS = [
    (1, 11, "Harbour Noodle Bar", "5812", "London", "GB"),
    (1, 12, "Harbour Noodle Bar", "5812", "Bristol", "GB"),
    (2, 21, "Little Explorers Nursery", "8351", "London", "GB"),
    (3, 31, "Canary Fitness", "7997", "London", "GB"),
    (4, 41, "Harbour Noodle Bars", "5812", "Leeds", "GB"),
]
DESCRIPTORS = [
    "HARBOUR NOODLE BAR     LONDON       GB",
    "HARBOUR NOODLE BA      LONDON       GB",
    "HARBOUR NOODLE         LEEDS        GB",
    "SQ *CANARY FITNESS LONDON GB",
    "LITTLE EXPLORERS NURSERLONDON       GB",
    "CORNER SHOP            LONDON       GB",
    "MAPPED CAFE            LONDON       GB",
    "HARBOUR NOODLE BARS    LEEDS        GB",
]


def _resolver() -> Resolver:
    return Resolver(
        terminals=pl.DataFrame(
            TERMINALS,
            schema=["acquirer_merchant_id", "terminal_id", "location_id", "merchant_id"],
            orient="row",
        ),
        mappings=pl.DataFrame(
            [("MAPPED CAFE", 3, None)],
            schema={
                "descriptor_key": pl.String(),
                "merchant_id": pl.Int64(),
                "location_id": pl.Int64(),
            },
            orient="row",
        ),
        merchants=pl.DataFrame(
            MERCHANTS,
            schema=["merchant_id", "location_id", "name", "mcc", "city", "country"],
            orient="row",
        ),
    )


def _snapshot(resolver: Resolver) -> instant.Snapshot:
    return instant.Snapshot(
        resolver=resolver,
        terminals={(a, t): (m, loc) for a, t, loc, m in TERMINALS if t is not None},
        any_terminal={a: (m, loc) for a, t, loc, m in TERMINALS if t is None},
        mappings={"MAPPED CAFE": (3, None)},
        offers={},
        benefit_refs={},
        merchants={},
        circles=alliance.CircleTests((), ()),
        built=0.0,
    )


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["ACQ1", "ACQ2", "ACQ3", "ACQ4"]),
            st.sampled_from([None, "T1", "T9", "T2"]),
            st.sampled_from(DESCRIPTORS),
            st.sampled_from(["5812", "8351", "7997"]),
        ),
        min_size=1,
        max_size=12,
    )
)
def test_dict_resolution_equals_the_resolvers(
    events: list[tuple[str, str | None, str, str]],
) -> None:
    resolver = _resolver()
    snapshot = _snapshot(_resolver())
    feed_rows = [
        {
            **s.FEED_DEFAULTS,
            "line": i,
            "txn_id": f"t{i}",
            "card_token": "c1",
            "amount_minor": 100,
            "txn_time": datetime(2026, 11, 22, tzinfo=UTC),
            "acquirer_merchant_id": aid,
            "terminal_id": tid,
            "acceptor_name_location": text,
            "mcc": mcc,
        }
        for i, (aid, tid, text, mcc) in enumerate(events)
    ]
    transactions = s.frame(feed_rows, frames.TRANSACTIONS)
    resolution = resolver.resolve(transactions)
    expected = resolution.resolved.select("merchant_id", "location_id", "resolved_by").rows()
    reviews = {(r["descriptor_key"], r["mcc"]): r for r in resolution.review.iter_rows(named=True)}
    for row, (merchant_id, location_id, by) in zip(feed_rows, expected, strict=True):
        event = instant.Event(**{c: row[c] for c in frames.FEED_COLUMNS})
        place = snapshot.resolve(event)
        assert (place.merchant_id, place.location_id, place.resolved_by) == (
            merchant_id,
            location_id,
            by,
        ), row
        if place.review is not None:
            wanted = reviews[(place.review["descriptor_key"], place.review["mcc"])]
            assert place.review["merchant_id"] == wanted["merchant_id"]
            assert place.review["score"] == wanted["score"]
            assert place.review["city"] == wanted["city"]
        else:
            assert merchant_id is not None or not any(
                r["acceptor_name_location"] == row["acceptor_name_location"]
                and r["mcc"] == row["mcc"]
                for r in reviews.values()
            )


# -- the rules for one event ------------------------------------------------------------------


def _offers(programme: Programme) -> dict[int, list[oracle.Benefit]]:
    targets: dict[int, set[int]] = {}
    for benefit_id, circle_id in programme.benefit_targets.iter_rows():
        targets.setdefault(benefit_id, set()).add(circle_id)
    offers: dict[int, list[oracle.Benefit]] = {}
    for row in programme.benefits.sort("benefit_id").iter_rows(named=True):
        benefit = oracle._benefit(row, frozenset(targets.get(row["benefit_id"], ())))
        if benefit is not None:
            offers.setdefault(benefit.merchant_id, []).append(benefit)
    return offers


def _single(row: dict[str, Any], programme: Programme, state: State) -> dict[str, Any]:
    """What the per-event functions decide for one resolved row, in the oracle's frames' terms."""
    empty: dict[str, Any] = {"rewards": [], "usage": [], "consumed": [], "grants": []}
    if row["type"] != frames.PURCHASE:
        grants = {g["txn_id"]: g for g in state.grants.iter_rows(named=True)}
        original = grants.get(row["original_txn_id"]) if row["original_txn_id"] else None
        if original is None:
            return empty
        clawback, totals = instant.claw_back(row, original)
        if original["currency"] != row["currency"]:
            assert clawback is None
            return empty
        return {**empty, "rewards": [clawback] if clawback else [], "grants": [totals]}
    links = [link for link in programme.cards.iter_rows(named=True)]
    member_id = oracle._member_at(
        [link for link in links if link["card_token"] == row["card_token"]], row["txn_time"]
    )
    if member_id is None or row["merchant_id"] is None:
        return empty
    circles = frozenset(c for m, c in programme.member_circles.iter_rows() if m == member_id)
    history = [
        (p["txn_time"], p["txn_id"])
        for p in state.prior_purchases.iter_rows(named=True)
        if (p["member_id"], p["merchant_id"]) == (member_id, row["merchant_id"])
    ]
    uses: dict[tuple[int, int, str], int] = {}
    for u in state.usage.iter_rows(named=True):
        key = (u["benefit_id"], u["member_id"], u["period_key"])
        uses[key] = uses.get(key, 0) + u["uses"]
    judged = instant.judge(
        instant.Purchase(
            row["txn_id"],
            row["txn_time"],
            row["amount_minor"],
            row["currency"],
            member_id,
            row["merchant_id"],
        ),
        _offers(programme).get(row["merchant_id"], []),
        circles=circles,
        last_purchase_at=instant.last_purchase_before(history, row["txn_time"], row["txn_id"]),
        uses=uses,
    )
    if judged is None:
        return empty
    return {
        "rewards": [judged.reward],
        "usage": sorted((b, m, k, 1) for b, m, k in judged.uses),
        "consumed": sorted(judged.consumed),
        "grants": [judged.grant],
    }


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(s.scenarios())
def test_one_event_at_a_time_equals_the_oracle(
    scenario: tuple[pl.DataFrame, Programme, State],
) -> None:
    """Every event of a generated feed, one at a time in processing order, judged by the
    per-event functions and by `oracle.match` on a one-row chunk with the same state; the state
    then moves on by the oracle's outcome (`engine.advance`)."""
    transactions, programme, state = scenario
    ordered = (
        transactions.unique("txn_id", keep="first", maintain_order=True)
        .sort("txn_time", "txn_id")
        .iter_rows(named=True)
    )
    for row in ordered:
        one = s.frame([row], frames.RESOLVED)
        expected = oracle.match(one, programme, state)
        actual = _single(row, programme, state)
        assert actual["rewards"] == expected.rewards.to_dicts(), row
        assert actual["grants"] == expected.grants.to_dicts(), row
        if row["type"] == frames.PURCHASE:
            assert actual["usage"] == [tuple(r) for r in expected.usage_added.iter_rows()]
            assert actual["consumed"] == [tuple(r) for r in expected.consumed.iter_rows()]
        programme, state = engine.advance(programme, state, expected)


def test_a_budget_left_smaller_than_the_reward_grants_what_is_left() -> None:
    at = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
    benefits = s.benefits(
        [
            {
                "benefit_id": 1,
                "merchant_id": 1,
                "percent_bps": 2_000,
                "budget_remaining_minor": 300,
            },
            {"benefit_id": 2, "merchant_id": 1, "kind": "amount_off", "fixed_minor": 250},
        ]
    )
    offers = _offers(Programme(cards=s.frame([], frames.CARDS), benefits=benefits))[1]
    judged = instant.judge(
        instant.Purchase("t1", at, 4_000, "GBP", 7, 1),
        offers,
        circles=frozenset(),
        last_purchase_at=None,
        uses={},
    )
    assert judged is not None
    # 20% of £40 is £8, but only £3 is left: still more than the £2.50 off.
    assert (judged.reward["benefit_id"], judged.reward["amount_minor"]) == (1, 300)
    assert judged.consumed == ((1, 300, 1),)
    spent = instant.with_counters(offers, {1: (True, 0, None), 2: (True, None, None)})
    again = instant.judge(
        replace(instant.Purchase("t2", at + timedelta(minutes=1), 4_000, "GBP", 7, 1)),
        spent,
        circles=frozenset(),
        last_purchase_at=at,
        uses={(1, 7, LimitPeriod.CAMPAIGN.value): 1},
    )
    assert again is not None
    assert (again.reward["benefit_id"], again.reward["amount_minor"]) == (2, 250)
