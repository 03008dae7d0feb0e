"""DE 43 descriptors: the field layout, acquirer noise, normalisation and the labelled set."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from beyondbank.cards.descriptors import (
    AGGREGATOR_PREFIXES,
    CITY_WIDTH,
    FIELD_WIDTH,
    NAME_WIDTH,
    Normalised,
    acceptor_field,
    descriptor_key,
    labelled_set,
    name_key,
    noisy_descriptor,
    normalise,
)

# Text shaped like descriptors, so that generated examples hit prefixes, store numbers,
# padding and country codes, not only random code points.
DESCRIPTOR_ALPHABET = st.sampled_from(list("ABSQTPZIUMEL*_#'&.- 0123456789GBéßİ²٣\u00a0\t"))
descriptor_like = st.one_of(st.text(), st.text(alphabet=DESCRIPTOR_ALPHABET, max_size=60))


def test_acceptor_field_places_name_city_and_country_at_fixed_positions() -> None:
    field = acceptor_field("Bella Italia", "London", "gb")

    assert len(field) == FIELD_WIDTH
    assert field[:NAME_WIDTH] == "BELLA ITALIA".ljust(NAME_WIDTH)
    assert field[NAME_WIDTH : NAME_WIDTH + CITY_WIDTH] == "LONDON".ljust(CITY_WIDTH)
    assert field[-2:] == "GB"


def test_acceptor_field_truncates_each_part_and_drops_accents() -> None:
    field = acceptor_field("The Golden Teapot Tea Rooms Café", "Newcastle upon Tyne", "GB")

    assert field == "THE GOLDEN TEAPOT TEA ROO" + "NEWCASTLE UPO" + "GB"


@settings(max_examples=300)
@given(name=st.text(), city=st.text(), country=st.text(max_size=3), seed=st.integers())
def test_noisy_descriptors_never_exceed_the_field(
    name: str, city: str, country: str, seed: int
) -> None:
    assert len(noisy_descriptor(name, city, country, random.Random(seed))) <= FIELD_WIDTH


def test_noisy_descriptors_are_reproducible_and_varied() -> None:
    def batch(seed: int) -> list[str]:
        rng = random.Random(seed)
        return [noisy_descriptor("Harrison & Sons Butchers", "York", "GB", rng) for _ in range(400)]

    texts = batch(3)
    assert texts == batch(3)
    assert any(t.startswith(AGGREGATOR_PREFIXES) for t in texts)
    assert any("#" in t for t in texts)
    assert any("YORK" not in t.upper() for t in texts)  # city missing or shortened
    assert any(t != t.upper() for t in texts)  # case noise
    assert any(len(t) < FIELD_WIDTH for t in texts)  # compacted layout
    # Most noise is what normalisation undoes.
    same = sum(normalise(t).name == name_key("Harrison & Sons Butchers") for t in texts)
    assert same > len(texts) // 2


@pytest.mark.parametrize("prefix", AGGREGATOR_PREFIXES)
def test_every_facilitator_prefix_is_stripped(prefix: str) -> None:
    parts = normalise(acceptor_field(prefix + "Bella Italia", "London", "GB"))

    assert parts == Normalised(
        "BELLA ITALIA", "LONDON", "GB", name_width=len(prefix) + 12, prefix_width=len(prefix)
    )


@pytest.mark.parametrize(
    ("descriptor", "name"),
    [
        ("SQ *BELLA ITALIA #0042  LONDON       GB", "BELLA ITALIA"),
        ("BELLA ITALIA 042         LONDON       GB", "BELLA ITALIA"),
        ("BELLA ITALIA#7           LONDON       GB", "BELLA ITALIA"),
        ("bella   italia           london       gb", "BELLA ITALIA"),
        ("Bella-Italia, Ltd.       London       GB", "BELLA ITALIA"),
        ("SAINSBURY'S LOCAL        YORK         GB", "SAINSBURYS LOCAL"),
        ("CAFÉ NÉRO                BATH         GB", "CAFE NERO"),
        ("THE RED LION & CO        BATH         GB", "RED LION"),
        ("SMITH BROTHERS RESTAURANTBATH         GB", "SMITH BROS REST"),
        ("SMITH BROS REST          BATH         GB", "SMITH BROS REST"),
    ],
)
def test_normalisation_examples(descriptor: str, name: str) -> None:
    assert normalise(descriptor).name == name


def test_the_city_and_country_are_read_by_position_in_a_full_field() -> None:
    parts = normalise("SQ *HARRISON & SONS BUTCHNEWCASTLE UPOGB")

    assert (parts.name, parts.city, parts.country) == ("HARRISON SONS BUTCH", "NEWCASTLE UPO", "GB")
    assert parts.truncated


def test_a_compacted_descriptor_keeps_its_city_in_the_name_part() -> None:
    parts = normalise("SP * CAFE NERO BATH GB")

    assert (parts.name, parts.city, parts.country) == ("CAFE NERO BATH", "", "GB")
    assert not parts.truncated


def test_a_store_number_means_the_name_was_shown_whole() -> None:
    parts = normalise("SUMUP *PARKSIDE BUTTON 39SUNDERLAND   GB")

    assert parts.name == "PARKSIDE BUTTON"
    assert parts.store_number
    assert not parts.truncated


def test_descriptor_keys_ignore_what_normalisation_drops() -> None:
    assert descriptor_key("SQ *BELLA ITALIA #0042  LONDON       GB") == descriptor_key(
        "bella italia             london       gb"
    )
    assert descriptor_key("BELLA ITALIA             LONDON       GB") != descriptor_key(
        "BELLA ITALIA             YORK         GB"
    )


@settings(max_examples=2000)
@given(descriptor_like)
def test_normalise_never_raises_and_never_grows(text: str) -> None:
    parts = normalise(text)

    assert len(parts.name) <= len(text)
    assert len(parts.city) <= len(text)
    assert len(parts.country) <= len(text)
    assert normalise(text) == parts


@settings(max_examples=2000)
@given(descriptor_like)
def test_name_keys_are_idempotent(text: str) -> None:
    key = name_key(text)

    assert name_key(key) == key
    assert normalise(text).name == name_key(normalise(text).name)


@settings(max_examples=2000)
@given(descriptor_like)
def test_a_normalised_descriptor_rendered_again_normalises_to_itself(text: str) -> None:
    parts = normalise(text)
    if len(parts.name) > NAME_WIDTH or len(parts.city) > CITY_WIDTH:
        return  # a compacted descriptor longer than the field cannot be rendered whole
    again = normalise(acceptor_field(parts.name, parts.city, parts.country))

    assert (again.name, again.city, again.country) == (parts.name, parts.city, parts.country)


def test_the_labelled_set_is_deterministic_and_covers_the_hard_cases() -> None:
    first = labelled_set(5, merchants=60, descriptors=600)

    assert first == labelled_set(5, merchants=60, descriptors=600)
    kinds = {d.kind for d in first.descriptors}
    assert kinds == {"alliance", "other", "near_name", "other_mcc", "other_city"}
    assert len({(d.text, d.mcc) for d in first.descriptors}) == len(first.descriptors)
    assert all(len(d.text) <= FIELD_WIDTH for d in first.descriptors)
    merchants = {b.merchant_id for b in first.locations}
    assert len(merchants) == 60
    for d in first.descriptors:
        assert (d.merchant_id is not None) == (d.kind == "alliance")
        assert d.merchant_id is None or d.merchant_id in merchants
