"""Merchant resolution: terminal before mapping before fuzzy match, blocking, ambiguity, review."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import polars as pl
import pytest

from beyondbank.cards import frames
from beyondbank.cards.descriptors import acceptor_field, descriptor_key, labelled_set
from beyondbank.cards.resolution import (
    AMBIGUOUS,
    BELOW_THRESHOLD,
    DEFAULT_REVIEW_FLOOR,
    DEFAULT_THRESHOLD,
    FUZZY,
    MAPPING,
    MAPPINGS,
    MERCHANTS,
    REVIEW,
    TERMINAL,
    TERMINALS,
    Resolver,
)

T0 = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)

# merchant_id, location_id, name, mcc, city
ALLIANCE = [
    (1, 11, "Bella Italia", "5812", "London"),
    (1, 12, "Bella Italia", "5812", "York"),
    (2, 21, "Harrison & Sons Butchers", "5411", "Leeds"),
    (3, 31, "The Golden Teapot Tea Rooms", "5814", "Manchester"),
    (4, 41, "Smith's Bakery", "5462", "Bath"),
    (5, 51, "Smiths Bakery", "5462", "Bath"),
    (6, 61, "Olive Tree Kitchen", "5812", "Bristol"),
]


def merchants(
    rows: Sequence[tuple[int | None, int | None, str, str, str]] = ALLIANCE,
) -> pl.DataFrame:
    return pl.DataFrame(
        [
            {
                "merchant_id": m,
                "location_id": loc,
                "name": n,
                "mcc": mcc,
                "city": c,
                "country": "GB",
            }
            for m, loc, n, mcc, c in rows
        ],
        schema=MERCHANTS,
    )


def terminals(rows: Sequence[tuple[str, str | None, int, int]] = ()) -> pl.DataFrame:
    return pl.DataFrame(
        [
            {"acquirer_merchant_id": mid, "terminal_id": tid, "location_id": loc, "merchant_id": m}
            for mid, tid, loc, m in rows
        ],
        schema=TERMINALS,
    )


def mappings(rows: Sequence[tuple[str, int, int]] = ()) -> pl.DataFrame:
    return pl.DataFrame(
        [{"descriptor_key": k, "merchant_id": m, "location_id": loc} for k, m, loc in rows],
        schema=MAPPINGS,
    )


def feed(rows: list[dict[str, Any]]) -> pl.DataFrame:
    """Purchases: each row names its descriptor and MCC, and optionally its terminal keys."""
    return pl.DataFrame(
        [
            {
                "line": i + 2,
                "txn_id": f"T{i}",
                "network_ref": f"N{i}",
                "card_token": "tok",
                "type": frames.PURCHASE,
                "original_txn_id": None,
                "amount_minor": 1000,
                "currency": "GBP",
                "mcc": row["mcc"],
                "acquirer_merchant_id": row.get("mid", "UNKNOWN"),
                "terminal_id": row.get("tid"),
                "acceptor_name_location": row["descriptor"],
                "txn_time": T0,
            }
            for i, row in enumerate(rows)
        ],
        schema=frames.TRANSACTIONS,
    )


def resolver(**options: Any) -> Resolver:
    return Resolver(
        options.pop("terminals", terminals()),
        options.pop("mappings", mappings()),
        options.pop("merchants", merchants()),
        **options,
    )


def answers(frame: pl.DataFrame) -> list[tuple[Any, ...]]:
    return list(frame.select("merchant_id", "location_id", "resolved_by").iter_rows())


def test_a_specific_terminal_wins_over_the_merchant_ids_any_terminal_row() -> None:
    keys = terminals([("M1", None, 11, 1), ("M1", "T2", 61, 6)])
    unknown = "UNKNOWN NAME             NOWHERE      GB"
    result = resolver(terminals=keys).resolve(
        feed(
            [
                {"mid": "M1", "tid": "T2", "mcc": "5812", "descriptor": unknown},
                {"mid": "M1", "tid": "T9", "mcc": "5812", "descriptor": unknown},
                {"mid": "M1", "tid": None, "mcc": "5812", "descriptor": unknown},
                {"mid": "M2", "tid": "T2", "mcc": "5812", "descriptor": unknown},
            ]
        )
    )

    assert answers(result.resolved) == [
        (6, 61, TERMINAL),
        (1, 11, TERMINAL),
        (1, 11, TERMINAL),
        (None, None, None),
    ]
    assert result.resolved["confidence"].to_list() == [1.0, 1.0, 1.0, None]


def test_a_terminal_match_wins_over_mappings_and_descriptors() -> None:
    descriptor = acceptor_field("Olive Tree Kitchen", "Bristol", "GB")
    result = resolver(
        terminals=terminals([("M1", None, 11, 1)]),
        mappings=mappings([(descriptor_key(descriptor), 6, 61)]),
    ).resolve(feed([{"mid": "M1", "mcc": "5812", "descriptor": descriptor}]))

    assert answers(result.resolved) == [(1, 11, TERMINAL)]


def test_a_confirmed_mapping_wins_over_the_fuzzy_match() -> None:
    descriptor = "SQ *OLIVE TREE KITCHEN   BRISTOL      GB"
    # A person confirmed that this descriptor is Bella Italia in London, whatever it says.
    result = resolver(mappings=mappings([(descriptor_key(descriptor), 1, 11)])).resolve(
        feed(
            [
                {"mcc": "5812", "descriptor": descriptor},
                # Same key: the store number, case and facilitator do not matter.
                {"mcc": "5812", "descriptor": "olive tree kitchen #12   bristol      gb"},
            ]
        )
    )

    assert answers(result.resolved) == [(1, 11, MAPPING), (1, 11, MAPPING)]
    assert result.resolved["confidence"].to_list() == [1.0, 1.0]


@pytest.mark.parametrize(
    ("descriptor", "mcc", "merchant", "location"),
    [
        ("SQ *BELLA ITALIA #0042  LONDON       GB", "5812", 1, 11),
        ("BELLA ITALIA             YORK         GB", "5812", 1, 12),
        ("PAYPAL *HARRISON & SONS BLEEDS        GB", "5411", 2, 21),
        ("THE GOLDEN TEAPOT TEA ROOMANCHESTER   GB", "5814", 3, 31),
        ("TST* GOLDEN TEAPOT TEA ROMNCHSTR      GB", "5814", 3, 31),
        ("SP * OLIVE TREE KITCHEN BRISTOL GB", "5812", 6, 61),
        ("OLIVE TREE KITCHN       BRSTL         GB", "5812", 6, 61),
    ],
)
def test_noisy_descriptors_resolve_by_fuzzy_match(
    descriptor: str, mcc: str, merchant: int, location: int
) -> None:
    result = resolver().resolve(feed([{"mcc": mcc, "descriptor": descriptor}]))

    assert answers(result.resolved) == [(merchant, location, FUZZY)]
    assert DEFAULT_THRESHOLD <= result.resolved["confidence"][0] <= 1.0
    assert result.review.is_empty()


def test_the_same_name_in_another_category_is_not_matched() -> None:
    # Bella Italia is a restaurant (5812); a Bella Italia hair salon is another business.
    result = resolver().resolve(
        feed([{"mcc": "7230", "descriptor": "BELLA ITALIA             LONDON       GB"}])
    )

    assert answers(result.resolved) == [(None, None, None)]
    assert result.review.is_empty()


def test_the_same_name_in_another_town_is_not_matched() -> None:
    result = resolver().resolve(
        feed([{"mcc": "5411", "descriptor": "HARRISON & SONS BUTCHERS BRISTOL      GB"}])
    )

    assert answers(result.resolved) == [(None, None, None)]


def test_a_descriptor_from_another_country_is_not_matched_without_its_city() -> None:
    # The alliance is in GB; an Olive Tree Kitchen in France is another business.
    result = resolver().resolve(
        feed([{"mcc": "5812", "descriptor": "OLIVE TREE KITCHEN                    FR"}])
    )

    assert answers(result.resolved) == [(None, None, None)]


def test_a_merchant_with_two_locations_and_no_city_is_known_but_not_its_place() -> None:
    match = resolver().match("SQ *BELLA ITALIA #0042 GB", "5812")

    assert (match.merchant_id, match.location_id) == (1, None)
    assert not match.accepted  # two words are not enough without a city


def test_without_a_city_a_short_name_goes_to_review_and_a_long_one_may_match() -> None:
    result = resolver().resolve(
        feed(
            [
                {"mcc": "5812", "descriptor": "OLIVE TREE KITCHEN                    GB"},
                {"mcc": "5462", "descriptor": "SMITHS BAKERY                         GB"},
            ]
        )
    )

    assert answers(result.resolved)[0] == (6, 61, FUZZY)
    assert answers(result.resolved)[1] == (None, None, None)


def test_two_merchants_that_score_alike_are_ambiguous_and_go_to_review() -> None:
    descriptor = "SMITHS BAKERY            BATH         GB"
    result = resolver().resolve(
        feed([{"mcc": "5462", "descriptor": descriptor}, {"mcc": "5462", "descriptor": descriptor}])
    )

    assert answers(result.resolved) == [(None, None, None)] * 2
    assert result.review.schema == REVIEW
    review = result.review.row(0, named=True)
    assert review["reason"] == AMBIGUOUS
    assert review["merchant_id"] in (4, 5)
    assert review["transactions"] == 2


def test_the_review_frame_lists_distinct_near_misses_with_their_best_candidate() -> None:
    near_miss = "OLIVE GROVE KITCHEN      BRISTOL      GB"
    result = resolver().resolve(
        feed(
            [
                {"mcc": "5812", "descriptor": near_miss},
                {"mcc": "5812", "descriptor": "SQ *BELLA ITALIA #0042  LONDON       GB"},
                {"mcc": "5812", "descriptor": near_miss},
                {"mcc": "5812", "descriptor": near_miss},
                {"mcc": "5812", "descriptor": "SOMETHING ELSE ENTIRELY  BRISTOL      GB"},
            ]
        )
    )

    assert result.review.to_dicts() == [
        {
            "acceptor_name_location": near_miss,
            "descriptor_key": descriptor_key(near_miss),
            "mcc": "5812",
            "city": "BRISTOL",
            "merchant_id": 6,
            "location_id": 61,
            "score": result.review["score"][0],
            "reason": BELOW_THRESHOLD,
            "transactions": 3,
        }
    ]
    assert DEFAULT_REVIEW_FLOOR <= result.review["score"][0] < DEFAULT_THRESHOLD


def test_the_output_is_the_input_with_the_resolution_appended_in_order() -> None:
    rows: list[dict[str, Any]] = [
        {"mcc": "5812", "descriptor": "SQ *BELLA ITALIA #0042  LONDON       GB"},
        {"mcc": "5812", "descriptor": None},
        {"mcc": "5411", "descriptor": "NOT A MEMBER             LEEDS        GB"},
        {"mcc": "5812", "descriptor": "SQ *BELLA ITALIA #0042  LONDON       GB"},
    ]
    transactions = feed(rows)
    result = resolver().resolve(transactions)

    assert result.resolved.schema == frames.RESOLVED
    assert result.resolved.select(frames.TRANSACTIONS.names()).equals(transactions)
    assert answers(result.resolved) == [
        (1, 11, FUZZY),
        (None, None, None),
        (None, None, None),
        (1, 11, FUZZY),
    ]


def test_an_empty_feed_resolves_to_empty_frames() -> None:
    result = resolver().resolve(pl.DataFrame(schema=frames.TRANSACTIONS))

    assert result.resolved.schema == frames.RESOLVED
    assert result.resolved.is_empty()
    assert result.review.schema == REVIEW
    assert result.review.is_empty()


def test_a_threshold_outside_zero_to_one_is_refused() -> None:
    with pytest.raises(ValueError, match="threshold"):
        resolver(threshold=1.5)


def test_precision_and_recall_on_a_labelled_set_meet_the_product_goals() -> None:
    labelled = labelled_set(20261122, merchants=300, descriptors=3000)
    alliance = merchants(
        [(b.merchant_id, b.location_id, b.name, b.mcc, b.city) for b in labelled.locations]
    )
    transactions = feed([{"mcc": d.mcc, "descriptor": d.text} for d in labelled.descriptors])

    resolved = resolver(merchants=alliance).resolve(transactions).resolved
    found = resolved["merchant_id"].to_list()
    truth = [d.merchant_id for d in labelled.descriptors]
    accepted = [(t, f) for t, f in zip(truth, found, strict=True) if f is not None]
    correct = sum(t == f for t, f in accepted)
    precision = correct / len(accepted)
    recall = correct / sum(t is not None for t in truth)

    assert precision >= 0.99, precision
    assert recall >= 0.95, recall
