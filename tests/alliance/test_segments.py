"""Segment rules and geography: who belongs to a circle, and errors that point at the bad part."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from beyondbank.alliance import segments
from beyondbank.alliance.models import Circle, CircleKind
from beyondbank.alliance.service import circle_contains, circles_containing
from beyondbank.core.uow import UnitOfWork
from tests import factories as f


def _errors(raw: Any) -> list[str]:
    with pytest.raises(ValidationError) as bad:
        segments.parse_rule(raw)
    return segments.describe_errors(bad.value)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"all": [{"attr": "children", "op": "bogus", "value": 1}]}, "all.0.op: Input should be"),
        ({"attr": "Children", "op": "eq", "value": 1}, "attr: String should match pattern"),
        ({"any": []}, "any: List should have at least 1 item"),
        (
            {"all": [{"any": [{"attr": "a", "op": "in", "value": 3}]}]},
            "all.0.any.0: `in` needs a non-empty list",
        ),
        ({"all": [5]}, "all.0: Input should be a valid dictionary"),
        ("children >= 1", "rule: Input should be a valid dictionary"),
        ({"attr": "children", "op": "gte"}, "`gte` needs a single value"),
    ],
)
def test_rule_errors_name_the_part_as_written(raw: Any, expected: str) -> None:
    assert any(message.startswith(expected) or expected in message for message in _errors(raw)), (
        _errors(raw)
    )


PARENT_OR_DRIVER = {
    "any": [
        {"attr": "children", "op": "gte", "value": 1},
        {
            "all": [
                {"attr": "car_owner", "op": "eq", "value": True},
                {"attr": "region", "op": "in", "value": ["london", "kent"]},
            ]
        },
    ]
}


@pytest.mark.parametrize(
    ("attributes", "belongs"),
    [
        ({"children": 2}, True),
        ({"children": 0, "car_owner": True, "region": "kent"}, True),
        ({"car_owner": True, "region": "devon"}, False),
        ({"children": "two"}, False),  # the wrong type never matches
        ({"children": True}, False),  # a boolean is not a count
        ({}, False),
    ],
)
def test_rules_decide_membership(attributes: dict[str, Any], belongs: bool) -> None:
    assert segments.matches(segments.parse_rule(PARENT_OR_DRIVER), attributes) is belongs


def test_exists_and_contains() -> None:
    has_pet = segments.parse_rule({"attr": "pets", "op": "contains", "value": "dog"})
    assert segments.matches(has_pet, {"pets": ["cat", "dog"]})
    assert not segments.matches(has_pet, {"pets": "none"})
    no_car = segments.parse_rule({"attr": "car_owner", "op": "exists", "value": False})
    assert segments.matches(no_car, {})
    assert not segments.matches(no_car, {"car_owner": False})


def test_circle_edges_and_the_antimeridian(uow: UnitOfWork) -> None:
    suva = f.make_circle(uow, center=(-18.1416, 179.99), radius_m=5000)
    assert circle_contains(suva, -18.1416, -179.99)  # about 2 km east, across the date line
    assert not circle_contains(suva, -18.1416, 179.9)  # about 10 km west
    edge = f.make_circle(uow, radius_m=1000)
    assert circle_contains(edge, f.CANARY_WHARF[0] + 0.0089, f.CANARY_WHARF[1])  # 990 m north
    assert not circle_contains(edge, f.CANARY_WHARF[0] + 0.0091, f.CANARY_WHARF[1])  # 1012 m north
    segment = f.make_circle(
        uow, kind=CircleKind.SEGMENT, segment_rule={"attr": "children", "op": "gte", "value": 1}
    )
    assert not circle_contains(segment, *f.CANARY_WHARF)
    found: list[Circle] = circles_containing(uow, -18.1416, -179.99)
    assert found == [suva]
