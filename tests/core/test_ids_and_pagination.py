from __future__ import annotations

import pytest

from beyondbank.core.errors import InvalidInput
from beyondbank.core.ids import is_public_id, new_public_id, new_ulid
from beyondbank.core.pagination import decode_cursor, encode_cursor


def test_public_ids_are_prefixed_unique_and_time_ordered() -> None:
    ids = [new_public_id("mer") for _ in range(1000)]
    assert len(set(ids)) == 1000
    assert all(is_public_id(i, "mer") for i in ids)
    assert not is_public_id(ids[0], "cir")
    assert new_ulid(1_000) < new_ulid(2_000)


def test_cursor_round_trip_and_garbage_is_a_422() -> None:
    assert decode_cursor(encode_cursor(42)) == 42
    for bad in ("nonsense", "eyJhZnRlciI6ICJ4In0", ""):
        with pytest.raises(InvalidInput) as caught:
            decode_cursor(bad)
        assert caught.value.errors[0].field == "query.cursor"
