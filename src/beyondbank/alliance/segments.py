"""Segment rules: who belongs to a segment circle, decided by a small declarative rule on member attributes.

A rule is `{"all": [condition, ...]}` or `{"any": [...]}` (nestable), where a condition is
`{"attr": "children", "op": "gte", "value": 1}`. Rules are data, never code: a bank's program
manager writes them in the console or the import file and they are validated before saving.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    TypeAdapter,
    ValidationError,
    model_validator,
)

from beyondbank.core.i18n import _

Op = Literal["eq", "ne", "gt", "gte", "lt", "lte", "in", "not_in", "contains", "exists"]
Scalar = str | int | float | bool


class Condition(BaseModel):
    model_config = ConfigDict(extra="forbid")

    attr: str = Field(min_length=1, max_length=64, pattern=r"^[a-z][a-z0-9_]*$")
    op: Op
    value: Scalar | list[Scalar] | None = None

    @model_validator(mode="after")
    def _value_fits_op(self) -> Condition:
        if self.op == "exists":
            if self.value is not None and not isinstance(self.value, bool):
                raise ValueError(_("`exists` takes true, false or no value"))
        elif self.op in ("in", "not_in"):
            if not isinstance(self.value, list) or not self.value:
                raise ValueError(_("`%(op)s` needs a non-empty list", op=self.op))
        elif self.value is None or isinstance(self.value, list):
            raise ValueError(_("`%(op)s` needs a single value", op=self.op))
        return self


class AllOf(BaseModel):
    model_config = ConfigDict(extra="forbid")
    all: list[Rule] = Field(min_length=1)


class AnyOf(BaseModel):
    model_config = ConfigDict(extra="forbid")
    any: list[Rule] = Field(min_length=1)


def _kind(raw: Any) -> str:
    """Which shape a rule has, from its keys, so that errors speak about that shape only."""
    if isinstance(raw, dict):
        keys: Any = raw.keys()
    elif isinstance(raw, BaseModel):
        keys = type(raw).model_fields.keys()
    else:
        return "condition"  # not an object at all: reported as such by the condition's model
    return "all" if "all" in keys else "any" if "any" in keys else "condition"


Rule = Annotated[
    Annotated[AllOf, Tag("all")]
    | Annotated[AnyOf, Tag("any")]
    | Annotated[Condition, Tag("condition")],
    Discriminator(_kind),
]
AllOf.model_rebuild()
AnyOf.model_rebuild()
_RULE = TypeAdapter(Rule)


def parse_rule(raw: dict[str, Any]) -> AllOf | AnyOf | Condition:
    """Validate a rule; raises pydantic's ValidationError naming the bad part."""
    return _RULE.validate_python(raw)


def describe_errors(exc: ValidationError) -> list[str]:
    """A rule's validation errors as `path: message`, the path as the rule's author wrote it.

    Pydantic puts the union's tag into each error's location (after the root and after every
    list index); it is dropped here, so `{"all": [{"op": "bogus"}]}` reports `all.0.op`.
    """
    described = []
    for error in exc.errors():
        path: list[str] = []
        skip_tag = True
        for part in error["loc"]:
            if skip_tag:
                skip_tag = False
                continue
            path.append(str(part))
            skip_tag = isinstance(part, int)
        described.append(
            f"{'.'.join(path) or 'rule'}: {error['msg'].removeprefix('Value error, ')}"
        )
    return described


def matches(rule: AllOf | AnyOf | Condition, attributes: dict[str, Any]) -> bool:
    if isinstance(rule, AllOf):
        return all(matches(r, attributes) for r in rule.all)
    if isinstance(rule, AnyOf):
        return any(matches(r, attributes) for r in rule.any)
    return _holds(rule, attributes)


def _holds(c: Condition, attributes: dict[str, Any]) -> bool:
    present = c.attr in attributes and attributes[c.attr] is not None
    if c.op == "exists":
        return present == (c.value is not False)
    if not present:
        return False
    actual = attributes[c.attr]
    try:
        if c.op == "eq":
            return bool(actual == c.value)
        if c.op == "ne":
            return bool(actual != c.value)
        if c.op == "in":
            return actual in c.value  # type: ignore[operator]
        if c.op == "not_in":
            return actual not in c.value  # type: ignore[operator]
        if c.op == "contains":
            return isinstance(actual, list | str) and c.value in actual
        if isinstance(actual, bool) or not isinstance(actual, int | float):
            return False
        value = float(c.value)  # type: ignore[arg-type]
        return {
            "gt": actual > value,
            "gte": actual >= value,
            "lt": actual < value,
            "lte": actual <= value,
        }[c.op]
    except (TypeError, ValueError):
        return False  # an attribute of the wrong type never matches
